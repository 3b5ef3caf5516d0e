//! The Modbus-slave side handler (feature `modbus-slave`): the device serves Modbus to a
//! master (a PLC, a SCADA system), a local side handler (spec decision 4). Each read or
//! write of the master becomes a request of the device with the rights of one profile
//! its port configures, through the same access check as any other, without taking,
//! extending or ending the host session ([`crate::run::HostEvent::Side`]).
//!
//! This module is the protocol, without I/O and without heap: a request frame in, the
//! side request it asks for ([`request`]), then the device's response APDU to that
//! request in, the Modbus response out ([`respond`]). The desktop port serves it over
//! Modbus TCP (`port-linux --modbus-slave`), a board over Modbus RTU on a UART of its
//! own ([`rtu`]: the frames of a byte stream, and with the feature `async` the side link
//! [`rtu::RtuSlave`] beside the board's host link, [`crate::side::Beside`]).
//!
//! # Register map
//!
//! Variable `id` (object 1029) is the block of holding registers from `id × 32`
//! ([`BLOCK`]; the largest value, 64 bytes, is 32 registers): a read of function 3 at
//! `id × 32` of `n` registers answers the first `2n` bytes of `GET /1029/{id}/4`
//! (zero-padded past the value), a write of function 6 or 16 at `id × 32` of the
//! value's whole registers is `PUT /1029/{id}/4`. Registers are big-endian, as the
//! value's bytes come (an UINT32 is two registers, most significant first). A read or
//! write that does not start a block, is longer than the value (or than a block), or
//! reaches a variable the profile may not read or write (`81`), that does not exist
//! (`84`) or any other refusal answers the exception ILLEGAL DATA ADDRESS; a target that
//! failed (`A5`–`BB`) SERVER DEVICE FAILURE; while another request waits on the
//! target (`A8`), SERVER DEVICE BUSY; other functions ILLEGAL FUNCTION; a read or write
//! of no register ILLEGAL DATA VALUE.
//!
//! # Framing
//!
//! [`Framing::Tcp`]: the MBAP header, whose length must be the frame's; every unit id
//! is this device, none is a broadcast. [`Framing::Rtu`]: `unit | PDU | CRC-16`; a frame
//! with a bad CRC or for another unit is not answered, unit 0 is a broadcast (a write is
//! performed and not answered, a read ignored).
//!
//! Frames are parsed by rmodbus's server (`rmodbus::server::ModbusFrame`) once checked
//! here for what rmodbus does not check before it slices them: the MBAP length against
//! the frame, a write's byte count against its count and against the frame (ILLEGAL
//! DATA VALUE otherwise); a function of 128 or more, whose exception rmodbus would
//! compute with an overflow, is ILLEGAL FUNCTION. No input panics.

use lwm2m_core::wire::{Method, Path, Request, APDU_HEADER_LEN, FRAME_HEADER_LEN};
use rmodbus::consts::ModbusFunction;
use rmodbus::server::{ModbusFrame, Read as FrameRead, Write as FrameWrite};
use rmodbus::{ErrorKind as RError, ModbusProto};

pub mod rtu;

/// Registers of a variable's block.
pub const BLOCK: u16 = 32;

/// The MBAP header of a Modbus TCP frame: transaction, protocol, length.
pub const MBAP_LEN: usize = 6;

/// The largest Modbus TCP frame: the MBAP header, the unit, a PDU of 253 bytes.
pub const MAX_TCP_FRAME: usize = 260;

/// The largest Modbus RTU frame: the unit, a PDU of 253 bytes, the CRC.
pub const MAX_RTU_FRAME: usize = 256;

/// The largest response of either framing.
pub const MAX_RESPONSE: usize = MAX_TCP_FRAME;

/// Where a response is built.
pub type Response = heapless::Vec<u8, MAX_RESPONSE>;

/// The largest side request APDU of the register map: a PUT of a whole block.
pub const MAX_SIDE_APDU: usize = APDU_HEADER_LEN + FRAME_HEADER_LEN + 2 * BLOCK as usize;

/// The variable's value, resource 4 of object 1029.
const VALUE: Path = Path::new(1029, 0, 4);

/// The CRC of RTU frames: CRC-16/MODBUS, bit by bit (no table in flash).
const CRC: crc::Crc<u16, crc::NoTable> = crc::Crc::<u16, crc::NoTable>::new(&crc::CRC_16_MODBUS);

/// How frames come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Framing {
    /// Modbus TCP: every unit id is this device, none a broadcast.
    Tcp,
    /// Modbus RTU, this device being unit `unit` (1 to 247); unit 0 is a broadcast.
    Rtu {
        /// The device's address on the line.
        unit: u8,
    },
}

