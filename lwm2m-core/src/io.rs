//! Operations the engine suspends on: a target read or write, a configuration save, an
//! append to a blob or its clear.
//!
//! Handlers never perform I/O. When one needs the target or the store, the engine stops
//! the request there and [`Device::start`] (or [`Device::resume`]) returns
//! [`Step::Pending`] with the [`Operation`]; the port performs it — blocking, awaiting,
//! or over several polls of a slow bus — and hands the result to [`Device::resume`],
//! passing the same request and output buffers again. Meanwhile the device still answers
//! other requests (`A8`: busy) and its timers still run ([`Device::poll`]).
//!
//! The engine keeps the request's cursor in a fixed-size state: which item of a
//! multi-request, how many operations of the current item are done. On resume it runs
//! the current item's handler again from its start; the operations it already did answer
//! at once (a read's bytes are already in the output buffer), so a handler is written as
//! if I/O were synchronous. A handler runs again only up to its next operation, so what
//! it does before an operation must give the same result when done twice (handlers
//! that read, or set a value and then save, do).
//!
//! A failed operation fails the request, or the item of a multi-request, with its result
//! code: the handler does not run again.
//!
//! **Answers of the target's length.** Most commands of object 1027 answer as many bytes
//! as their request says; a raw serial exchange ([`TargetCommand::SendReceive`],
//! [`TargetCommand::ReadReceived`]: [`TargetCommand::answer_varies`]) answers as many as
//! the target gave. Its output area ([`Operation::read_buffer`]) is then the most the
//! answer may take plus [`ANSWER_LEN_BYTES`]: the answer goes from the start of the area,
//! and [`Operation::perform`] writes its length (u16, big-endian) in the area's last two
//! bytes, where the handler finds it when it runs again. The length thus travels with the
//! answer's bytes: a port that performs the operation elsewhere and copies the area back
//! (a worker thread) carries it without knowing it is there.
//!
//! [`Device::handle`](crate::Device::handle), the blocking entry point, does not suspend:
//! the device's own target and store perform each operation on the spot, and the handler
//! runs once.
//!
//! [`Device::start`]: crate::Device::start
//! [`Device::resume`]: crate::Device::resume
//! [`Device::poll`]: crate::Device::poll
//! [`Step::Pending`]: crate::Step::Pending

use crate::blob::BlobId;
use crate::config::{Config, Variable};
use crate::storage::{ConfigStore, StoreError};
use crate::target::TargetIo;
use crate::wire::ResultCode;

/// The target settings a target operation runs with, from the configuration: the
/// protocol (`/1027//1`) and the Modbus and serial fields of the protocol configuration
/// (`/1027//21`). Carried by every target operation, so that a target multiplexer needs
/// no access to the configuration (an async port performs operations away from it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TargetSettings {
    /// `/1027//1`: the TargetProtocol (SWD 0, S3P 1, JTAG 2, MODBUS 3, DIRECT_IO 4,
    /// SERIAL 6, CUSTOM 7, NONE 255); SWD when never written.
    pub protocol: u8,
    /// `/1027//21` bits 63–56: the Modbus unit id of requests that give none (unit 0).
    pub modbus_unit: u8,
    /// `/1027//21` bit 52: register N is PDU address N − 1 (else N).
    pub offset_first_register: bool,
    /// `/1027//21` bits 7–0: the answer timeout, in units of 100 ms (0: the target's
    /// default).
    pub timeout: u8,
    /// `/1027//21` bits 15–12: the handshake delimiter that ends a raw serial answer
    /// (NONE 0, CR 1, LF 2, CR_LF 3: `target_traits::serial::Delimiter::from_code`).
    pub delimiter: u8,
}

impl TargetSettings {
    /// TargetProtocol MODBUS.
    pub const MODBUS: u8 = 3;
    /// TargetProtocol SERIAL (a raw serial line).
    pub const SERIAL: u8 = 6;

