//! Request APDU and Tap request frame (`protocol.md` §2).
//!
//! ```text
//! APDU:  A2 | INS (CA GET, DA PUT/POST) | 00 | 00 | Lc | Tap request frame
//! frame: method u8 | object u16 | instance u16 | resource u16 | payload
//! ```
//!
//! The payload length comes from the link; `Lc` must equal the frame length modulo 256
//! (spec README, decision 3). Parsing is checked once, up front: a [`Request`] only
//! exists for input that passed every check, and nothing here can panic or read out of
//! bounds on any input.

use super::{WireError, WireErrorKind};

/// APDU class byte of every Tap request.
pub const CLA: u8 = 0xA2;
/// APDU instruction for GET requests.
pub const INS_GET: u8 = 0xCA;
/// APDU instruction for PUT and POST (and, here, DELETE) requests.
pub const INS_PUT_POST: u8 = 0xDA;
/// Length of the APDU header (`CLA INS P1 P2 Lc`).
pub const APDU_HEADER_LEN: usize = 5;
/// Length of the Tap request frame header (method, object, instance, resource).
pub const FRAME_HEADER_LEN: usize = 7;
/// The identifier sent for an absent instance or resource.
pub const ABSENT: u16 = 0xFFFF;

/// The ISO 7816 SELECT of the LwM2M application sent by `tap.nfcPairing()` (§6.4).
pub const NFC_SELECT: [u8; 12] = [
    0x00, 0xA4, 0x04, 0x00, 0x07, 0xF0, 0x02, 0x4C, 0x77, 0x4D, 0x32, 0x4D,
];

/// Request method, numbered like CoAP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum Method {
    /// Read a resource.
    Get = 1,
    /// Execute a resource, or write through an "execute" resource.
    Post = 2,
    /// Write a resource.
    Put = 3,
    /// Destroy an instance (never sent by the official client; spec decision 2).
    Delete = 4,
}

impl Method {
    /// The method of a method byte.
    pub const fn from_u8(byte: u8) -> Option<Method> {
        match byte {
            1 => Some(Method::Get),
            2 => Some(Method::Post),
            3 => Some(Method::Put),
            4 => Some(Method::Delete),
            _ => None,
        }
    }

    /// The APDU instruction byte the client uses for this method.
    pub const fn instruction(self) -> u8 {
        match self {
            Method::Get => INS_GET,
            _ => INS_PUT_POST,
        }
    }
}

/// `/object/instance/resource`; an absent element is [`ABSENT`] (0xFFFF) on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Path {
    /// Object id.
    pub object: u16,
    /// Instance id, [`ABSENT`] when the path has none.
    pub instance: u16,
    /// Resource id, [`ABSENT`] when the path has none.
    pub resource: u16,
}

impl Path {
    /// A path with all three elements.
    pub const fn new(object: u16, instance: u16, resource: u16) -> Path {
        Path {
            object,
            instance,
            resource,
        }
    }

    /// A path without instance (`/object//resource`).
    pub const fn single(object: u16, resource: u16) -> Path {
        Path::new(object, ABSENT, resource)
    }
}

impl core::fmt::Display for Path {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "/{}/", self.object)?;
        if self.instance != ABSENT {
            write!(f, "{}", self.instance)?;
        }
        write!(f, "/{}", self.resource)
    }
}

/// A parsed Tap request: method, path and payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Request<'a> {
    /// What to do.
    pub method: Method,
    /// Where.
    pub path: Path,
    /// The body, possibly empty (GET requests may carry one).
    pub payload: &'a [u8],
}

