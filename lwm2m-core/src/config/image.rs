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

use heapless::{Vec, VecView};

use super::{
    AclEntry, Bundle, Config, NfcPriority, Profile, Rights, SecurityOptions, Variable, SETTING_LEN,
};
use zeroize::Zeroize;

use crate::auth::{field_text, Credential, ScramRecord, Secret16, FIELD_LEN};

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

/// The encoder's view of its sink: one encoder for every sink (a buffer, a CRC, the
/// flash), so a firmware carries one copy of it.
struct Writer<'s> {
    sink: &'s mut dyn Sink,
}

impl Writer<'_> {
    fn bytes(&mut self, bytes: &[u8]) -> Result<(), ImageError> {
        self.sink.put(bytes)
    }

    #[inline(never)]
    fn u8(&mut self, v: u8) -> Result<(), ImageError> {
        self.bytes(&[v])
    }

    #[inline(never)]
    fn u16(&mut self, v: u16) -> Result<(), ImageError> {
        self.bytes(&v.to_be_bytes())
    }

    #[inline(never)]
    fn u32(&mut self, v: u32) -> Result<(), ImageError> {
        self.bytes(&v.to_be_bytes())
    }

    /// A short byte string: u8 length then the bytes (every capacity is below 256).
    #[inline(never)]
    fn short(&mut self, bytes: &[u8]) -> Result<(), ImageError> {
        self.u8(u8::try_from(bytes.len()).map_err(|_| ImageError::Corrupt)?)?;
        self.bytes(bytes)
    }

    #[inline(never)]
    fn count(&mut self, n: usize) -> Result<(), ImageError> {
        self.u8(u8::try_from(n).map_err(|_| ImageError::Corrupt)?)
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

/// The decoder's view of its source: one decoder for every source.
struct Reader<'s> {
    source: &'s mut dyn Source,
}

impl Reader<'_> {
    fn array<const N: usize>(&mut self) -> Result<[u8; N], ImageError> {
        let mut out = [0u8; N];
        self.source.read(&mut out)?;
        Ok(out)
    }

    #[inline(never)]
    fn u8(&mut self) -> Result<u8, ImageError> {
        Ok(self.array::<1>()?[0])
    }

    #[inline(never)]
    fn u16(&mut self) -> Result<u16, ImageError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    #[inline(never)]
    fn u32(&mut self) -> Result<u32, ImageError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A short byte string into `out` (any capacity: one copy of this for every field).
    #[inline(never)]
    fn short_into(&mut self, out: &mut VecView<u8, u8>) -> Result<(), ImageError> {
        let len = usize::from(self.u8()?);
        out.clear();
        out.resize(len, 0).map_err(|_| ImageError::Corrupt)?;
        self.source.read(out)
    }
}

