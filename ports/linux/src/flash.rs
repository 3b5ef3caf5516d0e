//! The desktop's "flash": files that behave like NOR flash, holding the configuration
//! store (`--state DIR` keeps it in `DIR/config.flash`), the blobs (certificates, JVM
//! code: `DIR/blobs.flash`, [`BLOB_REGIONS`]) and the single packets (the store in
//! `DIR/packets.flash`, the replay record in `DIR/replay.flash`, a firmware image in
//! `DIR/firmware.bin`: [`Packets`]).
//!
//! [`FileFlash`] keeps NOR semantics so the desktop exercises the same code paths as a
//! board: erase sets whole 4 KiB sectors to `0xFF`, a write may only clear bits (the new
//! content is ANDed with the old) and must be 4-byte aligned. Every write and erase is
//! followed by `sync_data`, so a save that returned survives the process being killed or
//! the machine losing power; a save cut short is handled by [`FlashStore`]'s A/B scheme
//! like on real flash.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use embedded_storage::nor_flash::{
    check_erase, check_read, check_write, ErrorType, NorFlash, NorFlashError, NorFlashErrorKind,
    ReadNorFlash,
};
use lwm2m_core::blob::{blob_region_len, BlobId, BlobRegion, BlobStore, FlashBlobs};
use lwm2m_core::firmware::{self, FirmwareSink, Image};
use lwm2m_core::packets::{FlashPackets, PacketStorage};
use lwm2m_core::storage::replay::ReplayGuard;
use lwm2m_core::storage::{ConfigStore, FlashStore, Loaded, StoreError};
use lwm2m_core::Config;
use lwm2m_objects::interface::blobs;

/// Name of the flash file inside the state directory.
pub const FILE_NAME: &str = "config.flash";
/// Size of the flash file: two 16 KiB slots (a configuration image needs at most 12 KiB
/// per slot with 4 KiB sectors, see [`lwm2m_core::storage::flash_size_needed`]).
pub const CAPACITY: u32 = 2 * 16 * 1024;

/// Name of the blob flash file inside the state directory.
pub const BLOB_FILE_NAME: &str = "blobs.flash";
/// The region of a certificate or key: 4 KiB in 220-byte chunks, two 4 KiB sectors.
const CERTIFICATE_REGION: u32 =
    blob_region_len::<FileFlash>(blobs::CERTIFICATE_BYTES, blobs::CHUNK);
/// The region of the JVM code: 32 KiB in 220-byte chunks, nine sectors.
const CODE_REGION: u32 = blob_region_len::<FileFlash>(blobs::JVM_CODE_BYTES, blobs::CHUNK);
const PUBLIC_KEY: BlobRegion =
    BlobRegion::new(blobs::CERTIFICATE_PUBLIC_KEY, 0, CERTIFICATE_REGION);
const PRIVATE_KEY: BlobRegion = PUBLIC_KEY.then(blobs::CERTIFICATE_PRIVATE_KEY, CERTIFICATE_REGION);
const BROKER: BlobRegion = PRIVATE_KEY.then(blobs::BROKER_CERTIFICATE, CERTIFICATE_REGION);
const CODE: BlobRegion = BROKER.then(blobs::JVM_CODE, CODE_REGION);
/// Where each blob lives in `blobs.flash`.
pub const BLOB_REGIONS: &[BlobRegion] = &[PUBLIC_KEY, PRIVATE_KEY, BROKER, CODE];
/// Size of the blob flash file: the regions of [`BLOB_REGIONS`] (60 KiB).
pub const BLOB_CAPACITY: u32 = CODE.end;

/// Name of the single packets' store file inside the state directory.
pub const PACKET_FILE_NAME: &str = "packets.flash";
/// Size of the packet store: the largest single packet (2 MiB, §11.1).
pub const PACKET_CAPACITY: u32 = lwm2m_core::crypto::packet::MAX_PACKET_LEN as u32;
/// Name of the single packets' replay record inside the state directory.
pub const REPLAY_FILE_NAME: &str = "replay.flash";
/// Size of the replay record: two 4 KiB sectors (about 600 accepted packets a sector).
pub const REPLAY_CAPACITY: u32 = 2 * 4096;
/// Name of the firmware image a firmware update leaves in the state directory, and of
/// the image being written (`firmware.bin.new`).
pub const FIRMWARE_FILE_NAME: &str = "firmware.bin";

