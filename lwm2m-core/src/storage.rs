//! Power-fail-safe configuration storage (spec decision 11).
//!
//! At boot the port calls [`ConfigStore::load`] and hands the result (or
//! [`Config::default`] on first boot) to the device; on the save command it calls
//! [`ConfigStore::save`] with the RAM configuration. Two implementations ship here:
//! [`NoStore`] (RAM only: nothing survives a restart) and [`FlashStore`], an A/B store
//! over any [`embedded_storage::nor_flash::NorFlash`].
//!
//! # Flash layout of [`FlashStore`]
//!
//! The region is split into two equal slots, A (first half) and B (second half), each a
//! whole number of erase sectors. A slot holds
//!
//! ```text
//! offset 0            magic u32 | sequence u32 | length u32 | crc u32   (little-endian)
//!                     0xFF padding up to WRITE_SIZE
//! offset BODY         the image (Config::encode), `length` bytes, 0xFF-padded to WRITE_SIZE
//! ```
//!
//! where `BODY` is the 16-byte header rounded up to `F::WRITE_SIZE`, so the header is its
//! own write unit. `crc` is **CRC-32/ISCSI** (Castagnoli, `crc::CRC_32_ISCSI`) over
//! `sequence (LE) | length (LE) | image`. `sequence` grows by one (wrapping) on every save
//! and is compared with serial-number arithmetic (RFC 1982), so wrapping past `u32::MAX`
//! is harmless.
//!
//! A save encodes the configuration (once to learn its length, once more straight into
//! the flash, computing the CRC on the way: no image-sized buffer is ever held), erases
//! the sectors of the slot that does **not** hold the newest valid image, writes the
//! image, and writes the header **last** —
//! sequence, length and CRC first, then the magic word as a write of its own (where
//! `F::WRITE_SIZE` is at most 4): a slot whose magic is erased or torn was never
//! committed, so a save cut short is never mistaken for damage. It then reads the slot
//! back and checks it. A load validates both slots (magic, length
//! within the slot, CRC, then [`Config::decode_from`] read from the flash piece by piece)
//! and returns the valid one
//! with the newest sequence.
//!
//! # Guarantees (and the tests that back them)
//!
//! - **Power-fail safety**: a power cut at any point of a save (including torn writes and
//!   torn erases) leaves the store loading either exactly the old configuration or
//!   exactly the new one: never a mix, never nothing once something was saved. The
//!   previous image is never touched by a save. Backed by
//!   `tests::power_cut_at_every_operation_keeps_old_or_new`,
//!   `tests::power_cut_during_first_save_gives_nothing_or_new` and
//!   `tests::power_cut_across_consecutive_saves_and_sequence_wrap`; the write order
//!   (erase, image, header last, all aligned) by
//!   `tests::a_save_erases_then_writes_the_image_then_the_header_last`.
//! - **Integrity**: every image carries a CRC; a slot whose header, length, CRC or
//!   content is wrong is ignored and the other slot is used. Backed by
//!   `tests::any_corrupt_byte_falls_back_to_the_previous_image` and
//!   `tests::a_slot_that_does_not_decode_is_ignored_and_overwritten`.
//! - **No panic on any flash content**: every length read from flash is checked
//!   (this module denies `clippy::indexing_slicing` and `clippy::arithmetic_side_effects`).
//!   Backed by the property tests `tests::arbitrary_flash_never_panics` and
//!   `tests::arbitrary_headers_never_panic`.
//! - **Honest errors**: a configuration that does not fit is refused with
//!   [`StoreErrorKind::TooLarge`] *before* anything is erased; a flash failure is
//!   reported as [`StoreErrorKind::Flash`]. Backed by `tests::too_large_is_refused_before_erasing`
//!   and `tests::a_maximal_configuration_fits_the_advertised_region`.
//!
//! **Not guaranteed**: wear levelling beyond the A/B alternation (each slot is erased
//! once every second save; size the region or the save frequency for the flash's
//! endurance), protection against another writer of the same region, and detection of
//! deliberate tampering (the CRC detects accidents, not attacks). A store built with a
//! build whose capacities cannot hold an image treats it as invalid. The
//! header itself carries no CRC: damage to the newest slot's magic or length makes it
//! read as never written, and the previous image loads as the newest. On a flash whose
//! write unit is larger than 4 bytes the header is one write, and a cut in its middle
//! reads as a damaged newest image ([`Loaded::Previous`]) rather than a save cut short.
//!
//! # RAM cost
//!
//! A [`FlashStore`] holds the flash driver and a few words: the image is encoded into the
//! flash and decoded from it piece by piece, through a 128-byte stack staging buffer
//! ([`STAGE_LEN`]). [`ConfigStore::load`] returns a [`Config`] by value; a board calls
//! [`ConfigStore::load_into`] (through `Device::boot`) to load in place, and
//! otherwise the first [`ConfigStore::save`] loads internally once to find the newest
//! slot, which costs one `Config` of stack.
//!
//! # Sizing the region
//!
//! [`flash_size_needed`] gives the region length for any configuration of this build;
//! [`region_len_for`] the length for a smaller bound on the image.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::ops::Range;

use crc::{Crc, NoTable, CRC_32_ISCSI};
use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};
use zeroize::Zeroize;

use crate::blob::BlobId;
use crate::config::image::{ImageError, Source, MAX_IMAGE_LEN};
use crate::config::Config;
use crate::wire::ResultCode;

mod ram;
pub use ram::RamFlash;
#[cfg(feature = "packets")]
pub mod replay;

/// Where the configuration survives a restart.
///
/// Implementations must make [`save`](ConfigStore::save) atomic: whatever happens
/// during a save (power cut included), the next [`load`](ConfigStore::load) gives either
/// the configuration saved before or the new one.
pub trait ConfigStore {
    /// The newest valid configuration, or why there is none: [`Loaded::Blank`] when
    /// nothing was ever saved, [`Loaded::Damaged`] when something is stored but no valid
    /// configuration. `Err` only when the storage itself fails.
    fn load(&mut self) -> Result<Loaded, StoreError>;

    /// [`load`](ConfigStore::load) into `config`, in place: what a board calls at boot
    /// to fill the configuration of its engine without building one on the stack
    /// ([`FlashStore`] decodes into it directly). Unless a configuration was found,
    /// `config` is left as the factory default ([`Config::reset`]), on an error too.
    fn load_into(&mut self, config: &mut Config) -> Result<LoadState, StoreError> {
        let loaded = match self.load() {
            Ok(loaded) => loaded,
            Err(err) => {
                config.reset();
                return Err(err);
            }
        };
        Ok(match loaded {
            Loaded::Config(found) => {
                *config = found;
                LoadState::Config
            }
            Loaded::Previous(found) => {
                *config = found;
                LoadState::Previous
            }
            Loaded::Blank => {
                config.reset();
                LoadState::Blank
            }
            Loaded::Damaged => {
                config.reset();
                LoadState::Damaged
            }
        })
    }

    /// Stores `config` so that the next [`load`](ConfigStore::load) returns it.
    ///
    /// On `Err` the previously saved configuration is still loadable (the new one may
    /// or may not be).
    fn save(&mut self, config: &Config) -> Result<(), StoreError>;

    /// Appends `data` to `blob` (a certificate, the JVM code: [`crate::blob`]), kept
    /// beside the configuration, never in it. The default keeps no blobs: every append
    /// answers [`StoreErrorKind::BlobFull`] (`A7`, no room for it).
    fn append_blob(&mut self, _blob: BlobId, _data: &[u8]) -> Result<(), StoreError> {
        Err(StoreError::new(StoreErrorKind::BlobFull))
    }

    /// Empties `blob`. The default keeps no blobs: there is nothing to clear.
    fn clear_blob(&mut self, _blob: BlobId) -> Result<(), StoreError> {
        Ok(())
    }

    /// Where single packets go (feature `packets`: the packet store, the replay record,
    /// the firmware slot; [`crate::packets`]). The default has none: the store's state
    /// is UNAVAILABLE and every packet is refused.
    #[cfg(feature = "packets")]
    fn packets(&mut self) -> Option<&mut dyn crate::packets::PacketStorage> {
        None
    }
}

/// What [`ConfigStore::load`] found.
///
/// Only [`Loaded::Blank`] means "first boot". On [`Loaded::Damaged`] the device had a
/// configuration, which may have changed the factory credentials: booting the factory
/// configuration silently would open the device to `admin`/`admin`. A port must say so
/// loudly — refuse to start until an operator decides, or start and report it (the
/// desktop port refuses unless `--factory-reset` is given; a board can record it in
/// `/3//11` for the client to read).
#[derive(Clone, Debug, PartialEq, Eq)]
// Returned by value once at boot, as `Option<Config>` would be; boxing needs a heap.
#[allow(clippy::large_enum_variant)]
pub enum Loaded {
    /// The newest valid configuration.
    Config(Config),
    /// The newest slot holds a complete image that is damaged (its header was written,
    /// so it is no interrupted save): this is the configuration saved before it. It may
    /// be much older than what the device last ran (the factory configuration the
    /// configurator saves first, for instance), so treat it like [`Loaded::Damaged`]
    /// unless an operator accepts it.
    Previous(Config),
    /// Nothing was ever saved (erased storage): start from the factory configuration.
    Blank,
    /// Something is stored, but no valid configuration: corrupt, truncated, written by
    /// an incompatible release, or crafted ([`Config::validate`]).
    Damaged,
}

/// What [`ConfigStore::load_into`] found: [`Loaded`] without the configuration, which
/// went into the caller's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LoadState {
    /// The newest valid configuration was loaded.
    Config,
    /// The newest image is damaged: the previous one was loaded ([`Loaded::Previous`]).
    Previous,
    /// Nothing was ever saved: the factory default.
    Blank,
    /// Something is stored but no valid configuration: the factory default, which a port
    /// must not start with silently ([`Loaded::Damaged`]).
    Damaged,
}

impl Loaded {
    /// The configuration, if one was found (the newest or, after damage, the previous).
    pub fn config(self) -> Option<Config> {
        match self {
            Loaded::Config(config) | Loaded::Previous(config) => Some(config),
            Loaded::Blank | Loaded::Damaged => None,
        }
    }
}

impl<T: ConfigStore + ?Sized> ConfigStore for &mut T {
    fn load(&mut self) -> Result<Loaded, StoreError> {
        T::load(self)
    }

    fn load_into(&mut self, config: &mut Config) -> Result<LoadState, StoreError> {
        T::load_into(self, config)
    }

