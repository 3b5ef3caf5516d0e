//! Serving single packets (`protocol.md` §11, decision 7, feature `packets`): where the
//! packet store and the replay record live on a board ([`PacketStorage`],
//! [`FlashPackets`]), and opening a packet — decrypted with its sender's key, its CRC
//! checked, its packetId recorded — for the engine to run.
//!
//! # What a packet does
//!
//! - **COMMAND** (type 2): its data is a list of requests in the multi-request layout
//!   (§5.4); the engine runs them in order with the rights of the sender, an item
//!   refused for rights answering `81` inside the answer (`/1024//80` and `/1024//83`
//!   answer `00` and the items' multi-request answer).
//! - **TARGET_FW_UPDATE** (type 6): a firmware image for the board's [`FirmwareSink`].
//!   Its data is `image length u32 | image` (big-endian; the length is needed because an
//!   image over 65 535 bytes leaves dataSize 0 and its padding indistinguishable from
//!   it). It must be encrypted by a sender with every right (admin, supervisor); it is
//!   decrypted twice from the store, once to check its CRC, once into the sink, so
//!   that nothing is written for a packet that does not check. The image is then
//!   verified by the sink and marked bootable; the board boots it at its next reset.
//! - Any other type answers `86` (not acceptable), and changes nothing.
//!
//! # Rights and keys
//!
//! An encrypted packet is decrypted with the key of §11.2 from its sender's SCRAM record
//! (`storedKey ‖ serverKey` and the profile's name): it runs with that profile's rights.
//! The client's blank-key sender "IoTize" (`FD`), whose key anyone can compute, and every
//! plain packet run with anonymous rights; a sender without a SCRAM record cannot send
//! encrypted packets (`80`, as a packet that does not decrypt).
//!
//! # At most once
//!
//! A packet runs only once its packetId is recorded as the newest of its sender under
//! its key ([`PacketStorage::accept`], [`ReplayGuard`]: ids only grow, and a record is
//! tagged with the key it was made under; plain packets count against the anonymous
//! record, see [`crate::crypto::packet::Packet::replay_sender`]). A COMMAND packet is
//! recorded once it decrypted, checked and its requests frame, before any of them runs,
//! so a power cut never lets it run twice; one refused after that (its answers do not
//! fit the device's response, `A0`) has used its id. A firmware image is recorded once it
//! is marked bootable: a slot that fails leaves the file acceptable again, and writing
//! the same image twice is harmless.
//!
//! The engine never blocks on the store: writing a chunk and opening a packet are
//! operations ([`crate::io::Operation::WritePacket`], [`crate::io::Operation::OpenPacket`])
//! a request waits on, performed by [`open`] and [`PacketStorage`].
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::ops::Range;

use embedded_storage::nor_flash::NorFlash;
use zeroize::Zeroize;

use crate::acl::Subject;
use crate::auth::{Credential, Secret16};
use crate::blob::BlobId;
use crate::config::{Config, ANONYMOUS};
use crate::crypto::packet::{
    self, key_input, HashKey, Header, MessageType, Packet, PacketError, BLANK_USER, PAYLOAD_AT,
    SENDER_ANONYMOUS, SENDER_IOTIZE,
};
use crate::crypto::{blocks_mut, crc32, Crypto, BLOCK};
use crate::firmware::{self, FirmwareSink};
use crate::io::IoResult;
use crate::storage::replay::ReplayGuard;
use crate::storage::{ConfigStore, LoadState, Loaded, StoreError, StoreErrorKind};
use crate::wire::ResultCode;

/// Bytes after an opened packet's data in its output area: the profile whose rights it
/// runs with (u16) and the data's length (u16), big-endian.
pub const TRAILER_LEN: usize = 4;

/// The unit of the packet store's offsets and lengths (§11.3: chunks count 16 bytes).
const UNIT: u32 = 16;

/// Bytes decrypted at a time when a packet is streamed from the store.
const STREAM_LEN: usize = 4 * BLOCK;

/// Where a board keeps single packets: the store the chunks of `/1024//82` are written
/// to (in order, from offset 0), the replay record of each sender, the firmware slot.
/// [`FlashPackets`] is one over NOR flash.
pub trait PacketStorage {
    /// Bytes the store holds (the largest packet it takes).
    fn capacity(&self) -> u32;