/// `err` with the path it is about, unless it names it already.
pub fn naming(path: &Path, err: io::Error) -> io::Error {
    let shown = path.display().to_string();
    if err.to_string().contains(&shown) {
        return err;
    }
    io::Error::new(err.kind(), format!("{shown}: {err}"))
}

/// A NOR flash emulated by a file (erased: `0xFF`) of [`CAPACITY`] bytes for the
/// configuration, [`BLOB_CAPACITY`] for the blobs, or by memory ([`FileFlash::memory`]).
#[derive(Debug)]
pub struct FileFlash {
    backing: Backing,
    capacity: u32,
}

#[derive(Debug)]
enum Backing {
    File(File),
    Memory(Vec<u8>),
}

/// Why a [`FileFlash`] operation failed.
#[derive(Debug)]
pub enum FileFlashError {
    /// Misaligned or out of bounds.
    Access(NorFlashErrorKind),
    /// The file could not be read, written or synced.
    Io(io::Error),
}

impl NorFlashError for FileFlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            FileFlashError::Access(kind) => *kind,
            FileFlashError::Io(_) => NorFlashErrorKind::Other,
        }
    }
}

impl std::fmt::Display for FileFlashError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileFlashError::Access(kind) => write!(f, "flash access refused: {kind}"),
            FileFlashError::Io(err) => write!(f, "flash file: {err}"),
        }
    }
}

impl std::error::Error for FileFlashError {}

impl From<io::Error> for FileFlashError {
    fn from(err: io::Error) -> Self {
        log::warn!("flash file ({FILE_NAME} or {BLOB_FILE_NAME}): {err}");
        FileFlashError::Io(err)
    }
}

/// Why the flash file could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// The file or its folder could not be read, created or written (the path is named).
    Io(io::Error),
    /// The file exists with another size than its own ([`CAPACITY`], [`BLOB_CAPACITY`]):
    /// truncated, or not this device's flash. It is not reinterpreted (an empty file
    /// would read as a blank store and boot the factory credentials).
    WrongSize {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: u64,
        /// The length it should have.
        expected: u32,
    },
}

impl From<io::Error> for OpenError {
    fn from(err: io::Error) -> Self {
        OpenError::Io(err)
    }
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Io(err) => err.fmt(f),
            OpenError::WrongSize {
                path,
                len,
                expected,
            } => write!(
                f,
                "{}: {len} bytes, a flash image has {expected}",
                path.display()
            ),
        }
    }
}

impl FileFlash {
    /// Opens `dir/config.flash`. A missing file is created erased (all `0xFF`),
    /// atomically: written in full as `config.flash.new`, synced, then renamed, so that a
    /// file of another size is never this device's doing. An existing file of another
    /// size is [`OpenError::WrongSize`], unless `replace`, which recreates it erased.
    pub fn open(dir: &Path, replace: bool) -> Result<FileFlash, OpenError> {
        FileFlash::open_named(dir, FILE_NAME, CAPACITY, replace)
    }

    /// Opens `dir/blobs.flash` as [`FileFlash::open`] does `config.flash`.
    pub fn open_blobs(dir: &Path, replace: bool) -> Result<FileFlash, OpenError> {
        FileFlash::open_named(dir, BLOB_FILE_NAME, BLOB_CAPACITY, replace)
    }

    /// Opens `dir/packets.flash` (the single packets' store) as [`FileFlash::open`]
    /// does `config.flash`.
    pub fn open_packets(dir: &Path, replace: bool) -> Result<FileFlash, OpenError> {
        FileFlash::open_named(dir, PACKET_FILE_NAME, PACKET_CAPACITY, replace)
    }

