//! The configuration as a versioned byte image (what flash holds).
//!
//! ```text
//! "LWCF" | format u16 | version u32 | options u16 | inactivity u16 | nfc u8
//! | n u8 × profile  { id u16 | name (u8 len, bytes) | credential (tag u8, 0/16/36 bytes)
//!                     | lifetime u16 | alias u16 }
//! | n u8 × bundle   { id u16 | name | period u32 | n u8 × { profile u16 | rights u8 } }
//! | n u8 × variable { id u16 | address [4] | type u8 | quantity u16 | bundle u16 (FFFF none)
//!                     | meta | unit | extra u8 | value (u8 len, bytes) }
//! | n u8 × setting  { object u16 | resource u16 | value (u8 len, bytes) }
//! ```
//!
//! Integrity (CRC, atomic replacement) is the storage layer's job; decoding still checks
//! every length and count against the capacities, so a corrupt or foreign image is an
//! error, never a panic, and then checks the meaning of what it decoded
//! ([`Config::validate`]): a crafted image that passes the CRC is refused like a corrupt
//! one.
//!
//! Passwords are stored as their hash (credential tag 2); tag 1, a password in clear
//! written by earlier releases, is read and hashed on load.

use heapless::VecView;

use super::settings::ENTRY_HEADER_LEN;
use super::{AclEntry, Bundle, Config, NfcPriority, Profile, Rights, SecurityOptions, Variable};

use crate::auth::{field_text, hash_password, Credential, ScramRecord, Secret16, FIELD_LEN};

/// First bytes of every image.
pub const MAGIC: [u8; 4] = *b"LWCF";
/// Layout version of the image; bump when the layout changes.
pub const FORMAT: u16 = 1;

/// Why an image could not be encoded or decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ImageError {
    /// The output buffer is too small.
    BufferTooSmall,
    /// Not an image (wrong magic) or an unknown format version.
    UnknownFormat,
    /// A field is truncated or exceeds a capacity.
    Corrupt,
    /// Well formed, but not a configuration the device could have written
    /// ([`Config::validate`]): a duplicate id or name, a built-in profile missing, a
    /// reference to nothing, a value out of range.
    Invalid,
}

const NO_BUNDLE: u16 = 0xFFFF;
const CRED_NONE: u8 = 0;
const CRED_PLAIN: u8 = 1;
const CRED_HASHED: u8 = 2;
const CRED_SCRAM: u8 = 3;

/// Where an encoded image goes, piece by piece: a buffer, a CRC, the flash.
trait Sink {
    fn put(&mut self, bytes: &[u8]) -> Result<(), ImageError>;
}

/// Into a buffer.
struct SliceSink<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl Sink for SliceSink<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), ImageError> {
        let end = self.len + bytes.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(ImageError::BufferTooSmall)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
}

/// Into a function (streaming).
struct FnSink<F>(F);

impl<F: FnMut(&[u8]) -> Result<(), ImageError>> Sink for FnSink<F> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), ImageError> {
        (self.0)(bytes)
    }
}

/// Where an image is decoded from, piece by piece: a buffer, or the flash (streaming).
pub trait Source {
    /// Fills `out` with the next bytes of the image; [`ImageError::Corrupt`] if fewer
    /// are left.
    fn read(&mut self, out: &mut [u8]) -> Result<(), ImageError>;

    /// Whether every byte of the image was read.
    fn is_empty(&self) -> bool;
}

impl Source for &[u8] {
    fn read(&mut self, out: &mut [u8]) -> Result<(), ImageError> {
        let (head, rest) = self
            .split_at_checked(out.len())
            .ok_or(ImageError::Corrupt)?;
        out.copy_from_slice(head);
        *self = rest;
        Ok(())
    }

    fn is_empty(&self) -> bool {
        <[u8]>::is_empty(self)
    }
}

/// Which way a [`Walker`] goes.
enum Io<'s> {
    /// Encoding: every field walked is written.
    Out(&'s mut dyn Sink),
    /// Decoding: every field walked is read.
    In(&'s mut dyn Source),
}

/// The one walker of the layout, encoding and decoding alike: a record is walked field
/// by field by one function for both directions (`walk_profile`, ...), which reads each
/// field into its place or writes it from there. The encoder walks a copy of each
/// record (the configuration it encodes is shared), the decoder the record itself.
///
/// The first error sticks: after it nothing more is read or written, a field read
/// keeps its value and a count reads as what it was (the decoder's start from zero),
/// so a walk after an error ends quickly and the error is reported at its end.
struct Walker<'s> {
    io: Io<'s>,
    failed: Option<ImageError>,
}

