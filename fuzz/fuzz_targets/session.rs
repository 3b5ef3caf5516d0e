//! Stateful fuzzing of "one interlocutor, rights and configuration": a configured device
//! (the client's configurator frames of objects.md §6.8 plus bundles where anonymous may
//! read, read and write, or nothing), two host channels and a side handler, driven by an
//! input-decoded sequence of operations, against a model of the session kept by the
//! harness from the answers.
//!
//! Operations: logins (admin, a user with the right password, wrong passwords), logout,
//! "who am I" (`GET /1024//7`), keep-alive, admin-only configuration writes (inactivity
//! period, security options, profile lifetimes and aliases, variables joining bundles,
//! create/delete, NFC priority, factory reset, which keeps the session), ACL writes,
//! value reads and writes of every bundle, multi-requests of those, clock steps (past the
//! idle timeout and the 60 s lock-out), `poll`, channel closes, malformed APDUs, the NFC
//! SELECT, and single requests of a side handler (`Device::handle_side`) with various
//! profiles.
//!
//! Invariants checked after every operation:
//!
//! - every answer is `status | data | 90 00` with a known status, an error (also a
//!   multi-request item in error) carries no data;
//! - one interlocutor: a request from the channel that does not own the session gets
//!   exactly `A8 90 00` unless the owner closed, idled out or logged out, or the channel
//!   is NFC with priority (takeover); malformed APDUs and the NFC SELECT, answered before
//!   admission, are the only exceptions; the side handler never gets `A8` and never
//!   changes the session;
//! - the device's session (owner, user, next deadline) equals the model's; login
//!   answers `00` exactly for the right password, `81` for a wrong one, `A3` while
//!   locked out (3 failures, 60 s); `GET /1024//7` answers the model's user; keep-alive
//!   answers the model's idle limit;
//! - access: admin-only requests answer `81` (or `84` for a missing instance) to
//!   anybody but the administrator, value reads and writes answer `81` exactly when
//!   `lwm2m_core::acl::rights` denies the right;
//! - the configuration image (`Config::encode`) changes only through a request whose
//!   subject is the administrator, or, for the values of in-device variables, whose
//!   subject has the write right on their bundle; the target memory changes only at the
//!   addresses of variables the subject may write.
//!
//! Input layout:
//!
//! ```text
//! flags u8 | op*
//! op: code u8 | arg u8 | extra bytes (side handler: 2, multi-request: 2 per item)
//! ```
//!
//! `flags` bit 0: channel 2 is NFC instead of a second WebSocket. `code` bit 7: the
//! operation comes from channel 2; `(code & 0x7F) % 19` is the operation (see [`Op`]).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use lwm2m_core::acl::{self, Subject};
use lwm2m_core::auth::Credential;
use lwm2m_core::config::image::MAX_IMAGE_LEN;
use lwm2m_core::config::{Config, Domain, NfcPriority, Rights, SecurityOptions, ADMIN, ANONYMOUS};
use lwm2m_core::target::MemoryTarget;
use lwm2m_core::wire::{is_nfc_select, ResultCode, ABSENT, NFC_SELECT};
use lwm2m_core::{Instant, Step};

/// `GET /3//2`, sent by another channel while a request waits on an operation.
const GET_SERIAL: [u8; 12] = [0xA2, 0xCA, 0, 0, 7, 1, 0, 3, 0xFF, 0xFF, 0, 2];
use lwm2m_core::{Channel, ChannelId, ChannelKind, Device, Duration, FrameLimits};
use lwm2m_objects::{standard_objects, DeviceInfo, NoHooks, StandardObjects};
use target_traits::{MemoryAccess, RamTarget};

const LIMITS: FrameLimits = FrameLimits {
    max_request: 1024,
    max_response: 1024,
};
const OUT_LEN: usize = LIMITS.max_response as usize;

const RAM_BASE: u32 = 0x2000_0000;
const RAM_LEN: usize = 256;
type Ram = RamTarget<RAM_LEN>;
type TapDevice = Device<StandardObjects<NoHooks>, MemoryTarget<Ram>>;

const CH1: Channel = Channel::new(1, ChannelKind::WebSocket);
const WS2: Channel = Channel::new(2, ChannelKind::WebSocket);
const NFC2: Channel = Channel::new(2, ChannelKind::Nfc);
const SIDE: Channel = Channel::new(9, ChannelKind::Side);

/// Operations per input at most (keeps one execution short).
const MAX_OPS: usize = 200;

const GET: u8 = 1;
const POST: u8 = 2;
const PUT: u8 = 3;
const DELETE: u8 = 4;

const LOGIN_LOCKOUT: Duration = Duration::from_secs(60);
const MAX_FAILED_LOGINS: u8 = 3;

#[path = "../../lwm2m-objects/tests/common/configurator.rs"]
mod configurator;
use configurator::{CONFIGURATOR_FRAMES, EXTRA_FRAMES};

/// Variables the operations address (30 is created and deleted, 99 never exists).
const VARIABLES: [u16; 10] = [5, 6, 7, 10, 11, 12, 20, 21, 30, 99];
/// Bundles the operations address (9 never exists).
const BUNDLES: [u16; 4] = [1, 2, 3, 9];

