//! A Modbus RTU master over a serial port (Modbus over serial line 1.02), blocking
//! ([`super::Modbus`] over `embedded-io` with an `embedded-hal` delay) and async
//! ([`super::asynch::Modbus`] over `embedded-io-async` with an `embedded-hal-async`
//! delay): one struct, [`Rtu`], as a board's serial port is one.
//!
//! Every call is one transaction: the bytes already on the line are dropped, the request
//! is sent and the answer awaited for [`Rtu::timeout_ms`]; a silent server, or an answer
//! that is not one (a bad CRC), is asked again up to [`Rtu::retries`] times, a server's
//! exception is not. Noise before the answer is skipped: the master looks for the answer
//! at every byte that could begin it (the unit, the function, the byte count it expects)
//! and takes the first one whose CRC holds. No answer within the timeout is
//! [`ErrorKind::LostCommunication`] (`B7`, spec decision 13), a corrupt one (in any
//! attempt) [`ErrorKind::Data`], a serial error [`ErrorKind::Communication`]. A write to unit 0
//! (a broadcast) is sent once and not awaited; a read of it is a bad parameter.
//!
//! RTU frames carry no transaction id: an answer later than the timeout is dropped if it
//! is on the line when the next request goes, but one that arrives during the next
//! transaction and fits it cannot be told from its answer. The timeout must exceed the
//! server's slowest answer.
//!
//! Buffers are on the stack, no more than [`MAX_RTU_ADU`] bytes each (a write of 1 968
//! coils takes 2 KB more while it is encoded: rmodbus takes a value a coil); no
//! allocation.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use embassy_futures::select::{select, Either};

use super::frame::{Proto, Refusal, Request, BROADCAST, MAX_RTU_ADU};
use super::{check, Table};
use crate::{ErrorKind, ErrorType};

/// How long a master waits for an answer unless told otherwise.
pub const DEFAULT_TIMEOUT_MS: u32 = 1000;

/// How many times a master asks again unless told otherwise.
pub const DEFAULT_RETRIES: u8 = 1;

/// The blocking master's time step while the line is quiet: a tenth of a character at
/// 9600 baud.
const POLL_US: u32 = 100;

/// Most bytes one attempt takes from the line, noise included: a line that floods is not
/// an answer, and a port always ready must not hold the master (its time is counted
/// only while the line is quiet).
const RECEIVE_BUDGET: usize = 4 * MAX_RTU_ADU;

/// Most stale bytes dropped before a request is sent.
const STALE_BUDGET: usize = 4 * MAX_RTU_ADU;

/// A Modbus RTU master: a serial port `P` and a delay `D`, the time base of the
/// timeout.
///
/// Blocking with `P: embedded_io::{Read, Write, ReadReady}` and
/// `D: embedded_hal::delay::DelayNs` (the master polls the port and counts the delays
/// while the line is quiet); async with `P: embedded_io_async::{Read, Write}` and
/// `D: embedded_hal_async::delay::DelayNs` (the reads race one delay of the timeout; an
/// unfinished read is dropped, so the port's read should be cancel-safe, as most UART
/// drivers' is).
#[derive(Debug)]
pub struct Rtu<P, D> {
    port: P,
    delay: D,
    timeout_ms: u32,
    retries: u8,
}

impl<P, D> Rtu<P, D> {
    /// A master on `port`, with [`DEFAULT_TIMEOUT_MS`] and [`DEFAULT_RETRIES`].
    pub const fn new(port: P, delay: D) -> Self {
        Rtu {
            port,
            delay,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            retries: DEFAULT_RETRIES,
        }
    }

    /// How long an attempt waits for the answer, in milliseconds.
    pub const fn timeout_ms(&self) -> u32 {
        self.timeout_ms
    }

    /// Sets how long an attempt waits for the answer (the timeout of `/1027//21`).
    pub fn set_timeout_ms(&mut self, timeout_ms: u32) {
        self.timeout_ms = timeout_ms;
    }

    /// The timeout the target multiplexer passes (the traits' `set_timeout_ms`): 0 is
    /// [`DEFAULT_TIMEOUT_MS`].
    fn take_timeout(&mut self, timeout_ms: u32) {
        self.timeout_ms = if timeout_ms == 0 {
            DEFAULT_TIMEOUT_MS
        } else {
            timeout_ms
        };
    }

    /// How many times a request is sent again after a silent or corrupt answer.
    pub const fn retries(&self) -> u8 {
        self.retries
    }

