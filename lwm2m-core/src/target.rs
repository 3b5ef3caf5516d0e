//! Where variable values live: the target side behind [`TargetIo`], or the device itself
//! for in-Tap variables (kept in the configuration image).
//!
//! The target multiplexer (SWD, Modbus, serial...) implements [`TargetIo`]; until one is
//! plugged in, [`MemoryTarget`] adapts any [`target_traits::MemoryAccess`] (such as the
//! simulated [`target_traits::RamTarget`]).

use target_traits::MemoryAccess;

use crate::config::{Config, Domain, Variable};
use crate::wire::ResultCode;

/// Reads and writes the values of target-domain variables.
pub trait TargetIo {
    /// Reads the value of `var` into `buf` (exactly `buf.len()` bytes).
    fn read(&mut self, var: &Variable, buf: &mut [u8]) -> Result<(), ResultCode>;

    /// Writes `data` as the value of `var`.
    fn write(&mut self, var: &Variable, data: &[u8]) -> Result<(), ResultCode>;
}

/// No target connected: target variables answer `A5`.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoTarget;

impl TargetIo for NoTarget {
    fn read(&mut self, _: &Variable, _: &mut [u8]) -> Result<(), ResultCode> {
        Err(ResultCode::UnableToConnectToTarget)
    }

    fn write(&mut self, _: &Variable, _: &[u8]) -> Result<(), ResultCode> {
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
    fn read(&mut self, var: &Variable, buf: &mut [u8]) -> Result<(), ResultCode> {
        self.0.read(var.address_u32(), buf).map_err(status_of)
    }

    fn write(&mut self, var: &Variable, data: &[u8]) -> Result<(), ResultCode> {
        self.0.write(var.address_u32(), data).map_err(status_of)
    }
}

/// The length of `var`'s value, `86` if its type is unknown (a value longer than the
/// caller's buffer is refused with `A0` by [`read_value`]).
fn value_len(var: &Variable) -> Result<usize, ResultCode> {
    var.value_len().ok_or(ResultCode::NotAcceptable)
}

/// Reads the value of variable `id` into the start of `buf`, returning its length.
pub fn read_value(
    config: &Config,
    target: &mut dyn TargetIo,
    id: u16,
    buf: &mut [u8],
) -> Result<usize, ResultCode> {
    let var = config.variable(id).ok_or(ResultCode::NotFound)?;
    let len = value_len(var)?;
    let out = buf.get_mut(..len).ok_or(ResultCode::InternalServerError)?;
    match var.domain() {
        Domain::Target => target.read(var, out)?,
        Domain::InTapStatic | Domain::InTapVolatile => {
            // Never written: zeros, as the configurator would have padded.
            out.fill(0);
            let n = var.value.len().min(len);
            out[..n].copy_from_slice(&var.value[..n]);
        }
        Domain::Gpio => return Err(ResultCode::NotImplemented),
    }
    Ok(len)
}

/// Writes the value of variable `id`; `data` must be exactly its length.
pub fn write_value(
    config: &mut Config,
    target: &mut dyn TargetIo,
    id: u16,
    data: &[u8],
) -> Result<(), ResultCode> {
    let var = config.variable_mut(id).ok_or(ResultCode::NotFound)?;
    if data.len() != value_len(var)? {
        return Err(ResultCode::NotAcceptable);
    }
    match var.domain() {
        Domain::Target => target.write(var, data),
        Domain::InTapStatic | Domain::InTapVolatile => {
            var.value = heapless::Vec::from_slice(data).map_err(|_| ResultCode::NotAcceptable)?;
            Ok(())
        }
        Domain::Gpio => Err(ResultCode::NotImplemented),
    }
}