impl Framing {
    fn proto(self) -> ModbusProto {
        match self {
            Framing::Tcp => ModbusProto::TcpUdp,
            Framing::Rtu { .. } => ModbusProto::Rtu,
        }
    }

    /// Where the unit id is, and the function after it.
    fn unit_at(self) -> usize {
        match self {
            Framing::Tcp => MBAP_LEN,
            Framing::Rtu { .. } => 0,
        }
    }

    /// The PDU of `frame` (function and data), its header and CRC left out.
    fn pdu(self, frame: &[u8]) -> Option<&[u8]> {
        match self {
            Framing::Tcp => frame.get(MBAP_LEN + 1..),
            Framing::Rtu { .. } => frame.get(1..frame.len().checked_sub(2)?),
        }
    }

    /// Whether `frame` is whole and intact as far as its framing says: an MBAP length
    /// that is the frame's (a unit and a function at least), or a good CRC.
    fn intact(self, frame: &[u8]) -> bool {
        match self {
            Framing::Tcp => match frame {
                [_, _, 0, 0, l0, l1, _, _, ..] => {
                    usize::from(u16::from_be_bytes([*l0, *l1])) == frame.len() - MBAP_LEN
                }
                _ => false,
            },
            Framing::Rtu { .. } => crc_ok(frame),
        }
    }
}

/// Whether `frame` ends with the CRC of the bytes before (and holds more than a CRC).
fn crc_ok(frame: &[u8]) -> bool {
    match frame.len().checked_sub(2) {
        Some(end @ 2..) => frame.get(end..) == Some(&CRC.checksum(&frame[..end]).to_le_bytes()),
        _ => false,
    }
}

/// A Modbus exception the slave answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Exception {
    /// 01: a function the register map has no use for.
    IllegalFunction,
    /// 02: no variable the profile may read or write there, of that length.
    IllegalDataAddress,
    /// 03: a count the frame contradicts.
    IllegalDataValue,
    /// 04: the target failed, or the device could not be reached.
    DeviceFailure,
    /// 06: another request waits on the target; the master retries.
    DeviceBusy,
}

impl Exception {
    /// Its code on the wire.
    pub const fn code(self) -> u8 {
        match self {
            Exception::IllegalFunction => 0x01,
            Exception::IllegalDataAddress => 0x02,
            Exception::IllegalDataValue => 0x03,
            Exception::DeviceFailure => 0x04,
            Exception::DeviceBusy => 0x06,
        }
    }

    fn rmodbus(self) -> RError {
        match self {
            Exception::IllegalFunction => RError::IllegalFunction,
            Exception::IllegalDataAddress => RError::IllegalDataAddress,
            Exception::IllegalDataValue => RError::IllegalDataValue,
            Exception::DeviceFailure => RError::SlaveDeviceFailure,
            Exception::DeviceBusy => RError::SlaveDeviceBusy,
        }
    }
}

/// The data of the device's response APDU to a side request, or the exception its
/// status is: `00` its data, `A8` (busy) SERVER DEVICE BUSY, a target's failure
/// (`A5`–`BB`) SERVER DEVICE FAILURE, anything else (a refusal, a malformed answer)
/// ILLEGAL DATA ADDRESS.
pub fn outcome(response: &[u8]) -> Result<&[u8], Exception> {
    match response {
        [0x00, data @ .., 0x90, 0x00] => Ok(data),
        [0xA8, ..] => Err(Exception::DeviceBusy),
        [status, ..] if (0xA5..=0xBB).contains(status) => Err(Exception::DeviceFailure),
        _ => Err(Exception::IllegalDataAddress),
    }
}

/// The side request a master's frame asks for: `GET` or `PUT /1029/{id}/4`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SideRequest {
    method: Method,
    variable: u16,
    /// Where the written registers' bytes are in the frame (`at`, `len`).
    data: (u16, u16),
}

impl SideRequest {
    /// The variable it reads or writes.
    pub const fn variable(&self) -> u16 {
        self.variable
    }

    /// Whether it writes.
    pub fn writes(&self) -> bool {
        self.method == Method::Put
    }

    /// The length of its APDU.
    pub const fn apdu_len(&self) -> usize {
        APDU_HEADER_LEN + FRAME_HEADER_LEN + self.data.1 as usize
    }

    /// Writes its APDU into `apdu`, the payload of a write taken from `frame` (the frame
    /// [`request`] was given): its length, `None` if `apdu` is too short.
    pub fn emit(&self, frame: &[u8], apdu: &mut [u8]) -> Option<usize> {
        let (at, len) = (usize::from(self.data.0), usize::from(self.data.1));
        let payload = frame.get(at..at.checked_add(len)?)?;
        let path = Path::new(VALUE.object, self.variable, VALUE.resource);
        Request::new(self.method, path)
            .with_payload(payload)
            .emit_apdu(apdu)
            .ok()
    }
}

