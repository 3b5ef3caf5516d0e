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
//! FAILURE; other functions ILLEGAL FUNCTION. Any unit id is served.
//!
//! Frames are parsed by rmodbus's server (`rmodbus::server::ModbusFrame`) after their
//! MBAP length is checked here; the side requests of all masters are serialised, one
//! at a time, like the device's.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use rmodbus::server::{ModbusFrame, Read as FrameRead, Write as FrameWrite};
use rmodbus::{ErrorKind as RError, ModbusProto};

use crate::{Event, Reply};

/// Registers of a variable's block.
pub const BLOCK: u16 = 32;

/// The MBAP header: transaction, protocol, length.
const MBAP: usize = 6;
/// The largest Modbus TCP frame.
const MAX_FRAME: usize = 260;
/// How long a master may stay silent before its connection is closed.
const IDLE: Duration = Duration::from_secs(300);

/// What a master's request asks of the device: a request frame (method, path, payload)
/// with the rights of the side profile.
pub struct SideRequest {
    /// The request APDU.
    pub apdu: Vec<u8>,
    /// Where the response APDU goes.
    pub reply: Sender<Reply>,
}

/// Serves Modbus TCP on `listener`, handing each request to the device loop through
/// `events` (one at a time).
pub fn serve(listener: TcpListener, events: Sender<Event>) {
    let one_at_a_time = Arc::new(Mutex::new(()));
    for stream in listener.incoming() {
        let Ok(stream) = stream else {
            thread::sleep(Duration::from_millis(50));
            continue;
        };
        let events = events.clone();
        let lock = one_at_a_time.clone();
        thread::spawn(move || {
            if let Err(err) = master(stream, &events, &lock) {
                log::debug!("modbus slave: {err}");
            }
        });
    }
}

/// One master's connection, until it closes.
fn master(mut stream: TcpStream, events: &Sender<Event>, lock: &Mutex<()>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(IDLE))?;
    let mut frame = [0u8; MAX_FRAME];
    loop {
        stream.read_exact(&mut frame[..MBAP])?;
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
    let unit = frame.get(MBAP).copied().unwrap_or(0);
    let mut parsed = ModbusFrame::new(unit, frame, ModbusProto::TcpUdp, response);
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

/// The request APDU of `method` on `/1029/{id}/4` with `payload`.
fn apdu(method: u8, id: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![method];
    for part in [1029u16, id, 4] {
        frame.extend_from_slice(&part.to_be_bytes());
    }
    frame.extend_from_slice(payload);
    let ins = if method == 1 { 0xCA } else { 0xDA };
    let mut out = vec![0xA2, ins, 0, 0, frame.len() as u8];
    out.extend_from_slice(&frame);
    out
}

fn get_value(id: u16) -> Vec<u8> {
    apdu(1, id, &[])
}

fn put_value(id: u16, value: &[u8]) -> Vec<u8> {
    apdu(3, id, value)
}

/// Runs `apdu` on the device as the side handler: the response's data, or the
/// exception its status is.
fn side(events: &Sender<Event>, lock: &Mutex<()>, apdu: Vec<u8>) -> Result<Vec<u8>, RError> {
    let _one = lock.lock().map_err(|_| RError::SlaveDeviceFailure)?;
    let (reply, answer) = mpsc::channel();
    events
        .send(Event::Side(SideRequest { apdu, reply }))
        .map_err(|_| RError::SlaveDeviceFailure)?;
    let response = answer
        .recv_timeout(Duration::from_secs(30))
        .map_err(|_| RError::SlaveDeviceFailure)?
        .response;
    match response.as_slice() {
        [0x00, data @ .., 0x90, 0x00] => Ok(data.to_vec()),
        // The target failed: the device is there, the value is not.
        [status, ..] if (0xA5..=0xBB).contains(status) => Err(RError::SlaveDeviceFailure),
        _ => Err(RError::IllegalDataAddress),
    }
}
