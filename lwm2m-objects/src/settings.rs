//! Plain configuration values served from declarative tables: one line per resource,
//! giving its encoding and the values it may take. Values are kept in the configuration
//! image as written (ints at their canonical width) and read back in the form the
//! client's decoder expects.
//!
//! Every write is checked against what `objects.md` declares for the resource (spec
//! decision 3: a body of the wrong size or a value out of range is `86`): enums take the
//! values of `enums.json` only, bit fields their defined bits only, ids must name an
//! existing profile or bundle, records one of their declared layouts. A value that is
//! legal but longer than the configuration image can hold ([`SETTING_LEN`](lwm2m_core::config::SETTING_LEN)) is
//! `A7`.

use lwm2m_core::config::Config;
use lwm2m_core::object::{Context, HandlerResult, ResourceDef};
use lwm2m_core::wire::{Body, Method, Request, ResultCode};

use crate::codec::{self, Widths};

/// How a value is encoded, and which values are legal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// ASCII text of at most this many bytes.
    Ascii(u8),
    /// Raw bytes, at most this many.
    Bytes(u8),
    /// Exactly this many raw bytes (IPv4 addresses, versions).
    Fixed(u8),
    /// One byte.
    U8,
    /// A u16, also accepted on one byte (the client writes some on one byte).
    U16,
    /// A u16 of at most this value, also accepted on one byte.
    U16Max(u16),
    /// A u32, also accepted on fewer bytes.
    U32,
    /// One byte holding a value of one of the client's enums (`enums.json`); the first
    /// value listed is the default.
    Enum(EnumValues),
    /// A one-byte bit field: only these bits may be set.
    Flags8(u8),
    /// A u16 bit field, also accepted on one byte: only these bits may be set.
    Flags16(u16),
    /// A non-empty one-byte mask of these bits, read back as the single highest bit it
    /// has: the client writes a mask but decodes one enum value (`/1024//96`,
    /// `objects.md` §7.4, decision 12). Nothing written reads as the highest bit.
    MaskReadAsOne(u8),
    /// A u16 (also accepted on one byte) naming an existing profile; the default, 0, is
    /// anonymous, which always exists.
    ProfileId,
    /// A u16 (also accepted on one byte) naming an existing bundle, or 0: no bundle (the
    /// default).
    BundleId,
    /// The target protocol configuration of `/1027//21` (`objects.md` §6.4): the 8-byte
    /// serial/Modbus bit field followed by zero or more 5-byte TapNPass USB aliases.
    /// The 2-byte S3P record (delay, mode) is its first two bytes: a write of two bytes
    /// replaces those and keeps the rest, and a read answers the whole record, which
    /// every one of the client's three decoders reads (the S3P one its first two
    /// bytes). Before anything was written: 8 zero bytes (no USB alias).
    ProtocolConfiguration,
}

/// The values of an enum setting ([`Kind::Enum`]), in three bytes: 0 to 14 and 255.
/// Byte-aligned, so a [`Kind`] takes four bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnumValues {
    /// Bit `v` for value `v` (0 to 14), bit 15 for 255, little-endian.
    bits: [u8; 2],
    /// The first value listed.
    default: u8,
}

impl EnumValues {
    /// The values listed, the first being the default; a value other than 0 to 14 or
    /// 255, or no value at all, fails the build (or panics outside a constant).
    pub const fn of(values: &[u8]) -> EnumValues {
        assert!(!values.is_empty(), "an enum has values");
        let mut bits = 0u16;
        let mut i = 0;
        while i < values.len() {
            bits |= match EnumValues::bit(values[i]) {
                Some(bit) => bit,
                None => panic!("enum values are 0 to 14, or 255"),
            };
            i += 1;
        }
        EnumValues {
            bits: bits.to_le_bytes(),
            default: values[0],
        }
    }

    const fn bit(value: u8) -> Option<u16> {
        match value {
            0..=14 => Some(1 << value),
            255 => Some(1 << 15),
            _ => None,
        }
    }

    /// Whether `value` is one of them.
    pub const fn contains(self, value: u8) -> bool {
        match EnumValues::bit(value) {
            Some(bit) => u16::from_le_bytes(self.bits) & bit != 0,
            None => false,
        }
    }

