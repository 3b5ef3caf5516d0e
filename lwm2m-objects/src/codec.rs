//! Body decoders shared by the objects: strict about sizes, liberal about the widths the
//! client writes (spec decision 12).

use lwm2m_core::wire::ResultCode;

/// The widths an integer body may have, in bytes (1 to 4): a bit set, so that checking
/// a body against it costs a shift.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Widths(u8);

impl Widths {
    /// One byte.
    pub const BYTE: Widths = Widths::of(&[1]);
    /// One or two bytes (a u16, which the client writes on one byte at times).
    pub const SHORT: Widths = Widths::of(&[1, 2]);
    /// Four bytes.
    pub const WORD: Widths = Widths::of(&[4]);
    /// One, two or four bytes (a u32 written on fewer bytes).
    pub const UP_TO_WORD: Widths = Widths::of(&[1, 2, 4]);

    /// The widths listed; a width of 0 or above 4 fails the build (or panics outside a
    /// constant).
    pub const fn of(widths: &[usize]) -> Widths {
        let mut set = 0;
        let mut i = 0;
        while i < widths.len() {
            assert!(widths[i] >= 1 && widths[i] <= 4, "widths are 1 to 4 bytes");
            set |= 1 << widths[i];
            i += 1;
        }
        Widths(set)
    }

    /// Whether a body of `len` bytes has one of the widths.
    pub const fn allow(self, len: usize) -> bool {
        len <= 4 && self.0 & (1 << len) != 0
    }
}

/// Decodes a big-endian unsigned integer whose width is one of `widths`; any other body
/// length is `86`.
pub fn uint(payload: &[u8], widths: Widths) -> Result<u32, ResultCode> {
    if !widths.allow(payload.len()) {
        return Err(ResultCode::NotAcceptable);
    }
    Ok(payload
        .iter()
        .fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
}

/// Decodes a u16 written on 1 or 2 bytes.
pub fn u16_liberal(payload: &[u8]) -> Result<u16, ResultCode> {
    match *payload {
        [low] => Ok(u16::from(low)),
        [high, low] => Ok(u16::from_be_bytes([high, low])),
        _ => Err(ResultCode::NotAcceptable),
    }
}

/// Checks an ASCII text body: printable characters only, at most `max` bytes. A
/// trailing zero terminator is tolerated and cut off.
pub fn ascii(payload: &[u8], max: usize) -> Result<&[u8], ResultCode> {
    // Without its trailing zeros (a zero before a character is not printable).
    let mut text = payload;
    while let [rest @ .., 0] = text {
        text = rest;
    }
    if text.len() > max || !text.iter().all(|b| (0x20..0x7F).contains(b)) {
        return Err(ResultCode::NotAcceptable);
    }
    Ok(text)
}

/// Replaces the bytes of `dst` with `src` (already checked), in place: `86` if they do
/// not fit, and `dst` is left as it was.
pub(crate) fn replace(
    dst: &mut heapless::vec::VecView<u8, u8>,
    src: &[u8],
) -> Result<(), ResultCode> {
    if src.len() > dst.capacity() {
        return Err(ResultCode::NotAcceptable);
    }
    dst.clear();
    dst.extend_from_slice(src)
        .map_err(|_| ResultCode::NotAcceptable)
}

/// Refuses a body on a resource that takes none.
pub fn empty(payload: &[u8]) -> Result<(), ResultCode> {
    if payload.is_empty() {
        Ok(())
    } else {
        Err(ResultCode::NotAcceptable)
    }
}

/// `v` as decimal text, without `core::fmt` (which would cost a firmware about 1 KiB).
pub fn decimal(mut v: u32, digits: &mut [u8; 10]) -> &[u8] {
    let mut start = digits.len();
    for slot in digits.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        start -= 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    digits.get(start..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    #[test]
    fn decimal_text_is_what_display_writes() {
        for v in [0, 7, 10, 99, 100, 12_345, 1_700_000_000, u32::MAX] {
            let mut digits = [0; 10];
            assert_eq!(decimal(v, &mut digits), v.to_string().as_bytes());
        }
    }

    #[test]
    fn uint_accepts_only_the_listed_widths() {
        assert_eq!(uint(&[0x12], Widths::SHORT), Ok(0x12));
        assert_eq!(uint(&[0x01, 0x2c], Widths::SHORT), Ok(300));
        assert_eq!(uint(&[], Widths::SHORT), Err(ResultCode::NotAcceptable));
        assert_eq!(
            uint(&[1, 2, 3], Widths::SHORT),
            Err(ResultCode::NotAcceptable)
        );
        assert_eq!(uint(&[0; 8], Widths::WORD), Err(ResultCode::NotAcceptable));
        assert_eq!(uint(&[1, 2, 3], Widths::of(&[3])), Ok(0x01_02_03));
        assert_eq!(uint(&[0, 0, 0x13, 0x88], Widths::UP_TO_WORD), Ok(5000));
        assert_eq!(uint(&[1], Widths::WORD), Err(ResultCode::NotAcceptable));
    }

    #[test]
    fn ascii_is_printable_and_bounded() {
        assert_eq!(ascii(b"user1", 16), Ok(&b"user1"[..]));
        assert_eq!(ascii(b"bob\0\0", 16), Ok(&b"bob"[..]));
        assert_eq!(ascii(b"b\0b", 16), Err(ResultCode::NotAcceptable));
        assert_eq!(ascii(b"\x01", 16), Err(ResultCode::NotAcceptable));
        assert_eq!(ascii(&[b'a'; 17], 16), Err(ResultCode::NotAcceptable));
    }
}
