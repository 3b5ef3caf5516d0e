//! The legacy BLE characteristic's framing (`protocol.md` §6.3).
//!
//! The APDU gets an 8-bit checksum (sum of its bytes) appended and is cut into chunks of
//! at most 19 bytes, the short chunk at offset 0. Each BLE write is `offset | chunk`;
//! chunks go from the highest offset down, and the offset-0 chunk ends the frame.
//! Offsets are one byte, so a framed APDU is at most 255 bytes.

use crate::ErrorKind;

/// Data bytes per chunk (MTU 20 minus the offset byte).
pub const CHUNK_DATA_LEN: usize = 19;
/// Largest `apdu | checksum` the one-byte offsets can address.
pub const MAX_FRAMED_LEN: usize = 255;

/// The 8-bit checksum of the client's `impl.Checksum`.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |acc, &b| acc.wrapping_add(b))
}

/// Reassembles one frame from chunks arriving in any order; the offset-0 chunk completes
/// it. Holds at most [`MAX_FRAMED_LEN`] bytes.
#[derive(Debug)]
pub struct Reassembler {
    buf: [u8; MAX_FRAMED_LEN],
    len: usize,
}

impl Default for Reassembler {
    fn default() -> Self {
        Reassembler::new()
    }
}

impl Reassembler {
    /// An empty reassembler.
    pub const fn new() -> Reassembler {
        Reassembler {
            buf: [0; MAX_FRAMED_LEN],
            len: 0,
        }
    }

    /// Feeds one BLE write (`offset | chunk`). Returns the complete APDU (checksum
    /// removed) when the offset-0 chunk arrives; a bad chunk or checksum discards the
    /// frame and is reported as [`ErrorKind::Framing`].
    pub fn push(&mut self, write: &[u8]) -> Result<Option<&[u8]>, ErrorKind> {
        let Some((&offset, chunk)) = write.split_first() else {
            return Err(ErrorKind::Framing);
        };
        let offset = usize::from(offset);
        let end = offset + chunk.len();
        if chunk.is_empty() || chunk.len() > CHUNK_DATA_LEN || end > MAX_FRAMED_LEN {
            self.len = 0;
            return Err(ErrorKind::Framing);
        }
        self.buf[offset..end].copy_from_slice(chunk);
        self.len = self.len.max(end);
        if offset != 0 {
            return Ok(None);
        }
        let framed_len = core::mem::take(&mut self.len);
        let Some((&sum, apdu)) = self.buf[..framed_len].split_last() else {
            return Err(ErrorKind::Framing);
        };
        if checksum(apdu) != sum {
            return Err(ErrorKind::Framing);
        }
        Ok(Some(apdu))
    }
}

/// Splits `apdu` into BLE writes, in sending order (highest offset first), each passed
/// to `write` as `offset | chunk`.
pub fn split<E>(apdu: &[u8], mut write: impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E>
where
    E: From<ErrorKind>,
{
    let framed_len = apdu.len() + 1;
    if framed_len > MAX_FRAMED_LEN {
        return Err(ErrorKind::Overflow.into());
    }
    let sum = checksum(apdu);
    let byte_at = |i: usize| if i < apdu.len() { apdu[i] } else { sum };
    let first = match framed_len % CHUNK_DATA_LEN {
        0 => CHUNK_DATA_LEN,
        n => n,
    };
    // Chunk k >= 1 covers [first + (k-1)*19, first + k*19); chunk 0 covers [0, first).
    let chunks = 1 + (framed_len - first) / CHUNK_DATA_LEN;
    let mut packet = [0u8; CHUNK_DATA_LEN + 1];
    for k in (0..chunks).rev() {
        let (start, end) = match k {
            0 => (0, first),
            k => {
                let start = first + (k - 1) * CHUNK_DATA_LEN;
                (start, start + CHUNK_DATA_LEN)
            }
        };
        packet[0] = start as u8;
        for (slot, i) in packet[1..].iter_mut().zip(start..end) {
            *slot = byte_at(i);
        }
        write(&packet[..1 + end - start])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn writes(apdu: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        split::<ErrorKind>(apdu, |w| {
            out.push(w.to_vec());
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn single_chunk_get_serial_number() {
        // vectors.txt §B.5
        let apdu = hex("a2ca000007010003ffff0002");
        assert_eq!(checksum(&apdu), 0x77);
        assert_eq!(writes(&apdu), vec![hex("00a2ca000007010003ffff000277")]);
    }

    #[test]
    fn login_is_three_writes_highest_offset_first() {
        // vectors.txt §B.5: 44-byte APDU, checksum b9, first chunk 7 bytes.
        let apdu = hex("a2da000027020400ffff000061646d696e000000000000000000000061646d696e0000000000000000000000");
        assert_eq!(
            writes(&apdu),
            vec![
                hex("1a000061646d696e0000000000000000000000b9"),
                hex("0700ffff000061646d696e000000000000000000"),
                hex("00a2da0000270204"),
            ]
        );
        let mut reassembler = Reassembler::new();
        let mut complete = None;
        for w in writes(&apdu) {
            if let Some(frame) = reassembler.push(&w).unwrap() {
                complete = Some(frame.to_vec());
            }
        }
        assert_eq!(complete, Some(apdu));
    }

    #[test]
    fn reassembles_the_device_response_notifications() {
        // vectors.txt §B.5: notifications of the serial-number response.
        let mut reassembler = Reassembler::new();
        assert_eq!(
            reassembler.push(&hex("0350454d5530303030303030303030303190009d")),
            Ok(None)
        );
        let frame = reassembler.push(&hex("00005441")).unwrap().unwrap();
        assert_eq!(
            frame,
            &hex("00544150454d553030303030303030303030319000")[..]
        );
    }

    #[test]
    fn bad_checksum_and_bad_chunks_are_framing_errors() {
        let mut reassembler = Reassembler::new();
        assert_eq!(
            reassembler.push(&hex("00a2ca000007010003ffff000278")),
            Err(ErrorKind::Framing)
        );
        assert_eq!(reassembler.push(&[]), Err(ErrorKind::Framing));
        assert_eq!(reassembler.push(&[0xF0; 20]), Err(ErrorKind::Framing));
        // Still usable afterwards.
        let frame = reassembler
            .push(&hex("00a2ca000007010003ffff000277"))
            .unwrap();
        assert_eq!(frame, Some(&hex("a2ca000007010003ffff0002")[..]));
    }

    #[test]
    fn frames_longer_than_255_bytes_cannot_be_split() {
        assert_eq!(
            split::<ErrorKind>(&[0; 255], |_| Ok(())),
            Err(ErrorKind::Overflow)
        );
        assert_eq!(writes(&[0; 254]).len(), 14);
    }
}