const RIGHT_LOGINS: [(&[u8], &[u8]); 3] = [
    (b"user1", b"pwd"),
    (b"bob", b"b"),
    (b"supervisor", b"supervisor"),
];
const LOGIN_NAMES: [&[u8]; 6] = [b"admin", b"user1", b"bob", b"supervisor", b"anonymous", b""];
/// None of them is the password of any profile.
const WRONG_PASSWORDS: [&[u8]; 8] = [
    b"",
    b"Admin",
    b"admin ",
    b"pwd1",
    b"bb",
    b"x",
    b"supervisor!",
    b"anonymous",
];
/// Side-handler profiles: anonymous, user1, bob, admin, and a profile that does not exist.
const SIDE_PROFILES: [u16; 5] = [ANONYMOUS, 1, 2, ADMIN, 5];

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

fn field(text: &[u8]) -> [u8; 16] {
    let mut f = [0u8; 16];
    let n = text.len().min(16);
    f[..n].copy_from_slice(&text[..n]);
    f
}

fn frame(method: u8, object: u16, instance: u16, resource: u16, body: &[u8]) -> Vec<u8> {
    let mut f = vec![method];
    f.extend_from_slice(&object.to_be_bytes());
    f.extend_from_slice(&instance.to_be_bytes());
    f.extend_from_slice(&resource.to_be_bytes());
    f.extend_from_slice(body);
    f
}

fn apdu(frame: &[u8]) -> Vec<u8> {
    let ins = if frame[0] == GET { 0xCA } else { 0xDA };
    let mut a = vec![0xA2, ins, 0, 0, (frame.len() % 256) as u8];
    a.extend_from_slice(frame);
    a
}

/// What a request is, for the model.
#[derive(Clone, Copy, Debug)]
enum Tag {
    Login {
        name: &'static [u8],
        password: &'static [u8],
    },
    Logout,
    WhoAmI,
    KeepAlive,
    /// Needs the administrator.
    Admin,
    /// Factory reset (`POST /3//5`, administrator).
    FactoryReset,
    /// `PUT`/`POST /1024//24` with this byte (administrator).
    Nfc(u8),
    /// Needs the read right on the data.
    Read(Data),
    /// Needs the write right on the data.
    Write(Data),
    /// `GET /1029//4`: anyone.
    ReadAll,
}

#[derive(Clone, Copy, Debug)]
enum Data {
    Variable(u16),
    Bundle(u16),
}

#[derive(Clone, Debug)]
struct Item {
    tag: Tag,
    frame: Vec<u8>,
}

impl Item {
    fn new(tag: Tag, method: u8, object: u16, instance: u16, resource: u16, body: &[u8]) -> Item {
        Item {
            tag,
            frame: frame(method, object, instance, resource, body),
        }
    }
}

/// Admin-only writes, as the configurator sends them.
fn admin_write(arg: u8) -> Item {
    let a = |method, object, instance, resource, body: &[u8]| {
        Item::new(Tag::Admin, method, object, instance, resource, body)
    };
    match arg % 28 {
        0 => a(PUT, 1024, ABSENT, 34, &[0, 0]),
        1 => a(PUT, 1024, ABSENT, 34, &[5]),
        2 => a(PUT, 1024, ABSENT, 34, &[0, 60]),
        3 => a(PUT, 1024, ABSENT, 34, &[120]),
        4 => a(PUT, 1024, ABSENT, 6, &[0, 0]),
        5 => a(PUT, 1024, ABSENT, 6, &[0, 1]),
        6 => a(PUT, 1024, ABSENT, 6, &[0, 4]),
        7 => a(PUT, 1025, 1, 4, &[0, 10]),
        8 => a(PUT, 1025, 2, 4, &[0, 0]),
        9 => a(PUT, 1025, ADMIN, 4, &[1, 0x2c]),
        10 => a(PUT, 1025, 2, 5, &[0xff, 0xff]),
        11 => a(PUT, 1025, 2, 5, &[0, 1]),
        12 => a(PUT, 1025, 2, 5, &[0, 2]),
        13 => a(PUT, 1029, 10, 6, &[0, 1]),
        14 => a(PUT, 1029, 10, 6, &[0, 2]),
        15 => a(PUT, 1029, 6, 6, &[0, 2]),
        16 => a(PUT, 1029, 6, 6, &[0, 1]),
        17 => a(PUT, 1028, 2, 2, &[0, 0, 0, 5]),
        18 => a(PUT, 1024, ABSENT, 9, b"Fuzz"),
        19 => a(PUT, 1027, ABSENT, 1, &[2]),
        20 => a(POST, 1029, 30, ABSENT, &[]),
        21 => a(DELETE, 1029, 30, ABSENT, &[]),
        22 => a(PUT, 1029, 20, 1, &[0x83]),
        23 => a(PUT, 1024, ABSENT, 10, &[0xff, 0xff, 0xff, 0xff]),
        24 => a(PUT, 1024, ABSENT, 10, &[1, 2, 0, 4]),
        25 => a(DELETE, 1028, 3, ABSENT, &[]),
        26 => a(POST, 1028, 3, ABSENT, &[]),
        _ => a(PUT, 1029, 30, 6, &[0, 2]),
    }
}

