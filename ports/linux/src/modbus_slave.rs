//! `--modbus-slave HOST:PORT`: the device serves Modbus TCP to a master (a PLC, a SCADA
//! system), a local side handler (spec decision 4): each read or write of the master
//! becomes a request of the device with the rights of one configured profile
//! (`--modbus-slave-profile`, anonymous by default), through the same access check as
//! any other, without taking, extending or ending the host session.
//!
//! The protocol — the register map (variable `id` is the block of holding registers
//! from `id × 32`), the side requests (`GET`/`PUT /1029/{id}/4`), the exceptions, the
//! checks of frames rmodbus lacks — is `transport_traits::modbus_slave`'s, which boards
//! serve over Modbus RTU; this is the TCP I/O around it. Any unit id is served (none is
//! a broadcast). The side requests of all masters are serialised, one at a time, like
//! the device's. At most [`MAX_MASTERS`] masters are connected; a frame once begun must
//! come whole within 5 s, and an answer be taken within 5 s.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use transport_traits::modbus_slave::{self, Exception, Framing, Response, MAX_TCP_FRAME};

use crate::{Event, Reply};

/// The MBAP header: transaction, protocol, length.
const MBAP: usize = modbus_slave::MBAP_LEN;
/// The largest Modbus TCP frame.
const MAX_FRAME: usize = MAX_TCP_FRAME;
/// How long a master may stay silent between two requests before its connection is
/// closed.
const IDLE: Duration = Duration::from_secs(300);
/// How long the rest of a frame may take once its first byte came, and an answer to be
/// taken by the master.
const FRAME: Duration = Duration::from_secs(5);
/// Masters connected at a time: another is closed at once.
pub const MAX_MASTERS: usize = 8;

/// What a master's request asks of the device: a request frame (method, path, payload)
/// with the rights of the side profile.
pub struct SideRequest {
    /// The request APDU.
    pub apdu: Vec<u8>,
    /// Where the response APDU goes.
    pub reply: Sender<Reply>,
    /// Set when the master was answered without it (the device took too long): the
    /// device loop drops it instead of running it late.
    pub given_up: Arc<AtomicBool>,
}