    fn save(&mut self, config: &Config) -> Result<(), StoreError> {
        T::save(self, config)
    }

    fn append_blob(&mut self, blob: BlobId, data: &[u8]) -> Result<(), StoreError> {
        T::append_blob(self, blob, data)
    }

    fn clear_blob(&mut self, blob: BlobId) -> Result<(), StoreError> {
        T::clear_blob(self, blob)
    }

    #[cfg(feature = "packets")]
    fn packets(&mut self) -> Option<&mut dyn crate::packets::PacketStorage> {
        T::packets(self)
    }
}

/// A store that keeps nothing: every boot starts from the default configuration and
/// saving succeeds without effect (RAM-only devices, tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoStore;

impl ConfigStore for NoStore {
    fn load(&mut self) -> Result<Loaded, StoreError> {
        Ok(Loaded::Blank)
    }

    fn save(&mut self, _config: &Config) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A store that may be absent: `Some` is that store, `None` none, on which every load
/// and save fails ([`StoreErrorKind::Flash`]). What a board uses whose device is built
/// at compile time ([`crate::Device::unbooted`]) before its flash driver exists: the
/// store is put in place at boot ([`crate::Device::store_mut`]).
impl<S: ConfigStore> ConfigStore for Option<S> {
    fn load(&mut self) -> Result<Loaded, StoreError> {
        self.as_mut()
            .ok_or(StoreError::new(StoreErrorKind::Flash))?
            .load()
    }

    fn load_into(&mut self, config: &mut Config) -> Result<LoadState, StoreError> {
        match self {
            Some(store) => store.load_into(config),
            None => {
                config.reset();
                Err(StoreError::new(StoreErrorKind::Flash))
            }
        }
    }

    fn save(&mut self, config: &Config) -> Result<(), StoreError> {
        self.as_mut()
            .ok_or(StoreError::new(StoreErrorKind::Flash))?
            .save(config)
    }

    fn append_blob(&mut self, blob: BlobId, data: &[u8]) -> Result<(), StoreError> {
        self.as_mut()
            .ok_or(StoreError::new(StoreErrorKind::Flash))?
            .append_blob(blob, data)
    }

    fn clear_blob(&mut self, blob: BlobId) -> Result<(), StoreError> {
        self.as_mut()
            .ok_or(StoreError::new(StoreErrorKind::Flash))?
            .clear_blob(blob)
    }

    #[cfg(feature = "packets")]
    fn packets(&mut self) -> Option<&mut dyn crate::packets::PacketStorage> {
        self.as_mut()?.packets()
    }
}

/// Why the configuration could not be loaded or saved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StoreError {
    kind: StoreErrorKind,
}

/// The kind of a [`StoreError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The flash driver reported an error, or what was written did not read back.
    Flash,
    /// The encoded configuration does not fit the buffer or a slot.
    TooLarge,
    /// The configuration could not be encoded.
    Image,
    /// The flash region given to [`FlashStore::new`] is misaligned, out of the flash,
    /// too small for two slots, or the flash geometry is unsupported.
    Region,
    /// The blob's region has no room for the data, or the store keeps no such blob
    /// ([`crate::blob`]).
    BlobFull,
}

impl StoreError {
    /// An error of the given kind.
    pub const fn new(kind: StoreErrorKind) -> StoreError {
        StoreError { kind }
    }

    /// What went wrong.
    pub const fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// The result code a device answers for this error.
    pub const fn result_code(&self) -> ResultCode {
        match self.kind {
            StoreErrorKind::TooLarge | StoreErrorKind::BlobFull => ResultCode::NvmFull,
            _ => ResultCode::NvmError,
        }
    }
}

impl core::fmt::Display for StoreError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self.kind {
            StoreErrorKind::Flash => "flash access failed",
            StoreErrorKind::TooLarge => "configuration image too large for the store",
            StoreErrorKind::Image => "configuration could not be encoded",
            StoreErrorKind::Region => "flash region unusable for a configuration store",
            StoreErrorKind::BlobFull => "no room for the blob in the store",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for StoreError {}

impl From<StoreError> for ResultCode {
    fn from(err: StoreError) -> ResultCode {
        err.result_code()
    }
}

impl From<StoreErrorKind> for StoreError {
    fn from(kind: StoreErrorKind) -> StoreError {
        StoreError::new(kind)
    }
}

/// Length of a slot header: magic, sequence, length, CRC (4 × u32, little-endian).
pub const HEADER_LEN: usize = 16;
/// First word of every slot header (`"LWS1"` in flash byte order), written last.
pub const MAGIC: u32 = u32::from_le_bytes(*b"LWS1");
/// Length of the magic word.
const MAGIC_LEN: usize = 4;

/// Whether the magic word is a write unit of its own on `F` (it is then written last).
const fn magic_is_own_unit<F: NorFlash>() -> bool {
    matches!(F::WRITE_SIZE, 1 | 2 | 4)
}
/// Size of the stack buffer flash reads and writes go through; `F::READ_SIZE` and
/// `F::WRITE_SIZE` must not exceed it.
pub const STAGE_LEN: usize = 128;

/// The CRC of every image (and of a waiting request, `device.rs`): CRC-32/ISCSI
/// (Castagnoli), computed bit by bit: a save or a load takes a few hundred microseconds
/// more, and the firmware holds no 1 KiB table.
pub(crate) const CRC: Crc<u32, NoTable> = Crc::<u32, NoTable>::new(&CRC_32_ISCSI);

/// `n` rounded up to a multiple of `align` (`align` 0 counts as 1), `None` on overflow.
pub(crate) const fn round_up(n: usize, align: usize) -> Option<usize> {
    let align = if align == 0 { 1 } else { align };
    let Some(m) = n.checked_add(align.saturating_sub(1)) else {
        return None;
    };
    match m.checked_div(align) {
        Some(units) => units.checked_mul(align),
        None => None,
    }
}

/// Offset of the image in a slot: the header rounded up to a write unit.
const fn body_offset<F: NorFlash>() -> usize {
    match round_up(HEADER_LEN, F::WRITE_SIZE) {
        Some(n) => n,
        None => usize::MAX,
    }
}

/// Length of one slot able to hold an image of `image_len` bytes: header and image
/// rounded up to whole erase sectors (`u32::MAX` if that overflows).
pub const fn slot_len_for<F: NorFlash>(image_len: usize) -> u32 {
    let Some(used) = body_offset::<F>().checked_add(image_len) else {
        return u32::MAX;
    };
    match round_up(used, F::ERASE_SIZE) {
        Some(len) if len <= u32::MAX as usize => len as u32,
        _ => u32::MAX,
    }
}

/// Length of a region (two slots) holding images of up to `image_len` bytes.
pub const fn region_len_for<F: NorFlash>(image_len: usize) -> u32 {
    slot_len_for::<F>(image_len).saturating_mul(2)
}

/// Length of the flash region a [`FlashStore`] over `F` needs to save any configuration
/// of this build: two slots of [`slot_len_for`]`(`[`MAX_IMAGE_LEN`]`)`, i.e. 24 KiB with
/// 4 KiB sectors. The region must also start on a sector boundary.
pub const fn flash_size_needed<F: NorFlash>() -> u32 {
    region_len_for::<F>(MAX_IMAGE_LEN)
}

/// One of the two slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    A,
    B,
}

impl Slot {
    const fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }

    const fn index(self) -> u8 {
        match self {
            Slot::A => 0,
            Slot::B => 1,
        }
    }
}

/// A slot header as read from flash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Header {
    magic: u32,
    sequence: u32,
    length: u32,
    crc: u32,
}

impl Header {
    fn to_bytes(self) -> [u8; HEADER_LEN] {
        let [m0, m1, m2, m3] = self.magic.to_le_bytes();
        let [s0, s1, s2, s3] = self.sequence.to_le_bytes();
        let [l0, l1, l2, l3] = self.length.to_le_bytes();
        let [c0, c1, c2, c3] = self.crc.to_le_bytes();
        [
            m0, m1, m2, m3, s0, s1, s2, s3, l0, l1, l2, l3, c0, c1, c2, c3,
        ]
    }

    fn from_bytes(bytes: &[u8; HEADER_LEN]) -> Header {
        let [m0, m1, m2, m3, s0, s1, s2, s3, l0, l1, l2, l3, c0, c1, c2, c3] = *bytes;
        Header {
            magic: u32::from_le_bytes([m0, m1, m2, m3]),
            sequence: u32::from_le_bytes([s0, s1, s2, s3]),
            length: u32::from_le_bytes([l0, l1, l2, l3]),
            crc: u32::from_le_bytes([c0, c1, c2, c3]),
        }
    }
}

/// Whether sequence `a` is newer than `b` in serial-number arithmetic (RFC 1982).
const fn newer(a: u32, b: u32) -> bool {
    let diff = a.wrapping_sub(b);
    diff != 0 && diff < 0x8000_0000
}

/// The slot holding the newest valid image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Newest {
    slot: Slot,
    sequence: u32,
}

/// What the store knows of the flash content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Known {
    /// Nothing yet: the next save scans the flash first.
    Unknown,
    /// Neither slot holds a valid image; the newest plausible header, if any (a damaged
    /// image: the next save must be newer than it, or it would read as the newest).
    Empty(Option<Newest>),
    /// This slot holds the newest valid image.
    Newest(Newest),
}

/// A stack buffer aligned for drivers that want word-aligned sources.
#[repr(C, align(8))]
pub(crate) struct Stage(pub(crate) [u8; STAGE_LEN]);

