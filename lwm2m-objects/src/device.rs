//! Object 3, Device (`objects.md` object 3 and §6.6).

use heapless::String;
use lwm2m_core::acl::Access::{Admin, Anyone, User};
use lwm2m_core::config::{Config, SecurityOptions};
use lwm2m_core::object::{default_bound, Context, HandlerResult, Object, ResourceDef};
use lwm2m_core::wire::{Body, Method, Request, ResultCode};
use lwm2m_core::Effect;

use crate::codec::{self, Widths};

/// Object id.
pub const ID: u16 = 3;

/// Resources of object 3. Anonymous may read the identity (0–3, spec decision 4);
/// measurements need a login; actions and the clock need the administrator.
pub const RESOURCES: &[ResourceDef] = &[
    ResourceDef::single(0).get(Anyone),           // manufacturer
    ResourceDef::single(1).get(Anyone),           // firmware flavor
    ResourceDef::single(2).get(Anyone),           // serial number
    ResourceDef::single(3).get(Anyone),           // firmware version
    ResourceDef::single(4).post(Admin),           // reboot
    ResourceDef::single(5).post(Admin),           // factory reset
    ResourceDef::single(6).get(User).answers(1),  // available power source
    ResourceDef::single(7).get(User).answers(4),  // power source voltage
    ResourceDef::single(10).get(User).answers(4), // free memory
    ResourceDef::single(11).get(User).answers(4).post(Admin), // last error code
    ResourceDef::single(12).post(Admin),          // reset last error code
    ResourceDef::single(13).get(User).answers(10).put(Admin), // current time
];

/// The Tap firmware level whose resources this release serves, for `/3//3`. The client's
/// configurator compares `/3//3` as dotted integers to decide which keys it may write
/// (variable meta needs 1.73, special features 1.23...), so a port should report this
/// rather than its own crate version (which belongs in the flavor, `/3//1`).
pub const TAP_FIRMWARE_LEVEL: &str = "1.107.0";

/// Longest serial number.
pub const SERIAL_LEN: usize = 32;

/// What the device says about itself (`/3//0`–`/3//3`).
#[derive(Clone, Debug)]
pub struct DeviceInfo {
    /// `/3//0`.
    pub manufacturer: &'static str,
    /// `/3//1`: the firmware variant name.
    pub flavor: &'static str,
    /// `/3//2`.
    pub serial: String<SERIAL_LEN>,
    /// `/3//3`, dotted text such as `"1.99.0"`.
    pub firmware_version: &'static str,
}

/// Board measurements behind object 3. The defaults say "unknown" (0) where a board
/// cannot measure.
pub trait DeviceHooks {
    /// `/3//6`: `AvailablePowerSource` (1 DC, 16 S3P, 32 AC external).
    fn available_power_source(&self) -> u8 {
        1
    }
    /// `/3//7`: supply voltage in millivolts, 0 if not measured.
    fn power_voltage_mv(&self) -> u32 {
        0
    }
    /// `/3//10`: free memory in bytes, 0 if not measured.
    fn free_memory(&self) -> u32 {
        0
    }
}

/// A board that measures nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHooks;

impl DeviceHooks for NoHooks {}

/// Object 3.
#[derive(Debug)]
pub struct DeviceObject<H = NoHooks> {
    info: DeviceInfo,
    hooks: H,
    last_error: u32,
}

impl<H: DeviceHooks> DeviceObject<H> {
    /// Object 3 for `info`, measuring through `hooks`. `const`, for a device built at
    /// compile time (`lwm2m_core::Device::unbooted`): its serial number, which is not,
    /// can be set at boot ([`DeviceObject::info_mut`]).
    pub const fn new(info: DeviceInfo, hooks: H) -> Self {
        DeviceObject {
            info,
            hooks,
            last_error: 0,
        }
    }

    /// Records an error code for `/3//11`.
    pub fn set_last_error(&mut self, code: u32) {
        self.last_error = code;
    }

    /// The device identity.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// The device identity, mutably (e.g. to set the serial number read at boot).
    pub fn info_mut(&mut self) -> &mut DeviceInfo {
        &mut self.info
    }
}

impl<H: DeviceHooks> Object for DeviceObject<H> {
    fn id(&self) -> u16 {
        ID
    }

    fn resources(&self) -> &'static [ResourceDef] {
        RESOURCES
    }

    fn answer_bound(&self, _config: &Config, req: &Request<'_>) -> usize {
        let identity = match req.path.resource {
            0 => self.info.manufacturer.len(),
            1 => self.info.flavor.len(),
            2 => self.info.serial.len(),
            3 => self.info.firmware_version.len(),
            _ => return default_bound(RESOURCES, req),
        };
        if req.method == Method::Get {
            identity
        } else {
            0
        }
    }

    fn handle(
        &mut self,
        ctx: &mut Context<'_>,
        req: &Request<'_>,
        body: &mut Body<'_>,
    ) -> HandlerResult {
        match (req.path.resource, req.method) {
            (0, Method::Get) => body.push(self.info.manufacturer.as_bytes())?,
            (1, Method::Get) => body.push(self.info.flavor.as_bytes())?,
            (2, Method::Get) => body.push(self.info.serial.as_bytes())?,
            (3, Method::Get) => body.push(self.info.firmware_version.as_bytes())?,
            (4, Method::Post) => {
                codec::empty(req.payload)?;
                ctx.request_effect(Effect::Reboot);
            }
            (5, Method::Post) => {
                codec::empty(req.payload)?;
                let options = ctx.config().security_options;
                if options.contains(SecurityOptions::DISABLE_RESOURCE_FACTORY_RESET) {
                    return Err(ResultCode::ResourceLocked);
                }
                // The certificates, the private key and the JVM code go with the
                // configuration: first, so that a reset cut short never leaves the
                // factory credentials beside the former owner's key.
                #[cfg(any(feature = "certificates", feature = "mqtt", feature = "jvm"))]
                for (blob, group) in crate::interface::BLOBS {
                    if group.included() {
                        ctx.clear_blob(*blob)?;
                    }
                }
                ctx.factory_reset()?;
            }
            (6, Method::Get) => body.push_u8(self.hooks.available_power_source())?,
            (7, Method::Get) => body.push_u32(self.hooks.power_voltage_mv())?,
            (10, Method::Get) => body.push_u32(self.hooks.free_memory())?,
            (11, Method::Get) => body.push_u32(self.last_error)?,
            // The client documents no meaning for POST /3//11; it clears like /12.
            (11, Method::Post) | (12, Method::Post) => {
                codec::empty(req.payload)?;
                self.last_error = 0;
            }
            (13, Method::Get) => {
                // The client decodes the time as text (objects.md §7.3): decimal seconds
                // of the device's wall clock (`lwm2m_core::WallClock`).
                let mut digits = [0; 10];
                body.push(codec::decimal(ctx.unix_time(), &mut digits))?;
            }
            (13, Method::Put) => {
                // The client writes a u32; decimal text is accepted too (decision 12).
                let secs = match codec::uint(req.payload, Widths::WORD) {
                    Ok(secs) => secs,
                    Err(code) => parse_decimal(req.payload).ok_or(code)?,
                };
                ctx.set_unix_time(secs);
            }
            _ => return Err(ResultCode::MethodNotAllowed),
        }
        Ok(ResultCode::Ok)
    }
}

fn parse_decimal(text: &[u8]) -> Option<u32> {
    if text.is_empty() || text.len() > 10 {
        return None;
    }
    text.iter().try_fold(0u32, |acc, &b| {
        let digit = (b as char).to_digit(10)?;
        acc.checked_mul(10)?.checked_add(digit)
    })
}
