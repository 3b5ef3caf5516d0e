//! Modbus frames for any master, RTU or TCP: a request encoded for the wire, and a
//! server's response measured while it arrives ([`Request::response_len`]) and checked
//! when it is complete ([`Request::decode`]). Modbus application protocol 1.1b3, Modbus
//! over serial line 1.02 §2.5.1 (RTU: `unit | PDU | CRC-16`, CRC little-endian), Modbus
//! messaging on TCP/IP 1.0b §3.1 (the MBAP header: `transaction | protocol 0 | length |
//! unit`).
//!
//! rmodbus (`client::ModbusRequest`) builds the requests and verifies a response's CRC
//! and header. Everything else a hostile server could send is checked here before rmodbus
//! sees a byte, because rmodbus's response parsing trusts its input: `parse_u16` and its
//! siblings compute `data.len() - 1` (an underflow, then an index out of bounds, on a read
//! answered with no data); its read check lets through a byte count that does not match
//! the data; it takes any unexpected function code for an exception, and maps the gateway
//! exceptions 0x0A and 0x0B to others; it checks neither the length field of a TCP
//! response nor the echo of a write; `guess_response_frame_len` refuses a TCP response
//! above 255 bytes, and a read of 125 registers is 259. So a response is measured
//! against what this request must be answered with (its length is known from the request
//! alone), and only rmodbus's CRC check, header check and data slice are used, which
//! index nothing the checks here have not bounded.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rmodbus::client::ModbusRequest;
use rmodbus::consts::ModbusFunction;
use rmodbus::{guess_response_frame_len, ModbusProto};

use super::{check, exception_kind, Table, MAX_WRITE_BITS, MAX_WRITE_REGISTERS};
use crate::ErrorKind;

/// The largest Modbus RTU ADU (serial line 2.5.1): a buffer this size holds any request
/// or response of the serial line.
pub const MAX_RTU_ADU: usize = 256;

/// The largest Modbus TCP ADU (TCP/IP 4.1: the 7-byte MBAP header and a 253-byte PDU).
pub const MAX_TCP_ADU: usize = 260;

/// The unit id of a broadcast on a serial line (serial line 2.1): every server performs a
/// write, none answers.
pub const BROADCAST: u8 = 0;

/// Bit 7 of an answer's function code: an exception.
const EXCEPTION: u8 = 0x80;
/// The MBAP header before the unit id: transaction, protocol, length.
const MBAP: usize = 6;
/// The largest MBAP length field: the unit id and the largest PDU.
const MAX_MBAP_LENGTH: usize = MAX_TCP_ADU - MBAP;

/// How a request travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Proto {
    /// Modbus RTU on a serial line: `unit | PDU | CRC-16`.
    Rtu,
    /// Modbus TCP: the MBAP header, then the PDU.
    Tcp {
        /// The transaction id the answer must carry.
        transaction: u16,
    },
}

impl Proto {
    /// The largest ADU of the protocol ([`MAX_RTU_ADU`], [`MAX_TCP_ADU`]): the room a
    /// request or a response may need.
    pub const fn max_adu(self) -> usize {
        match self {
            Proto::Rtu => MAX_RTU_ADU,
            Proto::Tcp { .. } => MAX_TCP_ADU,
        }
    }

    /// Bytes before the unit id.
    const fn head(self) -> usize {
        match self {
            Proto::Rtu => 0,
            Proto::Tcp { .. } => MBAP,
        }
    }

    /// Bytes after the PDU (the CRC).
    const fn tail(self) -> usize {
        match self {
            Proto::Rtu => 2,
            Proto::Tcp { .. } => 0,
        }
    }
}

/// Why a response is refused, before it becomes an error kind: the RTU master retries a
/// malformed answer, not a server's exception (even one whose kind is also
/// [`ErrorKind::Data`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The request cannot be sent, or `out` does not fit it.
    BadParameter,
    /// Not a well-formed answer to this request.
    Malformed,
    /// The server's exception code.
    Exception(u8),
}

impl Refusal {
    pub(crate) const fn kind(self) -> ErrorKind {
        match self {
            Refusal::BadParameter => ErrorKind::BadParameter,
            Refusal::Malformed => ErrorKind::Data,
            Refusal::Exception(code) => exception_kind(code),
        }
    }
}

