//! Modbus RTU for the slave: the request frames of a byte stream ([`RtuDecoder`]) and,
//! with the feature `async`, the side link of a board's UART ([`RtuSlave`]).
//!
//! # Delimiting frames
//!
//! An RTU frame has no delimiter: on a line, 3.5 characters of silence end it; on a
//! socket (QEMU's serial line as TCP, a gateway) there is no silence to rely on. The
//! decoder therefore finds frames by their contents, as masters do (pymodbus' "hunting"):
//! after every byte it looks, oldest first, for a start from which the bytes received
//! make a whole request (the length rmodbus guesses from its function and byte count,
//! `rmodbus::guess_request_frame_len`) ending with its CRC-16. Bytes that start no
//! frame — noise, a frame cut short, a frame with a bad CRC — are passed over: the next
//! good frame is received whatever came before. It holds the last
//! [`MAX_RTU_FRAME`] bytes (the largest frame): older ones are dropped, so a stream
//! that never forms a frame takes bounded room and time (at most 249 length guesses
//! and a CRC per byte).
//!
//! At first, once a frame ended, or once the line was [cleared](RtuDecoder::clear),
//! the decoder is in step with the line: the next byte starts the next frame, a
//! request of the master or the answer of a slave (on a bus it hears both, for every
//! unit), and only the frame from there is looked for, to its end — a request (for
//! this unit or another) given out, an answer passed over. Only once the bytes from
//! there are longer than any frame they could start does it hunt again. So, in step, a
//! frame of this unit carried in the data of another unit's traffic (registers written
//! to it, or read from it: anybody's bytes) is not taken for a request.

use rmodbus::{guess_request_frame_len, ModbusProto};

use super::{crc_ok, MAX_RTU_FRAME};

/// The shortest request: unit, function, two words, CRC.
const MIN_REQUEST: usize = 8;

/// A receiver of RTU request frames: bytes in, whole frames (CRC checked) out.
pub struct RtuDecoder {
    buf: [u8; MAX_RTU_FRAME],
    len: usize,
    /// The frame the last byte completed (`buf[start..end]`), until the next byte.
    frame: Option<(usize, usize)>,
    /// Whether `buf` starts where a frame starts (after a frame, or a silence).
    in_step: bool,
}

impl Default for RtuDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl RtuDecoder {
    /// A receiver waiting for its first frame.
    pub const fn new() -> Self {
        RtuDecoder {
            buf: [0; MAX_RTU_FRAME],
            len: 0,
            // As after a silence: the line's first byte starts a frame (or it hunts).
            frame: None,
            in_step: true,
        }
    }

    /// Takes one byte of the line: the frame it completes (unit, PDU and CRC; kept as
    /// [`RtuDecoder::frame`] until the next byte), or `None`. A frame taken, the bytes
    /// before it and it are forgotten.
    pub fn push(&mut self, byte: u8) -> Option<&[u8]> {
        if self.frame.take().is_some() {
            self.len = 0;
            self.in_step = true;
        }
        if self.in_step {
            return self.in_step_push(byte);
        }
        if self.len >= MAX_RTU_FRAME {
            // The oldest byte starts no frame any more: whatever frame ends later begins
            // after it.
            self.buf.copy_within(1.., 0);
            self.len = MAX_RTU_FRAME - 1;
        }
        *self.buf.get_mut(self.len)? = byte;
        self.len += 1;
        let received = self.buf.get(..self.len)?;
        let starts = (received.len() + 1).saturating_sub(MIN_REQUEST);
        let start =
            (0..starts).find(|&start| is_request(received.get(start..).unwrap_or_default()))?;
        self.frame = Some((start, self.len));
        self.frame()
    }

