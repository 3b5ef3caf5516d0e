//! Modbus RTU for the slave: the request frames of a byte stream ([`RtuDecoder`]).
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
            frame: None,
        }
    }

    /// Takes one byte of the line: the frame it completes (unit, PDU and CRC; kept as
    /// [`RtuDecoder::frame`] until the next byte), or `None`. A frame taken, the bytes
    /// before it and it are forgotten.
    pub fn push(&mut self, byte: u8) -> Option<&[u8]> {
        if self.frame.take().is_some() {
            self.len = 0;
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

    /// The frame the last byte completed, if it did.
    pub fn frame(&self) -> Option<&[u8]> {
        let (start, end) = self.frame?;
        self.buf.get(start..end)
    }

    /// Forgets every byte received (a line silent for longer than a frame may be).
    pub fn clear(&mut self) {
        self.len = 0;
        self.frame = None;
    }
}

/// Whether `candidate` is one whole request frame: its length the one its function (and
/// byte count) gives, its CRC good.
fn is_request(candidate: &[u8]) -> bool {
    guess_request_frame_len(candidate, ModbusProto::Rtu)
        .is_ok_and(|len| usize::from(len) == candidate.len())
        && crc_ok(candidate)
}
