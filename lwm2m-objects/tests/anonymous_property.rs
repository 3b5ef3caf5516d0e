//! Property: nothing an anonymous interlocutor sends changes what it has no right to
//! change, nor makes it anybody else.
//!
//! The device is configured by the client's configurator frames (objects.md §6.8, as in
//! `tests/configuration.rs`) plus a few admin frames, so that anonymous has
//!
//! - (a) the read right only on bundle 1 ("sensors": variable 5 in the target, 6 in the
//!   device),
//! - (b) read and write on bundle 2 ("public": 10 and 11 in the device, 12 in the target),
//! - (c) nothing on bundle 3 ("private", user1 only: 20 in the device, 21 in the target),
//!   nor on variable 7 (in no bundle: administrator only).
//!
//! Then, for up to 50 steps of requests of every method on objects 3, 1024, 1025, 1027,
//! 1028 and 1029 (existing and missing instances, the resource ids of the objects'
//! tables, `0xFFFF` create/delete), random and plausible bodies (ACL records, integers,
//! text, login bodies with wrong passwords), multi-requests wrapping such requests,
//! logouts and clock steps (past the 60 s idle timeout and the login lock-out), it checks:
//!
//! 1. no write succeeds except logout and the values of bundle 2: the configuration
//!    image (`Config::encode`) after the sequence equals the image before once the values
//!    of bundle 2's in-device variables are blanked in both, and the target memory is
//!    unchanged outside variable 12; no write request answers success unless it is one of
//!    those, inside a multi-request too; no request asks for a reboot or a reset;
//! 2. the session stays anonymous: `GET /1024//7` answers 0 after every step;
//! 3. every response is `status | data | 90 00` with a known status, and an error (also a
//!    multi-request item in error) carries no data.
//!
//! After the run, counters check that the generator did reach what the property is about
//! (successful anonymous writes to bundle 2, refused writes elsewhere, lock-outs, idle
//! timeouts, multi-requests).

#[path = "common/configurator.rs"]
mod configurator;
use configurator::{CONFIGURATOR_FRAMES, EXTRA_FRAMES};
use std::cell::Cell;
use std::fmt;

use lwm2m_core::config::image::MAX_IMAGE_LEN;
use lwm2m_core::config::{Config, ANONYMOUS};
use lwm2m_core::object::ResourceDef;
use lwm2m_core::target::MemoryTarget;
use lwm2m_core::wire::{ResultCode, ABSENT};
use lwm2m_core::{Channel, ChannelKind, Device, FrameLimits, Instant};
use lwm2m_objects::{standard_objects, DeviceInfo, NoHooks, StandardObjects};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, RngAlgorithm, TestCaseError, TestRunner};
use target_traits::{MemoryAccess, RamTarget};

const LIMITS: FrameLimits = FrameLimits {
    max_request: 1024,
    max_response: 1024,
};
const WS: Channel = Channel::new(1, ChannelKind::WebSocket);
const RAM_BASE: u32 = 0x2000_0000;
const RAM_LEN: usize = 256;

type Ram = RamTarget<RAM_LEN>;
type TapDevice = Device<StandardObjects<NoHooks>, MemoryTarget<Ram>>;

const GET: u8 = 1;
const POST: u8 = 2;
const PUT: u8 = 3;
const DELETE: u8 = 4;

/// In-device variables of bundle 2, whose values anonymous may change.
const WRITABLE_IN_DEVICE: [u16; 2] = [10, 11];
/// Variables of bundle 2.
const WRITABLE: [u16; 3] = [10, 11, 12];
/// The target bytes of variable 12 (UINT16 at 0x20000020), which anonymous may change.
const WRITABLE_RAM: std::ops::Range<usize> = 0x20..0x22;

/// The passwords of the configured profiles; never sent.
const REAL_PASSWORDS: [&[u8]; 4] = [b"admin", b"pwd", b"b", b"supervisor"];

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One Tap request.
#[derive(Clone, PartialEq, Eq)]
struct Req {
    method: u8,
    object: u16,
    instance: u16,
    resource: u16,
    body: Vec<u8>,
}

