//! Where a firmware update goes (`protocol.md` §11.5, feature `packets`): the board's
//! [`FirmwareSink`] takes the image in pieces at offsets, checks the whole image's CRC,
//! and only then marks it bootable. A firmware image reaches the device only as a single
//! packet through the encrypted tunnel (§11.5 starts encryption first), hence the
//! feature.
//!
//! The errors follow embedded-hal: a sink's error type has a [`kind`](Error::kind), a
//! non-exhaustive [`ErrorKind`] generic code branches on, each mapped to the result
//! code the device answers ([`ErrorKind::result_code`]).
//!
//! # What a sink must guarantee
//!
//! - **Nothing half-written boots.** [`begin`](FirmwareSink::begin) retracts any bootable
//!   mark of the area it will write *before* the first write;
//!   [`mark_bootable`](FirmwareSink::mark_bootable) succeeds only for an image
//!   [`verify`](FirmwareSink::verify) found right, with no write since. A power cut at
//!   any point of a transfer leaves the image unmarked (the mark is the last thing
//!   written, and a board's mark is itself power-cut safe: one word, or a CRC'd record).
//! - **The running firmware is never written** (the sink's area is another slot).
//!
//! [`RamFirmware`] is a sink in RAM, for tests and simulated boards.

use crate::crypto::crc32;
use crate::wire::ResultCode;

/// What went wrong in a [`FirmwareSink`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ErrorKind {
    /// Writing, erasing or reading the image's flash failed (`A4` NVM_ERROR, which the
    /// client retries for chunk writes).
    Flash,
    /// The image does not fit the sink (`A7` NVM_FULL).
    TooLarge,
    /// The image's CRC is not the one given (`86` NOT_ACCEPTABLE, as a wrong execute CRC).
    Crc,
    /// Out of order: a write before [`FirmwareSink::begin`], a mark before a successful
    /// [`FirmwareSink::verify`] (`A0`: the engine's sequence, not the client's bytes).
    Sequence,
    /// Anything else (`A0` INTERNAL_SERVER_ERROR).
    Other,
}

impl ErrorKind {
    /// The result code a device answers for this error.
    pub const fn result_code(self) -> ResultCode {
        match self {
            ErrorKind::Flash => ResultCode::NvmError,
            ErrorKind::TooLarge => ResultCode::NvmFull,
            ErrorKind::Crc => ResultCode::NotAcceptable,
            ErrorKind::Sequence | ErrorKind::Other => ResultCode::InternalServerError,
        }
    }
}

/// A firmware sink's error.
pub trait Error: core::fmt::Debug {
    /// The generic kind of this error.
    fn kind(&self) -> ErrorKind;
}

impl Error for ErrorKind {
    fn kind(&self) -> ErrorKind {
        *self
    }
}

/// The error type of a firmware sink.
pub trait ErrorType {
    /// Error type.
    type Error: Error;
}

impl<T: ErrorType + ?Sized> ErrorType for &mut T {
    type Error = T::Error;
}

/// A board's slot for a new firmware image (see the module for what it must guarantee).
pub trait FirmwareSink: ErrorType {
    /// Bytes the slot holds.
    fn capacity(&self) -> u32;

    /// Starts a new image: retracts any bootable mark of the slot first, then prepares it
    /// (erases it, for a flash). Whatever was written before is forgotten.
    fn begin(&mut self) -> Result<(), Self::Error>;

    /// Writes `data` at `offset` of the image (after [`begin`](FirmwareSink::begin);
    /// [`ErrorKind::TooLarge`] past the slot's end). Any write forgets a verification.
    fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), Self::Error>;

    /// Checks that the image's first `len` bytes have the CRC `crc` (§7.1, CRC-32/MPEG-2,
    /// as the execute CRC): [`ErrorKind::Crc`] otherwise.
    fn verify(&mut self, len: u32, crc: u32) -> Result<(), Self::Error>;

    /// Marks the image [`verify`](FirmwareSink::verify) found right bootable: the
    /// bootloader takes it at the next reset. [`ErrorKind::Sequence`] if it was not
    /// verified, or written since.
    fn mark_bootable(&mut self) -> Result<(), Self::Error>;
}

impl<T: FirmwareSink + ?Sized> FirmwareSink for &mut T {
    fn capacity(&self) -> u32 {
        T::capacity(self)
    }

    fn begin(&mut self) -> Result<(), Self::Error> {
        T::begin(self)
    }

    fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), Self::Error> {
        T::write(self, offset, data)
    }

    fn verify(&mut self, len: u32, crc: u32) -> Result<(), Self::Error> {
        T::verify(self, len, crc)
    }

    fn mark_bootable(&mut self) -> Result<(), Self::Error> {
        T::mark_bootable(self)
    }
}

/// An image: its length and CRC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Image {
    /// Bytes.
    pub len: u32,
    /// CRC-32/MPEG-2 of them (§7.1).
    pub crc: u32,
}

/// Where a transfer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// No transfer (after a restart too).
    Idle,
    /// Written since [`FirmwareSink::begin`] or the last verification.
    Writing,
    /// Verified, not written since.
    Verified(Image),
}

/// A firmware slot in RAM: what a test or a simulated board uses. What lasts across a
/// simulated restart is what a flash slot keeps: the cells and the bootable mark
/// ([`RamFirmware::into_parts`], [`RamFirmware::from_parts`]); a transfer in progress or
/// a verification does not.
#[derive(Debug)]
pub struct RamFirmware<'a> {
    cells: &'a mut [u8],
    stage: Stage,
    bootable: Option<Image>,
}

impl<'a> RamFirmware<'a> {
    /// A slot over `cells`, nothing bootable.
    pub fn new(cells: &'a mut [u8]) -> Self {
        RamFirmware::from_parts(cells, None)
    }

    /// The slot after a restart: its cells and its bootable mark as they were.
    pub fn from_parts(cells: &'a mut [u8], bootable: Option<Image>) -> Self {
        RamFirmware {
            cells,
            stage: Stage::Idle,
            bootable,
        }
    }

    /// The cells and the bootable mark: what survives a restart.
    pub fn into_parts(self) -> (&'a mut [u8], Option<Image>) {
        (self.cells, self.bootable)
    }

    /// The image marked bootable, if any.
    pub fn bootable(&self) -> Option<Image> {
        self.bootable
    }

    /// The slot's bytes.
    pub fn cells(&self) -> &[u8] {
        self.cells
    }
}

impl ErrorType for RamFirmware<'_> {
    type Error = ErrorKind;
}