impl<'s> Walker<'s> {
    fn new(io: Io<'s>) -> Self {
        Walker { io, failed: None }
    }

    fn decoding(&self) -> bool {
        matches!(self.io, Io::In(_))
    }

    /// Records `err` unless an error came first.
    #[inline(never)]
    fn fail(&mut self, err: ImageError) {
        self.failed.get_or_insert(err);
    }

    /// The result of the walk so far.
    fn result(&self) -> Result<(), ImageError> {
        self.failed.map_or(Ok(()), Err)
    }

    /// Writes `bytes`, or reads them into it.
    #[inline(never)]
    fn bytes(&mut self, bytes: &mut [u8]) {
        if self.failed.is_some() {
            return;
        }
        let done = match &mut self.io {
            Io::Out(sink) => sink.put(bytes),
            Io::In(source) => source.read(bytes),
        };
        if let Err(err) = done {
            self.failed = Some(err);
        }
    }

    #[inline(never)]
    fn u8(&mut self, v: &mut u8) {
        self.bytes(core::slice::from_mut(v));
    }

    #[inline(never)]
    fn u16(&mut self, v: &mut u16) {
        let mut be = v.to_be_bytes();
        self.bytes(&mut be);
        *v = u16::from_be_bytes(be);
    }

    #[inline(never)]
    fn u32(&mut self, v: &mut u32) {
        let mut be = v.to_be_bytes();
        self.bytes(&mut be);
        *v = u32::from_be_bytes(be);
    }

    /// A short byte string: u8 length then the bytes (every capacity is below 256: one
    /// copy of this for every field).
    #[inline(never)]
    fn short(&mut self, v: &mut VecView<u8, u8>) {
        let mut len = u8::try_from(v.len()).unwrap_or(u8::MAX);
        self.u8(&mut len);
        if self.decoding() && v.resize(usize::from(len), 0).is_err() {
            self.fail(ImageError::Corrupt);
        }
        self.bytes(v);
    }

    /// A count of what follows (a list's length: at most 255, its `u8` length type).
    fn count(&mut self, n: usize) -> u8 {
        let mut n = u8::try_from(n).unwrap_or_else(|_| {
            self.fail(ImageError::Corrupt);
            0
        });
        self.u8(&mut n);
        n
    }
}

/// The scalar fields at the head of an image.
#[derive(Default)]
struct Head {
    magic: [u8; 4],
    format: u16,
    version: u32,
    options: u16,
    inactivity: u16,
    nfc: u8,
}

fn walk_head(w: &mut Walker<'_>, h: &mut Head) {
    w.bytes(&mut h.magic);
    w.u16(&mut h.format);
    w.u32(&mut h.version);
    w.u16(&mut h.options);
    w.u16(&mut h.inactivity);
    w.u8(&mut h.nfc);
}

#[inline(never)]
fn walk_profile(w: &mut Walker<'_>, p: &mut Profile) {
    w.u16(&mut p.id);
    w.short(p.name.as_mut_view());
    walk_credential(w, &mut p.credential);
    w.u16(&mut p.lifetime_secs);
    w.u16(&mut p.alias);
}

/// The credential: its tag, then its bytes, read into their place (a secret is never
/// copied through the stack).
fn walk_credential(w: &mut Walker<'_>, credential: &mut Credential) {
    let mut tag = match credential {
        Credential::None => CRED_NONE,
        Credential::Hashed(_) => CRED_HASHED,
        Credential::Scram(_) => CRED_SCRAM,
    };
    w.u8(&mut tag);
    if w.decoding() {
        *credential = match tag {
            CRED_NONE => Credential::None,
            // Tag 1, written by earlier releases, kept plain passwords in clear: read
            // as a hash, then hashed below.
            CRED_PLAIN | CRED_HASHED => Credential::Hashed(Secret16([0; FIELD_LEN])),
            CRED_SCRAM => Credential::Scram(ScramRecord {
                stored_key: [0; 16],
                server_key: [0; 16],
                salt: [0; 4],
            }),
            _ => {
                w.fail(ImageError::Corrupt);
                Credential::None
            }
        };
    }
    match credential {
        Credential::None => {}
        Credential::Hashed(secret) => w.bytes(&mut secret.0),
        Credential::Scram(record) => {
            w.bytes(&mut record.stored_key);
            w.bytes(&mut record.server_key);
            w.bytes(&mut record.salt);
        }
    }
    if tag == CRED_PLAIN && w.decoding() && w.failed.is_none() {
        if let Credential::Hashed(secret) = credential {
            // The password in clear is wiped as its hash replaces it (as
            // `Credential::from_password` would hash it).
            *secret = hash_password(field_text(&secret.0));
        }
    }
}

