//! A device with the standard objects, driven with hex APDUs.
#![allow(dead_code)]

pub mod configurator;
pub mod packets;
pub mod tunnel;

use lwm2m_core::object::ResourceDef;
use lwm2m_core::storage::{ConfigStore, NoStore};
use lwm2m_core::target::{NoTarget, TargetIo};
use lwm2m_core::{Channel, ChannelKind, Config, Device, FrameLimits, Instant, Outcome};
use lwm2m_objects::{standard_objects, DeviceInfo, NoHooks, StandardObjects};

/// Every resource `object` declares: the entries of its table ([`Object::resources`])
/// and those it keeps out of it ([`Object::unlisted`]).
///
/// [`Object::resources`]: lwm2m_core::object::Object::resources
/// [`Object::unlisted`]: lwm2m_core::object::Object::unlisted
pub fn declared(object: u16) -> &'static [ResourceDef] {
    match object {
        3 => lwm2m_objects::device::RESOURCES,
        5 => lwm2m_objects::firmware::RESOURCES,
        1024 => lwm2m_objects::interface::RESOURCES,
        1025 => lwm2m_objects::profile::RESOURCES,
        1027 => lwm2m_objects::target::RESOURCES,
        1028 => lwm2m_objects::bundle::RESOURCES,
        1029 => lwm2m_objects::variable::RESOURCES,
        other => panic!("/{other}: not an object of this crate"),
    }
}

pub const LIMITS: FrameLimits = FrameLimits {
    max_request: 1024,
    max_response: 1024,
};

pub const WS1: Channel = Channel::new(1, ChannelKind::WebSocket);
pub const WS2: Channel = Channel::new(2, ChannelKind::WebSocket);

pub fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

/// The APDU of method `method` on `/object/instance/resource` with `payload`.
pub fn request_apdu(
    method: u8,
    object: u16,
    instance: u16,
    resource: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut frame = vec![method];
    for v in [object, instance, resource] {
        frame.extend_from_slice(&v.to_be_bytes());
    }
    frame.extend_from_slice(payload);
    let ins = if method == 1 { 0xCA } else { 0xDA };
    let mut out = vec![0xA2, ins, 0, 0, frame.len() as u8];
    out.extend_from_slice(&frame);
    out
}

/// The APDU of a GET of `/object/instance/resource`.
pub fn get_apdu(object: u16, instance: u16, resource: u16) -> Vec<u8> {
    request_apdu(1, object, instance, resource, &[])
}

/// `GET /1024//89` holding `items` (APDUs), every one run whatever the others answer
/// (expected status 0xFF).
pub fn multi_apdu(items: &[Vec<u8>]) -> Vec<u8> {
    let mut body = Vec::new();
    for item in items {
        let frame = &item[5..];
        body.extend_from_slice(&(frame.len() as u16).to_be_bytes());
        body.extend_from_slice(frame);
        body.push(0xFF);
    }
    request_apdu(1, 1024, 0xFFFF, 89, &body)
}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The device of the live transcript (vectors.txt §A): serial TAPEMU000000000001,
/// firmware 1.99.0.
pub fn transcript_device() -> Device<StandardObjects<NoHooks>> {
    Device::new(
        standard_objects(device_info(), NoHooks),
        Config::default(),
        Config::reset,
        LIMITS,
    )
}

pub fn device_info() -> DeviceInfo {
    DeviceInfo {
        manufacturer: "IoTize",
        flavor: "test",
        serial: heapless::String::try_from("TAPEMU000000000001").unwrap(),
        firmware_version: "1.99.0",
    }
}

pub struct Harness<T = NoTarget, S = NoStore> {
    pub device: Device<StandardObjects<NoHooks>, T, S>,
    pub now: Instant,
    pub last: Outcome,
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with_target(NoTarget)
    }
}

impl<T: TargetIo> Harness<T> {
    pub fn with_target(target: T) -> Harness<T> {
        Harness::from_device(transcript_device().with_target(target))
    }
}

impl<T: TargetIo, S: ConfigStore> Harness<T, S> {
    pub fn from_device(device: Device<StandardObjects<NoHooks>, T, S>) -> Harness<T, S> {
        Harness {
            device,
            now: Instant::ZERO,
            last: Outcome {
                len: 0,
                next_deadline: None,
                effect: None,
            },
        }
    }

    /// Sends raw bytes on `channel`, returns the response bytes.
    /// A tunnel request is opened first, as the device loop does (`Device::unseal`).
    pub fn send_on(&mut self, channel: Channel, apdu: &[u8]) -> Vec<u8> {
        let mut out = [0u8; 1024];
        let mut request = apdu.to_vec();
        let len = self.device.unseal(channel, &mut request);
        self.last = self
            .device
            .handle(channel, &request[..len], self.now, &mut out);
        out[..self.last.len].to_vec()
    }

    /// Sends a hex APDU on channel 1, returns the response as hex.
    pub fn tx(&mut self, apdu: &str) -> String {
        to_hex(&self.send_on(WS1, &hex(apdu)))
    }

    /// Sends a hex APDU on `channel`, returns the response as hex.
    pub fn tx_on(&mut self, channel: Channel, apdu: &str) -> String {
        to_hex(&self.send_on(channel, &hex(apdu)))
    }

    pub fn advance_secs(&mut self, secs: u64) {
        self.now = Instant::from_millis(self.now.as_millis() + secs * 1000);
        self.device.poll(self.now);
    }
}

pub const LOGIN_ADMIN: &str =
    "a2da000027020400ffff000061646d696e000000000000000000000061646d696e0000000000000000000000";
pub const LOGIN_ADMIN_WRONG: &str =
    "a2da000027020400ffff000061646d696e000000000000000000000077726f6e670000000000000000000000";
pub const LOGIN_ADMIN_HASHED: &str =
    "a2da000027020400ffff000061646d696e00000000000000000000000155affc023aff6882f56a4e0d9c5466";
pub const GET_GROUP: &str = "a2ca000007010400ffff0007";
pub const LOGOUT: &str = "a2da000007020400ffff0001";
