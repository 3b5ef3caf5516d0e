//! The device loop every port runs: take the next request from the host side, hand it
//! to the engine, send the answer, sleep until the next request or the engine's next
//! deadline. A port implements [`Host`] (its links: WebSocket connections, the BLE and
//! NFC links, a serial line, side-handler mailboxes such as [`crate::mux::HostMux`]) and
//! [`Clock`], then calls [`run`] — or [`asynch::run`] on an async board — again after
//! each [`Stopped`] it decides to go on from.
//!
//! ```
//! use lwm2m_core::session::Session;
//! use lwm2m_core::{Channel, ChannelId, ChannelKind, Config, Device, Effect, FrameLimits, Instant};
//! use transport_traits::run::{run, Clock, Host, HostEvent, Stopped};
//! use transport_traits::{ErrorKind, ErrorType};
//! # use lwm2m_core::object::{Object, ResourceDef, Context, HandlerResult};
//! # use lwm2m_core::acl::Access;
//! # use lwm2m_core::wire::{Body, Request, ResultCode};
//! # struct Serial;
//! # impl Object for Serial {
//! #     fn id(&self) -> u16 { 3 }
//! #     fn resources(&self) -> &'static [ResourceDef] {
//! #         const T: &[ResourceDef] = &[ResourceDef::single(2).get(Access::Anyone).answers(3)];
//! #         T
//! #     }
//! #     fn handle(&mut self, _: &mut Context<'_>, _: &Request<'_>, body: &mut Body<'_>) -> HandlerResult {
//! #         body.push(b"SN1")?;
//! #         Ok(ResultCode::Ok)
//! #     }
//! # }
//!
//! /// One scripted link: a GET /3//2, then the link closes and the port stops.
//! struct Script { step: usize, answer: Vec<u8> }
//!
//! impl ErrorType for Script { type Error = ErrorKind; }
//!
//! impl Host for Script {
//!     fn wait(&mut self, _: &Session, _: Option<Instant>, buf: &mut [u8]) -> Result<HostEvent, ErrorKind> {
//!         self.step += 1;
//!         let get = [0xA2, 0xCA, 0, 0, 7, 1, 0, 3, 0xFF, 0xFF, 0, 2];
//!         Ok(match self.step {
//!             1 => {
//!                 buf[..get.len()].copy_from_slice(&get);
//!                 HostEvent::Request { channel: Channel::new(1, ChannelKind::Serial), len: get.len() }
//!             }
//!             2 => HostEvent::Closed(ChannelId(1)),
//!             _ => HostEvent::Stop,
//!         })
//!     }
//!
//!     fn reply(&mut self, _: ChannelId, frame: &[u8], _: Option<Effect>) -> Result<(), ErrorKind> {
//!         self.answer = frame.to_vec();
//!         Ok(())
//!     }
//! }
//!
//! struct Ticks(u64);
//! impl Clock for Ticks {
//!     fn now(&mut self) -> Instant { self.0 += 1; Instant::from_millis(self.0) }
//! }
//!
//! let limits = FrameLimits { max_request: 64, max_response: 64 };
//! let mut device = Device::new((Serial,), Config::default(), Config::reset, limits);
//! let mut host = Script { step: 0, answer: Vec::new() };
//! let (mut rx, mut tx) = ([0u8; 69], [0u8; 64]);
//! let stopped = run(&mut device, &mut host, &mut Ticks(0), &mut rx, &mut tx);
//! assert_eq!(stopped, Ok(Stopped::Asked));
//! assert_eq!(host.answer, b"\x00SN1\x90\x00");
//! ```

use lwm2m_core::object::ObjectSet;
use lwm2m_core::session::Session;
use lwm2m_core::storage::ConfigStore;
use lwm2m_core::target::TargetIo;
use lwm2m_core::{Channel, ChannelId, Device, Effect, Instant};
use zeroize::Zeroize;

use crate::ErrorType;

