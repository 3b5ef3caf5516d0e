//! Large blobs streamed to flash: certificates, the JVM byte code (`/1024//37`, `38`,
//! `57`, `74`), which the client sends in 220-byte chunks, one PUT each.
//!
//! A blob is never held in RAM nor in the configuration image. Each chunk is an
//! [`Operation::AppendBlob`](crate::io::Operation::AppendBlob) the store performs
//! ([`ConfigStore::append_blob`]); a clear is an
//! [`Operation::ClearBlob`](crate::io::Operation::ClearBlob). A blob is named by a
//! [`BlobId`] its object's table declares; which blobs a device keeps, and how large, is
//! the port's choice: a [`BlobRegion`] each, handed to [`FlashBlobs`]. A store combines
//! its configuration store and its blobs with [`WithBlobs`].
//!
//! # Flash layout of a blob region ([`FlashBlobs`])
//!
//! A region is a whole number of erase sectors. With `W` the flash's write unit and
//! `⌈n⌉` the length `n` rounded up to `W`:
//!
//! ```text
//! offset 0        open marker "LWB1", 0xFF-padded to ⌈4⌉
//! then records    header   len u16 | !len u16 | crc u32 (LE), 0xFF-padded to ⌈8⌉
//!                 data     len bytes, 0xFF-padded to ⌈len⌉
//!                 commit   "DONE", 0xFF-padded to ⌈4⌉
//! ```
//!
//! `crc` is CRC-32/ISCSI over the data. The blob is the data of its **committed** records
//! in order: header consistent (`!len` is the complement of `len`, which a torn NOR
//! program of the pair cannot produce: programming only clears bits), commit word exact,
//! CRC right. The log ends at the first erased header.
//!
//! # Power cuts
//!
//! An append checks the room first (no room: [`StoreErrorKind::BlobFull`], `A7`, nothing
//! written), then writes header, data and commit word, **the commit word last**, and
//! reads the record back: one that would not count (written over cells that were not
//! erased) is [`StoreErrorKind::Flash`], `A4`, never a success.
//!
//! - Cut anywhere in an append: the record is not committed, the blob is what it was
//!   before (earlier chunks intact), and the configuration, elsewhere, is untouched. The
//!   client got no `90 00`-success and sends the chunk again; the next append goes
//!   **after** the torn record, which is skipped for good: its length is known from its
//!   header, or, with a torn header, the header alone is skipped (nothing after it was
//!   written). Only if the commit word was complete when the power went does the chunk
//!   count (its `90 00` lost): the client's retry then stores it twice.
//! - Exception: a flash with ECC whose header unit was cut before any bit changed reads
//!   erased but refuses a second write: appends then answer `A4` until the blob is
//!   cleared (the clear erases the region).
//! - A clear erases the region's first sector (the open marker) first, the rest
//!   next, then writes the marker: cut short, the blob reads empty and the next append
//!   erases the region again before writing (a region without its marker is opened,
//!   erased, by the first append). A torn erase that leaves the marker intact but garbles
//!   records leaves those records failing their CRC, skipped: clear again.
//!
//! # Sizing
//!
//! [`blob_region_len`] gives the region a blob of up to `n` bytes needs when it arrives
//! in chunks of `chunk` bytes (the client's 220): each record costs its header and
//! commit word. Smaller chunks cost more room, and every torn record keeps its room
//! until the blob is cleared.
//!
//! # Costs
//!
//! No RAM but the driver and the region table: an append scans the log (headers,
//! commit words and the CRC of each record's data) to find its end and the data length,
//! through the 128-byte staging buffer of [`crate::storage`], wiped after use.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use embedded_storage::nor_flash::NorFlash;

use crate::config::Config;
use crate::storage::{
    digest_range, flash_error, geometry_ok, read_into, region_error, round_up, write_range,
    ConfigStore, LoadState, Loaded, StoreError, StoreErrorKind, CRC,
};

/// Names a blob: declared by its object's table (object 1024 uses the resource id),
/// mapped to a flash region by the port ([`BlobRegion`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BlobId(pub u16);