    /// The settings in `config`.
    pub fn of(config: &Config) -> TargetSettings {
        let protocol = config
            .settings
            .get(1027, 1)
            .and_then(|value| value.first().copied())
            .unwrap_or(0);
        // The serial/Modbus record: a little-endian 64-bit field, its low byte first; a
        // shorter one (the S3P record alone, from an image of an earlier release) with
        // zeros after it, as `/1027//21` reads it.
        let mut record = [0u8; 8];
        if let Some(value) = config.settings.get(1027, 21) {
            let len = value.len().min(record.len());
            record[..len].copy_from_slice(&value[..len]);
        }
        let [timeout, b1, _, _, _, _, b6, unit] = record;
        TargetSettings {
            protocol,
            modbus_unit: unit,
            offset_first_register: b6 & 0x10 != 0,
            timeout,
            delimiter: b1 >> 4,
        }
    }
}

/// What a target needs to know of a variable to read or write its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TargetVar {
    /// Variable id (`/1029/{id}`).
    pub id: u16,
    /// `/1029/{id}/0`: a u32 memory address, or Modbus `function, slave, register`.
    pub address: [u8; 4],
    /// `/1029/{id}/1`: `[domain:2][data type:6]`.
    pub var_type: u8,
    /// `/1029/{id}/2`: number of elements.
    pub quantity: u16,
    /// Length of the value in bytes (elements × element size).
    pub len: u16,
    /// The target settings in force.
    pub settings: TargetSettings,
}

impl TargetVar {
    /// The target's view of `var` under `settings`; `None` if its type has no size or
    /// the value is longer than any frame.
    pub fn of(var: &Variable, settings: TargetSettings) -> Option<TargetVar> {
        Some(TargetVar {
            id: var.id,
            address: var.address,
            var_type: var.var_type,
            quantity: var.quantity,
            len: u16::try_from(var.value_len()?).ok()?,
            settings,
        })
    }

    /// The size of one element in bytes (1 for BOOLEAN and the 8-bit types).
    pub fn item_size(&self) -> usize {
        usize::from(self.len)
            .checked_div(usize::from(self.quantity))
            .unwrap_or(0)
    }

    /// The address as a big-endian u32 memory address.
    pub const fn address_u32(&self) -> u32 {
        u32::from_be_bytes(self.address)
    }

    /// Length of the value in bytes.
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the value is empty (never, for a variable of a known type).
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A command of object 1027 to the target, performed by its multiplexer
/// ([`TargetIo::command`]): its input is the [`Operation::write_data`] of the request,
/// its answer the [`Operation::read_buffer`] of the response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum TargetCommand {
    /// `POST /1027//3`: connect to the target with the protocol of the settings.
    Connect,
    /// `POST /1027//4`: disconnect.
    Disconnect,
    /// `POST /1027//5`: reset the target.
    Reset,
    /// `GET /1027//11`: the communication statistics, `nbFailCom u32 | nbSuccessfulCom
    /// u32` (big-endian): target transactions that failed and that succeeded.
    ComStats,
    /// `POST /1027//11`: the statistics cleared.
    ClearComStats,
    /// `GET /1027//20`: the protocols this board reaches, a mask of TargetProtocol
    /// values (one byte: the OR of the values, as the client decodes it).
    AvailableProtocols,
    /// `GET /1027//38` (`write` false): `count` items of `table` of server `unit` from
    /// `address`, one byte each for bits (0 or 1), big-endian words for registers;
    /// `POST /1027//37` (`write` true): as many written, laid out the same.
    Modbus {
        /// A write (its items are the input), else a read (they are the answer).
        write: bool,
        /// The table.
        table: target_traits::modbus::Table,
        /// The server.
        unit: u8,
        /// The PDU address of the first item.
        address: u16,
        /// How many items.
        count: u16,
    },
    /// `GET /1027//33` (`write` false): bytes of the target's memory from `address`;
    /// `POST /1027//33` (`write` true): bytes written there.
    Memory {
        /// A write (the bytes are the input), else a read (they are the answer).
        write: bool,
        /// The first byte's address.
        address: u32,
    },
    /// `POST /1027//30`: reset the target, keeping its connection ("reset keep").
    ResetKeep,
    /// `GET /1027//7`: the target's supply voltage, u16 big-endian millivolts.
    Vcc,
    /// `GET /1027//34`: the input sent on the raw serial line, the answer what the
    /// target answered (ended by the delimiter or the timeout of the settings, or the
    /// room): of the target's length ([`TargetCommand::answer_varies`]).
    SendReceive,
    /// `POST /1027//34`: the input sent on the raw serial line; what the target answers
    /// is received.
    Send,
    /// `GET /1027//35`: the oldest bytes received on the raw serial line, as many as
    /// there are and the answer can take ([`TargetCommand::answer_varies`]).
    ReadReceived,
    /// `GET /1027//43`: how many bytes are received, u16 big-endian (saturating).
    ReceivedCount,
}

