//! The desktop's "flash": a file that behaves like a NOR flash, holding the configuration
//! store (`--state DIR` keeps it in `DIR/config.flash`).
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
use lwm2m_core::storage::{ConfigStore, FlashStore, Loaded, StoreError};
use lwm2m_core::Config;

/// Name of the flash file inside the state directory.
pub const FILE_NAME: &str = "config.flash";
/// Size of the flash file: two 16 KiB slots (a configuration image needs at most 12 KiB
/// per slot with 4 KiB sectors, see [`lwm2m_core::storage::flash_size_needed`]).
pub const CAPACITY: u32 = 2 * 16 * 1024;

/// `err` with the path it is about, unless it names it already.
pub fn naming(path: &Path, err: io::Error) -> io::Error {
    let shown = path.display().to_string();
    if err.to_string().contains(&shown) {
        return err;
    }
    io::Error::new(err.kind(), format!("{shown}: {err}"))
}

/// A NOR flash emulated by a file of [`CAPACITY`] bytes (erased: `0xFF`).
#[derive(Debug)]
pub struct FileFlash {
    file: File,
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
        log::warn!("{FILE_NAME}: {err}");
        FileFlashError::Io(err)
    }
}

/// Why the flash file could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// The file or its folder could not be read, created or written (the path is named).
    Io(io::Error),
    /// The file exists with another size than [`CAPACITY`]: truncated, or not this
    /// device's flash. It is not reinterpreted (an empty file would read as a blank store
    /// and boot the factory credentials).
    WrongSize {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: u64,
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
            OpenError::WrongSize { path, len } => write!(
                f,
                "{}: {len} bytes, a flash image has {CAPACITY}",
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
        let path = dir.join(FILE_NAME);
        match std::fs::metadata(&path) {
            Ok(meta) if meta.len() == u64::from(CAPACITY) => {}
            Ok(meta) if !replace => {
                return Err(OpenError::WrongSize {
                    path,
                    len: meta.len(),
                })
            }
            Ok(_) => create_erased(dir, &path).map_err(|err| naming(&path, err))?,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                create_erased(dir, &path).map_err(|err| naming(&path, err))?
            }
            Err(err) => return Err(naming(&path, err).into()),
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|err| naming(&path, err))?;
        Ok(FileFlash { file })
    }
}

/// Writes an erased flash file of [`CAPACITY`] bytes at `path`, atomically.
fn create_erased(dir: &Path, path: &Path) -> io::Result<()> {
    let new = path.with_extension("flash.new");
    let file = File::create(&new).map_err(|err| naming(&new, err))?;
    file.write_all_at(&vec![0xFF; CAPACITY as usize], 0)?;
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
        self.file.read_exact_at(bytes, u64::from(offset))?;
        Ok(())
    }

    fn capacity(&self) -> usize {
        CAPACITY as usize
    }
}

impl NorFlash for FileFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 4096;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), FileFlashError> {
        check_erase(self, from, to).map_err(FileFlashError::Access)?;
        let len = usize::try_from(to - from).map_err(io::Error::other)?;
        self.file.write_all_at(&vec![0xFF; len], u64::from(from))?;
        self.file.sync_data()?;
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FileFlashError> {
        check_write(self, offset, bytes.len()).map_err(FileFlashError::Access)?;
        let mut cells = vec![0u8; bytes.len()];
        self.file.read_exact_at(&mut cells, u64::from(offset))?;
        for (cell, byte) in cells.iter_mut().zip(bytes) {
            *cell &= byte;
        }
        self.file.write_all_at(&cells, u64::from(offset))?;
        self.file.sync_data()?;
        Ok(())
    }
}

/// The port's configuration store: [`FlashStore`] over [`FileFlash`] with `--state DIR`,
/// memory without (a reboot of the device keeps what was saved; the process does not).
pub enum DesktopStore {
    /// No state directory: the last saved configuration, until the process ends.
    Ram(Option<Box<Config>>),
    /// `DIR/config.flash` (boxed: the store holds an image-sized buffer).
    File(Box<FlashStore<FileFlash>>),
}

impl DesktopStore {
    /// The store of `--state DIR` (the flash file is created on first use), RAM only for
    /// `None`. `replace`: recreate a flash file of the wrong size ([`FileFlash::open`]).
    pub fn open(state: Option<&Path>, replace: bool) -> Result<DesktopStore, OpenError> {
        let Some(dir) = state else {
            return Ok(DesktopStore::Ram(None));
        };
        std::fs::create_dir_all(dir).map_err(|err| naming(dir, err))?;
        let store = FlashStore::new(FileFlash::open(dir, replace)?, 0..CAPACITY)
            .map_err(io::Error::other)?;
        Ok(DesktopStore::File(Box::new(store)))
    }
}

impl ConfigStore for DesktopStore {
    fn load(&mut self) -> Result<Loaded, StoreError> {
        match self {
            DesktopStore::Ram(saved) => Ok(saved
                .as_deref()
                .cloned()
                .map_or(Loaded::Blank, Loaded::Config)),
            DesktopStore::File(store) => store.load(),
        }
    }

    fn save(&mut self, config: &Config) -> Result<(), StoreError> {
        match self {
            DesktopStore::Ram(saved) => {
                *saved = Some(Box::new(config.clone()));
                Ok(())
            }
            DesktopStore::File(store) => store.save(config),
        }
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