/// An ACL record on a bundle: 2-bit bundle, profile, rights, form.
fn acl_write(arg: u8) -> Item {
    let bundle = BUNDLES[usize::from(arg & 3)];
    let profile: u16 = [ANONYMOUS, 1, 2, ADMIN][usize::from((arg >> 2) & 3)];
    let rights = (arg >> 4) & 3;
    let [hi, lo] = profile.to_be_bytes();
    let record = match arg >> 6 {
        0 if profile < 256 => vec![0x41, lo, rights],
        0 | 1 => vec![0x61, hi, lo, rights],
        2 => vec![0x61, 0xff, rights],
        // Rights out of range: refused (86) even for admin.
        _ => vec![0x41, lo, 0x07],
    };
    Item::new(Tag::Admin, PUT, 1028, bundle, 0, &record)
}

fn value_read(arg: u8) -> Item {
    let n = VARIABLES.len() as u8;
    match arg % (n + 5) {
        i if i < n => {
            let var = VARIABLES[usize::from(i)];
            Item::new(Tag::Read(Data::Variable(var)), GET, 1029, var, 4, &[])
        }
        i if i < n + 4 => {
            let bundle = BUNDLES[usize::from(i - n)];
            Item::new(Tag::Read(Data::Bundle(bundle)), GET, 1028, bundle, 1, &[])
        }
        _ => Item::new(Tag::ReadAll, GET, 1029, ABSENT, 4, &[]),
    }
}

fn value_write(arg: u8, config: &Config) -> Item {
    let var = VARIABLES[usize::from(arg) % VARIABLES.len()];
    let len = config
        .variable(var)
        .and_then(|v| v.value_len())
        .unwrap_or(4)
        + usize::from(arg & 0x40 != 0);
    let value: Vec<u8> = (0..len).map(|i| arg.wrapping_mul(i as u8 + 7)).collect();
    let (method, resource) = if arg & 0x80 != 0 { (PUT, 4) } else { (POST, 5) };
    Item::new(
        Tag::Write(Data::Variable(var)),
        method,
        1029,
        var,
        resource,
        &value,
    )
}

fn login(name: &'static [u8], password: &'static [u8]) -> Item {
    let mut body = field(name).to_vec();
    body.extend_from_slice(&field(password));
    Item::new(Tag::Login { name, password }, POST, 1024, ABSENT, 0, &body)
}

/// The request of operation `kind` (0..12), `None` for operations that are not requests.
fn request(kind: u8, arg: u8, config: &Config) -> Option<Item> {
    Some(match kind {
        0 => login(b"admin", b"admin"),
        1 => {
            let (name, password) = RIGHT_LOGINS[usize::from(arg) % RIGHT_LOGINS.len()];
            login(name, password)
        }
        2 => login(
            LOGIN_NAMES[usize::from(arg) % LOGIN_NAMES.len()],
            WRONG_PASSWORDS[usize::from(arg >> 3) % WRONG_PASSWORDS.len()],
        ),
        3 => Item::new(Tag::Logout, POST, 1024, ABSENT, 1, &[]),
        4 => Item::new(Tag::WhoAmI, GET, 1024, ABSENT, 7, &[]),
        5 => Item::new(Tag::KeepAlive, GET, 1024, ABSENT, 4, &[]),
        6 => admin_write(arg),
        7 => acl_write(arg),
        8 => value_read(arg),
        9 => value_write(arg, config),
        10 => {
            let value = if arg & 0x80 != 0 { 2 } else { (arg >> 1) & 1 };
            let method = if arg & 1 != 0 { PUT } else { POST };
            Item::new(Tag::Nfc(value), method, 1024, ABSENT, 24, &[value])
        }
        11 => {
            // A real factory reset only for one argument; otherwise a body makes it 86.
            let body: &[u8] = if arg == 0xA5 { &[] } else { &[arg] };
            Item::new(Tag::FactoryReset, POST, 3, ABSENT, 5, body)
        }
        _ => return None,
    })
}

/// The harness's view of the session, updated from what it sent and what came back.
#[derive(Debug, Default)]
struct Model {
    owner: Option<ChannelId>,
    user: u16,
    last_activity: Instant,
    failures: u8,
    last_failure: Instant,
    locked_until: Option<Instant>,
    nfc_override: Option<NfcPriority>,
}

fn idle_limit(config: &Config, user: u16) -> Option<Duration> {
    let inactivity = config.inactivity_secs;
    let lifetime = config.profile(user).map_or(0, |p| p.lifetime_secs);
    let limit = match (inactivity, lifetime) {
        (0, 0) => return None,
        (0, l) | (l, 0) => l,
        (a, b) => a.min(b),
    };
    Some(Duration::from_secs(u64::from(limit)))
}

impl Model {
    fn end(&mut self) {
        self.owner = None;
        self.user = ANONYMOUS;
    }