    /// Sets how many times a request is sent again (0: once only).
    pub fn set_retries(&mut self, retries: u8) {
        self.retries = retries;
    }

    /// The serial port.
    pub fn port_mut(&mut self) -> &mut P {
        &mut self.port
    }

    /// The port and the delay back.
    pub fn release(self) -> (P, D) {
        (self.port, self.delay)
    }
}

impl<P, D> ErrorType for Rtu<P, D> {
    type Error = ErrorKind;
}

/// How an attempt ended without an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// Silent or corrupt: worth asking again.
    Retry(ErrorKind),
    /// The server's exception, a serial error: final.
    Stop(ErrorKind),
}

/// What the failed attempts of a transaction add up to: a corrupt answer in any of them
/// (the server is there, the line damages its answers) rather than the silence of the
/// others.
struct Failed {
    kind: ErrorKind,
}

impl Failed {
    const fn new() -> Self {
        Failed {
            kind: ErrorKind::LostCommunication,
        }
    }

    fn add(&mut self, kind: ErrorKind) {
        if self.kind != ErrorKind::Data {
            self.kind = kind;
        }
    }
}

fn serial<E>(_: E) -> Fault {
    Fault::Stop(ErrorKind::Communication)
}

/// The request of a [`super::Modbus`] call, checked as the trait says (before anything
/// is sent).
fn request<'a>(
    unit: u8,
    table: Table,
    address: u16,
    count: u16,
    len: usize,
    write: Option<&'a [u8]>,
) -> Result<Request<'a>, ErrorKind> {
    check(table, count, len, write.is_some())?;
    if unit == BROADCAST && write.is_none() {
        // Nobody answers a broadcast.
        return Err(ErrorKind::BadParameter);
    }
    Ok(Request {
        proto: Proto::Rtu,
        unit,
        table,
        address,
        count,
        write,
    })
}

/// What has arrived of an answer, and where in it the answer may begin.
///
/// Every offset is a candidate: it is refused once its first bytes cannot begin the
/// answer (another unit, function or byte count) or once it is complete and its frame is
/// refused (the CRC); it is pending while incomplete. All candidates have one of two
/// lengths (the answer's, an exception's), so each is judged once, when its last byte
/// arrives; a false start in the noise that waits for more bytes than the line brings
/// (the beginning of an answer, before a shorter exception) does not hide what follows
/// it.
struct Receiver {
    buf: [u8; MAX_RTU_ADU],
    /// The first candidate not refused yet: what comes before is given up.
    start: usize,
    end: usize,
    /// `end` when the candidates were last judged: those complete then were refused.
    judged: usize,
    received: usize,
    /// A complete frame was refused: at the timeout, the answer was corrupt rather than
    /// missing.
    corrupt: bool,
}

impl Receiver {
    const fn new() -> Self {
        Receiver {
            buf: [0; MAX_RTU_ADU],
            start: 0,
            end: 0,
            judged: 0,
            received: 0,
            corrupt: false,
        }
    }

    /// Where the next bytes go (never empty: the bytes before `start` are given up
    /// first).
    fn room(&mut self) -> &mut [u8] {
        if self.end >= self.buf.len() {
            if self.start == 0 {
                // Cannot happen (no answer is as long as the buffer); keep going anyway.
                self.start = 1;
            }
            self.buf.copy_within(self.start..self.end, 0);
            self.end = self.end.saturating_sub(self.start);
            self.judged = self.judged.saturating_sub(self.start);
            self.start = 0;
        }
        self.buf.get_mut(self.end..).unwrap_or_default()
    }

    /// `n` bytes were read into [`Receiver::room`].
    fn filled(&mut self, n: usize) {
        let n = n.min(self.buf.len().saturating_sub(self.end));
        self.end = self.end.saturating_add(n);
        self.received = self.received.saturating_add(n);
    }

    fn flooded(&self) -> bool {
        self.received > RECEIVE_BUDGET
    }

