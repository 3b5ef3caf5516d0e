//! Object 5, Firmware (`objects.md` object 5 and §6.6): the parts that need no update
//! flow, answered from what the port says of the firmware it runs ([`FirmwareInfo`]).
//!
//! - `GET /5//3`: the update state (`FirmwareState`: NORMAL 1, UPDATING 2, UPDATED 4),
//!   which the client's factory reset and configurator check is NORMAL.
//! - `POST /5//6`: the CRC check of a flashed area, body `address u32, size u32, crc
//!   u32` (big-endian): `00` with the CRC as its raw answer when the area is the
//!   running image and the CRC its CRC-32/MPEG-2, `86` otherwise; `A1` on a port that
//!   describes no image.
//! - `POST /5//0` (package) and `/5//2` (update) answer `A1`: an image reaches the device
//!   as a single packet (`/1024//80`–`83`, feature `packets`), which is how the client's
//!   updater sends one. The firmware version is `/3//3` (object 5 has none).

use lwm2m_core::acl::Access::{Admin, Anyone};
use lwm2m_core::config::Config;
use lwm2m_core::object::{default_bound, Context, HandlerResult, Object, ResourceDef};
use lwm2m_core::wire::{Body, Method, Request, ResultCode};

/// Object id.
pub const ID: u16 = 5;

/// Resources of object 5 with the client's method names. Anyone reads the state (the
/// client checks it before a factory reset); the rest is the administrator's.
pub const RESOURCES: &[ResourceDef] = &[
    ResourceDef::single(0).post(Admin).not_implemented(), // postPackage
    ResourceDef::single(2).post(Admin).not_implemented(), // postUpdate
    ResourceDef::single(3).get(Anyone).answers(1),        // getState
    ResourceDef::single(6).post(Admin),                   // postCrcCheck
];

/// What `POST /5//6` answers: the CRC, a big-endian u32.
const CRC_CHECK_ANSWER: usize = 4;

/// `FirmwareState` (`enums.json`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
#[non_exhaustive]
pub enum FirmwareState {
    /// Running, no update under way.
    #[default]
    Normal = 1,
    /// An update is being received.
    Updating = 2,
    /// A new image was received and runs after the next reboot.
    Updated = 4,
}

/// The running firmware image, as the port knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FirmwareInfo {
    /// Where the image starts (its flash address on a board).
    pub address: u32,
    /// Its size in bytes.
    pub size: u32,
    /// Its CRC-32/MPEG-2 (the client's CRC, `lwm2m_core::crypto::crc32`).
    pub crc: u32,
}

/// Object 5.
#[derive(Debug, Default)]
pub struct FirmwareObject {
    state: FirmwareState,
    image: Option<FirmwareInfo>,
}

impl FirmwareObject {
    /// Object 5 of a port that describes no image: state NORMAL, CRC checks `A1`.
    pub const fn new() -> Self {
        FirmwareObject {
            state: FirmwareState::Normal,
            image: None,
        }
    }

    /// Object 5 of a port running `image`.
    pub const fn with_image(image: FirmwareInfo) -> Self {
        FirmwareObject {
            state: FirmwareState::Normal,
            image: Some(image),
        }
    }

    /// The running image, as the port describes it.
    pub fn set_image(&mut self, image: Option<FirmwareInfo>) {
        self.image = image;
    }

    /// The update state `/5//3` answers.
    pub fn set_state(&mut self, state: FirmwareState) {
        self.state = state;
    }

    /// The update state.
    pub fn state(&self) -> FirmwareState {
        self.state
    }
}

impl Object for FirmwareObject {
    fn id(&self) -> u16 {
        ID
    }

    fn resources(&self) -> &'static [ResourceDef] {
        RESOURCES
    }

    /// The CRC check is a POST that answers data (the CRC): a multi-request counts it.
    fn answer_bound(&self, _config: &Config, req: &Request<'_>) -> usize {
        match (req.method, req.path.resource) {
            (Method::Post, 6) => CRC_CHECK_ANSWER,
            _ => default_bound(RESOURCES, req),
        }
    }

    fn handle(
        &mut self,
        _ctx: &mut Context<'_>,
        req: &Request<'_>,
        body: &mut Body<'_>,
    ) -> HandlerResult {
        match (req.method, req.path.resource) {
            (Method::Get, 3) => body.push_u8(self.state as u8)?,
            (Method::Post, 6) => {
                let &[a0, a1, a2, a3, s0, s1, s2, s3, c0, c1, c2, c3] = req.payload else {
                    return Err(ResultCode::NotAcceptable);
                };
                let image = self.image.ok_or(ResultCode::NotImplemented)?;
                let asked = FirmwareInfo {
                    address: u32::from_be_bytes([a0, a1, a2, a3]),
                    size: u32::from_be_bytes([s0, s1, s2, s3]),
                    crc: u32::from_be_bytes([c0, c1, c2, c3]),
                };
                if asked != image {
                    return Err(ResultCode::NotAcceptable);
                }
                body.push_u32(image.crc)?;
            }
            _ => return Err(ResultCode::MethodNotAllowed),
        }
        Ok(ResultCode::Ok)
    }
}
