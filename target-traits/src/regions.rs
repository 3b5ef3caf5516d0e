//! The firmware's own memory as a target: a firmware team that embeds the stack in the
//! monitored product itself exposes its own variables through the regions it declares
//! ([`Region`]: an address range, its bytes, read-only or read-write), and nothing else.
//! An access that is not wholly inside one region, or writes a read-only one, answers an
//! error and never touches memory.
//!
//! A region's bytes are atomics ([`AtomicU8`], loads and stores only: every Cortex-M
//! has them), which the firmware's own code reads and writes too, so that no `unsafe`
//! is needed on either side:
//!
//! ```
//! use core::sync::atomic::{AtomicU8, Ordering};
//! use target_traits::regions::{Region, RegionTarget};
//! use target_traits::MemoryAccess;
//!
//! // The firmware's measurements, and its set point.
//! static MEASURED: [AtomicU8; 8] = [const { AtomicU8::new(0) }; 8];
//! static SET_POINT: [AtomicU8; 4] = [const { AtomicU8::new(0) }; 4];
//!
//! let mut target = RegionTarget::new([
//!     Region::read_only(0x2000_0000, &MEASURED),
//!     Region::read_write(0x2000_0100, &SET_POINT),
//! ]);
//! MEASURED[0].store(42, Ordering::Relaxed);
//! let mut value = [0u8; 1];
//! target.read(0x2000_0000, &mut value).unwrap();
//! assert_eq!(value, [42]);
//! assert!(target.write(0x2000_0000, &[1]).is_err()); // read-only
//! assert!(target.read(0x2000_0004, &mut [0; 8]).is_err()); // beyond the region
//! ```

use core::sync::atomic::{AtomicU8, Ordering};

use crate::{ErrorKind, ErrorType, MemoryAccess};

/// A range of the firmware's memory the target exposes.
#[derive(Clone, Copy, Debug)]
pub struct Region<'a> {
    /// The address of its first byte.
    base: u32,
    /// Its bytes.
    bytes: &'a [AtomicU8],
    /// Whether the interlocutor may write it.
    writable: bool,
}

impl<'a> Region<'a> {
    /// `bytes` at `base`, which the interlocutor may read only.
    pub const fn read_only(base: u32, bytes: &'a [AtomicU8]) -> Self {
        Region {
            base,
            bytes,
            writable: false,
        }
    }

    /// `bytes` at `base`, which the interlocutor may read and write.
    pub const fn read_write(base: u32, bytes: &'a [AtomicU8]) -> Self {
        Region {
            base,
            bytes,
            writable: true,
        }
    }

    /// The bytes of `address..address + len`, if wholly inside.
    fn get(&self, address: u32, len: usize) -> Option<&'a [AtomicU8]> {
        let start = usize::try_from(address.checked_sub(self.base)?).ok()?;
        self.bytes.get(start..start.checked_add(len)?)
    }
}

/// A target over the regions `N` the firmware declares.
#[derive(Debug)]
pub struct RegionTarget<'a, const N: usize> {
    regions: [Region<'a>; N],
}

impl<'a, const N: usize> RegionTarget<'a, N> {
    /// The target over `regions` (which may not overlap: an access is looked up in the
    /// first that holds it whole).
    pub const fn new(regions: [Region<'a>; N]) -> Self {
        RegionTarget { regions }
    }

    /// The region holding `address..address + len` whole, and its bytes there:
    /// [`ErrorKind::BadParameter`] if none does (not even across two adjacent ones).
    fn find(&self, address: u32, len: usize) -> Result<(&Region<'a>, &'a [AtomicU8]), ErrorKind> {
        self.regions
            .iter()
            .find_map(|region| Some((region, region.get(address, len)?)))
            .ok_or(ErrorKind::BadParameter)
    }
}

impl<const N: usize> ErrorType for RegionTarget<'_, N> {
    type Error = ErrorKind;
}

impl<const N: usize> MemoryAccess for RegionTarget<'_, N> {
    fn read(&mut self, address: u32, buf: &mut [u8]) -> Result<(), ErrorKind> {
        let (_, bytes) = self.find(address, buf.len())?;
        for (out, byte) in buf.iter_mut().zip(bytes) {
            *out = byte.load(Ordering::Relaxed);
        }
        Ok(())
    }

    /// A write to a read-only region is [`ErrorKind::Forbidden`] (`B4`).
    fn write(&mut self, address: u32, data: &[u8]) -> Result<(), ErrorKind> {
        let (region, bytes) = self.find(address, data.len())?;
        if !region.writable {
            return Err(ErrorKind::Forbidden);
        }
        for (byte, value) in bytes.iter().zip(data) {
            byte.store(*value, Ordering::Relaxed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_accesses_inside_one_region_touch_memory() {
        let a = [const { AtomicU8::new(0xAA) }; 4];
        let b = [const { AtomicU8::new(0) }; 4];
        let mut target =
            RegionTarget::new([Region::read_only(0x100, &a), Region::read_write(0x104, &b)]);
        let mut buf = [0u8; 4];
        target.read(0x100, &mut buf).unwrap();
        assert_eq!(buf, [0xAA; 4]);
        // Across the two regions, though adjacent: refused.
        assert_eq!(target.read(0x102, &mut buf), Err(ErrorKind::BadParameter));
        assert_eq!(target.write(0x101, &[1]), Err(ErrorKind::Forbidden));
        assert_eq!(a[1].load(Ordering::Relaxed), 0xAA);
        target.write(0x105, &[1, 2, 3]).unwrap();
        assert_eq!(
            b.each_ref().map(|x| x.load(Ordering::Relaxed)),
            [0, 1, 2, 3]
        );
        // Outside, wrapping, too long: refused, nothing written.
        assert_eq!(target.write(0x108, &[9]), Err(ErrorKind::BadParameter));
        assert_eq!(target.read(0xFF, &mut [0]), Err(ErrorKind::BadParameter));
        assert_eq!(
            target.read(u32::MAX, &mut [0; 2]),
            Err(ErrorKind::BadParameter)
        );
        assert_eq!(target.write(0x104, &[0; 5]), Err(ErrorKind::BadParameter));
        assert_eq!(
            b.each_ref().map(|x| x.load(Ordering::Relaxed)),
            [0, 1, 2, 3]
        );
        // An empty read inside a region is fine; an empty region holds nothing else.
        target.read(0x104, &mut []).unwrap();
        let mut none = RegionTarget::<0>::new([]);
        assert_eq!(none.read(0, &mut [0]), Err(ErrorKind::BadParameter));
    }
}