impl TargetCommand {
    /// Whether the answer is as long as the target makes it, up to its room, rather than
    /// exactly as long as asked ([`crate::io`]: the length trailer of the output area).
    pub const fn answer_varies(&self) -> bool {
        matches!(
            self,
            TargetCommand::SendReceive | TargetCommand::ReadReceived
        )
    }
}

/// Bytes at the end of the output area of an answer of the target's length that hold
/// that length ([`crate::io`]).
pub const ANSWER_LEN_BYTES: usize = 2;

/// Whether `len` bytes are a valid answer of `command` in `room` bytes: exactly `room`,
/// or at most `room` for an answer of the target's length; `A0` otherwise.
pub(crate) fn answered(
    command: &TargetCommand,
    len: usize,
    room: usize,
) -> Result<usize, ResultCode> {
    let valid = if command.answer_varies() {
        len <= room
    } else {
        len == room
    };
    if valid {
        Ok(len)
    } else {
        Err(ResultCode::InternalServerError)
    }
}

/// Where the bytes an operation takes lie ([`Operation::write_data`]): in the request
/// buffer, or, for a command of a single packet (feature `packets`), in the output
/// buffer, where the packet's commands are kept while they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum At {
    /// This offset of the request buffer.
    Request(usize),
    /// This offset of the output buffer.
    Output(usize),
}

impl At {
    /// The `len` bytes at this place of `request` or `out`.
    fn get<'a>(self, request: &'a [u8], out: &'a [u8], len: usize) -> Option<&'a [u8]> {
        let (buf, at) = match self {
            At::Request(at) => (request, at),
            At::Output(at) => (out, at),
        };
        buf.get(at..at.checked_add(len)?)
    }
}

/// An I/O operation a request waits on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Operation {
    /// Read the value of `var` from the target into [`Operation::read_buffer`] of the
    /// output buffer (`var.len` bytes at offset `at`).
    ReadTarget {
        /// The variable.
        var: TargetVar,
        /// Where the value goes in the output buffer.
        at: usize,
    },
    /// Write [`Operation::write_data`] (`var.len` bytes at `at`) as the value of `var` in
    /// the target.
    WriteTarget {
        /// The variable.
        var: TargetVar,
        /// Where the value is.
        at: At,
    },
    /// Save the configuration image ([`Device::config`](crate::Device::config)) to the
    /// store.
    SaveConfig,
    /// Append [`Operation::write_data`] (`len` bytes at `at`) to `blob` in the store
    /// ([`ConfigStore::append_blob`], [`crate::blob`]).
    AppendBlob {
        /// The blob.
        blob: BlobId,
        /// Where the data is.
        at: At,
        /// How many bytes.
        len: u16,
    },
    /// Empty `blob` in the store ([`ConfigStore::clear_blob`]).
    ClearBlob {
        /// The blob.
        blob: BlobId,
    },
    /// Run `command` on the target with `settings`: its input is `input_len` bytes at
    /// `input_at` ([`Operation::write_data`]), its answer `output_len` bytes of the output
    /// buffer at `output_at` ([`TargetIo::command`]); for an answer of the target's
    /// length, at most `output_len` − [`ANSWER_LEN_BYTES`] bytes, its length in the last
    /// two ([`crate::io`]).
    Target {
        /// The command.
        command: TargetCommand,
        /// The target settings in force.
        settings: TargetSettings,
        /// Where the input is.
        input_at: At,
        /// How many bytes of input.
        input_len: u16,
        /// Where the answer goes in the output buffer.
        output_at: usize,
        /// How many bytes of answer (with the length trailer, for an answer of the
        /// target's length).
        output_len: u16,
    },
    /// Write [`Operation::write_data`] (`len` bytes at `at`) into the packet store at
    /// `offset` ([`crate::packets::PacketStorage::write`], feature
    /// `packets`): a chunk of `POST /1024//82`.
    #[cfg(feature = "packets")]
    WritePacket {
        /// Where the bytes go in the store.
        offset: u32,
        /// Where they are.
        at: At,
        /// How many.
        len: u16,
    },
    /// Open the single packet at `source` into [`Operation::read_buffer`] of the output
    /// buffer (`room` bytes at `at`): decrypted, checked and recorded by
    /// [`crate::packets::open`], which needs the device's configuration (the senders'
    /// keys). Feature `packets`: `POST /1024//80` and `/83`.
    #[cfg(feature = "packets")]
    OpenPacket {
        /// Where the packet is.
        source: crate::packets::PacketSource,
        /// Where its output area is in the output buffer.
        at: usize,
        /// Bytes of the output area.
        room: u16,
    },
}