#[inline(never)]
fn walk_bundle(w: &mut Walker<'_>, b: &mut Bundle) {
    w.u16(&mut b.id);
    w.short(b.name.as_mut_view());
    w.u32(&mut b.datalog_period);
    let n = w.count(b.acl.len());
    if w.decoding() {
        let blank = AclEntry {
            profile: 0,
            rights: Rights::NONE,
        };
        if b.acl.resize(usize::from(n), blank).is_err() {
            w.fail(ImageError::Corrupt);
        }
    }
    for e in b.acl.iter_mut() {
        w.u16(&mut e.profile);
        w.u8(&mut e.rights.0);
    }
}

#[inline(never)]
fn walk_variable(w: &mut Walker<'_>, v: &mut Variable) {
    w.u16(&mut v.id);
    w.bytes(&mut v.address);
    w.u8(&mut v.var_type);
    w.u16(&mut v.quantity);
    let mut bundle = v.bundle.unwrap_or(NO_BUNDLE);
    w.u16(&mut bundle);
    v.bundle = Some(bundle).filter(|&b| b != NO_BUNDLE);
    w.short(v.meta.as_mut_view());
    w.short(v.unit.as_mut_view());
    w.u8(&mut v.extra_size);
    w.short(v.value.as_mut_view());
}

