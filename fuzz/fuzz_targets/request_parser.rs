//! Feeds arbitrary bytes to every request-side parser of the wire layer and checks that
//! whatever parses re-encodes to an equal value (and, where the encoding is canonical,
//! to the same bytes). No heap allocation: every buffer is on the stack.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lwm2m_core::wire::multi::MultiRequest;
use lwm2m_core::wire::tlv::{Tlv, TlvIter, TlvKind};
use lwm2m_core::wire::{
    is_nfc_select, Request, WireErrorKind, APDU_HEADER_LEN, INS_GET, INS_PUT_POST,
};

/// Large enough for libFuzzer's default `-max_len` (4096) plus the APDU header; longer
/// inputs exercise the `BufferTooSmall` path of the encoders instead.
const BUF_LEN: usize = 4096 + 64;

/// Nesting depth up to which TLV containers are walked.
const MAX_TLV_DEPTH: usize = 8;

fuzz_target!(|data: &[u8]| {
    let _ = is_nfc_select(data);
    check_apdu(data);
    check_frame(data);
    check_tlv(data, 0);
    check_multi(data);
});

fn check_apdu(data: &[u8]) {
    let Ok(req) = Request::parse_apdu(data) else {
        return;
    };
    assert_eq!(req.frame_len() + APDU_HEADER_LEN, data.len());
    let mut buf = [0u8; BUF_LEN];
    match req.emit_apdu(&mut buf) {
        Ok(n) => {
            let emitted = &buf[..n];
            assert_eq!(Request::parse_apdu(emitted), Ok(req), "APDU round trip");
            // Byte-exact except INS: the parser accepts CA or DA for any method, the
            // encoder writes the one the client uses.
            assert_eq!(n, data.len());
            assert_eq!(emitted[0], data[0]);
            assert!(data[1] == INS_GET || data[1] == INS_PUT_POST);
            assert_eq!(emitted[1], req.method.instruction());
            assert_eq!(&emitted[2..], &data[2..], "APDU re-encoding differs");
        }
        Err(err) => {
            assert_eq!(err.kind(), WireErrorKind::BufferTooSmall);
            assert!(data.len() > BUF_LEN);
        }
    }
}

fn check_frame(data: &[u8]) {
    let Ok(req) = Request::parse_frame(data) else {
        return;
    };
    assert_eq!(req.frame_len(), data.len());
    let mut buf = [0u8; BUF_LEN];
    match req.emit_frame(&mut buf) {
        Ok(n) => {
            assert_eq!(&buf[..n], data, "frame re-encoding differs");
            assert_eq!(Request::parse_frame(&buf[..n]), Ok(req), "frame round trip");
        }
        Err(err) => {
            assert_eq!(err.kind(), WireErrorKind::BufferTooSmall);
            assert!(data.len() > BUF_LEN);
        }
    }
}

fn check_tlv(data: &[u8], depth: usize) {
    let mut iter = TlvIter::new(data);
    let mut consumed = 0usize;
    let mut count = 0usize;
    while let Some(item) = iter.next() {
        count += 1;
        // Every record takes at least two bytes (type and id), so the walk ends.
        assert!(count <= data.len() / 2 + 1, "TLV iterator does not advance");
        match item {
            Ok(tlv) => {
                consumed += round_trip_tlv(&tlv);
                if depth < MAX_TLV_DEPTH
                    && matches!(
                        tlv.kind,
                        TlvKind::ObjectInstance | TlvKind::MultipleResource
                    )
                {
                    check_tlv(tlv.value, depth + 1);
                }
            }
            Err(_) => {
                assert!(iter.next().is_none(), "TLV iterator goes on after an error");
                return;
            }
        }
    }
    // Canonical re-encodings are never longer than what was parsed.
    assert!(consumed <= data.len());
    if depth == 0 {
        if let Ok(tlv) = Tlv::parse_exact(data) {
            round_trip_tlv(&tlv);
        }
    }
}

/// Re-encodes `tlv`, parses it back and returns the encoded length.
fn round_trip_tlv(tlv: &Tlv<'_>) -> usize {
    let mut buf = [0u8; BUF_LEN];
    match tlv.emit(&mut buf) {
        Ok(n) => {
            assert_eq!(n, tlv.encoded_len());
            let back = Tlv::parse_exact(&buf[..n]).expect("re-encoded TLV does not parse");
            assert_eq!(back, *tlv, "TLV round trip");
            n
        }
        Err(err) => {
            assert_eq!(err.kind(), WireErrorKind::BufferTooSmall);
            assert!(tlv.encoded_len() > BUF_LEN);
            0
        }
    }
}

fn check_multi(data: &[u8]) {
    let Ok(multi) = MultiRequest::parse(data) else {
        return;
    };
    // Re-frame the items ([len u16 BE][frame][expected]) and compare with the input.
    let mut buf = [0u8; BUF_LEN];
    let mut at = 0usize;
    let mut count = 0usize;
    let mut fits = true;
    for item in multi.items() {
        count += 1;
        let _ = Request::parse_frame(item.frame);
        let _ = item.stops_after(0x84);
        let len = u16::try_from(item.frame.len()).expect("item longer than its u16 length");
        let end = at + 2 + item.frame.len() + 1;
        if end > buf.len() {
            fits = false;
            continue;
        }
        buf[at..at + 2].copy_from_slice(&len.to_be_bytes());
        buf[at + 2..end - 1].copy_from_slice(item.frame);
        buf[end - 1] = item.expected;
        at = end;
    }
    assert_eq!(count, multi.len(), "items() disagrees with len()");
    assert_eq!(multi.is_empty(), data.is_empty());
    if fits {
        assert_eq!(&buf[..at], data, "multi-request re-framing differs");
        let again = MultiRequest::parse(&buf[..at]).expect("re-framed multi-request");
        assert_eq!(again.len(), multi.len());
    }
}
