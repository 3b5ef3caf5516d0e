//! The single packet (`protocol.md` §11.1, §11.2; decision 7):
//!
//! ```text
//! offset 0   sendTime u32
//!        4   packetLength u16 | packetId u16 | configVersion u32        header (12 bytes):
//!       12   type u8 (messageType 7–4, 0 3, isExtended 2, encryption 1, ack 0)  the key's input
//!       13   senderId u8 | salt u16
//!       16   logTime u32 | dataSize u16 | data (n) | zeros (p) | CRC u32  payload
//! ```
//!
//! all big-endian; the CRC (§7.1) covers bytes 4 … the end of the padding and is computed
//! **before** encryption; an encrypted packet has its payload (bytes 16 … end)
//! AES-128-CBC encrypted, IV zero, under [`packet_key`]. The padding makes `n + 10 + p` a
//! multiple of `max(4, multiplicator)`, the multiplicator being 256 for an extended
//! packet, else 16 for an encrypted or CODE_EXEC one, else 1; `packetLength` counts the
//! payload in multiplicator units, plus the 12 header bytes when the multiplicator is 1.
//!
//! Parsing is checked once ([`Header::parse`], [`Packet::parse_plain`], [`decrypt`]):
//! nothing is indexed on a length read from the packet, and any input gives an answer,
//! never a panic. [`encode`] and [`seal`] build the packets the device sends (the data
//! log's DATA_LOG packets, §11.6: data = a TLV multiple-resource record of a bundle).
//!
//! Every error answers a result code ([`PacketError::result_code`]) and, decision 7,
//! changes nothing: the caller executes a packet only once it parsed.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::scram::truncated;
use super::{blocks_mut, crc32, Crypto, Key};
use crate::auth::{ScramRecord, Secret16};
use crate::config::{ADMIN, ANONYMOUS, SUPERVISOR};
use crate::wire::multi::MultiRequest;
use crate::wire::{ResultCode, WireError};

/// Bytes of sendTime, before the header.
pub const SEND_TIME_LEN: usize = 4;
/// Bytes of the header (packetLength … salt), the input of [`packet_key`].
pub const HEADER_LEN: usize = 12;
/// Where the payload (logTime …) starts: sendTime and the header.
pub const PAYLOAD_AT: usize = SEND_TIME_LEN + HEADER_LEN;
/// Where the data starts: after logTime and dataSize.
pub const DATA_AT: usize = PAYLOAD_AT + 6;
/// Bytes of the CRC.
pub const CRC_LEN: usize = 4;
/// The payload's bytes beside the data and the padding: logTime, dataSize, CRC.
const PAYLOAD_OVERHEAD: usize = 6 + CRC_LEN;
/// The largest packet the client builds (`MAX_FULL_SIZE`).
pub const MAX_PACKET_LEN: usize = 0x20_0000;
/// The smallest packet: no data, 2 bytes of padding.
pub const MIN_PACKET_LEN: usize = PAYLOAD_AT + 12;
/// The label of the packet key's derivation (§11.2).
pub const KEY_LABEL: &[u8] = b"IoTize_FWUpdate_SP";
/// The user name of the blank key (the client's default encoder): with
/// [`HashKey::BLANK`], the key anyone can compute.
pub const BLANK_USER: &[u8] = b"IoTize";
/// Data larger than this is announced with a dataSize of 0.
const MAX_DATA_SIZE: usize = u16::MAX as usize;

/// The sender ids of §11.2 the client names.
pub const SENDER_ANONYMOUS: u8 = 0x00;
/// Sender id of admin (profile `FFFF`).
pub const SENDER_ADMIN: u8 = 0xFF;
/// Sender id of supervisor (profile `FFFE`).
pub const SENDER_SUPERVISOR: u8 = 0xFE;
/// Sender id of "IoTize", the client's blank-key encoder (also the low byte of profile
/// `FFFD`).
pub const SENDER_IOTIZE: u8 = 0xFD;

/// Why a packet, a chunk or an execute was refused. Each answers its
/// [`result_code`](PacketError::result_code) and changes nothing (decision 7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PacketError {
    /// The packet is shorter than a header, longer than [`MAX_PACKET_LEN`], or its size
    /// is not what packetLength says (or not a multiple of its alignment): `86`
    /// NOT_ACCEPTABLE, a body of the wrong size (decision 3).
    Length,
    /// dataSize does not fit the payload (more data than the payload holds, or more
    /// padding than the alignment needs): `86`, a value out of range.
    DataSize,
    /// The CRC of a plain packet is wrong: `80` BAD_REQUEST, as a tunnelled frame whose
    /// CRC is wrong (decision 6) — the device cannot understand the packet.
    Crc,
    /// The payload of an encrypted packet did not decrypt under the sender's key (its CRC
    /// is wrong once decrypted: a damaged packet, or another key): `80`, as a tunnelled
    /// frame that does not decrypt; not `81`, which would tell a prober the key is wrong
    /// rather than the packet damaged.
    Decrypt,
    /// [`Packet::parse_plain`] of an encrypted packet or [`decrypt`] of a plain one: `80`.
    Encryption,
    /// The packetId is not newer than the last one accepted from this sender
    /// ([`crate::storage::replay`]): `81` UNAUTHORIZED, as a replayed tunnel frame
    /// (decision 6).
    Replayed,
    /// A chunk body (`POST /1024//82`) is malformed: truncated, unknown format, no data,
    /// or data of another length than announced: `86`.
    Chunk,
    /// A chunk starts after the end of what is loaded (a gap the execute CRC could not
    /// cover): `86`.
    ChunkGap,
    /// A chunk reaches past the packet store's room: `A7` NVM_FULL.
    StoreFull,
    /// The execute CRC (`POST /1024//83`) is not the CRC of what the store holds (a chunk
    /// lost or damaged on the way): `86`, a given parameter that is not acceptable.
    ExecuteCrc,
    /// The output buffer has no room for the packet being encoded: `A0`, the device's
    /// own fault.
    BufferTooSmall,
}