    /// The answer, if it is in: `Ok` when `out` holds it, the server's exception, or
    /// `None` while more bytes are needed.
    fn poll(&mut self, request: &Request, out: &mut [u8]) -> Option<Result<(), ErrorKind>> {
        let mut at = self.start;
        let mut leading = true;
        while at < self.end {
            let candidate = self.buf.get(at..self.end).unwrap_or_default();
            match request.response_len(candidate) {
                Ok(n) if n > candidate.len() => leading = false,
                Ok(n) if at.saturating_add(n) > self.judged => {
                    match request.judge(candidate.get(..n).unwrap_or_default(), out) {
                        Ok(()) => return Some(Ok(())),
                        Err(Refusal::Malformed) => self.corrupt = true,
                        Err(refusal) => return Some(Err(refusal.kind())),
                    }
                }
                // Judged before, or not the beginning of the answer: noise.
                _ => {}
            }
            at = at.saturating_add(1);
            if leading {
                self.start = at;
            }
        }
        self.judged = self.end;
        None
    }

    /// Why the attempt failed, once it is over.
    fn give_up(&self) -> ErrorKind {
        if self.corrupt || self.flooded() {
            ErrorKind::Data
        } else {
            ErrorKind::LostCommunication
        }
    }
}

impl<P, D> Rtu<P, D>
where
    P: embedded_io::Read + embedded_io::Write + embedded_io::ReadReady,
    D: embedded_hal::delay::DelayNs,
{
    fn transact(&mut self, request: &Request, out: &mut [u8]) -> Result<(), ErrorKind> {
        let mut tx = [0u8; MAX_RTU_ADU];
        let len = request.encode(&mut tx)?;
        let tx = tx.get(..len).unwrap_or_default();
        if request.unit == BROADCAST {
            self.discard_stale().map_err(|_| ErrorKind::Communication)?;
            return self.send(tx).map_err(|_| ErrorKind::Communication);
        }
        let mut failed = Failed::new();
        for _ in 0..=self.retries {
            match self.attempt(request, tx, out) {
                Ok(()) => return Ok(()),
                Err(Fault::Retry(kind)) => failed.add(kind),
                Err(Fault::Stop(kind)) => return Err(kind),
            }
        }
        Err(failed.kind)
    }

    fn attempt(&mut self, request: &Request, tx: &[u8], out: &mut [u8]) -> Result<(), Fault> {
        self.discard_stale()?;
        self.send(tx)?;
        let mut rx = Receiver::new();
        let limit = u64::from(self.timeout_ms).saturating_mul(1000);
        let mut waited: u64 = 0;
        loop {
            if let Some(answer) = rx.poll(request, out) {
                return answer.map_err(Fault::Stop);
            }
            if rx.flooded() {
                return Err(Fault::Retry(rx.give_up()));
            }
            if embedded_io::ReadReady::read_ready(&mut self.port).map_err(serial)? {
                let n = embedded_io::Read::read(&mut self.port, rx.room()).map_err(serial)?;
                if n == 0 {
                    // End of file: the port is gone.
                    return Err(Fault::Stop(ErrorKind::Communication));
                }
                rx.filled(n);
                continue;
            }
            if waited >= limit {
                return Err(Fault::Retry(rx.give_up()));
            }
            self.delay.delay_us(POLL_US);
            waited = waited.saturating_add(u64::from(POLL_US));
        }
    }

    /// Drops what is on the line already (a late answer to an earlier request, noise).
    fn discard_stale(&mut self) -> Result<(), Fault> {
        let mut scratch = [0u8; 32];
        let mut dropped = 0usize;
        while dropped < STALE_BUDGET
            && embedded_io::ReadReady::read_ready(&mut self.port).map_err(serial)?
        {
            match embedded_io::Read::read(&mut self.port, &mut scratch).map_err(serial)? {
                0 => break,
                n => dropped = dropped.saturating_add(n),
            }
        }
        Ok(())
    }

    fn send(&mut self, tx: &[u8]) -> Result<(), Fault> {
        embedded_io::Write::write_all(&mut self.port, tx).map_err(serial)?;
        embedded_io::Write::flush(&mut self.port).map_err(serial)
    }
}

impl<P, D> super::Modbus for Rtu<P, D>
where
    P: embedded_io::Read + embedded_io::Write + embedded_io::ReadReady,
    D: embedded_hal::delay::DelayNs,
{
    fn read(
        &mut self,
        unit: u8,
        table: Table,
        address: u16,
        count: u16,
        out: &mut [u8],
    ) -> Result<(), ErrorKind> {
        let request = request(unit, table, address, count, out.len(), None)?;
        self.transact(&request, out)
    }

    fn write(
        &mut self,
        unit: u8,
        table: Table,
        address: u16,
        count: u16,
        data: &[u8],
    ) -> Result<(), ErrorKind> {
        let request = request(unit, table, address, count, data.len(), Some(data))?;
        self.transact(&request, &mut [])
    }

    /// The timeout of `/1027//21`, as the target multiplexer passes it before every
    /// transaction (0: [`DEFAULT_TIMEOUT_MS`]).
    fn set_timeout_ms(&mut self, timeout_ms: u32) {
        self.take_timeout(timeout_ms);
    }
}