/// What a request frame asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Action {
    /// Run this side request on the device, then answer with [`respond`].
    Side(SideRequest),
    /// Send the response built (an exception), at once.
    Answer,
    /// Send nothing: another unit's frame, a broadcast read, a broken frame.
    Silent,
}

/// What the whole `frame` (as [`Framing`] delimits it) asks: a side request, or the
/// response built into `out` at once, or nothing.
pub fn request(framing: Framing, frame: &[u8], out: &mut Response) -> Action {
    out.clear();
    if !framing.intact(frame) {
        return Action::Silent;
    }
    let Some((unit, broadcast)) = addressed(framing, frame) else {
        return Action::Silent;
    };
    let refused = match framing.pdu(frame) {
        // A function of 128 or more: rmodbus's exception code (the function + 0x80)
        // would overflow.
        Some([function, ..]) if *function >= 0x80 => Some(Exception::IllegalFunction),
        // rmodbus would slice past the frame.
        _ if !counts_agree(framing, frame) => Some(Exception::IllegalDataValue),
        _ => None,
    };
    if let Some(refused) = refused {
        if !broadcast {
            exception(framing, frame, refused, out);
        }
        return finished(out);
    }
    let mut parsed = parse(framing, unit, frame, out);
    if parsed.parse().is_err() {
        parsed.response.clear();
        return Action::Silent;
    }
    if parsed.processing_required {
        let side = match parsed.readonly {
            true => read_request(&mut parsed),
            false => write_request(framing, &mut parsed),
        };
        match side {
            Ok(side) => {
                parsed.response.clear();
                return Action::Side(side);
            }
            Err(err) if err.is_modbus_error() => {
                let _ = parsed.set_modbus_error_if_unset(&err);
            }
            // No room for the response (never with `Response`): nothing sent.
            Err(_) => {
                parsed.response.clear();
                return Action::Silent;
            }
        }
    }
    finalize(parsed);
    finished(out)
}

/// The Modbus response to `frame` (the frame whose [`request`] asked for a side
/// request) once the device answered it: `result` is the device's response APDU through
/// [`outcome`], or the exception the port met reaching the device. Built into `out`,
/// empty when nothing is to be sent (a broadcast write).
pub fn respond(
    framing: Framing,
    frame: &[u8],
    result: Result<&[u8], Exception>,
    out: &mut Response,
) {
    // The frame checked as `request` checked it: a frame that asks for no side request
    // is answered as it asked.
    let Action::Side(_) = request(framing, frame, out) else {
        return;
    };
    let Some((unit, _)) = addressed(framing, frame) else {
        return;
    };
    let mut parsed = parse(framing, unit, frame, out);
    if parsed.parse().is_err() || !parsed.processing_required {
        parsed.response.clear();
        return;
    }
    let done = match parsed.readonly {
        true => {
            let value = match parsed.get_external_read() {
                Ok(FrameRead::Words(read)) => match result {
                    Ok(value) if read.buf.len() <= value.len().next_multiple_of(2) => {
                        read.buf.fill(0);
                        let n = value.len().min(read.buf.len());
                        read.buf[..n].copy_from_slice(&value[..n]);
                        Ok(())
                    }
                    Ok(_) => Err(RError::IllegalDataAddress),
                    Err(exception) => Err(exception.rmodbus()),
                },
                Ok(FrameRead::Bits(_)) => Err(RError::IllegalFunction),
                Err(err) => Err(err),
            };
            parsed.process_external_read(value)
        }
        false => parsed.process_external_write(result.map(|_| ()).map_err(Exception::rmodbus)),
    };
    match done {
        Ok(()) => {}
        Err(err) if err.is_modbus_error() => {
            let _ = parsed.set_modbus_error_if_unset(&err);
        }
        Err(_) => {
            parsed.response.clear();
            return;
        }
    }
    finalize(parsed);
}

/// [`request`] then [`respond`], the side request run by `side` (its APDU in, the
/// device's response APDU out, or the exception the port met reaching the device):
/// what a port that blocks on the device calls for each frame. The response is built
/// into `out` (empty: nothing to send).
pub fn answer<R: AsRef<[u8]>>(
    framing: Framing,
    frame: &[u8],
    out: &mut Response,
    side: impl FnOnce(&[u8]) -> Result<R, Exception>,
) {
    let Action::Side(request) = request(framing, frame, out) else {
        return;
    };
    let mut apdu = [0u8; MAX_SIDE_APDU];
    let response = request
        .emit(frame, &mut apdu)
        .ok_or(Exception::IllegalDataAddress)
        .and_then(|len| side(&apdu[..len]));
    match &response {
        Ok(response) => respond(framing, frame, outcome(response.as_ref()), out),
        Err(exception) => respond(framing, frame, Err(*exception), out),
    }
}