impl Config {
    /// Encodes the image into `buf`, returning its length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, ImageError> {
        let mut sink = SliceSink { buf, len: 0 };
        self.write(Walker::new(Io::Out(&mut sink)))?;
        Ok(sink.len)
    }

    /// Encodes the image piece by piece into `sink` (a CRC, the flash), in order:
    /// nothing as large as the image is ever held.
    pub fn encode_with(
        &self,
        sink: impl FnMut(&[u8]) -> Result<(), ImageError>,
    ) -> Result<(), ImageError> {
        self.write(Walker::new(Io::Out(&mut FnSink(sink))))
    }

    /// The length of the image [`Config::encode`] writes.
    pub fn encoded_len(&self) -> Result<usize, ImageError> {
        let mut len = 0usize;
        self.encode_with(|piece| {
            len += piece.len();
            Ok(())
        })?;
        Ok(len)
    }

    /// The encoder: the records walked one copy at a time (one record of stack).
    #[inline(never)]
    fn write(&self, mut w: Walker<'_>) -> Result<(), ImageError> {
        walk_head(
            &mut w,
            &mut Head {
                magic: MAGIC,
                format: FORMAT,
                version: self.version,
                options: self.security_options.0,
                inactivity: self.inactivity_secs,
                nfc: self.nfc_priority as u8,
            },
        );
        w.count(self.profiles.len());
        for p in &self.profiles {
            walk_profile(&mut w, &mut p.clone());
        }
        w.count(self.bundles.len());
        for b in &self.bundles {
            walk_bundle(&mut w, &mut b.clone());
        }
        w.count(self.variables.len());
        for v in &self.variables {
            walk_variable(&mut w, &mut v.clone());
        }
        // Each entry of `Settings` is laid out as in the image.
        w.count(self.settings.len());
        if let Io::Out(sink) = &mut w.io {
            if w.failed.is_none() {
                if let Err(err) = sink.put(self.settings.as_bytes()) {
                    w.failed = Some(err);
                }
            }
        }
        w.result()
    }

    /// Decodes an image produced by [`Config::encode`]; trailing bytes are an error.
    #[inline(never)]
    pub fn decode(image: &[u8]) -> Result<Config, ImageError> {
        let mut config = Config::default();
        config.decode_into(image)?;
        Ok(config)
    }

    /// Decodes an image into `self`, in place (no configuration is built on the stack).
    /// On an error `self` is the factory default ([`Config::reset`]).
    pub fn decode_into(&mut self, image: &[u8]) -> Result<(), ImageError> {
        self.decode_from(image)
    }

    /// Decodes an image read piece by piece from `source` (the flash: nothing as large
    /// as the image is ever held) into `self`, in place; on an error `self` is the
    /// factory default. Every byte of `source` must belong to the image.
    pub fn decode_from(&mut self, source: impl Source) -> Result<(), ImageError> {
        let decoded = self.decode_in_place(source);
        if decoded.is_err() {
            self.reset();
        }
        decoded
    }

    /// [`Config::decode_from`] without the reset on an error: `self` is then some
    /// configuration, valid or not, that the caller must not use (the store resets it
    /// once, whatever failed).
    pub(crate) fn decode_in_place(&mut self, mut source: impl Source) -> Result<(), ImageError> {
        self.decode_fields(Walker::new(Io::In(&mut source)))
    }

    /// The decoder: each record decoded in place (the list holds it before its fields
    /// are read).
    #[inline(never)]
    fn decode_fields(&mut self, mut w: Walker<'_>) -> Result<(), ImageError> {
        // A format that could not be read is a truncation (`Corrupt`), not unknown.
        let mut head = Head {
            format: FORMAT,
            ..Head::default()
        };
        walk_head(&mut w, &mut head);
        if head.magic != MAGIC || head.format != FORMAT {
            return Err(ImageError::UnknownFormat);
        }
        w.result()?;
        let config = self;
        config.version = head.version;
        config.security_options = SecurityOptions(head.options);
        config.inactivity_secs = head.inactivity;
        config.nfc_priority = NfcPriority::from_u8(head.nfc).ok_or(ImageError::Corrupt)?;
        config.profiles.clear();
        config.bundles.clear();
        config.variables.clear();
        config.settings.clear();
        for _ in 0..w.count(0) {
            match config.profiles.push(Profile::new(0, b"")) {
                Ok(()) => {}
                Err(_) => w.fail(ImageError::Corrupt),
            }
            if let Some(p) = config.profiles.last_mut() {
                walk_profile(&mut w, p);
            }
        }
        for _ in 0..w.count(0) {
            match config.bundles.push(Bundle::new(0)) {
                Ok(()) => {}
                Err(_) => w.fail(ImageError::Corrupt),
            }
            if let Some(b) = config.bundles.last_mut() {
                walk_bundle(&mut w, b);
            }
        }
        for _ in 0..w.count(0) {
            match config.variables.push(Variable::new(0)) {
                Ok(()) => {}
                Err(_) => w.fail(ImageError::Corrupt),
            }
            if let Some(v) = config.variables.last_mut() {
                walk_variable(&mut w, v);
            }
        }
        for _ in 0..w.count(0) {
            let mut header = [0u8; ENTRY_HEADER_LEN];
            w.bytes(&mut header);
            let [o0, o1, r0, r1, _] = header;
            let stored_twice = config
                .settings
                .get(u16::from_be_bytes([o0, o1]), u16::from_be_bytes([r0, r1]))
                .is_some();
            // The value is read into its place (it may be a secret: no copy of it).
            let settings = &mut config.settings;
            if settings
                .append_with(header, |value| w.bytes(value))
                .is_err()
            {
                w.fail(ImageError::Corrupt);
            }
            if stored_twice {
                w.fail(ImageError::Invalid);
            }
        }
        w.result()?;
        if let Io::In(source) = &w.io {
            if !source.is_empty() {
                return Err(ImageError::Corrupt);
            }
        }
        config.validate().map_err(|_| ImageError::Invalid)
    }
}

