//! Internal logging shims: forward to `log` or `defmt` when one is enabled, else vanish.
#![allow(unused_macros)]

macro_rules! debug {
    ($($arg:tt)*) => {{
        #[cfg(feature = "log")]
        ::log::debug!($($arg)*);
        #[cfg(all(feature = "defmt", not(feature = "log")))]
        ::defmt::debug!($($arg)*);
        #[cfg(not(any(feature = "log", feature = "defmt")))]
        { let _ = format_args!($($arg)*); }
    }};
}

macro_rules! info {
    ($($arg:tt)*) => {{
        #[cfg(feature = "log")]
        ::log::info!($($arg)*);
        #[cfg(all(feature = "defmt", not(feature = "log")))]
        ::defmt::info!($($arg)*);
        #[cfg(not(any(feature = "log", feature = "defmt")))]
        { let _ = format_args!($($arg)*); }
    }};
}

macro_rules! warn {
    ($($arg:tt)*) => {{
        #[cfg(feature = "log")]
        ::log::warn!($($arg)*);
        #[cfg(all(feature = "defmt", not(feature = "log")))]
        ::defmt::warn!($($arg)*);
        #[cfg(not(any(feature = "log", feature = "defmt")))]
        { let _ = format_args!($($arg)*); }
    }};
}
