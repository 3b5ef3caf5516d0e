//! Host-side link traits for an `lwm2m-core` device, and framing adapters.
//!
//! A host link (NFC, BLE, Wi-Fi/WebSocket, MQTT relay, serial) moves whole request APDUs
//! in and whole response APDUs out. Links that already carry frames implement
//! [`FrameLink`] (or `asynch::FrameLink` with the `async` feature); byte streams and chunked characteristics go
//! through a framing adapter first ([`ble_legacy`], [`serial`]).
//!
//! Errors follow embedded-hal 1.0: every trait has an [`ErrorType`], whose error has a
//! [`Error::kind`] generic code can act on.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod ble_legacy;
pub mod channels;
#[cfg(feature = "modbus-slave")]
pub mod modbus_slave;
pub mod mux;
pub mod run;
pub mod serial;
#[cfg(feature = "async")]
pub mod side;

/// What went wrong on a link, in terms generic code can act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ErrorKind {
    /// The peer went away: the session it owned ends.
    Closed,
    /// A frame did not fit the buffer.
    Overflow,
    /// Bytes arrived that do not form a frame (bad checksum, bad offset...).
    Framing,
    /// The link timed out.
    TimedOut,
    /// Anything else.
    Other,
}

/// A link error.
pub trait Error: core::fmt::Debug {
    /// The generic kind of this error.
    fn kind(&self) -> ErrorKind;
}

impl Error for ErrorKind {
    fn kind(&self) -> ErrorKind {
        *self
    }
}

impl core::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ErrorKind::Closed => "link closed",
            ErrorKind::Overflow => "frame too large for the buffer",
            ErrorKind::Framing => "malformed framing",
            ErrorKind::TimedOut => "link timed out",
            ErrorKind::Other => "link error",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ErrorKind {}

/// The error type of a link.
pub trait ErrorType {
    /// Error type.
    type Error: Error;
}

/// A blocking link carrying whole frames: one request APDU in, one response APDU out.
pub trait FrameLink: ErrorType {
    /// Waits for the next request frame and copies it into `buf`, returning its length.
    fn receive(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error>;

    /// Sends one response frame.
    fn send(&mut self, frame: &[u8]) -> Result<(), Self::Error>;
}

impl<T: ErrorType + ?Sized> ErrorType for &mut T {
    type Error = T::Error;
}

impl<T: FrameLink + ?Sized> FrameLink for &mut T {
    fn receive(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        T::receive(self, buf)
    }

    fn send(&mut self, frame: &[u8]) -> Result<(), Self::Error> {
        T::send(self, frame)
    }
}

/// Async versions of the link traits (enable the `async` feature).
#[cfg(feature = "async")]
pub mod asynch {
    pub use super::{Error, ErrorKind, ErrorType};

    /// An async link carrying whole frames.
    #[allow(async_fn_in_trait)]
    pub trait FrameLink: ErrorType {
        /// Waits for the next request frame and copies it into `buf`, returning its
        /// length.
        async fn receive(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error>;

        /// Sends one response frame.
        async fn send(&mut self, frame: &[u8]) -> Result<(), Self::Error>;
    }
}