impl PacketError {
    /// The result code a device answers for this error.
    pub const fn result_code(self) -> ResultCode {
        match self {
            PacketError::Length
            | PacketError::DataSize
            | PacketError::Chunk
            | PacketError::ChunkGap
            | PacketError::ExecuteCrc => ResultCode::NotAcceptable,
            PacketError::Crc | PacketError::Decrypt | PacketError::Encryption => {
                ResultCode::BadRequest
            }
            PacketError::Replayed => ResultCode::Unauthorized,
            PacketError::StoreFull => ResultCode::NvmFull,
            PacketError::BufferTooSmall => ResultCode::InternalServerError,
        }
    }
}

impl From<PacketError> for ResultCode {
    fn from(err: PacketError) -> ResultCode {
        err.result_code()
    }
}

/// The message types of §11.1 (the type byte's high nibble).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum MessageType {
    /// 1: a data-log record (§11.6).
    DataLog = 1,
    /// 2: requests in the multi-request layout (decision 7).
    Command = 2,
    /// 3: code to execute.
    CodeExec = 3,
    /// 4: a configuration update.
    ConfUpdate = 4,
    /// 5: a security token.
    SecurityToken = 5,
    /// 6: a firmware image for the target.
    TargetFwUpdate = 6,
    /// 7: a mask.
    Mask = 7,
}

impl MessageType {
    /// The type of a nibble, `None` for one §11.1 does not define.
    pub const fn from_nibble(nibble: u8) -> Option<MessageType> {
        Some(match nibble {
            1 => MessageType::DataLog,
            2 => MessageType::Command,
            3 => MessageType::CodeExec,
            4 => MessageType::ConfUpdate,
            5 => MessageType::SecurityToken,
            6 => MessageType::TargetFwUpdate,
            7 => MessageType::Mask,
            _ => return None,
        })
    }
}

/// sendTime and the header of a packet (bytes 0 … 16), in clear in every packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Header {
    /// Unix seconds when the packet was built.
    pub send_time: u32,
    /// The payload in multiplicator units (plus 12 when the multiplicator is 1).
    /// [`encode`] computes it.
    pub packet_length: u16,
    /// The sender's packet counter: the replay guard's order (decision 7).
    pub packet_id: u16,
    /// The configuration version the packet was built for.
    pub config_version: u32,
    /// The message type nibble ([`MessageType::from_nibble`]), kept as it came so that
    /// the caller decides about types it does not know.
    pub message_type: u8,
    /// Lengths count 256-byte units. [`encode`] sets it when the data needs it.
    pub extended: bool,
    /// The payload is encrypted (§11.2).
    pub encrypted: bool,
    /// The ack bit (its meaning is not known, `protocol.md` §16.7).
    pub ack: bool,
    /// Who sent it ([`profile_of_sender`]).
    pub sender: u8,
    /// The salt (random, part of the key's input).
    pub salt: u16,
}

impl Header {
    /// A header of `message_type` with every other field zero or false.
    pub const fn new(message_type: MessageType) -> Header {
        Header {
            send_time: 0,
            packet_length: 0,
            packet_id: 0,
            config_version: 0,
            message_type: message_type as u8,
            extended: false,
            encrypted: false,
            ack: false,
            sender: SENDER_ANONYMOUS,
            salt: 0,
        }
    }

    /// The message type, `None` for a nibble §11.1 does not define.
    pub const fn kind(&self) -> Option<MessageType> {
        MessageType::from_nibble(self.message_type)
    }

    /// The length multiplicator: 256 extended, else 16 encrypted or CODE_EXEC, else 1.
    pub const fn multiplicator(&self) -> usize {
        if self.extended {
            256
        } else if self.encrypted || self.message_type == MessageType::CodeExec as u8 {
            16
        } else {
            1
        }
    }

    /// What the payload's length is a multiple of: `max(4, multiplicator)`.
    pub const fn alignment(&self) -> usize {
        let m = self.multiplicator();
        if m < 4 {
            4
        } else {
            m
        }
    }

    /// The type byte: messageType, isExtended, encryption, ack.
    pub const fn type_byte(&self) -> u8 {
        ((self.message_type & 0x0F) << 4)
            | ((self.extended as u8) << 2)
            | ((self.encrypted as u8) << 1)
            | self.ack as u8
    }