impl FirmwareSink for RamFirmware<'_> {
    fn capacity(&self) -> u32 {
        u32::try_from(self.cells.len()).unwrap_or(u32::MAX)
    }

    fn begin(&mut self) -> Result<(), ErrorKind> {
        self.bootable = None;
        self.cells.fill(0xFF);
        self.stage = Stage::Writing;
        Ok(())
    }

    fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), ErrorKind> {
        if self.stage == Stage::Idle {
            return Err(ErrorKind::Sequence);
        }
        let at = usize::try_from(offset).map_err(|_| ErrorKind::TooLarge)?;
        let end = at.checked_add(data.len()).ok_or(ErrorKind::TooLarge)?;
        let cells = self.cells.get_mut(at..end).ok_or(ErrorKind::TooLarge)?;
        self.stage = Stage::Writing;
        cells.copy_from_slice(data);
        Ok(())
    }

    fn verify(&mut self, len: u32, crc: u32) -> Result<(), ErrorKind> {
        if self.stage == Stage::Idle {
            return Err(ErrorKind::Sequence);
        }
        let end = usize::try_from(len).map_err(|_| ErrorKind::TooLarge)?;
        let image = self.cells.get(..end).ok_or(ErrorKind::TooLarge)?;
        if crc32(image, None) != crc {
            self.stage = Stage::Writing;
            return Err(ErrorKind::Crc);
        }
        self.stage = Stage::Verified(Image { len, crc });
        Ok(())
    }

    fn mark_bootable(&mut self) -> Result<(), ErrorKind> {
        let Stage::Verified(image) = self.stage else {
            return Err(ErrorKind::Sequence);
        };
        self.bootable = Some(image);
        self.stage = Stage::Idle;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    fn image() -> Vec<u8> {
        (0..200u32).map(|i| (i * 13) as u8).collect()
    }

    /// Loads `image` in 48-byte pieces, the last one cut after `pieces` of them.
    fn load(sink: &mut impl FirmwareSink, image: &[u8], pieces: usize) {
        sink.begin().unwrap();
        for (i, piece) in image.chunks(48).enumerate().take(pieces) {
            sink.write((i * 48) as u32, piece).unwrap();
        }
    }

    #[test]
    fn a_verified_image_is_marked_bootable() {
        let mut cells = [0u8; 256];
        let mut sink = RamFirmware::new(&mut cells);
        let image = image();
        let crc = crc32(&image, None);
        load(&mut sink, &image, usize::MAX);
        sink.verify(200, crc).unwrap();
        sink.mark_bootable().unwrap();
        assert_eq!(sink.bootable(), Some(Image { len: 200, crc }));
        assert_eq!(sink.cells()[..200], image[..]);
        // Marked once: a second mark needs another verification.
        assert_eq!(sink.mark_bootable(), Err(ErrorKind::Sequence));
        // Through `&mut`, as the engine holds it.
        fn begin_through(mut sink: impl FirmwareSink) -> u32 {
            sink.begin().unwrap();
            sink.capacity()
        }
        assert_eq!(begin_through(&mut sink), 256);
        assert_eq!(
            sink.bootable(),
            None,
            "a new transfer retracts the mark first"
        );
    }

    #[test]
    fn a_wrong_crc_never_marks_an_image_bootable() {
        let mut cells = [0u8; 256];
        let mut sink = RamFirmware::new(&mut cells);
        let image = image();
        let crc = crc32(&image, None);
        load(&mut sink, &image, usize::MAX);
        assert_eq!(sink.verify(200, crc ^ 1), Err(ErrorKind::Crc));
        assert_eq!(sink.mark_bootable(), Err(ErrorKind::Sequence));
        assert_eq!(sink.verify(199, crc), Err(ErrorKind::Crc), "another length");
        assert_eq!(sink.mark_bootable(), Err(ErrorKind::Sequence));
        assert_eq!(sink.bootable(), None);
        assert_eq!(ErrorKind::Crc.result_code(), ResultCode::NotAcceptable);
    }

    #[test]
    fn a_write_after_the_verification_forgets_it() {
        let mut cells = [0u8; 256];
        let mut sink = RamFirmware::new(&mut cells);
        let image = image();
        load(&mut sink, &image, usize::MAX);
        sink.verify(200, crc32(&image, None)).unwrap();
        sink.write(0, &[0; 16]).unwrap();
        assert_eq!(sink.mark_bootable(), Err(ErrorKind::Sequence));
        assert_eq!(sink.bootable(), None);
    }

    #[test]
    fn an_interrupted_transfer_never_marks_an_image_bootable() {
        let image = image();
        let crc = crc32(&image, None);
        for pieces in 0..5 {
            let mut cells = [0u8; 256];
            let mut sink = RamFirmware::new(&mut cells);
            load(&mut sink, &image, pieces);
            // The power goes: the cells and the mark stay, the transfer does not.
            let (cells, bootable) = sink.into_parts();
            assert_eq!(bootable, None);
            let mut sink = RamFirmware::from_parts(cells, bootable);
            assert_eq!(sink.mark_bootable(), Err(ErrorKind::Sequence), "{pieces}");
            assert_eq!(sink.verify(200, crc), Err(ErrorKind::Sequence));
            assert_eq!(sink.write(0, &image[..16]), Err(ErrorKind::Sequence));
            assert_eq!(sink.bootable(), None);
        }
        // A transfer cut after an image was marked: the new one retracted the mark.
        let mut cells = [0u8; 256];
        let mut sink = RamFirmware::new(&mut cells);
        load(&mut sink, &image, usize::MAX);
        sink.verify(200, crc).unwrap();
        sink.mark_bootable().unwrap();
        load(&mut sink, &image, 2);
        let (cells, bootable) = sink.into_parts();
        assert_eq!(
            bootable, None,
            "half a new image over the old one never boots"
        );
        let sink = RamFirmware::from_parts(cells, bootable);
        assert_eq!(sink.bootable(), None);
    }

    #[test]
    fn writes_past_the_slot_are_refused() {
        let mut cells = [0u8; 64];
        let mut sink = RamFirmware::new(&mut cells);
        sink.begin().unwrap();
        assert_eq!(sink.write(60, &[0; 8]), Err(ErrorKind::TooLarge));
        assert_eq!(sink.write(u32::MAX, &[0; 8]), Err(ErrorKind::TooLarge));
        assert_eq!(sink.verify(65, 0), Err(ErrorKind::TooLarge));
        assert_eq!(ErrorKind::TooLarge.result_code(), ResultCode::NvmFull);
        assert_eq!(ErrorKind::Flash.kind().result_code(), ResultCode::NvmError);
    }
}