impl Req {
    fn new(method: u8, object: u16, instance: u16, resource: u16, body: Vec<u8>) -> Req {
        Req {
            method,
            object,
            instance,
            resource,
            body,
        }
    }

    fn frame(&self) -> Vec<u8> {
        let mut f = vec![self.method];
        f.extend_from_slice(&self.object.to_be_bytes());
        f.extend_from_slice(&self.instance.to_be_bytes());
        f.extend_from_slice(&self.resource.to_be_bytes());
        f.extend_from_slice(&self.body);
        f
    }

    /// The APDU as the client sends it (`Lc` is the frame length modulo 256).
    fn apdu(&self) -> Vec<u8> {
        let frame = self.frame();
        let ins = if self.method == GET { 0xCA } else { 0xDA };
        let mut a = vec![0xA2, ins, 0, 0, (frame.len() % 256) as u8];
        a.extend_from_slice(&frame);
        a
    }

    /// Whether anonymous may succeed with this request when it is not a GET: logout,
    /// or a value write to a variable of bundle 2.
    fn may_write(&self) -> bool {
        let single = self.instance == ABSENT || self.instance == 0;
        match (self.method, self.object, self.resource) {
            (POST, 1024, 1) => single,
            (PUT, 1029, 4) | (POST, 1029, 5) => WRITABLE.contains(&self.instance),
            _ => false,
        }
    }

    fn is_multi(&self) -> bool {
        self.object == 1024
            && self.resource == 89
            && (self.instance == ABSENT || self.instance == 0)
    }

    fn is_value_write(&self) -> bool {
        matches!(
            (self.method, self.object, self.resource),
            (PUT, 1029, 4) | (POST, 1029, 5)
        )
    }
}

impl fmt::Debug for Req {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let method = match self.method {
            GET => "GET",
            POST => "POST",
            PUT => "PUT",
            DELETE => "DELETE",
            _ => "?",
        };
        let instance = if self.instance == ABSENT {
            String::new()
        } else {
            self.instance.to_string()
        };
        write!(
            f,
            "{method} /{}/{instance}/{} [{}]",
            self.object,
            self.resource,
            to_hex(&self.body)
        )
    }
}

/// One step of the anonymous interlocutor.
#[derive(Clone, Debug)]
enum Step {
    /// A request.
    Send(Req),
    /// `GET /1024//89` wrapping these requests, each with its `expectedStatus`.
    Multi(Vec<(Req, u8)>),
    /// The clock moves this many milliseconds, then the port polls.
    Advance(u64),
}

fn multi_body(items: &[(Req, u8)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (req, expected) in items {
        let frame = req.frame();
        body.extend_from_slice(&(frame.len() as u16).to_be_bytes());
        body.extend_from_slice(&frame);
        body.push(*expected);
    }
    body
}

fn table(object: u16) -> &'static [ResourceDef] {
    match object {
        3 => lwm2m_objects::device::RESOURCES,
        1024 => lwm2m_objects::interface::RESOURCES,
        1025 => lwm2m_objects::profile::RESOURCES,
        1027 => lwm2m_objects::target::RESOURCES,
        1028 => lwm2m_objects::bundle::RESOURCES,
        1029 => lwm2m_objects::variable::RESOURCES,
        _ => &[],
    }
}

/// Existing and missing instances of each object.
fn instances(object: u16) -> Vec<u16> {
    match object {
        1025 => vec![0, 1, 2, 7, 0xFFFE, 0xFFFF],
        1028 => vec![1, 2, 3, 9, ABSENT],
        1029 => vec![5, 6, 7, 10, 11, 12, 20, 21, 99, ABSENT],
        _ => vec![ABSENT, 0, 1],
    }
}

const OBJECTS: [u16; 6] = [3, 1024, 1025, 1027, 1028, 1029];

fn method() -> impl Strategy<Value = u8> {
    prop_oneof![Just(GET), Just(POST), Just(PUT), Just(DELETE)]
}