    /// Opens `dir/replay.flash` (the single packets' replay record) as
    /// [`FileFlash::open`] does `config.flash`.
    pub fn open_replay(dir: &Path, replace: bool) -> Result<FileFlash, OpenError> {
        FileFlash::open_named(dir, REPLAY_FILE_NAME, REPLAY_CAPACITY, replace)
    }

    /// An erased flash of `capacity` bytes in memory (nothing survives the process).
    pub fn memory(capacity: u32) -> FileFlash {
        FileFlash {
            backing: Backing::Memory(vec![0xFF; capacity as usize]),
            capacity,
        }
    }

    fn open_named(
        dir: &Path,
        name: &str,
        capacity: u32,
        replace: bool,
    ) -> Result<FileFlash, OpenError> {
        let path = dir.join(name);
        match std::fs::metadata(&path) {
            Ok(meta) if meta.len() == u64::from(capacity) => {}
            Ok(meta) if !replace => {
                return Err(OpenError::WrongSize {
                    path,
                    len: meta.len(),
                    expected: capacity,
                })
            }
            Ok(_) => create_erased(dir, &path, capacity).map_err(|err| naming(&path, err))?,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                create_erased(dir, &path, capacity).map_err(|err| naming(&path, err))?
            }
            Err(err) => return Err(naming(&path, err).into()),
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|err| naming(&path, err))?;
        Ok(FileFlash {
            backing: Backing::File(file),
            capacity,
        })
    }

    fn read_at(&mut self, bytes: &mut [u8], at: u32) -> io::Result<()> {
        match &mut self.backing {
            Backing::File(file) => file.read_exact_at(bytes, u64::from(at)),
            Backing::Memory(cells) => {
                let at = at as usize;
                let src = cells
                    .get(at..at + bytes.len())
                    .ok_or(io::ErrorKind::UnexpectedEof)?;
                bytes.copy_from_slice(src);
                Ok(())
            }
        }
    }

    /// Writes `bytes` at `at` and makes them durable.
    fn write_at(&mut self, bytes: &[u8], at: u32) -> io::Result<()> {
        match &mut self.backing {
            Backing::File(file) => {
                file.write_all_at(bytes, u64::from(at))?;
                file.sync_data()
            }
            Backing::Memory(cells) => {
                let at = at as usize;
                let dest = cells
                    .get_mut(at..at + bytes.len())
                    .ok_or(io::ErrorKind::UnexpectedEof)?;
                dest.copy_from_slice(bytes);
                Ok(())
            }
        }
    }
}

/// Writes an erased flash file of `capacity` bytes at `path`, atomically.
fn create_erased(dir: &Path, path: &Path, capacity: u32) -> io::Result<()> {
    let new = path.with_extension("flash.new");
    let file = File::create(&new).map_err(|err| naming(&new, err))?;
    file.write_all_at(&vec![0xFF; capacity as usize], 0)?;
    file.sync_all()?;
    std::fs::rename(&new, path)?;
    // Make the directory entry durable too.
    File::open(dir)?.sync_all()
}

impl ErrorType for FileFlash {
    type Error = FileFlashError;
}

impl ReadNorFlash for FileFlash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FileFlashError> {
        check_read(self, offset, bytes.len()).map_err(FileFlashError::Access)?;
        self.read_at(bytes, offset)?;
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.capacity as usize
    }
}

impl NorFlash for FileFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 4096;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), FileFlashError> {
        check_erase(self, from, to).map_err(FileFlashError::Access)?;
        let len = usize::try_from(to - from).map_err(io::Error::other)?;
        self.write_at(&vec![0xFF; len], from)?;
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FileFlashError> {
        check_write(self, offset, bytes.len()).map_err(FileFlashError::Access)?;
        let mut cells = vec![0u8; bytes.len()];
        self.read_at(&mut cells, offset)?;
        for (cell, byte) in cells.iter_mut().zip(bytes) {
            *cell &= byte;
        }
        self.write_at(&cells, offset)?;
        Ok(())
    }
}