/// What the host side has for the device loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HostEvent {
    /// A request APDU of `len` bytes from `channel`, copied into the buffer.
    Request {
        /// The link it came on.
        channel: Channel,
        /// Its length.
        len: usize,
    },
    /// A request of a local side handler (script engine, Modbus slave), run with the
    /// rights of `profile` outside the session.
    Side {
        /// The side handler's channel (answers go back to it).
        channel: Channel,
        /// The profile whose rights apply.
        profile: u16,
        /// Its length.
        len: usize,
    },
    /// The link of this channel closed: its session, if any, ends.
    Closed(ChannelId),
    /// The deadline passed without an event.
    Timeout,
    /// The port asks the loop to return ([`Stopped::Asked`]).
    Stop,
}

/// The port's host side: its links, multiplexed.
pub trait Host: ErrorType {
    /// Waits for the next event until `deadline` (`None`: no deadline), copying a
    /// request into `buf`. `session` is the engine's session at this moment: who owns
    /// the device, which a port that creates links at run time needs to give them ids
    /// ([`crate::channels::ChannelIds`]) and to decide which silent link it may close.
    fn wait(
        &mut self,
        session: &Session,
        deadline: Option<Instant>,
        buf: &mut [u8],
    ) -> Result<HostEvent, Self::Error>;

    /// Sends the answer to the request last received from `channel`; `effect` is what
    /// the device does right after it (on a reboot, a port closes the link).
    fn reply(
        &mut self,
        channel: ChannelId,
        frame: &[u8],
        effect: Option<Effect>,
    ) -> Result<(), Self::Error>;
}

/// The port's monotonic clock.
pub trait Clock {
    /// Now.
    fn now(&mut self) -> Instant;
}

/// Why [`run`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Stopped {
    /// The host said [`HostEvent::Stop`].
    Asked,
    /// A request asked for this, and its answer was sent: the port acts (a reboot
    /// rebuilds the device, a factory reset may reset peripherals) and calls [`run`]
    /// again.
    Effect(Effect),
}

/// Runs `device` until the host stops it or a request has an [`Effect`]. `rx` holds one
/// request APDU (the advertised request size plus the 5-byte header), `tx` one answer;
/// both are wiped whole after every request (they carry passwords and keys). An effect is
/// returned even when its answer could not be sent: the device already acted.
pub fn run<O, T, S, H, C>(
    device: &mut Device<O, T, S>,
    host: &mut H,
    clock: &mut C,
    rx: &mut [u8],
    tx: &mut [u8],
) -> Result<Stopped, H::Error>
where
    O: ObjectSet,
    T: TargetIo,
    S: ConfigStore,
    H: Host,
    C: Clock,
{
    let mut deadline = device.poll(clock.now());
    loop {
        let event = host.wait(device.session(), deadline, rx)?;
        match on_event(device, clock, event, rx, tx, &mut deadline) {
            Step::Wait => {}
            Step::Stop(stopped) => return Ok(stopped),
            Step::Reply {
                channel,
                len,
                effect,
            } => {
                let sent = host.reply(channel, tx.get(..len).unwrap_or_default(), effect);
                if let Some(stopped) = replied(tx, effect, sent)? {
                    return Ok(stopped);
                }
            }
        }
    }
}

/// After an answer was sent (or not): wipes `tx`, and returns to the port on an effect
/// even when the answer could not be sent (the device already acted).
fn replied<E>(
    tx: &mut [u8],
    effect: Option<Effect>,
    sent: Result<(), E>,
) -> Result<Option<Stopped>, E> {
    tx.zeroize();
    match effect {
        Some(effect) => Ok(Some(Stopped::Effect(effect))),
        None => sent.map(|()| None),
    }
}

/// What the loop does after an event.
enum Step {
    Wait,
    Reply {
        channel: ChannelId,
        len: usize,
        effect: Option<Effect>,
    },
    Stop(Stopped),
}

/// A request the host delivered: who from, with whose rights, how long.
struct Arrived {
    channel: Channel,
    /// The side handler's profile; `None` for a request of a link.
    side: Option<u16>,
    len: usize,
}

