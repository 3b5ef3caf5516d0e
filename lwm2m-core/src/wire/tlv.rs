//! OMA LwM2M TLV (`protocol.md` §5.3, `objects.md` §6.3).
//!
//! ```text
//! type byte: bits 7-6 kind | bit 5 id is 16-bit | bits 4-3 size of the length field
//!            (0: length in bits 2-0, 1..3: that many bytes) | bits 2-0 inline length
//! then: id (1 or 2 bytes) | length (0..3 bytes) | value
//! ```
//!
//! Used for bundle values, the "read profile" dump, data-log packets and ACL records.

use super::{WireError, WireErrorKind};

/// What a TLV record holds (bits 7-6 of the type byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum TlvKind {
    /// An object instance containing resources.
    ObjectInstance = 0,
    /// One instance of a multiple resource (ACL rights records use it).
    ResourceInstance = 1,
    /// A multiple resource containing resource instances (bundle containers).
    MultipleResource = 2,
    /// A single resource value (one variable value).
    ResourceValue = 3,
}

impl TlvKind {
    const fn from_bits(bits: u8) -> TlvKind {
        match bits & 0b11 {
            0 => TlvKind::ObjectInstance,
            1 => TlvKind::ResourceInstance,
            2 => TlvKind::MultipleResource,
            _ => TlvKind::ResourceValue,
        }
    }
}

/// Largest value a TLV length field can express (24 bits).
pub const MAX_VALUE_LEN: usize = 0xFF_FFFF;
/// Largest TLV header: type byte, 16-bit id and 24-bit length.
pub const MAX_HEADER_LEN: usize = 6;

/// One decoded record; `value` borrows from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Tlv<'a> {
    /// Record kind.
    pub kind: TlvKind,
    /// Identifier (variable id, bundle id, profile id...).
    pub id: u16,
    /// The value, or the nested records of a container.
    pub value: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// Decodes the record at the start of `input`, returning it and the bytes after it.
    pub fn parse(input: &'a [u8]) -> Result<(Tlv<'a>, &'a [u8]), WireError> {
        let truncated = WireError::new(WireErrorKind::Truncated);
        let (&type_byte, rest) = input.split_first().ok_or(truncated)?;
        let id_len = if type_byte & 0x20 != 0 { 2 } else { 1 };
        let len_len = usize::from((type_byte >> 3) & 0b11);
        let (id_bytes, rest) = rest.split_at_checked(id_len).ok_or(truncated)?;
        let (len_bytes, rest) = rest.split_at_checked(len_len).ok_or(truncated)?;
        let id = id_bytes
            .iter()
            .fold(0u16, |acc, &b| (acc << 8) | u16::from(b));
        let value_len = if len_len == 0 {
            usize::from(type_byte & 0b111)
        } else {
            len_bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
        };
        let (value, rest) = rest
            .split_at_checked(value_len)
            .ok_or(WireError::new(WireErrorKind::BadLength))?;
        let tlv = Tlv {
            kind: TlvKind::from_bits(type_byte >> 6),
            id,
            value,
        };
        Ok((tlv, rest))
    }

    /// Decodes `input` as exactly one record, with nothing after it.
    pub fn parse_exact(input: &'a [u8]) -> Result<Tlv<'a>, WireError> {
        match Tlv::parse(input)? {
            (tlv, []) => Ok(tlv),
            _ => Err(WireError::new(WireErrorKind::BadLength)),
        }
    }

    /// The records nested in this one's value.
    pub fn children(&self) -> TlvIter<'a> {
        TlvIter::new(self.value)
    }

    /// Length of the encoded record.
    pub fn encoded_len(&self) -> usize {
        header_len(self.id, self.value.len()) + self.value.len()
    }

    /// Encodes the record into `buf`, returning its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let header = emit_header(buf, self.kind, self.id, self.value.len())?;
        let end = header + self.value.len();
        buf.get_mut(header..end)
            .ok_or(WireError::new(WireErrorKind::BufferTooSmall))?
            .copy_from_slice(self.value);
        Ok(end)
    }
}

