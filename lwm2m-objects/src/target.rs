//! Object 1027, Target (`objects.md` object 1027 and §6.4, spec decision 13): the target
//! configuration (protocol, core type, firmware version, voltages, page size, protocol
//! configuration) from a declarative table, and the commands the target multiplexer
//! runs (`lwm2m_core::target::TargetMux`): connect, disconnect, reset, reset keep,
//! is-connected (`/3`, `/4`, `/5`, `/30`), the target's supply (`/7`), the available
//! protocols (`/20`), memory read and write (`/33`, `MemoryInfo`), Modbus read and write
//! (`/38`, `/37`, `ModbusOptions`), the raw serial exchange (`/34` send and receive or
//! send only, `/35` the bytes received, `/43` their count; answers of at most
//! [`RAW_ANSWER`] bytes, as many as the target gave), the communication statistics
//! (`/11`), the sub-protocol (`/40`: NONE, no protocol of this release runs over
//! another). Debug and register access of a debug probe (`/31`, `/32`) and the TapNPass
//! adapter's resources (`/36`, `/39`, `/41`, `/42`) answer `A1`.

use lwm2m_core::acl::Access::{self, Admin, User};
use lwm2m_core::config::Config;
use lwm2m_core::object::{Context, HandlerResult, Object, ResourceDef};
use lwm2m_core::target::{ModbusTable as Table, TargetCommand, TargetSettings};
use lwm2m_core::wire::{Body, Method, Request, ResultCode};

use crate::settings::{self, EnumValues, Kind, Setting, SettingDef};
use crate::unlisted::{self, Unprovided};

/// Object id.
pub const ID: u16 = 1027;

/// The most bytes a raw serial answer (`GET /1027//34`, `/35`) carries, whatever the
/// configuration: as many as a Modbus read of 125 registers, and within every board's
/// frame (a 256-byte response has room for 253 bytes of data, this answer and the two
/// of its length while it waits). What the target sends beyond stays received.
pub const RAW_ANSWER: u16 = 250;

/// Resources of object 1027 with the client's method names.
const OTHER_RESOURCES: &[ResourceDef] = &[
    ResourceDef::single(3).get(Admin).post(Admin).answers(1), // isConnected, connect
    ResourceDef::single(4).post(Admin),                       // disconnect
    ResourceDef::single(5).post(Admin),                       // reset
    ResourceDef::single(7).get(Admin).answers(2),             // getVcc
    ResourceDef::single(11).get(Admin).post(Admin).answers(8), // getComStats, clearComStats
    ResourceDef::single(20).get(Admin).answers(1),            // getAvailableProtocols
    ResourceDef::single(30).post(Admin),                      // postResetKeep
    ResourceDef::single(31)
        .get(Admin)
        .post(Admin)
        .not_implemented(), // readDebug, writeDebug
    ResourceDef::single(32)
        .get(Admin)
        .post(Admin)
        .not_implemented(), // getRegisterAccess, postRegisterAccess
    // readAddress, writeAddress: the answer's size is the request's (`answer_bound`).
    ResourceDef::single(33).get(Admin).post(Admin),
    ResourceDef::single(34)
        .get(Admin)
        .post(Admin)
        .answers(RAW_ANSWER), // sendReceive, send
    ResourceDef::single(35).get(Admin).answers(RAW_ANSWER), // readBytes
    ResourceDef::single(36).get(Admin).not_implemented(),   // getStatus
    ResourceDef::single(37).post(Admin),                    // modbusWrite
    // modbusRead: the answer's size is the request's (`answer_bound`).
    ResourceDef::single(38).get(Admin),
    ResourceDef::single(39).post(Admin).not_implemented(), // postAction
    ResourceDef::single(40).get(Admin).answers(1),         // getSubProtocol
    ResourceDef::single(41)
        .get(Admin)
        .post(Admin)
        .not_implemented(), // getControlIn, setControlIn
    ResourceDef::single(42)
        .get(Admin)
        .post(Admin)
        .not_implemented(), // getControlOut, setAdpControlOut
    ResourceDef::single(43).get(Admin).answers(2),         // getReceivedCount
];

/// Configuration values of object 1027 (`objects.md` object 1027 and §6.4, the enums of
/// `enums.json`).
pub const SETTINGS: &[SettingDef] = &[
    SettingDef::new(
        ResourceDef::single(1).get(User).put(Admin).post(Admin),
        Kind::Enum(EnumValues::of(&[0, 1, 2, 3, 4, 6, 7, 255])),
    ), // getProtocol, putProtocol, setProtocol (TargetProtocol: SWD, S3P, JTAG, MODBUS, DIRECT_IO, SERIAL, CUSTOM, NONE)
    SettingDef::new(
        ResourceDef::single(2).get(User).put(Admin),
        Kind::Enum(EnumValues::of(&[0, 1])),
    ), // getCoreType, putCoreType (TargetCoreType: M0_CORTEX, M1_CORTEX)
    SettingDef::new(ResourceDef::single(6).get(User).put(Admin), Kind::Fixed(4)), // getFirmwareVersion, putFirmwareVersion (firmware version (u8.u8.u16))
    SettingDef::new(ResourceDef::single(8).get(User).put(Admin), Kind::U16), // getMinVoltage, putMinVoltage (min voltage)
    SettingDef::new(ResourceDef::single(9).get(User).put(Admin), Kind::U16), // getMaxVoltage, putMaxVoltage (max voltage)
    SettingDef::new(ResourceDef::single(10).get(User).put(Admin), Kind::U32), // getPageSize, putPageSize (page size)
    SettingDef::new(
        ResourceDef::single(21).get(User).put(Admin).post(Admin),
        Kind::ProtocolConfiguration,
    ), // protocol configuration (S3P, serial/Modbus, TapNPass) (S3P (2 bytes), serial/Modbus (8), TapNPass (8 + 5 per USB alias))
];