/// The result of an operation, handed to [`Device::resume`](crate::Device::resume).
pub type IoResult = Result<(), ResultCode>;

impl Operation {
    /// The bytes of the output buffer a [`Operation::ReadTarget`] fills, or an
    /// [`Operation::Target`] answers into (with the length trailer of an answer of the
    /// target's length: a port that copies this area copies the length too); `None` for
    /// other operations or a buffer that is not the one given to the engine.
    pub fn read_buffer<'o>(&self, out: &'o mut [u8]) -> Option<&'o mut [u8]> {
        match *self {
            Operation::ReadTarget { var, at } => out.get_mut(at..at.checked_add(var.len())?),
            Operation::Target {
                output_at,
                output_len,
                ..
            } => out.get_mut(output_at..output_at.checked_add(usize::from(output_len))?),
            #[cfg(feature = "packets")]
            Operation::OpenPacket { at, room, .. } => {
                out.get_mut(at..at.checked_add(usize::from(room))?)
            }
            _ => None,
        }
    }

    /// The bytes a [`Operation::WriteTarget`] writes, an [`Operation::AppendBlob`]
    /// appends, an [`Operation::Target`] takes as its input, in `request` or in `out`
    /// ([`At`]: a single packet's commands are in `out`, so a port that performs an
    /// operation elsewhere copies both buffers); `None` for other operations or buffers
    /// that are not the ones given to the engine.
    pub fn write_data<'a>(&self, request: &'a [u8], out: &'a [u8]) -> Option<&'a [u8]> {
        let (at, len) = self.input()?;
        at.get(request, out, len)
    }

    /// The input and the output area of an [`Operation::Target`], the input in `request`
    /// or, apart from the output area, in `out`.
    fn input_and_output<'a>(
        &self,
        request: &'a [u8],
        out: &'a mut [u8],
    ) -> Option<(&'a [u8], &'a mut [u8])> {
        let Operation::Target {
            input_at,
            input_len,
            output_at,
            output_len,
            ..
        } = *self
        else {
            return None;
        };
        let (input_len, output_len) = (usize::from(input_len), usize::from(output_len));
        let output_end = output_at.checked_add(output_len)?;
        match input_at {
            At::Request(at) => Some((
                request.get(at..at.checked_add(input_len)?)?,
                out.get_mut(output_at..output_end)?,
            )),
            At::Output(at) => {
                let input_end = at.checked_add(input_len)?;
                if at >= output_end {
                    let (head, tail) = out.split_at_mut_checked(at)?;
                    Some((tail.get(..input_len)?, head.get_mut(output_at..output_end)?))
                } else if input_end <= output_at {
                    let (head, tail) = out.split_at_mut_checked(output_at)?;
                    Some((head.get(at..input_end)?, tail.get_mut(..output_len)?))
                } else {
                    None
                }
            }
        }
    }

    /// Where an operation's input is, and its length.
    fn input(&self) -> Option<(At, usize)> {
        match *self {
            Operation::WriteTarget { var, at } => Some((at, var.len())),
            Operation::AppendBlob { at, len, .. } => Some((at, usize::from(len))),
            Operation::Target {
                input_at,
                input_len,
                ..
            } => Some((input_at, usize::from(input_len))),
            #[cfg(feature = "packets")]
            Operation::WritePacket { at, len, .. } => Some((at, usize::from(len))),
            _ => None,
        }
    }

    /// Performs the operation, blocking: what a blocking port does with a
    /// [`Step::Pending`](crate::Step::Pending). `request` and `out` are the
    /// buffers the request was started with; `config` is the device's configuration.
    pub fn perform<T, S>(
        &self,
        config: &Config,
        request: &[u8],
        out: &mut [u8],
        target: &mut T,
        store: &mut S,
    ) -> IoResult
    where
        T: TargetIo + ?Sized,
        S: ConfigStore + ?Sized,
    {
        match *self {
            Operation::ReadTarget { var, .. } => {
                let buf = self
                    .read_buffer(out)
                    .ok_or(ResultCode::InternalServerError)?;
                target.read(&var, buf)
            }
            Operation::WriteTarget { var, .. } => {
                let data = self
                    .write_data(request, out)
                    .ok_or(ResultCode::InternalServerError)?;
                target.write(&var, data)
            }
            Operation::SaveConfig => save(store, config),
            Operation::AppendBlob { blob, .. } => {
                let data = self
                    .write_data(request, out)
                    .ok_or(ResultCode::InternalServerError)?;
                stored(store.append_blob(blob, data))
            }
            Operation::ClearBlob { blob } => stored(store.clear_blob(blob)),
            Operation::Target {
                command, settings, ..
            } => {
                let (input, output) = self
                    .input_and_output(request, out)
                    .ok_or(ResultCode::InternalServerError)?;
                if !command.answer_varies() {
                    let len = target.command(&settings, &command, input, output)?;
                    return answered(&command, len, output.len()).map(|_| ());
                }
                let room = output
                    .len()
                    .checked_sub(ANSWER_LEN_BYTES)
                    .ok_or(ResultCode::InternalServerError)?;
                let (answer, trailer) = output.split_at_mut(room);
                let len = target.command(&settings, &command, input, answer)?;
                let len = answered(&command, len, room)?;
                let len = u16::try_from(len).map_err(|_| ResultCode::InternalServerError)?;
                let [hi, lo] = trailer else {
                    return Err(ResultCode::InternalServerError);
                };
                [*hi, *lo] = len.to_be_bytes();
                Ok(())
            }
            #[cfg(feature = "packets")]
            Operation::WritePacket { offset, .. } => {
                let data = self
                    .write_data(request, out)
                    .ok_or(ResultCode::InternalServerError)?;
                write_packet(store, offset, data)
            }
            #[cfg(feature = "packets")]
            Operation::OpenPacket { source, .. } => {
                let area = self
                    .read_buffer(out)
                    .ok_or(ResultCode::InternalServerError)?;
                let mut software = crate::crypto::Software;
                crate::packets::open(
                    &mut software,
                    config,
                    source,
                    request,
                    area,
                    store.packets(),
                )
            }
        }
    }
}

