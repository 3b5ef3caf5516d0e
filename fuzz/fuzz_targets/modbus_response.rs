//! Hostile Modbus servers: arbitrary answers fed to the response decoder
//! (`target_traits::modbus::frame`) and, as the bytes of a serial line, to the RTU master
//! (`target_traits::modbus::rtu::Rtu`, blocking and async) over a fake port.
//!
//! Checked: nothing panics or hangs; `response_len` never exceeds the protocol's ADU and
//! what `decode` accepts is exactly one response as `response_len` measures it (a read's
//! unused bits clear); the master sends the encoded request and, delivered the line a
//! byte at a time, answers exactly what a model of it gives: the first window of the
//! line (by the byte that completes it, then by where it starts) that is a complete
//! answer or exception (an exception's CRC checked here), else `Data` if a complete
//! candidate was refused, else `LostCommunication` (a port error at the end of the line:
//! `Communication`), and the async master the same. With larger reads it answers one of
//! the line's windows.
//!
//! Input layout:
//!
//! ```text
//! flags u8 | unit u8 | address u16 | count u16 | transaction u16 | [data] | line...
//! ```
//!
//! `flags`: bit 0 TCP (for the decoder), bit 1 a write, bits 2–3 the table (coils,
//! discrete inputs, holding, input registers), bit 4 a port error once the line is
//! read, bits 5–7 the size of the master's reads less one. `count` is taken modulo the
//! protocol's limit (plus one); a write's data (`Table::byte_len(count)` bytes, zeros
//! when the input is short) precede the line.
#![no_main]

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use libfuzzer_sys::fuzz_target;
use target_traits::modbus::frame::{Proto, Request, MAX_TCP_ADU};
use target_traits::modbus::rtu::Rtu;
use target_traits::modbus::{
    asynch, exception_kind, Modbus, Table, MAX_READ_BITS, MAX_READ_REGISTERS, MAX_WRITE_BITS,
    MAX_WRITE_REGISTERS,
};
use target_traits::ErrorKind;

/// Most line bytes given to the master: below its receive budget, so the model holds.
const LINE: usize = 1000;

struct Port<'a> {
    line: &'a [u8],
    at: usize,
    chunk: usize,
    /// The line is delivered once the first request is sent.
    sent: Vec<u8>,
    fail_at_end: bool,
}

impl Port<'_> {
    fn ready(&self) -> bool {
        !self.sent.is_empty() && self.at < self.line.len()
    }

    fn take(&mut self, buf: &mut [u8]) -> usize {
        let n = self.chunk.min(buf.len()).min(self.line.len() - self.at);
        buf[..n].copy_from_slice(&self.line[self.at..self.at + n]);
        self.at += n;
        n
    }

    fn exhausted(&self) -> bool {
        !self.sent.is_empty() && self.at >= self.line.len()
    }
}

impl embedded_io::ErrorType for Port<'_> {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::ReadReady for Port<'_> {
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        if self.fail_at_end && self.exhausted() {
            return Err(embedded_io::ErrorKind::Other);
        }
        Ok(self.ready())
    }
}

impl embedded_io::Read for Port<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        if self.fail_at_end && self.exhausted() {
            return Err(embedded_io::ErrorKind::Other);
        }
        Ok(if self.ready() { self.take(buf) } else { 0 })
    }
}

impl embedded_io::Write for Port<'_> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.sent.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// A read that never completes when the line has nothing more.
struct Pending;

impl Future for Pending {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

impl embedded_io_async::Read for Port<'_> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        if self.fail_at_end && self.exhausted() {
            return Err(embedded_io::ErrorKind::Other);
        }
        if self.ready() {
            return Ok(self.take(buf));
        }
        Pending.await;
        Ok(0)
    }
}

impl embedded_io_async::Write for Port<'_> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        embedded_io::Write::write(self, buf)
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// No time passes; the async timer fires when first polled (after every read that was
/// ready).
struct Delay;

impl embedded_hal::delay::DelayNs for Delay {
    fn delay_ns(&mut self, _: u32) {}
}

impl embedded_hal_async::delay::DelayNs for Delay {
    async fn delay_ns(&mut self, _: u32) {}
}