/// Every resource of the object: [`SETTINGS`] declare their own.
pub const RESOURCES: &[ResourceDef] =
    &settings::table::<{ OTHER_RESOURCES.len() + SETTINGS.len() }>(OTHER_RESOURCES, SETTINGS);

/// The entries of [`RESOURCES`] the dispatcher searches ([`Object::resources`]): those
/// this build provides a method of, and any that do not fit [`UNLISTED`].
pub const LISTED: &[ResourceDef] =
    &unlisted::listed::<{ RESOURCES.len() - unlisted::count(RESOURCES) }>(RESOURCES);

/// The other entries of [`RESOURCES`], two bytes each ([`Object::unlisted`]).
pub const UNLISTED: &[Unprovided] =
    &unlisted::unlisted::<{ unlisted::count(RESOURCES) }>(RESOURCES);

/// The run-time lines of the [`SETTINGS`] this build carries.
pub const SETTING_LINES: &[Setting] = &settings::lines::<{ settings::carried(SETTINGS) }>(SETTINGS);

/// `GET /1027//40`: TargetProtocol NONE, the sub-protocol of every protocol served.
const SUB_PROTOCOL_NONE: u8 = 255;

/// Bytes of a `ModbusOptions` or a `MemoryInfo`.
const OPTIONS_LEN: usize = 9;

/// A `ModbusOptions` body (`objectType | slave | address u16 | length u32 | format`) as a
/// command: the unit and the address as the settings make them (spec decision 13).
fn modbus_options(
    payload: &[u8],
    settings: &TargetSettings,
) -> Result<(Table, u8, u16, u16), ResultCode> {
    let &[object_type, slave, a0, a1, l0, l1, l2, l3, _format] = payload
        .get(..OPTIONS_LEN)
        .ok_or(ResultCode::NotAcceptable)?
    else {
        return Err(ResultCode::NotAcceptable);
    };
    let table = Table::from_object_type(object_type).ok_or(ResultCode::NotAcceptable)?;
    let unit = if slave == 0 {
        settings.modbus_unit
    } else {
        slave
    };
    let register = u16::from_be_bytes([a0, a1]);
    let address = if settings.offset_first_register {
        register.checked_sub(1).ok_or(ResultCode::NotAcceptable)?
    } else {
        register
    };
    let count = u16::try_from(u32::from_be_bytes([l0, l1, l2, l3]))
        .map_err(|_| ResultCode::NotAcceptable)?;
    Ok((table, unit, address, count))
}

/// Bytes of `count` items of `table` as `/38` answers them and `/37` takes them: one a
/// bit (0 or 1), two a register.
fn modbus_bytes(table: Table, count: u16) -> usize {
    if table.is_bits() {
        usize::from(count)
    } else {
        2 * usize::from(count)
    }
}

/// A `MemoryInfo` body (`address u32 | length u32 (items) | format`): the address and
/// the bytes it covers (format `VariableFormat`: 1 bit and 8 bits one byte an item, 16
/// bits two, 32 bits four).
fn memory_info(payload: &[u8]) -> Result<(u32, usize), ResultCode> {
    let &[a0, a1, a2, a3, l0, l1, l2, l3, format] = payload
        .get(..OPTIONS_LEN)
        .ok_or(ResultCode::NotAcceptable)?
    else {
        return Err(ResultCode::NotAcceptable);
    };
    let size = match format {
        0 | 1 => 1,
        2 => 2,
        3 => 4,
        _ => return Err(ResultCode::NotAcceptable),
    };
    let items = usize::try_from(u32::from_be_bytes([l0, l1, l2, l3]))
        .map_err(|_| ResultCode::NotAcceptable)?;
    let len = items.checked_mul(size).ok_or(ResultCode::NotAcceptable)?;
    Ok((u32::from_be_bytes([a0, a1, a2, a3]), len))
}

/// What a `MemoryInfo` or `ModbusOptions` request does: a GET reads `len` bytes (none
/// may follow the options), a POST writes the `len` bytes that follow them. Whether it
/// writes, its input, its answer's length.
fn read_or_write(
    method: Method,
    payload: &[u8],
    len: usize,
) -> Result<(bool, &[u8], usize), ResultCode> {
    let (options, data) = payload.split_at(OPTIONS_LEN.min(payload.len()));
    match method {
        Method::Get if data.is_empty() => Ok((false, options.get(..0).unwrap_or_default(), len)),
        Method::Post if data.len() == len => Ok((true, data, 0)),
        _ => Err(ResultCode::NotAcceptable),
    }
}