fn path() -> BoxedStrategy<(u16, u16, u16)> {
    let known = prop::sample::select(OBJECTS.to_vec()).prop_flat_map(|object| {
        let resources: Vec<u16> = table(object).iter().map(|d| d.id).collect();
        (
            Just(object),
            prop_oneof![6 => prop::sample::select(instances(object)), 1 => any::<u16>()],
            prop_oneof![
                8 => prop::sample::select(resources),
                1 => Just(ABSENT),
                1 => any::<u16>(),
            ],
        )
    });
    prop_oneof![
        30 => known,
        1 => (any::<u16>(), any::<u16>(), any::<u16>()),
    ]
    .boxed()
}

fn profile_id() -> BoxedStrategy<u16> {
    prop_oneof![
        Just(0u16),
        Just(1),
        Just(2),
        Just(0xFFFE),
        Just(0xFFFF),
        any::<u16>()
    ]
    .boxed()
}

/// ACL records in every form the device parses (and some it refuses).
fn acl_record() -> BoxedStrategy<Vec<u8>> {
    let rights = prop_oneof![4 => 0u8..=3, 1 => any::<u8>()].boxed();
    prop_oneof![
        (profile_id(), rights.clone()).prop_map(|(p, r)| vec![0x41, p as u8, r]),
        (profile_id(), rights.clone()).prop_map(|(p, r)| {
            let [hi, lo] = p.to_be_bytes();
            vec![0x61, hi, lo, r]
        }),
        rights.prop_map(|r| vec![0x61, 0xFF, r]),
    ]
    .boxed()
}

fn uint_body() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        any::<u8>().prop_map(|v| vec![v]),
        prop_oneof![Just(0u16), Just(1), Just(60), Just(0xFFFF), any::<u16>()]
            .prop_map(|v| v.to_be_bytes().to_vec()),
        prop_oneof![Just(0u32), Just(0xFFFF_FFFF), any::<u32>()]
            .prop_map(|v| v.to_be_bytes().to_vec()),
    ]
    .boxed()
}

fn text() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        Just(b"admin".to_vec()),
        Just(b"anonymous".to_vec()),
        Just(b"user1".to_vec()),
        Just(b"bob".to_vec()),
        Just(b"supervisor".to_vec()),
        Just(b"wrong".to_vec()),
        Just(Vec::new()),
        vec(0x20u8..0x7F, 1..20),
    ]
    .boxed()
}

/// Zero-pads `text` to a 16-byte login field.
fn field(text: &[u8]) -> [u8; 16] {
    let mut f = [0u8; 16];
    let n = text.len().min(16);
    f[..n].copy_from_slice(&text[..n]);
    f
}

/// A login body with a real user name or not, and never a real password.
fn login_body() -> BoxedStrategy<Vec<u8>> {
    let password = prop_oneof![
        text(),
        Just(b"Admin".to_vec()),
        Just(b"pwd ".to_vec()),
        Just(b"bb".to_vec()),
        vec(any::<u8>(), 16..=16),
    ];
    (text(), password)
        .prop_map(|(user, password)| {
            let mut body = field(&user).to_vec();
            body.extend_from_slice(&field(&password));
            defang(body)
        })
        .boxed()
}

/// Makes sure a 32-byte body is not a login with one of the real passwords.
fn defang(mut body: Vec<u8>) -> Vec<u8> {
    if body.len() == 32 && REAL_PASSWORDS.iter().any(|p| body[16..] == field(p)) {
        body[31] ^= 0x01;
    }
    body
}

fn body() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        2 => Just(Vec::new()),
        3 => vec(any::<u8>(), 0..48),
        3 => acl_record(),
        3 => uint_body(),
        2 => text(),
        2 => login_body(),
        1 => vec(any::<u8>(), 36..=36),
    ]
    .boxed()
}

fn any_request() -> BoxedStrategy<Req> {
    (method(), path(), body())
        .prop_map(|(m, (o, i, r), b)| Req::new(m, o, i, r, defang(b)))
        .boxed()
}

