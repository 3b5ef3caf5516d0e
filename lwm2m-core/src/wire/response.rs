//! Response APDU (`protocol.md` §3): `status | data | 90 00`.
//!
//! A [`Response`] owns the caller's output buffer; handlers write their data through a
//! [`Body`] that can never overrun the space reserved for the status byte and the
//! status word.

use super::ResultCode;

/// The ISO 7816 status word that ends every response.
pub const STATUS_WORD_OK: [u8; 2] = [0x90, 0x00];
/// The shortest response: a status byte and the status word.
pub const MIN_RESPONSE_LEN: usize = 3;

/// The body did not fit in the response buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BodyFull;

impl From<BodyFull> for ResultCode {
    fn from(_: BodyFull) -> ResultCode {
        ResultCode::InternalServerError
    }
}

/// A bounded writer for response data.
#[derive(Debug)]
pub struct Body<'b> {
    buf: &'b mut [u8],
    len: usize,
    /// Where `buf` starts in the response buffer; `None` for a body over another buffer.
    origin: Option<usize>,
}

impl<'b> Body<'b> {
    /// A body writing into `buf` (the whole of `buf` is data space).
    pub fn new(buf: &'b mut [u8]) -> Body<'b> {
        Body {
            buf,
            len: 0,
            origin: None,
        }
    }

    /// A body over `buf`, which starts `origin` bytes into the response buffer.
    pub(crate) fn at(buf: &'b mut [u8], origin: Option<usize>) -> Body<'b> {
        Body {
            buf,
            len: 0,
            origin,
        }
    }

    /// Where the next byte goes, counted from the start of the response buffer (where a
    /// suspended read puts its bytes, [`crate::io::Operation::ReadTarget`]); `None` for a
    /// body over a buffer of the handler's own.
    pub fn response_offset(&self) -> Option<usize> {
        self.origin.and_then(|origin| origin.checked_add(self.len))
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes still available.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.len
    }

    /// The data written so far.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Forgets everything written.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Shortens the body to `len` bytes (no effect if it is shorter).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Appends `bytes`, or writes nothing if they do not fit.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), BodyFull> {
        let end = self.len.checked_add(bytes.len()).ok_or(BodyFull)?;
        self.buf
            .get_mut(self.len..end)
            .ok_or(BodyFull)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    /// Appends one byte.
    pub fn push_u8(&mut self, value: u8) -> Result<(), BodyFull> {
        self.push(&[value])
    }

    /// Appends a big-endian u16.
    pub fn push_u16(&mut self, value: u16) -> Result<(), BodyFull> {
        self.push(&value.to_be_bytes())
    }

    /// Appends a big-endian u32.
    pub fn push_u32(&mut self, value: u32) -> Result<(), BodyFull> {
        self.push(&value.to_be_bytes())
    }

    /// The unwritten tail, to be filled in place and then committed with
    /// [`Body::advance`] (for nested encoders such as TLV and multi-request).
    pub fn spare(&mut self) -> &mut [u8] {
        &mut self.buf[self.len..]
    }

    /// Wipes the whole body, also past what was counted, and empties it (a failed
    /// request's data is never sent, and may be a secret).
    pub fn wipe(&mut self) {
        self.buf.fill(0);
        self.len = 0;
    }

    /// Commits `n` bytes written into [`Body::spare`].
    pub fn advance(&mut self, n: usize) -> Result<(), BodyFull> {
        if n > self.remaining() {
            return Err(BodyFull);
        }
        self.len += n;
        Ok(())
    }

    /// A sub-body over the unwritten tail; what it writes is committed with
    /// [`Body::advance`] using its length.
    pub fn nested(&mut self) -> Body<'_> {
        let origin = self.response_offset();
        Body::at(self.spare(), origin)
    }

    /// The body without its last `n` bytes of room, and those bytes (a single packet's
    /// commands, kept at the end of the response buffer while their answers are
    /// written before them); `None` if fewer than `n` bytes are left.
    #[cfg(feature = "packets")]
    pub(crate) fn split_end(&mut self, n: usize) -> Option<(Body<'_>, &mut [u8])> {
        let keep = self.buf.len().checked_sub(n)?;
        if keep < self.len {
            return None;
        }
        let (head, tail) = self.buf.split_at_mut(keep);
        Some((
            Body {
                buf: head,
                len: self.len,
                origin: self.origin,
            },
            tail,
        ))
    }

    /// A sub-body over the unwritten tail after `skip` bytes (a multi-request item's
    /// data after its header); `None` if fewer bytes are left.
    pub(crate) fn nested_after(&mut self, skip: usize) -> Option<(&mut [u8], Body<'_>)> {
        let origin = self.response_offset().and_then(|at| at.checked_add(skip));
        let (head, tail) = self.spare().split_at_mut_checked(skip)?;
        Some((head, Body::at(tail, origin)))
    }
}

/// The caller's output buffer, laid out as a response APDU.
#[derive(Debug)]
pub struct Response<'b> {
    buf: &'b mut [u8],
    /// Whether [`Response::body`] handed the data area out (an error answer then wipes it).
    lent: bool,
}