/// Writes a chunk's bytes into the packet store of `store`: `A7` past its room or if it
/// has none, `A4` if the flash failed.
#[cfg(feature = "packets")]
pub(crate) fn write_packet<S: ConfigStore + ?Sized>(
    store: &mut S,
    offset: u32,
    data: &[u8],
) -> IoResult {
    let packets = store.packets().ok_or(ResultCode::NvmFull)?;
    packets.write(offset, data).map_err(|err| {
        warn!("packet store write failed: {}", err);
        err.result_code()
    })
}

/// The result code of a blob operation: `A7` if the blob's region has no room (or the
/// store keeps no such blob), `A4` if the flash failed.
pub(crate) fn stored(result: Result<(), StoreError>) -> IoResult {
    result.map_err(|err| {
        warn!("blob operation failed: {}", err);
        ResultCode::from(err)
    })
}

/// Saves `config` to `store`: `A4` if the flash write failed, `A7` if the image does not
/// fit (the one place a save failure becomes a result code).
pub(crate) fn save<S: ConfigStore + ?Sized>(store: &mut S, config: &Config) -> IoResult {
    store.save(config).map_err(|err| {
        warn!("configuration save failed: {}", err);
        ResultCode::from(err)
    })
}

/// Where `inner` starts within `outer`, if it lies wholly inside it.
pub(crate) fn offset_in(outer: &[u8], inner: &[u8]) -> Option<usize> {
    // Addresses only compared, never dereferenced (as nom's `Offset` does).
    let start = (inner.as_ptr() as usize).checked_sub(outer.as_ptr() as usize)?;
    (start.checked_add(inner.len())? <= outer.len()).then_some(start)
}