impl<P, D> Rtu<P, D>
where
    P: embedded_io_async::Read + embedded_io_async::Write,
    D: embedded_hal_async::delay::DelayNs,
{
    async fn transact_async(
        &mut self,
        request: &Request<'_>,
        out: &mut [u8],
    ) -> Result<(), ErrorKind> {
        let mut tx = [0u8; MAX_RTU_ADU];
        let len = request.encode(&mut tx)?;
        let tx = tx.get(..len).unwrap_or_default();
        if request.unit == BROADCAST {
            self.discard_stale_async()
                .map_err(|_| ErrorKind::Communication)?;
            return self
                .send_async(tx)
                .await
                .map_err(|_| ErrorKind::Communication);
        }
        let mut failed = Failed::new();
        for _ in 0..=self.retries {
            match self.attempt_async(request, tx, out).await {
                Ok(()) => return Ok(()),
                Err(Fault::Retry(kind)) => failed.add(kind),
                Err(Fault::Stop(kind)) => return Err(kind),
            }
        }
        Err(failed.kind)
    }

    async fn attempt_async(
        &mut self,
        request: &Request<'_>,
        tx: &[u8],
        out: &mut [u8],
    ) -> Result<(), Fault> {
        self.discard_stale_async()?;
        self.send_async(tx).await?;
        let mut rx = Receiver::new();
        let Rtu {
            port,
            delay,
            timeout_ms,
            ..
        } = self;
        let receive = async {
            loop {
                if let Some(answer) = rx.poll(request, out) {
                    return answer.map_err(Fault::Stop);
                }
                if rx.flooded() {
                    return Err(Fault::Retry(rx.give_up()));
                }
                let n = embedded_io_async::Read::read(port, rx.room())
                    .await
                    .map_err(serial)?;
                if n == 0 {
                    return Err(Fault::Stop(ErrorKind::Communication));
                }
                rx.filled(n);
            }
        };
        let outcome = select(receive, delay.delay_ms(*timeout_ms)).await;
        match outcome {
            Either::First(answer) => answer,
            Either::Second(()) => Err(Fault::Retry(rx.give_up())),
        }
    }

    /// Drops what the port holds already: every read that completes at once.
    fn discard_stale_async(&mut self) -> Result<(), Fault> {
        let mut scratch = [0u8; 32];
        let mut dropped = 0usize;
        while dropped < STALE_BUDGET {
            let read = embedded_io_async::Read::read(&mut self.port, &mut scratch);
            match embassy_futures::poll_once(read) {
                core::task::Poll::Ready(Ok(n)) if n > 0 => dropped = dropped.saturating_add(n),
                core::task::Poll::Ready(Err(e)) => return Err(serial(e)),
                _ => break,
            }
        }
        Ok(())
    }

    async fn send_async(&mut self, tx: &[u8]) -> Result<(), Fault> {
        embedded_io_async::Write::write_all(&mut self.port, tx)
            .await
            .map_err(serial)?;
        embedded_io_async::Write::flush(&mut self.port)
            .await
            .map_err(serial)
    }
}

impl<P, D> super::asynch::Modbus for Rtu<P, D>
where
    P: embedded_io_async::Read + embedded_io_async::Write,
    D: embedded_hal_async::delay::DelayNs,
{
    async fn read(
        &mut self,
        unit: u8,
        table: Table,
        address: u16,
        count: u16,
        out: &mut [u8],
    ) -> Result<(), ErrorKind> {
        let request = request(unit, table, address, count, out.len(), None)?;
        self.transact_async(&request, out).await
    }

    async fn write(
        &mut self,
        unit: u8,
        table: Table,
        address: u16,
        count: u16,
        data: &[u8],
    ) -> Result<(), ErrorKind> {
        let request = request(unit, table, address, count, data.len(), Some(data))?;
        self.transact_async(&request, &mut []).await
    }

    /// As the blocking master's (0: [`DEFAULT_TIMEOUT_MS`]).
    fn set_timeout_ms(&mut self, timeout_ms: u32) {
        self.take_timeout(timeout_ms);
    }
}