/// One Modbus transaction as a master sees it: what it asks, and so what the answer must
/// be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Request<'a> {
    /// RTU, or TCP with its transaction id.
    pub proto: Proto,
    /// The server's unit id.
    pub unit: u8,
    /// The table read or written.
    pub table: Table,
    /// The 0-based PDU address of the first item.
    pub address: u16,
    /// How many items.
    pub count: u16,
    /// `None` for a read; for a write, the items' bytes as the [`super::Modbus`] traits
    /// carry them ([`Table::byte_len`]).
    pub write: Option<&'a [u8]>,
}

impl Request<'static> {
    /// A read of `count` items of `table` from `address` (functions 1 to 4).
    pub const fn read(proto: Proto, unit: u8, table: Table, address: u16, count: u16) -> Self {
        Request {
            proto,
            unit,
            table,
            address,
            count,
            write: None,
        }
    }
}

impl<'a> Request<'a> {
    /// A write of `count` items of `table` from `address` with `data` (functions 5 and 6
    /// for one item, 15 and 16 for more).
    pub const fn write(
        proto: Proto,
        unit: u8,
        table: Table,
        address: u16,
        count: u16,
        data: &'a [u8],
    ) -> Self {
        Request {
            proto,
            unit,
            table,
            address,
            count,
            write: Some(data),
        }
    }

    /// Whether this request can be sent ([`super::check`]): a count within the protocol's
    /// limits, a writable table for a write and data of the right length; otherwise
    /// [`ErrorKind::BadParameter`].
    pub const fn check(&self) -> Result<(), ErrorKind> {
        match self.write {
            None => check(
                self.table,
                self.count,
                self.table.byte_len(self.count),
                false,
            ),
            Some(data) => check(self.table, self.count, data.len(), true),
        }
    }