    /// The value a setting has before anything was written.
    pub const fn default_value(self) -> u8 {
        self.default
    }

    /// The largest value.
    pub const fn largest(self) -> u8 {
        let bits = u16::from_le_bytes(self.bits);
        if bits & (1 << 15) != 0 {
            255
        } else {
            (15 - bits.leading_zeros()) as u8
        }
    }
}

impl Kind {
    /// The longest value GET answers.
    pub const fn max_len(self) -> usize {
        match self {
            Kind::Ascii(n) | Kind::Bytes(n) | Kind::Fixed(n) => n as usize,
            Kind::U8 | Kind::Enum(_) | Kind::Flags8(_) | Kind::MaskReadAsOne(_) => 1,
            Kind::U16 | Kind::U16Max(_) | Kind::Flags16(_) => 2,
            Kind::ProfileId | Kind::BundleId => 2,
            Kind::U32 => 4,
            Kind::ProtocolConfiguration => lwm2m_core::config::SETTING_LEN,
        }
    }

    /// The length of the value a resource has before anything was written.
    fn default_len(self) -> usize {
        match self {
            Kind::Ascii(_) | Kind::Bytes(_) => 0,
            Kind::ProtocolConfiguration => SERIAL_RECORD_LEN,
            // Fixed-size values and integers: their size, in zeros.
            _ => self.max_len(),
        }
    }
}

/// A group of settings a build carries or leaves out (a cargo feature of this crate
/// each; `all-settings`, on by default, turns every one on). A setting of a group left
/// out stays declared, answers `A1` and takes no room. The groups are the client's
/// services (`objects.md` object 1024).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Group {
    /// Always carried: the interface and target settings every device has.
    Core,
    /// Wi-Fi network (feature `wifi`).
    Wifi,
    /// MQTT relay (feature `mqtt`).
    Mqtt,
    /// Cloud platform and data-log upload (feature `cloud`).
    Cloud,
    /// LoRa (feature `lora`).
    Lora,
    /// BLE (feature `ble`).
    Ble,
    /// The on-board JVM (feature `jvm`).
    Jvm,
    /// Time: NTP server, time zone (feature `time`).
    Time,
    /// The TLS client certificate and its private key, blobs of the store (feature
    /// `certificates`; no setting of the configuration).
    Certificates,
}

impl Group {
    /// Every group.
    pub const ALL: [Group; 9] = [
        Group::Core,
        Group::Wifi,
        Group::Mqtt,
        Group::Cloud,
        Group::Lora,
        Group::Ble,
        Group::Jvm,
        Group::Time,
        Group::Certificates,
    ];

    /// Whether this build carries the group.
    pub const fn included(self) -> bool {
        match self {
            Group::Core => true,
            Group::Wifi => cfg!(feature = "wifi"),
            Group::Mqtt => cfg!(feature = "mqtt"),
            Group::Cloud => cfg!(feature = "cloud"),
            Group::Lora => cfg!(feature = "lora"),
            Group::Ble => cfg!(feature = "ble"),
            Group::Jvm => cfg!(feature = "jvm"),
            Group::Time => cfg!(feature = "time"),
            Group::Certificates => cfg!(feature = "certificates"),
        }
    }

    /// The group's name (its feature's).
    pub const fn name(self) -> &'static str {
        match self {
            Group::Core => "core",
            Group::Wifi => "wifi",
            Group::Mqtt => "mqtt",
            Group::Cloud => "cloud",
            Group::Lora => "lora",
            Group::Ble => "ble",
            Group::Jvm => "jvm",
            Group::Time => "time",
            Group::Certificates => "certificates",
        }
    }

    /// `def` as this build serves it: as declared if the build carries the group, else
    /// declared but not provided (`A1`).
    pub const fn gate(self, def: ResourceDef) -> ResourceDef {
        if self.included() {
            def
        } else {
            def.not_implemented()
        }
    }
}

/// One configuration value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SettingDef {
    /// The resource: id, rights of each method, and the answer size its kind gives.
    pub def: ResourceDef,
    /// Encoding.
    pub kind: Kind,
    /// The group it belongs to.
    pub group: Group,
}