/// Value writes on every variable, of the right and wrong sizes.
fn value_write() -> BoxedStrategy<Req> {
    let var = prop::sample::select(vec![5u16, 6, 7, 10, 11, 12, 20, 21, 99]);
    let value = prop_oneof![
        vec(any::<u8>(), 1..=1),
        vec(any::<u8>(), 2..=2),
        vec(any::<u8>(), 4..=4),
        vec(any::<u8>(), 0..9),
    ];
    (prop_oneof![Just((PUT, 4u16)), Just((POST, 5))], var, value)
        .prop_map(|((m, r), v, value)| Req::new(m, 1029, v, r, value))
        .boxed()
}

/// Admin-only writes that look like what the configurator sends.
fn config_write() -> BoxedStrategy<Req> {
    prop_oneof![
        // ACL entries of every bundle.
        (prop::sample::select(vec![1u16, 2, 3, 9]), acl_record())
            .prop_map(|(b, rec)| Req::new(PUT, 1028, b, 0, rec)),
        // Inactivity period, security options, NFC priority, configuration version.
        uint_body().prop_map(|v| Req::new(PUT, 1024, ABSENT, 34, v)),
        uint_body().prop_map(|v| Req::new(PUT, 1024, ABSENT, 6, v)),
        uint_body().prop_map(|v| Req::new(PUT, 1024, ABSENT, 24, v)),
        uint_body().prop_map(|v| Req::new(PUT, 1024, ABSENT, 10, v)),
        // Passwords, names, lifetimes and aliases of profiles.
        (profile_id(), text()).prop_map(|(p, t)| Req::new(POST, 1025, p, 2, t)),
        (profile_id(), text()).prop_map(|(p, t)| Req::new(PUT, 1025, p, 0, t)),
        (profile_id(), uint_body()).prop_map(|(p, v)| Req::new(PUT, 1025, p, 4, v)),
        (profile_id(), profile_id()).prop_map(|(p, a)| Req::new(
            PUT,
            1025,
            p,
            5,
            a.to_be_bytes().to_vec()
        )),
        // Variables joining bundles, changing type, and creation/deletion.
        (
            prop::sample::select(vec![5u16, 6, 7, 10, 20, 21]),
            prop::sample::select(vec![1u16, 2, 3])
        )
            .prop_map(|(v, b)| Req::new(PUT, 1029, v, 6, b.to_be_bytes().to_vec())),
        (prop::sample::select(vec![5u16, 6, 10, 20]), any::<u8>()).prop_map(|(v, t)| Req::new(
            PUT,
            1029,
            v,
            1,
            vec![t]
        )),
        (
            prop_oneof![Just(POST), Just(DELETE)],
            prop::sample::select(vec![1025u16, 1028, 1029]),
            prop::sample::select(vec![1u16, 2, 3, 5, 6, 10, 30])
        )
            .prop_map(|(m, o, i)| Req::new(m, o, i, ABSENT, Vec::new())),
        // Reboot, factory reset, clock.
        prop::sample::select(vec![4u16, 5, 11, 12]).prop_map(|r| Req::new(
            POST,
            3,
            ABSENT,
            r,
            Vec::new()
        )),
        uint_body().prop_map(|v| Req::new(PUT, 3, ABSENT, 13, v)),
        uint_body().prop_map(|v| Req::new(PUT, 1027, ABSENT, 1, v)),
    ]
    .boxed()
}

fn login() -> BoxedStrategy<Req> {
    login_body()
        .prop_map(|b| Req::new(POST, 1024, ABSENT, 0, b))
        .boxed()
}

fn logout() -> Req {
    Req::new(POST, 1024, ABSENT, 1, Vec::new())
}

fn request() -> BoxedStrategy<Req> {
    prop_oneof![
        8 => any_request(),
        4 => value_write(),
        4 => config_write(),
        2 => login(),
        1 => Just(logout()),
    ]
    .boxed()
}

fn step() -> impl Strategy<Value = Step> {
    let expected = prop_oneof![Just(0xFFu8), Just(0x7F), any::<u8>()];
    let advance = prop_oneof![
        Just(0u64),
        1u64..2_000,
        Just(59_999),
        Just(60_000),
        Just(61_000),
        0u64..180_000,
    ];
    prop_oneof![
        16 => request().prop_map(Step::Send),
        3 => vec((request(), expected), 1..6).prop_map(Step::Multi),
        3 => advance.prop_map(Step::Advance),
    ]
}