    /// Writes `data` at `offset` of the store. A write at offset 0 starts a new packet;
    /// the engine writes each byte once, in order, at offsets and lengths that are
    /// multiples of 16. [`StoreErrorKind::TooLarge`] past the capacity.
    fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), StoreError>;

    /// Reads `buf.len()` bytes of the store at `offset` (both multiples of 16).
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), StoreError>;

    /// Whether `packet_id` is newer than every packetId accepted from `sender` under the
    /// key of `tag` ([`ReplayGuard::is_new`]); nothing is recorded.
    fn is_new(&mut self, sender: u8, packet_id: u16, tag: u16) -> Result<bool, StoreError>;

    /// [`is_new`](PacketStorage::is_new), and if so the packet is recorded before this
    /// returns `Ok(true)` ([`ReplayGuard::accept`]).
    fn accept(&mut self, sender: u8, packet_id: u16, tag: u16) -> Result<bool, StoreError>;

    /// The slot a firmware image goes to, if the board takes firmware updates.
    fn firmware(&mut self) -> Option<&mut dyn FirmwareSink<Error = firmware::ErrorKind>>;
}

impl<T: PacketStorage + ?Sized> PacketStorage for &mut T {
    fn capacity(&self) -> u32 {
        T::capacity(self)
    }

    fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), StoreError> {
        T::write(self, offset, data)
    }

    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), StoreError> {
        T::read(self, offset, buf)
    }

    fn is_new(&mut self, sender: u8, packet_id: u16, tag: u16) -> Result<bool, StoreError> {
        T::is_new(self, sender, packet_id, tag)
    }

    fn accept(&mut self, sender: u8, packet_id: u16, tag: u16) -> Result<bool, StoreError> {
        T::accept(self, sender, packet_id, tag)
    }

    fn firmware(&mut self) -> Option<&mut dyn FirmwareSink<Error = firmware::ErrorKind>> {
        T::firmware(self)
    }
}

/// A [`FirmwareSink`] seen with the generic [`firmware::ErrorKind`] as its error: what
/// [`PacketStorage::firmware`] hands out.
#[derive(Debug)]
pub struct Kinds<W>(pub W);

impl<W: FirmwareSink> firmware::ErrorType for Kinds<W> {
    type Error = firmware::ErrorKind;
}

impl<W: FirmwareSink> FirmwareSink for Kinds<W> {
    fn capacity(&self) -> u32 {
        self.0.capacity()
    }

    fn begin(&mut self) -> Result<(), firmware::ErrorKind> {
        self.0.begin().map_err(|e| firmware::Error::kind(&e))
    }

    fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), firmware::ErrorKind> {
        self.0
            .write(offset, data)
            .map_err(|e| firmware::Error::kind(&e))
    }

    fn verify(&mut self, len: u32, crc: u32) -> Result<(), firmware::ErrorKind> {
        self.0
            .verify(len, crc)
            .map_err(|e| firmware::Error::kind(&e))
    }

    fn mark_bootable(&mut self) -> Result<(), firmware::ErrorKind> {
        self.0
            .mark_bootable()
            .map_err(|e| firmware::Error::kind(&e))
    }
}

/// A board without a firmware slot: [`FlashPackets`] then runs COMMAND packets only
/// (a firmware packet answers `A7`, no room for it).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoFirmware;

/// The packet store in a region of a NOR flash, the replay record in another
/// ([`ReplayGuard`]), and the board's firmware slot.
///
/// The store's sectors are erased as the chunks reach them; a packet is written once,
/// in order (a chunk sent again after a lost answer is not written again, see
/// [`crate::crypto::chunk::PacketStore`]). The store is scratch: what a power cut
/// leaves there is never run (the engine's bookkeeping of what was loaded is in RAM, and
/// starts empty).
pub struct FlashPackets<P, G: NorFlash, W = NoFirmware> {
    area: P,
    region: Range<u32>,
    /// Bytes of the region erased since the packet being loaded started.
    erased: u32,
    guard: ReplayGuard<G>,
    firmware: Option<Kinds<W>>,
}