    /// The payload's length packetLength announces, `None` when it announces less than
    /// the header it counts.
    pub fn payload_len(&self) -> Option<usize> {
        let units = usize::from(self.packet_length);
        match self.multiplicator() {
            1 => units.checked_sub(HEADER_LEN),
            m => units.checked_mul(m),
        }
    }

    /// sendTime and the header, decoded (no check: [`Header::parse`] checks).
    pub fn decode(bytes: &[u8; PAYLOAD_AT]) -> Header {
        let [t0, t1, t2, t3, l0, l1, i0, i1, c0, c1, c2, c3, kind, sender, s0, s1] = *bytes;
        Header {
            send_time: u32::from_be_bytes([t0, t1, t2, t3]),
            packet_length: u16::from_be_bytes([l0, l1]),
            packet_id: u16::from_be_bytes([i0, i1]),
            config_version: u32::from_be_bytes([c0, c1, c2, c3]),
            message_type: kind >> 4,
            extended: kind & 0x04 != 0,
            encrypted: kind & 0x02 != 0,
            ack: kind & 0x01 != 0,
            sender,
            salt: u16::from_be_bytes([s0, s1]),
        }
    }

    /// sendTime and the header as they go on the wire (the reserved bit 3 zero).
    pub fn encode(&self) -> [u8; PAYLOAD_AT] {
        let [t0, t1, t2, t3] = self.send_time.to_be_bytes();
        let [h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11] = self.header_bytes();
        [
            t0, t1, t2, t3, h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11,
        ]
    }

    /// The 12 header bytes (packetLength … salt), the input of [`packet_key`].
    pub fn header_bytes(&self) -> [u8; HEADER_LEN] {
        let [l0, l1] = self.packet_length.to_be_bytes();
        let [i0, i1] = self.packet_id.to_be_bytes();
        let [c0, c1, c2, c3] = self.config_version.to_be_bytes();
        let [s0, s1] = self.salt.to_be_bytes();
        let kind = self.type_byte();
        [l0, l1, i0, i1, c0, c1, c2, c3, kind, self.sender, s0, s1]
    }

    /// The header of `packet`, its size checked against packetLength and the alignment
    /// of §11.1 (all that can be checked before decrypting). The reserved bit is ignored.
    pub fn parse(packet: &[u8]) -> Result<Header, PacketError> {
        if packet.len() > MAX_PACKET_LEN {
            return Err(PacketError::Length);
        }
        let (prefix, payload) = packet
            .split_first_chunk::<PAYLOAD_AT>()
            .ok_or(PacketError::Length)?;
        let header = Header::decode(prefix);
        if header.payload_len() != Some(payload.len())
            || payload.len() < MIN_PACKET_LEN - PAYLOAD_AT
            || !payload.len().is_multiple_of(header.alignment())
        {
            return Err(PacketError::Length);
        }
        Ok(header)
    }
}

/// A packet, checked: its header, logTime and data (within the buffer parsed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Packet<'a> {
    /// sendTime and the header.
    pub header: Header,
    /// Unix seconds of the data (a data-log record's time).
    pub log_time: u32,
    /// The data: dataSize bytes, or, when dataSize is 0 for data past 65 535 bytes,
    /// everything up to the CRC (the padding cannot be told from the data then).
    pub data: &'a [u8],
    /// The CRC, checked.
    pub crc: u32,
}

impl<'a> Packet<'a> {
    /// A plain packet, its layout and CRC checked. An encrypted one is
    /// [`PacketError::Encryption`]: [`decrypt`] it.
    pub fn parse_plain(packet: &'a [u8]) -> Result<Packet<'a>, PacketError> {
        let header = Header::parse(packet)?;
        if header.encrypted {
            return Err(PacketError::Encryption);
        }
        check(packet, header, PacketError::Crc)?.packet(header, packet)
    }

    /// The data of a COMMAND packet as requests (decision 7: the multi-request layout of
    /// §5.4), checked for framing.
    pub fn commands(&self) -> Result<MultiRequest<'a>, WireError> {
        MultiRequest::parse(self.data)
    }

    /// The sender whose replay record this packet counts against: its senderId if it was
    /// encrypted (only the sender's key makes one), anonymous if plain — a plain packet
    /// runs with anonymous rights, and anyone can build one with any senderId, which must
    /// not move a real sender's record.
    pub const fn replay_sender(&self) -> u8 {
        if self.header.encrypted {
            self.header.sender
        } else {
            SENDER_ANONYMOUS
        }
    }
}

/// What [`check`] found: logTime, where the data lies, the CRC.
struct Checked {
    log_time: u32,
    data: core::ops::Range<usize>,
    crc: u32,
}

impl Checked {
    fn packet(self, header: Header, packet: &[u8]) -> Result<Packet<'_>, PacketError> {
        Ok(Packet {
            header,
            log_time: self.log_time,
            data: packet.get(self.data).ok_or(PacketError::DataSize)?,
            crc: self.crc,
        })
    }
}

