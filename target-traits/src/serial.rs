//! A raw (transparent) serial line as a target protocol (SERIAL, `/1027//1` = 6): the
//! access a board provides ([`Serial`], blocking, and [`asynch::Serial`]), how an answer
//! ends ([`Until`]: the handshake [`Delimiter`] and the timeout of `/1027//21`), and
//! [`RawSerial`], the adapter over any `embedded-io` serial port, blocking and async.
//!
//! The bytes cross these traits as they are on the line: nothing is framed, escaped or
//! checked. What the target sends unasked (after a send only, between two exchanges) is
//! kept as *received bytes*, read with [`Serial::read_received`] (`GET /1027//35`) and
//! counted with [`Serial::received_count`] (`GET /1027//43`).
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use embassy_futures::select::{select, Either};

use crate::{ErrorKind, ErrorType};

/// How long an answer may take unless the configuration says (a timeout of 0).
pub const DEFAULT_TIMEOUT_MS: u32 = 1000;

/// The blocking adapter's time step while the line is quiet: a tenth of a character at
/// 9600 baud.
const POLL_US: u32 = 100;

/// Bytes read from the port at a time.
const SCRATCH: usize = 32;

const CR: u8 = b'\r';
const LF: u8 = b'\n';

/// What ends a target's answer besides its timeout (`/1027//21` bits 15–12, the
/// handshake delimiter: NONE 0, CR 1, LF 2, CR_LF 3). The delimiter is part of the
/// answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Delimiter {
    /// Nothing: the answer ends at its timeout (or when the buffer is full).
    #[default]
    None,
    /// A carriage return, `0D`.
    Cr,
    /// A line feed, `0A`.
    Lf,
    /// `0D 0A`.
    CrLf,
}

impl Delimiter {
    /// The delimiter of a configuration code (0 to 3); `None` for the others.
    pub const fn from_code(code: u8) -> Option<Delimiter> {
        match code {
            0 => Some(Delimiter::None),
            1 => Some(Delimiter::Cr),
            2 => Some(Delimiter::Lf),
            3 => Some(Delimiter::CrLf),
            _ => None,
        }
    }

    /// Whether `answer` ends with the delimiter (never for [`Delimiter::None`]).
    pub fn ends(self, answer: &[u8]) -> bool {
        match self {
            Delimiter::None => false,
            Delimiter::Cr => answer.last() == Some(&CR),
            Delimiter::Lf => answer.last() == Some(&LF),
            Delimiter::CrLf => answer.ends_with(&[CR, LF]),
        }
    }
}

/// When an answer ends: at its delimiter, once `timeout_ms` have passed (0:
/// the implementation's default, [`DEFAULT_TIMEOUT_MS`] for [`RawSerial`]), or when the
/// buffer is full, whichever comes first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Until {
    /// The delimiter.
    pub delimiter: Delimiter,
    /// The timeout, in milliseconds.
    pub timeout_ms: u32,
}

impl Until {
    /// The timeout in force: `timeout_ms`, or [`DEFAULT_TIMEOUT_MS`] for 0.
    pub const fn timeout_or_default(self) -> u32 {
        if self.timeout_ms == 0 {
            DEFAULT_TIMEOUT_MS
        } else {
            self.timeout_ms
        }
    }
}

/// A raw serial line to the target (a UART, a serial port reached over TCP).
///
/// An answer that ends at its timeout is no error: it is what arrived, maybe nothing (a
/// silent target cannot be told from one that answers nothing). A port that fails is
/// [`ErrorKind::Communication`] (`B6`), one that cannot be reached
/// [`ErrorKind::Unreachable`] (`A5`), one lost mid-exchange
/// [`ErrorKind::LostCommunication`] (`B7`).
pub trait Serial: ErrorType {
    /// Sends `data`; what the target answers is kept as received bytes.
    fn send(&mut self, data: &[u8]) -> Result<(), Self::Error>;