    fn session_deadline(&self, config: &Config) -> Option<Instant> {
        self.owner?;
        Some(self.last_activity + idle_limit(config, self.user)?)
    }

    fn deadline(&self, config: &Config) -> Option<Instant> {
        match (self.session_deadline(config), self.locked_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// What the device does first on every call: idle timeout, end of a lock-out.
    fn expire(&mut self, config: &Config, now: Instant) {
        if self.session_deadline(config).is_some_and(|d| now >= d) {
            self.end();
        }
        match self.locked_until {
            Some(until) if now >= until => {
                self.locked_until = None;
                self.failures = 0;
            }
            // Failures are forgotten after a quiet lock-out period.
            None if now >= self.last_failure + LOGIN_LOCKOUT => self.failures = 0,
            _ => {}
        }
    }

    fn nfc_priority(&self, config: &Config) -> NfcPriority {
        self.nfc_override.unwrap_or(config.nfc_priority)
    }

    /// Whether `channel` gets in (owner, free session, or NFC takeover).
    fn admits(&self, channel: Channel, config: &Config) -> bool {
        match self.owner {
            Some(owner) if owner != channel.id => {
                channel.kind == ChannelKind::Nfc
                    && self.nfc_priority(config) == NfcPriority::Priority
            }
            _ => true,
        }
    }

    fn admit(&mut self, channel: Channel, now: Instant) {
        if self.owner.is_some_and(|owner| owner != channel.id) {
            self.end();
        }
        if self.owner.is_none() {
            self.owner = Some(channel.id);
            self.user = ANONYMOUS;
        }
        self.last_activity = now;
    }

    fn locked(&self, now: Instant) -> bool {
        self.locked_until.is_some_and(|until| now < until)
    }

    fn login_failed(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        self.last_failure = now;
        if self.failures >= MAX_FAILED_LOGINS {
            self.locked_until = Some(now + LOGIN_LOCKOUT);
        }
    }
}

/// The profile id a login name stands for (the names of the configuration).
fn profile_of(config: &Config, name: &[u8]) -> Option<u16> {
    config
        .profile_by_name(name)
        .map(|p| p.id)
        .filter(|&id| id != ANONYMOUS)
}

/// Whether `password` is the stored plain password of `name`.
fn is_right(config: &Config, name: &[u8], password: &[u8]) -> bool {
    let options = config.security_options;
    if options.contains(SecurityOptions::HASH_PASSWORD) || options.contains(SecurityOptions::SCRAM)
    {
        return false;
    }
    match config.profile_by_name(name) {
        Some(p) if p.id != ANONYMOUS => {
            // Stored as the hash of the password (never in clear).
            p.credential == Credential::from_password(password)
        }
        _ => false,
    }
}

fn encode(config: &Config, buf: &mut [u8]) -> Vec<u8> {
    let n = config.encode(buf).expect("the image fits MAX_IMAGE_LEN");
    buf[..n].to_vec()
}

/// Checks the framing of a response; returns the status and the data.
fn check_framing<'r>(what: &dyn Fn() -> String, resp: &'r [u8]) -> (u8, &'r [u8]) {
    assert!(
        resp.len() >= 3 && resp.len() <= OUT_LEN && resp.ends_with(&[0x90, 0x00]),
        "{}: response {} is not status | data | 90 00",
        what(),
        to_hex(resp)
    );
    let status = resp[0];
    assert!(
        ResultCode::from_u8(status).is_some(),
        "{}: unknown status in {}",
        what(),
        to_hex(resp)
    );
    if status & 0x80 != 0 {
        assert_eq!(
            resp.len(),
            3,
            "{}: error with data {}",
            what(),
            to_hex(resp)
        );
    }
    (status, &resp[1..resp.len() - 2])
}

/// The `(status, data)` of every item of a multi-request response.
fn multi_items<'r>(what: &dyn Fn() -> String, data: &'r [u8]) -> Vec<(u8, &'r [u8])> {
    let mut items = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        assert!(
            rest.len() >= 3,
            "{}: truncated item in {}",
            what(),
            to_hex(data)
        );
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        assert!(
            len >= 1 && rest.len() >= 2 + len,
            "{}: bad item length in {}",
            what(),
            to_hex(data)
        );
        let status = rest[2];
        let item = &rest[3..2 + len];
        assert!(
            ResultCode::from_u8(status).is_some(),
            "{}: unknown item status in {}",
            what(),
            to_hex(data)
        );
        assert!(
            status & 0x80 == 0 || item.is_empty(),
            "{}: error item with data in {}",
            what(),
            to_hex(data)
        );
        items.push((status, item));
        rest = &rest[2 + len..];
    }
    items
}

