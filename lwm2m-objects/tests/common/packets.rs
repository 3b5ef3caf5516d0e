//! Single packets built for the tests with `lwm2m_core::crypto::packet` (pinned to the
//! real client's vectors in its unit tests): the admin's SCRAM record and key, request
//! lists, signed and plain packets, firmware files.
#![cfg(feature = "packets")]

use lwm2m_core::auth::ScramRecord;
use lwm2m_core::crypto::packet::{self, HashKey, Header, MessageType};
use lwm2m_core::crypto::Software;

pub use super::tunnel::ADMIN_RECORD;
use super::{hex, request_apdu};

/// The admin's hash key (of [`ADMIN_RECORD`]).
pub fn admin_key() -> HashKey {
    HashKey::of(&ScramRecord::from_bytes(&hex(ADMIN_RECORD)).unwrap())
}

/// The multi-request list of `frames` (bare request frames), every one run.
pub fn commands(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut data = Vec::new();
    for frame in frames {
        data.extend_from_slice(&(frame.len() as u16).to_be_bytes());
        data.extend_from_slice(frame);
        data.push(0xFF);
    }
    data
}

/// The bare request frame of `method` on `/object/instance/resource`.
pub fn frame(method: u8, object: u16, instance: u16, resource: u16, payload: &[u8]) -> Vec<u8> {
    request_apdu(method, object, instance, resource, payload)[5..].to_vec()
}

/// `PUT /1024//9` (the application name, the administrator's to write) of `name`.
pub fn put_app_name(name: &str) -> Vec<u8> {
    frame(3, 1024, 0xFFFF, 9, name.as_bytes())
}

/// A header of `kind`, packet `id` of `sender`.
pub fn header(kind: MessageType, id: u16, sender: u8) -> Header {
    let mut header = Header::new(kind);
    header.send_time = 0x6000_0000;
    header.packet_id = id;
    header.sender = sender;
    header.salt = 0x1234;
    header
}

/// A packet of `data` signed (encrypted) with `key` as `user`.
pub fn signed_as(
    kind: MessageType,
    id: u16,
    sender: u8,
    key: &HashKey,
    user: &[u8],
    data: &[u8],
) -> Vec<u8> {
    let header = header(kind, id, sender);
    let sealed = Header {
        encrypted: true,
        ..header
    };
    let mut out = vec![0u8; packet::encoded_len(&sealed, data.len()).unwrap()];
    let n = packet::seal(
        &mut Software,
        key,
        user,
        &header,
        0x5fff_ff00,
        data,
        &mut out,
    )
    .unwrap();
    out.truncate(n);
    out
}

/// A plain packet of `kind` and `data` claiming `sender`.
pub fn plain_as(kind: MessageType, id: u16, sender: u8, data: &[u8]) -> Vec<u8> {
    let header = header(kind, id, sender);
    let mut out = vec![0u8; packet::encoded_len(&header, data.len()).unwrap()];
    let (n, _) = packet::encode(&header, 0x5fff_ff00, data, &mut out).unwrap();
    out.truncate(n);
    out
}

/// The data of a firmware packet: the image's length, then the image.
pub fn firmware_data(image: &[u8]) -> Vec<u8> {
    let mut data = (image.len() as u32).to_be_bytes().to_vec();
    data.extend_from_slice(image);
    data
}