    /// Sends `data`, then receives the target's answer into `answer` until `until` says
    /// it ended: its length. What arrived before the send is kept as received bytes, not
    /// taken for the answer; what arrives after the answer ended is kept too.
    fn send_receive(
        &mut self,
        data: &[u8],
        answer: &mut [u8],
        until: Until,
    ) -> Result<usize, Self::Error>;

    /// Moves the oldest received bytes into `out`, as many as it holds: how many.
    fn read_received(&mut self, out: &mut [u8]) -> Result<usize, Self::Error>;

    /// How many bytes are received and not read yet.
    fn received_count(&mut self) -> Result<usize, Self::Error>;
}

impl<T: Serial + ?Sized> Serial for &mut T {
    fn send(&mut self, data: &[u8]) -> Result<(), Self::Error> {
        T::send(self, data)
    }

    fn send_receive(
        &mut self,
        data: &[u8],
        answer: &mut [u8],
        until: Until,
    ) -> Result<usize, Self::Error> {
        T::send_receive(self, data, answer, until)
    }

    fn read_received(&mut self, out: &mut [u8]) -> Result<usize, Self::Error> {
        T::read_received(self, out)
    }

    fn received_count(&mut self) -> Result<usize, Self::Error> {
        T::received_count(self)
    }
}

/// The async [`Serial`].
pub mod asynch {
    use super::Until;
    use crate::ErrorType;

    /// [`super::Serial`], awaiting the line.
    #[allow(async_fn_in_trait)]
    pub trait Serial: ErrorType {
        /// [`super::Serial::send`].
        async fn send(&mut self, data: &[u8]) -> Result<(), Self::Error>;

        /// [`super::Serial::send_receive`].
        async fn send_receive(
            &mut self,
            data: &[u8],
            answer: &mut [u8],
            until: Until,
        ) -> Result<usize, Self::Error>;

        /// [`super::Serial::read_received`]: what has arrived, without waiting.
        async fn read_received(&mut self, out: &mut [u8]) -> Result<usize, Self::Error>;

        /// [`super::Serial::received_count`]: what has arrived, without waiting.
        async fn received_count(&mut self) -> Result<usize, Self::Error>;
    }
}

/// The received bytes: the newest `N` kept, the oldest dropped when more arrive.
#[derive(Debug)]
struct Received<const N: usize> {
    buf: [u8; N],
    /// Where the oldest byte is.
    start: usize,
    len: usize,
    /// Bytes dropped to make room.
    dropped: u32,
}

impl<const N: usize> Received<N> {
    const fn new() -> Self {
        Received {
            buf: [0; N],
            start: 0,
            len: 0,
            dropped: 0,
        }
    }

    /// `i` within the buffer (`0` when it holds nothing).
    fn wrap(i: usize) -> usize {
        i.checked_rem(N).unwrap_or(0)
    }

    fn push(&mut self, byte: u8) {
        if self.len >= N {
            // Full (or no room at all): the newest takes the oldest's place.
            if let Some(slot) = self.buf.get_mut(self.start) {
                *slot = byte;
            }
            self.start = Self::wrap(self.start.saturating_add(1));
            self.dropped = self.dropped.saturating_add(1);
        } else {
            let at = Self::wrap(self.start.saturating_add(self.len));
            if let Some(slot) = self.buf.get_mut(at) {
                *slot = byte;
            }
            self.len = self.len.saturating_add(1);
        }
    }

    fn extend(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.push(byte);
        }
    }

    /// Moves the oldest bytes into `out`: how many.
    fn pop_into(&mut self, out: &mut [u8]) -> usize {
        let n = self.len.min(out.len());
        for slot in out.iter_mut().take(n) {
            *slot = self.buf.get(self.start).copied().unwrap_or(0);
            self.start = Self::wrap(self.start.saturating_add(1));
        }
        self.len = self.len.saturating_sub(n);
        n
    }
}

/// An answer being received.
struct Answer<'a> {
    buf: &'a mut [u8],
    filled: usize,
    delimiter: Delimiter,
}