    /// Encodes the request into `buf` ([`Proto::max_adu`] bytes always suffice) and gives
    /// its length. [`ErrorKind::BadParameter`] if the request cannot be sent
    /// ([`Request::check`]) or `buf` is too short.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        let function = self.function()?;
        let mut client = self.client(function);
        let mut adu = heapless::Vec::<u8, MAX_TCP_ADU>::new();
        let generated = match self.write {
            None => match function {
                ModbusFunction::GetCoils => {
                    client.generate_get_coils(self.address, self.count, &mut adu)
                }
                ModbusFunction::GetDiscretes => {
                    client.generate_get_discretes(self.address, self.count, &mut adu)
                }
                ModbusFunction::GetHoldings => {
                    client.generate_get_holdings(self.address, self.count, &mut adu)
                }
                _ => client.generate_get_inputs(self.address, self.count, &mut adu),
            },
            Some(data) => match function {
                ModbusFunction::SetCoil => {
                    let on = data.first().is_some_and(|byte| byte & 1 == 1);
                    client.generate_set_coil(self.address, on, &mut adu)
                }
                ModbusFunction::SetHolding => {
                    client.generate_set_holding(self.address, word(data), &mut adu)
                }
                ModbusFunction::SetCoilsBulk => {
                    set_coils(&mut client, self.address, self.count, data, &mut adu)
                }
                _ => set_holdings(&mut client, self.address, self.count, data, &mut adu),
            },
        };
        // rmodbus fails only on room, which a checked request always has.
        generated.map_err(|_| ErrorKind::BadParameter)?;
        let dst = buf.get_mut(..adu.len()).ok_or(ErrorKind::BadParameter)?;
        dst.copy_from_slice(&adu);
        Ok(adu.len())
    }

    /// How long the response that begins with `arrived` is, so that a reader knows when it
    /// is complete: `Ok(n)` with `n > arrived.len()` means read more (at least
    /// `n - arrived.len()` bytes; no answer to this request is shorter, so reading that
    /// many never takes a byte past it) and ask again, as the figure grows once the header
    /// is in; `n <= arrived.len()` means the response is `arrived[..n]`, for
    /// [`Request::decode`]. `n` never exceeds [`Proto::max_adu`].
    ///
    /// RTU has no length field, so the length is the one this request's answer (or an
    /// exception) must have, and `arrived` is refused with [`ErrorKind::Data`] as soon as
    /// it cannot begin one: another unit, another function, another byte count. A serial
    /// reader can then drop the first byte and look again (noise on the line).
    ///
    /// TCP frames carry their length: the MBAP header alone is checked (protocol 0, a
    /// length the protocol allows, else [`ErrorKind::Data`]), so that an answer to another
    /// transaction can be read whole and skipped ([`Request::is_stale`]); `decode` checks
    /// the rest.
    ///
    /// [`ErrorKind::BadParameter`] if the request cannot be sent.
    pub fn response_len(&self, arrived: &[u8]) -> Result<usize, ErrorKind> {
        let function = self.function()?.byte();
        match self.proto {
            Proto::Rtu => self.rtu_len(arrived, function),
            Proto::Tcp { .. } => self.tcp_len(arrived),
        }
    }

    /// Whether `response` (at least its first two bytes) answers another TCP transaction:
    /// a late answer to an earlier request, for a reader to skip. Always false for RTU.
    pub fn is_stale(&self, response: &[u8]) -> bool {
        match (self.proto, response) {
            (Proto::Tcp { transaction }, [hi, lo, ..]) => {
                u16::from_be_bytes([*hi, *lo]) != transaction
            }
            _ => false,
        }
    }

    /// Decodes a complete response (as [`Request::response_len`] measured it) into `out`:
    /// for a read, the items' bytes ([`Table::byte_len`]`(count)` of them, else
    /// [`ErrorKind::BadParameter`]; the unused high bits of a last bit byte cleared); for
    /// a write, `out` is not used and the server's echo is checked.
    ///
    /// A server's exception is its [`exception_kind`]; a response of the wrong length,
    /// another unit, function, transaction id or byte count, a bad CRC or a wrong echo is
    /// [`ErrorKind::Data`]. `out` is written only on success.
    pub fn decode(&self, response: &[u8], out: &mut [u8]) -> Result<(), ErrorKind> {
        self.judge(response, out).map_err(Refusal::kind)
    }

    /// [`Request::decode`], keeping a server's exception apart from a malformed answer.
    pub(crate) fn judge(&self, response: &[u8], out: &mut [u8]) -> Result<(), Refusal> {
        let function = self.function().map_err(|_| Refusal::BadParameter)?;
        if self.write.is_none() && out.len() != self.table.byte_len(self.count) {
            return Err(Refusal::BadParameter);
        }
        let len = self
            .response_len(response)
            .map_err(|_| Refusal::Malformed)?;
        if len != response.len() || self.is_stale(response) {
            return Err(Refusal::Malformed);
        }
        let head = self.proto.head();
        let pdu = response.get(head..).unwrap_or(&[]);
        let (unit, answered) = match pdu {
            [unit, answered, ..] => (*unit, *answered),
            _ => return Err(Refusal::Malformed),
        };
        if unit != self.unit {
            return Err(Refusal::Malformed);
        }
        let client = self.client(function);
        if answered == function.byte() | EXCEPTION {
            if len != self.exception_len() {
                return Err(Refusal::Malformed);
            }
            let code = pdu.get(2).copied().ok_or(Refusal::Malformed)?;
            // rmodbus checks the CRC (RTU) or the header (TCP) and the unit, then reports
            // the code of the function it did not expect: only that error means a sound
            // frame.
            return match client.parse_ok(response) {
                Err(e) if e.is_modbus_error() || e == rmodbus::ErrorKind::UnknownError => {
                    Err(Refusal::Exception(code))
                }
                _ => Err(Refusal::Malformed),
            };
        }
        if answered != function.byte() || len != self.answer_len() {
            return Err(Refusal::Malformed);
        }
        match self.write {
            None => {
                let byte_count = pdu.get(2).copied().map(usize::from);
                if byte_count != Some(out.len()) {
                    return Err(Refusal::Malformed);
                }
                let data = client
                    .parse_slice(response)
                    .map_err(|_| Refusal::Malformed)?;
                if data.len() != out.len() {
                    return Err(Refusal::Malformed);
                }
                out.copy_from_slice(data);
                let used = self.count % 8;
                if self.table.is_bits() && used != 0 {
                    if let Some(last) = out.last_mut() {
                        *last &= (1u8 << used).wrapping_sub(1);
                    }
                }
                Ok(())
            }
            Some(data) => {
                let echo = client
                    .parse_slice(response)
                    .map_err(|_| Refusal::Malformed)?;
                let [a_hi, a_lo] = self.address.to_be_bytes();
                let [v_hi, v_lo] = match function {
                    ModbusFunction::SetCoil => match data.first() {
                        Some(byte) if byte & 1 == 1 => [0xFF, 0x00],
                        _ => [0x00, 0x00],
                    },
                    ModbusFunction::SetHolding => word(data).to_be_bytes(),
                    _ => self.count.to_be_bytes(),
                };
                if echo == [a_hi, a_lo, v_hi, v_lo] {
                    Ok(())
                } else {
                    Err(Refusal::Malformed)
                }
            }
        }
    }

    /// The function this request uses, once it is known to be one to send.
    fn function(&self) -> Result<ModbusFunction, ErrorKind> {
        self.check()?;
        Ok(match (self.write, self.table, self.count) {
            (None, Table::Coils, _) => ModbusFunction::GetCoils,
            (None, Table::DiscreteInputs, _) => ModbusFunction::GetDiscretes,
            (None, Table::HoldingRegisters, _) => ModbusFunction::GetHoldings,
            (None, Table::InputRegisters, _) => ModbusFunction::GetInputs,
            (Some(_), Table::Coils, 1) => ModbusFunction::SetCoil,
            (Some(_), Table::Coils, _) => ModbusFunction::SetCoilsBulk,
            (Some(_), Table::HoldingRegisters, 1) => ModbusFunction::SetHolding,
            (Some(_), Table::HoldingRegisters, _) => ModbusFunction::SetHoldingsBulk,
            (Some(_), _, _) => return Err(ErrorKind::BadParameter),
        })
    }

    /// rmodbus's view of this request.
    fn client(&self, function: ModbusFunction) -> ModbusRequest {
        let mut client = match self.proto {
            Proto::Rtu => ModbusRequest::new(self.unit, ModbusProto::Rtu),
            Proto::Tcp { transaction } => ModbusRequest::new_tcp_udp(self.unit, transaction),
        };
        client.func = function;
        client.reg = self.address;
        client.count = self.count;
        client
    }

    /// Bytes of the ADU around a PDU of `pdu` bytes after the unit id.
    fn adu_len(&self, pdu: usize) -> usize {
        self.proto
            .head()
            .saturating_add(1)
            .saturating_add(pdu)
            .saturating_add(self.proto.tail())
    }

    /// Bytes of the answer: function, byte count and data for a read; function, address
    /// and value or count for a write.
    fn answer_len(&self) -> usize {
        match self.write {
            None => self.adu_len(self.table.byte_len(self.count).saturating_add(2)),
            Some(_) => self.adu_len(5),
        }
    }

    /// Bytes of an exception: function and code.
    fn exception_len(&self) -> usize {
        self.adu_len(2)
    }

    fn rtu_len(&self, arrived: &[u8], function: u8) -> Result<usize, ErrorKind> {
        let shortest = self.exception_len();
        let expected = match arrived {
            [] => return Ok(shortest),
            [unit, ..] if *unit != self.unit => return Err(ErrorKind::Data),
            [_] => return Ok(shortest),
            [_, answered, ..] if *answered == function | EXCEPTION => shortest,
            [_, answered, ..] if *answered == function => self.answer_len(),
            _ => return Err(ErrorKind::Data),
        };
        if arrived.len() < 3 {
            return Ok(expected);
        }
        // The length the frame declares (a read's byte count) must be the one expected.
        match guess_response_frame_len(arrived, ModbusProto::Rtu) {
            Ok(declared) if usize::from(declared) == expected => Ok(expected),
            _ => Err(ErrorKind::Data),
        }
    }

    fn tcp_len(&self, arrived: &[u8]) -> Result<usize, ErrorKind> {
        match arrived {
            [_, _, 0, 0, hi, lo, ..] => {
                let length = usize::from(u16::from_be_bytes([*hi, *lo]));
                // At least unit, function and exception code.
                if (3..=MAX_MBAP_LENGTH).contains(&length) {
                    Ok(MBAP.saturating_add(length))
                } else {
                    Err(ErrorKind::Data)
                }
            }
            [_, _, _, _, _, _, ..] => Err(ErrorKind::Data),
            _ => Ok(self.exception_len()),
        }
    }
}