/// The port's store: the configuration in [`FlashStore`] over [`FileFlash`] with
/// `--state DIR`, memory without (a reboot of the device keeps what was saved; the
/// process does not), and the blobs in [`FlashBlobs`] over `DIR/blobs.flash` (memory
/// without `--state`).
pub struct DesktopStore {
    config: ConfigSide,
    blobs: FlashBlobs<FileFlash>,
    packets: Packets,
}

/// The single packets: the store in `DIR/packets.flash`, the replay record in
/// `DIR/replay.flash`, firmware images in `DIR/firmware.bin` (memory without `--state`).
pub type Packets = FlashPackets<FileFlash, FileFlash, FileFirmware>;

fn packets(store: FileFlash, replay: FileFlash, firmware: FileFirmware) -> io::Result<Packets> {
    let guard = ReplayGuard::new(replay, 0..REPLAY_CAPACITY).map_err(io::Error::other)?;
    FlashPackets::new(store, 0..PACKET_CAPACITY, guard, Some(firmware)).map_err(io::Error::other)
}

/// The desktop's firmware slot: the image is written to `DIR/firmware.bin.new`, checked,
/// and renamed `DIR/firmware.bin` when marked bootable (what a bootloader would take at
/// the next start; the desktop only logs its size and CRC). Memory without `--state`.
#[derive(Debug)]
pub struct FileFirmware {
    dir: Option<PathBuf>,
    /// The image being written, without `--state`.
    memory: Vec<u8>,
    /// The image checked by [`FirmwareSink::verify`], not written since.
    verified: Option<Image>,
}

impl FileFirmware {
    /// The slot in `dir` (memory for `None`).
    pub fn new(dir: Option<&Path>) -> FileFirmware {
        FileFirmware {
            dir: dir.map(Path::to_path_buf),
            memory: Vec::new(),
            verified: None,
        }
    }

    fn staged(dir: &Path) -> PathBuf {
        dir.join(format!("{FIRMWARE_FILE_NAME}.new"))
    }

    fn image(&self, len: u32) -> io::Result<Vec<u8>> {
        match &self.dir {
            Some(dir) => {
                let mut image = std::fs::read(Self::staged(dir))?;
                if image.len() < len as usize {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                image.truncate(len as usize);
                Ok(image)
            }
            None => self
                .memory
                .get(..len as usize)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| io::ErrorKind::UnexpectedEof.into()),
        }
    }
}

fn flash_error(err: io::Error) -> firmware::ErrorKind {
    log::warn!("firmware slot: {err}");
    firmware::ErrorKind::Flash
}

impl firmware::ErrorType for FileFirmware {
    type Error = firmware::ErrorKind;
}

impl FirmwareSink for FileFirmware {
    fn capacity(&self) -> u32 {
        PACKET_CAPACITY
    }

    fn begin(&mut self) -> Result<(), firmware::ErrorKind> {
        self.verified = None;
        self.memory.clear();
        if let Some(dir) = &self.dir {
            // The bootable mark retracted first: the previous image is no longer taken.
            match std::fs::remove_file(dir.join(FIRMWARE_FILE_NAME)) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(flash_error(err)),
                _ => {}
            }
            File::create(Self::staged(dir)).map_err(flash_error)?;
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), firmware::ErrorKind> {
        let end = offset as usize + data.len();
        if end > PACKET_CAPACITY as usize {
            return Err(firmware::ErrorKind::TooLarge);
        }
        self.verified = None;
        match &self.dir {
            Some(dir) => {
                let file = OpenOptions::new()
                    .write(true)
                    .open(Self::staged(dir))
                    .map_err(flash_error)?;
                file.write_all_at(data, u64::from(offset))
                    .map_err(flash_error)
            }
            None => {
                if self.memory.len() < end {
                    self.memory.resize(end, 0xFF);
                }
                self.memory[offset as usize..end].copy_from_slice(data);
                Ok(())
            }
        }
    }

    fn verify(&mut self, len: u32, crc: u32) -> Result<(), firmware::ErrorKind> {
        let image = self.image(len).map_err(flash_error)?;
        if lwm2m_core::crypto::crc32(&image, None) != crc {
            return Err(firmware::ErrorKind::Crc);
        }
        self.verified = Some(Image { len, crc });
        Ok(())
    }