#[derive(Debug, PartialEq)]
enum Expected {
    Answer(Vec<u8>),
    Exception(ErrorKind),
    Corrupt,
    Silent,
}

fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for byte in bytes {
        crc ^= u16::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
    }
    crc
}

fn function(request: &Request) -> u8 {
    match (request.write, request.table, request.count) {
        (None, Table::Coils, _) => 1,
        (None, Table::DiscreteInputs, _) => 2,
        (None, Table::HoldingRegisters, _) => 3,
        (None, Table::InputRegisters, _) => 4,
        (Some(_), Table::Coils, 1) => 5,
        (Some(_), Table::Coils, _) => 15,
        (Some(_), _, 1) => 6,
        (Some(_), _, _) => 16,
    }
}

/// The master, modelled: windows judged as the line arrives a byte at a time.
fn model(request: &Request, line: &[u8], out_len: usize) -> Expected {
    let exception = function(request) | 0x80;
    let mut corrupt = false;
    for end in 1..=line.len() {
        for start in 0..end {
            let window = &line[start..end];
            if request.response_len(window) != Ok(window.len()) {
                continue;
            }
            if let [unit, f, code, lo, hi] = *window {
                if unit == request.unit
                    && f == exception
                    && crc16(&window[..3]) == u16::from_le_bytes([lo, hi])
                {
                    return Expected::Exception(exception_kind(code));
                }
            }
            let mut out = vec![0u8; out_len];
            match request.decode(window, &mut out) {
                Ok(()) => return Expected::Answer(out),
                Err(ErrorKind::Data) => corrupt = true,
                Err(kind) => panic!("a window neither answer, exception nor corrupt: {kind:?}"),
            }
        }
    }
    if corrupt {
        Expected::Corrupt
    } else {
        Expected::Silent
    }
}

fn checked_decode(request: &Request, response: &[u8]) {
    let out_len = request.table.byte_len(request.count);
    let max = request.proto.max_adu();
    for end in 0..=response.len().min(MAX_TCP_ADU + 8) {
        let prefix = &response[..end];
        if let Ok(n) = request.response_len(prefix) {
            assert!(n <= max, "{n} > {max}");
        }
        let mut out = vec![0u8; out_len];
        if request.decode(prefix, &mut out).is_ok() {
            assert_eq!(request.response_len(prefix), Ok(end));
            if request.write.is_none()
                && request.table.is_bits()
                && !request.count.is_multiple_of(8)
            {
                assert_eq!(
                    out[out_len - 1] >> (request.count % 8),
                    0,
                    "unused bits set"
                );
            }
        }
    }
    let _ = request.is_stale(response);
}

struct Outcome {
    result: Result<(), ErrorKind>,
    out: Vec<u8>,
    sent: Vec<u8>,
}

fn run_blocking(request: &Request, line: &[u8], chunk: usize, fail: bool) -> Outcome {
    let port = Port {
        line,
        at: 0,
        chunk,
        sent: Vec::new(),
        fail_at_end: fail,
    };
    let mut rtu = Rtu::new(port, Delay);
    rtu.set_timeout_ms(1);
    let mut out = vec![0u8; request.table.byte_len(request.count)];
    let result = match request.write {
        None => rtu.read(
            request.unit,
            request.table,
            request.address,
            request.count,
            &mut out,
        ),
        Some(data) => rtu.write(
            request.unit,
            request.table,
            request.address,
            request.count,
            data,
        ),
    };
    let (port, _) = rtu.release();
    Outcome {
        result,
        out,
        sent: port.sent,
    }
}

fn run_async(request: &Request, line: &[u8], chunk: usize, fail: bool) -> Outcome {
    let port = Port {
        line,
        at: 0,
        chunk,
        sent: Vec::new(),
        fail_at_end: fail,
    };
    let mut rtu = Rtu::new(port, Delay);
    rtu.set_timeout_ms(1);
    let mut out = vec![0u8; request.table.byte_len(request.count)];
    let result = embassy_futures::block_on(async {
        match request.write {
            None => {
                asynch::Modbus::read(
                    &mut rtu,
                    request.unit,
                    request.table,
                    request.address,
                    request.count,
                    &mut out,
                )
                .await
            }
            Some(data) => {
                asynch::Modbus::write(
                    &mut rtu,
                    request.unit,
                    request.table,
                    request.address,
                    request.count,
                    data,
                )
                .await
            }
        }
    });
    let (port, _) = rtu.release();
    Outcome {
        result,
        out,
        sent: port.sent,
    }
}