impl Drop for Stage {
    /// Image bytes (password hashes, keys) never stay on the stack, whatever the exit.
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

pub(crate) fn flash_error<E: core::fmt::Debug>(_err: E) -> StoreError {
    StoreError::new(StoreErrorKind::Flash)
}

pub(crate) fn region_error() -> StoreError {
    StoreError::new(StoreErrorKind::Region)
}

/// Reads `len` bytes at `offset` whatever the alignment (through the staging buffer,
/// with reads widened to `F::READ_SIZE`), passing them in order to `sink`.
pub(crate) fn read_range<F: ReadNorFlash>(
    flash: &mut F,
    offset: u32,
    len: usize,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let align = F::READ_SIZE;
    let chunk = STAGE_LEN
        .checked_sub(STAGE_LEN.checked_rem(align).ok_or_else(region_error)?)
        .filter(|&c| c > 0)
        .ok_or_else(region_error)?;
    let start = usize::try_from(offset).map_err(|_| region_error())?;
    let end = start.checked_add(len).ok_or_else(region_error)?;
    let mut pos = start
        .checked_sub(start.checked_rem(align).ok_or_else(region_error)?)
        .ok_or_else(region_error)?;
    let mut stage = Stage([0; STAGE_LEN]);
    while pos < end {
        let remaining = end.checked_sub(pos).ok_or_else(region_error)?;
        let n = round_up(remaining, align)
            .ok_or_else(region_error)?
            .min(chunk);
        let buf = stage.0.get_mut(..n).ok_or_else(region_error)?;
        let at = u32::try_from(pos).map_err(|_| region_error())?;
        flash.read(at, buf).map_err(flash_error)?;
        let next = pos.checked_add(n).ok_or_else(region_error)?;
        let lo = start.saturating_sub(pos);
        let hi = end.min(next).checked_sub(pos).ok_or_else(region_error)?;
        sink(buf.get(lo..hi).ok_or_else(region_error)?)?;
        pos = next;
    }
    Ok(())
}

/// Feeds the `len` bytes at `offset` to `digest` ([`read_range`] into a CRC).
pub(crate) fn digest_range<F: ReadNorFlash>(
    flash: &mut F,
    offset: u32,
    len: usize,
    digest: &mut crc::Digest<'static, u32, NoTable>,
) -> Result<(), StoreError> {
    read_range(flash, offset, len, &mut |piece| {
        digest.update(piece);
        Ok(())
    })
}

/// Whether the stores can work on `F`: reads and writes of at most [`STAGE_LEN`] bytes
/// that divide the erase sector.
pub(crate) const fn geometry_ok<F: NorFlash>() -> bool {
    let erase = F::ERASE_SIZE;
    erase > 0
        && F::WRITE_SIZE > 0
        && F::READ_SIZE > 0
        && F::WRITE_SIZE <= STAGE_LEN
        && F::READ_SIZE <= STAGE_LEN
        && matches!(erase.checked_rem(F::WRITE_SIZE), Some(0))
        && matches!(erase.checked_rem(F::READ_SIZE), Some(0))
}

/// Fills `out` with the bytes at `offset` ([`read_range`] into a buffer).
pub(crate) fn read_into<F: ReadNorFlash>(
    flash: &mut F,
    offset: u32,
    out: &mut [u8],
) -> Result<(), StoreError> {
    let mut filled = 0usize;
    read_range(flash, offset, out.len(), &mut |piece| {
        let end = filled.checked_add(piece.len()).ok_or_else(region_error)?;
        out.get_mut(filled..end)
            .ok_or_else(region_error)?
            .copy_from_slice(piece);
        filled = end;
        Ok(())
    })
}

/// Writes `data` at `offset` (a multiple of `F::WRITE_SIZE`) through the staging
/// buffer, padding the last chunk with 0xFF up to a whole write unit.
pub(crate) fn write_range<F: NorFlash>(
    flash: &mut F,
    offset: u32,
    data: &[u8],
) -> Result<(), StoreError> {
    let mut out = FlashSink::new(offset);
    out.put(flash, data)?;
    out.finish(flash)
}

/// The CRC of a slot begun: its sequence number and length, the image still to come.
fn image_digest(sequence: u32, length: u32) -> crc::Digest<'static, u32, NoTable> {
    let [s0, s1, s2, s3] = sequence.to_le_bytes();
    let [l0, l1, l2, l3] = length.to_le_bytes();
    let mut digest = CRC.digest();
    digest.update(&[s0, s1, s2, s3, l0, l1, l2, l3]);
    digest
}

/// The CRC of an image with its sequence number and length.
#[cfg(test)]
fn image_crc(sequence: u32, length: u32, image: &[u8]) -> u32 {
    let mut digest = image_digest(sequence, length);
    digest.update(image);
    digest.finalize()
}

/// A power-fail-safe A/B configuration store over a NOR flash region.
///
/// It holds no image in RAM. See the [module documentation](self) for the layout, the
/// guarantees and the RAM cost.
///
/// ```
/// # use embedded_storage::nor_flash::{ErrorType, NorFlash, NorFlashErrorKind, ReadNorFlash};
/// # struct Ram(Vec<u8>);
/// # impl ErrorType for Ram { type Error = NorFlashErrorKind; }
/// # impl ReadNorFlash for Ram {
/// #     const READ_SIZE: usize = 1;
/// #     fn read(&mut self, at: u32, buf: &mut [u8]) -> Result<(), Self::Error> {
/// #         let at = at as usize;
/// #         buf.copy_from_slice(&self.0[at..at + buf.len()]);
/// #         Ok(())
/// #     }
/// #     fn capacity(&self) -> usize { self.0.len() }
/// # }
/// # impl NorFlash for Ram {
/// #     const WRITE_SIZE: usize = 4;
/// #     const ERASE_SIZE: usize = 4096;
/// #     fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
/// #         self.0[from as usize..to as usize].fill(0xFF);
/// #         Ok(())
/// #     }
/// #     fn write(&mut self, at: u32, data: &[u8]) -> Result<(), Self::Error> {
/// #         let at = at as usize;
/// #         self.0[at..at + data.len()].iter_mut().zip(data).for_each(|(o, d)| *o &= d);
/// #         Ok(())
/// #     }
/// # }
/// use lwm2m_core::storage::{flash_size_needed, ConfigStore, FlashStore, Loaded};
/// use lwm2m_core::Config;
///
/// let region = 0..flash_size_needed::<Ram>();
/// # let flash = Ram(vec![0xFF; region.end as usize]);
/// let mut store: FlashStore<Ram> = FlashStore::new(flash, region.clone())?;
/// let config = store.load()?.config().unwrap_or_default(); // first boot: the default
/// let config = Config { inactivity_secs: 120, ..config };
/// store.save(&config)?;
///
/// let flash = store.into_inner(); // reboot
/// let mut store: FlashStore<Ram> = FlashStore::new(flash, region)?;
/// assert_eq!(store.load()?, Loaded::Config(config));
/// # Ok::<(), lwm2m_core::storage::StoreError>(())
/// ```
pub struct FlashStore<F> {
    flash: F,
    /// Start of slot A.
    start: u32,
    /// Length of each slot (whole sectors).
    slot_len: u32,
    known: Known,
}

impl<F: NorFlash> FlashStore<F> {
    /// A store over `region` of `flash`, split into two equal slots.
    ///
    /// The region must start and end on erase-sector boundaries, lie within the flash
    /// and hold an even number (at least two) of sectors; `F::READ_SIZE` and
    /// `F::WRITE_SIZE` must divide `F::ERASE_SIZE` and be at most [`STAGE_LEN`].
    /// Otherwise: [`StoreErrorKind::Region`]. Nothing is read or written here.
    pub fn new(flash: F, region: Range<u32>) -> Result<Self, StoreError> {
        if !geometry_ok::<F>() || body_offset::<F>() >= F::ERASE_SIZE {
            return Err(region_error());
        }
        let erase = u32::try_from(F::ERASE_SIZE).map_err(|_| region_error())?;
        let len = region
            .end
            .checked_sub(region.start)
            .ok_or_else(region_error)?;
        let aligned =
            region.start.checked_rem(erase) == Some(0) && region.end.checked_rem(erase) == Some(0);
        let within = usize::try_from(region.end).is_ok_and(|end| end <= flash.capacity());
        let sectors = len.checked_div(erase).ok_or_else(region_error)?;
        if !aligned || !within || sectors < 2 || sectors.checked_rem(2) != Some(0) {
            return Err(region_error());
        }
        Ok(FlashStore {
            flash,
            start: region.start,
            slot_len: len.checked_div(2).ok_or_else(region_error)?,
            known: Known::Unknown,
        })
    }

    /// Gives the flash driver back.
    pub fn into_inner(self) -> F {
        self.flash
    }

    /// Length of each of the two slots, in bytes.
    pub fn slot_len(&self) -> u32 {
        self.slot_len
    }

    /// The largest image this store can save: what a slot holds after its header.
    pub fn max_image_len(&self) -> usize {
        usize::try_from(self.slot_len)
            .ok()
            .and_then(|slot| slot.checked_sub(body_offset::<F>()))
            .unwrap_or(0)
    }

    /// Where the image of `slot` starts.
    fn body_start(&self, slot: Slot) -> Result<u32, StoreError> {
        self.slot_start(slot)?
            .checked_add(u32::try_from(body_offset::<F>()).map_err(|_| region_error())?)
            .ok_or_else(region_error)
    }

    fn slot_start(&self, slot: Slot) -> Result<u32, StoreError> {
        match slot {
            Slot::A => Ok(self.start),
            Slot::B => self
                .start
                .checked_add(self.slot_len)
                .ok_or_else(region_error),
        }
    }

    /// Reads the raw header bytes of `slot` into `bytes`.
    fn header_bytes(&mut self, slot: Slot, bytes: &mut [u8; HEADER_LEN]) -> Result<(), StoreError> {
        let start = self.slot_start(slot)?;
        read_into(&mut self.flash, start, bytes)
    }

    /// The header `bytes` of a slot when it is plausible: right magic, length within
    /// the slot. The CRC is not checked here.
    fn plausible(&self, bytes: &[u8; HEADER_LEN]) -> Option<Header> {
        let header = Header::from_bytes(bytes);
        let fits = usize::try_from(header.length).is_ok_and(|len| len <= self.max_image_len());
        (header.magic == MAGIC && fits).then_some(header)
    }

    /// The header of `slot` when it is plausible ([`FlashStore::plausible`]).
    #[cfg(test)]
    fn read_header(&mut self, slot: Slot) -> Result<Option<Header>, StoreError> {
        let mut bytes = [0; HEADER_LEN];
        self.header_bytes(slot, &mut bytes)?;
        Ok(self.plausible(&bytes))
    }

    /// Finds the newest valid slot by loading it (a save without a load at boot). Out of
    /// line: the loaded configuration's room is taken only when this runs, not by every
    /// save.
    #[inline(never)]
    fn find_newest(&mut self) -> Result<(), StoreError> {
        let mut config = Config::default();
        self.load_slots(&mut config).map(drop)
    }