/// An upper bound of the encoded size of any configuration, for sizing buffers.
pub const MAX_IMAGE_LEN: usize = {
    use super::*;
    let profile = 2 + 1 + NAME_LEN + 1 + 36 + 2 + 2;
    let bundle = 2 + 1 + NAME_LEN + 4 + 1 + MAX_ACL_ENTRIES * 3;
    let variable = 2 + 4 + 1 + 2 + 2 + 1 + META_LEN + 1 + UNIT_LEN + 1 + 1 + VALUE_LEN;
    4 + 2
        + 4
        + 2
        + 2
        + 1
        + 4
        + MAX_PROFILES * profile
        - 36 // the anonymous profile has no credential (Config::validate)
        + MAX_BUNDLES * bundle
        + MAX_VARIABLES * variable
        + SETTINGS_BYTES // each entry as in `Settings`: object, resource, length, value
};

#[cfg(test)]
mod tests {
    use super::*;
    use heapless::Vec;

    fn sample() -> Config {
        let mut config = Config {
            version: 0x0102_0003,
            security_options: SecurityOptions(SecurityOptions::HASH_PASSWORD),
            inactivity_secs: 30,
            ..Config::default()
        };
        let mut user = Profile::new(1, b"user1").with_lifetime(300);
        user.credential = Credential::Hashed(crate::auth::hash_password(b"pwd"));
        config.profiles.push(user).unwrap();
        let mut bob = Profile::new(2, b"bob");
        bob.alias = 1;
        bob.credential = Credential::Scram(ScramRecord::from_bytes(&[7; 36]).unwrap());
        config.profiles.push(bob).unwrap();
        let mut bundle = Bundle::new(1);
        bundle.name = Vec::from_slice(b"sensors").unwrap();
        bundle.datalog_period = 10;
        bundle
            .acl
            .push(AclEntry {
                profile: 0,
                rights: Rights::READ,
            })
            .unwrap();
        bundle
            .acl
            .push(AclEntry {
                profile: 1,
                rights: Rights::ALL,
            })
            .unwrap();
        config.bundles.push(bundle).unwrap();
        let mut v = Variable::new(5);
        v.address = [0x20, 0, 0, 0x10];
        v.var_type = 0x13;
        v.bundle = Some(1);
        v.meta = Vec::from_slice(b"temp:C").unwrap();
        v.extra_size = 6;
        config.variables.push(v).unwrap();
        let mut v = Variable::new(6);
        v.var_type = 0xE2;
        v.quantity = 2;
        v.value = Vec::from_slice(&[0, 1, 0, 2]).unwrap();
        config.variables.push(v).unwrap();
        config.set_setting(1024, 9, b"Demo").unwrap();
        config
    }

    #[test]
    fn round_trips() {
        let config = sample();
        let mut buf = [0u8; MAX_IMAGE_LEN];
        let n = config.encode(&mut buf).unwrap();
        assert_eq!(Config::decode(&buf[..n]).unwrap(), config);
        let n = Config::default().encode(&mut buf).unwrap();
        assert_eq!(Config::decode(&buf[..n]).unwrap(), Config::default());
    }

    #[test]
    fn every_truncation_is_an_error() {
        let mut buf = [0u8; MAX_IMAGE_LEN];
        let n = sample().encode(&mut buf).unwrap();
        for len in 0..n {
            assert!(
                Config::decode(&buf[..len]).is_err(),
                "prefix of {len} bytes"
            );
        }
        let mut longer = buf[..n + 1].to_vec();
        longer[n] = 0;
        assert_eq!(Config::decode(&longer), Err(ImageError::Corrupt));
    }

    #[test]
    fn foreign_images_are_refused() {
        assert_eq!(
            Config::decode(b"NOPE\x00\x01"),
            Err(ImageError::UnknownFormat)
        );
        assert_eq!(
            Config::decode(b"LWCF\x00\x02"),
            Err(ImageError::UnknownFormat)
        );
        assert_eq!(Config::decode(&[0xFF; 64]), Err(ImageError::UnknownFormat));
    }

    fn image_of(config: &Config) -> std::vec::Vec<u8> {
        // Encoding does not validate: this is how a crafted image is made.
        let mut buf = [0u8; MAX_IMAGE_LEN];
        let n = config.encode(&mut buf).unwrap();
        buf[..n].to_vec()
    }

