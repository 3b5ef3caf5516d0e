//! A simulated serial line with rmodbus's own RTU server at its far end, and a simulated
//! clock: the master's delay moves it, the server's answer arrives a byte at a time as
//! it passes. Deterministic: no thread, no sleep.
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use rmodbus::server::storage::ModbusStorage;
use rmodbus::server::ModbusFrame;
use rmodbus::ModbusProto;

/// The server's tables: 2048 coils and discrete inputs, 256 input and holding registers.
pub type Storage = ModbusStorage<2048, 2048, 256, 256>;

pub const UNIT: u8 = 1;
/// One character at 9600 baud (11 bits).
pub const CHAR_NS: u64 = 1_146_000;
pub const MS: u64 = 1_000_000;

/// rmodbus's server answering one request frame (its response; `None` when it answers
/// nothing: another unit, a broadcast, a frame it cannot parse).
pub fn serve(
    unit: u8,
    proto: ModbusProto,
    storage: &mut Storage,
    request: &[u8],
) -> Option<Vec<u8>> {
    let mut response = Vec::new();
    {
        let mut frame = ModbusFrame::new(unit, request, proto, &mut response);
        frame.parse().ok()?;
        if frame.processing_required {
            let processed = if frame.readonly {
                frame.process_read(storage)
            } else {
                frame.process_write(storage)
            };
            processed.ok()?;
        }
        if !frame.response_required {
            return None;
        }
        frame.finalize_response().ok()?;
    }
    Some(response)
}

pub struct Line {
    pub now_ns: u64,
    pub storage: Box<Storage>,
    pub unit: u8,
    /// Bytes the master sent that do not make a request yet.
    pending: Vec<u8>,
    /// Bytes towards the master, each with the time it has arrived.
    inbound: VecDeque<(u64, u8)>,
    /// Every request frame the server received.
    pub requests: Vec<Vec<u8>>,
    /// The server ignores this many requests first (`usize::MAX`: all).
    pub silent_for: usize,
    /// Bytes the line adds before every answer.
    pub noise: Vec<u8>,
    /// Every answer's last byte is flipped (its CRC).
    pub corrupt: bool,
    /// After one corrupt answer, the server falls silent.
    pub silent_after_corrupt: bool,
    /// From the end of a request to the first byte of its answer.
    pub latency_ns: u64,
    /// Writes to the port fail.
    pub broken: bool,
}

impl Line {
    pub fn new() -> Rc<RefCell<Line>> {
        Rc::new(RefCell::new(Line {
            now_ns: 0,
            storage: Box::new(Storage::new()),
            unit: UNIT,
            pending: Vec::new(),
            inbound: VecDeque::new(),
            requests: Vec::new(),
            silent_for: 0,
            noise: Vec::new(),
            corrupt: false,
            silent_after_corrupt: false,
            latency_ns: 5 * MS,
            broken: false,
        }))
    }

    /// Bytes on the line towards the master now (stale: before any request).
    pub fn inject(&mut self, bytes: &[u8]) {
        let now = self.now_ns;
        self.inbound.extend(bytes.iter().map(|b| (now, *b)));
    }

    fn sent(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        let Ok(len) = rmodbus::guess_request_frame_len(&self.pending, ModbusProto::Rtu) else {
            return;
        };
        let len = usize::from(len);
        if self.pending.len() < len {
            return;
        }
        let request: Vec<u8> = self.pending.drain(..len).collect();
        self.requests.push(request.clone());
        if self.silent_for > 0 {
            self.silent_for -= 1;
            return;
        }
        let Some(mut answer) = serve(self.unit, ModbusProto::Rtu, &mut self.storage, &request)
        else {
            return;
        };
        if self.corrupt {
            *answer.last_mut().unwrap() ^= 0x5A;
            if self.silent_after_corrupt {
                self.silent_for = usize::MAX;
            }
        }
        let mut at = self.now_ns + self.latency_ns;
        for byte in self.noise.iter().chain(answer.iter()) {
            at += CHAR_NS;
            self.inbound.push_back((at, *byte));
        }
    }

    fn ready(&self) -> bool {
        self.inbound
            .front()
            .is_some_and(|(at, _)| *at <= self.now_ns)
    }

    fn take(&mut self, buf: &mut [u8]) -> usize {
        let mut n = 0;
        while n < buf.len() && self.ready() {
            buf[n] = self.inbound.pop_front().unwrap().1;
            n += 1;
        }
        n
    }
}

/// The master's end of the line.
pub struct Port(pub Rc<RefCell<Line>>);

/// The master's delay: it moves the line's clock.
pub struct Delay(pub Rc<RefCell<Line>>);

impl embedded_io::ErrorType for Port {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Read for Port {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let mut line = self.0.borrow_mut();
        // Blocks until a byte arrives, as a serial port does.
        if !line.ready() {
            match line.inbound.front() {
                Some((at, _)) => line.now_ns = *at,
                None => return Ok(0),
            }
        }
        Ok(line.take(buf))
    }
}

impl embedded_io::ReadReady for Port {
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        Ok(self.0.borrow().ready())
    }
}

impl embedded_io::Write for Port {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        let mut line = self.0.borrow_mut();
        if line.broken {
            return Err(embedded_io::ErrorKind::Other);
        }
        line.sent(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl embedded_io_async::Read for Port {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        loop {
            let n = self.0.borrow_mut().take(buf);
            if n > 0 {
                return Ok(n);
            }
            embassy_futures::yield_now().await;
        }
    }
}

impl embedded_io_async::Write for Port {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        embedded_io::Write::write(self, buf)
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl embedded_hal::delay::DelayNs for Delay {
    fn delay_ns(&mut self, ns: u32) {
        self.0.borrow_mut().now_ns += u64::from(ns);
    }
}

impl embedded_hal_async::delay::DelayNs for Delay {
    async fn delay_ns(&mut self, ns: u32) {
        // A timer that fires `ns` after it starts, the clock moving 100 µs each time
        // the executor polls it.
        let end = self.0.borrow().now_ns + u64::from(ns);
        loop {
            {
                let mut line = self.0.borrow_mut();
                if line.now_ns >= end {
                    return;
                }
                line.now_ns = (line.now_ns + 100_000).min(end);
            }
            embassy_futures::yield_now().await;
        }
    }
}
