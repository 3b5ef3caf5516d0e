//! Time as the core sees it: a monotonic millisecond count supplied by the caller.
//!
//! The core owns no clock (sans-IO): every entry point takes `now`, and the engine
//! answers with the next [`Instant`] at which it wants to be polled again.

use core::ops::{Add, Sub};

/// A point on the caller's monotonic clock, in milliseconds since an arbitrary origin
/// (typically boot).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Instant(u64);

impl Instant {
    /// The origin of the clock.
    pub const ZERO: Instant = Instant(0);

    /// An instant `millis` milliseconds after the origin.
    pub const fn from_millis(millis: u64) -> Self {
        Instant(millis)
    }

    /// An instant `secs` seconds after the origin.
    pub const fn from_secs(secs: u64) -> Self {
        Instant(secs.saturating_mul(1000))
    }

    /// Milliseconds since the origin.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub const fn saturating_since(self, earlier: Instant) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
}

/// A span of time in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Duration(u64);

impl Duration {
    /// No time at all.
    pub const ZERO: Duration = Duration(0);

    /// `millis` milliseconds.
    pub const fn from_millis(millis: u64) -> Self {
        Duration(millis)
    }

    /// `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Duration(secs.saturating_mul(1000))
    }

    /// Length in milliseconds.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Length in whole seconds (rounded down).
    ///
    /// Long division in 16-bit digits: four 32-bit divisions, so a 32-bit
    /// microcontroller links no 64-bit division routine (about 1 KiB of flash).
    pub const fn as_secs(self) -> u64 {
        let mut quotient = 0u64;
        let mut rest = 0u32;
        let mut shift = 64;
        while shift > 0 {
            shift -= 16;
            // rest < 1000, so this is below 1000 · 2^16 and fits a u32.
            let digit = (rest << 16) | ((self.0 >> shift) as u32 & 0xFFFF);
            quotient = (quotient << 16) | (digit / 1000) as u64;
            rest = digit % 1000;
        }
        quotient
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_add(rhs.0))
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_since(rhs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn whole_seconds_at_the_edges() {
        for ms in [
            0,
            999,
            1000,
            1001,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            assert_eq!(Duration::from_millis(ms).as_secs(), ms / 1000, "{ms}");
        }
    }

    proptest! {
        #[test]
        fn whole_seconds_are_the_quotient(ms in any::<u64>()) {
            prop_assert_eq!(Duration::from_millis(ms).as_secs(), ms / 1000);
        }
    }
}
