//! Adding an object: declare its resources once as a table, implement `handle`.
//!
//! This "thermometer" object 32769 has a reading anyone may GET and a calibration offset
//! only the administrator may PUT. The dispatcher answers 84/85 for what is not in the
//! table and the access check answers 81 before `handle` ever runs.
//!
//! Run: `cargo run -p examples --example custom_object`

use lwm2m_core::acl::Access::{Admin, Anyone};
use lwm2m_core::object::{Context, HandlerResult, Object, ResourceDef};
use lwm2m_core::wire::{Body, Method, Request, ResultCode};
use lwm2m_core::{Channel, ChannelKind, Config, Device, FrameLimits, Instant};
use lwm2m_objects::{DeviceInfo, DeviceObject, InterfaceObject, NoHooks, ProfileObject};

struct Thermometer {
    millidegrees: i32,
    offset: i32,
}

impl Object for Thermometer {
    fn id(&self) -> u16 {
        32769
    }

    fn resources(&self) -> &'static [ResourceDef] {
        const TABLE: &[ResourceDef] = &[
            ResourceDef::single(0).get(Anyone),            // reading, i32 BE
            ResourceDef::single(1).get(Anyone).put(Admin), // calibration offset, i32 BE
        ];
        TABLE
    }

    fn handle(
        &mut self,
        _ctx: &mut Context<'_>,
        req: &Request<'_>,
        body: &mut Body<'_>,
    ) -> HandlerResult {
        match (req.path.resource, req.method) {
            (0, Method::Get) => body.push(&(self.millidegrees + self.offset).to_be_bytes())?,
            (1, Method::Get) => body.push(&self.offset.to_be_bytes())?,
            (1, Method::Put) => {
                let bytes: [u8; 4] = req
                    .payload
                    .try_into()
                    .map_err(|_| ResultCode::NotAcceptable)?;
                self.offset = i32::from_be_bytes(bytes);
            }
            _ => return Err(ResultCode::MethodNotAllowed),
        }
        Ok(ResultCode::Ok)
    }
}

fn main() {
    let info = DeviceInfo {
        manufacturer: "Example",
        flavor: "thermometer",
        serial: heapless::String::try_from("THERMO1").unwrap(),
        firmware_version: "0.1.0",
    };
    let objects = (
        DeviceObject::new(info, NoHooks),
        InterfaceObject::new(),
        ProfileObject::new(),
        Thermometer {
            millidegrees: 21_500,
            offset: 0,
        },
    );
    let limits = FrameLimits {
        max_request: 128,
        max_response: 128,
    };
    let mut device = Device::new(objects, Config::default(), Config::reset, limits);
    let link = Channel::new(1, ChannelKind::Serial);
    let mut out = [0u8; 128];
    let requests: [(&str, &[u8]); 3] = [
        (
            "GET /32769//0 reading",
            &[0xA2, 0xCA, 0, 0, 7, 1, 0x80, 0x01, 0xFF, 0xFF, 0, 0],
        ),
        (
            "PUT /32769//1 offset (anonymous)",
            &[
                0xA2, 0xDA, 0, 0, 11, 3, 0x80, 0x01, 0xFF, 0xFF, 0, 1, 0, 0, 0, 100,
            ],
        ),
        (
            "POST /32769//0 (not in the table)",
            &[0xA2, 0xDA, 0, 0, 7, 2, 0x80, 0x01, 0xFF, 0xFF, 0, 0],
        ),
    ];
    for (what, apdu) in requests {
        let outcome = device.handle(link, apdu, Instant::ZERO, &mut out);
        let hex: String = out[..outcome.len]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        println!("{what:36} -> {hex}");
    }
}
