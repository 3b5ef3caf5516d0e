//! Serial framing: request and response APDUs over a byte stream (a UART, a serial line
//! bridged over TCP), spec README decision 1.
//!
//! # On the wire
//!
//! Each frame is the APDU followed by its CRC, byte-stuffed with COBS (Consistent
//! Overhead Byte Stuffing, the `cobs` crate) so that it holds no `00` byte, between two
//! `00` delimiters:
//!
//! ```text
//! 00 | COBS( apdu | crc32c(apdu) as 4 bytes, little-endian ) | 00
//! ```
//!
//! - `crc32c` is CRC-32/ISCSI (Castagnoli: polynomial `0x1EDC6F41` reflected, initial
//!   value and final XOR `0xFFFF_FFFF`; `crc::CRC_32_ISCSI`), the CRC the configuration
//!   store uses, so a board carries one CRC. `crc32c(b"123456789")` is `0xE3069283`.
//! - COBS replaces every `00` of the stuffed bytes: the encoded block is a run of
//!   groups, each a code byte `n` (1 to 255) then `n - 1` data bytes; a group with
//!   `n < 255` stands for its data then one `00` (dropped after the last group). A
//!   frame of `k` stuffed bytes takes at most `k + k / 254 + 1` encoded bytes.
//! - The leading `00` ends whatever noise came before, so a good frame after noise is
//!   never lost with it; a receiver ignores empty frames (`00 00`).
//!
//! A frame whose APDU is empty (`00 01 01 01 01 01 00`: the CRC of nothing is 0) says
//! that the interlocutor behind the line went away (a bridge's WebSocket client closed):
//! the board ends the session of the serial channel, as when a link closes
//! ([`SerialLink`] receives it as a frame of length 0). No request APDU is empty.
//!
//! For example the APDU `01 02 00 03` (CRC `0xC91D_4086`, little-endian `86 40 1D C9`)
//! is sent as `00 03 01 02 06 03 86 40 1D C9 00`.
//!
//! # Resynchronisation
//!
//! A receiver ([`Decoder`]) collects the bytes between two `00`s. A frame that does not
//! decode as COBS, is shorter than the CRC, has a wrong CRC or is longer than the
//! receiver's buffer is dropped, reported as a [`FrameError`], and the next `00` starts
//! afresh: whatever a line carries, the next good frame is received.
//!
//! # On a board
//!
//! [`SerialLink`] is a [`FrameLink`] (blocking, and async with the `async` feature) over
//! any `embedded-io` port. [`SerialHost`] is the device loop's [`Host`] for a board whose
//! one link is a serial port: it polls the port until a frame or the engine's deadline,
//! so [`crate::run::run`] serves the line and runs the timers with nothing else.
//! Received frames are wiped from the decoder once delivered, and sent ones from the send
//! buffer (they carry passwords), as the loop wipes its own buffers.

use crc::{Crc, NoTable, CRC_32_ISCSI};
use lwm2m_core::session::Session;
use lwm2m_core::{Channel, ChannelId, Effect, Instant};
use zeroize::Zeroize;

use crate::run::{Clock, Host, HostEvent};
use crate::{ErrorKind, ErrorType, FrameLink};

/// The frames' CRC: CRC-32/ISCSI, computed bit by bit (no table in flash).
const CRC: Crc<u32, NoTable> = Crc::<u32, NoTable>::new(&CRC_32_ISCSI);

/// Bytes of the CRC after the APDU.
pub const CRC_LEN: usize = 4;

/// The delimiter of frames.
pub const DELIMITER: u8 = 0x00;

/// The most bytes a frame carrying an APDU of `apdu_len` bytes takes on the wire, both
/// delimiters included.
pub const fn encoded_len(apdu_len: usize) -> usize {
    let stuffed = apdu_len + CRC_LEN;
    2 + stuffed + stuffed / 254 + 1
}

/// Why a received frame was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum FrameError {
    /// Its bytes are not COBS (a group cut short by a delimiter).
    Malformed,
    /// Shorter than its CRC.
    TooShort,
    /// Its CRC does not match.
    BadCrc,
    /// Longer than the receiver's buffer: dropped up to the next delimiter.
    TooLong,
}