/// Checks the CRC (`crc_error` when wrong), logTime and dataSize of a packet whose header
/// checked.
fn check(packet: &[u8], header: Header, crc_error: PacketError) -> Result<Checked, PacketError> {
    let (covered, crc) = packet
        .split_last_chunk::<CRC_LEN>()
        .ok_or(PacketError::Length)?;
    let crc = u32::from_be_bytes(*crc);
    let covered = covered.get(SEND_TIME_LEN..).ok_or(PacketError::Length)?;
    if crc32(covered, None) != crc {
        return Err(crc_error);
    }
    let body = covered.get(HEADER_LEN..).ok_or(PacketError::Length)?;
    let (log_time, body) = body.split_first_chunk::<4>().ok_or(PacketError::Length)?;
    let (size, rest) = body.split_first_chunk::<2>().ok_or(PacketError::Length)?;
    let size = usize::from(u16::from_be_bytes(*size));
    let len = if size == 0 && rest.len() > MAX_DATA_SIZE {
        rest.len()
    } else {
        let padding = rest.len().checked_sub(size).ok_or(PacketError::DataSize)?;
        if padding >= header.alignment() {
            return Err(PacketError::DataSize);
        }
        size
    };
    Ok(Checked {
        log_time: u32::from_be_bytes(*log_time),
        data: DATA_AT..DATA_AT.checked_add(len).ok_or(PacketError::DataSize)?,
        crc,
    })
}

/// The 32-byte hash key of §11.2, wiped on drop: a sender's `storedKey ‖ serverKey`, or
/// the blank key.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct HashKey(pub [u8; 32]);

impl HashKey {
    /// 32 zero bytes: with [`BLANK_USER`], the client's default encoder's key.
    pub const BLANK: HashKey = HashKey([0; 32]);

    /// The hash key of a profile's SCRAM record: `storedKey ‖ serverKey`.
    pub fn of(record: &ScramRecord) -> HashKey {
        let mut key = [0u8; 32];
        let (stored, server) = key.split_at_mut(16);
        stored.copy_from_slice(&record.stored_key);
        server.copy_from_slice(&record.server_key);
        HashKey(key)
    }
}

impl core::fmt::Debug for HashKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("HashKey(..)")
    }
}

/// The key of a packet (§11.2): `HMAC-SHA256(hashKey, username ‖ "IoTize_FWUpdate_SP" ‖
/// header)[0..16]`, `header` the 12 bytes 4 … 16 of the packet.
pub fn packet_key<C: Crypto>(
    crypto: &mut C,
    hash_key: &[u8; 32],
    username: &[u8],
    header: &[u8; HEADER_LEN],
) -> Secret16 {
    truncated(crypto, hash_key, &[username, KEY_LABEL, header])
}

/// The 12 header bytes of `packet`, the input of [`packet_key`] (`None` if shorter).
pub fn key_input(packet: &[u8]) -> Option<&[u8; HEADER_LEN]> {
    packet
        .get(SEND_TIME_LEN..PAYLOAD_AT)
        .and_then(|bytes| bytes.try_into().ok())
}

/// Decrypts the payload of the encrypted `packet` in place with `key` (AES-128-CBC, IV
/// zero) and checks its layout and CRC. On an error after decrypting, the payload is
/// wiped (it may be a genuine packet under a damaged CRC). A plain packet is
/// [`PacketError::Encryption`], untouched.
pub fn decrypt<'a, C: Crypto>(
    crypto: &mut C,
    key: &Key,
    packet: &'a mut [u8],
) -> Result<Packet<'a>, PacketError> {
    let header = Header::parse(packet)?;
    if !header.encrypted {
        return Err(PacketError::Encryption);
    }
    let blocks = packet
        .get_mut(PAYLOAD_AT..)
        .and_then(blocks_mut)
        .ok_or(PacketError::Length)?;
    crypto.aes128_cbc_decrypt(key, &[0; 16], blocks);
    match check(packet, header, PacketError::Decrypt) {
        Ok(checked) => checked.packet(header, packet),
        Err(err) => {
            if let Some(plain) = packet.get_mut(PAYLOAD_AT..) {
                plain.zeroize();
            }
            Err(err)
        }
    }
}

/// The multiplicator, packetLength and total length of a packet of `header`'s type and
/// encryption carrying `data_len` bytes, the extended bit forced when the length needs
/// it; `None` past [`MAX_PACKET_LEN`].
fn layout(header: &Header, data_len: usize) -> Option<(Header, usize)> {
    let mut header = *header;
    for extended in [header.extended, true] {
        header.extended = extended;
        let payload = data_len
            .checked_add(PAYLOAD_OVERHEAD)?
            .checked_next_multiple_of(header.alignment())?;
        let units = match header.multiplicator() {
            1 => payload.checked_add(HEADER_LEN)?,
            m => payload.checked_div(m)?,
        };
        let total = payload.checked_add(PAYLOAD_AT)?;
        if let Ok(units) = u16::try_from(units) {
            if total > MAX_PACKET_LEN {
                return None;
            }
            header.packet_length = units;
            return Some((header, total));
        }
    }
    None
}