    /// Checks the CRC of the image of `slot`, then decodes it into `config`, both read
    /// from the flash piece by piece; whether it was valid (`config` is left as it is
    /// if not: the caller resets it).
    fn read_image_into(
        &mut self,
        slot: Slot,
        header: &Header,
        config: &mut Config,
    ) -> Result<bool, StoreError> {
        if !self.crc_matches(slot, header)? {
            debug!("config slot {}: bad CRC", slot.index());
            return Ok(false);
        }
        let len = usize::try_from(header.length).map_err(|_| region_error())?;
        let at = self.body_start(slot)?;
        let digest = image_digest(header.sequence, header.length);
        let mut source = FlashSource {
            flash: &mut self.flash,
            at,
            left: len,
            failed: None,
            digest,
        };
        let decoded = config.decode_in_place(&mut source);
        if let Some(err) = source.failed {
            return Err(err);
        }
        if decoded.is_err() {
            warn!("config slot {}: CRC ok but image undecodable", slot.index());
            return Ok(false);
        }
        // The bytes decoded are the bytes checked: a flash that reads differently the
        // second time is caught here, not loaded.
        if source.left != 0 || source.digest.finalize() != header.crc {
            warn!(
                "config slot {}: the image changed while it was read",
                slot.index()
            );
            return Ok(false);
        }
        Ok(true)
    }

    /// Whether the image of `slot` matches the CRC of `header`.
    fn crc_matches(&mut self, slot: Slot, header: &Header) -> Result<bool, StoreError> {
        let len = usize::try_from(header.length).map_err(|_| region_error())?;
        let at = self.body_start(slot)?;
        let mut digest = image_digest(header.sequence, header.length);
        digest_range(&mut self.flash, at, len, &mut digest)?;
        Ok(digest.finalize() == header.crc)
    }

    /// Whether `slot` holds a header and an image matching `expected`, whose bytes are
    /// `expected_bytes` (read-back check).
    fn verify(
        &mut self,
        slot: Slot,
        expected: &Header,
        expected_bytes: &[u8; HEADER_LEN],
    ) -> Result<bool, StoreError> {
        let mut bytes = [0; HEADER_LEN];
        self.header_bytes(slot, &mut bytes)?;
        if bytes != *expected_bytes {
            return Ok(false);
        }
        self.crc_matches(slot, expected)
    }

    /// Writes `config`'s image (`len` bytes) into `slot` with `sequence`: erase, image
    /// (encoded straight into the flash through the staging buffer), header last, read
    /// back.
    fn commit(
        &mut self,
        slot: Slot,
        sequence: u32,
        config: &Config,
        len: usize,
    ) -> Result<(), StoreError> {
        let length = u32::try_from(len).map_err(|_| StoreError::new(StoreErrorKind::TooLarge))?;
        let start = self.slot_start(slot)?;
        // An image too large for a slot is refused here, before anything is erased: the
        // slot is whole sectors, so this is `len <= self.max_image_len()`.
        let used = body_offset::<F>()
            .checked_add(len)
            .and_then(|n| round_up(n, F::ERASE_SIZE))
            .and_then(|n| u32::try_from(n).ok())
            .filter(|&n| n <= self.slot_len)
            .ok_or_else(|| StoreError::new(StoreErrorKind::TooLarge))?;
        let end = start.checked_add(used).ok_or_else(region_error)?;
        let body_at = self.body_start(slot)?;

        self.flash.erase(start, end).map_err(flash_error)?;
        // The image is written and its CRC computed in one pass; the header, which
        // carries the CRC, comes after it.
        let mut digest = image_digest(sequence, length);
        let mut out = FlashSink::new(body_at);
        let mut failed = None;
        let flash = &mut self.flash;
        let written = config.encode_with(|piece| {
            digest.update(piece);
            out.put(flash, piece).map_err(|err| {
                failed = Some(err);
                ImageError::BufferTooSmall
            })
        });
        if let Some(err) = failed {
            return Err(err);
        }
        written.map_err(|_| StoreError::new(StoreErrorKind::Image))?;
        out.finish(&mut self.flash)?;
        let header = Header {
            magic: MAGIC,
            sequence,
            length,
            crc: digest.finalize(),
        };
        let bytes = header.to_bytes();
        if magic_is_own_unit::<F>() {
            // The magic last, as its own write: until it is complete the slot reads as
            // never written (a save cut short, quietly ignored), never as a damaged image.
            let (magic, rest) = bytes.split_at(MAGIC_LEN);
            let rest_at = start
                .checked_add(MAGIC_LEN as u32)
                .ok_or_else(region_error)?;
            write_range(&mut self.flash, rest_at, rest)?;
            write_range(&mut self.flash, start, magic)?;
        } else {
            write_range(&mut self.flash, start, &bytes)?;
        }
        if !self.verify(slot, &header, &bytes)? {
            warn!("config slot {}: read-back check failed", slot.index());
            return Err(StoreError::new(StoreErrorKind::Flash));
        }
        debug!(
            "config saved in slot {}, sequence {}",
            slot.index(),
            sequence
        );
        self.known = Known::Newest(Newest { slot, sequence });
        Ok(())
    }
}

/// The image read from the flash piece by piece, through a staging buffer.
struct FlashSource<'f, F> {
    flash: &'f mut F,
    /// Where the next byte is.
    at: u32,
    /// Bytes of the image not read yet.
    left: usize,
    /// A flash error (the decoder only knows image errors).
    failed: Option<StoreError>,
    /// The CRC of every byte handed to the decoder.
    digest: crc::Digest<'static, u32, NoTable>,
}

impl<F: ReadNorFlash> Source for &mut FlashSource<'_, F> {
    fn read(&mut self, out: &mut [u8]) -> Result<(), ImageError> {
        if out.len() > self.left {
            return Err(ImageError::Corrupt);
        }
        if let Err(err) = read_into(self.flash, self.at, out) {
            self.failed = Some(err);
            return Err(ImageError::Corrupt);
        }
        self.digest.update(out);
        let n = u32::try_from(out.len()).map_err(|_| ImageError::Corrupt)?;
        self.at = self.at.checked_add(n).ok_or(ImageError::Corrupt)?;
        self.left = self.left.saturating_sub(out.len());
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.left == 0
    }
}

/// Bytes written to the flash piece by piece: whole staging buffers as they fill, the
/// last one padded with 0xFF to a write unit.
struct FlashSink {
    stage: Stage,
    /// Bytes in the stage.
    fill: usize,
    /// Where the stage goes.
    at: u32,
}

impl FlashSink {
    fn new(at: u32) -> Self {
        FlashSink {
            stage: Stage([0; STAGE_LEN]),
            fill: 0,
            at,
        }
    }

    fn put<F: NorFlash>(&mut self, flash: &mut F, mut piece: &[u8]) -> Result<(), StoreError> {
        // Whole write units the stage holds.
        let chunk = STAGE_LEN.saturating_sub(STAGE_LEN.checked_rem(F::WRITE_SIZE).unwrap_or(0));
        while !piece.is_empty() {
            let room = chunk.checked_sub(self.fill).ok_or_else(region_error)?;
            let n = room.min(piece.len());
            let (head, rest) = piece.split_at_checked(n).ok_or_else(region_error)?;
            let end = self.fill.checked_add(n).ok_or_else(region_error)?;
            self.stage
                .0
                .get_mut(self.fill..end)
                .ok_or_else(region_error)?
                .copy_from_slice(head);
            self.fill = end;
            piece = rest;
            if self.fill == chunk {
                self.flush(flash)?;
            }
        }
        Ok(())
    }

    /// Writes the stage, padded to a write unit.
    fn flush<F: NorFlash>(&mut self, flash: &mut F) -> Result<(), StoreError> {
        let n = round_up(self.fill, F::WRITE_SIZE).ok_or_else(region_error)?;
        let buf = self.stage.0.get_mut(..n).ok_or_else(region_error)?;
        buf.get_mut(self.fill..)
            .ok_or_else(region_error)?
            .fill(0xFF);
        flash.write(self.at, buf).map_err(flash_error)?;
        self.at = self
            .at
            .checked_add(u32::try_from(n).map_err(|_| region_error())?)
            .ok_or_else(region_error)?;
        self.fill = 0;
        Ok(())
    }

    /// Writes what is left in the stage.
    fn finish<F: NorFlash>(&mut self, flash: &mut F) -> Result<(), StoreError> {
        if self.fill > 0 {
            self.flush(flash)?;
        }
        Ok(())
    }
}

impl<F: NorFlash> ConfigStore for FlashStore<F> {
    // Out of line: its configuration-sized frame is paid only when it runs (at boot),
    // not by every request that could reach a save.
    #[inline(never)]
    fn load(&mut self) -> Result<Loaded, StoreError> {
        let mut config = Config::default();
        Ok(match self.load_into(&mut config)? {
            LoadState::Config => Loaded::Config(config),
            LoadState::Previous => Loaded::Previous(config),
            LoadState::Blank => Loaded::Blank,
            LoadState::Damaged => Loaded::Damaged,
        })
    }

    fn load_into(&mut self, config: &mut Config) -> Result<LoadState, StoreError> {
        let loaded = self.load_slots(config);
        if !matches!(loaded, Ok(LoadState::Config | LoadState::Previous)) {
            // Nothing loaded, or a flash error: the caller's configuration is the
            // factory one, as documented.
            config.reset();
        }
        loaded
    }

    fn save(&mut self, config: &Config) -> Result<(), StoreError> {
        if self.known == Known::Unknown {
            self.find_newest()?;
        }
        let (slot, sequence) = match self.known {
            Known::Newest(newest) | Known::Empty(Some(newest)) => {
                (newest.slot.other(), newest.sequence.wrapping_add(1))
            }
            Known::Empty(None) | Known::Unknown => (Slot::A, 1),
        };
        let len = config
            .encoded_len()
            .map_err(|_| StoreError::new(StoreErrorKind::Image))?;
        self.commit(slot, sequence, config, len)
    }
}