/// The configured device: its image and target memory, built once.
fn template() -> &'static (Config, Ram) {
    static TEMPLATE: OnceLock<(Config, Ram)> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let mut device = new_device(Config::default(), Ram::new(RAM_BASE));
        let mut out = [0u8; OUT_LEN];
        let mut send = |device: &mut TapDevice, frame: &[u8]| {
            let n = device
                .handle(CH1, &apdu(frame), Instant::ZERO, &mut out)
                .len;
            assert_eq!(out[..n], [0, 0x90, 0], "configuring: {}", to_hex(frame));
        };
        send(&mut device, &login(b"admin", b"admin").frame);
        for f in CONFIGURATOR_FRAMES.iter().chain(EXTRA_FRAMES) {
            send(&mut device, &hex(f));
        }
        send(&mut device, &frame(POST, 1024, ABSENT, 1, &[]));
        let ram = &mut device.target_mut().0;
        let pattern: Vec<u8> = (0..RAM_LEN).map(|i| (i as u8).wrapping_mul(37)).collect();
        ram.write(RAM_BASE, &pattern).unwrap();
        ram.write(RAM_BASE + 0x10, &[0x41, 0xbc, 0, 0]).unwrap();
        (device.config().clone(), device.target().0.clone())
    })
}

fn new_device(config: Config, ram: Ram) -> TapDevice {
    let info = DeviceInfo {
        manufacturer: "IoTize",
        flavor: "fuzz",
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

/// Who sends a request: a host channel (through the session) or the side handler.
#[derive(Clone, Copy, Debug)]
enum Sender {
    Channel(Channel),
    Side(u16),
}

struct Harness {
    device: TapDevice,
    model: Model,
    now: Instant,
    image: Vec<u8>,
    scratch: Vec<u8>,
    out: Vec<u8>,
    log: Vec<Entry>,
    /// Logins attempted by the request being checked (one is allowed per request).
    logins: u8,
}

/// What happened, kept raw and formatted only when an invariant fails.
enum Entry {
    Exchange {
        at: Instant,
        from: Sender,
        request: Vec<u8>,
        response: Vec<u8>,
    },
    Clock(Instant),
    Closed(Channel),
    Poll(Instant),
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Entry::Exchange {
                at,
                from,
                request,
                response,
            } => write!(
                f,
                "t={}ms {from:?} {} -> {}",
                at.as_millis(),
                to_hex(request),
                to_hex(response)
            ),
            Entry::Clock(at) => write!(f, "t={}ms (clock)", at.as_millis()),
            Entry::Closed(channel) => write!(f, "{channel:?} closed"),
            Entry::Poll(at) => write!(f, "t={}ms poll", at.as_millis()),
        }
    }
}

impl Harness {
    fn new() -> Harness {
        let (config, ram) = template();
        let device = new_device(config.clone(), ram.clone());
        let mut scratch = vec![0u8; MAX_IMAGE_LEN];
        let image = encode(device.config(), &mut scratch);
        Harness {
            device,
            model: Model::default(),
            now: Instant::ZERO,
            image,
            scratch,
            out: vec![0u8; OUT_LEN],
            log: Vec::new(),
            logins: 0,
        }
    }

    fn fail(&self, message: String) -> ! {
        panic!(
            "{message}\noperations so far:\n{}\nmodel: {:?}",
            self.log
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
            self.model
        );
    }

    fn expect(&self, ok: bool, message: impl FnOnce() -> String) {
        if !ok {
            self.fail(message());
        }
    }