/// Bytes of the packet [`encode`] builds from `header` and `data_len` bytes of data.
pub fn encoded_len(header: &Header, data_len: usize) -> Option<usize> {
    layout(header, data_len).map(|(_, len)| len)
}

/// Encodes a packet of `header` (its packetLength computed, its extended bit set when the
/// data needs it), `log_time` and `data` into `out`, with its padding and CRC, in clear
/// even if `header.encrypted` (then [`encrypt`] it). Returns its length and the header
/// as written.
pub fn encode(
    header: &Header,
    log_time: u32,
    data: &[u8],
    out: &mut [u8],
) -> Result<(usize, Header), PacketError> {
    let (header, total) = layout(header, data.len()).ok_or(PacketError::Length)?;
    let out = out.get_mut(..total).ok_or(PacketError::BufferTooSmall)?;
    let (covered, crc) = out
        .split_last_chunk_mut::<CRC_LEN>()
        .ok_or(PacketError::BufferTooSmall)?;
    let (prefix, body) = covered
        .split_first_chunk_mut::<PAYLOAD_AT>()
        .ok_or(PacketError::BufferTooSmall)?;
    *prefix = header.encode();
    let (time, body) = body
        .split_first_chunk_mut::<4>()
        .ok_or(PacketError::BufferTooSmall)?;
    *time = log_time.to_be_bytes();
    let (size, rest) = body
        .split_first_chunk_mut::<2>()
        .ok_or(PacketError::BufferTooSmall)?;
    *size = u16::try_from(data.len()).unwrap_or(0).to_be_bytes();
    let (place, padding) = rest
        .split_at_mut_checked(data.len())
        .ok_or(PacketError::BufferTooSmall)?;
    place.copy_from_slice(data);
    padding.fill(0);
    let sum = crc32(covered.get(SEND_TIME_LEN..).unwrap_or(&[]), None);
    *crc = sum.to_be_bytes();
    Ok((total, header))
}

/// Encrypts the payload of the encoded `packet` in place with `key` (its header must say
/// encrypted: the CRC was computed over it).
pub fn encrypt<C: Crypto>(crypto: &mut C, key: &Key, packet: &mut [u8]) -> Result<(), PacketError> {
    let header = Header::parse(packet)?;
    if !header.encrypted {
        return Err(PacketError::Encryption);
    }
    let blocks = packet
        .get_mut(PAYLOAD_AT..)
        .and_then(blocks_mut)
        .ok_or(PacketError::Length)?;
    crypto.aes128_cbc_encrypt(key, &[0; 16], blocks);
    Ok(())
}

/// Encodes an encrypted packet (`header.encrypted` set) of `username`, whose hash key is
/// `hash_key`, into `out`: [`encode`], [`packet_key`] of its header, [`encrypt`]. The key
/// is wiped before returning. Returns the packet's length.
pub fn seal<C: Crypto>(
    crypto: &mut C,
    hash_key: &HashKey,
    username: &[u8],
    header: &Header,
    log_time: u32,
    data: &[u8],
    out: &mut [u8],
) -> Result<usize, PacketError> {
    let mut header = *header;
    header.encrypted = true;
    let (len, written) = encode(&header, log_time, data, out)?;
    let key = packet_key(crypto, &hash_key.0, username, &written.header_bytes());
    let packet = out.get_mut(..len).ok_or(PacketError::BufferTooSmall)?;
    encrypt(crypto, &key.0, packet)?;
    Ok(len)
}

/// The profile id a senderId stands for (§11.2): `00`–`7F` the user ids 0 … 127
/// ([`ANONYMOUS`] is `00`), `80`–`FF` the ids `FF80` … `FFFF` ([`ADMIN`] `FF`,
/// [`SUPERVISOR`] `FE`; `FD` is also the client's "IoTize" blank-key sender,
/// [`SENDER_IOTIZE`]).
pub const fn profile_of_sender(sender: u8) -> u16 {
    if sender < 0x80 {
        sender as u16
    } else {
        0xFF00 | sender as u16
    }
}

/// The senderId of a profile (§11.2: the low byte of ids 0 … `7F` and `FF80` … `FFFF`),
/// `None` for the ids between, which cannot send packets.
pub const fn sender_of_profile(profile: u16) -> Option<u8> {
    match profile {
        0..=0x7F | 0xFF80..=0xFFFF => Some(profile.to_be_bytes()[1]),
        _ => None,
    }
}

// The well-known ids map onto the client's sender ids.
const _: () = assert!(profile_of_sender(SENDER_ADMIN) == ADMIN);
const _: () = assert!(profile_of_sender(SENDER_SUPERVISOR) == SUPERVISOR);
const _: () = assert!(profile_of_sender(SENDER_ANONYMOUS) == ANONYMOUS);

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::panic
)]
mod tests {
    use super::*;
    use crate::crypto::Software;
    use crate::test_util::hex;
    use proptest::prelude::*;