/// Where the port keeps one blob: `start..end` of its [`FlashBlobs`] flash, whole erase
/// sectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BlobRegion {
    /// The blob.
    pub blob: BlobId,
    /// First byte of the region (on a sector boundary).
    pub start: u32,
    /// End of the region, excluded (on a sector boundary).
    pub end: u32,
}

impl BlobRegion {
    /// The region `start..end` for `blob`.
    pub const fn new(blob: BlobId, start: u32, end: u32) -> BlobRegion {
        BlobRegion { blob, start, end }
    }

    /// The region of `len` bytes right after this one, for `blob`.
    pub const fn then(&self, blob: BlobId, len: u32) -> BlobRegion {
        BlobRegion {
            blob,
            start: self.end,
            end: self.end.saturating_add(len),
        }
    }
}

/// Where blobs are kept: what [`WithBlobs`] adds to a configuration store.
pub trait BlobStore {
    /// Appends `data` to `blob`: [`StoreErrorKind::BlobFull`] (`A7`), writing nothing,
    /// if its region has no room for it or the store keeps no such blob.
    fn append(&mut self, blob: BlobId, data: &[u8]) -> Result<(), StoreError>;

    /// Empties `blob` (nothing to do for a blob the store does not keep).
    fn clear(&mut self, blob: BlobId) -> Result<(), StoreError>;

    /// The bytes `blob` holds (0 for a blob the store does not keep).
    fn stored_len(&mut self, blob: BlobId) -> Result<usize, StoreError>;

    /// Copies the bytes of `blob` from `offset` into `out`; how many were copied (fewer
    /// than `out.len()` at the end of the blob).
    fn read(&mut self, blob: BlobId, offset: usize, out: &mut [u8]) -> Result<usize, StoreError>;
}

impl<T: BlobStore + ?Sized> BlobStore for &mut T {
    fn append(&mut self, blob: BlobId, data: &[u8]) -> Result<(), StoreError> {
        T::append(self, blob, data)
    }

    fn clear(&mut self, blob: BlobId) -> Result<(), StoreError> {
        T::clear(self, blob)
    }

    fn stored_len(&mut self, blob: BlobId) -> Result<usize, StoreError> {
        T::stored_len(self, blob)
    }

    fn read(&mut self, blob: BlobId, offset: usize, out: &mut [u8]) -> Result<usize, StoreError> {
        T::read(self, blob, offset, out)
    }
}

/// A configuration store and a blob store as one [`ConfigStore`]: what a port hands its
/// device when it keeps blobs (the configuration in `config`, the blobs in `blobs`, on
/// two flashes or two partitions of one).
#[derive(Debug, Default)]
pub struct WithBlobs<S, B> {
    /// Keeps the configuration.
    pub config: S,
    /// Keeps the blobs (the firmware reads its certificates here).
    pub blobs: B,
}

impl<S: ConfigStore, B: BlobStore> ConfigStore for WithBlobs<S, B> {
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
        self.blobs.append(blob, data)
    }

    fn clear_blob(&mut self, blob: BlobId) -> Result<(), StoreError> {
        self.blobs.clear(blob)
    }

    #[cfg(feature = "packets")]
    fn packets(&mut self) -> Option<&mut dyn crate::packets::PacketStorage> {
        self.config.packets()
    }
}

/// First word of an opened region.
const OPEN: [u8; 4] = *b"LWB1";
/// The word that commits a record, written last.
const COMMIT: [u8; 4] = *b"DONE";
/// Length of a record header: `len u16 | !len u16 | crc u32`.
const HEADER_LEN: usize = 8;

/// `n` rounded up to a write unit of `F` (`usize::MAX` on overflow: never fits).
const fn unit<F: NorFlash>(n: usize) -> usize {
    match round_up(n, F::WRITE_SIZE) {
        Some(n) => n,
        None => usize::MAX,
    }
}

/// The room one record of `len` bytes takes in a region of `F`.
const fn record_len<F: NorFlash>(len: usize) -> usize {
    unit::<F>(HEADER_LEN)
        .saturating_add(unit::<F>(len))
        .saturating_add(unit::<F>(COMMIT.len()))
}