/// Function 15 from packed bits: rmodbus takes one value a coil, 1 968 bytes of stack,
/// out of line so that other requests do not reserve them.
#[inline(never)]
fn set_coils(
    client: &mut ModbusRequest,
    address: u16,
    count: u16,
    data: &[u8],
    adu: &mut heapless::Vec<u8, MAX_TCP_ADU>,
) -> Result<(), rmodbus::ErrorKind> {
    let mut bits = [0u8; MAX_WRITE_BITS as usize];
    for (i, bit) in bits.iter_mut().enumerate().take(usize::from(count)) {
        *bit = data.get(i / 8).map_or(0, |byte| (byte >> (i % 8)) & 1);
    }
    let bits = bits.get(..usize::from(count)).unwrap_or(&[]);
    client.generate_set_coils_bulk(address, bits, adu)
}

/// Function 16 from big-endian bytes (rmodbus takes words), out of line as
/// [`set_coils`].
#[inline(never)]
fn set_holdings(
    client: &mut ModbusRequest,
    address: u16,
    count: u16,
    data: &[u8],
    adu: &mut heapless::Vec<u8, MAX_TCP_ADU>,
) -> Result<(), rmodbus::ErrorKind> {
    let mut words = [0u16; MAX_WRITE_REGISTERS as usize];
    for (w, pair) in words.iter_mut().zip(data.chunks_exact(2)) {
        *w = word(pair);
    }
    let words = words.get(..usize::from(count)).unwrap_or(&[]);
    client.generate_set_holdings_bulk(address, words, adu)
}

