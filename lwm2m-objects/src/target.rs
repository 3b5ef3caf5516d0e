//! Object 1027, Target (`objects.md` object 1027 and §6.4). This release keeps the
//! target configuration (protocol, core type, firmware version, voltages, page size,
//! protocol configuration) from a declarative table; connection, memory, Modbus and raw
//! access arrive with the target side and answer `A1` until then.

use lwm2m_core::acl::Access::{self, Admin, User};
use lwm2m_core::object::{Context, HandlerResult, Object, ResourceDef};
use lwm2m_core::wire::{Body, Method, Request};

use crate::settings::{self, EnumValues, Kind, Setting, SettingDef};
use crate::unlisted::{self, Unprovided};

/// Object id.
pub const ID: u16 = 1027;

/// Resources of object 1027 with the client's method names.
const OTHER_RESOURCES: &[ResourceDef] = &[
    ResourceDef::single(3)
        .get(Admin)
        .post(Admin)
        .not_implemented(), // isConnected, connect
    ResourceDef::single(4).post(Admin).not_implemented(), // disconnect
    ResourceDef::single(5).post(Admin).not_implemented(), // reset
    ResourceDef::single(7).get(Admin).not_implemented(),  // getVcc
    ResourceDef::single(11)
        .get(Admin)
        .post(Admin)
        .not_implemented(), // getComStats, clearComStats
    ResourceDef::single(20).get(Admin).not_implemented(), // getAvailableProtocols
    ResourceDef::single(30).post(Admin).not_implemented(), // postResetKeep
    ResourceDef::single(31)
        .get(Admin)
        .post(Admin)
        .not_implemented(), // readDebug, writeDebug
    ResourceDef::single(32)
        .get(Admin)
        .post(Admin)
        .not_implemented(), // getRegisterAccess, postRegisterAccess
    ResourceDef::single(33)
        .get(Admin)
        .post(Admin)
        .not_implemented(), // readAddress, writeAddress
    ResourceDef::single(34)
        .get(Admin)
        .post(Admin)
        .not_implemented(), // sendReceive, send
    ResourceDef::single(35).get(Admin).not_implemented(), // readBytes
    ResourceDef::single(36).get(Admin).not_implemented(), // getStatus
    ResourceDef::single(37).post(Admin).not_implemented(), // modbusWrite
    ResourceDef::single(38).get(Admin).not_implemented(), // modbusRead
    ResourceDef::single(39).post(Admin).not_implemented(), // postAction
    ResourceDef::single(40).get(Admin).not_implemented(), // getSubProtocol
    ResourceDef::single(41)
        .get(Admin)
        .post(Admin)
        .not_implemented(), // getControlIn, setControlIn
    ResourceDef::single(42)
        .get(Admin)
        .post(Admin)
        .not_implemented(), // getControlOut, setAdpControlOut
    ResourceDef::single(43).get(Admin).not_implemented(), // getReceivedCount
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

/// Object 1027.
#[derive(Debug, Default)]
pub struct TargetObject;

impl TargetObject {
    /// Object 1027.
    pub const fn new() -> Self {
        TargetObject
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

    /// Values of settings this build does not carry take no room.
    fn config_loaded(&mut self, config: &mut lwm2m_core::config::Config) {
        settings::forget_unserved(config, ID, SETTING_LINES);
    }

    fn handle(
        &mut self,
        ctx: &mut Context<'_>,
        req: &Request<'_>,
        body: &mut Body<'_>,
    ) -> HandlerResult {
        settings::handle_in(SETTING_LINES, ctx, ID, req, body)
    }
}
