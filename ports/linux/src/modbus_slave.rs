//! `--modbus-slave HOST:PORT`: the device serves Modbus TCP to a master (a PLC, a SCADA
//! system), a local side handler (spec decision 4): each read or write of the master
//! becomes a request of the device with the rights of one configured profile
//! (`--modbus-slave-profile`), through the same access check as any other, without
//! taking, extending or ending the host session.
//!
//! # Register map
//!
//! Variable `id` (object 1029) is the block of holding registers from `id × 32` (the
//! largest value, 64 bytes, is 32 registers): a read of function 3 at `id × 32` of
//! `n` registers answers the first `2n` bytes of `GET /1029/{id}/4` (zero-padded past
//! the value), a write of function 6 or 16 at `id × 32` of the value's whole registers
//! is `PUT /1029/{id}/4`. Registers are big-endian, as the value's bytes come (an
//! UINT32 is two registers, most significant first). A read or write that does not
//! start a block, is longer than the value, or reaches a variable the profile may not
//! read or write (`81`), that does not exist (`84`) or any other refusal answers the
//! exception ILLEGAL DATA ADDRESS; a target that failed (`A5`–`BB`) SERVER DEVICE
//! FAILURE; while another request waits on the target, SERVER DEVICE BUSY; other
//! functions ILLEGAL FUNCTION. Any unit id is served (none is a broadcast).
//!
//! Frames are parsed by rmodbus's server (`rmodbus::server::ModbusFrame`) after their
//! MBAP length, and a write's byte count against its count and the frame, are checked
//! here (ILLEGAL DATA VALUE otherwise); the side requests of all masters are serialised,
//! one at a time, like the device's. At most [`MAX_MASTERS`] masters are connected; a
//! frame once begun must come whole within 5 s, and an answer be taken within 5 s.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use rmodbus::server::{ModbusFrame, Read as FrameRead, Write as FrameWrite};
use rmodbus::{ErrorKind as RError, ModbusProto};

use lwm2m_core::wire::{Method, Path, Request, APDU_HEADER_LEN};

use crate::{Event, Reply};

/// Registers of a variable's block.
pub const BLOCK: u16 = 32;

/// The MBAP header: transaction, protocol, length.
const MBAP: usize = 6;
/// The largest Modbus TCP frame.
const MAX_FRAME: usize = 260;
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

/// Whether the write of `frame` (functions 15 and 16) carries the bytes its count says,
/// within the frame: rmodbus checks neither before it slices them.
fn counts_agree(frame: &[u8]) -> bool {
    match frame.get(MBAP + 1..) {
        Some([function @ (0x0F | 0x10), _, _, c0, c1, bytes, data @ ..]) => {
            let count = usize::from(u16::from_be_bytes([*c0, *c1]));
            let needed = if *function == 0x0F {
                count.div_ceil(8)
            } else {
                2 * count
            };
            usize::from(*bytes) == needed && data.len() == needed
        }
        // Shorter than a write's header: rmodbus refuses it. The other functions are of
        // a fixed size, which rmodbus checks.
        _ => true,
    }
}

/// The response to one whole frame (empty if none is due).
fn answer(frame: &[u8], response: &mut Vec<u8>, events: &Sender<Event>, lock: &Mutex<()>) {
    let unit = frame.get(MBAP).copied().unwrap_or(0);
    if !counts_agree(frame) {
        // ILLEGAL DATA VALUE, answered here: rmodbus would slice past the frame.
        if let (Some(head), Some(function)) = (frame.get(..4), frame.get(MBAP + 1)) {
            response.extend_from_slice(head);
            response.extend_from_slice(&[0, 3, unit, function | 0x80, 0x03]);
        }
        return;
    }
    // Every unit is this device: none is a broadcast.
    let mut parsed =
        ModbusFrame::new(unit, frame, ModbusProto::TcpUdp, response).with_broadcast_units(&[]);
    if parsed.parse().is_err() {
        response.clear();
        return;
    }
    if parsed.processing_required {
        let result = if parsed.readonly {
            read(&mut parsed, events, lock)
        } else {
            write(&mut parsed, events, lock)
        };
        if let Err(err) = result {
            let _ = parsed.set_modbus_error_if_unset(&err);
        }
    }
    if !parsed.response_required || parsed.finalize_response().is_err() {
        response.clear();
    }
}