impl<P: NorFlash, G: NorFlash, W: FirmwareSink> FlashPackets<P, G, W> {
    /// The store in `region` of `area` (whole erase sectors; the flash's read and write
    /// units must divide 16), the replay record `guard`, the firmware slot `firmware`.
    /// [`StoreErrorKind::Region`] if the region does not suit.
    pub fn new(
        area: P,
        region: Range<u32>,
        guard: ReplayGuard<G>,
        firmware: Option<W>,
    ) -> Result<Self, StoreError> {
        let erase = u32::try_from(P::ERASE_SIZE).map_err(|_| StoreErrorKind::Region)?;
        let fits = usize::try_from(region.end).is_ok_and(|end| end <= area.capacity());
        let units = P::READ_SIZE != 0
            && P::WRITE_SIZE != 0
            && 16usize.is_multiple_of(P::READ_SIZE)
            && 16usize.is_multiple_of(P::WRITE_SIZE);
        if region.start >= region.end
            || !fits
            || !units
            || erase == 0
            || !region.start.is_multiple_of(erase)
            || !region.end.is_multiple_of(erase)
        {
            return Err(StoreErrorKind::Region.into());
        }
        Ok(FlashPackets {
            area,
            region,
            erased: 0,
            guard,
            firmware: firmware.map(Kinds),
        })
    }

    /// The flash, the replay record and the firmware slot back.
    pub fn into_parts(self) -> (P, ReplayGuard<G>, Option<W>) {
        (self.area, self.guard, self.firmware.map(|k| k.0))
    }

    /// The firmware slot.
    pub fn firmware_sink(&self) -> Option<&W> {
        self.firmware.as_ref().map(|k| &k.0)
    }

    fn len(&self) -> u32 {
        self.region.end.saturating_sub(self.region.start)
    }

    /// Where `len` bytes at `offset` of the store are in the flash, and where they end
    /// in the store: [`StoreErrorKind::TooLarge`] past its end.
    fn place(&self, offset: u32, len: usize) -> Result<(u32, u32), StoreError> {
        let len = u32::try_from(len).map_err(|_| StoreErrorKind::TooLarge)?;
        let end = offset.checked_add(len).ok_or(StoreErrorKind::TooLarge)?;
        if end > self.len() {
            return Err(StoreErrorKind::TooLarge.into());
        }
        let at = self
            .region
            .start
            .checked_add(offset)
            .ok_or(StoreErrorKind::Flash)?;
        Ok((at, end))
    }
}

impl<P: NorFlash, G: NorFlash, W: FirmwareSink> PacketStorage for FlashPackets<P, G, W> {
    fn capacity(&self) -> u32 {
        self.len()
    }

    fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), StoreError> {
        let (at, end) = self.place(offset, data.len())?;
        if offset == 0 {
            self.erased = 0;
        }
        let erase = u32::try_from(P::ERASE_SIZE).map_err(|_| StoreErrorKind::Region)?;
        while self.erased < end {
            let from = self
                .region
                .start
                .checked_add(self.erased)
                .ok_or(StoreErrorKind::Flash)?;
            let to = from.checked_add(erase).ok_or(StoreErrorKind::Flash)?;
            self.area
                .erase(from, to)
                .map_err(|_| StoreError::new(StoreErrorKind::Flash))?;
            self.erased = self.erased.saturating_add(erase);
        }
        self.area
            .write(at, data)
            .map_err(|_| StoreError::new(StoreErrorKind::Flash))
    }

    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), StoreError> {
        let (at, _) = self.place(offset, buf.len())?;
        self.area
            .read(at, buf)
            .map_err(|_| StoreError::new(StoreErrorKind::Flash))
    }

    fn is_new(&mut self, sender: u8, packet_id: u16, tag: u16) -> Result<bool, StoreError> {
        self.guard.is_new(sender, packet_id, tag)
    }

    fn accept(&mut self, sender: u8, packet_id: u16, tag: u16) -> Result<bool, StoreError> {
        self.guard.accept(sender, packet_id, tag)
    }

    fn firmware(&mut self) -> Option<&mut dyn FirmwareSink<Error = firmware::ErrorKind>> {
        self.firmware
            .as_mut()
            .map(|k| k as &mut dyn FirmwareSink<Error = firmware::ErrorKind>)
    }
}