    /// [`RtuDecoder::push`] in step with the line: the bytes from the start of `buf`
    /// are one frame, a request given out, an answer passed over; once longer than any
    /// frame they could be, the decoder hunts again from this byte.
    fn in_step_push(&mut self, byte: u8) -> Option<&[u8]> {
        *self.buf.get_mut(self.len)? = byte;
        self.len += 1;
        let received = self.buf.get(..self.len)?;
        if is_request(received) {
            self.frame = Some((0, self.len));
            return self.frame();
        }
        if passed_over_lens(received).contains(&received.len()) && crc_ok(received) {
            // Another slave's answer, or a request the map has no use for: the next
            // frame starts after it.
            self.len = 0;
            return None;
        }
        if received.len() >= longest(received) {
            // No frame starts there: hunt, this byte the last of the frame looked for.
            self.in_step = false;
            let starts = (received.len() + 1).saturating_sub(MIN_REQUEST);
            let start =
                (1..starts).find(|&start| is_request(received.get(start..).unwrap_or_default()))?;
            self.frame = Some((start, self.len));
            return self.frame();
        }
        None
    }

    /// The frame the last byte completed, if it did.
    pub fn frame(&self) -> Option<&[u8]> {
        let (start, end) = self.frame?;
        self.buf.get(start..end)
    }

    /// Forgets every byte received (a line silent for longer than a frame may be).
    pub fn clear(&mut self) {
        self.len = 0;
        self.frame = None;
        self.in_step = true;
    }
}

/// A length not known yet (a byte count not received): longer than `frame`.
const fn unknown(frame: &[u8]) -> usize {
    frame.len() + 1
}

/// The lengths, other than the request rmodbus guesses, of the frame `frame` starts:
/// a slave's answer (an exception, a read's with its byte count, a write's echo) and a
/// request rmodbus has no length for (functions 22 and 23); 0 for none.
fn passed_over_lens(frame: &[u8]) -> [usize; 2] {
    let Some(&function) = frame.get(1) else {
        return [unknown(frame); 2];
    };
    let count = |at: usize, fixed: usize| {
        frame
            .get(at)
            .map_or(unknown(frame), |&bytes| fixed + usize::from(bytes))
    };
    let answer = match function {
        0x80.. => 5,
        1..=4 | 0x17 => count(2, 5),
        5 | 6 | 15 | 16 => 8,
        0x16 => 10,
        _ => 0,
    };
    let request = match function {
        0x16 => 10,
        0x17 => count(10, 13),
        _ => 0,
    };
    [answer, request]
}

/// The longest frame `frame` may start, request or answer (longer than `frame` while a
/// byte count is missing), at most [`MAX_RTU_FRAME`].
fn longest(frame: &[u8]) -> usize {
    let request = match frame {
        [] | [_] | [_, 15 | 16, ..] if frame.len() < 7 => unknown(frame),
        _ => guess_request_frame_len(frame, ModbusProto::Rtu).map_or(0, usize::from),
    };
    let [answer, other] = passed_over_lens(frame);
    request.max(answer).max(other).min(MAX_RTU_FRAME)
}

/// Whether `candidate` is one whole request frame: its length the one its function (and
/// byte count) gives, its CRC good.
fn is_request(candidate: &[u8]) -> bool {
    guess_request_frame_len(candidate, ModbusProto::Rtu)
        .is_ok_and(|len| usize::from(len) == candidate.len())
        && crc_ok(candidate)
}

#[cfg(feature = "async")]
pub use link::RtuSlave;

#[cfg(feature = "async")]
mod link {
    use super::RtuDecoder;
    use crate::modbus_slave::{outcome, request, respond, Action, Framing, Response, SideRequest};
    use crate::serial::SerialError;
    use crate::side::SideLink;
    use crate::ErrorType;

