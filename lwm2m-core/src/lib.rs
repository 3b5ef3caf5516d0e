//! Sans-IO, `no_std`, heap-free core of an IoTize Tap (TapNLink / Duetware) lwM2M
//! device, wire-compatible with the `@iotize/tap` client.
//!
//! Layers, each in its own module, each talking only to its neighbours:
//!
//! | layer | module | what it does |
//! |---|---|---|
//! | wire | [`wire`] | APDU, result codes, TLV, multi-request: checked parsing and encoding |
//! | session | [`session`] | who owns the device, who is logged in, idle timeout, login lock-out |
//! | access control | [`acl`] | may this subject use this method on this resource? |
//! | dispatch | [`dispatch`] | resource table lookup, access check, routing, multi-request |
//! | object | [`object`] | the trait the objects of `lwm2m-objects` implement |
//!
//! [`Device::handle`] ties them together: one request APDU and the current time in, one
//! response APDU and the next deadline out.
//!
//! ```
//! use lwm2m_core::{Channel, ChannelKind, Config, Device, FrameLimits, Instant};
//! # use lwm2m_core::object::{Object, ResourceDef, Context, HandlerResult};
//! # use lwm2m_core::acl::Access;
//! # use lwm2m_core::wire::{Body, Request, ResultCode};
//! # struct Serial;
//! # impl Object for Serial {
//! #     fn id(&self) -> u16 { 3 }
//! #     fn resources(&self) -> &'static [ResourceDef] {
//! #         const T: &[ResourceDef] = &[ResourceDef::single(2).get(Access::Anyone)];
//! #         T
//! #     }
//! #     fn handle(&mut self, _: &mut Context<'_>, _: &Request<'_>, body: &mut Body<'_>) -> HandlerResult {
//! #         body.push(b"SN1")?;
//! #         Ok(ResultCode::Ok)
//! #     }
//! # }
//! let limits = FrameLimits { max_request: 512, max_response: 512 };
//! let mut device = Device::new((Serial,), Config::default(), Config::reset, limits);
//! let ws = Channel::new(1, ChannelKind::WebSocket);
//! let mut out = [0u8; 512];
//! // GET /3//2
//! let outcome = device.handle(ws, &[0xA2, 0xCA, 0, 0, 7, 1, 0, 3, 0xFF, 0xFF, 0, 2], Instant::ZERO, &mut out);
//! assert_eq!(&out[..outcome.len], b"\x00SN1\x90\x00");
//! ```
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_code)]

#[macro_use]
mod fmt;

pub mod acl;
pub mod auth;
pub mod blob;
pub mod config;
#[cfg(feature = "crypto")]
pub mod crypto;
mod device;
pub mod dispatch;
#[cfg(feature = "packets")]
pub mod firmware;
pub mod io;
pub mod object;
#[cfg(feature = "packets")]
pub mod packets;
#[cfg(feature = "crypto")]
pub mod secure;
pub mod session;
pub mod storage;
pub mod target;
pub mod time;
pub mod wire;

#[cfg(test)]
mod test_util;

pub use config::Config;
pub use device::{Device, Outcome, Step};
pub use object::{Effect, FrameLimits, Object, ObjectSet};
pub use session::{Channel, ChannelId, ChannelKind};
pub use time::{CivilTime, Duration, Instant, WallClock};
pub use wire::ResultCode;