/// The length of a region (whole erase sectors of `F`) that holds a blob of `bytes`
/// appended in chunks of `chunk` bytes (the client's: 220), `u32::MAX` on overflow.
pub const fn blob_region_len<F: NorFlash>(bytes: usize, chunk: usize) -> u32 {
    let chunk = if chunk == 0 { 1 } else { chunk };
    let records = bytes.div_ceil(chunk);
    let used = unit::<F>(OPEN.len()).saturating_add(records.saturating_mul(record_len::<F>(chunk)));
    match round_up(used, F::ERASE_SIZE) {
        Some(len) if len <= u32::MAX as usize => len as u32,
        _ => u32::MAX,
    }
}

/// What a walk of a region found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Log {
    /// The region carries its open marker (else it reads empty and is erased before the
    /// first append).
    opened: bool,
    /// Where the next record goes.
    end: u32,
    /// Bytes of the committed records.
    len: usize,
}

fn add(a: u32, b: usize) -> Result<u32, StoreError> {
    a.checked_add(u32::try_from(b).map_err(|_| region_error())?)
        .ok_or_else(region_error)
}

/// Reads the `N` bytes at `at`.
fn read_word<F: NorFlash, const N: usize>(flash: &mut F, at: u32) -> Result<[u8; N], StoreError> {
    let mut word = [0u8; N];
    read_into(flash, at, &mut word)?;
    Ok(word)
}

/// The length and CRC of a consistent header; `None` for a torn one.
fn decode_header(bytes: &[u8; HEADER_LEN]) -> Option<(u16, u32)> {
    let [l0, l1, n0, n1, c0, c1, c2, c3] = *bytes;
    let len = u16::from_le_bytes([l0, l1]);
    (u16::from_le_bytes([n0, n1]) == !len && len != 0 && len != u16::MAX)
        .then_some((len, u32::from_le_bytes([c0, c1, c2, c3])))
}

/// Where the next record of `region` goes (its data is not read: an append costs one
/// header and one commit word per record, not a CRC of the whole blob).
fn end_of<F: NorFlash>(flash: &mut F, region: &BlobRegion) -> Result<Log, StoreError> {
    walk(flash, region, Records::Ends, |_, _, _| Ok(()))
}

/// What a [`walk`] reads of each record.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Records {
    /// Its header and commit word: where the log ends.
    Ends,
    /// Its data too, whose CRC decides whether it counts.
    Data,
}

/// Walks the records of `region`, calling `visit(data offset, len)` for each committed
/// one whose data matches its CRC, in order (with [`Records::Data`]; [`Records::Ends`]
/// only finds the end, and `len` is then 0). Bounded: every step moves forward by one
/// header at least.
fn walk<F: NorFlash>(
    flash: &mut F,
    region: &BlobRegion,
    records: Records,
    mut visit: impl FnMut(&mut F, u32, usize) -> Result<(), StoreError>,
) -> Result<Log, StoreError> {
    let header_room = unit::<F>(HEADER_LEN);
    let mut at = add(region.start, unit::<F>(OPEN.len()))?;
    if read_word::<F, 4>(flash, region.start)? != OPEN {
        return Ok(Log {
            opened: false,
            end: at,
            len: 0,
        });
    }
    let mut len = 0usize;
    while let Some(data_at) = add(at, header_room).ok().filter(|&d| d <= region.end) {
        let header = read_word::<F, HEADER_LEN>(flash, at)?;
        if header.iter().all(|&b| b == 0xFF) {
            break;
        }
        let Some((n, crc)) = decode_header(&header) else {
            // A torn header: nothing after it was written.
            at = data_at;
            continue;
        };
        let n = usize::from(n);
        let commit_at = add(data_at, unit::<F>(n))?;
        let next = add(commit_at, unit::<F>(COMMIT.len()))?;
        if next > region.end {
            // Not a record of ours: no room after it.
            at = region.end;
            break;
        }
        if records == Records::Data && read_word::<F, 4>(flash, commit_at)? == COMMIT {
            let mut digest = CRC.digest();
            digest_range(flash, data_at, n, &mut digest)?;
            if digest.finalize() == crc {
                visit(flash, data_at, n)?;
                len = len.checked_add(n).ok_or_else(region_error)?;
            }
        }
        at = next;
    }
    Ok(Log {
        opened: true,
        end: at,
        len,
    })
}