/// The unit `frame` is for, as rmodbus is told it (this device's), and whether it is a
/// broadcast; `None` if it is another unit's.
fn addressed(framing: Framing, frame: &[u8]) -> Option<(u8, bool)> {
    let unit = *frame.get(framing.unit_at())?;
    match framing {
        Framing::Tcp => Some((unit, false)),
        Framing::Rtu { unit: 0 } => None,
        Framing::Rtu { unit: ours } if unit == ours => Some((ours, false)),
        Framing::Rtu { unit: ours } => (unit == 0).then_some((ours, true)),
    }
}

/// rmodbus's frame processor over `frame`, building into `out`. Broadcasts are unit 0
/// on RTU, none on TCP.
fn parse<'a>(
    framing: Framing,
    unit: u8,
    frame: &'a [u8],
    out: &'a mut Response,
) -> ModbusFrame<'a, Response> {
    let broadcast: &'static [u8] = match framing {
        Framing::Tcp => &[],
        Framing::Rtu { .. } => &[0],
    };
    ModbusFrame::new(unit, frame, framing.proto(), out).with_broadcast_units(broadcast)
}

/// The response rmodbus built, with its CRC (RTU); dropped if none is due.
fn finalize(mut parsed: ModbusFrame<'_, Response>) {
    if !parsed.response_required || parsed.finalize_response().is_err() {
        parsed.response.clear();
    }
}

fn finished(out: &Response) -> Action {
    match out.is_empty() {
        true => Action::Silent,
        false => Action::Answer,
    }
}

/// `exception` in answer to `frame`, built here (for a frame rmodbus is not given).
fn exception(framing: Framing, frame: &[u8], exception: Exception, out: &mut Response) {
    out.clear();
    let at = framing.unit_at();
    let (Some(&unit), Some(&function)) = (frame.get(at), frame.get(at + 1)) else {
        return;
    };
    let pdu = [unit, function | 0x80, exception.code()];
    let built = match framing {
        Framing::Tcp => out
            .extend_from_slice(frame.get(..4).unwrap_or_default())
            .and_then(|()| out.extend_from_slice(&[0, 3]))
            .and_then(|()| out.extend_from_slice(&pdu)),
        Framing::Rtu { .. } => out
            .extend_from_slice(&pdu)
            .and_then(|()| out.extend_from_slice(&CRC.checksum(&pdu).to_le_bytes())),
    };
    if built.is_err() {
        out.clear();
    }
}

/// Whether a write of `frame` (functions 15 and 16) carries the bytes its count says,
/// within the frame: rmodbus checks neither before it slices them.
fn counts_agree(framing: Framing, frame: &[u8]) -> bool {
    match framing.pdu(frame) {
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

/// A read of holding registers: `GET /1029/{id}/4`.
fn read_request(frame: &mut ModbusFrame<'_, Response>) -> Result<SideRequest, RError> {
    let holdings = frame.func == ModbusFunction::GetHoldings;
    match frame.get_external_read()? {
        FrameRead::Words(read) if holdings => {
            let variable = block(read.address, read.count)?;
            Ok(SideRequest {
                method: Method::Get,
                variable,
                data: (0, 0),
            })
        }
        _ => Err(RError::IllegalFunction),
    }
}

/// A write of holding registers: `PUT /1029/{id}/4`.
fn write_request(
    framing: Framing,
    frame: &mut ModbusFrame<'_, Response>,
) -> Result<SideRequest, RError> {
    // The data: after the address (function 6), after the count and byte count (16).
    let function_at = framing.unit_at() + 1;
    let data_at = match frame.func {
        ModbusFunction::SetHolding => function_at + 3,
        _ => function_at + 6,
    };
    match frame.get_external_write()? {
        FrameWrite::Words(write) => {
            let variable = block(write.address, write.count)?;
            let at = u16::try_from(data_at).map_err(|_| RError::IllegalDataValue)?;
            let len = u16::try_from(write.data.len()).map_err(|_| RError::IllegalDataValue)?;
            Ok(SideRequest {
                method: Method::Put,
                variable,
                data: (at, len),
            })
        }
        FrameWrite::Bits(_) => Err(RError::IllegalFunction),
    }
}

/// The variable whose block starts at `address`, for `count` registers of it at most
/// (one at least: a quantity of 0 is ILLEGAL DATA VALUE).
fn block(address: u16, count: u16) -> Result<u16, RError> {
    if count == 0 {
        Err(RError::IllegalDataValue)
    } else if address.is_multiple_of(BLOCK) && count <= BLOCK {
        Ok(address / BLOCK)
    } else {
        Err(RError::IllegalDataAddress)
    }
}

#[cfg(test)]
mod tests;
