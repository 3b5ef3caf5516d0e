//! The target, on a thread of its own: the desktop device performs the target
//! operations requests wait on (variable reads and writes, the commands of object 1027)
//! there, so that a slow or dead Modbus server holds that one request only: meanwhile the
//! device loop answers every other channel (`A8`) and runs its timers
//! (`transport_traits::run::asynch::run`). The configuration store is fast (a file):
//! its operations are performed on the spot.
//!
//! How the loop learns that an operation is done: the worker sends [`Event::Wake`] into
//! the host's inbox once the result is in place; the host, which blocks on its inbox
//! while the loop awaits it, answers a wake-up by asking to be polled again, and the
//! loop then finds the operation's result ([`Performed`]). The host is the reactor:
//! `embassy_futures::block_on` drives the loop on the main thread, nothing else runs
//! there.

use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::task::{Context, Poll};
use std::thread;

use lwm2m_core::io::{IoResult, Operation};
use lwm2m_core::storage::NoStore;
use lwm2m_core::target::TargetIo;
use lwm2m_core::wire::ResultCode;
use lwm2m_core::Config;
use transport_traits::run::asynch::Io;

use crate::flash::DesktopStore;
use crate::Event;

/// The configuration a target operation is performed with: none is needed (only a save
/// reads it, and saves are not sent to the worker).
static NO_CONFIG: Config = Config::EMPTY;

/// An operation for the worker, with copies of what it reads (the request, and the
/// output buffer: a single packet's commands are there) and writes, and its number.
struct Job {
    id: u64,
    op: Operation,
    request: Vec<u8>,
    out: Vec<u8>,
}

/// What the worker did: the job's number, the result, the output buffer it filled.
type Done = (u64, IoResult, Vec<u8>);

/// The device loop's operations: target ones on the worker thread, the store's here.
pub struct DesktopIo {
    jobs: Sender<Job>,
    done: Receiver<Done>,
    /// The number of the last job sent.
    sent: u64,
    /// The configuration store.
    pub store: DesktopStore,
}

impl DesktopIo {
    /// Starts the worker over `target`, which wakes the host through `events`.
    pub fn start<T: TargetIo + Send + 'static>(
        mut target: T,
        store: DesktopStore,
        events: Sender<Event>,
    ) -> std::io::Result<DesktopIo> {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (results, done) = mpsc::channel();
        thread::Builder::new()
            .name("target".into())
            .spawn(move || {
                for mut job in inbox {
                    let out = &mut job.out;
                    let result =
                        job.op
                            .perform(&NO_CONFIG, &job.request, out, &mut target, &mut NoStore);
                    if results.send((job.id, result, job.out)).is_err()
                        || events.send(Event::Wake).is_err()
                    {
                        return;
                    }
                }
            })?;
        Ok(DesktopIo {
            jobs,
            done,
            sent: 0,
            store,
        })
    }
}

impl Io for DesktopIo {
    async fn perform(
        &mut self,
        op: &Operation,
        config: &Config,
        request: &[u8],
        out: &mut [u8],
    ) -> IoResult {
        if !matches!(
            op,
            Operation::ReadTarget { .. } | Operation::WriteTarget { .. } | Operation::Target { .. }
        ) {
            return op.perform(
                config,
                request,
                out,
                &mut lwm2m_core::target::NoTarget,
                &mut self.store,
            );
        }
        self.sent = self.sent.wrapping_add(1);
        let job = Job {
            id: self.sent,
            op: *op,
            request: request.to_vec(),
            out: out.to_vec(),
        };
        if self.jobs.send(job).is_err() {
            return Err(ResultCode::InternalServerError);
        }
        let (result, mut filled) = Performed(&self.done, self.sent).await;
        // Only the bytes the operation reads into: the rest of `out` holds what earlier
        // operations of the request read.
        if let (Some(into), Some(from)) = (op.read_buffer(out), op.read_buffer(&mut filled)) {
            into.copy_from_slice(from);
        }
        result
    }
}

/// The result of job `.1`, once the worker gave it; the results of jobs given up before
/// (their link closed, a stop) are dropped on the way. Polled again when the host hands
/// the loop a wake-up ([`Event::Wake`]): it registers no waker of its own.
struct Performed<'a>(&'a Receiver<Done>, u64);

impl Future for Performed<'_> {
    type Output = (IoResult, Vec<u8>);

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.0.try_recv() {
                Ok((id, result, out)) if id == self.1 => return Poll::Ready((result, out)),
                Ok(_) => {}
                Err(TryRecvError::Empty) => return Poll::Pending,
                Err(TryRecvError::Disconnected) => {
                    return Poll::Ready((Err(ResultCode::InternalServerError), Vec::new()))
                }
            }
        }
    }
}