impl<'a> Request<'a> {
    /// A request with an empty payload.
    pub const fn new(method: Method, path: Path) -> Request<'static> {
        Request {
            method,
            path,
            payload: &[],
        }
    }

    /// The same request carrying `payload`.
    pub const fn with_payload<'p>(self, payload: &'p [u8]) -> Request<'p> {
        Request {
            method: self.method,
            path: self.path,
            payload,
        }
    }

    /// Parses a complete request APDU (header and Tap frame), as received from a link.
    pub fn parse_apdu(apdu: &'a [u8]) -> Result<Request<'a>, WireError> {
        let Some((header, frame)) = apdu.split_first_chunk::<APDU_HEADER_LEN>() else {
            return Err(WireError::new(WireErrorKind::Truncated));
        };
        let [cla, ins, p1, p2, lc] = *header;
        if cla != CLA {
            return Err(WireError::new(WireErrorKind::BadClass));
        }
        if ins != INS_GET && ins != INS_PUT_POST {
            return Err(WireError::new(WireErrorKind::BadInstruction));
        }
        if p1 != 0 || p2 != 0 {
            return Err(WireError::new(WireErrorKind::BadParameters));
        }
        // Lc is the frame length modulo 256 (the client writes it with setUint8).
        if usize::from(lc) != frame.len() % 256 {
            return Err(WireError::new(WireErrorKind::LengthMismatch));
        }
        Request::parse_frame(frame)
    }

    /// Parses a bare Tap request frame (no APDU header), as found inside a multi-request,
    /// an encrypted frame or a single packet.
    pub fn parse_frame(frame: &'a [u8]) -> Result<Request<'a>, WireError> {
        // A fixed layout: method u8, object, instance and resource u16 (big-endian).
        let (&[method, o0, o1, i0, i1, r0, r1], payload) = frame
            .split_first_chunk::<FRAME_HEADER_LEN>()
            .ok_or(WireError::new(WireErrorKind::Truncated))?;
        let method = Method::from_u8(method).ok_or(WireError::new(WireErrorKind::UnknownMethod))?;
        Ok(Request {
            method,
            path: Path::new(
                u16::from_be_bytes([o0, o1]),
                u16::from_be_bytes([i0, i1]),
                u16::from_be_bytes([r0, r1]),
            ),
            payload,
        })
    }

    /// Length of the Tap request frame of this request.
    pub const fn frame_len(&self) -> usize {
        FRAME_HEADER_LEN + self.payload.len()
    }

    /// Writes the Tap request frame into `buf`, returning its length.
    pub fn emit_frame(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let len = self.frame_len();
        let out = buf
            .get_mut(..len)
            .ok_or(WireError::new(WireErrorKind::BufferTooSmall))?;
        out[0] = self.method as u8;
        out[1..3].copy_from_slice(&self.path.object.to_be_bytes());
        out[3..5].copy_from_slice(&self.path.instance.to_be_bytes());
        out[5..7].copy_from_slice(&self.path.resource.to_be_bytes());
        out[7..].copy_from_slice(self.payload);
        Ok(len)
    }

    /// Writes the complete APDU (header and frame) into `buf`, returning its length.
    /// `Lc` wraps modulo 256 exactly as the official client writes it.
    pub fn emit_apdu(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let (header, rest) = buf
            .split_first_chunk_mut::<APDU_HEADER_LEN>()
            .ok_or(WireError::new(WireErrorKind::BufferTooSmall))?;
        let frame_len = self.emit_frame(rest)?;
        *header = [
            CLA,
            self.method.instruction(),
            0,
            0,
            (frame_len % 256) as u8,
        ];
        Ok(APDU_HEADER_LEN + frame_len)
    }
}

/// Whether `bytes` is the NFC pairing SELECT (with or without the `90 00` the client
/// appends), which is answered with a bare `90 00`.
pub fn is_nfc_select(bytes: &[u8]) -> bool {
    match bytes.strip_prefix(&NFC_SELECT[..]) {
        Some(rest) => rest.is_empty() || rest == [0x90, 0x00],
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_util::hex;

    #[test]
    fn parses_get_serial_number_vector() {
        // vectors.txt §A: GET /3//2
        let apdu = hex("a2ca000007010003ffff0002");
        let req = Request::parse_apdu(&apdu).unwrap();
        assert_eq!(req.method, Method::Get);
        assert_eq!(req.path, Path::single(3, 2));
        assert!(req.payload.is_empty());
    }

    #[test]
    fn parses_login_vector_with_payload() {
        let apdu = hex("a2da000027020400ffff000061646d696e000000000000000000000061646d696e0000000000000000000000");
        let req = Request::parse_apdu(&apdu).unwrap();
        assert_eq!(req.method, Method::Post);
        assert_eq!(req.path, Path::single(1024, 0));
        assert_eq!(req.payload.len(), 32);
        assert_eq!(&req.payload[..5], b"admin");
    }

    #[test]
    fn emits_the_client_vectors_byte_for_byte() {
        // vectors.txt §B.1
        let cases: &[(Request<'_>, &str)] = &[
            (
                Request::new(Method::Get, Path::single(3, 2)),
                "a2ca000007010003ffff0002",
            ),
            (
                Request::new(Method::Get, Path::new(3, 0, 2)),
                "a2ca00000701000300000002",
            ),
            (
                Request::new(Method::Put, Path::single(1024, 9)).with_payload(b"myapp"),
                "a2da00000c030400ffff00096d79617070",
            ),
            (
                Request::new(Method::Post, Path::single(1024, 1)),
                "a2da000007020400ffff0001",
            ),
            (
                Request::new(Method::Put, Path::new(1029, 5, 4)).with_payload(&[0, 0, 0, 0x2a]),
                "a2da00000b030405000500040000002a",
            ),
            (
                Request::new(Method::Post, Path::new(1029, 7, 0xFFFF)).with_payload(&[3]),
                "a2da0000080204050007ffff03",
            ),
        ];
        for (req, expected) in cases {
            let mut buf = [0u8; 64];
            let n = req.emit_apdu(&mut buf).unwrap();
            assert_eq!(&buf[..n], &hex(expected)[..], "{}", req.path);
            assert_eq!(Request::parse_apdu(&buf[..n]).unwrap(), *req);
        }
    }

    #[test]
    fn lc_wraps_modulo_256_for_long_frames() {
        // vectors.txt §B.1: a 300-byte body gives a 312-byte APDU with Lc = 0x33.
        let body = [0x55u8; 300];
        let req = Request::new(Method::Put, Path::single(1024, 36)).with_payload(&body);
        let mut buf = [0u8; 400];
        let n = req.emit_apdu(&mut buf).unwrap();
        assert_eq!(n, 312);
        assert_eq!(&buf[..6], &hex("a2da00003303")[..]);
        assert_eq!(Request::parse_apdu(&buf[..n]).unwrap().payload.len(), 300);
    }

    #[test]
    fn malformed_apdus_are_rejected_with_their_reason() {
        let cases: &[(&str, WireErrorKind)] = &[
            ("", WireErrorKind::Truncated),
            ("a2ca0000", WireErrorKind::Truncated),
            ("a2ca000006010003ffff00", WireErrorKind::Truncated),
            ("a3ca000007010003ffff0002", WireErrorKind::BadClass),
            ("a2cb000007010003ffff0002", WireErrorKind::BadInstruction),
            ("a2ca010007010003ffff0002", WireErrorKind::BadParameters),
            ("a2ca000008010003ffff0002", WireErrorKind::LengthMismatch),
            ("a2ca000007050003ffff0002", WireErrorKind::UnknownMethod),
            ("a2ca000007000003ffff0002", WireErrorKind::UnknownMethod),
        ];
        for (apdu, kind) in cases {
            let err = Request::parse_apdu(&hex(apdu)).unwrap_err();
            assert_eq!(err.kind(), *kind, "{apdu}");
        }
    }

    #[test]
    fn recognises_the_nfc_select() {
        assert!(is_nfc_select(&hex("00a4040007f0024c774d324d9000")));
        assert!(is_nfc_select(&hex("00a4040007f0024c774d324d")));
        assert!(!is_nfc_select(&hex("00a4040007f0024c774d324d9001")));
        assert!(!is_nfc_select(&hex("00a4040007f0024c774d32")));
    }

    #[test]
    fn path_displays_like_the_client() {
        let mut s: heapless::String<32> = heapless::String::new();
        core::fmt::write(&mut s, format_args!("{}", Path::single(3, 2))).unwrap();
        assert_eq!(s, "/3//2");
        s.clear();
        core::fmt::write(&mut s, format_args!("{}", Path::new(1029, 1, 4))).unwrap();
        assert_eq!(s, "/1029/1/4");
    }
}