/// Blobs over a NOR flash (or a partition of one), each in its own [`BlobRegion`]; see
/// the [module documentation](self) for the layout and the power-cut rules.
///
/// It holds the driver and the region table only; every operation reads what it needs
/// from the flash.
#[derive(Debug)]
pub struct FlashBlobs<F> {
    flash: F,
    regions: &'static [BlobRegion],
}

impl<F: NorFlash> FlashBlobs<F> {
    /// Blobs in `regions` of `flash`. Each region must start and end on a sector
    /// boundary within the flash, hold one record at least, and overlap no other; a blob
    /// has one region; `F::WRITE_SIZE` and `F::READ_SIZE` must divide the sector and be
    /// at most [`STAGE_LEN`](crate::storage::STAGE_LEN). Otherwise [`StoreErrorKind::Region`]. Nothing is read or
    /// written here.
    pub fn new(flash: F, regions: &'static [BlobRegion]) -> Result<Self, StoreError> {
        if !geometry_ok::<F>() {
            return Err(region_error());
        }
        let erase = u32::try_from(F::ERASE_SIZE).map_err(|_| region_error())?;
        let least = unit::<F>(OPEN.len()).saturating_add(record_len::<F>(1));
        for (i, r) in regions.iter().enumerate() {
            let len = r.end.checked_sub(r.start).ok_or_else(region_error)?;
            let ok = r.start.checked_rem(erase) == Some(0)
                && r.end.checked_rem(erase) == Some(0)
                && usize::try_from(len).is_ok_and(|len| len >= least)
                && usize::try_from(r.end).is_ok_and(|end| end <= flash.capacity());
            let clash = regions
                .iter()
                .skip(i.saturating_add(1))
                .any(|other| other.blob == r.blob || (other.start < r.end && r.start < other.end));
            if !ok || clash {
                return Err(region_error());
            }
        }
        Ok(FlashBlobs { flash, regions })
    }

    /// Gives the flash driver back.
    pub fn into_inner(self) -> F {
        self.flash
    }

    /// The region of `blob`.
    pub fn region(&self, blob: BlobId) -> Option<&BlobRegion> {
        self.regions.iter().find(|r| r.blob == blob)
    }

    /// The most bytes the next append to `blob` may carry (one record), 0 for a blob
    /// this store does not keep.
    pub fn room(&mut self, blob: BlobId) -> Result<usize, StoreError> {
        let Some(region) = self.region(blob).copied() else {
            return Ok(0);
        };
        let log = end_of(&mut self.flash, &region)?;
        let start = if log.opened {
            log.end
        } else {
            add(region.start, unit::<F>(OPEN.len()))?
        };
        let free = usize::try_from(region.end.saturating_sub(start)).unwrap_or(0);
        let overhead = unit::<F>(HEADER_LEN).saturating_add(unit::<F>(COMMIT.len()));
        let units = free
            .saturating_sub(overhead)
            .checked_div(F::WRITE_SIZE)
            .unwrap_or(0);
        Ok(units
            .saturating_mul(F::WRITE_SIZE)
            .min(usize::from(u16::MAX - 1)))
    }

    /// Erases `region`, its first sector (the open marker) first, then writes the
    /// marker: the region is an empty, opened log.
    fn open(&mut self, region: &BlobRegion) -> Result<(), StoreError> {
        let first = add(region.start, F::ERASE_SIZE)?.min(region.end);
        self.flash.erase(region.start, first).map_err(flash_error)?;
        if first < region.end {
            self.flash.erase(first, region.end).map_err(flash_error)?;
        }
        write_range(&mut self.flash, region.start, &OPEN)
    }
}

