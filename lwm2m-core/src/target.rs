//! The target side as the engine sees it: [`TargetIo`], what a port performs the target
//! operations of a request with. In-device variables live in the configuration image and
//! need no target.
//!
//! The target multiplexer (SWD, Modbus, serial...) implements [`TargetIo`]; until one is
//! plugged in, [`MemoryTarget`] adapts any [`target_traits::MemoryAccess`] (such as the
//! simulated [`target_traits::RamTarget`]).

use target_traits::MemoryAccess;

pub use crate::io::TargetVar;
use crate::wire::ResultCode;

/// Reads and writes the values of target-domain variables: what a port performs for
/// [`Operation::ReadTarget`](crate::io::Operation::ReadTarget) and
/// [`Operation::WriteTarget`](crate::io::Operation::WriteTarget).
pub trait TargetIo {
    /// Reads the value of `var` into `buf` (exactly `var.len()` bytes).
    fn read(&mut self, var: &TargetVar, buf: &mut [u8]) -> Result<(), ResultCode>;

    /// Writes `data` (exactly `var.len()` bytes) as the value of `var`.
    fn write(&mut self, var: &TargetVar, data: &[u8]) -> Result<(), ResultCode>;
}

/// No target connected: target variables answer `A5`.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoTarget;

impl TargetIo for NoTarget {
    fn read(&mut self, _: &TargetVar, _: &mut [u8]) -> Result<(), ResultCode> {
        Err(ResultCode::UnableToConnectToTarget)
    }

    fn write(&mut self, _: &TargetVar, _: &[u8]) -> Result<(), ResultCode> {
        Err(ResultCode::UnableToConnectToTarget)
    }
}

/// A target reached through byte-addressed memory access: the variable address is a u32
/// memory address, values are copied as they are.
#[derive(Debug)]
pub struct MemoryTarget<M>(pub M);

/// The result code for a target error: the one place where target failures become the
/// `A5`–`BB` codes of the wire.
pub fn status_of<E: target_traits::Error>(err: E) -> ResultCode {
    ResultCode::from_u8(err.kind().status_byte()).unwrap_or(ResultCode::TargetProtocolError)
}

impl<M: MemoryAccess> TargetIo for MemoryTarget<M> {
    fn read(&mut self, var: &TargetVar, buf: &mut [u8]) -> Result<(), ResultCode> {
        self.0.read(var.address_u32(), buf).map_err(status_of)
    }

    fn write(&mut self, var: &TargetVar, data: &[u8]) -> Result<(), ResultCode> {
        self.0.write(var.address_u32(), data).map_err(status_of)
    }
}