/// How far the current request (or multi-request item) got with its operations.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct IoCursor {
    /// Operations of the current item already done (each succeeded).
    pub(crate) done: u16,
    /// Operations the handler asked for in this run.
    pub(crate) next: u16,
    /// The first operation not done yet: the handler stops there.
    pub(crate) pending: Option<Operation>,
}

impl IoCursor {
    /// The handler asks for `op`: `Ok` if it is done already, else it becomes the pending
    /// operation and the handler is told to stop (`Err`, whatever the code: the engine
    /// sees the pending operation and suspends).
    pub(crate) fn ask(&mut self, op: Operation) -> IoResult {
        self.ask_fresh(op).map(|_| ())
    }

    /// [`IoCursor::ask`], telling also whether a done operation completed since the
    /// handler last ran (`true`: the operation done last; `false`: an earlier run of the
    /// handler already saw it done).
    pub(crate) fn ask_fresh(&mut self, op: Operation) -> Result<bool, ResultCode> {
        let index = self.next;
        // More operations than the cursor counts: the request ends (A0), never loops.
        self.next = self
            .next
            .checked_add(1)
            .ok_or(ResultCode::InternalServerError)?;
        if index < self.done {
            return Ok(index + 1 == self.done);
        }
        if self.pending.is_none() {
            self.pending = Some(op);
        }
        Err(ResultCode::ServiceUnavailable)
    }