fn new_device(config: Config, ram: Ram) -> TapDevice {
    let info = DeviceInfo {
        manufacturer: "IoTize",
        flavor: "test",
        serial: heapless::String::try_from("TAPEMU000000000001").unwrap(),
        firmware_version: "1.99.0",
    };
    Device::new(
        standard_objects(info, NoHooks),
        config,
        Config::reset,
        LIMITS,
    )
    .with_target(MemoryTarget(ram))
}

fn send(device: &mut TapDevice, apdu: &[u8], now: Instant) -> Vec<u8> {
    let mut out = [0u8; LIMITS.max_response as usize];
    let outcome = device.handle(WS, apdu, now, &mut out);
    out[..outcome.len].to_vec()
}

fn frame_apdu(frame_hex: &str) -> Vec<u8> {
    let frame = hex(frame_hex);
    let ins = if frame[0] == GET { 0xCA } else { 0xDA };
    let mut a = vec![0xA2, ins, 0, 0, (frame.len() % 256) as u8];
    a.extend_from_slice(&frame);
    a
}

/// The configured device's image and target memory, built once by replaying the
/// configurator's frames as admin, then logging out.
fn configured() -> (Config, Ram) {
    let mut device = new_device(Config::default(), Ram::new(RAM_BASE));
    let login_admin = Req::new(POST, 1024, ABSENT, 0, {
        let mut b = field(b"admin").to_vec();
        b.extend_from_slice(&field(b"admin"));
        b
    });
    let ok = hex("009000");
    assert_eq!(send(&mut device, &login_admin.apdu(), Instant::ZERO), ok);
    for frame in CONFIGURATOR_FRAMES.iter().chain(EXTRA_FRAMES) {
        assert_eq!(
            send(&mut device, &frame_apdu(frame), Instant::ZERO),
            ok,
            "admin frame {frame}"
        );
    }
    assert_eq!(send(&mut device, &logout().apdu(), Instant::ZERO), ok);
    // A recognisable pattern in the whole target memory, then the values.
    let ram = &mut device.target_mut().0;
    let pattern: Vec<u8> = (0..RAM_LEN).map(|i| (i as u8).wrapping_mul(37)).collect();
    ram.write(RAM_BASE, &pattern).unwrap();
    ram.write(RAM_BASE + 0x10, &[0x41, 0xbc, 0, 0]).unwrap();
    ram.write(RAM_BASE + 0x20, &[0x12, 0x34]).unwrap();
    ram.write(RAM_BASE + 0x30, &[0xde, 0xad, 0xbe, 0xef])
        .unwrap();
    (device.config().clone(), device.target().0.clone())
}

/// The image with the values anonymous may change blanked.
fn masked_image(config: &Config) -> Vec<u8> {
    let mut config = config.clone();
    for id in WRITABLE_IN_DEVICE {
        if let Some(var) = config.variable_mut(id) {
            var.value.clear();
        }
    }
    let mut buf = vec![0u8; MAX_IMAGE_LEN];
    let n = config.encode(&mut buf).expect("image fits");
    buf.truncate(n);
    buf
}

/// The target memory except the bytes of variable 12.
fn masked_ram(ram: &Ram) -> Vec<u8> {
    let mut mem = ram.memory().to_vec();
    mem[WRITABLE_RAM].fill(0);
    mem
}

/// Checks the framing of a response and returns its status byte.
fn check_response(req: &dyn fmt::Debug, resp: &[u8]) -> Result<u8, TestCaseError> {
    prop_assert!(
        resp.len() >= 3 && resp.ends_with(&[0x90, 0x00]),
        "{req:?}: response {} is not status | data | 90 00",
        to_hex(resp)
    );
    let status = resp[0];
    prop_assert!(
        ResultCode::from_u8(status).is_some(),
        "{req:?}: unknown status in {}",
        to_hex(resp)
    );
    if status & 0x80 != 0 {
        prop_assert_eq!(resp.len(), 3, "{:?}: error with data {}", req, to_hex(resp));
    }
    Ok(status)
}