/// The part of the loop that does no I/O for an event, shared by the blocking and the
/// async loop: a request to run, or what the loop does about any other event.
fn arrived<O, T, S, C>(
    device: &mut Device<O, T, S>,
    clock: &mut C,
    event: HostEvent,
    deadline: &mut Option<Instant>,
) -> Result<Arrived, Step>
where
    O: ObjectSet,
    T: TargetIo,
    S: ConfigStore,
    C: Clock,
{
    match event {
        HostEvent::Request { channel, len } => Ok(Arrived {
            channel,
            side: None,
            len,
        }),
        HostEvent::Side {
            channel,
            profile,
            len,
        } => Ok(Arrived {
            channel,
            side: Some(profile),
            len,
        }),
        HostEvent::Closed(channel) => {
            device.channel_closed(channel);
            *deadline = device.next_deadline();
            Err(Step::Wait)
        }
        HostEvent::Timeout => {
            *deadline = device.poll(clock.now());
            Err(Step::Wait)
        }
        HostEvent::Stop => Err(Step::Stop(Stopped::Asked)),
    }
}

/// What the blocking loop does after an event: the request run to its end.
fn on_event<O, T, S, C>(
    device: &mut Device<O, T, S>,
    clock: &mut C,
    event: HostEvent,
    rx: &mut [u8],
    tx: &mut [u8],
    deadline: &mut Option<Instant>,
) -> Step
where
    O: ObjectSet,
    T: TargetIo,
    S: ConfigStore,
    C: Clock,
{
    let Arrived { channel, side, len } = match arrived(device, clock, event, deadline) {
        Ok(request) => request,
        Err(step) => return step,
    };
    let now = clock.now();
    let len = unsealed(device, channel, side, rx, len);
    let request = rx.get(..len).unwrap_or_default();
    let outcome = match side {
        None => device.handle(channel, request, now, tx),
        Some(profile) => device.handle_side(channel, profile, request, now, tx),
    };
    rx.zeroize();
    *deadline = outcome.next_deadline;
    Step::Reply {
        channel: channel.id,
        len: outcome.len,
        effect: outcome.effect,
    }
}

/// A tunnel request of a link opened in place ([`Device::unseal`]): the length of the
/// request to run.
fn unsealed<O, T, S>(
    device: &mut Device<O, T, S>,
    channel: Channel,
    side: Option<u16>,
    rx: &mut [u8],
    len: usize,
) -> usize
where
    O: ObjectSet,
    T: TargetIo,
    S: ConfigStore,
{
    match (side, rx.get_mut(..len)) {
        (None, Some(request)) => device.unseal(channel, request),
        _ => len,
    }
}

/// The async device loop (feature `async`), for boards whose links are async (embassy).
///
/// A request that waits on an operation ([`lwm2m_core::io`]) is not blocked on: the loop
/// awaits the port's [`asynch::Io`] and, meanwhile, keeps waiting on the host, answering
/// every request that arrives `A8` (busy) at once (the NFC SELECT `90 00`). The timers run
/// again as soon as the operation completes; as every request is answered `A8` until
/// then, a session that timed out meanwhile ends before anybody can tell. If the waiting
/// request's link closes meanwhile, the request is given up once the operation is done
/// (nobody to answer); a [`HostEvent::Stop`] drops the operation at once.
#[cfg(feature = "async")]
pub mod asynch {
    use super::*;
    use core::pin::pin;
    use embassy_futures::select::{select, Either};
    use lwm2m_core::io::{IoResult, Operation};
    use lwm2m_core::wire::{is_nfc_select, STATUS_WORD_OK};
    use lwm2m_core::Config;

    /// The port's host side, async: like [`super::Host`], each wait and reply awaited.
    ///
    /// `wait` must be cancel-safe: while a request waits on an operation, the loop waits
    /// on the host beside the operation and drops that wait when the operation completes
    /// first. Meanwhile `buf` may be shorter than a request (the loop answers `A8`
    /// without reading it): a longer request is reported with `len` 0, as
    /// [`crate::mux::MuxHost`] does.
    #[allow(async_fn_in_trait)]
    pub trait Host: ErrorType {
        /// Waits for the next event until `deadline`; see [`super::Host::wait`].
        async fn wait(
            &mut self,
            session: &Session,
            deadline: Option<Instant>,
            buf: &mut [u8],
        ) -> Result<HostEvent, Self::Error>;