impl<F: NorFlash> FlashStore<F> {
    /// [`ConfigStore::load_into`] without the reset when nothing is loaded.
    fn load_slots(&mut self, config: &mut Config) -> Result<LoadState, StoreError> {
        let mut raw = [[0; HEADER_LEN]; 2];
        let [raw_a, raw_b] = &mut raw;
        self.header_bytes(Slot::A, raw_a)?;
        self.header_bytes(Slot::B, raw_b)?;
        // The newest first.
        let first = match (self.plausible(&raw[0]), self.plausible(&raw[1])) {
            (Some(ha), Some(hb)) if newer(hb.sequence, ha.sequence) => Slot::B,
            _ => Slot::A,
        };
        let mut newest: Option<Newest> = None;
        for slot in [first, first.other()] {
            let bytes = match slot {
                Slot::A => &raw[0],
                Slot::B => &raw[1],
            };
            let Some(header) = self.plausible(bytes) else {
                continue;
            };
            if self.read_image_into(slot, &header, config)? {
                debug!(
                    "config loaded from slot {}, sequence {}",
                    slot.index(),
                    header.sequence
                );
                self.known = Known::Newest(Newest {
                    slot,
                    sequence: header.sequence,
                });
                if newest.is_some() {
                    warn!("the newest configuration is damaged: the previous one is loaded");
                    return Ok(LoadState::Previous);
                }
                return Ok(LoadState::Config);
            }
            newest.get_or_insert(Newest {
                slot,
                sequence: header.sequence,
            });
        }
        self.known = Known::Empty(newest);
        if raw.iter().all(never_committed::<F>) {
            Ok(LoadState::Blank)
        } else {
            warn!("no valid configuration in a store that holds one");
            Ok(LoadState::Damaged)
        }
    }
}