/// Object 1027.
#[derive(Debug, Default)]
pub struct TargetObject {
    /// `GET /1027//3`: a connect succeeded since the last disconnect, boot or change of
    /// protocol.
    connected: bool,
}

impl TargetObject {
    /// Object 1027.
    pub const fn new() -> Self {
        TargetObject { connected: false }
    }
}

impl Object for TargetObject {
    fn id(&self) -> u16 {
        ID
    }

    fn resources(&self) -> &'static [ResourceDef] {
        LISTED
    }

    fn unlisted(&self, resource: u16, instance: u16, method: Method) -> Option<Access> {
        unlisted::access(UNLISTED, resource, instance, method)
    }

    /// Values of settings this build does not carry take no room; a boot starts
    /// disconnected.
    fn config_loaded(&mut self, config: &mut lwm2m_core::config::Config) {
        settings::forget_unserved(config, ID, SETTING_LINES);
        self.connected = false;
    }

    /// `/33` and `/38` answer what their request asks for, whatever the configuration
    /// (it decides only whether the request is valid: a bound that does not depend on it
    /// cannot be changed by an earlier item of a multi-request).
    fn answer_bound(&self, _config: &Config, req: &Request<'_>) -> usize {
        match (req.path.resource, req.method, req.payload) {
            (33, Method::Get, _) => memory_info(req.payload).map_or(0, |(_, len)| len),
            (38, Method::Get, &[object_type, _, _, _, l0, l1, l2, l3, ..]) => {
                let count = u16::try_from(u32::from_be_bytes([l0, l1, l2, l3])).unwrap_or(0);
                Table::from_object_type(object_type).map_or(0, |table| modbus_bytes(table, count))
            }
            // Too short to be a `ModbusOptions`: refused, no data.
            (38, Method::Get, _) => 0,
            _ => lwm2m_core::object::default_bound(self.resources(), req),
        }
    }

    fn handle(
        &mut self,
        ctx: &mut Context<'_>,
        req: &Request<'_>,
        body: &mut Body<'_>,
    ) -> HandlerResult {
        let none = req.payload.get(..0).unwrap_or_default();
        let command = |command| (command, none, 0);
        let (command, input, answer) = match (req.path.resource, req.method) {
            (3, Method::Get) => {
                body.push_u8(u8::from(self.connected))?;
                return Ok(ResultCode::Ok);
            }
            // No protocol of this release runs over another: the sub-protocol is
            // TargetProtocol NONE.
            (40, Method::Get) => {
                body.push_u8(SUB_PROTOCOL_NONE)?;
                return Ok(ResultCode::Ok);
            }
            (3, Method::Post) => command(TargetCommand::Connect),
            (4, Method::Post) => command(TargetCommand::Disconnect),
            (5, Method::Post) => command(TargetCommand::Reset),
            (7, Method::Get) => (TargetCommand::Vcc, none, 2),
            (30, Method::Post) => command(TargetCommand::ResetKeep),
            // Nothing to send: not a raw exchange.
            (34, _) if req.payload.is_empty() => return Err(ResultCode::NotAcceptable),
            (34, Method::Get) => (TargetCommand::SendReceive, req.payload, RAW_ANSWER.into()),
            (34, Method::Post) => (TargetCommand::Send, req.payload, 0),
            (35, Method::Get) => (TargetCommand::ReadReceived, none, RAW_ANSWER.into()),
            (43, Method::Get) => (TargetCommand::ReceivedCount, none, 2),
            (11, Method::Get) => (TargetCommand::ComStats, none, 8),
            (11, Method::Post) => command(TargetCommand::ClearComStats),
            (20, Method::Get) => (TargetCommand::AvailableProtocols, none, 1),
            (33, method) => {
                let (address, len) = memory_info(req.payload)?;
                let (write, input, answer) = read_or_write(method, req.payload, len)?;
                (TargetCommand::Memory { write, address }, input, answer)
            }
            (37 | 38, method) => {
                let settings = TargetSettings::of(ctx.config());
                let (table, unit, address, count) = modbus_options(req.payload, &settings)?;
                let len = modbus_bytes(table, count);
                let (write, input, answer) = read_or_write(method, req.payload, len)?;
                let command = TargetCommand::Modbus {
                    write,
                    table,
                    unit,
                    address,
                    count,
                };
                (command, input, answer)
            }
            (1, Method::Put | Method::Post) => {
                // Another protocol: not connected to it yet.
                let done = settings::handle_in(SETTING_LINES, ctx, ID, req, body);
                if done.is_ok() {
                    self.connected = false;
                }
                return done;
            }
            _ => return settings::handle_in(SETTING_LINES, ctx, ID, req, body),
        };
        let done = ctx.target_command(command, input, answer, body);
        match command {
            TargetCommand::Connect => self.connected = done.is_ok(),
            TargetCommand::Disconnect if done.is_ok() => self.connected = false,
            _ => {}
        }
        done.map(|_| ResultCode::Ok)
    }
}