        /// Sends the answer; see [`super::Host::reply`].
        async fn reply(
            &mut self,
            channel: ChannelId,
            frame: &[u8],
            effect: Option<Effect>,
        ) -> Result<(), Self::Error>;
    }

    /// The port's clock, able to wait: what an async host races its links against
    /// (on embassy, an `embassy_time::Timer` at the deadline).
    #[allow(async_fn_in_trait)]
    pub trait Alarm: Clock {
        /// Completes once `deadline` has come (at once if it has passed).
        async fn at(&mut self, deadline: Instant);
    }

    /// The port's target and store, async: performs the operation a request waits on
    /// ([`Operation::perform`] is the blocking equivalent).
    #[allow(async_fn_in_trait)]
    pub trait Io {
        /// Performs `op`: a target read or command fills [`Operation::read_buffer`] of
        /// `out` (a command whose answer is of the target's length with its length in
        /// the area's last two bytes, as [`Operation::perform`] writes it: performing
        /// the operation with it and copying the area is enough), a
        /// write sends [`Operation::write_data`] of `request`, a save stores `config`,
        /// a blob append stores [`Operation::write_data`] of `request` in the blob, a
        /// blob clear empties it ([`lwm2m_core::blob`]). [`Operation`] grows: an
        /// implementation answers the kinds it does not know with
        /// [`Operation::perform`] over a blocking store, or `A1`.
        async fn perform(
            &mut self,
            op: &Operation,
            config: &Config,
            request: &[u8],
            out: &mut [u8],
        ) -> IoResult;
    }

    /// A blocking target and store used from the async loop (a board whose links are
    /// async but whose target or flash driver is not): every operation, blob ones
    /// included, through [`Operation::perform`].
    #[derive(Debug, Default)]
    pub struct BlockingIo<T, S> {
        /// The target.
        pub target: T,
        /// The configuration store.
        pub store: S,
    }

    impl<T: TargetIo, S: ConfigStore> Io for BlockingIo<T, S> {
        async fn perform(
            &mut self,
            op: &Operation,
            config: &Config,
            request: &[u8],
            out: &mut [u8],
        ) -> IoResult {
            op.perform(config, request, out, &mut self.target, &mut self.store)
        }
    }

    /// The answer to any request while another waits on an operation: `A8`.
    const BUSY: [u8; 3] = [0xA8, 0x90, 0x00];

    /// [`super::run`] over an async host; the operations requests wait on are performed
    /// by `io` (the device's own target and store are not used).
    pub async fn run<O, T, S, H, I, C>(
        device: &mut Device<O, T, S>,
        host: &mut H,
        io: &mut I,
        clock: &mut C,
        rx: &mut [u8],
        tx: &mut [u8],
    ) -> Result<Stopped, H::Error>
    where
        O: ObjectSet,
        T: TargetIo,
        S: ConfigStore,
        H: Host,
        I: Io,
        C: Clock,
    {
        let mut deadline = device.poll(clock.now());
        loop {
            let event = host.wait(device.session(), deadline, rx).await?;
            let Arrived { channel, side, len } = match arrived(device, clock, event, &mut deadline)
            {
                Ok(request) => request,
                Err(super::Step::Stop(stopped)) => return Ok(stopped),
                Err(_) => continue,
            };
            let now = clock.now();
            let len = super::unsealed(device, channel, side, rx, len);
            let request = rx.get(..len).unwrap_or_default();
            let mut step = match side {
                None => device.start(channel, request, now, tx),
                Some(profile) => device.start_side(channel, profile, request, now, tx),
            };
            let outcome = loop {
                let op = match step {
                    lwm2m_core::Step::Done(outcome) => break Some(outcome),
                    lwm2m_core::Step::Pending(op) => op,
                };
                let result = match beside(device, host, io, &op, request, tx).await {
                    Ok(Waited::Done(result)) => result,
                    // Its link closed: the device gave the request up, nobody to answer.
                    Ok(Waited::Gone) => break None,
                    Ok(Waited::Stop) => {
                        give_up(device, rx, tx);
                        return Ok(Stopped::Asked);
                    }
                    Err(err) => {
                        give_up(device, rx, tx);
                        return Err(err);
                    }
                };
                step = device.resume(result, request, clock.now(), tx);
            };
            rx.zeroize();
            let Some(outcome) = outcome else {
                tx.zeroize();
                deadline = device.next_deadline();
                continue;
            };
            deadline = outcome.next_deadline;
            let frame = tx.get(..outcome.len).unwrap_or_default();
            let sent = host.reply(channel.id, frame, outcome.effect).await;
            if let Some(stopped) = replied(tx, outcome.effect, sent)? {
                return Ok(stopped);
            }
        }
    }

