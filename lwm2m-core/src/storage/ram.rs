//! A NOR flash emulated in RAM ([`RamFlash`]): for a board whose flash the store cannot
//! use (a QEMU machine that runs its code from RAM, a flash kept for the firmware), and
//! for tests.

use embedded_storage::nor_flash::{
    check_erase, check_read, check_write, ErrorType, NorFlash, NorFlashErrorKind, ReadNorFlash,
};

/// A NOR flash over `cells`, behaving as one does: sectors of `ERASE` bytes erased to
/// `FF`, word (4-byte) writes that only clear bits. What it holds lasts as long as the RAM
/// does: a configuration saved in it survives a restart of the device, not a power cut.
pub struct RamFlash<'a, const ERASE: usize> {
    cells: &'a mut [u8],
}

impl<'a, const ERASE: usize> RamFlash<'a, ERASE> {
    /// The flash over `cells`, erased (whole sectors only are usable by the store:
    /// [`super::flash_size_needed`] says how many bytes it needs).
    pub fn new(cells: &'a mut [u8]) -> Self {
        cells.fill(0xFF);
        RamFlash { cells }
    }

    /// The flash over `cells` as they are: what a previous run left in them (a RAM that
    /// kept its content across a restart, a test's damaged image), or cells the caller
    /// erased itself.
    pub fn from_cells(cells: &'a mut [u8]) -> Self {
        RamFlash { cells }
    }

    /// The cells back, as the flash left them.
    pub fn into_cells(self) -> &'a mut [u8] {
        self.cells
    }

    fn cells(&mut self, offset: u32, len: usize) -> Result<&mut [u8], NorFlashErrorKind> {
        let at = usize::try_from(offset).map_err(|_| NorFlashErrorKind::OutOfBounds)?;
        let end = at.checked_add(len).ok_or(NorFlashErrorKind::OutOfBounds)?;
        self.cells
            .get_mut(at..end)
            .ok_or(NorFlashErrorKind::OutOfBounds)
    }
}

impl<const ERASE: usize> ErrorType for RamFlash<'_, ERASE> {
    type Error = NorFlashErrorKind;
}

impl<const ERASE: usize> ReadNorFlash for RamFlash<'_, ERASE> {
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

impl<const ERASE: usize> NorFlash for RamFlash<'_, ERASE> {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = ERASE;

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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::storage::{flash_size_needed, ConfigStore, FlashStore, LoadState};

    #[test]
    fn it_behaves_as_a_nor_flash_and_carries_a_store() {
        let mut cells = [0u8; 64];
        let mut flash = RamFlash::<16>::new(&mut cells);
        flash.write(4, &[0x0F, 0xF0, 0xAA, 0x55]).unwrap();
        // Writes only clear bits.
        flash.write(4, &[0xFF, 0x0F, 0xFF, 0xFF]).unwrap();
        let mut got = [0u8; 4];
        flash.read(4, &mut got).unwrap();
        assert_eq!(got, [0x0F, 0x00, 0xAA, 0x55]);
        // Misaligned writes and erases, and out of bounds, are refused.
        assert!(flash.write(2, &[0; 4]).is_err());
        assert!(flash.erase(0, 8).is_err());
        assert!(flash.read(62, &mut got).is_err());
        flash.erase(0, 16).unwrap();
        flash.read(4, &mut got).unwrap();
        assert_eq!(got, [0xFF; 4]);

        const LEN: usize = flash_size_needed::<RamFlash<'static, 1024>>() as usize;
        let mut cells = vec![0u8; LEN];
        let mut store = FlashStore::new(RamFlash::<1024>::new(&mut cells), 0..LEN as u32).unwrap();
        let config = Config {
            version: 7,
            ..Config::default()
        };
        store.save(&config).unwrap();
        let mut loaded = Config::default();
        assert_eq!(store.load_into(&mut loaded), Ok(LoadState::Config));
        assert_eq!(loaded.version, 7);
    }
}