/// The `(status, data)` of every item of a successful multi-request response.
fn multi_items<'r>(
    req: &dyn fmt::Debug,
    data: &'r [u8],
) -> Result<Vec<(u8, &'r [u8])>, TestCaseError> {
    let mut items = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        prop_assert!(
            rest.len() >= 3,
            "{req:?}: truncated item in {}",
            to_hex(data)
        );
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        prop_assert!(
            len >= 1 && rest.len() >= 2 + len,
            "{req:?}: bad item length in {}",
            to_hex(data)
        );
        let status = rest[2];
        let item = &rest[3..2 + len];
        prop_assert!(
            ResultCode::from_u8(status).is_some(),
            "{req:?}: unknown item status in {}",
            to_hex(data)
        );
        prop_assert!(
            status & 0x80 == 0 || item.is_empty(),
            "{req:?}: error item with data in {}",
            to_hex(data)
        );
        items.push((status, item));
        rest = &rest[2 + len..];
    }
    Ok(items)
}

#[derive(Default)]
struct Counters {
    allowed_writes: Cell<usize>,
    refused_writes: Cell<usize>,
    lockouts: Cell<usize>,
    idle_timeouts: Cell<usize>,
    multis: Cell<usize>,
    steps: Cell<usize>,
}

fn bump(c: &Cell<usize>) {
    c.set(c.get() + 1);
}

/// Checks one request answered `status` (a multi-request item or a request on its own).
fn check_write(req: &Req, status: u8, counters: &Counters) -> Result<(), TestCaseError> {
    if req.method != GET {
        if status & 0x80 == 0 {
            prop_assert!(
                req.may_write(),
                "anonymous {req:?} answered success {status:02x}"
            );
            if req.is_value_write() {
                bump(&counters.allowed_writes);
            }
        } else if status == ResultCode::Unauthorized.as_u8() {
            bump(&counters.refused_writes);
        }
    }
    if req.method == POST && req.object == 1024 && req.resource == 0 {
        prop_assert!(
            status & 0x80 != 0,
            "login with a wrong password accepted: {req:?}"
        );
        if status == ResultCode::ServiceUnavailable.as_u8() {
            bump(&counters.lockouts);
        }
    }
    Ok(())
}

fn run_case(
    template: &(Config, Ram),
    steps: &[Step],
    counters: &Counters,
) -> Result<(), TestCaseError> {
    let mut device = new_device(template.0.clone(), template.1.clone());
    let image_before = masked_image(device.config());
    let ram_before = masked_ram(&device.target().0);
    let whoami = Req::new(GET, 1024, ABSENT, 7, Vec::new()).apdu();
    let mut now = Instant::ZERO;
    let mut out = [0u8; LIMITS.max_response as usize];

    for step in steps {
        bump(&counters.steps);
        match step {
            Step::Advance(ms) => {
                let owned = device.session().owner().is_some();
                now = Instant::from_millis(now.as_millis() + ms);
                device.poll(now);
                if owned && device.session().owner().is_none() {
                    bump(&counters.idle_timeouts);
                }
            }
            Step::Send(req) => {
                let outcome = device.handle(WS, &req.apdu(), now, &mut out);
                let resp = &out[..outcome.len];
                let status = check_response(req, resp)?;
                prop_assert_eq!(outcome.effect, None, "{:?} asked for an effect", req);
                check_write(req, status, counters)?;
                if req.is_multi() && status == 0 {
                    // A multi-request generated as a plain request (random body).
                    multi_items(req, &resp[1..resp.len() - 2])?;
                }
            }
            Step::Multi(items) => {
                let req = Req::new(GET, 1024, ABSENT, 89, multi_body(items));
                let outcome = device.handle(WS, &req.apdu(), now, &mut out);
                let resp = &out[..outcome.len];
                let status = check_response(step, resp)?;
                prop_assert_eq!(outcome.effect, None, "{:?} asked for an effect", step);
                // A0: refused before anything ran, its answers not sure to fit (an item
                // may change a variable that a later one reads).
                if status == 0xA0 {
                    prop_assert_eq!(resp, &[0xA0, 0x90, 0x00][..], "{:?}", step);
                } else {
                    prop_assert_eq!(status, 0, "{:?}: multi-request failed", step);
                    bump(&counters.multis);
                    let answered = multi_items(step, &resp[1..resp.len() - 2])?;
                    prop_assert!(
                        answered.len() <= items.len(),
                        "{step:?}: more answers than items"
                    );
                    for ((item, _), (status, _)) in items.iter().zip(&answered) {
                        check_write(item, *status, counters)?;
                    }
                }
            }
        }
        // Still anonymous, as the device and as the interlocutor see it.
        prop_assert_eq!(device.session().user(), ANONYMOUS, "after {:?}", step);
        let n = device.handle(WS, &whoami, now, &mut out).len;
        prop_assert_eq!(
            to_hex(&out[..n]),
            "0000009000",
            "GET /1024//7 after {:?}",
            step
        );
    }

    prop_assert!(
        masked_image(device.config()) == image_before,
        "the configuration image changed"
    );
    prop_assert!(
        masked_ram(&device.target().0) == ram_before,
        "target memory outside bundle 2 changed"
    );
    Ok(())
}