impl FrameError {
    /// The generic kind of the error.
    pub fn kind(self) -> ErrorKind {
        match self {
            FrameError::TooLong => ErrorKind::Overflow,
            FrameError::Malformed | FrameError::TooShort | FrameError::BadCrc => ErrorKind::Framing,
        }
    }
}

/// The output buffer cannot hold the encoded frame ([`encode`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BufferTooSmall;

/// Encodes `apdu` as one frame, both delimiters included, into `out`; returns its length.
/// `out` of [`encoded_len`]`(apdu.len())` bytes always suffices.
pub fn encode(apdu: &[u8], out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    let (first, rest) = out.split_first_mut().ok_or(BufferTooSmall)?;
    *first = DELIMITER;
    let crc = CRC.checksum(apdu).to_le_bytes();
    let mut encoder = cobs::CobsEncoder::new(rest);
    encoder.push(apdu).map_err(|_| BufferTooSmall)?;
    encoder.push(&crc).map_err(|_| BufferTooSmall)?;
    let len = encoder.finalize();
    *rest.get_mut(len).ok_or(BufferTooSmall)? = DELIMITER;
    Ok(len + 2)
}

/// A receiver of frames: bytes in, APDUs out, with room for a stuffed frame (APDU and
/// CRC) of `N` bytes.
pub struct Decoder<const N: usize> {
    buf: [u8; N],
    len: usize,
    state: cobs::DecoderState,
    /// The frame outgrew `buf`: its bytes are dropped up to the next delimiter.
    overflow: bool,
    /// Bytes of `buf` the last frame wrote: what [`Decoder::wipe`] clears (not the whole
    /// buffer for every dropped frame of noise).
    filled: usize,
}

impl<const N: usize> Default for Decoder<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Decoder<N> {
    /// A receiver waiting for its first frame.
    pub const fn new() -> Self {
        Decoder {
            buf: [0; N],
            len: 0,
            state: cobs::DecoderState::Idle,
            overflow: false,
            filled: 0,
        }
    }

    /// Takes one byte of the line: the APDU of the frame it completes (valid until the
    /// next call), the reason the frame it ends was dropped, or `None` while a frame is
    /// under way.
    pub fn push(&mut self, byte: u8) -> Option<Result<&[u8], FrameError>> {
        if byte == DELIMITER {
            let ended = core::mem::take(&mut self.state);
            let len = core::mem::take(&mut self.len);
            self.filled = self.filled.max(len);
            if core::mem::take(&mut self.overflow) {
                self.filled = N;
                return Some(Err(FrameError::TooLong));
            }
            return match ended {
                cobs::DecoderState::Idle => None,
                // The last group is complete exactly when its count ran out.
                cobs::DecoderState::Grab(0) | cobs::DecoderState::GrabChain(0) => {
                    Some(self.checked(len))
                }
                _ => Some(Err(FrameError::Malformed)),
            };
        }
        if self.overflow {
            return None;
        }
        match self.state.feed(byte) {
            Ok(cobs::DecodeResult::DataContinue(data)) => match self.buf.get_mut(self.len) {
                Some(slot) => {
                    *slot = data;
                    self.len += 1;
                }
                None => self.overflow = true,
            },
            Ok(_) => {}
            // Not reached for a byte other than the delimiter; dropped all the same.
            Err(_) => self.overflow = true,
        }
        None
    }

    /// Wipes the bytes of the last frame (they may carry a password).
    fn wipe(&mut self) {
        if let Some(written) = self.buf.get_mut(..self.filled) {
            written.zeroize();
        }
        self.filled = 0;
    }

    /// The APDU of a frame of `len` stuffed bytes, once its CRC is checked.
    fn checked(&self, len: usize) -> Result<&[u8], FrameError> {
        let frame = self.buf.get(..len).ok_or(FrameError::TooLong)?;
        let split = len.checked_sub(CRC_LEN).ok_or(FrameError::TooShort)?;
        let (apdu, crc) = frame.split_at(split);
        match crc == CRC.checksum(apdu).to_le_bytes() {
            true => Ok(apdu),
            false => Err(FrameError::BadCrc),
        }
    }
}

/// The error of a [`SerialLink`]: its port's, or a frame too large to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SerialError<E> {
    /// The serial port failed.
    Port(E),
    /// The port reached its end (a closed pipe or socket).
    Closed,
    /// A response or request frame larger than the link's buffers.
    Overflow,
}

