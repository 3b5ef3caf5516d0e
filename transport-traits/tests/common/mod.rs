//! What the device-loop tests serve: object 3 with a serial number and a reboot.
#![allow(dead_code)]

use lwm2m_core::acl::Access;
use lwm2m_core::object::{Context, HandlerResult, Object, ResourceDef};
use lwm2m_core::wire::{Body, Method, Request, ResultCode};
use lwm2m_core::Effect;

/// Object 3: a serial number (anyone), a reboot (`reboot` says who may).
pub struct Board {
    table: &'static [ResourceDef],
}

impl Board {
    /// The reboot allowed to anyone.
    pub const fn open() -> Board {
        const T: &[ResourceDef] = &[
            ResourceDef::single(2).get(Access::Anyone).answers(3),
            ResourceDef::single(4).post(Access::Anyone),
            ResourceDef::single(10).post(Access::Anyone),
        ];
        Board { table: T }
    }

    /// The reboot for the administrator only.
    pub const fn guarded() -> Board {
        const T: &[ResourceDef] = &[
            ResourceDef::single(2).get(Access::Anyone).answers(3),
            ResourceDef::single(4).post(Access::Admin),
        ];
        Board { table: T }
    }
}

impl Object for Board {
    fn id(&self) -> u16 {
        3
    }

    fn resources(&self) -> &'static [ResourceDef] {
        self.table
    }

    fn handle(
        &mut self,
        ctx: &mut Context<'_>,
        req: &Request<'_>,
        body: &mut Body<'_>,
    ) -> HandlerResult {
        match (req.method, req.path.resource) {
            (Method::Get, _) => body.push(b"SN1")?,
            (_, 10) => ctx.save_config()?,
            _ => ctx.request_effect(Effect::Reboot),
        }
        Ok(ResultCode::Ok)
    }
}

/// `GET /3//2`.
pub const GET: [u8; 12] = [0xA2, 0xCA, 0, 0, 7, 1, 0, 3, 0xFF, 0xFF, 0, 2];
/// `POST /3//10`: saves the configuration (an operation the request waits on).
pub const SAVE: [u8; 12] = [0xA2, 0xDA, 0, 0, 7, 2, 0, 3, 0xFF, 0xFF, 0, 10];
/// `POST /3//4`.
pub const REBOOT: [u8; 12] = [0xA2, 0xDA, 0, 0, 7, 2, 0, 3, 0xFF, 0xFF, 0, 4];
