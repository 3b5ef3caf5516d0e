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

/// The device's wall clock: the Unix time (seconds since 1970-01-01 UTC) it was set to,
/// and the [`Instant`] it was set at. Set by the port at boot from its real-time clock
/// ([`crate::Device::set_unix_time`]) and by the interlocutor (`PUT /3//13`); read by
/// `/3//13` and the local time of `/1024//79`. A device never set counts from boot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct WallClock {
    set: Option<(u32, Instant)>,
}

impl WallClock {
    /// A clock never set.
    pub const fn new() -> WallClock {
        WallClock { set: None }
    }

    /// Sets the clock to `unix` seconds at `now`.
    pub fn set(&mut self, unix: u32, now: Instant) {
        self.set = Some((unix, now));
    }

    /// Whether the clock was set (else it counts seconds since boot).
    pub fn is_set(&self) -> bool {
        self.set.is_some()
    }

    /// Unix time at `now`: the time set plus the seconds since, or the seconds since
    /// the clock's origin (boot) if never set. Wraps in 2106, as a u32 of the wire does.
    pub fn unix_time(&self, now: Instant) -> u32 {
        let (base, at) = self.set.unwrap_or((0, Instant::ZERO));
        base.wrapping_add(now.saturating_since(at).as_secs() as u32)
    }
}

/// A Unix time broken down as C's `struct tm` (UTC): what `/1024//79` answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CivilTime {
    /// 0 to 59.
    pub seconds: u32,
    /// 0 to 59.
    pub minutes: u32,
    /// 0 to 23.
    pub hours: u32,
    /// Day of the month, 1 to 31.
    pub day_of_month: u32,
    /// Month, 0 (January) to 11, as `tm_mon`.
    pub month: u32,
    /// Years since 1900, as `tm_year`.
    pub year: u32,
    /// Day of the week, 0 (Sunday) to 6.
    pub day_of_week: u32,
    /// Day of the year, 0 to 365.
    pub day_of_year: u32,
}

impl CivilTime {
    /// `unix` seconds plus `offset` seconds (a time zone's) broken down, the sum held
    /// to the range of a u32 (1970 to 2106). In 32-bit arithmetic: a microcontroller
    /// links no 64-bit division for it.
    pub fn of(unix: u32, offset: i32) -> CivilTime {
        let t = unix.saturating_add_signed(offset);
        let (days, secs) = (t / 86_400, t % 86_400);
        // Days to a proleptic Gregorian date (H. Hinnant's `civil_from_days`, for days
        // after 1970 only, so every term is unsigned).
        let z = days + 719_468;
        let era = z / 146_097;
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy_march = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy_march + 2) / 153;
        let day = doy_march - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + u32::from(month <= 2);
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        const BEFORE: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
        let day_of_year = BEFORE[(month - 1) as usize] + day - 1 + u32::from(leap && month > 2);
        CivilTime {
            seconds: secs % 60,
            minutes: secs / 60 % 60,
            hours: secs / 3600,
            day_of_month: day,
            month: month - 1,
            year: year - 1900,
            // 1970-01-01 was a Thursday.
            day_of_week: (days + 4) % 7,
            day_of_year,
        }
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

    #[test]
    fn a_wall_clock_counts_from_when_it_was_set() {
        let mut clock = WallClock::new();
        assert_eq!(clock.unix_time(Instant::from_millis(2_500)), 2);
        clock.set(1_700_000_000, Instant::from_secs(10));
        assert!(clock.is_set());
        assert_eq!(clock.unix_time(Instant::from_secs(70)), 1_700_000_060);
        // An instant before the setting reads the time set.
        assert_eq!(clock.unix_time(Instant::from_secs(5)), 1_700_000_000);
    }

    #[test]
    fn civil_time_of_known_dates() {
        // 2024-02-29 13:14:15 UTC, a Thursday, day 59 of a leap year.
        let t = CivilTime::of(1_709_212_455, 0);
        assert_eq!(
            t,
            CivilTime {
                seconds: 15,
                minutes: 14,
                hours: 13,
                day_of_month: 29,
                month: 1,
                year: 124,
                day_of_week: 4,
                day_of_year: 59,
            }
        );
        let epoch = CivilTime::of(0, 0);
        assert_eq!((epoch.year, epoch.month, epoch.day_of_month), (70, 0, 1));
        assert_eq!((epoch.day_of_week, epoch.day_of_year), (4, 0));
        assert_eq!(CivilTime::of(0, -3600), epoch, "before 1970 is the epoch");
        // 2106-02-07 06:28:15, the last second of a u32: an hour of time zone more
        // stays there.
        let last = CivilTime::of(u32::MAX, 3600);
        assert_eq!(
            (last.year, last.month, last.day_of_month, last.hours),
            (206, 1, 7, 6)
        );
        // 2023-12-31, the last day of a common year.
        assert_eq!(CivilTime::of(1_704_000_000, 0).day_of_year, 364);
    }

    proptest! {
        #[test]
        fn whole_seconds_are_the_quotient(ms in any::<u64>()) {
            prop_assert_eq!(Duration::from_millis(ms).as_secs(), ms / 1000);
        }

        #[test]
        fn civil_time_fields_are_in_range(unix in 100_000u32..4_294_000_000, offset in -50_400i32..=50_400) {
            let t = CivilTime::of(unix, offset);
            prop_assert!(t.seconds < 60 && t.minutes < 60 && t.hours < 24);
            prop_assert!((1..=31).contains(&t.day_of_month) && t.month < 12);
            prop_assert!(t.day_of_week < 7 && t.day_of_year < 366);
            let next = CivilTime::of(unix.saturating_add(86_400), offset);
            prop_assert_eq!(next.day_of_week, (t.day_of_week + 1) % 7);
        }
    }
}
