//! The target side as the engine sees it: [`TargetIo`], what a port performs the target
//! operations of a request with. In-device variables live in the configuration image and
//! need no target.
//!
//! [`TargetMux`] is the target multiplexer: it reaches the target with the protocol the
//! configuration selects (`/1027//1`, carried by every operation in its
//! [`TargetSettings`]) over what the board provides — memory access (SWD, JTAG, S3P,
//! direct I/O, a simulation: [`target_traits::MemoryAccess`]), a Modbus master
//! ([`target_traits::modbus::Modbus`]) and a raw serial line
//! ([`target_traits::serial::Serial`]); a protocol the board lacks answers `BB`. A board
//! that measures its target's supply gives it too ([`target_traits::Vcc`]).
//! [`MemoryTarget`] adapts one memory access alone.

use target_traits::modbus::{Modbus, Table};
use target_traits::serial::{Delimiter, Serial, Until};
use target_traits::{Error as _, ErrorKind, MemoryAccess, Vcc};

pub use crate::io::{TargetCommand, TargetSettings, TargetVar};
use crate::wire::ResultCode;
pub use target_traits::modbus::Table as ModbusTable;

/// Reads and writes the values of target-domain variables, and runs the commands of
/// object 1027: what a port performs [`Operation::ReadTarget`], [`Operation::WriteTarget`]
/// and [`Operation::Target`] with.
///
/// [`Operation::ReadTarget`]: crate::io::Operation::ReadTarget
/// [`Operation::WriteTarget`]: crate::io::Operation::WriteTarget
/// [`Operation::Target`]: crate::io::Operation::Target
pub trait TargetIo {
    /// Reads the value of `var` into `buf` (exactly `var.len()` bytes).
    fn read(&mut self, var: &TargetVar, buf: &mut [u8]) -> Result<(), ResultCode>;

    /// Writes `data` (exactly `var.len()` bytes) as the value of `var`.
    fn write(&mut self, var: &TargetVar, data: &[u8]) -> Result<(), ResultCode>;