impl<E: embedded_io::Error> crate::Error for SerialError<E> {
    fn kind(&self) -> ErrorKind {
        match self {
            SerialError::Port(_) => ErrorKind::Other,
            SerialError::Closed => ErrorKind::Closed,
            SerialError::Overflow => ErrorKind::Overflow,
        }
    }
}

/// A [`FrameLink`] over a serial port: frames of at most `N` bytes of APDU, received
/// through a [`Decoder`] and sent by [`encode`] through a buffer of `W` bytes (at least
/// [`encoded_len`]`(N)`). Frames dropped on the way in are counted
/// ([`SerialLink::dropped`]) and never reach the device.
pub struct SerialLink<P, const N: usize, const W: usize> {
    port: P,
    decoder: Decoder<N>,
    chunk: [u8; 32],
    /// Bytes of `chunk` read from the port and not yet pushed into the decoder.
    pending: (usize, usize),
    out: [u8; W],
    dropped: u32,
}

impl<P, const N: usize, const W: usize> SerialLink<P, N, W> {
    /// A link over `port`.
    pub fn new(port: P) -> Self {
        SerialLink {
            port,
            decoder: Decoder::new(),
            chunk: [0; 32],
            pending: (0, 0),
            out: [0; W],
            dropped: 0,
        }
    }

    /// Frames dropped since the link was made (noise, bad CRC, too long).
    pub fn dropped(&self) -> u32 {
        self.dropped
    }

    /// The port.
    pub fn port_mut(&mut self) -> &mut P {
        &mut self.port
    }

    /// Pushes the bytes read and not yet decoded; the length of the APDU of the first
    /// frame they complete, copied into `buf` (`Err` if it does not fit). The decoder's
    /// copy of every frame is wiped.
    fn drain(&mut self, buf: &mut [u8]) -> Option<Result<usize, ()>> {
        let (mut at, end) = self.pending;
        while let Some(&byte) = self.chunk.get(at).filter(|_| at < end) {
            at += 1;
            let copied = match self.decoder.push(byte) {
                None => continue,
                Some(Err(_)) => None,
                Some(Ok(apdu)) => Some(match buf.get_mut(..apdu.len()) {
                    Some(to) => {
                        to.copy_from_slice(apdu);
                        Ok(apdu.len())
                    }
                    None => Err(()),
                }),
            };
            self.decoder.wipe();
            match copied {
                None => self.dropped = self.dropped.wrapping_add(1),
                Some(received) => {
                    // The bytes read of the frame go too: COBS leaves most of them as
                    // they were (a password among them).
                    if let Some(read) = self.chunk.get_mut(..at) {
                        read.zeroize();
                    }
                    self.pending = (at, end);
                    return Some(received);
                }
            }
        }
        self.chunk.zeroize();
        self.pending = (0, 0);
        None
    }
}

impl<P, const N: usize, const W: usize> SerialLink<P, N, W> {
    /// The host event of the first frame the bytes read and not yet decoded complete,
    /// as [`SerialHost`] reports it: a request of `channel` copied into `buf`, or the
    /// link-closed frame. A frame longer than `buf` is dropped and counted.
    fn next_event(&mut self, channel: Channel, buf: &mut [u8]) -> Option<HostEvent> {
        loop {
            return match self.drain(buf)? {
                Ok(0) => Some(HostEvent::Closed(channel.id)),
                Ok(len) => Some(HostEvent::Request { channel, len }),
                // Longer than the loop's buffer: dropped.
                Err(()) => {
                    self.dropped = self.dropped.wrapping_add(1);
                    continue;
                }
            };
        }
    }
}

impl<P: embedded_io::Write, const N: usize, const W: usize> SerialLink<P, N, W> {
    /// Sends `frame` as one frame, blocking; the send buffer is wiped after.
    fn send_frame(&mut self, frame: &[u8]) -> Result<(), SerialError<P::Error>> {
        let len = encode(frame, &mut self.out).map_err(|_| SerialError::Overflow)?;
        let sent = match self.out.get(..len) {
            Some(bytes) => self.port.write_all(bytes).map_err(SerialError::Port),
            None => Err(SerialError::Overflow),
        };
        self.out.zeroize();
        sent?;
        self.port.flush().map_err(SerialError::Port)
    }
}