    /// Checks one answered request against the model and updates it. `sure` is false
    /// once an earlier item of the same multi-request may have changed the
    /// configuration: answers that depend on it are then only recorded.
    #[allow(clippy::too_many_arguments)]
    fn answered(
        &mut self,
        from: Sender,
        item: &Item,
        status: u8,
        data: &[u8],
        config: &Config,
        sure: bool,
        subjects: &mut Vec<u16>,
    ) {
        let what = || {
            format!(
                "{from:?} {:?} {} -> {status:02x} {}",
                item.tag,
                to_hex(&item.frame),
                to_hex(data)
            )
        };
        let side = match from {
            Sender::Side(profile) => Some(profile),
            Sender::Channel(_) => None,
        };
        let user = side.unwrap_or(self.model.user);
        let subject = Subject::new(config, user);
        let now = self.now;
        match item.tag {
            Tag::Login { name, password } => {
                if side.is_some() {
                    self.expect(status == 0x81, || format!("side login: {}", what()));
                    return;
                }
                // One login per request; the others are refused before any check.
                if self.logins > 0 {
                    self.expect(status == 0xA3, || format!("second login: {}", what()));
                    return;
                }
                self.logins += 1;
                // A logout earlier in the same multi-request freed the session: the
                // login takes it again for its channel.
                if let (Sender::Channel(channel), None) = (from, self.model.owner) {
                    self.model.admit(channel, now);
                }
                if self.model.locked(now) {
                    self.expect(status == 0xA3, || format!("locked out: {}", what()));
                    return;
                }
                let accepted = match (sure, status) {
                    (true, _) => {
                        let right = is_right(config, name, password);
                        let expected = if right { 0x00 } else { 0x81 };
                        self.expect(status == expected, || {
                            format!("login expected {expected:02x}: {}", what())
                        });
                        right
                    }
                    (false, 0x00) => true,
                    (false, 0x81) => false,
                    _ => self.fail(format!("login: {}", what())),
                };
                if accepted {
                    let id = profile_of(self.device.config(), name)
                        .or_else(|| profile_of(config, name))
                        .unwrap_or_else(|| {
                            self.fail(format!("unknown user logged in: {}", what()))
                        });
                    // Another account's success does not forgive failed guesses.
                    self.model.user = id;
                    subjects.push(id);
                } else {
                    self.model.login_failed(now);
                }
            }
            Tag::Logout => {
                if side.is_some() {
                    self.expect(status == 0x81, || format!("side logout: {}", what()));
                } else {
                    self.expect(status == 0x00, || format!("logout: {}", what()));
                    self.model.end();
                }
            }
            Tag::WhoAmI => {
                self.expect(status == 0 && data == user.to_be_bytes(), || {
                    format!("GET /1024//7 expected {user:04x}: {}", what())
                });
            }
            Tag::KeepAlive => {
                if sure {
                    let secs = idle_limit(config, self.model.user).map_or(0, |d| d.as_secs());
                    self.expect(status == 0 && data == (secs as u32).to_be_bytes(), || {
                        format!("keep-alive expected {secs} s: {}", what())
                    });
                }
            }
            Tag::Admin | Tag::FactoryReset | Tag::Nfc(_) => {
                if sure {
                    if subject.is_admin() {
                        self.expect(status != 0x81, || format!("admin refused: {}", what()));
                    } else {
                        self.expect(status == 0x81 || status == 0x84, || {
                            format!("{subject:?} not refused: {}", what())
                        });
                    }
                }
                if let (Tag::Nfc(value), 0x00) = (item.tag, status) {
                    self.model.nfc_override = NfcPriority::from_u8(value);
                }
            }
            Tag::Read(data_of) | Tag::Write(data_of) => {
                if sure {
                    let owner = match data_of {
                        Data::Variable(id) => config.variable(id).map(|v| v.bundle),
                        Data::Bundle(id) => config.bundle(id).map(|b| Some(b.id)),
                    };
                    let needed = match item.tag {
                        Tag::Read(_) => Rights::READ,
                        _ => Rights::WRITE,
                    };
                    match owner {
                        None => self.expect(status == 0x84, || format!("missing: {}", what())),
                        Some(bundle) => {
                            let allowed = acl::rights(config, subject, bundle).contains(needed);
                            self.expect((status == 0x81) != allowed, || {
                                format!("{subject:?} allowed={allowed}: {}", what())
                            });
                        }
                    }
                }
            }
            // Anyone; fails only if a readable variable cannot be read (B3 for an
            // address outside the target memory).
            Tag::ReadAll => self.expect(status != 0x81, || format!("read all: {}", what())),
        }
    }

    /// Sends `items` (one request, or a multi-request if more than one or `multi`) and
    /// checks everything about it.
    fn send(&mut self, from: Sender, items: &[(Item, u8)], multi: bool) {
        self.logins = 0;
        let config = self.device.config().clone();
        let ram = self.device.target().0.clone();
        self.model.expire(&config, self.now);
        let frame = if multi {
            let mut body = Vec::new();
            for (item, expected) in items {
                body.extend_from_slice(&(item.frame.len() as u16).to_be_bytes());
                body.extend_from_slice(&item.frame);
                body.push(*expected);
            }
            frame(GET, 1024, ABSENT, 89, &body)
        } else {
            items[0].0.frame.clone()
        };
        let request = apdu(&frame);
        let mut step = match from {
            Sender::Channel(channel) => {
                self.device
                    .start(channel, &request, self.now, &mut self.out)
            }
            Sender::Side(profile) => {
                self.device
                    .start_side(SIDE, profile, &request, self.now, &mut self.out)
            }
        };
        // The operations the request waits on are performed here, one by one; while
        // one waits, any other request is answered A8 and changes nothing.
        let outcome = loop {
            let op = match step {
                Step::Done(outcome) => break outcome,
                Step::Pending(op) => op,
            };
            let before = (self.device.config().clone(), self.device.session().owner());
            let mut busy = [0u8; 16];
            let other = Channel::new(7, ChannelKind::Ble);
            let answer = match self.device.start(other, &GET_SERIAL, self.now, &mut busy) {
                Step::Done(outcome) => busy[..outcome.len].to_vec(),
                Step::Pending(_) => Vec::new(),
            };
            self.expect(answer == [0xA8, 0x90, 0x00], || {
                format!("a request while {op:?} waits -> {}", to_hex(&answer))
            });
            self.expect(
                before == (self.device.config().clone(), self.device.session().owner()),
                || format!("a request while {op:?} waits changed the device"),
            );
            let result = self.device.perform(&op, &request, &mut self.out);
            step = self
                .device
                .resume(result, &request, self.now, &mut self.out);
        };
        let resp = self.out[..outcome.len].to_vec();
        self.log.push(Entry::Exchange {
            at: self.now,
            from,
            request: request.clone(),
            response: resp.clone(),
        });
        let what = || format!("{from:?} {}", to_hex(&request));
        let (status, data) = check_framing(&what, &resp);

        let mut subjects = Vec::new();
        match from {
            Sender::Channel(channel) => {
                if !self.model.admits(channel, &config) {
                    self.expect(resp == [0xA8, 0x90, 0x00], || {
                        format!(
                            "{channel:?} does not own the session: {} -> {}",
                            what(),
                            to_hex(&resp)
                        )
                    });
                } else {
                    self.expect(status != 0xA8, || {
                        format!(
                            "{channel:?} refused (A8) although the session is free or its own: {}",
                            what()
                        )
                    });
                    self.model.admit(channel, self.now);
                    subjects.push(self.model.user);
                }
            }
            Sender::Side(profile) => {
                self.expect(status != 0xA8, || {
                    format!("side handler got A8: {}", what())
                });
                subjects.push(profile);
            }
        }
        if !subjects.is_empty() {
            if multi && status == 0xA0 {
                // Refused before any item ran: its answers were not sure to fit (an item
                // may change a variable a later one reads). Nothing changed.
                self.expect(resp == [0xA0, 0x90, 0x00], || {
                    format!("refused multi-request with data: {}", to_hex(&resp))
                });
            } else if multi {
                self.expect(status == 0, || {
                    format!("multi-request failed: {} -> {}", what(), to_hex(&resp))
                });
                let answered = multi_items(&what, data);
                self.expect(answered.len() <= items.len(), || {
                    format!("extra items: {}", what())
                });
                let mut sure = true;
                for ((item, _), (status, data)) in items.iter().zip(answered) {
                    self.answered(from, item, status, data, &config, sure, &mut subjects);
                    let writes = !matches!(
                        item.tag,
                        Tag::Login { .. }
                            | Tag::Logout
                            | Tag::WhoAmI
                            | Tag::KeepAlive
                            | Tag::Read(_)
                            | Tag::ReadAll
                    );
                    if writes && status & 0x80 == 0 {
                        sure = false;
                    }
                }
            } else {
                let item = &items[0].0;
                self.answered(from, item, status, data, &config, true, &mut subjects);
            }
        }
        // A factory reset keeps the link and the session (the configurator goes on).
        self.expect(
            outcome.effect.is_none()
                || subjects
                    .iter()
                    .any(|&u| Subject::new(&config, u).is_admin()),
            || {
                format!(
                    "effect {:?} without the administrator: {}",
                    outcome.effect,
                    what()
                )
            },
        );
        self.check_changes(&config, &ram, &subjects, &what);
        // The device runs its timers again after the request (a side handler may have
        // shortened the idle limit of a session it does not extend).
        let after = self.device.config().clone();
        self.model.expire(&after, self.now);
        self.check_session(outcome.next_deadline, true);
    }