/// Whether a slot with these header bytes was never committed: a save writes the header
/// last, and, where the magic word is a write unit of its own, the magic last of all, so
/// a save cut short leaves it erased or partly programmed (NOR programming only clears
/// bits: a torn magic keeps every 1-bit of `MAGIC`). Otherwise the whole header must
/// still be erased.
fn never_committed<F: NorFlash>(bytes: &[u8; HEADER_LEN]) -> bool {
    if magic_is_own_unit::<F>() {
        let magic = Header::from_bytes(bytes).magic;
        magic != MAGIC && magic & MAGIC == MAGIC
    } else {
        bytes.iter().all(|&b| b == 0xFF)
    }
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
pub(crate) mod tests {
    use super::*;
    use crate::config::{
        Profile, Variable, MAX_PROFILES, MAX_VARIABLES, META_LEN, UNIT_LEN, VALUE_LEN,
    };
    use embedded_storage::nor_flash::{
        check_erase, check_read, check_write, ErrorType, NorFlashError, NorFlashErrorKind,
    };
    use proptest::prelude::*;

    /// Errors of the mock flashes.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum MockError {
        /// Misaligned or out-of-bounds access.
        Access(NorFlashErrorKind),
        /// A write unit written twice without an erase in between.
        NotErased,
        /// The power was cut during this operation.
        PowerCut,
        /// The power is off: nothing works until the reboot.
        PoweredOff,
    }

    impl NorFlashError for MockError {
        fn kind(&self) -> NorFlashErrorKind {
            match self {
                MockError::Access(kind) => *kind,
                _ => NorFlashErrorKind::Other,
            }
        }
    }

    /// RAM NOR flash: erase sets whole sectors to 0xFF, a write may only clear bits
    /// and must be aligned, and each write unit may be written once per erase (as on
    /// flashes with ECC).
    #[derive(Clone, Debug)]
    pub(crate) struct MemFlash<
        const SIZE: usize,
        const ERASE: usize,
        const WRITE: usize,
        const READ: usize = 1,
    > {
        data: Vec<u8>,
        written: Vec<bool>,
    }

    impl<const SIZE: usize, const ERASE: usize, const WRITE: usize, const READ: usize>
        MemFlash<SIZE, ERASE, WRITE, READ>
    {
        pub(crate) fn new() -> Self {
            MemFlash {
                data: vec![0xFF; SIZE],
                written: vec![false; SIZE / WRITE],
            }
        }
    }

    impl<const SIZE: usize, const ERASE: usize, const WRITE: usize, const READ: usize> ErrorType
        for MemFlash<SIZE, ERASE, WRITE, READ>
    {
        type Error = MockError;
    }

    impl<const SIZE: usize, const ERASE: usize, const WRITE: usize, const READ: usize> ReadNorFlash
        for MemFlash<SIZE, ERASE, WRITE, READ>
    {
        const READ_SIZE: usize = READ;

        fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), MockError> {
            check_read(self, offset, bytes.len()).map_err(MockError::Access)?;
            let at = offset as usize;
            bytes.copy_from_slice(&self.data[at..at + bytes.len()]);
            Ok(())
        }

        fn capacity(&self) -> usize {
            SIZE
        }
    }

    impl<const SIZE: usize, const ERASE: usize, const WRITE: usize, const READ: usize> NorFlash
        for MemFlash<SIZE, ERASE, WRITE, READ>
    {
        const WRITE_SIZE: usize = WRITE;
        const ERASE_SIZE: usize = ERASE;

        fn erase(&mut self, from: u32, to: u32) -> Result<(), MockError> {
            check_erase(self, from, to).map_err(MockError::Access)?;
            self.tear_erase(from, to, (to - from) as usize);
            Ok(())
        }

        fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), MockError> {
            check_write(self, offset, bytes.len()).map_err(MockError::Access)?;
            let units = offset as usize / WRITE..(offset as usize + bytes.len()) / WRITE;
            if self.written[units.clone()].iter().any(|&w| w) {
                return Err(MockError::NotErased);
            }
            self.tear_write(offset, bytes, bytes.len());
            Ok(())
        }
    }

    /// A flash whose operations can be cut short.
    pub(crate) trait Tearable: NorFlash<Error = MockError> + Clone {
        /// Applies only the first `keep` bytes of an erase.
        fn tear_erase(&mut self, from: u32, to: u32, keep: usize);
        /// Applies only the first `keep` bytes of a write.
        fn tear_write(&mut self, offset: u32, bytes: &[u8], keep: usize);
        /// The raw content.
        fn bytes_mut(&mut self) -> &mut [u8];
    }

    impl<const SIZE: usize, const ERASE: usize, const WRITE: usize, const READ: usize> Tearable
        for MemFlash<SIZE, ERASE, WRITE, READ>
    {
        fn tear_erase(&mut self, from: u32, to: u32, keep: usize) {
            let (from, to) = (from as usize, to as usize);
            self.data[from..from + keep.min(to - from)].fill(0xFF);
            if keep >= to - from {
                self.written[from / WRITE..to / WRITE].fill(false);
            }
        }

        fn tear_write(&mut self, offset: u32, bytes: &[u8], keep: usize) {
            let at = offset as usize;
            for (cell, byte) in self.data[at..].iter_mut().zip(&bytes[..keep]) {
                *cell &= byte;
            }
            let units = at / WRITE..(at + bytes.len()).div_ceil(WRITE);
            self.written[units].fill(true);
        }

        fn bytes_mut(&mut self) -> &mut [u8] {
            &mut self.data
        }
    }

    /// How much of the operation the power cut lets through.
    #[derive(Clone, Copy, Debug)]
    pub(crate) enum Tear {
        Nothing,
        OneByte,
        Half,
        AllButOne,
        /// Complete, but the cut comes before the driver reports success.
        All,
    }

    pub(crate) const TEARS: [Tear; 5] = [
        Tear::Nothing,
        Tear::OneByte,
        Tear::Half,
        Tear::AllButOne,
        Tear::All,
    ];

    impl Tear {
        fn keep(self, len: usize) -> usize {
            match self {
                Tear::Nothing => 0,
                Tear::OneByte => len.min(1),
                Tear::Half => len / 2,
                Tear::AllButOne => len.saturating_sub(1),
                Tear::All => len,
            }
        }
    }

    /// Counts write and erase operations; cuts the power at operation `cut_at` (0-based):
    /// that operation is torn and fails, and every later operation (reads included)
    /// fails until the inner flash is taken out ("reboot").
    pub(crate) struct FaultyFlash<M> {
        inner: M,
        pub(crate) ops: usize,
        cut_at: Option<usize>,
        tear: Tear,
        off: bool,
        /// Every write and erase attempted: `(is_erase, offset, length)`.
        pub(crate) log: Vec<(bool, u32, usize)>,
    }

    impl<M: Tearable> FaultyFlash<M> {
        pub(crate) fn new(inner: M, cut_at: Option<usize>, tear: Tear) -> Self {
            FaultyFlash {
                inner,
                ops: 0,
                cut_at,
                tear,
                off: false,
                log: Vec::new(),
            }
        }

        pub(crate) fn into_inner(self) -> M {
            self.inner
        }

        /// Counts one operation; `true` when the power goes off during it.
        fn cut_now(&mut self) -> Result<bool, MockError> {
            if self.off {
                return Err(MockError::PoweredOff);
            }
            let this = self.ops;
            self.ops += 1;
            if self.cut_at == Some(this) {
                self.off = true;
                return Ok(true);
            }
            Ok(false)
        }
    }

    impl<M: Tearable> ErrorType for FaultyFlash<M> {
        type Error = MockError;
    }

    impl<M: Tearable> ReadNorFlash for FaultyFlash<M> {
        const READ_SIZE: usize = M::READ_SIZE;

        fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), MockError> {
            if self.off {
                return Err(MockError::PoweredOff);
            }
            self.inner.read(offset, bytes)
        }

        fn capacity(&self) -> usize {
            self.inner.capacity()
        }
    }

    impl<M: Tearable> NorFlash for FaultyFlash<M> {
        const WRITE_SIZE: usize = M::WRITE_SIZE;
        const ERASE_SIZE: usize = M::ERASE_SIZE;

        fn erase(&mut self, from: u32, to: u32) -> Result<(), MockError> {
            self.log.push((true, from, (to - from) as usize));
            if self.cut_now()? {
                check_erase(&self.inner, from, to).map_err(MockError::Access)?;
                let keep = self.tear.keep((to - from) as usize);
                self.inner.tear_erase(from, to, keep);
                return Err(MockError::PowerCut);
            }
            self.inner.erase(from, to)
        }

        fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), MockError> {
            self.log.push((false, offset, bytes.len()));
            if self.cut_now()? {
                check_write(&self.inner, offset, bytes.len()).map_err(MockError::Access)?;
                let keep = self.tear.keep(bytes.len());
                self.inner.tear_write(offset, bytes, keep);
                return Err(MockError::PowerCut);
            }
            self.inner.write(offset, bytes)
        }
    }

    /// 8 KiB, 1 KiB sectors, 4-byte writes (nRF-like).
    pub(crate) type Small = MemFlash<{ 8 * 1024 }, 1024, 4>;
    /// 16 KiB, 4 KiB sectors, 32-byte writes, 8-byte reads (STM32H7-like).
    pub(crate) type Wide = MemFlash<{ 16 * 1024 }, 4096, 32, 8>;
    /// 4 KiB, 512-byte sectors, byte writes.
    pub(crate) type Bytes = MemFlash<{ 4 * 1024 }, 512, 1>;

    fn region<M: Tearable>(flash: &M) -> Range<u32> {
        0..flash.capacity() as u32
    }

    /// A configuration that differs from the default in every table; `n` varies it and
    /// `variables` makes it larger (more write operations per save).
    fn config(n: u8, variables: u16) -> Config {
        let mut config = Config {
            version: u32::from(n),
            inactivity_secs: 100 + u16::from(n),
            ..Config::default()
        };
        config.profiles.push(Profile::new(1, b"user1")).unwrap();
        config
            .profiles
            .push(Profile::new(2 + u16::from(n), b"other"))
            .unwrap();
        config.set_setting(1024, 9, b"Demo").unwrap();
        config.set_setting(1024, 2, &[n; 20]).unwrap();
        for id in 0..variables {
            let mut v = Variable::new(id);
            v.meta = heapless::Vec::from_slice(b"temperature:C").unwrap();
            // In the device, UINT8 × 16 (as many as the build's value store holds).
            let len = VALUE_LEN.min(16);
            v.var_type = 0x80 | 0x21;
            v.quantity = len as u16;
            v.value = heapless::Vec::from_slice(&[n ^ id as u8; 16][..len]).unwrap();
            config.variables.push(v).unwrap();
        }
        config
    }

    /// Writes `image` (anything) into `slot` as a save would: erase, image, header with
    /// the right CRC.
    fn commit_raw<F: NorFlash>(store: &mut FlashStore<F>, slot: Slot, sequence: u32, image: &[u8]) {
        let start = store.slot_start(slot).unwrap();
        let length = image.len() as u32;
        store.flash.erase(start, start + store.slot_len).unwrap();
        let body = store.body_start(slot).unwrap();
        write_range(&mut store.flash, body, image).unwrap();
        let header = Header {
            magic: MAGIC,
            sequence,
            length,
            crc: image_crc(sequence, length, image),
        };
        write_range(&mut store.flash, start, &header.to_bytes()).unwrap();
    }

    /// Saves `configs` in order on `flash` (no faults) and gives the flash back.
    fn with_saved<M: Tearable>(flash: M, configs: &[&Config]) -> M {
        let region = region(&flash);
        let mut store: FlashStore<M> = FlashStore::new(flash, region).unwrap();
        for c in configs {
            store.save(c).unwrap();
        }
        store.into_inner()
    }

    /// Boots a fresh store on `flash` and loads.
    fn boot<M: Tearable>(flash: M) -> (FlashStore<M>, Option<Config>) {
        let region = region(&flash);
        let mut store: FlashStore<M> = FlashStore::new(flash, region).unwrap();
        let loaded = store.load().expect("load never fails on a working flash");
        (store, loaded.config())
    }

    /// Number of write and erase operations the save of `new` takes on `flash`.
    fn ops_of_save<M: Tearable>(flash: M, new: &Config) -> usize {
        let region = region(&flash);
        let faulty = FaultyFlash::new(flash, None, Tear::All);
        let mut store: FlashStore<FaultyFlash<M>> = FlashStore::new(faulty, region).unwrap();
        store.save(new).unwrap();
        store.into_inner().ops
    }

    /// Cuts the power at every operation (and with every tear) of the save of `new` on
    /// `flash` (which holds `old`, if any), reboots, and checks the load gives exactly
    /// `old` or exactly `new`. Returns the number of operations of the full save.
    fn sweep<M: Tearable>(flash: &M, old: Option<&Config>, new: &Config) -> usize {
        let ops = ops_of_save(flash.clone(), new);
        let clean_before = {
            let mut store: FlashStore<M> = FlashStore::new(flash.clone(), region(flash)).unwrap();
            matches!(store.load().unwrap(), Loaded::Config(_) | Loaded::Blank)
        };
        assert!(ops >= 3, "erase, image, header");
        for cut in 0..=ops {
            for tear in TEARS {
                for load_first in [false, true] {
                    let region = region(flash);
                    let faulty = FaultyFlash::new(flash.clone(), Some(cut), tear);
                    let mut store: FlashStore<FaultyFlash<M>> =
                        FlashStore::new(faulty, region).unwrap();
                    if load_first {
                        assert_eq!(store.load().unwrap().config().as_ref(), old);
                    }
                    let saved = store.save(new);
                    if cut < ops {
                        let err = saved.expect_err("a cut save reports an error");
                        assert_eq!(err.kind(), StoreErrorKind::Flash);
                    } else {
                        saved.unwrap();
                    }
                    // Reboot.
                    let flash_after = store.into_inner().into_inner();
                    let ctx = format!("cut at {cut}/{ops}, {tear:?}, load first {load_first}");
                    // A cut save is no damage: the previous image loads as the newest
                    // (where the magic word is a write unit of its own, and the flash
                    // held no damage before).
                    if M::WRITE_SIZE <= 4 && clean_before {
                        let probe_region = super::tests::region(&flash_after);
                        let mut probe: FlashStore<M> =
                            FlashStore::new(flash_after.clone(), probe_region).unwrap();
                        let state = probe.load().unwrap();
                        assert!(
                            matches!(state, Loaded::Config(_) | Loaded::Blank),
                            "{ctx}: {state:?}"
                        );
                    }
                    let (mut store, loaded) = boot(flash_after);
                    match &loaded {
                        Some(c) if c == new => {}
                        Some(c) if Some(c) == old => {}
                        None if old.is_none() => {}
                        Some(_) => panic!("{ctx}: loaded a configuration neither old nor new"),
                        None => panic!("{ctx}: lost the old configuration"),
                    }
                    if cut == ops {
                        assert_eq!(loaded.as_ref(), Some(new), "{ctx}");
                    }
                    // The device keeps working after the cut.
                    let next = config(99, 1);
                    store.save(&next).unwrap();
                    let (_, reloaded) = boot(store.into_inner());
                    assert_eq!(reloaded, Some(next), "{ctx}: save after reboot");
                }
            }
        }
        ops
    }

    #[test]
    fn saves_and_loads_back() {
        let (mut store, loaded) = boot(Small::new());
        assert_eq!(loaded, None);
        let c = config(1, 2);
        store.save(&c).unwrap();
        assert_eq!(store.load().unwrap(), Loaded::Config(c.clone()));
        let (_, loaded) = boot(store.into_inner());
        assert_eq!(loaded, Some(c));
    }

    #[test]
    fn power_cut_at_every_operation_keeps_old_or_new() {
        let old = config(1, 4);
        let new = config(2, 24);
        let ops = sweep(&with_saved(Small::new(), &[&old]), Some(&old), &new);
        // 1 erase + image in 128-byte chunks + the header in two writes (magic last).
        let mut buf = [0u8; MAX_IMAGE_LEN];
        let len = new.encode(&mut buf).unwrap();
        assert_eq!(ops, 1 + len.div_ceil(STAGE_LEN) + 2);
        assert!(ops > 10, "{ops}");
        // Old larger than new, other geometries.
        sweep(&with_saved(Wide::new(), &[&new]), Some(&new), &old);
        sweep(
            &with_saved(Bytes::new(), &[&old]),
            Some(&old),
            &config(3, 2),
        );
    }

    #[test]
    fn power_cut_during_first_save_gives_nothing_or_new() {
        sweep(&Small::new(), None, &config(1, 10));
        sweep(&Wide::new(), None, &config(1, 3));
        sweep(&Bytes::new(), None, &config(1, 3));
    }

    #[test]
    fn power_cut_across_consecutive_saves_and_sequence_wrap() {
        // Seed slot A with a sequence just below the wrap.
        let region = 0..8 * 1024;
        let mut store: FlashStore<Small> = FlashStore::new(Small::new(), region).unwrap();
        let first = config(0, 3);
        let len = first.encoded_len().unwrap();
        store.commit(Slot::A, u32::MAX - 2, &first, len).unwrap();
        let mut flash = store.into_inner();
        let mut old = first;
        let mut sequences = Vec::new();
        for n in 1..=6u8 {
            let new = config(n, u16::from(n) * 2);
            sweep(&flash, Some(&old), &new);
            flash = with_saved(flash, &[&new]);
            let (mut store, loaded) = boot(flash);
            assert_eq!(loaded.as_ref(), Some(&new));
            let Known::Newest(newest) = store.known else {
                panic!("nothing known after a load")
            };
            sequences.push((newest.slot, newest.sequence));
            assert!(store.read_header(newest.slot.other()).unwrap().is_some());
            flash = store.into_inner();
            old = new;
        }
        assert_eq!(
            sequences,
            [
                (Slot::B, u32::MAX - 1),
                (Slot::A, u32::MAX),
                (Slot::B, 0),
                (Slot::A, 1),
                (Slot::B, 2),
                (Slot::A, 3),
            ]
        );
    }

    #[test]
    fn a_save_erases_then_writes_the_image_then_the_header_last() {
        let old = config(1, 1);
        let new = config(2, 24);
        let mut buf = [0u8; MAX_IMAGE_LEN];
        let len = new.encode(&mut buf).unwrap();
        let flash = with_saved(Small::new(), &[&old]);
        let faulty = FaultyFlash::new(flash, None, Tear::All);
        let mut store: FlashStore<FaultyFlash<Small>> = FlashStore::new(faulty, 0..8192).unwrap();
        store.save(&new).unwrap();
        // Slot A holds the old image: the new one goes to slot B (4096..8192).
        let log = store.into_inner().log;
        let mut expected = vec![(true, 4096, (16 + len).div_ceil(1024) * 1024)];
        let mut at = 0;
        while at < len {
            let chunk = (len - at).min(STAGE_LEN);
            expected.push((false, 4096 + 16 + at as u32, chunk.div_ceil(4) * 4));
            at += chunk;
        }
        // The header, its magic word last.
        expected.push((false, 4096 + 4, HEADER_LEN - 4));
        expected.push((false, 4096, 4));
        assert_eq!(log, expected);
        // With 32-byte write units the header is its own padded unit and the image
        // starts at 32.
        let faulty = FaultyFlash::new(Wide::new(), None, Tear::All);
        let mut store: FlashStore<FaultyFlash<Wide>> = FlashStore::new(faulty, 0..16384).unwrap();
        store.save(&config(3, 0)).unwrap();
        let log = store.into_inner().log;
        assert_eq!(log[1].1, 32);
        assert_eq!(log.last(), Some(&(false, 0, 32)));
        assert!(log.iter().all(|&(_, at, n)| at % 32 == 0 && n % 32 == 0));
    }

    #[test]
    fn serial_number_comparison() {
        assert!(newer(1, 0));
        assert!(newer(0, u32::MAX));
        assert!(newer(5, u32::MAX - 5));
        assert!(!newer(u32::MAX, 0));
        assert!(!newer(7, 7));
    }

    #[test]
    fn any_corrupt_byte_falls_back_to_the_previous_image() {
        let old = config(1, 2);
        let new = config(2, 3);
        let flash = with_saved(Small::new(), &[&config(0, 0), &old, &new]);
        let (store, loaded) = boot(flash.clone());
        assert_eq!(loaded.as_ref(), Some(&new));
        let Known::Newest(newest) = store.known else {
            panic!("nothing known after a load")
        };
        let start = store.slot_start(newest.slot).unwrap() as usize;
        let mut buf = [0u8; MAX_IMAGE_LEN];
        let len = new.encode(&mut buf).unwrap();
        let body = body_offset::<Small>();
        let bytes = (start..start + HEADER_LEN).chain(start + body..start + body + len);
        let mut checked = 0;
        for at in bytes {
            for flip in [0x01, 0x80, 0xFF] {
                let mut corrupt = flash.clone();
                corrupt.bytes_mut()[at] ^= flip;
                let (_, loaded) = boot(corrupt);
                assert_eq!(loaded.as_ref(), Some(&old), "byte {at} ^ {flip:#x}");
                checked += 1;
            }
        }
        assert_eq!(checked, 3 * (HEADER_LEN + len));
    }

    #[test]
    fn a_damaged_newest_image_is_reported_not_silently_rolled_back() {
        let old = config(1, 2);
        let new = config(2, 3);
        let flash = with_saved(Small::new(), &[&old, &new]);
        let region = region(&flash);
        let mut store: FlashStore<Small> = FlashStore::new(flash.clone(), region.clone()).unwrap();
        assert_eq!(store.load(), Ok(Loaded::Config(new.clone())));
        let Known::Newest(newest) = store.known else {
            panic!("nothing known after a load")
        };
        let start = store.slot_start(newest.slot).unwrap() as usize;
        // A byte of the image of the newest slot: its header is complete, so this is
        // damage, not an interrupted save.
        let mut corrupt = flash.clone();
        corrupt.bytes_mut()[start + body_offset::<Small>() + 5] ^= 0x10;
        let mut store: FlashStore<Small> = FlashStore::new(corrupt, region.clone()).unwrap();
        assert_eq!(store.load(), Ok(Loaded::Previous(old.clone())));
        // An erased header is what a save cut short leaves: the previous image, quietly.
        let mut cut = flash.clone();
        cut.bytes_mut()[start..start + HEADER_LEN].fill(0xFF);
        let mut store: FlashStore<Small> = FlashStore::new(cut, region).unwrap();
        assert_eq!(store.load(), Ok(Loaded::Config(old)));
    }

    #[test]
    fn a_slot_that_does_not_decode_is_ignored_and_overwritten() {
        let good = config(1, 1);
        let flash = with_saved(Small::new(), &[&good]);
        // A newer slot whose CRC is right but whose image is not a configuration.
        let mut store: FlashStore<Small> = FlashStore::new(flash, 0..8 * 1024).unwrap();
        commit_raw(&mut store, Slot::B, 2, &[0x5A; 100]);
        let (store, loaded) = boot(store.into_inner());
        assert_eq!(loaded.as_ref(), Some(&good));
        assert_eq!(
            store.known,
            Known::Newest(Newest {
                slot: Slot::A,
                sequence: 1
            })
        );
        // The next save goes to the undecodable slot, never over the good one; a power
        // cut during it keeps the good one.
        let new = config(2, 1);
        sweep(&store.into_inner(), Some(&good), &new);
        // Same when the save runs without a prior load.
        let flash = with_saved(Small::new(), &[&good]);
        let mut store: FlashStore<Small> = FlashStore::new(flash, 0..8 * 1024).unwrap();
        commit_raw(&mut store, Slot::B, 2, &[0x5A; 100]);
        let mut store: FlashStore<Small> =
            FlashStore::new(store.into_inner(), 0..8 * 1024).unwrap();
        store.save(&new).unwrap();
        assert_eq!(
            store.known,
            Known::Newest(Newest {
                slot: Slot::B,
                sequence: 2
            })
        );
    }

    #[test]
    fn a_maximal_configuration_fits_the_advertised_region() {
        use crate::auth::{Credential, ScramRecord};
        use crate::config::settings::ENTRY_HEADER_LEN;
        use crate::config::{AclEntry, Bundle, Rights, MAX_BUNDLES, MAX_VARIABLES};
        use crate::config::{MAX_ACL_ENTRIES, META_LEN, NAME_LEN, SETTINGS_BYTES, SETTING_LEN};
        use crate::config::{UNIT_LEN, VALUE_LEN};
        let mut max = Config::default();
        max.profiles.clear();
        // Valid (Config::validate): anonymous without password, admin, unique names.
        max.profiles
            .push(Profile::new(0, &[b'a'; NAME_LEN]))
            .unwrap();
        for n in 1..MAX_PROFILES as u16 {
            let id = if n == 1 { crate::config::ADMIN } else { n };
            let mut name = [b'p'; NAME_LEN];
            name[0] = b'a' + n as u8;
            let profile = Profile::new(id, &name).with_credential(Credential::Scram(
                ScramRecord::from_bytes(&[7; 36]).unwrap(),
            ));
            max.profiles.push(profile).unwrap();
        }
        for id in 0..MAX_BUNDLES as u16 {
            let mut bundle = Bundle::new(id);
            bundle.name = heapless::Vec::from_slice(&[b'b'; NAME_LEN]).unwrap();
            for p in 0..MAX_ACL_ENTRIES as u16 {
                bundle
                    .acl
                    .push(AclEntry {
                        profile: p,
                        rights: Rights::ALL,
                    })
                    .unwrap();
            }
            max.bundles.push(bundle).unwrap();
        }
        for id in 0..MAX_VARIABLES as u16 {
            let mut v = Variable::new(id);
            v.meta = heapless::Vec::from_slice(&[b'm'; META_LEN]).unwrap();
            v.unit = heapless::Vec::from_slice(&[b'u'; UNIT_LEN]).unwrap();
            v.var_type = 0xA1; // in the device, UINT8
            v.quantity = VALUE_LEN as u16;
            v.value = heapless::Vec::from_slice(&[0xA5; VALUE_LEN]).unwrap();
            max.variables.push(v).unwrap();
        }
        // The settings' room filled to the last byte.
        let mut r = 0;
        while max.settings.used() < SETTINGS_BYTES {
            let room = SETTINGS_BYTES - max.settings.used() - ENTRY_HEADER_LEN;
            max.settings
                .set(1024, r, &[b's'; SETTING_LEN][..room.min(SETTING_LEN)])
                .unwrap();
            r += 1;
        }
        let mut buf = [0u8; MAX_IMAGE_LEN];
        assert_eq!(max.encode(&mut buf).unwrap(), MAX_IMAGE_LEN);

        // Enough for the large preset; the small one needs less.
        type Flash = MemFlash<{ 6 * 4096 }, 4096, 4>;
        assert!(flash_size_needed::<Flash>() <= 6 * 4096);
        let flash = Flash::new();
        let mut store: FlashStore<Flash> =
            FlashStore::new(flash, 0..flash_size_needed::<Flash>()).unwrap();
        assert!(store.max_image_len() >= MAX_IMAGE_LEN);
        store.save(&max).unwrap();
        store.save(&Config::default()).unwrap();
        store.save(&max).unwrap();
        let (_, loaded) = boot(store.into_inner());
        assert_eq!(loaded, Some(max));
    }

    #[test]
    fn too_large_is_refused_before_erasing() {
        let old = config(1, 1);
        let flash = with_saved(Bytes::new(), &[&old]);
        for load_first in [false, true] {
            let faulty = FaultyFlash::new(flash.clone(), None, Tear::All);
            let mut store: FlashStore<FaultyFlash<Bytes>> =
                FlashStore::new(faulty, 0..4096).unwrap();
            if load_first {
                store.load().unwrap();
            }
            // More variables than a 2 KiB slot holds, whatever the build's capacities.
            let mut big = config(2, (MAX_VARIABLES as u16).min(60));
            for v in big.variables.iter_mut() {
                v.meta = heapless::Vec::from_slice(&[b'm'; META_LEN]).unwrap();
                v.unit = heapless::Vec::from_slice(&[b'u'; UNIT_LEN]).unwrap();
            }
            let mut r = 100;
            while big.settings.set(1024, r, &[b's'; 64]).is_ok() {
                r += 1;
            }
            let err = store.save(&big).unwrap_err();
            assert_eq!(err.kind(), StoreErrorKind::TooLarge);
            assert_eq!(ResultCode::from(err), ResultCode::NvmFull);
            let flash = store.into_inner();
            assert_eq!(flash.ops, 0, "nothing erased or written");
            assert_eq!(boot(flash.into_inner()).1, Some(old.clone()));
        }
    }

    #[test]
    fn regions_are_checked() {
        let new = |r: Range<u32>| FlashStore::<Small>::new(Small::new(), r).map(|_| ());
        let region = Err(StoreError::new(StoreErrorKind::Region));
        assert_eq!(new(0..8192), Ok(()));
        assert_eq!(new(1024..3072), Ok(()));
        assert_eq!(new(0..1024), region, "one sector: no room for two slots");
        assert_eq!(new(0..3072), region, "odd number of sectors");
        assert_eq!(new(512..2560), region, "misaligned start");
        assert_eq!(new(0..2000), region, "misaligned end");
        assert_eq!(new(0..0), region);
        assert_eq!(
            new(Range {
                start: 4096,
                end: 2048
            }),
            region
        );
        assert_eq!(new(0..16384), region, "beyond the flash");
        // Write units larger than the staging buffer are refused.
        type Huge = MemFlash<{ 4 * 1024 }, 1024, 256>;
        assert_eq!(
            FlashStore::<Huge>::new(Huge::new(), 0..4096).err(),
            Some(StoreError::new(StoreErrorKind::Region))
        );
    }

    #[test]
    fn flash_errors_are_reported() {
        let faulty = FaultyFlash::new(Small::new(), Some(0), Tear::Nothing);
        let mut store: FlashStore<FaultyFlash<Small>> = FlashStore::new(faulty, 0..8192).unwrap();
        let err = store.save(&Config::default()).unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Flash);
        assert_eq!(ResultCode::from(err), ResultCode::NvmError);
        // Reads fail too once the flash is dead: load reports it.
        assert_eq!(store.load().unwrap_err().kind(), StoreErrorKind::Flash);
    }

    #[test]
    fn no_store_keeps_nothing() {
        let mut store = NoStore;
        assert_eq!(store.load(), Ok(Loaded::Blank));
        assert_eq!(store.save(&config(1, 1)), Ok(()));
        assert_eq!(store.load(), Ok(Loaded::Blank));
        let mut by_ref = &mut store;
        assert_eq!(ConfigStore::load(&mut by_ref), Ok(Loaded::Blank));
    }

    #[test]
    fn load_into_fills_the_callers_configuration_in_place() {
        let saved = config(3, 4);
        let flash = with_saved(Small::new(), &[&saved]);
        let region = region(&flash);
        let mut store: FlashStore<Small> = FlashStore::new(flash, region.clone()).unwrap();
        let mut config = config(9, 9);
        assert_eq!(store.load_into(&mut config), Ok(LoadState::Config));
        assert_eq!(config, saved);
        // Nothing valid: the factory default, and the state says why.
        let mut store: FlashStore<Small> = FlashStore::new(Small::new(), region).unwrap();
        assert_eq!(store.load_into(&mut config), Ok(LoadState::Blank));
        assert_eq!(config, Config::default());
        let mut none = NoStore;
        let mut config = saved.clone();
        assert_eq!(none.load_into(&mut config), Ok(LoadState::Blank));
        assert_eq!(config, Config::default());
    }

    #[test]
    fn a_damaged_store_is_not_mistaken_for_a_blank_one() {
        let mut store: FlashStore<Small> = FlashStore::new(Small::new(), 0..8192).unwrap();
        assert_eq!(store.load(), Ok(Loaded::Blank), "erased flash: first boot");
        store.save(&config(1, 1)).unwrap();
        // Flip one byte of the image: the CRC no longer matches, nothing is loadable.
        let mut flash = store.into_inner();
        let at = u32::try_from(body_offset::<Small>()).unwrap() + 3;
        flash.data[at as usize] ^= 0x5A;
        let mut store: FlashStore<Small> = FlashStore::new(flash, 0..8192).unwrap();
        assert_eq!(store.load(), Ok(Loaded::Damaged));
        // The rest of a header written but not its magic: a first save cut short.
        let mut flash = store.into_inner();
        flash.data[..HEADER_LEN].fill(0xFF);
        flash.data[5] = 0x7F;
        let mut store: FlashStore<Small> = FlashStore::new(flash, 0..8192).unwrap();
        assert_eq!(store.load(), Ok(Loaded::Blank));
        // A magic no cut save leaves (a bit cleared that MAGIC has set): damage.
        let mut flash = store.into_inner();
        flash.data[0] = 0x00;
        let mut store: FlashStore<Small> = FlashStore::new(flash, 0..8192).unwrap();
        assert_eq!(store.load(), Ok(Loaded::Damaged));
    }

    #[test]
    fn errors_display_and_map() {
        let kinds = [
            (StoreErrorKind::Flash, ResultCode::NvmError),
            (StoreErrorKind::TooLarge, ResultCode::NvmFull),
            (StoreErrorKind::Image, ResultCode::NvmError),
            (StoreErrorKind::Region, ResultCode::NvmError),
            (StoreErrorKind::BlobFull, ResultCode::NvmFull),
        ];
        for (kind, code) in kinds {
            let err = StoreError::from(kind);
            assert_eq!(err.kind(), kind);
            assert_eq!(ResultCode::from(err), code);
            assert!(!format!("{err}").is_empty());
        }
        assert_eq!(ResultCode::NvmError as u8, 0xA4);
        assert_eq!(ResultCode::NvmFull as u8, 0xA7);
    }

    /// A flash whose byte at `flip` reads with its low bit inverted from the second read
    /// covering it on (a weak cell, a marginal read, a probe on the bus); every other
    /// read is the inner flash's.
    #[derive(Clone, Debug)]
    struct Unstable<M> {
        inner: M,
        flip: usize,
        seen: usize,
    }

    impl<M: Tearable> ErrorType for Unstable<M> {
        type Error = MockError;
    }

    impl<M: Tearable> ReadNorFlash for Unstable<M> {
        const READ_SIZE: usize = M::READ_SIZE;

        fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), MockError> {
            self.inner.read(offset, bytes)?;
            let at = offset as usize;
            if (at..at + bytes.len()).contains(&self.flip) {
                self.seen += 1;
                if self.seen >= 2 {
                    bytes[self.flip - at] ^= 0x01;
                }
            }
            Ok(())
        }

        fn capacity(&self) -> usize {
            self.inner.capacity()
        }
    }

    impl<M: Tearable> NorFlash for Unstable<M> {
        const WRITE_SIZE: usize = M::WRITE_SIZE;
        const ERASE_SIZE: usize = M::ERASE_SIZE;

        fn erase(&mut self, from: u32, to: u32) -> Result<(), MockError> {
            self.inner.erase(from, to)
        }

        fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), MockError> {
            self.inner.write(offset, bytes)
        }
    }

    /// Regression (the bug this test caught): the CRC is checked over a first read of the image and the configuration
    /// decoded from a second one, so bytes that read differently the second time are
    /// loaded although no CRC ever covered them.
    #[test]
    fn bytes_read_after_the_crc_check_are_not_loaded_unchecked() {
        let old = config(1, 2);
        let new = config(2, 3);
        // `new` is in slot B (4096..8192).
        let flash = with_saved(Small::new(), &[&old, &new]);
        // The low byte of `inactivity_secs` (image bytes 12..14).
        let flip = 4096 + body_offset::<Small>() + 13;
        let unstable = Unstable {
            inner: flash,
            flip,
            seen: 0,
        };
        let mut store: FlashStore<Unstable<Small>> = FlashStore::new(unstable, 0..8192).unwrap();
        match store.load().unwrap() {
            Loaded::Config(c) | Loaded::Previous(c) => assert!(
                c == new || c == old,
                "loaded a configuration never saved: inactivity {} (saved {} and {})",
                c.inactivity_secs,
                old.inactivity_secs,
                new.inactivity_secs
            ),
            Loaded::Blank | Loaded::Damaged => {}
        }
    }

    /// Regression (the bug this test caught): after a load finds nothing valid (`Known::Empty`), a save goes to slot A
    /// with sequence 1 whatever the headers say; the damaged slot B, whose sequence is
    /// higher, still reads as the newest, so the next boot reports the configuration just
    /// saved as `Previous` (the damage of a newer image). The Linux port then refuses to
    /// start again right after `--factory-reset`.
    #[test]
    fn a_save_after_damage_loads_as_the_newest_configuration() {
        for load_first in [true, false] {
            // Slot A sequence 1, slot B sequence 2; then both images damaged.
            let mut flash = with_saved(Small::new(), &[&config(0, 1), &config(1, 1)]);
            let body = body_offset::<Small>();
            flash.data[body + 3] ^= 0x5A;
            flash.data[4096 + body + 3] ^= 0x5A;
            let mut store: FlashStore<Small> = FlashStore::new(flash, 0..8192).unwrap();
            if load_first {
                assert_eq!(store.load(), Ok(Loaded::Damaged));
            }
            // What `--factory-reset` does.
            let fresh = Config::default();
            store.save(&fresh).unwrap();
            let mut store: FlashStore<Small> =
                FlashStore::new(store.into_inner(), 0..8192).unwrap();
            assert_eq!(
                store.load(),
                Ok(Loaded::Config(fresh)),
                "load first {load_first}"
            );
        }
    }

    /// Regression (the bug this test caught): `load_into` promises that `config` is the factory default unless a
    /// configuration was found, and `read_image_into` resets it on a flash error while
    /// decoding; a flash error while reading a header or checking a CRC returns through
    /// `?` and leaves the caller's configuration as it was.
    #[test]
    fn a_flash_error_during_a_load_leaves_the_factory_default() {
        let flash = with_saved(Small::new(), &[&config(1, 2)]);
        // Reboot: the flash fails at once (read 0: the header of slot A).
        let faulty = FaultyFlash {
            off: true,
            ..FaultyFlash::new(flash, None, Tear::All)
        };
        let mut store: FlashStore<FaultyFlash<Small>> = FlashStore::new(faulty, 0..8192).unwrap();
        let mut running = config(7, 7);
        let loaded = store.load_into(&mut running);
        assert_eq!(loaded.map_err(|e| e.kind()), Err(StoreErrorKind::Flash));
        assert!(
            running == Config::default(),
            "the caller's configuration was left as it was"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_flash_never_panics(content in proptest::collection::vec(any::<u8>(), 4096)) {
            let mut flash = Bytes::new();
            flash.data.copy_from_slice(&content);
            let (mut store, loaded) = boot(flash);
            prop_assert_eq!(loaded, None);
            store.save(&Config::default()).unwrap();
            let (_, loaded) = boot(store.into_inner());
            prop_assert_eq!(loaded, Some(Config::default()));
        }

        #[test]
        fn arbitrary_headers_never_panic(
            sequences in any::<[u32; 2]>(),
            lengths in any::<[u32; 2]>(),
            bodies in any::<[[u8; 32]; 2]>(),
            right_crc in any::<[bool; 2]>(),
        ) {
            let mut flash = Bytes::new();
            for (i, start) in [0usize, 2048].into_iter().enumerate() {
                let length = lengths[i] % 4096;
                let body = &bodies[i];
                let covered = &body[..(length as usize).min(32)];
                let crc = if right_crc[i] && length as usize <= 32 {
                    image_crc(sequences[i], length, covered)
                } else {
                    sequences[i]
                };
                let header = Header { magic: MAGIC, sequence: sequences[i], length, crc };
                flash.data[start..start + HEADER_LEN].copy_from_slice(&header.to_bytes());
                flash.data[start + HEADER_LEN..start + HEADER_LEN + 32].copy_from_slice(body);
            }
            let (mut store, loaded) = boot(flash);
            prop_assert_eq!(loaded, None);
            // And a save still works over whatever was there.
            store.save(&Config::default()).unwrap();
            let (_, loaded) = boot(store.into_inner());
            prop_assert_eq!(loaded, Some(Config::default()));
        }
    }
}