impl firmware::ErrorType for NoFirmware {
    type Error = firmware::ErrorKind;
}

impl FirmwareSink for NoFirmware {
    fn capacity(&self) -> u32 {
        0
    }

    fn begin(&mut self) -> Result<(), firmware::ErrorKind> {
        Err(firmware::ErrorKind::TooLarge)
    }

    fn write(&mut self, _offset: u32, _data: &[u8]) -> Result<(), firmware::ErrorKind> {
        Err(firmware::ErrorKind::TooLarge)
    }

    fn verify(&mut self, _len: u32, _crc: u32) -> Result<(), firmware::ErrorKind> {
        Err(firmware::ErrorKind::Sequence)
    }

    fn mark_bootable(&mut self) -> Result<(), firmware::ErrorKind> {
        Err(firmware::ErrorKind::Sequence)
    }
}

/// A configuration store and a packet storage as one [`ConfigStore`]: what a port hands
/// its device when it takes single packets.
#[derive(Debug, Default)]
pub struct WithPackets<S, P> {
    /// Keeps the configuration (and the blobs).
    pub config: S,
    /// Keeps the packets.
    pub packets: P,
}

impl<S: ConfigStore, P: PacketStorage> ConfigStore for WithPackets<S, P> {
    fn load(&mut self) -> Result<Loaded, StoreError> {
        self.config.load()
    }

    fn load_into(&mut self, config: &mut Config) -> Result<LoadState, StoreError> {
        self.config.load_into(config)
    }

    fn save(&mut self, config: &Config) -> Result<(), StoreError> {
        self.config.save(config)
    }

    fn append_blob(&mut self, blob: BlobId, data: &[u8]) -> Result<(), StoreError> {
        self.config.append_blob(blob, data)
    }

    fn clear_blob(&mut self, blob: BlobId) -> Result<(), StoreError> {
        self.config.clear_blob(blob)
    }

    fn packets(&mut self) -> Option<&mut dyn PacketStorage> {
        Some(&mut self.packets)
    }
}

/// Where the packet an [`crate::io::Operation::OpenPacket`] opens is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PacketSource {
    /// The packet store, `len` bytes loaded (`POST /1024//83`).
    Store {
        /// Bytes loaded.
        len: u32,
    },
    /// `len` bytes of the request buffer at `at` (`POST /1024//80`).
    Request {
        /// Where the packet is in the request buffer.
        at: usize,
        /// Its length.
        len: u16,
    },
}

/// What an opened packet left in its output area ([`TRAILER_LEN`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opened {
    /// The profile whose rights its commands run with.
    pub profile: u16,
    /// Bytes of commands just before the trailer (0 for a firmware image).
    pub len: usize,
    /// A firmware image was written and marked bootable: the device restarts to boot
    /// it (§11.5).
    pub firmware: bool,
}

/// The bit of the trailer's length that says [`Opened::firmware`].
const FIRMWARE_BIT: u16 = 0x8000;

impl Opened {
    /// The trailer at the end of `area`, as [`open`] wrote it.
    pub fn read(area: &[u8]) -> Option<Opened> {
        let (_, trailer) = area.split_last_chunk::<TRAILER_LEN>()?;
        let [p0, p1, l0, l1] = *trailer;
        let len = u16::from_be_bytes([l0, l1]);
        Some(Opened {
            profile: u16::from_be_bytes([p0, p1]),
            len: usize::from(len & !FIRMWARE_BIT),
            firmware: len & FIRMWARE_BIT != 0,
        })
    }
}