    /// Where the slave is in a master's request.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum State {
        /// Receiving.
        Idle,
        /// A frame asks for this side request: not taken yet.
        Ready(SideRequest),
        /// Taken by the device loop, not answered yet.
        Taken,
    }

    /// The Modbus RTU slave of a serial port `P` (`embedded-io-async`), as a side link
    /// of the device loop ([`crate::side::Beside`]): frames decoded by an
    /// [`RtuDecoder`], each read or write of a variable a side request
    /// ([`crate::modbus_slave::request`]), answered from the device's response
    /// ([`crate::modbus_slave::respond`]); frames for another unit, or with a bad CRC,
    /// go unanswered, and those the register map refuses by themselves (a function it
    /// has no use for, a count the frame contradicts) are answered their exception at
    /// once. One request at a time: the next frame is read once the last is answered.
    ///
    /// [`SideLink::ready`] is cancel-safe when the port's read and write are (a read or
    /// write dropped unfinished took or sent nothing): the bytes read and not yet
    /// decoded, and an exception partly sent, stay in the slave.
    pub struct RtuSlave<P> {
        port: P,
        framing: Framing,
        decoder: RtuDecoder,
        chunk: [u8; 16],
        /// Bytes of `chunk` read and not yet decoded.
        pending: (usize, usize),
        state: State,
        /// The answer being sent.
        out: Response,
        /// Bytes of `out` sent.
        sent: usize,
    }

    impl<P> RtuSlave<P> {
        /// The slave of unit `unit` (1 to 247) over `port`.
        pub fn new(port: P, unit: u8) -> Self {
            RtuSlave {
                port,
                framing: Framing::Rtu { unit },
                decoder: RtuDecoder::new(),
                chunk: [0; 16],
                pending: (0, 0),
                state: State::Idle,
                out: Response::new(),
                sent: 0,
            }
        }

        /// The port.
        pub fn port_mut(&mut self) -> &mut P {
            &mut self.port
        }

        /// Pushes the bytes read and not yet decoded until one completes a frame that
        /// asks for something: a side request (`Ready`), or an answer put in `out`.
        /// Whether one did.
        fn decode(&mut self) -> bool {
            let (mut at, end) = self.pending;
            while let Some(&byte) = self.chunk.get(at).filter(|_| at < end) {
                at += 1;
                let Some(frame) = self.decoder.push(byte) else {
                    continue;
                };
                match request(self.framing, frame, &mut self.out) {
                    Action::Side(side) => self.state = State::Ready(side),
                    Action::Answer => self.sent = 0,
                    Action::Silent => continue,
                }
                self.pending = (at, end);
                return true;
            }
            self.pending = (0, 0);
            false
        }
    }

    impl<P: embedded_io_async::ErrorType> ErrorType for RtuSlave<P> {
        type Error = SerialError<P::Error>;
    }

    impl<P> SideLink for RtuSlave<P>
    where
        P: embedded_io_async::Read + embedded_io_async::Write,
    {
        async fn ready(&mut self) -> Result<(), Self::Error> {
            loop {
                // An exception answered at once, sent from where a cancelled wait left it.
                while let Some(rest) = self.out.get(self.sent..).filter(|r| !r.is_empty()) {
                    let n = self.port.write(rest).await.map_err(SerialError::Port)?;
                    if n == 0 {
                        return Err(SerialError::Closed);
                    }
                    self.sent += n;
                }
                if !self.out.is_empty() {
                    self.port.flush().await.map_err(SerialError::Port)?;
                    self.out.clear();
                    self.sent = 0;
                }
                match self.state {
                    State::Ready(_) => return Ok(()),
                    // The next frame waits for this one's answer.
                    State::Taken => core::future::pending::<()>().await,
                    State::Idle => {}
                }
                if self.decode() {
                    continue;
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

        fn take(&mut self, buf: &mut [u8]) -> Option<usize> {
            let State::Ready(side) = self.state else {
                return None;
            };
            self.state = State::Taken;
            let frame = self.decoder.frame().unwrap_or_default();
            Some(side.emit(frame, buf).unwrap_or(0))
        }

        async fn reply(&mut self, response: &[u8]) -> Result<(), Self::Error> {
            if self.state != State::Taken {
                return Ok(());
            }
            self.state = State::Idle;
            let frame = self.decoder.frame().unwrap_or_default();
            respond(self.framing, frame, outcome(response), &mut self.out);
            self.decoder.clear();
            let sent = self.port.write_all(&self.out).await;
            self.out.clear();
            self.sent = 0;
            sent.map_err(SerialError::Port)?;
            self.port.flush().await.map_err(SerialError::Port)
        }
    }
}