    /// The image and the target memory changed only as the subjects may change them.
    fn check_changes(
        &mut self,
        before: &Config,
        ram: &Ram,
        subjects: &[u16],
        what: &dyn Fn() -> String,
    ) {
        let image = encode(self.device.config(), &mut self.scratch);
        let ram_changed = ram.memory() != self.device.target().0.memory();
        if image == self.image && !ram_changed {
            return;
        }
        let admin = subjects.iter().any(|&u| Subject::new(before, u).is_admin());
        if !admin {
            let may_write = |bundle: Option<u16>| {
                subjects.iter().any(|&u| {
                    acl::rights(before, Subject::new(before, u), bundle).contains(Rights::WRITE)
                })
            };
            let mask = |config: &Config, scratch: &mut [u8]| {
                let mut config = config.clone();
                for var in config.variables.iter_mut() {
                    let writable = before
                        .variable(var.id)
                        .is_some_and(|v| v.domain() != Domain::Target && may_write(v.bundle));
                    if writable {
                        var.value.clear();
                    }
                }
                encode(&config, scratch)
            };
            let masked_before = mask(before, &mut self.scratch);
            let masked_after = mask(self.device.config(), &mut self.scratch);
            self.expect(masked_before == masked_after, || {
                format!("configuration changed by {subjects:?}: {}", what())
            });
            let before_mem = ram.memory();
            let after_mem = self.device.target().0.memory();
            for (offset, (a, b)) in before_mem.iter().zip(after_mem.iter()).enumerate() {
                if a == b {
                    continue;
                }
                let address = RAM_BASE + offset as u32;
                let allowed = before.variables.iter().any(|v| {
                    let start = v.address_u32();
                    let len = v.value_len().unwrap_or(0) as u32;
                    v.domain() == Domain::Target
                        && (start..start.saturating_add(len)).contains(&address)
                        && may_write(v.bundle)
                });
                self.expect(allowed, || {
                    format!(
                        "target byte {address:#x} changed by {subjects:?}: {}",
                        what()
                    )
                });
            }
        }
        self.image = image;
    }

    /// The device's session is the model's.
    /// `fresh`: the device just ran its timers (`handle`, `poll`), so no deadline is due.
    fn check_session(&self, next_deadline: Option<Instant>, fresh: bool) {
        let session = self.device.session();
        let config = self.device.config();
        self.expect(
            session.owner().map(|c| c.id) == self.model.owner && session.user() == self.model.user,
            || {
                format!(
                    "session owner {:?} user {:04x}, model owner {:?} user {:04x}",
                    session.owner(),
                    session.user(),
                    self.model.owner,
                    self.model.user
                )
            },
        );
        let expected = self.model.deadline(config);
        self.expect(next_deadline == expected, || {
            format!("next deadline {next_deadline:?}, model {expected:?}")
        });
        if let Some(deadline) = next_deadline.filter(|_| fresh) {
            self.expect(deadline > self.now, || {
                format!("deadline {deadline:?} not after {:?}", self.now)
            });
        }
    }