impl SettingDef {
    /// A table line of the [`Group::Core`]: the resource and the encoding of its value,
    /// declared together.
    pub const fn new(def: ResourceDef, kind: Kind) -> SettingDef {
        let most = kind.max_len();
        let answer = if most < u16::MAX as usize {
            most as u16
        } else {
            u16::MAX
        };
        SettingDef {
            def: def.answers(answer),
            kind,
            group: Group::Core,
        }
    }

    /// The line belongs to `group`: declared, but not provided (`A1`) by a build that
    /// leaves the group out.
    pub const fn group(mut self, group: Group) -> SettingDef {
        self.group = group;
        if !group.included() {
            self.def = self.def.not_implemented();
        }
        self
    }

    /// The room the value would take at its largest, carried or not.
    pub const fn declared_room(&self) -> usize {
        lwm2m_core::config::settings::ENTRY_HEADER_LEN + self.kind.max_len()
    }
}

/// The room the settings of `tables` carried by this build need at their largest.
pub const fn room(tables: &[&[SettingDef]]) -> usize {
    let mut total = 0;
    let mut g = 0;
    while g < Group::ALL.len() {
        if Group::ALL[g].included() {
            total += group_room(tables, Group::ALL[g]);
        }
        g += 1;
    }
    total
}

/// The room the settings of `group` in `tables` would need at their largest, whether the
/// build carries it or not (what a firmware team adds up to size `LWM2M_SETTINGS_BYTES`).
pub const fn group_room(tables: &[&[SettingDef]], group: Group) -> usize {
    let mut total = 0;
    let mut t = 0;
    while t < tables.len() {
        let mut i = 0;
        while i < tables[t].len() {
            let line = &tables[t][i];
            if line.group as u8 == group as u8 {
                total += line.declared_room();
            }
            i += 1;
        }
        t += 1;
    }
    total
}

/// The resource table of an object: its `others`, then the resources of its `settings`
/// (each declared once, in its setting line). `N` is the sum of both lengths; anything
/// else fails the build.
pub const fn table<const N: usize>(
    others: &[ResourceDef],
    settings: &[SettingDef],
) -> [ResourceDef; N] {
    assert!(
        others.len() + settings.len() == N,
        "N is the number of resources"
    );
    let mut out = [ResourceDef::single(0); N];
    let mut i = 0;
    while i < others.len() {
        out[i] = others[i];
        i += 1;
    }
    let mut j = 0;
    while j < settings.len() {
        out[i + j] = settings[j].def;
        j += 1;
    }
    out
}

/// A setting as the engine sees it at run time: its resource and encoding. The rest of
/// its declaration (rights, answer size) is in the object's resource table ([`table`]),
/// so a firmware holds each declaration once; a setting of a group the build leaves out
/// has no line ([`lines`]): its resource answers `A1` and its value is not kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setting {
    /// Resource id.
    pub id: u16,
    /// Encoding.
    pub kind: Kind,
}

/// How many settings of `settings` this build carries (their group included): the
/// length of their [`lines`].
pub const fn carried(settings: &[SettingDef]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < settings.len() {
        if settings[i].group.included() {
            n += 1;
        }
        i += 1;
    }
    n
}

/// The run-time lines of the settings of `settings` this build carries, in their order
/// (`N` is their number, [`carried`]; anything else fails the build).
pub const fn lines<const N: usize>(settings: &[SettingDef]) -> [Setting; N] {
    assert!(
        carried(settings) == N,
        "N is the number of carried settings"
    );
    let mut out = [Setting {
        id: 0,
        kind: Kind::U8,
    }; N];
    let mut n = 0;
    let mut i = 0;
    while i < settings.len() {
        let line = &settings[i];
        if line.group.included() {
            out[n] = Setting {
                id: line.def.id,
                kind: line.kind,
            };
            n += 1;
        }
        i += 1;
    }
    out
}

/// The line of `table` for `resource`.
pub fn find(table: &[Setting], resource: u16) -> Option<&Setting> {
    table.iter().find(|line| line.id == resource)
}

/// Handles a request on a resource of `table` (object `object`); a resource that is not
/// in the table is not provided by this build (`A1`).
pub fn handle_in(
    table: &[Setting],
    ctx: &mut Context<'_>,
    object: u16,
    req: &Request<'_>,
    body: &mut Body<'_>,
) -> HandlerResult {
    match find(table, req.path.resource) {
        Some(def) => handle(ctx, object, def, req, body),
        None => Err(ResultCode::NotImplemented),
    }
}

