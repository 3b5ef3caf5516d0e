//! A NOR flash emulated in RAM, for the configuration store. It behaves as the nRF51's
//! flash does: 1 KiB pages erased to `FF`, word writes that only clear bits. Its
//! contents last until power-off, so the configuration survives a reboot of the
//! device, not of the board. (The same as `ports/mps2-an386/src/flash.rs` but for the
//! page size.)

use embedded_storage::nor_flash::{
    check_erase, check_read, check_write, ErrorType, NorFlash, NorFlashErrorKind, ReadNorFlash,
};

/// The emulated flash over `cells`.
pub struct RamFlash {
    cells: &'static mut [u8],
}

impl RamFlash {
    /// The flash over `cells`, erased.
    pub fn new(cells: &'static mut [u8]) -> Self {
        cells.fill(0xFF);
        RamFlash { cells }
    }

    fn cells(&mut self, offset: u32, len: usize) -> Result<&mut [u8], NorFlashErrorKind> {
        let at = usize::try_from(offset).map_err(|_| NorFlashErrorKind::OutOfBounds)?;
        let end = at.checked_add(len).ok_or(NorFlashErrorKind::OutOfBounds)?;
        self.cells
            .get_mut(at..end)
            .ok_or(NorFlashErrorKind::OutOfBounds)
    }
}

impl ErrorType for RamFlash {
    type Error = NorFlashErrorKind;
}

impl ReadNorFlash for RamFlash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        check_read(self, offset, bytes.len())?;
        bytes.copy_from_slice(self.cells(offset, bytes.len())?);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.cells.len()
    }
}

impl NorFlash for RamFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 1024;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        check_erase(self, from, to)?;
        let len = to.saturating_sub(from) as usize;
        self.cells(from, len)?.fill(0xFF);
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        check_write(self, offset, bytes.len())?;
        for (cell, byte) in self.cells(offset, bytes.len())?.iter_mut().zip(bytes) {
            *cell &= byte;
        }
        Ok(())
    }
}