    fn mark_bootable(&mut self) -> Result<(), firmware::ErrorKind> {
        let image = self.verified.take().ok_or(firmware::ErrorKind::Sequence)?;
        if let Some(dir) = &self.dir {
            let staged = Self::staged(dir);
            OpenOptions::new()
                .write(true)
                .open(&staged)
                .and_then(|file| {
                    file.set_len(u64::from(image.len))?;
                    file.sync_all()
                })
                .map_err(flash_error)?;
            std::fs::rename(&staged, dir.join(FIRMWARE_FILE_NAME)).map_err(flash_error)?;
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(flash_error)?;
        }
        log::info!(
            "firmware image: {} bytes, CRC 0x{:08x}",
            image.len,
            image.crc
        );
        Ok(())
    }
}

enum ConfigSide {
    /// No state directory: the last saved configuration, until the process ends.
    Ram(Option<Box<Config>>),
    /// `DIR/config.flash`.
    File(Box<FlashStore<FileFlash>>),
}

impl DesktopStore {
    /// The store of `--state DIR` (the flash files are created on first use), RAM only
    /// for `None`. `replace`: recreate a flash file of the wrong size
    /// ([`FileFlash::open`]).
    pub fn open(state: Option<&Path>, replace: bool) -> Result<DesktopStore, OpenError> {
        let blobs = |flash| FlashBlobs::new(flash, BLOB_REGIONS).map_err(io::Error::other);
        let Some(dir) = state else {
            return Ok(DesktopStore {
                config: ConfigSide::Ram(None),
                blobs: blobs(FileFlash::memory(BLOB_CAPACITY))?,
                packets: packets(
                    FileFlash::memory(PACKET_CAPACITY),
                    FileFlash::memory(REPLAY_CAPACITY),
                    FileFirmware::new(None),
                )?,
            });
        };
        std::fs::create_dir_all(dir).map_err(|err| naming(dir, err))?;
        let store = FlashStore::new(FileFlash::open(dir, replace)?, 0..CAPACITY)
            .map_err(io::Error::other)?;
        Ok(DesktopStore {
            config: ConfigSide::File(Box::new(store)),
            blobs: blobs(FileFlash::open_blobs(dir, replace)?)?,
            packets: packets(
                FileFlash::open_packets(dir, replace)?,
                FileFlash::open_replay(dir, replace)?,
                FileFirmware::new(Some(dir)),
            )?,
        })
    }

    /// The blobs: the certificates and the JVM code the client sent.
    pub fn blobs(&mut self) -> &mut FlashBlobs<FileFlash> {
        &mut self.blobs
    }
}

impl ConfigStore for DesktopStore {
    fn load(&mut self) -> Result<Loaded, StoreError> {
        match &mut self.config {
            ConfigSide::Ram(saved) => Ok(saved
                .as_deref()
                .cloned()
                .map_or(Loaded::Blank, Loaded::Config)),
            ConfigSide::File(store) => store.load(),
        }
    }

    fn save(&mut self, config: &Config) -> Result<(), StoreError> {
        match &mut self.config {
            ConfigSide::Ram(saved) => {
                *saved = Some(Box::new(config.clone()));
                Ok(())
            }
            ConfigSide::File(store) => store.save(config),
        }
    }

    fn append_blob(&mut self, blob: BlobId, data: &[u8]) -> Result<(), StoreError> {
        self.blobs.append(blob, data)
    }

    fn clear_blob(&mut self, blob: BlobId) -> Result<(), StoreError> {
        self.blobs.clear(blob)
    }

