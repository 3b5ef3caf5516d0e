//! Target-side traits for an `lwm2m-core` device: how it reaches the monitored system
//! (memory over SWD, registers over Modbus, a serial line...).
//!
//! This release defines the error vocabulary, memory access ([`MemoryAccess`]) with
//! [`RamTarget`], a simulated memory, and Modbus ([`modbus`]: the tables, the master
//! access a board provides, the meaning of a server's exceptions, the frames of any
//! master in [`modbus::frame`] and an RTU master over a serial port, [`modbus::rtu::Rtu`]),
//! a raw serial line ([`serial`]: the access a board provides and [`serial::RawSerial`],
//! the adapter over any serial port), the measure of the target's supply ([`Vcc`]), and
//! the firmware's own memory as a target ([`regions`]).
//!
//! Errors follow embedded-hal 1.0: an [`ErrorType`] whose error has a
//! [`Error::kind`]; [`ErrorKind::status_byte`] is the one place where target failures
//! become the `A5`–`BB` result codes of the wire.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod modbus;
pub mod regions;
pub mod serial;

/// What went wrong while talking to the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ErrorKind {
    /// The target could not be reached (`A5`).
    Unreachable,
    /// The target lost power (`A6`).
    PowerFailure,
    /// The protocol is busy (`B1`).
    Busy,
    /// Address or length outside what the target accepts (`B3`).
    BadParameter,
    /// The target refused the access (`B4`).
    Forbidden,
    /// Unexpected data from the target, e.g. a CRC error (`B5`).
    Data,
    /// Communication error (`B6`).
    Communication,
    /// Communication lost mid-exchange (`B7`).
    LostCommunication,
    /// The protocol does not support the operation (`BB`).
    NotImplemented,
    /// Anything else (`B0`).
    Other,
}

impl ErrorKind {
    /// The result code (status byte) a device answers for this error.
    pub const fn status_byte(self) -> u8 {
        match self {
            ErrorKind::Unreachable => 0xA5,
            ErrorKind::PowerFailure => 0xA6,
            ErrorKind::Busy => 0xB1,
            ErrorKind::BadParameter => 0xB3,
            ErrorKind::Forbidden => 0xB4,
            ErrorKind::Data => 0xB5,
            ErrorKind::Communication => 0xB6,
            ErrorKind::LostCommunication => 0xB7,
            ErrorKind::NotImplemented => 0xBB,
            ErrorKind::Other => 0xB0,
        }
    }
}

/// A target error.
pub trait Error: core::fmt::Debug {
    /// The generic kind of this error.
    fn kind(&self) -> ErrorKind;
}

impl Error for ErrorKind {
    fn kind(&self) -> ErrorKind {
        *self
    }
}

/// The error type of a target interface.
pub trait ErrorType {
    /// Error type.
    type Error: Error;
}

/// Byte-addressed access to the target's memory (SWD, a debug probe, a simulation).
pub trait MemoryAccess: ErrorType {
    /// Reads `buf.len()` bytes at `address`.
    fn read(&mut self, address: u32, buf: &mut [u8]) -> Result<(), Self::Error>;

    /// Writes `data` at `address`.
    fn write(&mut self, address: u32, data: &[u8]) -> Result<(), Self::Error>;
}

/// A measure of the target's supply voltage (`GET /1027//7`), for a board that can take
/// it (an ADC on the target's VCC pin, a power monitor).
pub trait Vcc: ErrorType {
    /// The target's supply now, in millivolts.
    fn millivolts(&mut self) -> Result<u16, Self::Error>;
}

impl<T: Vcc + ?Sized> Vcc for &mut T {
    fn millivolts(&mut self) -> Result<u16, Self::Error> {
        T::millivolts(self)
    }
}

/// A simulated target: `N` bytes of RAM starting at `base`.
#[derive(Clone, Debug)]
pub struct RamTarget<const N: usize> {
    base: u32,
    memory: [u8; N],
}

impl<const N: usize> RamTarget<N> {
    /// Zeroed memory at `base`.
    pub const fn new(base: u32) -> Self {
        RamTarget {
            base,
            memory: [0; N],
        }
    }

    /// The whole memory, for inspection.
    pub fn memory(&self) -> &[u8; N] {
        &self.memory
    }

    fn range(&self, address: u32, len: usize) -> Result<core::ops::Range<usize>, ErrorKind> {
        let start = address
            .checked_sub(self.base)
            .ok_or(ErrorKind::BadParameter)? as usize;
        let end = start.checked_add(len).ok_or(ErrorKind::BadParameter)?;
        if end > N {
            return Err(ErrorKind::BadParameter);
        }
        Ok(start..end)
    }
}

impl<const N: usize> ErrorType for RamTarget<N> {
    type Error = ErrorKind;
}

impl<const N: usize> MemoryAccess for RamTarget<N> {
    fn read(&mut self, address: u32, buf: &mut [u8]) -> Result<(), ErrorKind> {
        let range = self.range(address, buf.len())?;
        buf.copy_from_slice(&self.memory[range]);
        Ok(())
    }

    fn write(&mut self, address: u32, data: &[u8]) -> Result<(), ErrorKind> {
        let range = self.range(address, data.len())?;
        self.memory[range].copy_from_slice(data);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ram_target_reads_back_what_was_written() {
        let mut ram = RamTarget::<64>::new(0x2000_0000);
        ram.write(0x2000_0010, &[0x41, 0xbc, 0, 0]).unwrap();
        let mut buf = [0u8; 4];
        ram.read(0x2000_0010, &mut buf).unwrap();
        assert_eq!(buf, [0x41, 0xbc, 0, 0]);
        assert_eq!(&ram.memory()[0x10..0x14], &buf);
    }

    #[test]
    fn out_of_range_accesses_are_bad_parameters() {
        let mut ram = RamTarget::<16>::new(0x100);
        let mut buf = [0u8; 4];
        assert_eq!(ram.read(0xFF, &mut buf), Err(ErrorKind::BadParameter));
        assert_eq!(ram.read(0x10D, &mut buf), Err(ErrorKind::BadParameter));
        assert_eq!(ram.write(u32::MAX, &buf), Err(ErrorKind::BadParameter));
        assert_eq!(ErrorKind::BadParameter.status_byte(), 0xB3);
    }
}