    /// Whether the next operation asked for was done already (the handler runs again
    /// after it).
    #[cfg(feature = "packets")]
    pub(crate) fn next_is_done(&self) -> bool {
        self.next < self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_is_found_only_inside() {
        let buf = [0u8; 16];
        assert_eq!(offset_in(&buf, &buf[3..7]), Some(3));
        assert_eq!(offset_in(&buf, &buf[16..]), Some(16));
        let other = [0u8; 4];
        assert_eq!(offset_in(&buf[4..], &buf[..2]), None);
        assert_eq!(offset_in(&buf[..4], &buf[2..6]), None);
        let _ = offset_in(&buf, &other);
    }

    #[test]
    fn done_operations_answer_at_once_and_the_next_one_suspends() {
        let mut io = IoCursor {
            done: 2,
            ..IoCursor::default()
        };
        assert_eq!(io.ask_fresh(Operation::SaveConfig), Ok(false));
        assert_eq!(io.ask_fresh(Operation::SaveConfig), Ok(true));
        assert!(io.ask(Operation::SaveConfig).is_err());
        assert_eq!(io.pending, Some(Operation::SaveConfig));
    }

    /// A target whose every command answers `len` bytes of 0xAB.
    struct Answers(usize);

    impl TargetIo for Answers {
        fn read(&mut self, _: &TargetVar, _: &mut [u8]) -> IoResult {
            Ok(())
        }

        fn write(&mut self, _: &TargetVar, _: &[u8]) -> IoResult {
            Ok(())
        }

        fn command(
            &mut self,
            _: &TargetSettings,
            _: &TargetCommand,
            _: &[u8],
            output: &mut [u8],
        ) -> Result<usize, ResultCode> {
            let n = self.0.min(output.len());
            output[..n].fill(0xAB);
            Ok(self.0)
        }
    }

    fn target_op(command: TargetCommand, output_len: u16) -> Operation {
        Operation::Target {
            command,
            settings: TargetSettings::default(),
            input_at: At::Request(0),
            input_len: 0,
            output_at: 1,
            output_len,
        }
    }

    #[test]
    fn an_answer_of_the_target_s_length_is_followed_by_it() {
        let config = Config::default();
        let perform = |op: &Operation, len: usize, out: &mut [u8]| {
            op.perform(
                &config,
                &[],
                out,
                &mut Answers(len),
                &mut crate::storage::NoStore,
            )
        };
        // Room for 5, 3 answered: the length in the area's last two bytes.
        let op = target_op(TargetCommand::SendReceive, 5 + ANSWER_LEN_BYTES as u16);
        let mut out = [0u8; 10];
        assert_eq!(perform(&op, 3, &mut out), Ok(()));
        assert_eq!(out, [0, 0xAB, 0xAB, 0xAB, 0, 0, 0, 3, 0, 0]);
        // As many as the room; more is the target's fault: A0.
        assert_eq!(perform(&op, 5, &mut out), Ok(()));
        assert_eq!(out[6..8], [0, 5]);
        assert_eq!(
            perform(&op, 6, &mut out),
            Err(ResultCode::InternalServerError)
        );
        // An area without room for the trailer: A0, nothing asked.
        let op = target_op(TargetCommand::ReadReceived, 1);
        assert_eq!(
            perform(&op, 0, &mut out),
            Err(ResultCode::InternalServerError)
        );
        // A fixed answer is exactly its length.
        let op = target_op(TargetCommand::ReceivedCount, 2);
        assert_eq!(perform(&op, 2, &mut out), Ok(()));
        assert_eq!(
            perform(&op, 1, &mut out),
            Err(ResultCode::InternalServerError)
        );
        assert!(
            !TargetCommand::Send.answer_varies() && TargetCommand::ReadReceived.answer_varies()
        );
    }

    #[test]
    fn the_delimiter_is_the_high_nibble_of_the_second_byte() {
        let mut config = Config::default();
        let record = [0x0A, 0x30, 0x09, 0x01, 0x00, 0xC2, 0x11, 0x01];
        config.settings.set(1027, 21, &record).unwrap();
        let settings = TargetSettings::of(&config);
        assert_eq!((settings.delimiter, settings.timeout), (3, 10));
        assert_eq!(
            (settings.modbus_unit, settings.offset_first_register),
            (1, true)
        );
    }

    #[test]
    fn a_short_record_reads_as_zeros_after_it() {
        let mut config = Config::default();
        // The S3P record alone (delay 5, INDEXED), as `/1027//21` answers it: 05 01 00...
        config.settings.set(1027, 21, &[0x05, 0x01]).unwrap();
        let settings = TargetSettings::of(&config);
        assert_eq!((settings.timeout, settings.delimiter), (5, 0));
        assert_eq!(
            (settings.modbus_unit, settings.offset_first_register),
            (0, false)
        );
    }

    #[test]
    fn buffers_of_an_operation_are_checked() {
        let var = TargetVar {
            id: 1,
            address: [0; 4],
            var_type: 0x25,
            quantity: 1,
            len: 4,
            settings: TargetSettings::default(),
        };
        let mut out = [0u8; 8];
        let read = Operation::ReadTarget { var, at: 6 };
        assert!(read.read_buffer(&mut out).is_none());
        let read = Operation::ReadTarget { var, at: 4 };
        assert_eq!(read.read_buffer(&mut out).map(|b| b.len()), Some(4));
        assert!(read.write_data(&out, &[]).is_none());
        let write = Operation::WriteTarget {
            var,
            at: At::Request(usize::MAX),
        };
        assert!(write.write_data(&out, &out).is_none());
        let write = Operation::WriteTarget {
            var,
            at: At::Output(4),
        };
        assert_eq!(write.write_data(&[], &out), Some(&out[4..8]));
        let blob = crate::blob::BlobId(57);
        let append = Operation::AppendBlob {
            blob,
            at: At::Request(6),
            len: 2,
        };
        assert_eq!(append.write_data(&out, &[]), Some(&out[6..8]));
        let append = Operation::AppendBlob {
            blob,
            at: At::Request(7),
            len: 2,
        };
        assert!(append.write_data(&out, &[]).is_none());
        let append = Operation::AppendBlob {
            blob,
            at: At::Request(usize::MAX),
            len: 1,
        };
        assert!(append.write_data(&out, &out).is_none());
        assert!(Operation::ClearBlob { blob }
            .write_data(&out, &out)
            .is_none());
    }
}
