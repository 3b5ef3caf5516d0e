//! Modbus as a target protocol: the tables of a server ([`Table`]), the access a board
//! provides ([`Modbus`], blocking, and [`asynch::Modbus`]: a master over RTU or TCP), and
//! what a server's exception code means to the device ([`exception_kind`]).
//!
//! Data cross these traits as the bytes of the Modbus PDU: registers as big-endian
//! 16-bit words, coils and discrete inputs packed eight to a byte, the first item in the
//! lowest bit ([`Table::byte_len`]).
//!
//! Two building blocks implement them: [`frame`], the requests and the checked responses
//! of any master (RTU or TCP, sans-IO), and [`rtu::Rtu`], a Modbus RTU master over a
//! serial port, blocking and async.

use crate::{ErrorKind, ErrorType};

pub mod frame;
pub mod rtu;

/// A table of a Modbus server (the `objectType` of the client's `ModbusOptions`: COIL 1,
/// DISCRET_INPUT 2, HOLDING_REGISTER 3, INPUT_REGISTER 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Table {
    /// Coils: bits, read (function 1) and written (5, 15).
    Coils,
    /// Discrete inputs: bits, read only (function 2).
    DiscreteInputs,
    /// Holding registers: words, read (function 3) and written (6, 16).
    HoldingRegisters,
    /// Input registers: words, read only (function 4).
    InputRegisters,
}

/// Most registers one read carries (Modbus application protocol, 6.3).
pub const MAX_READ_REGISTERS: u16 = 125;
/// Most bits one read carries (6.1).
pub const MAX_READ_BITS: u16 = 2000;
/// Most registers one write carries (6.12).
pub const MAX_WRITE_REGISTERS: u16 = 123;
/// Most coils one write carries (6.11).
pub const MAX_WRITE_BITS: u16 = 1968;

impl Table {
    /// The table of a `ModbusOptions` object type (its low 3 bits; 0, DEFAULT, is the
    /// holding registers).
    pub const fn from_object_type(object_type: u8) -> Option<Table> {
        match object_type & 0x07 {
            0 | 3 => Some(Table::HoldingRegisters),
            1 => Some(Table::Coils),
            2 => Some(Table::DiscreteInputs),
            4 => Some(Table::InputRegisters),
            _ => None,
        }
    }

    /// The table a variable's Modbus function code reads (1 to 4), or writes (5, 6, 15,
    /// 16).
    pub const fn from_function(function: u8) -> Option<Table> {
        match function {
            1 | 5 | 15 => Some(Table::Coils),
            2 => Some(Table::DiscreteInputs),
            3 | 6 | 16 => Some(Table::HoldingRegisters),
            4 => Some(Table::InputRegisters),
            _ => None,
        }
    }

    /// Whether items are bits (coils, discrete inputs) rather than 16-bit registers.
    pub const fn is_bits(self) -> bool {
        matches!(self, Table::Coils | Table::DiscreteInputs)
    }

    /// Whether a master may write it (coils, holding registers).
    pub const fn is_writable(self) -> bool {
        matches!(self, Table::Coils | Table::HoldingRegisters)
    }

    /// Bytes of `count` items: two a register, eight bits a byte.
    pub const fn byte_len(self, count: u16) -> usize {
        if self.is_bits() {
            (count as usize).div_ceil(8)
        } else {
            2 * count as usize
        }
    }

    /// Whether `count` items can be read in one request (1 to the protocol's limit).
    pub const fn readable_count(self, count: u16) -> bool {
        let max = if self.is_bits() {
            MAX_READ_BITS
        } else {
            MAX_READ_REGISTERS
        };
        count >= 1 && count <= max
    }

    /// Whether `count` items can be written in one request (a writable table, 1 to the
    /// protocol's limit).
    pub const fn writable_count(self, count: u16) -> bool {
        let max = if self.is_bits() {
            MAX_WRITE_BITS
        } else {
            MAX_WRITE_REGISTERS
        };
        self.is_writable() && count >= 1 && count <= max
    }
}

/// What the exception code a Modbus server answered (its function code with bit 7 set)
/// means to the device: the one place where server exceptions become error kinds (and,
/// through [`ErrorKind::status_byte`], result codes).
pub const fn exception_kind(code: u8) -> ErrorKind {
    match code {
        // ILLEGAL FUNCTION, ILLEGAL DATA ADDRESS, ILLEGAL DATA VALUE: a request this
        // server refuses (spec decision 13: B3).
        0x01..=0x03 => ErrorKind::BadParameter,
        // SERVER DEVICE FAILURE.
        0x04 => ErrorKind::Other,
        // ACKNOWLEDGE (a long operation under way), SERVER DEVICE BUSY.
        0x05 | 0x06 => ErrorKind::Busy,
        // MEMORY PARITY ERROR.
        0x08 => ErrorKind::Data,
        // GATEWAY PATH UNAVAILABLE, GATEWAY TARGET DEVICE FAILED TO RESPOND.
        0x0A | 0x0B => ErrorKind::Unreachable,
        _ => ErrorKind::Communication,
    }
}