/// Reads the packet's bytes at `offset` from where it is.
fn read_at(
    source: PacketSource,
    request: &[u8],
    storage: &mut Option<&mut dyn PacketStorage>,
    offset: usize,
    buf: &mut [u8],
) -> IoResult {
    match source {
        PacketSource::Store { .. } => {
            let storage = storage.as_mut().ok_or(ResultCode::NvmFull)?;
            let offset = u32::try_from(offset).map_err(|_| ResultCode::NotAcceptable)?;
            storage.read(offset, buf).map_err(|err| err.result_code())
        }
        PacketSource::Request { at, len } => {
            let start = at.checked_add(offset).ok_or(ResultCode::NotAcceptable)?;
            let end = start
                .checked_add(buf.len())
                .ok_or(ResultCode::NotAcceptable)?;
            if end > at.saturating_add(usize::from(len)) {
                return Err(ResultCode::NotAcceptable);
            }
            let bytes = request.get(start..end).ok_or(ResultCode::NotAcceptable)?;
            buf.copy_from_slice(bytes);
            Ok(())
        }
    }
}

/// Who sent a packet: the profile it runs as, its key (`None` for a plain packet), and
/// the tag of the key its replay record is kept under ([`ReplayGuard`]).
struct Sender {
    profile: u16,
    key: Option<Secret16>,
    tag: u16,
}

/// The input of a key's replay tag.
const TAG_LABEL: &[u8] = b"lwm2m replay tag";

/// The sender of `header`: anonymous for a plain packet and for the blank key.
fn sender_key<C: Crypto + ?Sized>(
    crypto: &mut C,
    config: &Config,
    header: &Header,
    key_bytes: &[u8; packet::HEADER_LEN],
) -> Result<Sender, PacketError> {
    if !header.encrypted {
        return Ok(Sender {
            profile: ANONYMOUS,
            key: None,
            tag: 0,
        });
    }
    let (profile, hash, name) = if header.sender == SENDER_IOTIZE {
        (ANONYMOUS, HashKey::BLANK, BLANK_USER)
    } else {
        let id = packet::profile_of_sender(header.sender);
        let profile = config.profile(id).ok_or(PacketError::Decrypt)?;
        let Credential::Scram(record) = &profile.credential else {
            return Err(PacketError::Decrypt);
        };
        (id, HashKey::of(record), profile.name.as_slice())
    };
    let key = packet::packet_key(&mut &mut *crypto, &hash.0, name, key_bytes);
    // A tag derived from the key, not its bytes: the replay record is not secret.
    let [t0, t1, ..] = crypto.hmac_sha256(&hash.0, &[TAG_LABEL]);
    Ok(Sender {
        profile,
        key: Some(key),
        tag: u16::from_be_bytes([t0, t1]),
    })
}

/// The sender whose replay record a packet counts against
/// ([`Packet::replay_sender`]).
const fn replay_sender(header: &Header) -> u8 {
    if header.encrypted {
        header.sender
    } else {
        SENDER_ANONYMOUS
    }
}

/// Records the packet's id (`record`), or only checks that it is new;
/// [`PacketError::Replayed`] if it is not newer.
fn accept(
    storage: &mut Option<&mut dyn PacketStorage>,
    header: &Header,
    tag: u16,
    record: bool,
) -> IoResult {
    // No replay record: no room to keep the packet's id, so it cannot run.
    let storage = storage.as_mut().ok_or(ResultCode::NvmFull)?;
    let sender = replay_sender(header);
    let new = match record {
        true => storage.accept(sender, header.packet_id, tag),
        false => storage.is_new(sender, header.packet_id, tag),
    };
    match new {
        Ok(true) => Ok(()),
        Ok(false) => Err(PacketError::Replayed.result_code()),
        Err(err) => Err(err.result_code()),
    }
}

