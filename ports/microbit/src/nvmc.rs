//! The configuration store's flash: the last six 1 KiB pages of the nRF51's flash,
//! written and erased through its NVMC, as an `embedded-storage` `NorFlash`.
//!
//! Registers (nRF51 Series Reference Manual, "NVMC"): `READY` (+0x400: 1 once an
//! operation is done), `CONFIG` (+0x504: 0 read only, 1 write enabled, 2 erase
//! enabled), `ERASEPAGE` (+0x508: the address of the page to erase). Flash is written
//! a 32-bit word at a time (bits go from 1 to 0 only), read as memory. The pages are
//! reserved by `memory.x` (region `CONFIG`) and left out of the firmware image:
//! flashing an update keeps the configuration, and a new device's pages are erased.

use core::ptr::{addr_of, read_volatile, write_volatile};

use embedded_storage::nor_flash::{ErrorType, NorFlash, NorFlashErrorKind, ReadNorFlash};

const NVMC: usize = 0x4001_E000;
const READY: usize = NVMC + 0x400;
const CONFIG: usize = NVMC + 0x504;
const ERASEPAGE: usize = NVMC + 0x508;

const CONFIG_READ: u32 = 0;
const CONFIG_WRITE: u32 = 1;
const CONFIG_ERASE: u32 = 2;

/// The nRF51's flash page.
pub const PAGE: usize = 1024;

/// Bytes of the region `CONFIG` of `memory.x`, which reserves the pages (checked at boot
/// against the linker's bounds, [`Nvmc::take`]).
const REGION_LEN: usize = 6 * PAGE;

/// Bytes of the store's flash: what the configuration store needs (two slots of whole
/// pages) for the capacities of this build, which must fit the region.
pub const LEN: usize = lwm2m_core::storage::flash_size_needed::<Nvmc>() as usize;

const _: () = assert!(
    LEN <= REGION_LEN,
    "the configuration store needs more flash than memory.x reserves (region CONFIG)"
);

extern "C" {
    /// The first byte of the pages (`memory.x`).
    static __config_flash_start: u8;
    /// The byte after the pages (`memory.x`).
    static __config_flash_end: u8;
}

/// The store's flash, through the NVMC.
pub struct Nvmc {
    _owned: (),
}

impl Nvmc {
    /// The NVMC, over the pages `memory.x` reserves; `None` if the region `CONFIG` is not
    /// the one this driver was written for ([`REGION_LEN`] bytes, page-aligned).
    ///
    /// # Safety
    ///
    /// Only one `Nvmc` exists, and nothing else writes to the NVMC or to the pages.
    pub unsafe fn take() -> Option<Nvmc> {
        let (start, end) = (start(), addr_of!(__config_flash_end) as usize);
        (start.is_multiple_of(PAGE) && end.checked_sub(start) == Some(REGION_LEN))
            .then_some(Nvmc { _owned: () })
    }

    /// The address of the byte `offset` of the pages.
    fn address(offset: usize) -> usize {
        start() + offset
    }

    /// Runs `operation` with the NVMC configured `mode`, waiting for each step.
    fn with_mode(mode: u32, operation: impl FnOnce()) {
        // SAFETY: NVMC registers of the nRF51; only this driver touches them.
        unsafe { write_volatile(CONFIG as *mut u32, mode) };
        wait_ready();
        operation();
        // SAFETY: as above.
        unsafe { write_volatile(CONFIG as *mut u32, CONFIG_READ) };
        wait_ready();
    }
}

/// The address of the first page.
fn start() -> usize {
    addr_of!(__config_flash_start) as usize
}

/// Waits until the NVMC finished its operation.
fn wait_ready() {
    // SAFETY: the NVMC's READY register, read only.
    while unsafe { read_volatile(READY as *const u32) } & 1 == 0 {}
}

/// Whether `offset..offset + len` lies within the pages.
fn within(offset: u32, len: usize) -> Result<usize, NorFlashErrorKind> {
    let start = usize::try_from(offset).map_err(|_| NorFlashErrorKind::OutOfBounds)?;
    match start.checked_add(len) {
        Some(end) if end <= LEN => Ok(start),
        _ => Err(NorFlashErrorKind::OutOfBounds),
    }
}

impl ErrorType for Nvmc {
    type Error = NorFlashErrorKind;
}

impl ReadNorFlash for Nvmc {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        let start = within(offset, bytes.len())?;
        for (i, byte) in bytes.iter_mut().enumerate() {
            // SAFETY: within the pages (checked above); flash reads as memory.
            *byte = unsafe { read_volatile(Self::address(start + i) as *const u8) };
        }
        Ok(())
    }

    fn capacity(&self) -> usize {
        LEN
    }
}

impl NorFlash for Nvmc {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = PAGE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        let len = to.checked_sub(from).ok_or(NorFlashErrorKind::OutOfBounds)? as usize;
        let start = within(from, len)?;
        if !start.is_multiple_of(PAGE) || !len.is_multiple_of(PAGE) {
            return Err(NorFlashErrorKind::NotAligned);
        }
        Self::with_mode(CONFIG_ERASE, || {
            for page in (start..start + len).step_by(PAGE) {
                // SAFETY: ERASEPAGE takes the address of a page of the store (checked
                // above), erasing is enabled.
                unsafe { write_volatile(ERASEPAGE as *mut u32, Self::address(page) as u32) };
                wait_ready();
            }
        });
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        let start = within(offset, bytes.len())?;
        if !start.is_multiple_of(Self::WRITE_SIZE) || !bytes.len().is_multiple_of(Self::WRITE_SIZE)
        {
            return Err(NorFlashErrorKind::NotAligned);
        }
        Self::with_mode(CONFIG_WRITE, || {
            for (i, word) in bytes.chunks_exact(4).enumerate() {
                let Ok(word) = <[u8; 4]>::try_from(word) else {
                    break;
                };
                let word = u32::from_le_bytes(word);
                // SAFETY: a word-aligned word of the pages (checked above), writing is
                // enabled.
                unsafe { write_volatile(Self::address(start + 4 * i) as *mut u32, word) };
                wait_ready();
            }
        });
        Ok(())
    }
}