/// Forgets the values of object `object` that `table` does not serve in this build (no
/// line: a setting of a group left out, or no setting at all) or that are longer than
/// their line declares: what an image saved by a build carrying more groups may hold.
pub fn forget_unserved(config: &mut Config, object: u16, table: &[Setting]) {
    forget(config, object, table, None);
}

/// Forgets the values of `table` (object `object`) of reference kind `kind` that name
/// `id` ([`Kind::ProfileId`] or [`Kind::BundleId`]), which then read as their default: a
/// deleted profile or bundle is referred to by nothing, and one created later with the
/// same id inherits nothing. Values `table` does not serve are kept (an object set
/// without the object, whose `config_loaded` would forget them, keeps them all).
pub fn drop_references(config: &mut Config, object: u16, table: &[Setting], kind: Kind, id: u16) {
    forget(config, object, table, Some((kind, id)));
}

/// Forgets the values of object `object` that `table` does not serve, and those of
/// reference kind `kind` that name `id` if `reference` is `Some((kind, id))`.
fn forget(config: &mut Config, object: u16, table: &[Setting], reference: Option<(Kind, u16)>) {
    let reference = reference.map(|(kind, id)| (kind, id.to_be_bytes()));
    config.settings.retain(|s| {
        if s.object != object {
            return true;
        }
        match (find(table, s.resource), reference) {
            (None, reference) => reference.is_some(),
            (Some(line), None) => s.value.len() <= line.kind.max_len(),
            (Some(line), Some((kind, id))) => {
                core::mem::discriminant(&line.kind) != core::mem::discriminant(&kind)
                    || s.value[..] != id
            }
        }
    });
}

/// Whether the configurator is configuring the device (`/1024//10` reads 255.255.65535).
fn configuring(config: &Config) -> bool {
    config.version == crate::interface::CONFIGURING
}

/// Checks a written value against its kind and returns it in canonical form: integers
/// at their canonical width (in `scratch`), the rest as written (text without its
/// terminator).
fn canonical<'a>(
    kind: Kind,
    config: &Config,
    payload: &'a [u8],
    scratch: &'a mut [u8; 4],
) -> Result<&'a [u8], ResultCode> {
    let refuse = Err(ResultCode::NotAcceptable);
    // Text, bytes and records are kept as written; integers are read at one of the
    // widths the kind accepts, checked, and kept at its canonical width.
    let (widths, width) = match kind {
        Kind::Ascii(max) => return codec::ascii(payload, usize::from(max)),
        Kind::Bytes(max) if payload.len() <= usize::from(max) => return Ok(payload),
        Kind::Fixed(n) if payload.len() == usize::from(n) => return Ok(payload),
        Kind::Bytes(_) | Kind::Fixed(_) => return refuse,
        Kind::ProtocolConfiguration => {
            return match protocol_configuration_is_valid(payload) {
                true => Ok(payload),
                false => refuse,
            }
        }
        Kind::U8 | Kind::Enum(_) | Kind::Flags8(_) | Kind::MaskReadAsOne(_) => (Widths::BYTE, 1),
        Kind::U32 => (Widths::UP_TO_WORD, 4),
        Kind::U16 | Kind::U16Max(_) | Kind::Flags16(_) | Kind::ProfileId | Kind::BundleId => {
            (Widths::SHORT, 2)
        }
    };
    let value = codec::uint(payload, widths)?;
    let legal = match kind {
        Kind::U16Max(max) => value <= u32::from(max),
        Kind::Enum(values) => values.contains(value as u8),
        Kind::Flags8(bits) => value & !u32::from(bits) == 0,
        Kind::Flags16(bits) => value & !u32::from(bits) == 0,
        Kind::MaskReadAsOne(bits) => value != 0 && value & !u32::from(bits) == 0,
        // While the configurator configures (`/1024//10` = 255.255.65535) references
        // may come before what they name: it writes the NFC auto-login and JVM profiles
        // (wireless, jvm keys) before the profiles themselves (data key). A reference
        // left dangling names nothing, and deleting a profile or bundle drops those to
        // it.
        Kind::ProfileId => configuring(config) || config.profile(value as u16).is_some(),
        Kind::BundleId => {
            value == 0 || configuring(config) || config.bundle(value as u16).is_some()
        }
        _ => true,
    };
    if !legal {
        return refuse;
    }
    *scratch = value.to_be_bytes();
    let scratch: &'a [u8; 4] = scratch;
    Ok(match width {
        1 => &scratch[3..],
        2 => &scratch[2..],
        _ => scratch,
    })
}