    const DATA: &[u8] = b"hello single packet!";
    /// vectors.txt §B.10, the plain COMMAND packet.
    const PLAIN: &str = "60000000 002c 0007 00000000 20 00 1234 5fffff00 0014
        68656c6c6f2073696e676c65207061636b657421 0000 dc7d19b4";
    /// The same packet encrypted for admin under the blank hash key.
    const SEALED: &str = "60000000 000200070000000022ff1234
        37b404cbd323c83505a37dd1e0234956e53e19b89b84413c2407f0a000637cb1";
    /// Its header, key, and its clear form (CRC before encryption).
    const SEALED_HEADER: &str = "000200070000000022ff1234";
    const SEALED_KEY: &str = "bcb464cef870ec5e50c7b9206d86db18";
    const SEALED_CLEAR: &str = "60000000000200070000000022ff1234 5fffff00 0014
        68656c6c6f2073696e676c65207061636b657421 0000 0926df21";

    fn command() -> Header {
        Header {
            send_time: 0x6000_0000,
            packet_id: 7,
            salt: 0x1234,
            ..Header::new(MessageType::Command)
        }
    }

    fn admin_header() -> Header {
        Header {
            encrypted: true,
            sender: SENDER_ADMIN,
            ..command()
        }
    }

    #[test]
    fn the_plain_packet_is_the_client_s() {
        let mut out = [0u8; 64];
        let (len, written) = encode(&command(), 0x5fff_ff00, DATA, &mut out).unwrap();
        assert_eq!(out[..len], hex(PLAIN)[..]);
        assert_eq!(written.packet_length, 44);
        assert_eq!(encoded_len(&command(), DATA.len()), Some(48));

        let bytes = hex(PLAIN);
        let packet = Packet::parse_plain(&bytes).unwrap();
        assert_eq!(
            packet.header,
            Header {
                packet_length: 44,
                ..command()
            }
        );
        assert_eq!(packet.header.kind(), Some(MessageType::Command));
        assert_eq!(packet.log_time, 0x5fff_ff00);
        assert_eq!(packet.data, DATA);
        assert_eq!(packet.crc, 0xdc7d_19b4);
        assert_eq!(crc32(&bytes[4..44], None), 0xdc7d_19b4);
        assert_eq!(packet.replay_sender(), SENDER_ANONYMOUS);
    }

    #[test]
    fn the_encrypted_packet_is_the_client_s() {
        // The key of §11.2 from the blank hash key and user admin.
        let header: [u8; 12] = hex(SEALED_HEADER).try_into().unwrap();
        let key = packet_key(&mut Software, &HashKey::BLANK.0, b"admin", &header);
        assert_eq!(key.0.to_vec(), hex(SEALED_KEY));

        // In clear first: the CRC is computed before encryption.
        let mut out = [0u8; 64];
        let (len, written) = encode(&admin_header(), 0x5fff_ff00, DATA, &mut out).unwrap();
        assert_eq!(out[..len], hex(SEALED_CLEAR)[..]);
        assert_eq!(written.header_bytes(), header);
        assert_eq!(key_input(&out[..len]), Some(&header));

        let mut out = [0u8; 64];
        let len = seal(
            &mut Software,
            &HashKey::BLANK,
            b"admin",
            &Header {
                sender: SENDER_ADMIN,
                ..command()
            },
            0x5fff_ff00,
            DATA,
            &mut out,
        )
        .unwrap();
        assert_eq!(out[..len], hex(SEALED)[..]);

        let mut bytes = hex(SEALED);
        assert_eq!(Header::parse(&bytes).unwrap().sender, SENDER_ADMIN);
        assert_eq!(
            Packet::parse_plain(&bytes),
            Err(PacketError::Encryption),
            "an encrypted packet is no plain one"
        );
        let packet = decrypt(&mut Software, &key.0, &mut bytes).unwrap();
        assert_eq!(packet.data, DATA);
        assert_eq!(packet.log_time, 0x5fff_ff00);
        assert_eq!(packet.crc, 0x0926_df21);
        assert_eq!(packet.header.packet_length, 2);
        assert_eq!(packet.replay_sender(), SENDER_ADMIN);
        assert_eq!(bytes, hex(SEALED_CLEAR));
    }

    #[test]
    fn a_packet_under_another_key_or_damaged_does_not_decrypt_and_is_wiped() {
        let header: [u8; 12] = hex(SEALED_HEADER).try_into().unwrap();
        let other = packet_key(&mut Software, &HashKey::BLANK.0, b"IoTize", &header);
        let mut bytes = hex(SEALED);
        assert_eq!(
            decrypt(&mut Software, &other.0, &mut bytes),
            Err(PacketError::Decrypt)
        );
        assert!(
            bytes[PAYLOAD_AT..].iter().all(|&b| b == 0),
            "plaintext left"
        );
        assert_eq!(bytes[..PAYLOAD_AT], hex(SEALED)[..PAYLOAD_AT]);

        let key: Key = hex(SEALED_KEY).try_into().unwrap();
        let good = hex(SEALED);
        for bit in PAYLOAD_AT * 8..good.len() * 8 {
            let mut bytes = good.clone();
            bytes[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                decrypt(&mut Software, &key, &mut bytes),
                Err(PacketError::Decrypt),
                "bit {bit}"
            );
        }
        // A plain packet is no encrypted one, and stays as it was.
        let mut plain = hex(PLAIN);
        assert_eq!(
            decrypt(&mut Software, &key, &mut plain),
            Err(PacketError::Encryption)
        );
        assert_eq!(plain, hex(PLAIN));
    }