    #[test]
    fn a_crafted_image_is_refused_even_with_a_valid_layout() {
        use crate::config::{InvalidConfig, ADMIN, ANONYMOUS};
        let valid = sample();
        assert_eq!(valid.validate(), Ok(()));
        let refused = |config: Config, why: InvalidConfig| {
            assert_eq!(config.validate(), Err(why));
            assert_eq!(Config::decode(&image_of(&config)), Err(ImageError::Invalid));
        };

        // A second "admin", listed first, with a password of the attacker's choice.
        let mut c = valid.clone();
        let impostor = Profile::new(7, b"admin").with_credential(Credential::from_password(b"x"));
        c.profiles.insert(0, impostor).unwrap();
        refused(c, InvalidConfig::Duplicate);
        // Built-in profiles missing, or anonymous with a password.
        let mut c = valid.clone();
        c.profiles.retain(|p| p.id != ADMIN);
        refused(c, InvalidConfig::BuiltinProfile);
        let mut c = valid.clone();
        c.profiles.retain(|p| p.id != ANONYMOUS);
        refused(c, InvalidConfig::BuiltinProfile);
        let mut c = valid.clone();
        c.profile_mut(ANONYMOUS).unwrap().credential = Credential::from_password(b"");
        refused(c, InvalidConfig::BuiltinProfile);
        // Anonymous (or admin) using another profile's rights.
        let mut c = valid.clone();
        c.profile_mut(ANONYMOUS).unwrap().alias = ADMIN;
        refused(c, InvalidConfig::BuiltinProfile);
        // Two profiles with one id.
        let mut c = valid.clone();
        c.profiles.push(Profile::new(1, b"other")).unwrap();
        refused(c, InvalidConfig::Duplicate);
        // An alias naming no profile.
        let mut c = valid.clone();
        c.profile_mut(1).unwrap().alias = 42;
        refused(c, InvalidConfig::DanglingReference);
        // Rights above read|write, two entries for one profile.
        let mut c = valid.clone();
        c.bundle_mut(1).unwrap().acl[0].rights = Rights(0x07);
        refused(c, InvalidConfig::OutOfRange);
        let mut c = valid.clone();
        let entry = c.bundle(1).unwrap().acl[0];
        c.bundle_mut(1).unwrap().acl.push(entry).unwrap();
        refused(c, InvalidConfig::Duplicate);
        // Quantities the protocol cannot carry, unknown types, values longer than the
        // variable, a bundle that does not exist.
        for quantity in [0, 256, 65535] {
            let mut c = valid.clone();
            c.variable_mut(5).unwrap().quantity = quantity;
            refused(c, InvalidConfig::OutOfRange);
        }
        let mut c = valid.clone();
        c.variable_mut(5).unwrap().var_type = 0x3F;
        refused(c, InvalidConfig::OutOfRange);
        let mut c = valid.clone();
        c.variable_mut(6).unwrap().value = Vec::from_slice(&[0; 5]).unwrap();
        refused(c, InvalidConfig::OutOfRange);
        let mut c = valid.clone();
        c.variable_mut(5).unwrap().bundle = Some(9);
        refused(c, InvalidConfig::DanglingReference);
        // Security options nobody defined.
        let mut c = valid.clone();
        c.security_options = SecurityOptions(0x8000);
        refused(c, InvalidConfig::OutOfRange);
        // A setting stored twice (the settings come last: count, then the entries).
        let mut image = image_of(&valid);
        let entries = valid.settings.used();
        let count_at = image.len() - entries - 1;
        image[count_at] += 1;
        let first =
            image[count_at + 1..count_at + 1 + 5 + usize::from(image[count_at + 5])].to_vec();
        image.extend_from_slice(&first);
        assert_eq!(Config::decode(&image), Err(ImageError::Invalid));
    }

    #[test]
    fn a_plain_password_of_an_earlier_release_is_hashed_on_load() {
        let mut image = image_of(&Config::default());
        // Rewrite admin's credential as tag 1 (plain "admin", zero-padded).
        let at = image
            .windows(17)
            .position(|w| w[0] == CRED_HASHED && w[1..] == crate::auth::hash_password(b"admin").0)
            .unwrap();
        image[at] = CRED_PLAIN;
        image[at + 1..at + 17].copy_from_slice(&crate::auth::pad_field(b"admin"));
        assert_eq!(Config::decode(&image), Ok(Config::default()));
    }

    #[test]
    fn a_small_buffer_is_reported() {
        let mut buf = [0u8; 16];
        assert_eq!(sample().encode(&mut buf), Err(ImageError::BufferTooSmall));
    }
}