/// Writes the value of a resource of `kind` whose stored value is `stored` (`None`:
/// never written) in the form the client decodes.
fn emit(kind: Kind, stored: Option<&[u8]>, body: &mut Body<'_>) -> Result<(), ResultCode> {
    // A value longer than its kind (from an image of another build) reads as unset: an
    // answer never exceeds what the kind declares.
    let stored = stored.filter(|value| value.len() <= kind.max_len());
    let byte = match (kind, stored) {
        // An S3P record alone (an image of an earlier release): the serial fields
        // after it read as zeros.
        (Kind::ProtocolConfiguration, Some(value)) if value.len() < SERIAL_RECORD_LEN => {
            body.push(value)?;
            for _ in value.len()..SERIAL_RECORD_LEN {
                body.push_u8(0)?;
            }
            return Ok(());
        }
        (Kind::MaskReadAsOne(bits), _) => {
            // Written masks are never empty; nothing written means every bit.
            let mask = stored.and_then(|v| v.first().copied()).unwrap_or(bits) & bits;
            highest_bit(mask)
        }
        (_, Some(value)) => return Ok(body.push(value)?),
        (Kind::Enum(values), None) => values.default_value(),
        (_, None) => {
            for _ in 0..kind.default_len() {
                body.push_u8(0)?;
            }
            return Ok(());
        }
    };
    Ok(body.push_u8(byte)?)
}

/// The highest bit set in `mask` (0 for none).
const fn highest_bit(mask: u8) -> u8 {
    match mask {
        0 => 0,
        _ => 0x80 >> mask.leading_zeros(),
    }
}

/// Length of the S3P record of `/1027//21`: delay u8, mode u8.
const S3P_RECORD_LEN: usize = 2;
/// Length of the serial/Modbus record of `/1027//21` (also the start of TapNPass's).
const SERIAL_RECORD_LEN: usize = 8;
/// Length of one TapNPass USB alias: pid u16, vid u16, equ u8.
const USB_ALIAS_LEN: usize = 5;

/// Writes the S3P record `s3p` (checked) over the first two bytes of the protocol
/// configuration of resource `id` of `object` ([`Kind::ProtocolConfiguration`]).
fn s3p_overlay(ctx: &mut Context<'_>, object: u16, id: u16, s3p: &[u8]) -> HandlerResult {
    let mut record = [0u8; lwm2m_core::config::SETTING_LEN];
    let stored = ctx.config().setting(object, id).unwrap_or(&[]);
    let kept = stored.len().min(record.len());
    record[..kept].copy_from_slice(&stored[..kept]);
    // The serial record at least: a shorter one (nothing, or an S3P record alone) reads
    // with zeros after it.
    let len = kept.max(SERIAL_RECORD_LEN);
    record[..S3P_RECORD_LEN].copy_from_slice(s3p);
    // The S3P mode is the serial record's flow control and delimiter byte, whose
    // fields it keeps within their enums (both 0 or 1).
    if !protocol_configuration_is_valid(&record[..len]) {
        return Err(ResultCode::NotAcceptable);
    }
    ctx.config_mut().set_setting(object, id, &record[..len])?;
    Ok(ResultCode::Ok)
}

/// Whether `record` is one of the layouts of `/1027//21` (`objects.md` §6.4), with the
/// enum fields the client encodes holding values of their enums (`enums.json`).
fn protocol_configuration_is_valid(record: &[u8]) -> bool {
    match record.len() {
        // S3P mode: EMULATION 0, INDEXED 1.
        S3P_RECORD_LEN => record[1] <= 1,
        len if len >= SERIAL_RECORD_LEN
            && (len - SERIAL_RECORD_LEN).is_multiple_of(USB_ALIAS_LEN) =>
        {
            let mut bits = [0u8; SERIAL_RECORD_LEN];
            bits.copy_from_slice(&record[..SERIAL_RECORD_LEN]);
            serial_record_is_valid(u64::from_le_bytes(bits))
        }
        _ => false,
    }
}