    /// The operation was dropped unfinished: the device gives the request up rather than
    /// wait forever, and the buffers are wiped.
    fn give_up<O, T, S>(device: &mut Device<O, T, S>, rx: &mut [u8], tx: &mut [u8])
    where
        O: ObjectSet,
        T: TargetIo,
        S: ConfigStore,
    {
        device.cancel();
        rx.zeroize();
        tx.zeroize();
    }

    /// How the wait beside an operation ended.
    enum Waited {
        /// The operation completed with this result.
        Done(IoResult),
        /// The link of the waiting request closed: the device gave the request up.
        Gone,
        /// The host asked the loop to stop (the operation is dropped unfinished).
        Stop,
    }

    /// Performs `op` while answering the host's requests `A8` (the NFC SELECT `90 00`); a
    /// link closed meanwhile that the device still knows is closed in the device once the
    /// operation is done.
    async fn beside<O, T, S, H, I>(
        device: &mut Device<O, T, S>,
        host: &mut H,
        io: &mut I,
        op: &Operation,
        request: &[u8],
        tx: &mut [u8],
    ) -> Result<Waited, H::Error>
    where
        O: ObjectSet,
        T: TargetIo,
        S: ConfigStore,
        H: Host,
        I: Io,
    {
        // The owner's link and the waiting request's, at most.
        let mut closed: [Option<ChannelId>; 2] = [None, None];
        let ended = {
            let shared: &Device<O, T, S> = device;
            let mut perform = pin!(io.perform(op, shared.config(), request, tx));
            // Room for the NFC SELECT; a longer request is answered without being read.
            let mut scratch = [0u8; 16];
            let ended = loop {
                let wait = host.wait(shared.session(), None, &mut scratch);
                let event = match select(perform.as_mut(), wait).await {
                    Either::First(result) => break Ok(Some(result)),
                    Either::Second(Ok(event)) => event,
                    Either::Second(Err(err)) => break Err(err),
                };
                match event {
                    HostEvent::Request { channel, len } | HostEvent::Side { channel, len, .. } => {
                        let select = scratch.get(..len).is_some_and(is_nfc_select);
                        let answer: &[u8] = if select { &STATUS_WORD_OK } else { &BUSY };
                        if let Err(err) = host.reply(channel.id, answer, None).await {
                            break Err(err);
                        }
                    }
                    HostEvent::Closed(id) if shared.channel_in_use(id) => {
                        if !closed.contains(&Some(id)) {
                            if let Some(slot) = closed.iter_mut().find(|c| c.is_none()) {
                                *slot = Some(id);
                            }
                        }
                    }
                    HostEvent::Stop => break Ok(None),
                    HostEvent::Closed(_) | HostEvent::Timeout => {}
                }
                scratch.zeroize();
            };
            scratch.zeroize();
            ended
        };
        // On every way out: a link closed meanwhile is closed in the device, or it would
        // keep owning the session (and a new link on its id would inherit it).
        for id in closed.into_iter().flatten() {
            device.channel_closed(id);
        }
        let result = match ended? {
            Some(result) => result,
            None => return Ok(Waited::Stop),
        };
        Ok(match device.pending() {
            Some(_) => Waited::Done(result),
            None => Waited::Gone,
        })
    }
}