impl<'b> Response<'b> {
    /// Wraps `buf`; `None` if it cannot hold even a status-only response.
    pub fn new(buf: &'b mut [u8]) -> Option<Response<'b>> {
        (buf.len() >= MIN_RESPONSE_LEN).then_some(Response { buf, lent: false })
    }

    /// The data area, between the status byte and the status word.
    pub fn body(&mut self) -> Body<'_> {
        self.lent = true;
        let end = self.buf.len() - STATUS_WORD_OK.len();
        Body::at(&mut self.buf[1..end], Some(1))
    }

    /// Finishes the response with `status` and `data_len` bytes of data already written
    /// through [`Response::body`]; error statuses carry no data. Returns the length.
    pub fn finish(self, status: ResultCode, data_len: usize) -> usize {
        let max_data = self.buf.len() - MIN_RESPONSE_LEN;
        let data_len = if status.is_success() {
            data_len.min(max_data)
        } else {
            // An error carries no data: whatever was written into the body (also past
            // what was counted, such as a list being built) is wiped, not just left out:
            // it may be a secret read before the request failed. A status-only answer
            // (no body handed out) has nothing to wipe.
            if self.lent {
                self.buf[1..1 + max_data].fill(0);
            }
            0
        };
        self.buf[0] = status.as_u8();
        let sw = 1 + data_len;
        self.buf[sw..sw + 2].copy_from_slice(&STATUS_WORD_OK);
        sw + 2
    }

    /// Writes a status-only response.
    pub fn status(self, status: ResultCode) -> usize {
        self.finish(status, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_status_data_and_status_word() {
        let mut buf = [0u8; 16];
        let mut resp = Response::new(&mut buf).unwrap();
        let mut body = resp.body();
        body.push(b"TAPEMU").unwrap();
        let n = body.len();
        let len = resp.finish(ResultCode::Ok, n);
        assert_eq!(&buf[..len], b"\x00TAPEMU\x90\x00");
    }

    #[test]
    fn errors_carry_no_data() {
        let mut buf = [0u8; 16];
        let mut resp = Response::new(&mut buf).unwrap();
        resp.body().push(b"junk").unwrap();
        let len = resp.finish(ResultCode::NotFound, 4);
        assert_eq!(&buf[..len], &[0x84, 0x90, 0x00]);
    }

    #[test]
    fn body_never_overruns_the_status_word() {
        let mut buf = [0u8; 6];
        let mut resp = Response::new(&mut buf).unwrap();
        let mut body = resp.body();
        assert_eq!(body.remaining(), 3);
        assert_eq!(body.push(b"abcd"), Err(BodyFull));
        assert!(body.is_empty());
        body.push(b"abc").unwrap();
        assert_eq!(body.push_u8(1), Err(BodyFull));
        let n = body.len();
        assert_eq!(resp.finish(ResultCode::Ok, n), 6);
        assert_eq!(&buf, b"\x00abc\x90\x00");
    }

    #[test]
    fn refuses_a_buffer_too_small_for_any_response() {
        assert!(Response::new(&mut [0u8; 2]).is_none());
    }
}