/// The configured device gives anonymous exactly the rights (a), (b) and (c).
fn check_template(template: &(Config, Ram)) {
    let mut device = new_device(template.0.clone(), template.1.clone());
    let mut tx = |frame: &str| to_hex(&send(&mut device, &frame_apdu(frame), Instant::ZERO));
    // (a) bundle 1: read only.
    assert_eq!(
        tx("01 0404 0001 0001"),
        "0088010cc40541bc0000c406000100029000"
    );
    assert_eq!(tx("03 0405 0006 0004 00000000"), "819000");
    assert_eq!(tx("03 0405 0005 0004 00000000"), "819000");
    // (b) bundle 2: read and write.
    assert_eq!(
        tx("01 0404 0002 0001"),
        "00880210c40a11223344c40b01020304c20c12349000"
    );
    assert_eq!(tx("03 0405 000a 0004 55667788"), "009000");
    assert_eq!(tx("02 0405 000c 0005 4321"), "009000");
    assert_eq!(tx("01 0405 000c 0004"), "0043219000");
    // (c) bundle 3 and variable 7: nothing.
    assert_eq!(tx("01 0404 0003 0001"), "819000");
    assert_eq!(tx("03 0405 0014 0004 0000"), "819000");
    assert_eq!(tx("01 0405 0015 0004"), "819000");
    assert_eq!(tx("01 0405 0007 0004"), "819000");
    // Admin still sees everything: the template is what the frames built.
    assert_eq!(
        template.0.bundle(2).map(|b| b.acl.len()),
        Some(2),
        "bundle 2 ACL"
    );
}

#[test]
fn anonymous_changes_nothing_it_has_no_right_to() {
    let template = configured();
    check_template(&template);

    let counters = Counters::default();
    let config = ProptestConfig {
        source_file: Some(file!()),
        // ChaCha, the default, costs most of the run in a debug build.
        rng_algorithm: RngAlgorithm::XorShift,
        ..ProptestConfig::with_cases(10_000)
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&vec(step(), 0..=50), |steps| {
        run_case(&template, &steps, &counters)
    });
    if let Err(err) = result {
        panic!("{err}");
    }

    // The generator reached what the property is about.
    let report = format!(
        "steps {}, allowed value writes {}, refused writes {}, lock-outs {}, idle timeouts {}, multi-requests {}",
        counters.steps.get(),
        counters.allowed_writes.get(),
        counters.refused_writes.get(),
        counters.lockouts.get(),
        counters.idle_timeouts.get(),
        counters.multis.get()
    );
    println!("{report}");
    for (name, count) in [
        ("allowed value writes", &counters.allowed_writes),
        ("refused writes", &counters.refused_writes),
        ("lock-outs", &counters.lockouts),
        ("idle timeouts", &counters.idle_timeouts),
        ("multi-requests", &counters.multis),
    ] {
        assert!(count.get() > 100, "too few {name}: {report}");
    }
}