/// A read of holding registers: `GET /1029/{id}/4`.
fn read(
    frame: &mut ModbusFrame<'_, Vec<u8>>,
    events: &Sender<Event>,
    lock: &Mutex<()>,
) -> Result<(), RError> {
    let holdings = frame.func == rmodbus::consts::ModbusFunction::GetHoldings;
    let result = match frame.get_external_read()? {
        FrameRead::Words(read) if holdings => (|| {
            let id = block(read.address)?;
            let value = side(events, lock, get_value(id))?;
            if read.buf.len() > value.len().next_multiple_of(2) {
                return Err(RError::IllegalDataAddress);
            }
            read.buf.fill(0);
            let n = value.len().min(read.buf.len());
            read.buf[..n].copy_from_slice(&value[..n]);
            Ok(())
        })(),
        _ => Err(RError::IllegalFunction),
    };
    frame.process_external_read(result)
}

/// A write of holding registers: `PUT /1029/{id}/4`.
fn write(
    frame: &mut ModbusFrame<'_, Vec<u8>>,
    events: &Sender<Event>,
    lock: &Mutex<()>,
) -> Result<(), RError> {
    let result = match frame.get_external_write()? {
        FrameWrite::Words(write) => (|| {
            let id = block(write.address)?;
            side(events, lock, put_value(id, write.data))?;
            Ok(())
        })(),
        FrameWrite::Bits(_) => Err(RError::IllegalFunction),
    };
    frame.process_external_write(result)
}

/// The variable whose block starts at `address`.
fn block(address: u16) -> Result<u16, RError> {
    if address.is_multiple_of(BLOCK) {
        Ok(address / BLOCK)
    } else {
        Err(RError::IllegalDataAddress)
    }
}

/// The request APDU of `method` on `/1029/{id}/4` (the variable's value) with
/// `payload`, encoded by the engine's own encoder.
fn value_apdu(method: Method, id: u16, payload: &[u8]) -> Vec<u8> {
    let request = Request::new(method, Path::new(1029, id, 4)).with_payload(payload);
    let mut apdu = vec![0; APDU_HEADER_LEN + request.frame_len()];
    let len = request.emit_apdu(&mut apdu).unwrap_or(0);
    apdu.truncate(len);
    apdu
}

fn get_value(id: u16) -> Vec<u8> {
    value_apdu(Method::Get, id, &[])
}

fn put_value(id: u16, value: &[u8]) -> Vec<u8> {
    value_apdu(Method::Put, id, value)
}

/// Runs `apdu` on the device as the side handler: the response's data, or the
/// exception its status is.
fn side(events: &Sender<Event>, lock: &Mutex<()>, apdu: Vec<u8>) -> Result<Vec<u8>, RError> {
    let _one = lock.lock().map_err(|_| RError::SlaveDeviceFailure)?;
    let (reply, answer) = mpsc::channel();
    let given_up = Arc::new(AtomicBool::new(false));
    events
        .send(Event::Side(SideRequest {
            apdu,
            reply,
            given_up: given_up.clone(),
        }))
        .map_err(|_| RError::SlaveDeviceFailure)?;
    // The device loop answers at once (`A8` while a request waits on the target): this
    // bound is for a loop that is gone or stuck.
    let response = match answer.recv_timeout(Duration::from_secs(30)) {
        Ok(reply) => reply.response,
        Err(_) => {
            given_up.store(true, Ordering::Release);
            return Err(RError::SlaveDeviceFailure);
        }
    };
    match response.as_slice() {
        [0x00, data @ .., 0x90, 0x00] => Ok(data.to_vec()),
        // Another request waits on the target: SERVER DEVICE BUSY, the master retries.
        [0xA8, ..] => Err(RError::SlaveDeviceBusy),
        // The target failed: the device is there, the value is not.
        [status, ..] if (0xA5..=0xBB).contains(status) => Err(RError::SlaveDeviceFailure),
        _ => Err(RError::IllegalDataAddress),
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