/// Serves Modbus TCP on `listener`, handing each request to the device loop through
/// `events` (one at a time), [`MAX_MASTERS`] masters at a time.
pub fn serve(listener: TcpListener, events: Sender<Event>) {
    let one_at_a_time = Arc::new(Mutex::new(()));
    let masters = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else {
            thread::sleep(Duration::from_millis(50));
            continue;
        };
        if masters.fetch_add(1, Ordering::AcqRel) >= MAX_MASTERS {
            masters.fetch_sub(1, Ordering::AcqRel);
            log::warn!("modbus slave: {MAX_MASTERS} masters connected, another refused");
            continue;
        }
        let events = events.clone();
        let lock = one_at_a_time.clone();
        let count = masters.clone();
        let spawned = thread::Builder::new().spawn(move || {
            if let Err(err) = master(stream, &events, &lock) {
                log::debug!("modbus slave: {err}");
            }
            count.fetch_sub(1, Ordering::AcqRel);
        });
        if spawned.is_err() {
            masters.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// One master's connection, until it closes.
fn master(mut stream: TcpStream, events: &Sender<Event>, lock: &Mutex<()>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(FRAME))?;
    let mut frame = [0u8; MAX_FRAME];
    loop {
        // Silence between requests may last; a frame, once begun, must come whole.
        stream.set_read_timeout(Some(IDLE))?;
        stream.read_exact(&mut frame[..1])?;
        stream.set_read_timeout(Some(FRAME))?;
        stream.read_exact(&mut frame[1..MBAP])?;
        let len = usize::from(u16::from_be_bytes([frame[4], frame[5]]));
        // The unit id and a PDU: at least a function, at most the protocol's.
        if frame[2..4] != [0, 0] || !(2..=MAX_FRAME - MBAP).contains(&len) {
            return Err(std::io::Error::other("not a Modbus TCP frame"));
        }
        stream.read_exact(&mut frame[MBAP..MBAP + len])?;
        let mut response = Vec::with_capacity(MAX_FRAME);
        answer(&frame[..MBAP + len], &mut response, events, lock);
        if !response.is_empty() {
            stream.write_all(&response)?;
        }
    }
}

/// The response to one whole frame (empty if none is due).
fn answer(frame: &[u8], response: &mut Vec<u8>, events: &Sender<Event>, lock: &Mutex<()>) {
    let mut out = Response::new();
    modbus_slave::answer(Framing::Tcp, frame, &mut out, |apdu| {
        side(events, lock, apdu)
    });
    response.clear();
    response.extend_from_slice(&out);
}

/// Runs `apdu` on the device as the side handler: its response APDU, or SERVER DEVICE
/// FAILURE if the device loop could not be reached.
fn side(events: &Sender<Event>, lock: &Mutex<()>, apdu: &[u8]) -> Result<Vec<u8>, Exception> {
    let _one = lock.lock().map_err(|_| Exception::DeviceFailure)?;
    let (reply, answer) = mpsc::channel();
    let given_up = Arc::new(AtomicBool::new(false));
    events
        .send(Event::Side(SideRequest {
            apdu: apdu.to_vec(),
            reply,
            given_up: given_up.clone(),
        }))
        .map_err(|_| Exception::DeviceFailure)?;
    // The device loop answers at once (`A8` while a request waits on the target): this
    // bound is for a loop that is gone or stuck.
    match answer.recv_timeout(Duration::from_secs(30)) {
        Ok(reply) => Ok(reply.response),
        Err(_) => {
            given_up.store(true, Ordering::Release);
            Err(Exception::DeviceFailure)
        }
    }
}

#[cfg(test)]
mod tests {
    //! From the review of the side handler: each failed before its fix.
    use super::*;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::mpsc::Receiver;

    /// The APDUs a device loop was sent.
    type Seen = Arc<Mutex<Vec<Vec<u8>>>>;

    /// A device loop that answers every side request with `response` and records the
    /// APDUs it was sent.
    fn responder(response: Vec<u8>) -> (Sender<Event>, Seen) {
        let (events, rx): (Sender<Event>, Receiver<Event>) = mpsc::channel();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        thread::spawn(move || {
            while let Ok(event) = rx.recv() {
                if let Event::Side(request) = event {
                    log.lock().unwrap().push(request.apdu.clone());
                    let _ = request.reply.send(Reply {
                        response: response.clone(),
                        close: None,
                    });
                }
            }
        });
        (events, seen)
    }

    fn respond(frame: &[u8], events: &Sender<Event>) -> Vec<u8> {
        let lock = Mutex::new(());
        let mut response = Vec::new();
        answer(frame, &mut response, events, &lock);
        response
    }

    /// Function 16 whose byte count (246) runs past the frame: rmodbus sliced past its
    /// end and panicked the master's thread. Now ILLEGAL DATA VALUE.
    #[test]
    fn a_write_whose_byte_count_overruns_the_frame_is_refused_without_a_panic() {
        let (events, seen) = responder(vec![0x00, 0x90, 0x00]);
        let frame = [0, 1, 0, 0, 0, 7, 1, 0x10, 0, 0, 0, 1, 0xF6];
        let response = catch_unwind(AssertUnwindSafe(|| respond(&frame, &events)))
            .expect("a hostile master's frame panics the handler");
        assert_eq!(response, [0, 1, 0, 0, 0, 3, 1, 0x90, 3]);
        assert!(seen.lock().unwrap().is_empty());
    }

    /// Function 16 of one register carrying 4 bytes: it became a 4-byte PUT answered as
    /// a write of one. Now ILLEGAL DATA VALUE, nothing sent to the device.
    #[test]
    fn a_write_whose_byte_count_is_not_twice_its_count_is_refused() {
        let (events, seen) = responder(vec![0x00, 0x90, 0x00]);
        let frame = [
            0, 1, 0, 0, 0, 11, 1, 0x10, 0, 32, 0, 1, 4, 0xDE, 0xAD, 0xBE, 0xEF,
        ];
        let response = respond(&frame, &events);
        assert!(seen.lock().unwrap().is_empty());
        assert_eq!(response, [0, 1, 0, 0, 0, 3, 1, 0x90, 3]);
    }

    /// Unit 0 was rmodbus's broadcast unit: a read of it was never answered.
    #[test]
    fn a_read_of_unit_0_is_answered() {
        let (events, _) = responder(vec![0x00, 0x12, 0x34, 0x90, 0x00]);
        let frame = [0, 1, 0, 0, 0, 6, 0, 0x03, 0, 32, 0, 1];
        assert_eq!(
            respond(&frame, &events),
            [0, 1, 0, 0, 0, 5, 0, 0x03, 2, 0x12, 0x34]
        );
    }

    /// While another request waits on the target the device answers `A8`: SERVER
    /// DEVICE BUSY, for the master to retry.
    #[test]
    fn a_busy_device_is_server_device_busy() {
        let (events, _) = responder(vec![0xA8, 0x90, 0x00]);
        let frame = [0, 1, 0, 0, 0, 6, 1, 0x03, 0, 32, 0, 1];
        assert_eq!(respond(&frame, &events), [0, 1, 0, 0, 0, 3, 1, 0x83, 6]);
    }

    fn threads() -> usize {
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// One thread per master connection, without limit: a hostile master exhausted the
    /// device's threads and file descriptors. Now [`MAX_MASTERS`].
    #[test]
    fn masters_connections_are_bounded() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let (events, _rx) = mpsc::channel::<Event>();
        thread::spawn(move || serve(listener, events));
        let before = threads();
        let idle: Vec<TcpStream> = (0..300)
            .map(|_| TcpStream::connect(address).unwrap())
            .collect();
        thread::sleep(Duration::from_millis(500));
        let grown = threads().saturating_sub(before);
        drop(idle);
        // The serving thread and its masters; tests running beside add a few.
        assert!(
            grown <= MAX_MASTERS + 8,
            "{grown} threads for 300 silent connections"
        );
    }
}