/// Opens the packet at `source` ([`crate::io::Operation::OpenPacket`]): decrypts it with
/// its sender's key from `config`, checks it, records its packetId in `storage`, and
/// leaves in `area` what the engine runs: a COMMAND packet's data at the end of `area`,
/// before the [`TRAILER_LEN`] trailer ([`Opened`]); a firmware image goes into the
/// storage's firmware slot (data length 0). Any error changes nothing but, for an image
/// that checked, the firmware slot (never marked bootable then).
pub fn open<C: Crypto + ?Sized>(
    crypto: &mut C,
    config: &Config,
    source: PacketSource,
    request: &[u8],
    area: &mut [u8],
    mut storage: Option<&mut dyn PacketStorage>,
) -> IoResult {
    let stored = match source {
        PacketSource::Store { len } => usize::try_from(len).map_err(|_| PacketError::Length)?,
        PacketSource::Request { len, .. } => usize::from(len),
    };
    let mut head = [0u8; PAYLOAD_AT];
    if stored < PAYLOAD_AT {
        return Err(PacketError::Length.result_code());
    }
    read_at(source, request, &mut storage, 0, &mut head)?;
    let header = Header::decode(&head);
    let total = header
        .payload_len()
        .and_then(|payload| payload.checked_add(PAYLOAD_AT))
        .filter(|&total| total <= packet::MAX_PACKET_LEN)
        .ok_or(PacketError::Length)?;
    // The store holds the packet padded to 16 bytes (§11.3); a direct packet is exact.
    let padding = stored.checked_sub(total).ok_or(PacketError::Length)?;
    if padding >= UNIT as usize || (matches!(source, PacketSource::Request { .. }) && padding != 0)
    {
        return Err(PacketError::Length.result_code());
    }
    let key_bytes = key_input(&head).ok_or(PacketError::Length)?;
    let sender = sender_key(crypto, config, &header, key_bytes)?;
    match header.kind() {
        Some(MessageType::Command) => {
            command(crypto, source, request, area, &mut storage, total, &sender)
        }
        Some(MessageType::TargetFwUpdate) => {
            let key = sender.key.as_ref().ok_or(ResultCode::Unauthorized)?;
            if !Subject::new(config, sender.profile).is_admin() {
                return Err(ResultCode::Unauthorized);
            }
            let sink = Firmware {
                key: &key.0,
                header: &header,
                key_bytes,
                total,
                tag: sender.tag,
            };
            sink.load(crypto, source, request, &mut storage)?;
            write_trailer(area, sender.profile, 0, true)
        }
        // A type this device does not run: not an acceptable packet.
        _ => Err(ResultCode::NotAcceptable),
    }
}

fn write_trailer(area: &mut [u8], profile: u16, len: usize, firmware: bool) -> IoResult {
    let len = u16::try_from(len)
        .ok()
        .filter(|&len| len & FIRMWARE_BIT == 0)
        .ok_or(ResultCode::InternalServerError)?;
    let len = if firmware { len | FIRMWARE_BIT } else { len };
    let (_, trailer) = area
        .split_last_chunk_mut::<TRAILER_LEN>()
        .ok_or(ResultCode::InternalServerError)?;
    let [p0, p1] = profile.to_be_bytes();
    let [l0, l1] = len.to_be_bytes();
    *trailer = [p0, p1, l0, l1];
    Ok(())
}

/// A COMMAND packet: read whole into the end of `area`, decrypted or checked in place,
/// its requests checked for framing, recorded, its data moved up against the trailer.
fn command<C: Crypto + ?Sized>(
    crypto: &mut C,
    source: PacketSource,
    request: &[u8],
    area: &mut [u8],
    storage: &mut Option<&mut dyn PacketStorage>,
    total: usize,
    sender: &Sender,
) -> IoResult {
    let room = area
        .len()
        .checked_sub(TRAILER_LEN)
        .ok_or(ResultCode::InternalServerError)?;
    // Read in whole units of the store (it holds the packet padded to 16 bytes).
    let read = match source {
        PacketSource::Store { .. } => total.checked_next_multiple_of(UNIT as usize),
        PacketSource::Request { .. } => Some(total),
    }
    .ok_or(ResultCode::NotAcceptable)?;
    // Larger than the device can run at once: refused before anything is recorded.
    let start = room.checked_sub(read).ok_or(ResultCode::NotAcceptable)?;
    let whole = area.get_mut(start..room).ok_or(ResultCode::NotAcceptable)?;
    if let Err(code) = read_at(source, request, storage, 0, whole) {
        whole.zeroize();
        return Err(code);
    }
    let (place, padding) = whole.split_at_mut(total.min(read));
    padding.zeroize();
    let checked = match &sender.key {
        Some(key) => packet::decrypt(&mut &mut *crypto, &key.0, place),
        None => Packet::parse_plain(place),
    };
    let (header, data) = match checked {
        // Requests that do not frame would run nothing: refused before the record.
        Ok(packet) if packet.commands().is_err() => (packet.header, None),
        Ok(packet) => (packet.header, Some(packet.data.len())),
        Err(err) => {
            place.zeroize();
            return Err(err.result_code());
        }
    };
    let data_at = packet::DATA_AT;
    let layout = data.and_then(|data| {
        let end = data_at.checked_add(data)?;
        // Against the trailer: after the packet, past the store's padding.
        let keep_from = read.checked_sub(data)?;
        (end <= total).then_some((data, end, keep_from))
    });
    let Some((data, data_end, keep_from)) = layout else {
        whole.zeroize();
        return Err(ResultCode::BadRequest);
    };
    if let Err(code) = accept(storage, &header, sender.tag, true) {
        whole.zeroize();
        return Err(code);
    }
    whole.copy_within(data_at..data_end, keep_from);
    if let Some(rest) = whole.get_mut(..keep_from) {
        rest.zeroize();
    }
    write_trailer(area, sender.profile, data, false)
}