fn check_master(request: &Request, line: &[u8], chunk: usize, fail: bool) {
    let outcomes = [
        run_blocking(request, line, chunk, fail),
        run_async(request, line, chunk, fail),
    ];
    if request.check().is_err() || (request.unit == 0 && request.write.is_none()) {
        for o in &outcomes {
            assert_eq!(o.result, Err(ErrorKind::BadParameter));
            assert!(o.sent.is_empty());
        }
        return;
    }
    let mut adu = [0u8; MAX_TCP_ADU];
    let len = request.encode(&mut adu).expect("a checked request encodes");
    let adu = &adu[..len];
    if request.unit == 0 {
        for o in &outcomes {
            assert_eq!(o.result, Ok(()), "a broadcast is not awaited");
            assert_eq!(o.sent, adu);
        }
        return;
    }
    let out_len = request.table.byte_len(request.count);
    let expected = model(request, line, out_len);
    for o in &outcomes {
        assert!(
            o.sent.len() == len || o.sent.len() == 2 * len,
            "sent once, or once more"
        );
        assert!(o.sent.chunks(len).all(|c| c == adu), "the encoded request");
        let after_line = if fail {
            ErrorKind::Communication
        } else {
            ErrorKind::LostCommunication
        };
        if chunk == 1 {
            match &expected {
                Expected::Answer(out) => {
                    assert_eq!(o.result, Ok(()));
                    if request.write.is_none() {
                        assert_eq!(&o.out, out);
                    }
                }
                Expected::Exception(kind) => assert_eq!(o.result, Err(*kind)),
                Expected::Corrupt if !fail => assert_eq!(o.result, Err(ErrorKind::Data)),
                _ => assert_eq!(o.result, Err(after_line)),
            }
        } else if o.result.is_ok() {
            assert!(
                expected != Expected::Silent && expected != Expected::Corrupt,
                "an answer the line does not hold"
            );
        }
    }
    assert_eq!(
        outcomes[0].result, outcomes[1].result,
        "blocking and async agree"
    );
    assert_eq!(outcomes[0].out, outcomes[1].out);
}

fuzz_target!(|data: &[u8]| {
    let Some((head, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let [flags, unit, a_hi, a_lo, c_hi, c_lo, t_hi, t_lo] = *head;
    let write = flags & 0x02 != 0;
    let table = match (flags >> 2) & 3 {
        0 => Table::Coils,
        1 => Table::DiscreteInputs,
        2 => Table::HoldingRegisters,
        _ => Table::InputRegisters,
    };
    let max = match (table.is_bits(), write) {
        (true, false) => MAX_READ_BITS,
        (true, true) => MAX_WRITE_BITS,
        (false, false) => MAX_READ_REGISTERS,
        (false, true) => MAX_WRITE_REGISTERS,
    };
    let count = 1 + u16::from_be_bytes([c_hi, c_lo]) % max;
    let address = u16::from_be_bytes([a_hi, a_lo]);
    let mut payload = vec![0u8; table.byte_len(count)];
    let line = if write {
        let n = payload.len().min(rest.len());
        payload[..n].copy_from_slice(&rest[..n]);
        &rest[n..]
    } else {
        rest
    };
    let proto = if flags & 1 != 0 {
        Proto::Tcp {
            transaction: u16::from_be_bytes([t_hi, t_lo]),
        }
    } else {
        Proto::Rtu
    };
    let request = Request {
        proto,
        unit,
        table,
        address,
        count,
        write: write.then_some(&payload[..]),
    };
    checked_decode(&request, line);
    let rtu = Request {
        proto: Proto::Rtu,
        ..request
    };
    if proto != Proto::Rtu {
        checked_decode(&rtu, line);
    }
    let chunk = usize::from(flags >> 5) + 1;
    check_master(
        &rtu,
        &line[..line.len().min(LINE)],
        chunk,
        flags & 0x10 != 0,
    );
});