/// Iterator over consecutive records; yields an error once and stops on malformed input.
#[derive(Clone, Debug)]
pub struct TlvIter<'a> {
    rest: &'a [u8],
}

impl<'a> TlvIter<'a> {
    /// Iterates over the records of `input`.
    pub const fn new(input: &'a [u8]) -> TlvIter<'a> {
        TlvIter { rest: input }
    }
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = Result<Tlv<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match Tlv::parse(self.rest) {
            Ok((tlv, rest)) => {
                self.rest = rest;
                Some(Ok(tlv))
            }
            Err(err) => {
                self.rest = &[];
                Some(Err(err))
            }
        }
    }
}

const fn length_field_len(value_len: usize) -> usize {
    if value_len <= 7 {
        0
    } else if value_len <= 0xFF {
        1
    } else if value_len <= 0xFFFF {
        2
    } else {
        3
    }
}

/// Length of the header of a record with this id and value length.
pub const fn header_len(id: u16, value_len: usize) -> usize {
    1 + if id > 0xFF { 2 } else { 1 } + length_field_len(value_len)
}

/// Writes the header of a record, returning its length.
pub fn emit_header(
    buf: &mut [u8],
    kind: TlvKind,
    id: u16,
    value_len: usize,
) -> Result<usize, WireError> {
    if value_len > MAX_VALUE_LEN {
        return Err(WireError::new(WireErrorKind::BadLength));
    }
    let len_len = length_field_len(value_len);
    let header = header_len(id, value_len);
    let too_small = WireError::new(WireErrorKind::BufferTooSmall);
    let (type_byte, rest) = buf
        .get_mut(..header)
        .and_then(|out| out.split_first_mut())
        .ok_or(too_small)?;
    *type_byte = (kind as u8) << 6 | (len_len as u8) << 3;
    if id > 0xFF {
        *type_byte |= 0x20;
    }
    if len_len == 0 {
        *type_byte |= value_len as u8;
    }
    // The id (one or two bytes), then the length field, big-endian.
    let (id_bytes, len_bytes) = rest
        .split_at_mut_checked(rest.len() - len_len)
        .ok_or(too_small)?;
    put_be(id_bytes, u32::from(id));
    put_be(len_bytes, value_len as u32);
    Ok(header)
}

/// Writes the low bytes of `value` into `out`, big-endian.
fn put_be(out: &mut [u8], mut value: u32) {
    for byte in out.iter_mut().rev() {
        *byte = value as u8;
        value >>= 8;
    }
}