impl<F: NorFlash> BlobStore for FlashBlobs<F> {
    fn append(&mut self, blob: BlobId, data: &[u8]) -> Result<(), StoreError> {
        let full = || StoreError::new(StoreErrorKind::BlobFull);
        let region = *self.region(blob).ok_or_else(full)?;
        if data.is_empty() {
            return Ok(());
        }
        let len = u16::try_from(data.len())
            .ok()
            .filter(|&n| n != u16::MAX)
            .ok_or_else(full)?;
        let mut log = end_of(&mut self.flash, &region)?;
        let next = add(log.end, record_len::<F>(data.len())).map_err(|_| full())?;
        // Refused before anything is erased or written.
        if next > region.end {
            return Err(full());
        }
        if !log.opened {
            self.open(&region)?;
            log.end = add(region.start, unit::<F>(OPEN.len()))?;
        }
        let mut header = [0xFFu8; HEADER_LEN];
        let mut digest = CRC.digest();
        digest.update(data);
        let crc = digest.finalize();
        for (cell, byte) in header.iter_mut().zip(
            len.to_le_bytes()
                .into_iter()
                .chain((!len).to_le_bytes())
                .chain(crc.to_le_bytes()),
        ) {
            *cell = byte;
        }
        let data_at = add(log.end, unit::<F>(HEADER_LEN))?;
        let commit_at = add(data_at, unit::<F>(data.len()))?;
        write_range(&mut self.flash, log.end, &header)?;
        write_range(&mut self.flash, data_at, data)?;
        write_range(&mut self.flash, commit_at, &COMMIT)?;
        // Read back as a walk will read it: cells that were not erased (a torn erase
        // that left the marker whole) make a record that does not count, and the client
        // must not be told its chunk is stored.
        let mut digest = CRC.digest();
        digest_range(&mut self.flash, data_at, data.len(), &mut digest)?;
        if read_word::<F, HEADER_LEN>(&mut self.flash, log.end)? != header
            || digest.finalize() != crc
            || read_word::<F, 4>(&mut self.flash, commit_at)? != COMMIT
        {
            warn!("blob {}: the appended record does not read back", blob.0);
            return Err(flash_error(()));
        }
        debug!("blob {}: {} bytes appended", blob.0, data.len());
        Ok(())
    }

    fn clear(&mut self, blob: BlobId) -> Result<(), StoreError> {
        let Some(region) = self.region(blob).copied() else {
            return Ok(());
        };
        self.open(&region)?;
        debug!("blob {} cleared", blob.0);
        Ok(())
    }

    fn stored_len(&mut self, blob: BlobId) -> Result<usize, StoreError> {
        let Some(region) = self.region(blob).copied() else {
            return Ok(0);
        };
        Ok(walk(&mut self.flash, &region, Records::Data, |_, _, _| Ok(()))?.len)
    }

    fn read(&mut self, blob: BlobId, offset: usize, out: &mut [u8]) -> Result<usize, StoreError> {
        let Some(region) = self.region(blob).copied() else {
            return Ok(0);
        };
        // `pos`: the blob offset of the record visited; `copied`: bytes of `out` filled.
        let (mut pos, mut copied) = (0usize, 0usize);
        walk(
            &mut self.flash,
            &region,
            Records::Data,
            |flash, data_at, n| {
                let record_end = pos.checked_add(n).ok_or_else(region_error)?;
                let want = offset.checked_add(copied).ok_or_else(region_error)?;
                if copied < out.len() && want < record_end && want >= pos {
                    let skip = want.checked_sub(pos).ok_or_else(region_error)?;
                    let take = n
                        .checked_sub(skip)
                        .ok_or_else(region_error)?
                        .min(out.len().saturating_sub(copied));
                    let dest = out
                        .get_mut(copied..copied.checked_add(take).ok_or_else(region_error)?)
                        .ok_or_else(region_error)?;
                    read_into(flash, add(data_at, skip)?, dest)?;
                    copied = copied.checked_add(take).ok_or_else(region_error)?;
                }
                pos = record_end;
                Ok(())
            },
        )?;
        Ok(copied)
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
mod tests;