impl Answer<'_> {
    fn ended(&self) -> bool {
        self.filled >= self.buf.len()
            || self
                .delimiter
                .ends(self.buf.get(..self.filled).unwrap_or_default())
    }

    /// How many bytes to read at most: no more than the answer can take.
    fn want(&self) -> usize {
        self.buf.len().saturating_sub(self.filled).min(SCRATCH)
    }

    /// `bytes` arrived: the answer takes them up to its end, the rest is received.
    fn take<const N: usize>(&mut self, bytes: &[u8], received: &mut Received<N>) {
        let mut rest = bytes;
        while let [byte, tail @ ..] = rest {
            if self.ended() {
                break;
            }
            if let Some(slot) = self.buf.get_mut(self.filled) {
                *slot = *byte;
            }
            self.filled = self.filled.saturating_add(1);
            rest = tail;
        }
        received.extend(rest);
    }
}

/// Whether the port was found at its end of file (a connection the peer closed) while
/// the adapter took what it held: no error before a send, which opens the port again
/// (or fails), `B6` for a call that only reads ([`Ended::gone`]). At its end while an
/// answer comes, the answer fails (`B6`) at once.
#[derive(Clone, Copy, Debug)]
#[must_use]
struct Ended(bool);

impl Ended {
    /// `B6` if the port is at its end.
    fn gone(self) -> Result<(), ErrorKind> {
        if self.0 {
            Err(ErrorKind::Communication)
        } else {
            Ok(())
        }
    }
}

/// What a port's error means to the device.
fn io_error<E: embedded_io::Error>(err: E) -> ErrorKind {
    use embedded_io::ErrorKind as Io;
    match err.kind() {
        Io::ConnectionRefused | Io::NotConnected | Io::AddrNotAvailable => ErrorKind::Unreachable,
        Io::ConnectionReset | Io::ConnectionAborted | Io::BrokenPipe | Io::TimedOut => {
            ErrorKind::LostCommunication
        }
        _ => ErrorKind::Communication,
    }
}

/// A raw serial line over a serial port `P`, with a delay `D` as the time base of the
/// answers' timeout, keeping up to `N` received bytes.
///
/// Blocking with `P: embedded_io::{Read, Write, ReadReady}` and
/// `D: embedded_hal::delay::DelayNs`: the adapter polls the port and counts the delays
/// it makes while the line is quiet (the time a read takes is not counted: the timeout
/// is the quiet time an answer may take). Async with `P: embedded_io_async::{Read,
/// Write}` and `D: embedded_hal_async::delay::DelayNs`: the reads of an answer race one
/// delay of the timeout; an unfinished read is dropped, so the port's read should be
/// cancel-safe, as most UART drivers' is. Nothing allocates; the buffers are the
/// adapter's `N` bytes and 32 on the stack.
///
/// The adapter sees the line only when called: every call first takes what the port
/// holds into the received bytes (at most `N` + 32 bytes a call, so a port that floods
/// does not hold it; the rest waits in the port). **Overflow drops the oldest**: the
/// received bytes are the newest `N` the adapter took; [`RawSerial::dropped`] counts
/// what was dropped. The port's own buffer may overflow too, as the port decides.
#[derive(Debug)]
pub struct RawSerial<P, D, const N: usize> {
    port: P,
    delay: D,
    received: Received<N>,
}

impl<P, D, const N: usize> RawSerial<P, D, N> {
    /// A line on `port`, nothing received.
    pub const fn new(port: P, delay: D) -> Self {
        RawSerial {
            port,
            delay,
            received: Received::new(),
        }
    }

    /// How many received bytes were dropped to make room for newer ones (saturating).
    pub const fn dropped(&self) -> u32 {
        self.received.dropped
    }

    /// The serial port.
    pub const fn port(&self) -> &P {
        &self.port
    }

    /// The serial port, to change.
    pub fn port_mut(&mut self) -> &mut P {
        &mut self.port
    }

    /// The port and the delay back.
    pub fn release(self) -> (P, D) {
        (self.port, self.delay)
    }
}