    /// A request answered before admission (malformed APDU, NFC SELECT): no A8, no
    /// change to the session.
    fn send_unadmitted(&mut self, channel: Channel, request: &[u8]) {
        let config = self.device.config().clone();
        let ram = self.device.target().0.clone();
        self.model.expire(&config, self.now);
        let outcome = self
            .device
            .handle(channel, request, self.now, &mut self.out);
        let resp = self.out[..outcome.len].to_vec();
        self.log.push(Entry::Exchange {
            at: self.now,
            from: Sender::Channel(channel),
            request: request.to_vec(),
            response: resp.clone(),
        });
        if is_nfc_select(request) {
            self.expect(resp == [0x90, 0x00], || {
                format!("NFC SELECT -> {}", to_hex(&resp))
            });
        } else {
            let (status, _) = check_framing(&|| to_hex(request), &resp);
            self.expect(status & 0x80 != 0 && status != 0xA8, || {
                format!("malformed {} -> {}", to_hex(request), to_hex(&resp))
            });
        }
        self.check_changes(&config, &ram, &[], &|| to_hex(request));
        self.check_session(outcome.next_deadline, true);
    }
}

/// Clock steps in milliseconds: none, short, around the 60 s inactivity period and
/// lock-out, past the admin's session lifetime.
const STEPS_MS: [u64; 8] = [0, 10, 1_000, 9_999, 59_999, 60_000, 61_000, 3_600_000];

/// Operations (`(code & 0x7F) % 19`); 0..=11 are the requests of [`request`].
#[derive(Clone, Copy)]
enum Op {
    Request(u8),
    Advance,
    Close,
    Side,
    Multi,
    Malformed,
    NfcSelect,
    Poll,
}

fn op(code: u8) -> Op {
    match (code & 0x7F) % 19 {
        k @ 0..=11 => Op::Request(k),
        12 => Op::Advance,
        13 => Op::Close,
        14 => Op::Side,
        15 => Op::Multi,
        16 => Op::Malformed,
        17 => Op::NfcSelect,
        _ => Op::Poll,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let second = if flags & 1 != 0 { NFC2 } else { WS2 };
    let mut h = Harness::new();
    let mut next = || -> Option<u8> {
        let (&b, tail) = rest.split_first()?;
        rest = tail;
        Some(b)
    };

    for _ in 0..MAX_OPS {
        let Some(code) = next() else { break };
        let arg = next().unwrap_or(0);
        let channel = if code & 0x80 != 0 { second } else { CH1 };
        match op(code) {
            Op::Request(kind) => {
                let item = request(kind, arg, h.device.config()).expect("a request kind");
                h.send(Sender::Channel(channel), &[(item, 0xFF)], false);
            }
            Op::Advance => {
                h.now = h.now + Duration::from_millis(STEPS_MS[usize::from(arg & 7)]);
                h.log.push(Entry::Clock(h.now));
            }
            Op::Close => {
                h.device.channel_closed(channel.id);
                if h.model.owner == Some(channel.id) {
                    h.model.end();
                }
                h.log.push(Entry::Closed(channel));
                h.check_session(h.device.next_deadline(), false);
            }
            Op::Side => {
                let profile = SIDE_PROFILES[usize::from(arg) % SIDE_PROFILES.len()];
                let kind = next().unwrap_or(0) % 12;
                let arg = next().unwrap_or(0);
                let item = request(kind, arg, h.device.config()).expect("a request kind");
                h.send(Sender::Side(profile), &[(item, 0xFF)], false);
            }
            Op::Multi => {
                let mut items = Vec::new();
                for _ in 0..(arg % 4) + 1 {
                    let kind = next().unwrap_or(0);
                    let arg = next().unwrap_or(0);
                    let expected = if kind & 0x80 != 0 { 0x7F } else { 0xFF };
                    let item = request(kind % 12, arg, h.device.config()).expect("a request kind");
                    items.push((item, expected));
                }
                h.send(Sender::Channel(channel), &items, true);
            }
            Op::Malformed => {
                let mut request = apdu(&value_read(arg).frame);
                match arg & 3 {
                    0 => request[0] = 0xA3,
                    1 => request[4] = request[4].wrapping_add(1),
                    2 => request.truncate(usize::from(arg >> 2) % 12),
                    _ => request[5] = 5, // unknown method
                }
                h.send_unadmitted(channel, &request);
            }
            Op::NfcSelect => h.send_unadmitted(channel, &NFC_SELECT),
            Op::Poll => {
                let config = h.device.config().clone();
                h.model.expire(&config, h.now);
                let deadline = h.device.poll(h.now);
                h.log.push(Entry::Poll(h.now));
                h.check_session(deadline, true);
            }
        }
    }
});