    #[test]
    fn any_flipped_bit_of_a_plain_packet_is_refused() {
        let good = hex(PLAIN);
        for bit in 0..good.len() * 8 {
            let mut bytes = good.clone();
            bytes[bit / 8] ^= 1 << (bit % 8);
            // sendTime is outside the CRC (§11.1); the CRC covers the rest, the
            // reserved bit the header ignores included.
            assert_eq!(Packet::parse_plain(&bytes).is_ok(), bit < 32, "bit {bit}");
        }
        assert_eq!(Packet::parse_plain(&good[..47]), Err(PacketError::Length));
        let mut longer = good.clone();
        longer.extend_from_slice(&[0; 4]);
        assert_eq!(Packet::parse_plain(&longer), Err(PacketError::Length));
        let mut wrong_crc = good.clone();
        wrong_crc[47] ^= 1;
        assert_eq!(Packet::parse_plain(&wrong_crc), Err(PacketError::Crc));
        assert_eq!(PacketError::Crc.result_code(), ResultCode::BadRequest);
    }

    /// A packet whose dataSize lies, with a CRC that matches.
    fn with_data_size(size: u16) -> Vec<u8> {
        let mut bytes = hex(PLAIN);
        bytes[20..22].copy_from_slice(&size.to_be_bytes());
        let crc = crc32(&bytes[4..44], None);
        bytes[44..].copy_from_slice(&crc.to_be_bytes());
        bytes
    }

    #[test]
    fn data_size_must_fit_the_payload_and_its_padding() {
        assert_eq!(Packet::parse_plain(&with_data_size(20)).unwrap().data, DATA);
        // 21 and 22: the padding shrinks to 1 and 0 bytes, still a consistent packet.
        assert_eq!(
            Packet::parse_plain(&with_data_size(22)).unwrap().data.len(),
            22
        );
        for size in [23, 0xFFFF, 18, 0] {
            assert_eq!(
                Packet::parse_plain(&with_data_size(size)),
                Err(PacketError::DataSize),
                "dataSize {size}"
            );
        }
    }

    #[test]
    fn packets_round_trip_at_every_size_and_kind() {
        let mut out = vec![0u8; 70_000 + 512];
        for kind in [
            MessageType::DataLog,
            MessageType::Command,
            MessageType::CodeExec,
        ] {
            for encrypted in [false, true] {
                for n in (0..70).chain([255, 256, 4000, 65_535, 65_536, 70_000]) {
                    let data: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
                    let header = Header {
                        encrypted,
                        sender: 0x12,
                        ..Header::new(kind)
                    };
                    let (len, written) = encode(&header, 99, &data, &mut out).unwrap();
                    assert_eq!(encoded_len(&header, n), Some(len));
                    let align = written.alignment();
                    assert_eq!((len - PAYLOAD_AT) % align, 0);
                    assert!(len - PAYLOAD_AT - PAYLOAD_OVERHEAD - n < align);
                    assert_eq!(written.payload_len(), Some(len - PAYLOAD_AT));
                    let packet = if encrypted {
                        let key = [n as u8; 16];
                        encrypt(&mut Software, &key, &mut out[..len]).unwrap();
                        decrypt(&mut Software, &key, &mut out[..len]).unwrap()
                    } else {
                        Packet::parse_plain(&out[..len]).unwrap()
                    };
                    assert_eq!(packet.header, written);
                    assert_eq!(packet.log_time, 99);
                    if n <= MAX_DATA_SIZE {
                        assert_eq!(packet.data, &data[..], "{kind:?} {encrypted} {n}");
                    } else {
                        // dataSize 0: the data, and the padding after it.
                        assert_eq!(&packet.data[..n], &data[..]);
                        assert!(packet.data[n..].iter().all(|&b| b == 0));
                    }
                }
            }
        }
    }

    #[test]
    fn the_extended_bit_is_forced_by_large_data_and_the_maximum_holds() {
        let header = Header::new(MessageType::Command);
        // Multiplicator 1: a payload of 65 520 bytes (a multiple of 4) is the most
        // packetLength can count with the header.
        let (fits, _) = layout(&header, 65_520 - PAYLOAD_OVERHEAD).unwrap();
        assert!(!fits.extended);
        assert_eq!(fits.packet_length, 0xFFFC);
        let (forced, _) = layout(&header, 65_521 - PAYLOAD_OVERHEAD).unwrap();
        assert!(forced.extended);
        assert_eq!(forced.multiplicator(), 256);
        // Extended, the payload is a multiple of 256: 0x1FFF00 is the largest that fits.
        let max = 0x1F_FF00 - PAYLOAD_OVERHEAD;
        assert_eq!(encoded_len(&header, max), Some(0x1F_FF10));
        assert_eq!(encoded_len(&header, max + 1), None);
        let mut small = [0u8; 47];
        assert_eq!(
            encode(&command(), 0, DATA, &mut small),
            Err(PacketError::BufferTooSmall)
        );
        assert_eq!(
            PacketError::BufferTooSmall.result_code(),
            ResultCode::InternalServerError
        );
    }