/// The enum fields of the little-endian serial/Modbus bit field (`objects.md` §6.4,
/// `SerialSettings` of `enums.json`); slave, baud rate, timeout and the flags take any
/// value.
fn serial_record_is_valid(bits: u64) -> bool {
    let field = |shift: u32, width: u32| (bits >> shift) & ((1 << width) - 1);
    // PhysicalPort: NONE 0, RS232 1, USB 3, AUTO 6, RS485 10.
    matches!(field(24, 4), 0 | 1 | 3 | 6 | 10)
        // StopBits: ONE, ONE_AND_HALF, TWO.
        && field(22, 2) <= 2
        // BitParity: NONE, ODD, EVEN.
        && field(18, 4) <= 2
        // DataBits: 7, 8, 9.
        && field(16, 2) <= 2
        // HandshakeDelimiter: NONE, CR, LF, CR_LF.
        && field(12, 4) <= 3
        // HardwareFlowControl: NONE, RTS, CTS, RTS_CTS.
        && field(8, 4) <= 3
}

/// GET, PUT and POST (POST writes like PUT: the client's "set") of a table value of
/// object `object`; the access check already passed.
pub fn handle(
    ctx: &mut Context<'_>,
    object: u16,
    def: &Setting,
    req: &Request<'_>,
    body: &mut Body<'_>,
) -> HandlerResult {
    match req.method {
        Method::Get => emit(def.kind, ctx.config().setting(object, def.id), body)?,
        Method::Put | Method::Post => {
            let mut scratch = [0u8; 4];
            let value = canonical(def.kind, ctx.config(), req.payload, &mut scratch)?;
            if def.kind == Kind::ProtocolConfiguration && value.len() == S3P_RECORD_LEN {
                return s3p_overlay(ctx, object, def.id, value);
            }
            // Legal but longer than the image holds: A7.
            ctx.config_mut().set_setting(object, def.id, value)?;
        }
        Method::Delete => return Err(ResultCode::MethodNotAllowed),
    }
    Ok(ResultCode::Ok)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use lwm2m_core::config::Bundle;
    use std::{vec, vec::Vec};

    fn check(kind: Kind, payload: &[u8]) -> Result<Vec<u8>, ResultCode> {
        check_in(&Config::default(), kind, payload)
    }

    fn check_in(config: &Config, kind: Kind, payload: &[u8]) -> Result<Vec<u8>, ResultCode> {
        let mut scratch = [0u8; 4];
        canonical(kind, config, payload, &mut scratch).map(|v| v.to_vec())
    }

    fn read(kind: Kind, stored: Option<&[u8]>) -> Vec<u8> {
        let mut buf = [0u8; 16];
        let mut body = Body::new(&mut buf);
        emit(kind, stored, &mut body).unwrap();
        body.as_slice().to_vec()
    }

    const REFUSED: Result<Vec<u8>, ResultCode> = Err(ResultCode::NotAcceptable);

    #[test]
    fn integers_are_stored_at_their_canonical_width() {
        assert_eq!(check(Kind::U16, &[0x0a]), Ok(vec![0, 0x0a]));
        assert_eq!(check(Kind::U32, &[0x13, 0x88]), Ok(vec![0, 0, 0x13, 0x88]));
        assert_eq!(check(Kind::U8, &[1, 2]), REFUSED);
    }

    #[test]
    fn text_and_bytes_are_bounded() {
        assert_eq!(check(Kind::Ascii(4), b"Demo"), Ok(b"Demo".to_vec()));
        assert_eq!(check(Kind::Ascii(4), b"Demo\0"), Ok(b"Demo".to_vec()));
        assert_eq!(check(Kind::Ascii(3), b"Demo"), REFUSED);
        assert_eq!(check(Kind::Fixed(4), &[192, 168, 1]), REFUSED);
        assert_eq!(check(Kind::Bytes(2), &[1, 2]), Ok(vec![1, 2]));
        assert_eq!(check(Kind::Bytes(2), &[1, 2, 3]), REFUSED);
    }

    #[test]
    fn enums_take_their_values_only_and_default_to_the_first() {
        // LowPowerOptimizationLevel: NO 0, STANDBY 2, SHUTDOWN 3.
        let kind = Kind::Enum(EnumValues::of(&[0, 2, 3]));
        assert_eq!(check(kind, &[2]), Ok(vec![2]));
        assert_eq!(check(kind, &[1]), REFUSED);
        assert_eq!(check(kind, &[0, 2]), REFUSED);
        assert_eq!(check(kind, &[]), REFUSED);
        assert_eq!(read(Kind::Enum(EnumValues::of(&[7, 1])), None), vec![7]);
        assert_eq!(read(kind, Some(&[3])), vec![3]);
        let wide = EnumValues::of(&[0, 1, 14, 255]);
        for v in 0..=255u8 {
            assert_eq!(wide.contains(v), [0, 1, 14, 255].contains(&v), "{v}");
        }
        assert_eq!(
            (wide.largest(), EnumValues::of(&[0, 2, 3]).largest()),
            (255, 3)
        );
    }

    #[test]
    fn bit_fields_take_their_bits_only() {
        assert_eq!(check(Kind::Flags8(0xf8), &[0x88]), Ok(vec![0x88]));
        assert_eq!(check(Kind::Flags8(0xf8), &[0x04]), REFUSED);
        assert_eq!(
            check(Kind::Flags16(0x077f), &[0x04, 0x61]),
            Ok(vec![0x04, 0x61])
        );
        assert_eq!(check(Kind::Flags16(0x077f), &[0x21]), Ok(vec![0, 0x21]));
        assert_eq!(check(Kind::Flags16(0x077f), &[0x08, 0x00]), REFUSED);
        assert_eq!(read(Kind::Flags16(0x077f), None), vec![0, 0]);
    }

    #[test]
    fn bounded_u16_takes_up_to_its_maximum() {
        assert_eq!(
            check(Kind::U16Max(999), &[0x03, 0xe7]),
            Ok(vec![0x03, 0xe7])
        );
        assert_eq!(check(Kind::U16Max(999), &[0x03, 0xe8]), REFUSED);
        assert_eq!(check(Kind::U16Max(999), &[0x7c]), Ok(vec![0, 0x7c]));
    }

    #[test]
    fn a_mask_read_as_one_value_reads_its_highest_bit() {
        let kind = Kind::MaskReadAsOne(0x07);
        assert_eq!(check(kind, &[0x07]), Ok(vec![0x07]));
        assert_eq!(check(kind, &[0x00]), REFUSED);
        assert_eq!(check(kind, &[0x08]), REFUSED);
        assert_eq!(read(kind, Some(&[0x07])), vec![0x04]);
        assert_eq!(read(kind, Some(&[0x03])), vec![0x02]);
        assert_eq!(read(kind, Some(&[0x01])), vec![0x01]);
        assert_eq!(read(kind, None), vec![0x04]);
        assert_eq!(highest_bit(0x80), 0x80);
        assert_eq!(highest_bit(0), 0);
    }

    #[test]
    fn profile_ids_name_an_existing_profile() {
        let config = Config::default();
        for id in [[0, 0], [0xff, 0xff], [0xff, 0xfe]] {
            assert_eq!(check_in(&config, Kind::ProfileId, &id), Ok(id.to_vec()));
        }
        assert_eq!(check_in(&config, Kind::ProfileId, &[0, 1]), REFUSED);
        assert_eq!(check_in(&config, Kind::ProfileId, &[0]), Ok(vec![0, 0]));
        assert_eq!(read(Kind::ProfileId, None), vec![0, 0]);
    }

    #[test]
    fn bundle_ids_name_an_existing_bundle_or_none() {
        let mut config = Config::default();
        assert_eq!(check_in(&config, Kind::BundleId, &[0, 0]), Ok(vec![0, 0]));
        assert_eq!(check_in(&config, Kind::BundleId, &[0, 3]), REFUSED);
        config.bundles.push(Bundle::new(3)).unwrap();
        assert_eq!(check_in(&config, Kind::BundleId, &[0, 3]), Ok(vec![0, 3]));
        assert_eq!(check_in(&config, Kind::BundleId, &[3]), Ok(vec![0, 3]));
        assert_eq!(check_in(&config, Kind::BundleId, &[0, 0, 3]), REFUSED);
    }

    #[test]
    fn references_to_a_deleted_id_are_dropped() {
        const TABLE: &[SettingDef] = &[
            SettingDef::new(ResourceDef::single(43), Kind::ProfileId),
            SettingDef::new(ResourceDef::single(66), Kind::ProfileId),
            SettingDef::new(ResourceDef::single(95), Kind::U16),
            SettingDef::new(ResourceDef::single(102), Kind::BundleId),
        ];
        const LINES: &[Setting] = &lines::<4>(TABLE);
        let mut config = Config::default();
        for resource in [43, 95, 102] {
            config.set_setting(1024, resource, &[0, 1]).unwrap();
        }
        config.set_setting(1024, 66, &[0, 2]).unwrap();
        config.set_setting(1027, 43, &[0, 1]).unwrap();
        drop_references(&mut config, 1024, LINES, Kind::ProfileId, 1);
        assert_eq!(config.setting(1024, 43), None);
        assert_eq!(config.setting(1024, 66), Some(&[0, 2][..]));
        assert_eq!(
            config.setting(1024, 95),
            Some(&[0, 1][..]),
            "not a reference"
        );
        assert_eq!(config.setting(1024, 102), Some(&[0, 1][..]), "a bundle id");
        assert_eq!(
            config.setting(1027, 43),
            Some(&[0, 1][..]),
            "another object"
        );
        drop_references(&mut config, 1024, LINES, Kind::BundleId, 1);
        assert_eq!(config.setting(1024, 102), None);
    }

    #[test]
    fn protocol_configuration_has_the_declared_layouts() {
        let kind = Kind::ProtocolConfiguration;
        // objects.md §6.4 examples: serial/Modbus, TapNPass with one USB alias; S3P.
        let serial = [0x0a, 0x30, 0x09, 0x01, 0x00, 0xc2, 0x11, 0x01];
        let tapnpass = [
            0x05, 0x00, 0x01, 0xa3, 0x80, 0x25, 0x00, 0x01, 0x12, 0x34, 0x56, 0x78, 0x01,
        ];
        assert_eq!(check(kind, &serial), Ok(serial.to_vec()));
        assert_eq!(check(kind, &tapnpass), Ok(tapnpass.to_vec()));
        assert_eq!(check(kind, &tapnpass[..8]), Ok(tapnpass[..8].to_vec()));
        assert_eq!(check(kind, &[5, 1]), Ok(vec![5, 1]));
        assert_eq!(check(kind, &[5, 2]), REFUSED);
        for len in [0, 1, 3, 7, 9, 12, 14] {
            let record = [0u8; 14];
            assert_eq!(check(kind, &record[..len]), REFUSED, "{len} bytes");
        }
        assert_eq!(read(kind, None), vec![0; 8]);
        assert_eq!(read(kind, Some(&[5, 1])), vec![5, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(read(kind, Some(&serial)), serial.to_vec());
    }

    #[test]
    fn serial_record_fields_hold_values_of_their_enums() {
        let valid = u64::from_le_bytes([0x0a, 0x30, 0x09, 0x01, 0x00, 0xc2, 0x11, 0x01]);
        assert!(serial_record_is_valid(valid));
        // Every physical port, then a value outside each field's enum.
        for port in [0u64, 1, 3, 6, 10] {
            assert!(serial_record_is_valid(valid & !(0xf << 24) | port << 24));
        }
        for (shift, width, bad) in [
            (24, 4, 2u64),
            (22, 2, 3),
            (18, 4, 3),
            (16, 2, 3),
            (12, 4, 4),
            (8, 4, 4),
        ] {
            let mask = ((1u64 << width) - 1) << shift;
            assert!(
                !serial_record_is_valid(valid & !mask | bad << shift),
                "bits {shift}"
            );
        }
        // Slave, offsetFirstRegister, baud rate, TapNPass flags and timeout are free.
        assert!(serial_record_is_valid(
            valid | 0xff00_0000_0000_00ff | 1 << 52 | 0xa << 28
        ));
    }
}