impl Config {
    /// Encodes the image into `buf`, returning its length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, ImageError> {
        let mut sink = SliceSink { buf, len: 0 };
        self.write(&mut Writer { sink: &mut sink })?;
        Ok(sink.len)
    }

    /// Encodes the image piece by piece into `sink` (a CRC, the flash), in order:
    /// nothing as large as the image is ever held.
    pub fn encode_with(
        &self,
        sink: impl FnMut(&[u8]) -> Result<(), ImageError>,
    ) -> Result<(), ImageError> {
        self.write(&mut Writer {
            sink: &mut FnSink(sink),
        })
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

    fn write(&self, w: &mut Writer<'_>) -> Result<(), ImageError> {
        w.bytes(&MAGIC)?;
        w.u16(FORMAT)?;
        w.u32(self.version)?;
        w.u16(self.security_options.0)?;
        w.u16(self.inactivity_secs)?;
        w.u8(self.nfc_priority as u8)?;
        w.count(self.profiles.len())?;
        for p in &self.profiles {
            w.u16(p.id)?;
            w.short(&p.name)?;
            match &p.credential {
                Credential::None => w.u8(CRED_NONE)?,
                Credential::Hashed(secret) => {
                    w.u8(CRED_HASHED)?;
                    w.bytes(&secret.0)?;
                }
                Credential::Scram(record) => {
                    w.u8(CRED_SCRAM)?;
                    w.bytes(&record.stored_key)?;
                    w.bytes(&record.server_key)?;
                    w.bytes(&record.salt)?;
                }
            }
            w.u16(p.lifetime_secs)?;
            w.u16(p.alias)?;
        }
        w.count(self.bundles.len())?;
        for b in &self.bundles {
            w.u16(b.id)?;
            w.short(&b.name)?;
            w.u32(b.datalog_period)?;
            w.count(b.acl.len())?;
            for e in &b.acl {
                w.u16(e.profile)?;
                w.u8(e.rights.0)?;
            }
        }
        w.count(self.variables.len())?;
        for v in &self.variables {
            w.u16(v.id)?;
            w.bytes(&v.address)?;
            w.u8(v.var_type)?;
            w.u16(v.quantity)?;
            w.u16(v.bundle.unwrap_or(NO_BUNDLE))?;
            w.short(&v.meta)?;
            w.short(&v.unit)?;
            w.u8(v.extra_size)?;
            w.short(&v.value)?;
        }
        w.count(self.settings.len())?;
        for s in self.settings.iter() {
            w.u16(s.object)?;
            w.u16(s.resource)?;
            w.short(s.value)?;
        }
        Ok(())
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
    pub fn decode_from(&mut self, mut source: impl Source) -> Result<(), ImageError> {
        let decoded = self.decode_fields(Reader {
            source: &mut source,
        });
        if decoded.is_err() {
            self.reset();
        }
        decoded
    }

    #[inline(never)]
    fn decode_fields(&mut self, mut r: Reader<'_>) -> Result<(), ImageError> {
        if r.array::<4>().ok() != Some(MAGIC) || r.u16()? != FORMAT {
            return Err(ImageError::UnknownFormat);
        }
        let config = self;
        config.version = r.u32()?;
        config.security_options = SecurityOptions(r.u16()?);
        config.inactivity_secs = r.u16()?;
        config.nfc_priority = NfcPriority::from_u8(r.u8()?).ok_or(ImageError::Corrupt)?;
        config.profiles.clear();
        config.bundles.clear();
        config.variables.clear();
        config.settings.clear();
        for _ in 0..r.u8()? {
            // Decoded in place: the list holds the element before its fields are read.
            config
                .profiles
                .push(Profile::new(r.u16()?, b""))
                .map_err(|_| ImageError::Corrupt)?;
            let profile = config.profiles.last_mut().ok_or(ImageError::Corrupt)?;
            r.short_into(profile.name.as_mut_view())?;
            profile.credential = match r.u8()? {
                CRED_NONE => Credential::None,
                // Written by earlier releases, which kept plain passwords in clear.
                CRED_PLAIN => {
                    let mut field: [u8; FIELD_LEN] = r.array()?;
                    let credential = Credential::from_password(field_text(&field));
                    field.zeroize();
                    credential
                }
                CRED_HASHED => Credential::Hashed(Secret16(r.array()?)),
                CRED_SCRAM => {
                    let mut record: [u8; 36] = r.array()?;
                    let credential = ScramRecord::from_bytes(&record).map(Credential::Scram);
                    record.zeroize();
                    credential.ok_or(ImageError::Corrupt)?
                }
                _ => return Err(ImageError::Corrupt),
            };
            profile.lifetime_secs = r.u16()?;
            profile.alias = r.u16()?;
        }
        for _ in 0..r.u8()? {
            config
                .bundles
                .push(Bundle::new(r.u16()?))
                .map_err(|_| ImageError::Corrupt)?;
            let bundle = config.bundles.last_mut().ok_or(ImageError::Corrupt)?;
            r.short_into(bundle.name.as_mut_view())?;
            bundle.datalog_period = r.u32()?;
            for _ in 0..r.u8()? {
                let entry = AclEntry {
                    profile: r.u16()?,
                    rights: Rights(r.u8()?),
                };
                bundle.acl.push(entry).map_err(|_| ImageError::Corrupt)?;
            }
        }
        for _ in 0..r.u8()? {
            config
                .variables
                .push(Variable::new(r.u16()?))
                .map_err(|_| ImageError::Corrupt)?;
            let v = config.variables.last_mut().ok_or(ImageError::Corrupt)?;
            v.address = r.array()?;
            v.var_type = r.u8()?;
            v.quantity = r.u16()?;
            v.bundle = Some(r.u16()?).filter(|&b| b != NO_BUNDLE);
            r.short_into(v.meta.as_mut_view())?;
            r.short_into(v.unit.as_mut_view())?;
            v.extra_size = r.u8()?;
            r.short_into(v.value.as_mut_view())?;
        }
        for _ in 0..r.u8()? {
            let (object, resource) = (r.u16()?, r.u16()?);
            let mut value: Vec<u8, SETTING_LEN, u8> = Vec::new();
            // The value may be a secret: wiped whatever happens to it.
            let stored = r.short_into(value.as_mut_view()).and_then(|()| {
                if config.settings.get(object, resource).is_some() {
                    return Err(ImageError::Invalid);
                }
                config
                    .settings
                    .set(object, resource, &value)
                    .map_err(|_| ImageError::Corrupt)
            });
            value.zeroize();
            stored?;
        }
        if !r.source.is_empty() {
            return Err(ImageError::Corrupt);
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
