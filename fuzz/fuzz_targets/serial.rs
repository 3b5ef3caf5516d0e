//! Feeds arbitrary bytes to the serial framing's receiver (`transport_traits::serial`):
//! it never panics, every APDU it gives fits its buffer and re-encodes to a frame that
//! decodes to the same APDU, and after the bytes a good frame is always received (the
//! receiver resynchronises on the frame's leading delimiter).
#![no_main]

use libfuzzer_sys::fuzz_target;
use transport_traits::serial::{encode, encoded_len, Decoder, CRC_LEN};

const ROOM: usize = 300;

fuzz_target!(|data: &[u8]| {
    let mut decoder = Decoder::<ROOM>::new();
    let mut frame = [0u8; encoded_len(ROOM)];
    for &byte in data {
        if let Some(Ok(apdu)) = decoder.push(byte) {
            assert!(apdu.len() <= ROOM - CRC_LEN);
            let len = encode(apdu, &mut frame).expect("room for any APDU it received");
            let mut again = Decoder::<ROOM>::new();
            let copy: heapless::Vec<u8, ROOM> = heapless::Vec::from_slice(apdu).unwrap();
            let mut got = None;
            for &b in &frame[..len] {
                if let Some(event) = again.push(b) {
                    got = Some(event.map(|a| a == &copy[..]));
                }
            }
            assert_eq!(got, Some(Ok(true)));
        }
    }
    // Whatever came before, the next good frame is received.
    let apdu = &data[..data.len().min(64)];
    let len = encode(apdu, &mut frame).expect("room");
    let mut last = None;
    for &byte in &frame[..len] {
        if let Some(event) = decoder.push(byte) {
            last = Some(event.map(|a| a == apdu));
        }
    }
    assert_eq!(last, Some(Ok(true)));
});