/// Access to the servers of a Modbus line: a master (RTU over a serial port, TCP).
///
/// Every call is one Modbus transaction, bounded in time by the implementation (a
/// server that does not answer in time is [`ErrorKind::LostCommunication`], `B7`; one
/// that cannot be reached at all, a TCP connection refused, [`ErrorKind::Unreachable`],
/// `A5`); a server's exception is its [`exception_kind`]; an answer that is not one
/// (a bad CRC, another unit or function) is [`ErrorKind::Data`]; `count` beyond the protocol's limits, a read-only table
/// written, or a buffer of the wrong length is [`ErrorKind::BadParameter`], before
/// anything is sent.
pub trait Modbus: ErrorType {
    /// Reads `count` items of `table` of server `unit` from `address` into `out`
    /// ([`Table::byte_len`] bytes).
    fn read(
        &mut self,
        unit: u8,
        table: Table,
        address: u16,
        count: u16,
        out: &mut [u8],
    ) -> Result<(), Self::Error>;

    /// Writes `count` items of `table` of server `unit` from `address` with `data`
    /// ([`Table::byte_len`] bytes).
    fn write(
        &mut self,
        unit: u8,
        table: Table,
        address: u16,
        count: u16,
        data: &[u8],
    ) -> Result<(), Self::Error>;

    /// Sets how long an answer may take from now on, in milliseconds (0: the
    /// implementation's default): what the timeout of the protocol configuration
    /// (`/1027//21`) asks. By default the implementation keeps its own.
    fn set_timeout_ms(&mut self, timeout_ms: u32) {
        let _ = timeout_ms;
    }
}

impl<T: Modbus + ?Sized> Modbus for &mut T {
    fn read(
        &mut self,
        unit: u8,
        table: Table,
        address: u16,
        count: u16,
        out: &mut [u8],
    ) -> Result<(), Self::Error> {
        T::read(self, unit, table, address, count, out)
    }

    fn write(
        &mut self,
        unit: u8,
        table: Table,
        address: u16,
        count: u16,
        data: &[u8],
    ) -> Result<(), Self::Error> {
        T::write(self, unit, table, address, count, data)
    }

    fn set_timeout_ms(&mut self, timeout_ms: u32) {
        T::set_timeout_ms(self, timeout_ms);
    }
}

/// Whether a request for `count` items of `table` with a buffer of `len` bytes is one
/// to send: the checks every [`Modbus`] implementation makes first.
pub const fn check(table: Table, count: u16, len: usize, write: bool) -> Result<(), ErrorKind> {
    let count_ok = if write {
        table.writable_count(count)
    } else {
        table.readable_count(count)
    };
    if count_ok && len == table.byte_len(count) {
        Ok(())
    } else {
        Err(ErrorKind::BadParameter)
    }
}

/// The async [`Modbus`].
pub mod asynch {
    use super::Table;
    use crate::ErrorType;

    /// [`super::Modbus`], awaiting the server's answer.
    #[allow(async_fn_in_trait)]
    pub trait Modbus: ErrorType {
        /// [`super::Modbus::read`].
        async fn read(
            &mut self,
            unit: u8,
            table: Table,
            address: u16,
            count: u16,
            out: &mut [u8],
        ) -> Result<(), Self::Error>;

        /// [`super::Modbus::write`].
        async fn write(
            &mut self,
            unit: u8,
            table: Table,
            address: u16,
            count: u16,
            data: &[u8],
        ) -> Result<(), Self::Error>;

        /// [`super::Modbus::set_timeout_ms`].
        fn set_timeout_ms(&mut self, timeout_ms: u32) {
            let _ = timeout_ms;
        }
    }
}

impl<T: ErrorType + ?Sized> ErrorType for &mut T {
    type Error = T::Error;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_types_and_functions_name_their_tables() {
        assert_eq!(Table::from_object_type(0), Some(Table::HoldingRegisters));
        assert_eq!(Table::from_object_type(0xF9), Some(Table::Coils));
        assert_eq!(Table::from_object_type(5), None);
        assert_eq!(Table::from_function(16), Some(Table::HoldingRegisters));
        assert_eq!(Table::from_function(2), Some(Table::DiscreteInputs));
        assert_eq!(Table::from_function(7), None);
    }

    #[test]
    fn sizes_and_limits_are_the_protocol_s() {
        assert_eq!(Table::Coils.byte_len(9), 2);
        assert_eq!(Table::InputRegisters.byte_len(3), 6);
        assert!(Table::HoldingRegisters.readable_count(125));
        assert!(!Table::HoldingRegisters.readable_count(126));
        assert!(!Table::HoldingRegisters.readable_count(0));
        assert!(!Table::InputRegisters.writable_count(1));
        assert!(Table::Coils.writable_count(1968));
        assert!(!Table::Coils.writable_count(1969));
        assert_eq!(check(Table::HoldingRegisters, 2, 4, true), Ok(()));
        assert_eq!(
            check(Table::HoldingRegisters, 2, 3, false),
            Err(ErrorKind::BadParameter)
        );
        assert_eq!(
            check(Table::DiscreteInputs, 1, 1, true),
            Err(ErrorKind::BadParameter)
        );
    }

    #[test]
    fn exceptions_map_to_result_codes() {
        assert_eq!(exception_kind(0x02).status_byte(), 0xB3);
        assert_eq!(exception_kind(0x01).status_byte(), 0xB3);
        assert_eq!(exception_kind(0x06).status_byte(), 0xB1);
        assert_eq!(exception_kind(0x0B).status_byte(), 0xA5);
        assert_eq!(exception_kind(0x7F).status_byte(), 0xB6);
    }
}
