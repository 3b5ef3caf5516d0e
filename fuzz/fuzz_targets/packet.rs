//! Single packets and their chunks under hostile input (`lwm2m_core::crypto::packet`,
//! `crypto::chunk`): arbitrary bytes parsed as a plain packet and, under a key derived from a
//! known sender record, decrypted as an encrypted one; parsed as a `POST /1024//82` chunk
//! and loaded into a store; and, as data, sealed into an encrypted packet that must decrypt
//! back to it. The device's side (`lwm2m_core::packets::open`) opens the input as a
//! direct packet and from a packet store, and a firmware image sealed from the data must
//! reach the firmware slot byte for byte.
//!
//! Input layout: `split u8 | bytes`; the bytes before `split` (modulo their length) are the
//! packet and chunk input, those after it the data sealed for the round trip.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use lwm2m_core::auth::{Credential, ScramRecord};
use lwm2m_core::config::ADMIN;
use lwm2m_core::crypto::chunk::{Chunk, ExecuteCrc, PacketStore};
use lwm2m_core::crypto::packet::{self, HashKey, Header, Packet};
use lwm2m_core::crypto::{crc32, Software};
use lwm2m_core::firmware::{self, FirmwareSink, Image, RamFirmware};
use lwm2m_core::packets::{self as serve, Opened, PacketSource, PacketStorage};
use lwm2m_core::storage::{StoreError, StoreErrorKind};
use lwm2m_core::Config;

/// A packet storage in RAM: the store, the newest id of each sender, a firmware slot.
struct Ram<'a> {
    store: Vec<u8>,
    last: HashMap<u8, (u16, u16)>,
    slot: RamFirmware<'a>,
}

impl PacketStorage for Ram<'_> {
    fn capacity(&self) -> u32 {
        self.store.len() as u32
    }

    fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), StoreError> {
        let at = offset as usize;
        let cells = self
            .store
            .get_mut(at..at + data.len())
            .ok_or(StoreError::new(StoreErrorKind::TooLarge))?;
        cells.copy_from_slice(data);
        Ok(())
    }

    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), StoreError> {
        let at = offset as usize;
        let cells = self
            .store
            .get(at..at + buf.len())
            .ok_or(StoreError::new(StoreErrorKind::TooLarge))?;
        buf.copy_from_slice(cells);
        Ok(())
    }

    fn is_new(&mut self, sender: u8, packet_id: u16, tag: u16) -> Result<bool, StoreError> {
        Ok(match self.last.get(&sender) {
            Some(&(last, last_tag)) if last_tag == tag => packet_id > last,
            _ => true,
        })
    }

    fn accept(&mut self, sender: u8, packet_id: u16, tag: u16) -> Result<bool, StoreError> {
        if !self.is_new(sender, packet_id, tag)? {
            return Ok(false);
        }
        self.last.insert(sender, (packet_id, tag));
        Ok(true)
    }

    fn firmware(&mut self) -> Option<&mut dyn FirmwareSink<Error = firmware::ErrorKind>> {
        Some(&mut self.slot)
    }
}

/// The device's configuration: the admin's SCRAM record is the one of [`HASH_KEY`].
fn config() -> Config {
    let mut config = Config::default();
    let record = ScramRecord::from_bytes(&[0x3c; 36]).expect("36 bytes");
    config.profile_mut(ADMIN).expect("admin").credential = Credential::Scram(record);
    config
}

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

    // The device's side: the input opened as a direct packet and from the store.
    let config = config();
    let mut slot = vec![0xFF; 2048];
    let mut ram = Ram {
        store: vec![0xFF; 4096],
        last: HashMap::new(),
        slot: RamFirmware::new(&mut slot),
    };
    let mut area = vec![0u8; 600];
    if let Ok(len) = u16::try_from(input.len()) {
        let source = PacketSource::Request { at: 0, len };
        if serve::open(
            &mut Software,
            &config,
            source,
            input,
            &mut area,
            Some(&mut ram),
        )
        .is_ok()
        {
            let opened = Opened::read(&area).expect("a trailer");
            assert!(opened.len <= area.len() - serve::TRAILER_LEN);
        }
    }
    if input.len() <= ram.store.len() {
        ram.store[..input.len()].copy_from_slice(input);
        let source = PacketSource::Store {
            len: input.len() as u32,
        };
        let _ = serve::open(
            &mut Software,
            &config,
            source,
            &[],
            &mut area,
            Some(&mut ram),
        );
    }

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

    // A firmware image of the data, sealed by the admin, reaches the slot byte for byte.
    if !sealed_data.is_empty() && sealed_data.len() + 64 <= ram.slot.capacity() as usize {
        let mut fw = Header {
            message_type: 6,
            packet_id: 0x8000,
            ..header
        };
        fw.sender = packet::SENDER_ADMIN;
        let mut image = (sealed_data.len() as u32).to_be_bytes().to_vec();
        image.extend_from_slice(sealed_data);
        let mut file = vec![0u8; image.len() + 64];
        let len = packet::seal(
            &mut Software,
            &HASH_KEY,
            b"admin",
            &fw,
            7,
            &image,
            &mut file,
        )
        .expect("an image of any size up to the buffer seals");
        ram.last.clear();
        ram.store[..len].copy_from_slice(&file[..len]);
        let source = PacketSource::Store { len: len as u32 };
        serve::open(
            &mut Software,
            &config,
            source,
            &[],
            &mut area,
            Some(&mut ram),
        )
        .expect("the admin's image opens");
        let (cells, bootable) =
            std::mem::replace(&mut ram.slot, RamFirmware::new(&mut [])).into_parts();
        let expected = Image {
            len: sealed_data.len() as u32,
            crc: crc32(sealed_data, None),
        };
        assert_eq!(bootable, Some(expected));
        assert_eq!(&cells[..sealed_data.len()], sealed_data);
    }
});
