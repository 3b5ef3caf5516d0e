//! Single packets and their chunks under hostile input (`lwm2m_core::crypto::packet`,
//! `crypto::chunk`): arbitrary bytes parsed as a plain packet and, under a key derived from a
//! known sender record, decrypted as an encrypted one; parsed as a `POST /1024//82` chunk
//! and loaded into a store; and, as data, sealed into an encrypted packet that must decrypt
//! back to it.
//!
//! Input layout: `split u8 | bytes`; the bytes before `split` (modulo their length) are the
//! packet and chunk input, those after it the data sealed for the round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lwm2m_core::crypto::chunk::{Chunk, ExecuteCrc, PacketStore};
use lwm2m_core::crypto::packet::{self, HashKey, Header, Packet};
use lwm2m_core::crypto::Software;

/// A sender's hash key (storedKey ‖ serverKey of some record).
const HASH_KEY: HashKey = HashKey([0x3c; 32]);

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = usize::from(split).min(rest.len());
    let (input, sealed_data) = rest.split_at(at);

    // Before decryption: the header and a plain packet.
    if let Ok(header) = Header::parse(input) {
        assert!(header.payload_len().is_some());
    }
    if let Ok(plain) = Packet::parse_plain(input) {
        assert!(plain.data.len() <= input.len());
        let _ = plain.commands();
    }
    // After decryption, under the key the header derives.
    if let Some(header) = packet::key_input(input).copied() {
        let key = packet::packet_key(&mut Software, &HASH_KEY.0, b"admin", &header);
        let mut bytes = input.to_vec();
        if let Ok(opened) = packet::decrypt(&mut Software, &key.0, &mut bytes) {
            assert!(opened.data.len() <= input.len());
        }
    }
    // Chunks: parsed, loaded, their CRC chained.
    let mut store = PacketStore::new(4096);
    let mut crc = ExecuteCrc::default();
    for body in input.chunks(48) {
        if let Ok(chunk) = Chunk::parse(body) {
            assert_eq!(chunk.data.len() % 16, 0);
            if store.load(&chunk).is_ok() {
                crc.update(chunk.data);
            }
        }
    }
    let _ = crc.matches(crc.value());
    store.executed();

    // The round trip: any data sealed as the admin's COMMAND packet decrypts back to it.
    let header = Header {
        send_time: 0x6000_0000,
        packet_length: 0,
        packet_id: u16::from(split),
        config_version: 0,
        message_type: 2,
        extended: false,
        encrypted: true,
        ack: false,
        sender: packet::SENDER_ADMIN,
        salt: 0x1234,
    };
    let mut out = vec![0u8; sealed_data.len() + 64];
    let len = packet::seal(
        &mut Software,
        &HASH_KEY,
        b"admin",
        &header,
        7,
        sealed_data,
        &mut out,
    )
    .expect("data of any size up to the buffer seals");
    let mut bytes = out[..len].to_vec();
    let key_input = *packet::key_input(&bytes).unwrap();
    let key = packet::packet_key(&mut Software, &HASH_KEY.0, b"admin", &key_input);
    let opened =
        packet::decrypt(&mut Software, &key.0, &mut bytes).expect("a sealed packet decrypts");
    assert_eq!(opened.data, sealed_data);
});