    fn packets(&mut self) -> Option<&mut dyn PacketStorage> {
        Some(&mut self.packets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lwm2m_core::config::Profile;
    use lwm2m_core::storage::flash_size_needed;
    use std::path::PathBuf;

    /// A fresh directory under the system temp dir, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let dir = std::env::temp_dir().join(format!(
                "lwm2m-port-linux-{tag}-{}-{nanos}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn config(n: u16) -> Config {
        let mut config = Config {
            inactivity_secs: 300 + n,
            ..Config::default()
        };
        config.profiles.push(Profile::new(1, b"user1")).unwrap();
        config.set_setting(1024, 9, b"Demo").unwrap();
        config
    }

    #[test]
    fn the_file_is_large_enough_for_any_configuration() {
        assert!(flash_size_needed::<FileFlash>() <= CAPACITY);
    }

    #[test]
    fn blobs_survive_reopening_the_files() {
        let dir = TempDir::new("blobs");
        let cert: Vec<u8> = (0..1000u32).map(|i| b'A' + (i % 26) as u8).collect();
        let mut store = DesktopStore::open(Some(&dir.0), false).unwrap();
        for chunk in cert.chunks(blobs::CHUNK) {
            store.append_blob(blobs::BROKER_CERTIFICATE, chunk).unwrap();
        }
        store.append_blob(blobs::JVM_CODE, b"code").unwrap();
        drop(store);
        assert_eq!(
            std::fs::metadata(dir.0.join(BLOB_FILE_NAME)).unwrap().len(),
            u64::from(BLOB_CAPACITY)
        );
        let mut store = DesktopStore::open(Some(&dir.0), false).unwrap();
        let mut out = vec![0u8; 2000];
        let n = store
            .blobs()
            .read(blobs::BROKER_CERTIFICATE, 0, &mut out)
            .unwrap();
        assert_eq!(&out[..n], &cert[..]);
        assert_eq!(store.blobs().stored_len(blobs::JVM_CODE).unwrap(), 4);
        store.clear_blob(blobs::JVM_CODE).unwrap();
        drop(store);
        let mut store = DesktopStore::open(Some(&dir.0), false).unwrap();
        assert_eq!(store.blobs().stored_len(blobs::JVM_CODE).unwrap(), 0);
        // The declared sizes fit their regions.
        for chunk in vec![0x30u8; blobs::JVM_CODE_BYTES].chunks(blobs::CHUNK) {
            store.append_blob(blobs::JVM_CODE, chunk).unwrap();
        }
        // Without --state, blobs live as long as the process.
        let mut ram = DesktopStore::open(None, false).unwrap();
        ram.append_blob(blobs::CERTIFICATE_PUBLIC_KEY, b"pem")
            .unwrap();
        assert_eq!(
            ram.blobs()
                .stored_len(blobs::CERTIFICATE_PUBLIC_KEY)
                .unwrap(),
            3
        );
    }

    #[test]
    fn a_saved_configuration_survives_reopening_the_file() {
        let dir = TempDir::new("reopen");
        let mut store: FlashStore<FileFlash> =
            FlashStore::new(FileFlash::open(&dir.0, false).unwrap(), 0..CAPACITY).unwrap();
        assert_eq!(store.load().unwrap(), Loaded::Blank, "a new file is erased");
        store.save(&config(1)).unwrap();
        drop(store);
        assert_eq!(
            std::fs::metadata(dir.0.join(FILE_NAME)).unwrap().len(),
            u64::from(CAPACITY)
        );

        let mut store: FlashStore<FileFlash> =
            FlashStore::new(FileFlash::open(&dir.0, false).unwrap(), 0..CAPACITY).unwrap();
        assert_eq!(store.load().unwrap(), Loaded::Config(config(1)));
        store.save(&config(2)).unwrap();
        store.save(&config(3)).unwrap();
        drop(store);

        let mut store = DesktopStore::open(Some(&dir.0), false).unwrap();
        assert_eq!(store.load().unwrap(), Loaded::Config(config(3)));
        store.save(&config(4)).unwrap();
        drop(store);
        let mut store = DesktopStore::open(Some(&dir.0), false).unwrap();
        assert_eq!(store.load().unwrap(), Loaded::Config(config(4)));
    }

    #[test]
    fn the_file_behaves_like_nor_flash() {
        let dir = TempDir::new("nor");
        let mut flash = FileFlash::open(&dir.0, false).unwrap();
        let mut buf = [0u8; 8];
        flash.read(4096, &mut buf).unwrap();
        assert_eq!(buf, [0xFF; 8]);
        flash.write(4096, &[0x0F, 0xF0, 0x55, 0xAA]).unwrap();
        // A write only clears bits.
        flash.write(4096, &[0xF3, 0x3F, 0xFF, 0x00]).unwrap();
        flash.read(4096, &mut buf).unwrap();
        assert_eq!(buf, [0x03, 0x30, 0x55, 0x00, 0xFF, 0xFF, 0xFF, 0xFF]);
        // Misaligned or out-of-bounds accesses are refused.
        let kind = |r: Result<(), FileFlashError>| r.unwrap_err().kind();
        assert_eq!(
            kind(flash.write(4097, &[0; 4])),
            NorFlashErrorKind::NotAligned
        );
        assert_eq!(
            kind(flash.write(4096, &[0; 3])),
            NorFlashErrorKind::NotAligned
        );
        assert_eq!(kind(flash.erase(100, 4096)), NorFlashErrorKind::NotAligned);
        assert_eq!(
            kind(flash.erase(0, CAPACITY + 4096)),
            NorFlashErrorKind::OutOfBounds
        );
        assert_eq!(
            kind(flash.read(CAPACITY - 4, &mut buf)),
            NorFlashErrorKind::OutOfBounds
        );
        // Erase sets the whole sector back to 0xFF, and only that sector.
        flash.write(8192, &[0; 4]).unwrap();
        flash.erase(4096, 8192).unwrap();
        flash.read(4096, &mut buf).unwrap();
        assert_eq!(buf, [0xFF; 8]);
        flash.read(8192, &mut buf[..4]).unwrap();
        assert_eq!(buf[..4], [0; 4]);
    }

    #[test]
    fn a_file_of_another_size_is_refused_unless_replaced() {
        let dir = TempDir::new("size");
        let path = dir.0.join(FILE_NAME);
        for len in [0, 100, CAPACITY as usize + 1] {
            std::fs::write(&path, vec![0xFF; len]).unwrap();
            match FileFlash::open(&dir.0, false) {
                Err(OpenError::WrongSize { len: found, .. }) => assert_eq!(found, len as u64),
                other => panic!("{len} bytes: {other:?}"),
            }
            assert_eq!(
                std::fs::metadata(&path).unwrap().len(),
                len as u64,
                "untouched"
            );
        }
        let mut flash = FileFlash::open(&dir.0, true).unwrap();
        let mut last = [0u8; 4];
        flash.read(CAPACITY - 4, &mut last).unwrap();
        assert_eq!(last, [0xFF; 4]);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), u64::from(CAPACITY));
        assert!(!dir.0.join("config.flash.new").exists());
    }

    #[test]
    fn errors_name_the_path() {
        let dir = TempDir::new("paths");
        let not_a_dir = dir.0.join("file");
        std::fs::write(&not_a_dir, b"x").unwrap();
        let state = not_a_dir.join("state");
        let err = DesktopStore::open(Some(&state), false).err().unwrap();
        assert!(
            err.to_string().contains(&state.display().to_string()),
            "{err}"
        );
        // config.flash itself unusable: a directory in its place.
        std::fs::create_dir_all(dir.0.join("s").join(FILE_NAME)).unwrap();
        let err = FileFlash::open(&dir.0.join("s"), false).err().unwrap();
        let file = dir.0.join("s").join(FILE_NAME);
        assert!(
            err.to_string().contains(&file.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn without_a_state_directory_only_the_process_keeps_it() {
        let mut store = DesktopStore::open(None, false).unwrap();
        assert_eq!(store.load().unwrap(), Loaded::Blank);
        store.save(&config(1)).unwrap();
        assert_eq!(store.load().unwrap(), Loaded::Config(config(1)));
        // A new process starts from nothing.
        assert_eq!(
            DesktopStore::open(None, false).unwrap().load().unwrap(),
            Loaded::Blank
        );
    }
}