    /// Runs `command` with `settings`: `input` from the request, the answer into
    /// `output`: its length, which is `output.len()` (exactly the bytes the command
    /// answers) but for an answer of the target's length
    /// ([`TargetCommand::answer_varies`]), at most `output.len()`; any other length is
    /// `A0`. By default every command is `BB`: the target does not do it.
    fn command(
        &mut self,
        settings: &TargetSettings,
        command: &TargetCommand,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<usize, ResultCode> {
        let _ = (settings, command, input, output);
        Err(ResultCode::TargetProtocolNotImplemented)
    }
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

/// A target reached through byte-addressed memory access alone: the variable address is
/// a u32 memory address, values are copied as they are, whatever the protocol.
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

/// A board without this kind of access (the protocol answers `BB`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Absent;

impl target_traits::ErrorType for Absent {
    type Error = ErrorKind;
}

impl MemoryAccess for Absent {
    fn read(&mut self, _: u32, _: &mut [u8]) -> Result<(), ErrorKind> {
        Err(ErrorKind::NotImplemented)
    }

    fn write(&mut self, _: u32, _: &[u8]) -> Result<(), ErrorKind> {
        Err(ErrorKind::NotImplemented)
    }
}

impl Modbus for Absent {
    fn read(&mut self, _: u8, _: Table, _: u16, _: u16, _: &mut [u8]) -> Result<(), ErrorKind> {
        Err(ErrorKind::NotImplemented)
    }

    fn write(&mut self, _: u8, _: Table, _: u16, _: u16, _: &[u8]) -> Result<(), ErrorKind> {
        Err(ErrorKind::NotImplemented)
    }
}

impl Serial for Absent {
    fn send(&mut self, _: &[u8]) -> Result<(), ErrorKind> {
        Err(ErrorKind::NotImplemented)
    }

    fn send_receive(&mut self, _: &[u8], _: &mut [u8], _: Until) -> Result<usize, ErrorKind> {
        Err(ErrorKind::NotImplemented)
    }

    fn read_received(&mut self, _: &mut [u8]) -> Result<usize, ErrorKind> {
        Err(ErrorKind::NotImplemented)
    }

    fn received_count(&mut self) -> Result<usize, ErrorKind> {
        Err(ErrorKind::NotImplemented)
    }
}

impl Vcc for Absent {
    fn millivolts(&mut self) -> Result<u16, ErrorKind> {
        Err(ErrorKind::NotImplemented)
    }
}

/// TargetProtocol values reached through memory access: SWD 0, S3P 1, JTAG 2,
/// DIRECT_IO 4.
const MEMORY_PROTOCOLS: [u8; 4] = [0, 1, 2, 4];

/// The target multiplexer: the protocol of each operation's settings selects the
/// access it runs over, memory `M`, Modbus `B` or a raw serial line `S`, any of which the
/// board may lack (`None`: the protocol answers `BB`); `V` measures the target's supply,
/// if the board can (`None`: `GET /1027//7` answers `A1`).
///
/// - Memory protocols (SWD, S3P, JTAG, DIRECT_IO): a variable's address is a u32 memory
///   address, its value copied as it is; `GET`/`POST /1027//33` read and write memory.
/// - MODBUS: a variable's address is `function | unit | register u16` (unit 0: the
///   settings' unit; with `offset_first_register`, register N is PDU address N − 1); a
///   register variable takes `⌈len / 2⌉` consecutive registers, most significant word
///   first, a coil or discrete input variable one bit per element (one byte each, 0 or
///   1). `GET /1027//38`, `POST /1027//37` reach any server.
/// - SERIAL: no variables (`BB`); `GET /1027//34` sends the request's bytes and answers
///   the target's answer, ended by the settings' delimiter or timeout, or the room
///   (an unknown delimiter code is `B3`); `POST /1027//34` sends; `GET /1027//35` and
///   `/43` read and count the bytes received since.
/// - Any other protocol: `BB`.
///
/// `POST /1027//5` and `/30` (reset, reset keep) are `BB`: no access here resets a
/// target.
#[derive(Debug, Default)]
pub struct TargetMux<M = Absent, B = Absent, S = Absent, V = Absent> {
    /// Memory access (SWD, JTAG, S3P, direct I/O), if the board has it.
    pub memory: Option<M>,
    /// The Modbus master, if the board has one.
    pub modbus: Option<B>,
    /// The raw serial line, if the board has one.
    pub serial: Option<S>,
    /// The measure of the target's supply, if the board has one.
    pub vcc: Option<V>,
    /// Target transactions that failed, and that succeeded (`/1027//11`).
    stats: [u32; 2],
}

impl<M, B> TargetMux<M, B> {
    /// The multiplexer over `memory` and `modbus`, without a serial line or a supply
    /// measure ([`TargetMux::with_serial`], [`TargetMux::with_vcc`] add them).
    pub const fn new(memory: Option<M>, modbus: Option<B>) -> Self {
        TargetMux {
            memory,
            modbus,
            serial: None,
            vcc: None,
            stats: [0; 2],
        }
    }
}

impl<M, B, S, V> TargetMux<M, B, S, V> {
    /// The same multiplexer over the raw serial line `serial` (`None`: SERIAL answers
    /// `BB`).
    pub fn with_serial<S2>(self, serial: Option<S2>) -> TargetMux<M, B, S2, V> {
        TargetMux {
            memory: self.memory,
            modbus: self.modbus,
            serial,
            vcc: self.vcc,
            stats: self.stats,
        }
    }

    /// The same multiplexer measuring the target's supply with `vcc` (`None`: `A1`).
    pub fn with_vcc<V2>(self, vcc: Option<V2>) -> TargetMux<M, B, S, V2> {
        TargetMux {
            memory: self.memory,
            modbus: self.modbus,
            serial: self.serial,
            vcc,
            stats: self.stats,
        }
    }

    /// Counts `result` in the communication statistics (`/1027//11`; they saturate).
    fn count<T>(&mut self, result: Result<T, ResultCode>) -> Result<T, ResultCode> {
        let [failed, succeeded] = &mut self.stats;
        let counter = if result.is_ok() { succeeded } else { failed };
        *counter = counter.saturating_add(1);
        result
    }

    /// `/1027//20`: the protocols reached, the OR of their values, as the client decodes
    /// the byte: it lists a protocol `p` when `mask & p == p`, so no byte names a set
    /// exactly. Memory access adds nothing (the client reads 0 as SWD alone); MODBUS is 3
    /// (which the client reads as S3P, JTAG and MODBUS), SERIAL 6 (read as JTAG,
    /// DIRECT_IO and SERIAL), both 7 (read as every protocol but SWD and NONE): the
    /// nearest it can be told, and never a protocol reached left out.
    pub fn available(&self) -> u8 {
        let modbus = if self.modbus.is_some() {
            TargetSettings::MODBUS
        } else {
            0
        };
        let serial = if self.serial.is_some() {
            TargetSettings::SERIAL
        } else {
            0
        };
        modbus | serial
    }
}

/// The table, unit and first PDU address of a Modbus variable's address.
fn modbus_place(var: &TargetVar) -> Result<(Table, u8, u16), ResultCode> {
    let [function, unit, hi, lo] = var.address;
    let table = Table::from_function(function).ok_or(ResultCode::TargetProtocolWrongParam)?;
    let unit = if unit == 0 {
        var.settings.modbus_unit
    } else {
        unit
    };
    let register = u16::from_be_bytes([hi, lo]);
    let address = if var.settings.offset_first_register {
        register
            .checked_sub(1)
            .ok_or(ResultCode::TargetProtocolWrongParam)?
    } else {
        register
    };
    Ok((table, unit, address))
}

impl TargetVar {
    /// `self` and `next` as one variable read in one target transaction, `next`'s value
    /// right after `self`'s: what a bundle read of adjacent registers does. `None` unless
    /// both are Modbus variables of one table and server, `next`'s first item follows
    /// `self`'s last, the whole fits one read, and neither is an 8-bit register variable
    /// (a register each, low byte only). Memory is never joined: a target may refuse a
    /// read that crosses from one of its regions into the next.
    pub fn joined(&self, next: &TargetVar) -> Option<TargetVar> {
        if self.settings != next.settings || self.settings.protocol != TargetSettings::MODBUS {
            return None;
        }
        let (table, unit, address) = modbus_place(self).ok()?;
        let (next_table, next_unit, next_address) = modbus_place(next).ok()?;
        let bits = table.is_bits();
        if (table, unit) != (next_table, next_unit)
            || (!bits && (self.item_size() == 1 || next.item_size() == 1))
        {
            return None;
        }
        let count = items(table, self.len()).ok()?;
        if address.checked_add(count)? != next_address {
            return None;
        }
        let len = self.len.checked_add(next.len)?;
        let count = items(table, usize::from(len)).ok()?;
        if !table.readable_count(count) {
            return None;
        }
        // BOOLEAN items a bit each, or UINT16 registers (never the 8-bit layout): element
        // size × quantity is the length, as for any variable.
        let (data_type, quantity) = if bits { (0x00, len) } else { (0x22, count) };
        Some(TargetVar {
            len,
            quantity,
            var_type: (self.var_type & 0xC0) | data_type,
            ..*self
        })
    }
}

/// How many items of `table` a value of `len` bytes is: a register holds two bytes, a
/// bit one (as one byte, 0 or 1).
fn items(table: Table, len: usize) -> Result<u16, ResultCode> {
    let count = if table.is_bits() {
        len
    } else {
        len.div_ceil(2)
    };
    u16::try_from(count).map_err(|_| ResultCode::TargetProtocolWrongParam)
}

/// Most bytes a Modbus transfer of bits packs into (2000 bits).
const PACKED: usize = (target_traits::modbus::MAX_READ_BITS as usize).div_ceil(8);

impl<M: MemoryAccess, B: Modbus, S: Serial, V: Vcc> TargetMux<M, B, S, V> {
    /// The memory access: `BB` if the board has none.
    fn memory(&mut self) -> Result<&mut M, ResultCode> {
        self.memory
            .as_mut()
            .ok_or(ResultCode::TargetProtocolNotImplemented)
    }

    /// The Modbus master: `BB` if the board has none.
    fn modbus(&mut self) -> Result<&mut B, ResultCode> {
        self.modbus
            .as_mut()
            .ok_or(ResultCode::TargetProtocolNotImplemented)
    }

    /// The raw serial line: `BB` if the board has none.
    fn serial(&mut self) -> Result<&mut S, ResultCode> {
        self.serial
            .as_mut()
            .ok_or(ResultCode::TargetProtocolNotImplemented)
    }

    /// The Modbus master with the answer timeout of `settings` (its units are 100 ms;
    /// 0 is the master's default).
    fn modbus_for(&mut self, settings: &TargetSettings) -> Result<&mut Self, ResultCode> {
        self.modbus()?
            .set_timeout_ms(u32::from(settings.timeout) * 100);
        Ok(self)
    }

    /// Reads `count` items of `table` into `out` as the object answers them: bits one
    /// byte each, registers as they come.
    fn modbus_read(
        &mut self,
        table: Table,
        unit: u8,
        address: u16,
        count: u16,
        out: &mut [u8],
    ) -> Result<(), ResultCode> {
        // Unit 0 is a broadcast: never a read, and never a write nobody asked to be one.
        if unit == 0 || !table.readable_count(count) || out.len() != item_bytes(table, count) {
            return Err(ResultCode::TargetProtocolWrongParam);
        }
        if !table.is_bits() {
            return self
                .modbus()?
                .read(unit, table, address, count, out)
                .map_err(status_of);
        }
        let mut packed = [0u8; PACKED];
        let packed = packed
            .get_mut(..table.byte_len(count))
            .ok_or(ResultCode::TargetProtocolWrongParam)?;
        self.modbus()?
            .read(unit, table, address, count, packed)
            .map_err(status_of)?;
        for (i, item) in out.iter_mut().enumerate() {
            let byte = packed.get(i / 8).copied().unwrap_or(0);
            *item = (byte >> (i % 8)) & 1;
        }
        Ok(())
    }

    /// Writes `count` items of `table` from `data`, laid out as [`Self::modbus_read`]
    /// answers them (a bit item is 0 or not).
    fn modbus_write(
        &mut self,
        table: Table,
        unit: u8,
        address: u16,
        count: u16,
        data: &[u8],
    ) -> Result<(), ResultCode> {
        if unit == 0 || !table.writable_count(count) || data.len() != item_bytes(table, count) {
            return Err(ResultCode::TargetProtocolWrongParam);
        }
        if !table.is_bits() {
            return self
                .modbus()?
                .write(unit, table, address, count, data)
                .map_err(status_of);
        }
        let mut packed = [0u8; PACKED];
        for (i, item) in data.iter().enumerate() {
            if *item != 0 {
                if let Some(byte) = packed.get_mut(i / 8) {
                    *byte |= 1 << (i % 8);
                }
            }
        }
        let packed = packed
            .get(..table.byte_len(count))
            .ok_or(ResultCode::TargetProtocolWrongParam)?;
        self.modbus()?
            .write(unit, table, address, count, packed)
            .map_err(status_of)
    }

    /// A register variable: 16- and 32-bit elements fill whole registers (most
    /// significant word first); an 8-bit element is the low byte of a register of its
    /// own (`bytes` 1).
    fn read_registers_of(
        &mut self,
        table: Table,
        unit: u8,
        address: u16,
        buf: &mut [u8],
        bytes: usize,
    ) -> Result<(), ResultCode> {
        if bytes != 1 {
            let count = items(table, buf.len())?;
            return self.modbus_read(table, unit, address, count, buf);
        }
        let count = u16::try_from(buf.len()).map_err(|_| ResultCode::TargetProtocolWrongParam)?;
        let mut words = [0u8; 2 * target_traits::modbus::MAX_READ_REGISTERS as usize];
        let words = words
            .get_mut(..2 * usize::from(count))
            .ok_or(ResultCode::TargetProtocolWrongParam)?;
        self.modbus_read(table, unit, address, count, words)?;
        for (byte, word) in buf.iter_mut().zip(words.chunks_exact(2)) {
            *byte = word.get(1).copied().unwrap_or(0);
        }
        Ok(())
    }

    /// Writes an 8-bit register variable: each element the low byte of a register of
    /// its own, its high byte 0.
    fn write_bytes_as_registers(
        &mut self,
        table: Table,
        unit: u8,
        address: u16,
        data: &[u8],
    ) -> Result<(), ResultCode> {
        let count = u16::try_from(data.len()).map_err(|_| ResultCode::TargetProtocolWrongParam)?;
        let mut words = [0u8; 2 * target_traits::modbus::MAX_WRITE_REGISTERS as usize];
        let words = words
            .get_mut(..2 * usize::from(count))
            .ok_or(ResultCode::TargetProtocolWrongParam)?;
        for (word, byte) in words.chunks_exact_mut(2).zip(data) {
            if let [_, low] = word {
                *low = *byte;
            }
        }
        self.modbus_write(table, unit, address, count, words)
    }
}

/// Bytes of `count` items as the object lays them out: one a bit, two a register.
fn item_bytes(table: Table, count: u16) -> usize {
    if table.is_bits() {
        usize::from(count)
    } else {
        2 * usize::from(count)
    }
}

impl<M: MemoryAccess, B: Modbus, S: Serial, V: Vcc> TargetIo for TargetMux<M, B, S, V> {
    fn read(&mut self, var: &TargetVar, buf: &mut [u8]) -> Result<(), ResultCode> {
        let result = self.read_var(var, buf);
        self.count(result)
    }

    fn write(&mut self, var: &TargetVar, data: &[u8]) -> Result<(), ResultCode> {
        let result = self.write_var(var, data);
        self.count(result)
    }

    fn command(
        &mut self,
        settings: &TargetSettings,
        command: &TargetCommand,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<usize, ResultCode> {
        let serial = settings.protocol == TargetSettings::SERIAL;
        match *command {
            TargetCommand::ComStats => {
                let [failed, succeeded] = self.stats;
                let [f0, f1, f2, f3] = failed.to_be_bytes();
                let [s0, s1, s2, s3] = succeeded.to_be_bytes();
                answer(output, [f0, f1, f2, f3, s0, s1, s2, s3])
            }
            TargetCommand::ClearComStats => {
                self.stats = [0; 2];
                Ok(0)
            }
            TargetCommand::AvailableProtocols => answer(output, [self.available()]),
            // Measures and the received bytes are the board's own: no transaction with
            // the target.
            TargetCommand::Vcc => {
                let vcc = self.vcc.as_mut().ok_or(ResultCode::NotImplemented)?;
                answer(output, vcc.millivolts().map_err(status_of)?.to_be_bytes())
            }
            TargetCommand::ReadReceived if serial => {
                self.serial()?.read_received(output).map_err(status_of)
            }
            TargetCommand::ReceivedCount if serial => {
                let count = self.serial()?.received_count().map_err(status_of)?;
                answer(
                    output,
                    u16::try_from(count).unwrap_or(u16::MAX).to_be_bytes(),
                )
            }
            _ => {
                let result = self.run(settings, command, input, output);
                self.count(result)
            }
        }
    }
}

impl<M: MemoryAccess, B: Modbus, S: Serial, V: Vcc> TargetMux<M, B, S, V> {
    /// [`TargetIo::read`], uncounted.
    fn read_var(&mut self, var: &TargetVar, buf: &mut [u8]) -> Result<(), ResultCode> {
        match var.settings.protocol {
            p if MEMORY_PROTOCOLS.contains(&p) => self
                .memory()?
                .read(var.address_u32(), buf)
                .map_err(status_of),
            TargetSettings::MODBUS => {
                let (table, unit, address) = modbus_place(var)?;
                let mux = self.modbus_for(&var.settings)?;
                if table.is_bits() {
                    let count = items(table, buf.len())?;
                    mux.modbus_read(table, unit, address, count, buf)
                } else {
                    mux.read_registers_of(table, unit, address, buf, var.item_size())
                }
            }
            _ => Err(ResultCode::TargetProtocolNotImplemented),
        }
    }

    /// [`TargetIo::write`], uncounted.
    fn write_var(&mut self, var: &TargetVar, data: &[u8]) -> Result<(), ResultCode> {
        match var.settings.protocol {
            p if MEMORY_PROTOCOLS.contains(&p) => self
                .memory()?
                .write(var.address_u32(), data)
                .map_err(status_of),
            TargetSettings::MODBUS => {
                let (table, unit, address) = modbus_place(var)?;
                let mux = self.modbus_for(&var.settings)?;
                if !table.is_bits() && var.item_size() == 1 {
                    return mux.write_bytes_as_registers(table, unit, address, data);
                }
                let count = items(table, data.len())?;
                mux.modbus_write(table, unit, address, count, data)
            }
            _ => Err(ResultCode::TargetProtocolNotImplemented),
        }
    }

    /// A transaction of [`TargetIo::command`], uncounted: the answer's length.
    fn run(
        &mut self,
        settings: &TargetSettings,
        command: &TargetCommand,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<usize, ResultCode> {
        let memory = MEMORY_PROTOCOLS.contains(&settings.protocol);
        let modbus = settings.protocol == TargetSettings::MODBUS;
        let serial = settings.protocol == TargetSettings::SERIAL;
        let reached = (memory && self.memory.is_some())
            || (modbus && self.modbus.is_some())
            || (serial && self.serial.is_some());
        match *command {
            // Connecting to a Modbus server asks the configured unit for a register: an
            // exception is an answer (the server is there), silence or no connection is
            // not. Without a unit (`/1027//21` unset) there is nobody to ask.
            TargetCommand::Connect if modbus && reached => {
                let unit = settings.modbus_unit;
                if unit == 0 {
                    return Ok(0);
                }
                let mut word = [0u8; 2];
                match self.modbus_for(settings)?.modbus()?.read(
                    unit,
                    Table::HoldingRegisters,
                    0,
                    1,
                    &mut word,
                ) {
                    Ok(()) => Ok(0),
                    Err(err) => match err.kind() {
                        ErrorKind::Unreachable
                        | ErrorKind::LostCommunication
                        | ErrorKind::Communication
                        | ErrorKind::Data => Err(status_of(err)),
                        _ => Ok(0),
                    },
                }
            }
            // Memory access and a serial line are there or not: nothing to open.
            TargetCommand::Connect | TargetCommand::Disconnect if reached => Ok(0),
            TargetCommand::SendReceive if serial => {
                let until = Until {
                    delimiter: Delimiter::from_code(settings.delimiter)
                        .ok_or(ResultCode::TargetProtocolWrongParam)?,
                    timeout_ms: u32::from(settings.timeout).saturating_mul(100),
                };
                self.serial()?
                    .send_receive(input, output, until)
                    .map_err(status_of)
            }
            TargetCommand::Send if serial => {
                self.serial()?.send(input).map_err(status_of)?;
                Ok(0)
            }
            // No board here resets its target: BB (`Reset`, `ResetKeep` fall through).
            TargetCommand::Modbus {
                write,
                table,
                unit,
                address,
                count,
            } if modbus => {
                let mux = self.modbus_for(settings)?;
                if write {
                    mux.modbus_write(table, unit, address, count, input)?;
                    Ok(0)
                } else {
                    mux.modbus_read(table, unit, address, count, output)?;
                    Ok(output.len())
                }
            }
            TargetCommand::Memory { write, address } if memory => {
                let memory = self.memory()?;
                if write {
                    memory.write(address, input).map_err(status_of)?;
                    Ok(0)
                } else {
                    memory.read(address, output).map_err(status_of)?;
                    Ok(output.len())
                }
            }
            _ => Err(ResultCode::TargetProtocolNotImplemented),
        }
    }
}

/// `bytes` as the whole answer in `output`: their length; `A0` if `output` is not as long.
fn answer<const N: usize>(output: &mut [u8], bytes: [u8; N]) -> Result<usize, ResultCode> {
    let out: &mut [u8; N] = output
        .try_into()
        .map_err(|_| ResultCode::InternalServerError)?;
    *out = bytes;
    Ok(N)
}