/// Writes a container record whose value is produced by `fill` (which writes the
/// children into the slice it is given and returns their length). The children are
/// written first and moved into place once their length, hence the header size, is
/// known.
pub fn emit_container<E>(
    buf: &mut [u8],
    kind: TlvKind,
    id: u16,
    fill: impl FnOnce(&mut [u8]) -> Result<usize, E>,
) -> Result<usize, E>
where
    E: From<WireError>,
{
    let too_small = WireError::new(WireErrorKind::BufferTooSmall);
    let scratch = buf.get_mut(MAX_HEADER_LEN..).ok_or(too_small)?;
    let value_len = fill(scratch)?;
    if value_len > buf.len() - MAX_HEADER_LEN {
        return Err(too_small.into());
    }
    let header = header_len(id, value_len);
    let moved = buf
        .get_mut(header..MAX_HEADER_LEN + value_len)
        .ok_or(too_small)?;
    super::shift_down(moved, MAX_HEADER_LEN.saturating_sub(header));
    emit_header(buf, kind, id, value_len)?;
    Ok(header + value_len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::hex;

    #[test]
    fn decodes_the_live_bundle_vector() {
        // vectors.txt §A: GET /1028/1/1 -> 88010c c40141bc0000 c402cafebabe
        let bytes = hex("88010cc40141bc0000c402cafebabe");
        let bundle = Tlv::parse_exact(&bytes).unwrap();
        assert_eq!(bundle.kind, TlvKind::MultipleResource);
        assert_eq!(bundle.id, 1);
        let mut children = bundle.children();
        let first = children.next().unwrap().unwrap();
        assert_eq!((first.kind, first.id), (TlvKind::ResourceValue, 1));
        assert_eq!(first.value, &hex("41bc0000")[..]);
        let second = children.next().unwrap().unwrap();
        assert_eq!((second.id, second.value), (2, &hex("cafebabe")[..]));
        assert!(children.next().is_none());
    }

    #[test]
    fn encodes_the_live_bundle_vector() {
        let mut buf = [0u8; 32];
        let n = emit_container(&mut buf, TlvKind::MultipleResource, 1, |out| {
            let mut at = 0;
            for (id, value) in [(1u16, hex("41bc0000")), (2, hex("cafebabe"))] {
                at += Tlv {
                    kind: TlvKind::ResourceValue,
                    id,
                    value: &value,
                }
                .emit(&mut out[at..])?;
            }
            Ok::<usize, WireError>(at)
        })
        .unwrap();
        assert_eq!(&buf[..n], &hex("88010cc40141bc0000c402cafebabe")[..]);
    }

    #[test]
    fn type_bytes_match_the_library() {
        // vectors.txt §B.9: tlvType(3,1,4)=c4 (2,1,12)=88 (3,300,4)=e4 (3,1,300)=d0
        let mut buf = [0u8; 8];
        emit_header(&mut buf, TlvKind::ResourceValue, 1, 4).unwrap();
        assert_eq!(buf[0], 0xC4);
        emit_header(&mut buf, TlvKind::MultipleResource, 1, 12).unwrap();
        assert_eq!(buf[0], 0x88);
        emit_header(&mut buf, TlvKind::ResourceValue, 300, 4).unwrap();
        assert_eq!(&buf[..3], &[0xE4, 0x01, 0x2C]);
        let n = emit_header(&mut buf, TlvKind::ResourceValue, 1, 300).unwrap();
        assert_eq!(&buf[..n], &[0xD0, 0x01, 0x01, 0x2C]);
    }

    #[test]
    fn resource_value_with_length_byte() {
        // vectors.txt §B.9: id=5 len=10 -> c8050a30313233343536373839
        let mut buf = [0u8; 16];
        let value = b"0123456789";
        let tlv = Tlv {
            kind: TlvKind::ResourceValue,
            id: 5,
            value,
        };
        let n = tlv.emit(&mut buf).unwrap();
        assert_eq!(&buf[..n], &hex("c8050a30313233343536373839")[..]);
        assert_eq!(Tlv::parse_exact(&buf[..n]).unwrap(), tlv);
    }

    #[test]
    fn acl_records_decode() {
        // objects.md §6.1: 41 01 03 = profile 1 read+write; 61 FF FF 01 = admin read.
        let rec = Tlv::parse_exact(&[0x41, 0x01, 0x03]).unwrap();
        assert_eq!(
            (rec.kind, rec.id, rec.value),
            (TlvKind::ResourceInstance, 1, &[3u8][..])
        );
        let rec = Tlv::parse_exact(&[0x61, 0xFF, 0xFF, 0x01]).unwrap();
        assert_eq!((rec.id, rec.value), (0xFFFF, &[1u8][..]));
    }

    #[test]
    fn truncated_records_are_errors() {
        for bytes in [
            &[][..],
            &[0xC4],
            &[0xC4, 0x01, 0x00],
            &[0xE4, 0x01],
            &[0xD0, 0x01, 0x01],
        ] {
            assert!(Tlv::parse(bytes).is_err(), "{bytes:02x?}");
        }
        let mut iter = TlvIter::new(&[0xC1, 0x01, 0xAA, 0xC4, 0x02]);
        assert!(iter.next().unwrap().is_ok());
        assert!(iter.next().unwrap().is_err());
        assert!(iter.next().is_none());
    }

    #[test]
    fn container_reports_a_small_buffer() {
        let mut buf = [0u8; 8];
        let result = emit_container(&mut buf, TlvKind::MultipleResource, 1, |out| {
            Tlv {
                kind: TlvKind::ResourceValue,
                id: 1,
                value: &[0; 4],
            }
            .emit(out)
        });
        assert_eq!(result.unwrap_err().kind(), WireErrorKind::BufferTooSmall);
    }
}