impl<P, D, const N: usize> ErrorType for RawSerial<P, D, N> {
    type Error = ErrorKind;
}

impl<P, D, const N: usize> RawSerial<P, D, N>
where
    P: embedded_io::Read + embedded_io::Write + embedded_io::ReadReady,
    D: embedded_hal::delay::DelayNs,
{
    /// Takes what the port holds into the received bytes: [`Ended`] if the port is at
    /// its end of file.
    fn take_pending(&mut self) -> Result<Ended, ErrorKind> {
        let mut scratch = [0u8; SCRATCH];
        let budget = N.saturating_add(SCRATCH);
        let mut taken = 0usize;
        while taken < budget && self.port.read_ready().map_err(io_error)? {
            let n = self.port.read(&mut scratch).map_err(io_error)?;
            if n == 0 {
                return Ok(Ended(true));
            }
            self.received.extend(scratch.get(..n).unwrap_or_default());
            taken = taken.saturating_add(n);
        }
        Ok(Ended(false))
    }

    fn transmit(&mut self, data: &[u8]) -> Result<(), ErrorKind> {
        // A port at its end before the send (a connection closed since the last
        // exchange) is opened again by the send, or the send fails.
        let _ended = self.take_pending()?;
        self.port.write_all(data).map_err(io_error)?;
        self.port.flush().map_err(io_error)
    }
}

impl<P, D, const N: usize> Serial for RawSerial<P, D, N>
where
    P: embedded_io::Read + embedded_io::Write + embedded_io::ReadReady,
    D: embedded_hal::delay::DelayNs,
{
    fn send(&mut self, data: &[u8]) -> Result<(), ErrorKind> {
        self.transmit(data)
    }

    fn send_receive(
        &mut self,
        data: &[u8],
        answer: &mut [u8],
        until: Until,
    ) -> Result<usize, ErrorKind> {
        self.transmit(data)?;
        let mut answer = Answer {
            buf: answer,
            filled: 0,
            delimiter: until.delimiter,
        };
        let limit = u64::from(until.timeout_or_default()).saturating_mul(1000);
        let mut waited: u64 = 0;
        let mut scratch = [0u8; SCRATCH];
        while !answer.ended() {
            if self.port.read_ready().map_err(io_error)? {
                let into = scratch.get_mut(..answer.want()).unwrap_or_default();
                let n = self.port.read(into).map_err(io_error)?;
                if n == 0 {
                    return Err(ErrorKind::Communication);
                }
                answer.take(into.get(..n).unwrap_or_default(), &mut self.received);
                continue;
            }
            if waited >= limit {
                break;
            }
            self.delay.delay_us(POLL_US);
            waited = waited.saturating_add(u64::from(POLL_US));
        }
        Ok(answer.filled)
    }

    fn read_received(&mut self, out: &mut [u8]) -> Result<usize, ErrorKind> {
        self.take_pending()?.gone()?;
        Ok(self.received.pop_into(out))
    }

    fn received_count(&mut self) -> Result<usize, ErrorKind> {
        self.take_pending()?.gone()?;
        Ok(self.received.len)
    }
}

impl<P, D, const N: usize> RawSerial<P, D, N>
where
    P: embedded_io_async::Read + embedded_io_async::Write,
    D: embedded_hal_async::delay::DelayNs,
{
    /// Takes what the port holds into the received bytes: every read that completes at
    /// once ([`Ended`] as [`RawSerial::take_pending`]).
    fn take_pending_async(&mut self) -> Result<Ended, ErrorKind> {
        let mut scratch = [0u8; SCRATCH];
        let budget = N.saturating_add(SCRATCH);
        let mut taken = 0usize;
        while taken < budget {
            let read = embedded_io_async::Read::read(&mut self.port, &mut scratch);
            match embassy_futures::poll_once(read) {
                core::task::Poll::Ready(Ok(0)) => return Ok(Ended(true)),
                core::task::Poll::Ready(Ok(n)) => {
                    self.received.extend(scratch.get(..n).unwrap_or_default());
                    taken = taken.saturating_add(n);
                }
                core::task::Poll::Ready(Err(err)) => return Err(io_error(err)),
                core::task::Poll::Pending => break,
            }
        }
        Ok(Ended(false))
    }

    async fn transmit_async(&mut self, data: &[u8]) -> Result<(), ErrorKind> {
        // As [`RawSerial::transmit`]: the send opens a port at its end again, or fails.
        let _ended = self.take_pending_async()?;
        embedded_io_async::Write::write_all(&mut self.port, data)
            .await
            .map_err(io_error)?;
        embedded_io_async::Write::flush(&mut self.port)
            .await
            .map_err(io_error)
    }
}