    #[test]
    fn a_data_log_packet_carries_a_bundle_s_tlv() {
        // vectors.txt §B.2's TLV of a resource value; the client decodes such a packet
        // (`GET /1031//11`) without decryption.
        let tlv = hex("c8050a30313233343536373839");
        let header = Header {
            send_time: 1000,
            packet_id: 3,
            ..Header::new(MessageType::DataLog)
        };
        let mut out = [0u8; 64];
        let (len, written) = encode(&header, 990, &tlv, &mut out).unwrap();
        assert_eq!(written.type_byte(), 0x10);
        assert_eq!(written.packet_length as usize, len - 4);
        let packet = Packet::parse_plain(&out[..len]).unwrap();
        assert_eq!(packet.header.kind(), Some(MessageType::DataLog));
        assert_eq!(packet.data, &tlv[..]);
    }

    #[test]
    fn a_command_packet_s_data_is_a_multi_request() {
        // vectors.txt §B.9: [GET /3//2 expect ANY, PUT /1029/2/4 0102 expect SUCCESS].
        let items = hex("0007010003ffff0002ff00090304050002000401027f");
        let mut out = [0u8; 64];
        let (len, _) = encode(&command(), 0, &items, &mut out).unwrap();
        let packet = Packet::parse_plain(&out[..len]).unwrap();
        assert_eq!(packet.commands().unwrap().len(), 2);
        let (len, _) = encode(&command(), 0, DATA, &mut out).unwrap();
        assert!(Packet::parse_plain(&out[..len])
            .unwrap()
            .commands()
            .is_err());
    }

    #[test]
    fn sender_ids_map_onto_profiles() {
        for (sender, profile) in [
            (SENDER_ADMIN, ADMIN),
            (SENDER_SUPERVISOR, SUPERVISOR),
            (SENDER_ANONYMOUS, ANONYMOUS),
            (SENDER_IOTIZE, 0xFFFD),
            (0x05, 5),
            (0x7F, 0x7F),
            (0x80, 0xFF80),
        ] {
            assert_eq!(profile_of_sender(sender), profile);
            assert_eq!(sender_of_profile(profile), Some(sender));
        }
        assert_eq!(sender_of_profile(0x80), None);
        assert_eq!(sender_of_profile(0xFF7F), None);
        for sender in 0..=255u8 {
            assert_eq!(sender_of_profile(profile_of_sender(sender)), Some(sender));
        }
    }

    #[test]
    fn the_hash_key_of_a_record_is_stored_then_server_key() {
        let record = ScramRecord {
            stored_key: [1; 16],
            server_key: [2; 16],
            salt: [3; 4],
        };
        let key = HashKey::of(&record);
        assert_eq!(key.0[..16], [1; 16]);
        assert_eq!(key.0[16..], [2; 16]);
        assert_eq!(format!("{key:?}"), "HashKey(..)");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Header::parse(&bytes);
            let _ = Packet::parse_plain(&bytes);
            let mut copy = bytes.clone();
            let _ = decrypt(&mut Software, &[7; 16], &mut copy);
            let mut copy = bytes.clone();
            let _ = encrypt(&mut Software, &[7; 16], &mut copy);
        }

        #[test]
        fn arbitrary_headers_with_a_good_crc_never_panic(
            prefix in any::<[u8; 16]>(),
            body in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut bytes = prefix.to_vec();
            bytes.extend_from_slice(&body);
            if bytes.len() >= 24 {
                let end = bytes.len() - 4;
                let crc = crc32(&bytes[4..end], None);
                bytes[end..].copy_from_slice(&crc.to_be_bytes());
            }
            if let Ok(packet) = Packet::parse_plain(&bytes) {
                prop_assert!(packet.data.len() <= bytes.len());
                let _ = packet.commands();
            }
        }

        #[test]
        fn encoded_packets_parse_back(
            data in proptest::collection::vec(any::<u8>(), 0..300),
            kind in 1u8..8,
            id in any::<u16>(),
            encrypted in any::<bool>(),
        ) {
            let header = Header {
                packet_id: id,
                encrypted,
                message_type: kind,
                ..Header::new(MessageType::Command)
            };
            let mut out = [0u8; 400];
            let (len, written) = encode(&header, 5, &data, &mut out).unwrap();
            if encrypted {
                encrypt(&mut Software, &[1; 16], &mut out[..len]).unwrap();
                let packet = decrypt(&mut Software, &[1; 16], &mut out[..len]).unwrap();
                prop_assert_eq!(packet.data, &data[..]);
                prop_assert_eq!(packet.header, written);
            } else {
                let packet = Packet::parse_plain(&out[..len]).unwrap();
                prop_assert_eq!(packet.data, &data[..]);
                prop_assert_eq!(packet.header, written);
            }
        }
    }
}
