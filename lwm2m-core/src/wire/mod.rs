//! Wire layer: byte-exact codecs, no state.
//!
//! Checked parsing in the smoltcp manner: every parser validates all lengths once and
//! returns a plain representation, or a [`WireError`] whose kind maps to a result code.

mod apdu;
pub mod multi;
mod response;
mod result_code;
pub mod tlv;

pub use apdu::{
    is_nfc_select, Method, Path, Request, ABSENT, APDU_HEADER_LEN, CLA, FRAME_HEADER_LEN, INS_GET,
    INS_PUT_POST, NFC_SELECT,
};
pub use response::{Body, BodyFull, Response, MIN_RESPONSE_LEN, STATUS_WORD_OK};
pub use result_code::ResultCode;

/// Why some bytes could not be decoded or encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct WireError {
    kind: WireErrorKind,
}

/// The kind of a [`WireError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum WireErrorKind {
    /// The input ends before a complete header or field.
    Truncated,
    /// The APDU class byte is not `A2`.
    BadClass,
    /// The APDU instruction is neither `CA` nor `DA`.
    BadInstruction,
    /// P1 or P2 is not zero.
    BadParameters,
    /// `Lc` does not match the length of the frame.
    LengthMismatch,
    /// The method byte is not GET, POST, PUT or DELETE.
    UnknownMethod,
    /// A length field claims more bytes than present, or bytes are left over.
    BadLength,
    /// The output buffer is too small.
    BufferTooSmall,
}

impl WireError {
    /// An error of the given kind.
    pub const fn new(kind: WireErrorKind) -> WireError {
        WireError { kind }
    }

    /// What went wrong.
    pub const fn kind(&self) -> WireErrorKind {
        self.kind
    }

    /// The result code a device answers for this error.
    pub const fn result_code(&self) -> ResultCode {
        match self.kind {
            WireErrorKind::BufferTooSmall => ResultCode::InternalServerError,
            _ => ResultCode::BadRequest,
        }
    }
}

impl core::fmt::Display for WireError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let what = match self.kind {
            WireErrorKind::Truncated => "truncated input",
            WireErrorKind::BadClass => "APDU class is not A2",
            WireErrorKind::BadInstruction => "APDU instruction is neither CA nor DA",
            WireErrorKind::BadParameters => "APDU P1/P2 are not zero",
            WireErrorKind::LengthMismatch => "Lc does not match the frame length",
            WireErrorKind::UnknownMethod => "unknown method byte",
            WireErrorKind::BadLength => "length field inconsistent with the data",
            WireErrorKind::BufferTooSmall => "output buffer too small",
        };
        f.write_str(what)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for WireError {}

impl From<WireError> for ResultCode {
    fn from(err: WireError) -> ResultCode {
        err.result_code()
    }
}

/// Moves the first `len` bytes of `buf` up by `by` (to `by..by + len`; they may overlap),
/// the last byte first, a byte at a time: what `copy_within(..len, by)` does, without
/// linking `memmove`. `false`, and nothing moved, if `buf` is shorter than `by + len`.
pub fn shift_up(buf: &mut [u8], len: usize, by: usize) -> bool {
    if by.checked_add(len).is_none_or(|end| end > buf.len()) {
        return false;
    }
    for i in (0..len).rev() {
        let byte = buf.get(i).copied().unwrap_or(0);
        // Kept a loop: not turned back into a call of `memmove`.
        if let Some(to) = buf.get_mut(core::hint::black_box(by + i)) {
            *to = byte;
        }
    }
    true
}

/// Moves the bytes of `buf` from `by` on down to its start (the first `by` bytes end up
/// at its end, in some order): what `copy_within(by.., 0)` does to the front, by swaps,
/// so that the stack needs no `memmove` (about 1.5 KiB of a Cortex-M firmware).
pub(crate) fn shift_down(buf: &mut [u8], by: usize) {
    for i in 0..buf.len().saturating_sub(by) {
        buf.swap(i, i + by);
    }
}

#[cfg(test)]
mod tests {
    use super::shift_down;

    #[test]
    fn shifting_up_is_copy_within() {
        for len in 0..8 {
            for by in 0..8 {
                let mut buf: [u8; 16] = core::array::from_fn(|i| i as u8);
                let mut expected = buf;
                expected.copy_within(..len, by);
                assert!(super::shift_up(&mut buf, len, by));
                assert_eq!(buf, expected, "len {len} by {by}");
            }
        }
        let mut short = [0u8; 4];
        assert!(!super::shift_up(&mut short, 3, 2));
        assert!(!super::shift_up(&mut short, 1, usize::MAX));
    }

    #[test]
    fn shifting_down_is_copy_within() {
        for len in 0..12 {
            for by in 0..=len + 1 {
                let original: [u8; 12] = core::array::from_fn(|i| i as u8 + 1);
                let (mut shifted, mut copied) = (original, original);
                shift_down(&mut shifted[..len], by);
                if by <= len {
                    copied[..len].copy_within(by.., 0);
                }
                let kept = len.saturating_sub(by);
                assert_eq!(shifted[..kept], copied[..kept], "len {len} by {by}");
                assert_eq!(shifted[len..], original[len..]);
                let mut tail = shifted[kept..len].to_vec();
                tail.sort_unstable();
                assert_eq!(tail, original[..len.min(by)].to_vec(), "len {len} by {by}");
            }
        }
    }
}