impl<P, D, const N: usize> asynch::Serial for RawSerial<P, D, N>
where
    P: embedded_io_async::Read + embedded_io_async::Write,
    D: embedded_hal_async::delay::DelayNs,
{
    async fn send(&mut self, data: &[u8]) -> Result<(), ErrorKind> {
        self.transmit_async(data).await
    }

    async fn send_receive(
        &mut self,
        data: &[u8],
        answer: &mut [u8],
        until: Until,
    ) -> Result<usize, ErrorKind> {
        self.transmit_async(data).await?;
        let mut answer = Answer {
            buf: answer,
            filled: 0,
            delimiter: until.delimiter,
        };
        let RawSerial {
            port,
            delay,
            received,
        } = self;
        let receive = async {
            let mut scratch = [0u8; SCRATCH];
            while !answer.ended() {
                let into = scratch.get_mut(..answer.want()).unwrap_or_default();
                let n = embedded_io_async::Read::read(port, into)
                    .await
                    .map_err(io_error)?;
                if n == 0 {
                    return Err(ErrorKind::Communication);
                }
                answer.take(into.get(..n).unwrap_or_default(), received);
            }
            Ok(())
        };
        if let Either::First(result) =
            select(receive, delay.delay_ms(until.timeout_or_default())).await
        {
            result?;
        }
        Ok(answer.filled)
    }

    async fn read_received(&mut self, out: &mut [u8]) -> Result<usize, ErrorKind> {
        self.take_pending_async()?.gone()?;
        Ok(self.received.pop_into(out))
    }

    async fn received_count(&mut self) -> Result<usize, ErrorKind> {
        self.take_pending_async()?.gone()?;
        Ok(self.received.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters_are_the_configuration_s_codes() {
        assert_eq!(Delimiter::from_code(0), Some(Delimiter::None));
        assert_eq!(Delimiter::from_code(3), Some(Delimiter::CrLf));
        assert_eq!(Delimiter::from_code(4), None);
        assert!(Delimiter::Cr.ends(b"ok\r"));
        assert!(!Delimiter::Cr.ends(b"ok\n"));
        assert!(Delimiter::Lf.ends(b"ok\n"));
        assert!(Delimiter::CrLf.ends(b"ok\r\n"));
        assert!(!Delimiter::CrLf.ends(b"ok\n"));
        assert!(!Delimiter::CrLf.ends(b"\r"));
        assert!(!Delimiter::None.ends(b"\r\n"));
        assert!(!Delimiter::Lf.ends(b""));
    }

    #[test]
    fn the_received_bytes_keep_the_newest() {
        let mut received = Received::<4>::new();
        received.extend(b"abcdef");
        assert_eq!((received.len, received.dropped), (4, 2));
        let mut out = [0u8; 3];
        assert_eq!(received.pop_into(&mut out), 3);
        assert_eq!(&out, b"cde");
        received.extend(b"gh");
        let mut out = [0u8; 8];
        assert_eq!(received.pop_into(&mut out), 3);
        assert_eq!(&out[..3], b"fgh");
        assert_eq!(received.pop_into(&mut out), 0);
        // No room at all: everything is dropped, nothing breaks.
        let mut none = Received::<0>::new();
        none.extend(b"xyz");
        assert_eq!((none.len, none.dropped, none.pop_into(&mut out)), (0, 3, 0));
    }
}