impl<P: embedded_io::ErrorType, const N: usize, const W: usize> ErrorType for SerialLink<P, N, W> {
    type Error = SerialError<P::Error>;
}

impl<P: embedded_io::Read + embedded_io::Write, const N: usize, const W: usize> FrameLink
    for SerialLink<P, N, W>
{
    fn receive(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        loop {
            match self.drain(buf) {
                Some(Ok(len)) => return Ok(len),
                Some(Err(())) => return Err(SerialError::Overflow),
                None => {}
            }
            let n = self.port.read(&mut self.chunk).map_err(SerialError::Port)?;
            if n == 0 {
                return Err(SerialError::Closed);
            }
            self.pending = (0, n);
        }
    }

    fn send(&mut self, frame: &[u8]) -> Result<(), Self::Error> {
        self.send_frame(frame)
    }
}

#[cfg(feature = "async")]
impl<P: embedded_io_async::Read + embedded_io_async::Write, const N: usize, const W: usize>
    crate::asynch::FrameLink for SerialLink<P, N, W>
{
    async fn receive(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        loop {
            match self.drain(buf) {
                Some(Ok(len)) => return Ok(len),
                Some(Err(())) => return Err(SerialError::Overflow),
                None => {}
            }
            let n = self
                .port
                .read(&mut self.chunk)
                .await
                .map_err(SerialError::Port)?;
            if n == 0 {
                return Err(SerialError::Closed);
            }
            self.pending = (0, n);
        }
    }

    async fn send(&mut self, frame: &[u8]) -> Result<(), Self::Error> {
        let len = encode(frame, &mut self.out).map_err(|_| SerialError::Overflow)?;
        let sent = match self.out.get(..len) {
            Some(bytes) => self.port.write_all(bytes).await.map_err(SerialError::Port),
            None => Err(SerialError::Overflow),
        };
        self.out.zeroize();
        sent?;
        self.port.flush().await.map_err(SerialError::Port)
    }
}

/// The device loop's [`Host`] over one serial port: the board's only link, one channel
/// (`channel`, given at construction). For [`crate::run::run`] on a blocking board, and
/// (feature `async`) for [`crate::run::asynch::run`] on an async one (see its impl below).
///
/// [`Host::wait`] polls the port ([`embedded_io::ReadReady`]) and pushes what it reads
/// into a [`Decoder`] of `N` bytes (a request APDU and its CRC) until a frame is complete
/// or the deadline passes (by its [`Clock`]): a frame is a [`HostEvent::Request`] of
/// `channel`, the link-closed frame (an empty APDU) [`HostEvent::Closed`]. Frames that
/// do not decode, and frames longer than the loop's request buffer, are dropped
/// ([`SerialHost::dropped`]): the next good frame is served. While nothing is ready it
/// calls its idle function ([`SerialHost::with_idle`]), where a board sleeps until an
/// interrupt. [`Host::reply`] sends the answer as one frame through a buffer of `W` bytes
/// (at least [`encoded_len`] of the largest answer).
///
/// A port that reaches its end (reads 0 bytes while ready) is [`SerialError::Closed`].
pub struct SerialHost<P, C, const N: usize, const W: usize> {
    link: SerialLink<P, N, W>,
    clock: C,
    channel: Channel,
    idle: fn(),
}

impl<P, C, const N: usize, const W: usize> SerialHost<P, C, N, W> {
    /// The host side of a board whose link is `port`, its requests coming from
    /// `channel`, its deadlines read on `clock`.
    pub fn new(port: P, clock: C, channel: Channel) -> Self {
        SerialHost {
            link: SerialLink::new(port),
            clock,
            channel,
            idle: || {},
        }
    }

    /// The same host calling `idle` whenever it found nothing to read: a board waits
    /// there for an interrupt (`wfi` on Cortex-M), which must come at least once per tick
    /// of its clock (a SysTick interrupt) for deadlines to be met on time. The default
    /// does nothing (busy polling).
    pub fn with_idle(self, idle: fn()) -> Self {
        SerialHost { idle, ..self }
    }

    /// Frames dropped so far (noise, bad CRC, too long).
    pub fn dropped(&self) -> u32 {
        self.link.dropped()
    }