/// A firmware packet being streamed from where it is.
struct Firmware<'a> {
    key: &'a [u8; BLOCK],
    header: &'a Header,
    key_bytes: &'a [u8; packet::HEADER_LEN],
    total: usize,
    /// The tag of the sender's key ([`ReplayGuard`]).
    tag: u16,
}

/// Bytes of a firmware packet's data before its image: the image's length.
const IMAGE_LEN_BYTES: usize = 4;
/// Where the image starts in the packet: after logTime, dataSize and the image length.
const IMAGE_AT: usize = packet::DATA_AT + IMAGE_LEN_BYTES;

impl Firmware<'_> {
    /// Checks the packet and that it is new, then writes its image into the firmware
    /// slot, verified and marked bootable, and only then records it.
    fn load<C: Crypto + ?Sized>(
        &self,
        crypto: &mut C,
        source: PacketSource,
        request: &[u8],
        storage: &mut Option<&mut dyn PacketStorage>,
    ) -> IoResult {
        if self
            .total
            .checked_sub(PAYLOAD_AT)
            .is_none_or(|p| p % BLOCK != 0)
        {
            return Err(PacketError::Length.result_code());
        }
        // First pass: the CRC and the image's place, nothing written.
        let image = self.stream(crypto, source, request, storage, None)?;
        let capacity = storage
            .as_mut()
            .and_then(|s| s.firmware())
            .ok_or(ResultCode::NvmFull)?
            .capacity();
        if image.len > capacity {
            return Err(firmware::ErrorKind::TooLarge.result_code());
        }
        // New, not recorded yet: a failure of the slot leaves the file acceptable again
        // (the same image written twice is harmless; an older file is still refused).
        accept(storage, self.header, self.tag, false)?;
        // Second pass: into the slot (the stream checks the same CRC again).
        let image = self.stream(crypto, source, request, storage, Some(image))?;
        let sink = storage
            .as_mut()
            .and_then(|s| s.firmware())
            .ok_or(ResultCode::NvmFull)?;
        let kind = |e: firmware::ErrorKind| e.result_code();
        sink.verify(image.len, image.crc).map_err(kind)?;
        sink.mark_bootable().map_err(kind)?;
        info!("firmware image of {} bytes marked bootable", image.len);
        accept(storage, self.header, self.tag, true)
    }

    /// Decrypts the packet's payload piece by piece, checking its CRC; with `write`, the
    /// image found by a first pass goes into the firmware slot as it is decrypted.
    fn stream<C: Crypto + ?Sized>(
        &self,
        crypto: &mut C,
        source: PacketSource,
        request: &[u8],
        storage: &mut Option<&mut dyn PacketStorage>,
        write: Option<firmware::Image>,
    ) -> Result<firmware::Image, ResultCode> {
        let mut iv = [0u8; BLOCK];
        let mut crc = crc32(self.key_bytes, None);
        let mut image_crc = crc32(&[], None);
        let mut image: Option<(usize, usize)> = None; // (len, end in the packet)
        let mut buf = [0u8; STREAM_LEN];
        let mut at = PAYLOAD_AT;
        let crc_at = self
            .total
            .checked_sub(packet::CRC_LEN)
            .ok_or(PacketError::Length)?;
        let mut stored_crc = [0u8; packet::CRC_LEN];
        if let Some(sink) = write.and(storage.as_mut().and_then(|s| s.firmware())) {
            sink.begin().map_err(|e| e.result_code())?;
        }
        let result = loop {
            if at >= self.total {
                break Ok(());
            }
            let n = (self.total.saturating_sub(at)).min(STREAM_LEN);
            let piece = buf.get_mut(..n).ok_or(ResultCode::InternalServerError)?;
            read_at(source, request, storage, at, piece)?;
            let Some(blocks) = blocks_mut(piece) else {
                break Err(PacketError::Length.result_code());
            };
            let next_iv = blocks.last().copied().unwrap_or(iv);
            crypto.aes128_cbc_decrypt(self.key, &iv, blocks);
            iv = next_iv;
            let end = at.saturating_add(n);
            // The first piece holds logTime, dataSize and the image's length.
            if image.is_none() {
                image = Some(self.image_of(piece)?);
            }
            let (_, image_end) = image.unwrap_or((0, 0));
            for (i, &byte) in piece.iter().enumerate() {
                let pos = at.saturating_add(i);
                if pos < crc_at {
                    crc = crc32(&[byte], Some(crc));
                } else if let Some(cell) = stored_crc.get_mut(pos.saturating_sub(crc_at)) {
                    *cell = byte;
                }
            }
            // The image bytes of this piece.
            let from = at.max(IMAGE_AT);
            let to = end.min(image_end);
            if from < to {
                let bytes = piece
                    .get(from.saturating_sub(at)..to.saturating_sub(at))
                    .unwrap_or(&[]);
                image_crc = crc32(bytes, Some(image_crc));
                if write.is_some() {
                    if let Some(sink) = storage.as_mut().and_then(|s| s.firmware()) {
                        let offset = u32::try_from(from.saturating_sub(IMAGE_AT))
                            .map_err(|_| ResultCode::NvmFull)?;
                        if let Err(e) = sink.write(offset, bytes) {
                            break Err(e.result_code());
                        }
                    }
                }
            }
            at = end;
        };
        buf.zeroize();
        result?;
        if crc != u32::from_be_bytes(stored_crc) {
            return Err(PacketError::Decrypt.result_code());
        }
        let (len, _) = image.ok_or(PacketError::DataSize)?;
        let found = firmware::Image {
            len: u32::try_from(len).map_err(|_| ResultCode::NvmFull)?,
            crc: image_crc,
        };
        // The second pass must read what the first one checked.
        if write.is_some_and(|first| first != found) {
            return Err(ResultCode::NvmError);
        }
        Ok(found)
    }

    /// The image's length and end (in the packet) from the first decrypted piece.
    fn image_of(&self, first: &[u8]) -> Result<(usize, usize), ResultCode> {
        // logTime u32 | dataSize u16 | image length u32, from the payload's start.
        let fields = first.first_chunk::<10>().ok_or(PacketError::DataSize)?;
        let [_, _, _, _, s0, s1, l0, l1, l2, l3] = *fields;
        let size = usize::from(u16::from_be_bytes([s0, s1]));
        let room = self
            .total
            .checked_sub(packet::DATA_AT + packet::CRC_LEN)
            .ok_or(PacketError::DataSize)?;
        let len = usize::try_from(u32::from_be_bytes([l0, l1, l2, l3]))
            .map_err(|_| PacketError::DataSize)?;
        let data = len
            .checked_add(IMAGE_LEN_BYTES)
            .ok_or(PacketError::DataSize)?;
        // The data is the length and the image, nothing else: dataSize says so, or, for
        // more than 65 535 bytes (dataSize 0), only the padding follows the image. An
        // image without its length (a raw binary whose first word reads as one) or an
        // empty one is refused.
        let framed = match size {
            0 => {
                data > usize::from(u16::MAX)
                    && room
                        .checked_sub(data)
                        .is_some_and(|p| p < self.header.alignment())
            }
            size => size == data && size <= room,
        };
        if len == 0 || !framed {
            return Err(PacketError::DataSize.result_code());
        }
        Ok((len, IMAGE_AT.saturating_add(len)))
    }
}