/// The big-endian word of the first two bytes (0 for what is missing: never, for a
/// checked request).
fn word(data: &[u8]) -> u16 {
    match data {
        [hi, lo, ..] => u16::from_be_bytes([*hi, *lo]),
        _ => 0,
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    const RTU: Proto = Proto::Rtu;

    fn encoded(request: &Request) -> heapless::Vec<u8, MAX_TCP_ADU> {
        let mut buf = [0u8; MAX_TCP_ADU];
        let len = request.encode(&mut buf).unwrap();
        heapless::Vec::from_slice(&buf[..len]).unwrap()
    }

    // The examples of modbustools.com, which rmodbus's tests also use.
    #[test]
    fn requests_are_the_reference_frames() {
        let read = Request::read(RTU, 1, Table::HoldingRegisters, 0, 2);
        assert_eq!(
            encoded(&read),
            [0x01, 0x03, 0x00, 0x00, 0x00, 0x02, 0xC4, 0x0B]
        );
        let coils = Request::read(RTU, 4, Table::Coils, 0x0A, 0x0D);
        assert_eq!(
            encoded(&coils),
            [0x04, 0x01, 0x00, 0x0A, 0x00, 0x0D, 0xDD, 0x98]
        );
        let coil = Request::write(RTU, 0x11, Table::Coils, 0xAC, 1, &[1]);
        assert_eq!(
            encoded(&coil),
            [0x11, 0x05, 0x00, 0xAC, 0xFF, 0x00, 0x4E, 0x8B]
        );
        let holding = Request::write(RTU, 0x11, Table::HoldingRegisters, 1, 1, &[0, 3]);
        assert_eq!(
            encoded(&holding),
            [0x11, 0x06, 0x00, 0x01, 0x00, 0x03, 0x9A, 0x9B]
        );
        let words = [0x00, 0x0A, 0x01, 0x02];
        let holdings = Request::write(RTU, 0x11, Table::HoldingRegisters, 1, 2, &words);
        assert_eq!(
            encoded(&holdings),
            [0x11, 0x10, 0x00, 0x01, 0x00, 0x02, 0x04, 0x00, 0x0A, 0x01, 0x02, 0xC6, 0xF0]
        );
        let bits = [0xB3, 0x80];
        let coils = Request::write(RTU, 0x11, Table::Coils, 0x13, 16, &bits);
        assert_eq!(
            encoded(&coils),
            [0x11, 0x0F, 0x00, 0x13, 0x00, 0x10, 0x02, 0xB3, 0x80, 0x59, 0xD3]
        );
        let tcp = Request::read(
            Proto::Tcp {
                transaction: 0x1234,
            },
            1,
            Table::InputRegisters,
            8,
            1,
        );
        assert_eq!(
            encoded(&tcp),
            [0x12, 0x34, 0, 0, 0, 6, 0x01, 0x04, 0x00, 0x08, 0x00, 0x01]
        );
    }

    #[test]
    fn a_reference_answer_decodes() {
        let read = Request::read(RTU, 1, Table::HoldingRegisters, 0, 2);
        let answer = [0x01, 0x03, 0x04, 0x00, 0x06, 0x00, 0x05, 0xDA, 0x31];
        for n in 0..answer.len() {
            let need = read.response_len(&answer[..n]).unwrap();
            assert!(need > n && need <= answer.len(), "{n}: {need}");
        }
        assert_eq!(read.response_len(&answer), Ok(answer.len()));
        let mut out = [0u8; 4];
        read.decode(&answer, &mut out).unwrap();
        assert_eq!(out, [0x00, 0x06, 0x00, 0x05]);

        let coils = Request::read(RTU, 4, Table::Coils, 0x0A, 0x0D);
        let answer = [0x04, 0x01, 0x02, 0x0A, 0x11, 0xB3, 0x50];
        let mut out = [0u8; 2];
        coils.decode(&answer, &mut out).unwrap();
        assert_eq!(out, [0x0A, 0x11]);

        let coil = Request::write(RTU, 0x11, Table::Coils, 0xAC, 1, &[1]);
        let echo = [0x11, 0x05, 0x00, 0xAC, 0xFF, 0x00, 0x4E, 0x8B];
        assert_eq!(coil.decode(&echo, &mut []), Ok(()));
        let off = Request::write(RTU, 0x11, Table::Coils, 0xAC, 1, &[0]);
        assert_eq!(off.decode(&echo, &mut []), Err(ErrorKind::Data));
    }

    /// Frames with a correct CRC, built the way a server does (rmodbus's own CRC is
    /// private: the request encoder computes the same one).
    fn rtu_frame(body: &[u8]) -> heapless::Vec<u8, MAX_RTU_ADU> {
        let mut crc: u16 = 0xFFFF;
        for byte in body {
            crc ^= u16::from(*byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xA001
                } else {
                    crc >> 1
                };
            }
        }
        let mut frame = heapless::Vec::from_slice(body).unwrap();
        frame.extend_from_slice(&crc.to_le_bytes()).unwrap();
        frame
    }

    #[test]
    fn exceptions_are_their_kinds_and_a_bad_crc_is_data() {
        let read = Request::read(RTU, 1, Table::HoldingRegisters, 0, 2);
        let mut out = [0u8; 4];
        let illegal_address = rtu_frame(&[0x01, 0x83, 0x02]);
        assert_eq!(read.response_len(&illegal_address[..2]), Ok(5));
        assert_eq!(
            read.decode(&illegal_address, &mut out)
                .map_err(ErrorKind::status_byte),
            Err(0xB3)
        );
        // rmodbus would call 0x0B something else; the device follows exception_kind.
        let gateway = rtu_frame(&[0x01, 0x83, 0x0B]);
        assert_eq!(read.decode(&gateway, &mut out), Err(ErrorKind::Unreachable));
        let mut bad = illegal_address.clone();
        bad[4] ^= 1;
        assert_eq!(read.decode(&bad, &mut out), Err(ErrorKind::Data));
        let good = rtu_frame(&[0x01, 0x03, 0x04, 1, 2, 3, 4]);
        let mut corrupt = good.clone();
        corrupt[3] ^= 0x40;
        assert_eq!(read.decode(&corrupt, &mut out), Err(ErrorKind::Data));
        assert_eq!(out, [0; 4], "out is written only on success");
        assert_eq!(read.decode(&good, &mut out), Ok(()));
        assert_eq!(out, [1, 2, 3, 4]);
    }

    // rmodbus's parse_u16 would compute `0 - 1` on this answer: a read with no data.
    #[test]
    fn a_read_answered_without_data_is_refused() {
        let read = Request::read(RTU, 1, Table::HoldingRegisters, 0, 1);
        let empty = rtu_frame(&[0x01, 0x03, 0x00]);
        assert_eq!(read.response_len(&empty), Err(ErrorKind::Data));
        assert_eq!(read.decode(&empty, &mut [0; 2]), Err(ErrorKind::Data));
        // A byte count rmodbus's loose check lets through (4 bytes declared, 2 expected).
        let long = rtu_frame(&[0x01, 0x03, 0x04, 0, 1, 0, 2]);
        assert_eq!(read.decode(&long, &mut [0; 2]), Err(ErrorKind::Data));
    }

    #[test]
    fn wrong_unit_function_and_echo_are_data() {
        let read = Request::read(RTU, 1, Table::HoldingRegisters, 0, 1);
        assert_eq!(read.response_len(&[0x02]), Err(ErrorKind::Data));
        assert_eq!(read.response_len(&[0x01, 0x04]), Err(ErrorKind::Data));
        let other_unit = rtu_frame(&[0x02, 0x03, 0x02, 0, 1]);
        assert_eq!(read.decode(&other_unit, &mut [0; 2]), Err(ErrorKind::Data));
        let write = Request::write(RTU, 1, Table::HoldingRegisters, 7, 1, &[0, 9]);
        let wrong_value = rtu_frame(&[0x01, 0x06, 0x00, 0x07, 0x00, 0x08]);
        assert_eq!(write.decode(&wrong_value, &mut []), Err(ErrorKind::Data));
        let right = rtu_frame(&[0x01, 0x06, 0x00, 0x07, 0x00, 0x09]);
        assert_eq!(write.decode(&right, &mut []), Ok(()));
    }

    #[test]
    fn the_unused_bits_of_a_last_byte_are_cleared() {
        let read = Request::read(RTU, 1, Table::DiscreteInputs, 0, 3);
        let answer = rtu_frame(&[0x01, 0x02, 0x01, 0xFD]);
        let mut out = [0u8; 1];
        read.decode(&answer, &mut out).unwrap();
        assert_eq!(out, [0x05]);
    }

    #[test]
    fn tcp_answers_are_measured_by_their_header_and_checked_whole() {
        let proto = Proto::Tcp { transaction: 7 };
        let read = Request::read(proto, 1, Table::HoldingRegisters, 0, 125);
        // 259 bytes, more than rmodbus's guess_response_frame_len accepts.
        let mut answer = [0u8; 259];
        answer[..9].copy_from_slice(&[0, 7, 0, 0, 0, 253, 1, 3, 250]);
        answer[9] = 0xAB;
        assert_eq!(read.response_len(&answer[..5]), Ok(9));
        assert_eq!(read.response_len(&answer[..6]), Ok(259));
        let mut out = [0u8; 250];
        read.decode(&answer, &mut out).unwrap();
        assert_eq!(out[0], 0xAB);
        let mut stale = answer;
        stale[1] = 6;
        assert!(read.is_stale(&stale));
        assert_eq!(read.decode(&stale, &mut out), Err(ErrorKind::Data));
        let exception = [0, 7, 0, 0, 0, 3, 1, 0x83, 0x06];
        assert_eq!(read.decode(&exception, &mut out), Err(ErrorKind::Busy));
        assert_eq!(read.response_len(&[0, 7, 0, 1, 0, 3]), Err(ErrorKind::Data));
        assert_eq!(
            read.response_len(&[0, 7, 0, 0, 0, 255]),
            Err(ErrorKind::Data)
        );
        assert_eq!(read.response_len(&[0, 7, 0, 0, 0, 2]), Err(ErrorKind::Data));
    }

    #[test]
    fn requests_that_cannot_be_sent_are_bad_parameters() {
        let mut buf = [0u8; MAX_RTU_ADU];
        let none = Request::read(RTU, 1, Table::Coils, 0, 0);
        assert_eq!(none.encode(&mut buf), Err(ErrorKind::BadParameter));
        let read_only = Request::write(RTU, 1, Table::InputRegisters, 0, 1, &[0, 1]);
        assert_eq!(read_only.encode(&mut buf), Err(ErrorKind::BadParameter));
        assert_eq!(read_only.response_len(&[]), Err(ErrorKind::BadParameter));
        let short = Request::write(RTU, 1, Table::HoldingRegisters, 0, 2, &[0, 1]);
        assert_eq!(short.encode(&mut buf), Err(ErrorKind::BadParameter));
        let read = Request::read(RTU, 1, Table::HoldingRegisters, 0, 2);
        assert_eq!(read.encode(&mut buf[..7]), Err(ErrorKind::BadParameter));
        assert_eq!(read.decode(&[], &mut [0; 3]), Err(ErrorKind::BadParameter));
    }

    #[test]
    fn the_largest_requests_fit_their_protocol() {
        let data = [0x55u8; 246];
        let mut buf = [0u8; MAX_TCP_ADU];
        let registers = Request::write(RTU, 1, Table::HoldingRegisters, 0, 123, &data);
        assert_eq!(registers.encode(&mut buf[..MAX_RTU_ADU]), Ok(255));
        let coils = Request::write(RTU, 1, Table::Coils, 0, 1968, &data);
        assert_eq!(coils.encode(&mut buf[..MAX_RTU_ADU]), Ok(255));
        assert_eq!(&buf[7..253], &data[..]);
        let tcp = Request::write(
            Proto::Tcp { transaction: 1 },
            1,
            Table::Coils,
            0,
            1968,
            &data,
        );
        assert_eq!(tcp.encode(&mut buf), Ok(259));
    }
}
