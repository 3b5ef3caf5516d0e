//! Multi-request frame (`GET /1024//89`, `protocol.md` §5.4; also the data of COMMAND
//! single packets).
//!
//! ```text
//! request body:  repeat { len u16 | Tap request frame (len bytes) | expectedStatus u8 }
//! response body: repeat { len u16 | status u8 | data (len - 1 bytes) }
//! ```

use super::{WireError, WireErrorKind};

/// `expectedStatus` meaning "any status": execute every item (spec decision 8).
pub const EXPECT_ANY: u8 = 0xFF;
/// `expectedStatus` meaning "must succeed": stop after the first item that fails.
pub const EXPECT_SUCCESS: u8 = 0x7F;

/// One request of a multi-request body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MultiItem<'a> {
    /// The bare Tap request frame (not parsed yet).
    pub frame: &'a [u8],
    /// [`EXPECT_ANY`], [`EXPECT_SUCCESS`] or another status byte.
    pub expected: u8,
}

impl MultiItem<'_> {
    /// Whether execution stops after this item when it answered `status`.
    pub const fn stops_after(&self, status: u8) -> bool {
        self.expected == EXPECT_SUCCESS && status & 0x80 != 0
    }
}

/// The items of a multi-request body, checked for framing up front.
#[derive(Clone, Copy, Debug)]
pub struct MultiRequest<'a> {
    body: &'a [u8],
    count: usize,
}

impl<'a> MultiRequest<'a> {
    /// Checks that `body` is a whole number of well-framed items. Nothing may be
    /// executed from a body that fails this check.
    pub fn parse(body: &'a [u8]) -> Result<MultiRequest<'a>, WireError> {
        let mut count = 0;
        let mut rest = body;
        while !rest.is_empty() {
            let (_, tail) = split_item(rest)?;
            rest = tail;
            count += 1;
        }
        Ok(MultiRequest { body, count })
    }

    /// Number of items.
    pub const fn len(&self) -> usize {
        self.count
    }

    /// Whether there are no items.
    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The items in order.
    pub fn items(&self) -> impl Iterator<Item = MultiItem<'a>> + 'a {
        let mut rest = self.body;
        core::iter::from_fn(move || {
            let (item, tail) = split_item(rest).ok()?;
            rest = tail;
            Some(item)
        })
    }
}

fn split_item(input: &[u8]) -> Result<(MultiItem<'_>, &[u8]), WireError> {
    let (len, rest) = input
        .split_first_chunk::<2>()
        .ok_or(WireError::new(WireErrorKind::Truncated))?;
    let len = usize::from(u16::from_be_bytes(*len));
    let (frame, rest) = rest
        .split_at_checked(len)
        .ok_or(WireError::new(WireErrorKind::BadLength))?;
    let (&expected, rest) = rest
        .split_first()
        .ok_or(WireError::new(WireErrorKind::Truncated))?;
    Ok((MultiItem { frame, expected }, rest))
}

/// Writes the `len u16` of a response item whose `status | data` occupies `item_len`
/// bytes right after it. Returns the item's total length.
pub fn emit_response_item_len(buf: &mut [u8], item_len: usize) -> Result<usize, WireError> {
    let len = u16::try_from(item_len).map_err(|_| WireError::new(WireErrorKind::BadLength))?;
    buf.get_mut(..2)
        .ok_or(WireError::new(WireErrorKind::BufferTooSmall))?
        .copy_from_slice(&len.to_be_bytes());
    Ok(2 + item_len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::hex;

    #[test]
    fn parses_the_client_vector() {
        // vectors.txt §B.9: [GET /3//2 expect ANY, PUT /1029/2/4 0102 expect SUCCESS]
        let body = hex("0007010003ffff0002ff00090304050002000401027f");
        let multi = MultiRequest::parse(&body).unwrap();
        assert_eq!(multi.len(), 2);
        let items: heapless::Vec<MultiItem<'_>, 4> = multi.items().collect();
        assert_eq!(items[0].frame, &hex("010003ffff0002")[..]);
        assert_eq!(items[0].expected, EXPECT_ANY);
        assert_eq!(items[1].frame, &hex("0304050002000401 02")[..]);
        assert_eq!(items[1].expected, EXPECT_SUCCESS);
        assert!(items[1].stops_after(0x84));
        assert!(!items[1].stops_after(0x00));
        assert!(!items[0].stops_after(0x84));
    }

    #[test]
    fn rejects_misframed_bodies() {
        for body in [
            "00",
            "0007010003ffff0002",
            "0008010003ffff0002ff",
            "0007010003ffff0002ff00",
        ] {
            assert!(MultiRequest::parse(&hex(body)).is_err(), "{body}");
        }
        assert!(MultiRequest::parse(&[]).unwrap().is_empty());
    }
}