    /// The port.
    pub fn port_mut(&mut self) -> &mut P {
        self.link.port_mut()
    }

    /// The clock.
    pub fn clock_mut(&mut self) -> &mut C {
        &mut self.clock
    }
}

impl<P: embedded_io::ErrorType, C, const N: usize, const W: usize> ErrorType
    for SerialHost<P, C, N, W>
{
    type Error = SerialError<P::Error>;
}

impl<P, C, const N: usize, const W: usize> Host for SerialHost<P, C, N, W>
where
    P: embedded_io::Read + embedded_io::ReadReady + embedded_io::Write,
    C: Clock,
{
    fn wait(
        &mut self,
        _session: &Session,
        deadline: Option<Instant>,
        buf: &mut [u8],
    ) -> Result<HostEvent, Self::Error> {
        loop {
            if let Some(event) = self.link.next_event(self.channel, buf) {
                return Ok(event);
            }
            // Checked at every turn: a line that never stops delivering bytes (noise)
            // does not hold the deadline off.
            if deadline.is_some_and(|deadline| self.clock.now() >= deadline) {
                return Ok(HostEvent::Timeout);
            }
            if self.link.port.read_ready().map_err(SerialError::Port)? {
                let n = self
                    .link
                    .port
                    .read(&mut self.link.chunk)
                    .map_err(SerialError::Port)?;
                if n == 0 {
                    return Err(SerialError::Closed);
                }
                self.link.pending = (0, n);
            } else {
                (self.idle)();
            }
        }
    }

    fn reply(
        &mut self,
        _channel: ChannelId,
        frame: &[u8],
        _effect: Option<Effect>,
    ) -> Result<(), Self::Error> {
        // One link: every answer goes back on it (a reboot leaves the line up).
        self.link.send_frame(frame)
    }
}

/// The async device loop's host (feature `async`): the same [`SerialHost`] over an
/// `embedded-io-async` port, for [`crate::run::asynch::run`] on an async board.
///
/// [`asynch::Host::wait`](crate::run::asynch::Host::wait) reads the port into the
/// [`Decoder`], racing each read against the deadline on its
/// [`Alarm`](crate::run::asynch::Alarm): the same events and drops as the blocking
/// host, [`HostEvent::Timeout`] at the deadline, even on a line that never stops
/// delivering bytes. While nothing arrives the task sleeps (the port's read and the alarm
/// wake it; the idle function is not called). The wait is cancel-safe when the port's
/// read is (a read dropped unfinished has taken no byte): what was read and not yet
/// decoded stays in the host.
#[cfg(feature = "async")]
impl<P, C, const N: usize, const W: usize> crate::run::asynch::Host for SerialHost<P, C, N, W>
where
    P: embedded_io_async::Read + embedded_io_async::Write,
    C: crate::run::asynch::Alarm,
{
    async fn wait(
        &mut self,
        _session: &Session,
        deadline: Option<Instant>,
        buf: &mut [u8],
    ) -> Result<HostEvent, Self::Error> {
        loop {
            if let Some(event) = self.link.next_event(self.channel, buf) {
                return Ok(event);
            }
            // Checked at every turn, as the blocking host does.
            if deadline.is_some_and(|deadline| self.clock.now() >= deadline) {
                return Ok(HostEvent::Timeout);
            }
            let read = self.link.port.read(&mut self.link.chunk);
            let n = match deadline {
                None => read.await,
                Some(deadline) => {
                    match embassy_futures::select::select(read, self.clock.at(deadline)).await {
                        embassy_futures::select::Either::First(read) => read,
                        embassy_futures::select::Either::Second(()) => {
                            return Ok(HostEvent::Timeout)
                        }
                    }
                }
            }
            .map_err(SerialError::Port)?;
            if n == 0 {
                return Err(SerialError::Closed);
            }
            self.link.pending = (0, n);
        }
    }

    async fn reply(
        &mut self,
        _channel: ChannelId,
        frame: &[u8],
        _effect: Option<Effect>,
    ) -> Result<(), Self::Error> {
        // One link: every answer goes back on it (a reboot leaves the line up).
        crate::asynch::FrameLink::send(&mut self.link, frame).await
    }
}

#[cfg(test)]
mod tests;
