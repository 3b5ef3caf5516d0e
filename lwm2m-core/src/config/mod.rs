//! The configuration image held in RAM (spec decision 11).
//!
//! Every authorised configuration write lands here at once; [`image`] turns it into the
//! versioned byte image that the storage layer saves to flash and loads at boot.

use heapless::Vec;

use crate::auth::Credential;

pub mod image;
pub mod settings;

pub use settings::{SettingRef, Settings, SETTINGS_BYTES, SETTING_LEN};

pub mod capacity {
    //! The capacities of the configuration: parameters of the build, chosen by the
    //! firmware with `LWM2M_PRESET` (`small` or `large`, the default) and `LWM2M_<NAME>`
    //! environment variables (in its `.cargo/config.toml` `[env]` table), read by the
    //! build script of `lwm2m-core`.
    //!
    //! | capacity | small | large |
    //! |---|---|---|
    //! | [`MAX_PROFILES`] | 8 | 16 |
    //! | [`MAX_BUNDLES`] | 8 | 16 |
    //! | [`MAX_ACL_ENTRIES`] (per bundle) | 8 | 8 |
    //! | [`MAX_VARIABLES`] | 32 | 64 |
    //! | [`NAME_LEN`] | 16 | 16 |
    //! | [`META_LEN`] | 16 | 32 |
    //! | [`UNIT_LEN`] | 8 | 8 |
    //! | [`VALUE_LEN`] | 8 | 64 |
    //! | [`SETTINGS_BYTES`] | 680 | 2048 |
    //!
    //! The frame sizes are the firmware's buffers ([`crate::FrameLimits`]).
    include!(concat!(env!("OUT_DIR"), "/capacity.rs"));
}

pub use capacity::{
    MAX_ACL_ENTRIES, MAX_BUNDLES, MAX_PROFILES, MAX_VARIABLES, META_LEN, NAME_LEN, UNIT_LEN,
    VALUE_LEN,
};
/// Largest number of elements of a variable (`/1029/{id}/2` is one byte on the wire).
pub const MAX_QUANTITY: u16 = 255;

/// Profile id of the anonymous profile: every session starts with it.
pub const ANONYMOUS: u16 = 0;
/// Profile id of the administrator, who has every right.
pub const ADMIN: u16 = 0xFFFF;
/// Profile id of the supervisor, handled like the administrator.
pub const SUPERVISOR: u16 = 0xFFFE;

/// A profile name: ASCII bytes, at most [`NAME_LEN`].
pub type Name = Vec<u8, NAME_LEN, u8>;

/// The security options of `/1024//6` (`protocol.md` §5.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SecurityOptions(pub u16);

impl SecurityOptions {
    /// Logins use SCRAM; passwords are written as SCRAM records.
    pub const SCRAM: u16 = 0x0010;
    /// The login password field carries the PBKDF2 hash.
    pub const HASH_PASSWORD: u16 = 0x0008;
    /// The factory-reset pin is ignored.
    pub const DISABLE_HARDWARE_FACTORY_RESET: u16 = 0x0004;
    /// `/1024//5` UID login is refused.
    pub const DISABLE_LOGIN_WITH_UID: u16 = 0x0002;
    /// `POST /3//5` factory reset is refused.
    pub const DISABLE_RESOURCE_FACTORY_RESET: u16 = 0x0001;
    /// Every defined bit.
    pub const ALL: u16 = 0x001F;

    /// Whether every bit of `flag` is set.
    pub const fn contains(self, flag: u16) -> bool {
        self.0 & flag == flag
    }
}

/// One profile (object 1025 instance).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    /// Profile id (instance id).
    pub id: u16,
    /// Login name.
    pub name: Name,
    /// How the password is stored.
    pub credential: Credential,
    /// Idle lifetime of a session of this profile, in seconds (0: unlimited).
    pub lifetime_secs: u16,
    /// The profile whose rights this one uses (itself unless it is a user of another
    /// profile).
    pub alias: u16,
}

impl Profile {
    /// A profile with a name and no password.
    pub fn new(id: u16, name: &[u8]) -> Profile {
        Profile {
            id,
            name: Name::from_slice(&name[..name.len().min(NAME_LEN)]).unwrap_or_default(),
            credential: Credential::None,
            lifetime_secs: 0,
            alias: id,
        }
    }

    /// Sets the password credential.
    pub fn with_credential(mut self, credential: Credential) -> Profile {
        self.credential = credential;
        self
    }

    /// Sets the session lifetime.
    pub fn with_lifetime(mut self, secs: u16) -> Profile {
        self.lifetime_secs = secs;
        self
    }
}

/// Read and write rights of an ACL entry (`objects.md` §6.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Rights(pub u8);

impl Rights {
    /// No right.
    pub const NONE: Rights = Rights(0);
    /// Read (bit 0).
    pub const READ: Rights = Rights(0x01);
    /// Write (bit 1).
    pub const WRITE: Rights = Rights(0x02);
    /// Read and write.
    pub const ALL: Rights = Rights(0x03);

    /// Whether every right of `other` is included.
    pub const fn contains(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both sets of rights.
    pub const fn union(self, other: Rights) -> Rights {
        Rights(self.0 | other.0)
    }
}

/// One entry of a bundle's access-control list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AclEntry {
    /// The profile the rights are granted to (0: everybody).
    pub profile: u16,
    /// The rights.
    pub rights: Rights,
}

/// A bundle (object 1028 instance): a named group of variables sharing one ACL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    /// Bundle id.
    pub id: u16,
    /// `/1028/{id}/4`.
    pub name: Name,
    /// `/1028/{id}/2`: data-log period in seconds (0: not logged).
    pub datalog_period: u32,
    /// `/1028/{id}/0` entries, at most one per profile.
    pub acl: Vec<AclEntry, MAX_ACL_ENTRIES, u8>,
}

impl Bundle {
    /// An empty bundle.
    pub fn new(id: u16) -> Bundle {
        Bundle {
            id,
            name: Name::new(),
            datalog_period: 0,
            acl: Vec::new(),
        }
    }

    /// The rights this bundle's ACL grants to `profile` itself (no anonymous fallback).
    pub fn granted(&self, profile: u16) -> Rights {
        self.acl
            .iter()
            .find(|e| e.profile == profile)
            .map_or(Rights::NONE, |e| e.rights)
    }
}

/// Where a variable's value lives (top two bits of its type byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Domain {
    /// In the target: memory address or Modbus register.
    Target,
    /// A GPIO of the device.
    Gpio,
    /// In the device, saved with the configuration.
    InTapStatic,
    /// In the device, RAM only.
    InTapVolatile,
}

/// A variable (object 1029 instance).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variable {
    /// Variable id.
    pub id: u16,
    /// `/1029/{id}/0`: target address (u32), or Modbus `function, slave, register`.
    pub address: [u8; 4],
    /// `/1029/{id}/1`: `[domain:2][data type:6]`.
    pub var_type: u8,
    /// `/1029/{id}/2`: number of elements.
    pub quantity: u16,
    /// `/1029/{id}/6`: owning bundle, `None` until assigned.
    pub bundle: Option<u16>,
    /// `/1029/{id}/8`: UTF-8 `"name:unit"`.
    pub meta: Vec<u8, META_LEN, u8>,
    /// `/1029/{id}/9`.
    pub unit: Vec<u8, UNIT_LEN, u8>,
    /// Extra size given at creation (the configurator passes the raw meta length).
    pub extra_size: u8,
    /// The value of in-device variables.
    pub value: Vec<u8, VALUE_LEN, u8>,
}

impl Variable {
    /// A new variable: one `UINT8` element in the target at address 0.
    pub fn new(id: u16) -> Variable {
        Variable {
            id,
            address: [0; 4],
            var_type: 0x21,
            quantity: 1,
            bundle: None,
            meta: Vec::new(),
            unit: Vec::new(),
            extra_size: 0,
            value: Vec::new(),
        }
    }

    /// Where the value lives.
    pub const fn domain(&self) -> Domain {
        match self.var_type >> 6 {
            0 => Domain::Target,
            1 => Domain::Gpio,
            2 => Domain::InTapStatic,
            _ => Domain::InTapVolatile,
        }
    }

    /// Size of one element: 1 for booleans, 8-bit types and ASCII; 2 for 16-bit; 4 for
    /// 32-bit and float (`objects.md` §6.2). `None` for an unknown data type.
    pub const fn item_size(&self) -> Option<usize> {
        match self.var_type & 0x3F {
            0x00 | 0x01 | 0x08 | 0x21 => Some(1),
            0x02 | 0x22 => Some(2),
            0x03 | 0x13 | 0x23 => Some(4),
            _ => None,
        }
    }

    /// Size of the whole value: quantity × element size.
    pub fn value_len(&self) -> Option<usize> {
        Some(self.item_size()? * usize::from(self.quantity))
    }

    /// The target address as a u32.
    pub const fn address_u32(&self) -> u32 {
        u32::from_be_bytes(self.address)
    }
}

/// A table of the configuration is full, or a value exceeds its capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CapacityError;

impl From<CapacityError> for crate::wire::ResultCode {
    fn from(_: CapacityError) -> crate::wire::ResultCode {
        crate::wire::ResultCode::NvmFull
    }
}

/// Whether an NFC request may end the current session and take it over (`/1024//24`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum NfcPriority {
    /// NFC takes the session over (`NFC_PRIORITY`, 0).
    Priority = 0,
    /// NFC waits like any other channel (`NFC_NON_PRIORITY`, 1).
    NonPriority = 1,
}

impl NfcPriority {
    /// The value of a `/1024//24` byte.
    pub const fn from_u8(byte: u8) -> Option<NfcPriority> {
        match byte {
            0 => Some(NfcPriority::Priority),
            1 => Some(NfcPriority::NonPriority),
            _ => None,
        }
    }
}

/// `hash_password(b"admin")`: the factory password of the administrator (vectors.txt
/// §B.6), precomputed so that building the default costs no PBKDF2.
const ADMIN_PASSWORD_HASH: [u8; 16] = [
    0x01, 0x55, 0xaf, 0xfc, 0x02, 0x3a, 0xff, 0x68, 0x82, 0xf5, 0x6a, 0x4e, 0x0d, 0x9c, 0x54, 0x66,
];
/// `hash_password(b"supervisor")`, likewise.
const SUPERVISOR_PASSWORD_HASH: [u8; 16] = [
    0x99, 0xc2, 0x43, 0xd5, 0xf8, 0x2e, 0xb7, 0x12, 0xc2, 0x81, 0xd5, 0xff, 0xe7, 0xd1, 0x20, 0x97,
];

/// The credential of a factory password, from its precomputed hash.
#[cfg(not(fuzzing))]
fn factory_credential(_password: &[u8], hash: [u8; 16]) -> Credential {
    Credential::Hashed(crate::auth::Secret16(hash))
}

/// Fuzzing builds hash with another iteration count (`auth::PASSWORD_HASH_ITERATIONS`).
#[cfg(fuzzing)]
fn factory_credential(password: &[u8], _hash: [u8; 16]) -> Credential {
    Credential::from_password(password)
}

/// The whole configuration image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `/1024//10`: configuration version (`0xFFFFFFFF` while being configured).
    pub version: u32,
    /// `/1024//6`.
    pub security_options: SecurityOptions,
    /// `/1024//34`: a session idle this long ends (seconds, 0: never).
    pub inactivity_secs: u16,
    /// `/1024//24`.
    pub nfc_priority: NfcPriority,
    /// Object 1025.
    pub profiles: Vec<Profile, MAX_PROFILES, u8>,
    /// Object 1028.
    pub bundles: Vec<Bundle, MAX_BUNDLES, u8>,
    /// Object 1029.
    pub variables: Vec<Variable, MAX_VARIABLES, u8>,
    /// Plain values served from declarative tables (app name, target protocol, ...).
    pub settings: Settings,
}

impl Default for Config {
    /// The embedded default: anonymous, admin (password `admin`) and supervisor
    /// (password `supervisor`, which the client's configurator expects to exist),
    /// passwords in clear, 60 s inactivity period.
    fn default() -> Config {
        // Field by field, not from `Config::EMPTY`: a firmware would copy that constant,
        // as large as the configuration, from its flash.
        let mut config = Config {
            version: 0,
            security_options: SecurityOptions::default(),
            inactivity_secs: 60,
            nfc_priority: NfcPriority::NonPriority,
            profiles: Vec::new(),
            bundles: Vec::new(),
            variables: Vec::new(),
            settings: Settings::new(),
        };
        config.reset();
        config
    }
}

impl Config {
    /// No profile, bundle, variable or value: not a configuration a device can serve
    /// (it fails [`Config::validate`]), but one a constant can hold, so that a device
    /// can be built at compile time into a static ([`crate::Device::unbooted`]) and
    /// given its configuration in place at boot.
    pub const EMPTY: Config = Config {
        version: 0,
        security_options: SecurityOptions(0),
        inactivity_secs: 60,
        nfc_priority: NfcPriority::NonPriority,
        profiles: Vec::new(),
        bundles: Vec::new(),
        variables: Vec::new(),
        settings: Settings::new(),
    };

    /// Restores the embedded default ([`Config::default`]) in place, without building
    /// a whole configuration on the stack (what a factory reset calls).
    pub fn reset(&mut self) {
        self.version = 0;
        self.security_options = SecurityOptions::default();
        self.inactivity_secs = 60;
        self.nfc_priority = NfcPriority::NonPriority;
        self.profiles.clear();
        self.bundles.clear();
        self.variables.clear();
        self.settings.clear();
        /// Id, name, password hash and lifetime of a factory profile.
        type Factory = (u16, &'static [u8], Option<[u8; 16]>, u16);
        // Built one at a time.
        const FACTORY: [Factory; 3] = [
            (ANONYMOUS, b"anonymous", None, 0),
            (ADMIN, b"admin", Some(ADMIN_PASSWORD_HASH), 3600),
            (
                SUPERVISOR,
                b"supervisor",
                Some(SUPERVISOR_PASSWORD_HASH),
                3600,
            ),
        ];
        for &(id, name, hash, lifetime) in &FACTORY {
            let mut profile = Profile::new(id, name).with_lifetime(lifetime);
            if let Some(hash) = hash {
                // The factory passwords are the names (admin/admin).
                profile.credential = factory_credential(name, hash);
            }
            // Capacity is far above three.
            let _ = self.profiles.push(profile);
        }
    }
}

/// Why [`Config::validate`] refused a configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum InvalidConfig {
    /// The anonymous or the administrator profile is missing, anonymous has a password,
    /// or a built-in profile (anonymous, administrator, supervisor) uses another
    /// profile's rights.
    BuiltinProfile,
    /// Two profiles, bundles or variables share an id, two profiles a name.
    Duplicate,
    /// A profile's alias, or a variable's bundle, names nothing.
    DanglingReference,
    /// A value outside what the device accepts when it is written (security options,
    /// ACL rights, variable type or quantity, an in-device value longer than its
    /// variable).
    OutOfRange,
}

impl Config {
    /// Checks the meaning of a configuration, as [`image`] decoding does before a
    /// loaded image is used: everything the objects refuse to write is refused here too,
    /// so a crafted image cannot give the device a state no request could have.
    #[inline(never)]
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        use InvalidConfig::*;
        let anonymous = self.profile(ANONYMOUS).ok_or(BuiltinProfile)?;
        if anonymous.credential != Credential::None || self.profile(ADMIN).is_none() {
            return Err(BuiltinProfile);
        }
        if self.security_options.0 & !SecurityOptions::ALL != 0 {
            return Err(OutOfRange);
        }
        // A duplicate is found from the later of the two: the first record with its id
        // (or name) is another one.
        for p in &self.profiles {
            let named = self.profiles.iter().find(|q| q.name == p.name);
            if !is(self.profile(p.id), p) || (!p.name.is_empty() && !is(named, p)) {
                return Err(Duplicate);
            }
            if self.profile(p.alias).is_none() {
                return Err(DanglingReference);
            }
            if matches!(p.id, ANONYMOUS | ADMIN | SUPERVISOR) && p.alias != p.id {
                return Err(BuiltinProfile);
            }
        }
        for b in &self.bundles {
            if !is(self.bundle(b.id), b) {
                return Err(Duplicate);
            }
            for e in &b.acl {
                if !Rights::ALL.contains(e.rights) {
                    return Err(OutOfRange);
                }
                if !is(b.acl.iter().find(|f| f.profile == e.profile), e) {
                    return Err(Duplicate);
                }
            }
        }
        for v in &self.variables {
            if !is(self.variable(v.id), v) {
                return Err(Duplicate);
            }
            if v.bundle.is_some_and(|b| self.bundle(b).is_none()) {
                return Err(DanglingReference);
            }
            let len = v.value_len().ok_or(OutOfRange)?;
            if !(1..=MAX_QUANTITY).contains(&v.quantity) || v.value.len() > len {
                return Err(OutOfRange);
            }
        }
        Ok(())
    }

    /// The profile with this id.
    pub fn profile(&self, id: u16) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.id == id)
    }

    /// The profile with this id, mutably.
    pub fn profile_mut(&mut self, id: u16) -> Option<&mut Profile> {
        self.profiles.iter_mut().find(|p| p.id == id)
    }

    /// The profile with this login name.
    pub fn profile_by_name(&self, name: &[u8]) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.name == name)
    }

    /// The profile whose rights `id` uses (its alias), `id` itself if unknown.
    pub fn rights_profile(&self, id: u16) -> u16 {
        self.profile(id).map_or(id, |p| p.alias)
    }

    /// The bundle with this id.
    pub fn bundle(&self, id: u16) -> Option<&Bundle> {
        self.bundles.iter().find(|b| b.id == id)
    }

    /// The bundle with this id, mutably.
    pub fn bundle_mut(&mut self, id: u16) -> Option<&mut Bundle> {
        self.bundles.iter_mut().find(|b| b.id == id)
    }

    /// The variable with this id.
    pub fn variable(&self, id: u16) -> Option<&Variable> {
        self.variables.iter().find(|v| v.id == id)
    }

    /// The variable with this id, mutably.
    pub fn variable_mut(&mut self, id: u16) -> Option<&mut Variable> {
        self.variables.iter_mut().find(|v| v.id == id)
    }

    /// The stored value of `/object//resource`.
    pub fn setting(&self, object: u16, resource: u16) -> Option<&[u8]> {
        self.settings.get(object, resource)
    }

    /// Stores the value of `/object//resource`; `Err` when the value is too long or the
    /// room is full.
    pub fn set_setting(
        &mut self,
        object: u16,
        resource: u16,
        value: &[u8],
    ) -> Result<(), CapacityError> {
        self.settings.set(object, resource, value)
    }
}

/// Whether `found` (the first record with some key) is `record` itself.
fn is<T>(found: Option<&T>, record: &T) -> bool {
    found.is_some_and(|found| core::ptr::eq(found, record))
}

/// Removes the element at `index` of `list`, keeping the order of the others; `None`
/// when there is none.
///
/// The element travels to the end by swaps: unlike `Vec::remove` this needs no `memmove`,
/// which nothing else of the stack needs either (about 1.5 KiB of a Cortex-M firmware).
pub fn remove_ordered<T, const N: usize>(list: &mut Vec<T, N, u8>, index: usize) -> Option<T> {
    let last = list.len().checked_sub(1)?;
    if index > last {
        return None;
    }
    for i in index..last {
        list.swap(i, i + 1);
    }
    list.pop()
}

/// Keeps the elements of `list` that `keep` accepts, in their order (as `Vec::retain`,
/// without `memmove`: see [`remove_ordered`]).
pub fn retain_ordered<T, const N: usize>(
    list: &mut Vec<T, N, u8>,
    mut keep: impl FnMut(&T) -> bool,
) {
    let mut kept = 0;
    for i in 0..list.len() {
        if list.get(i).is_some_and(&mut keep) {
            list.swap(kept, i);
            kept += 1;
        }
    }
    list.truncate(kept);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::hash_password;
    use std::format;

    #[test]
    fn ordered_removal_keeps_the_order_of_the_others() {
        let full: Vec<u8, 6, u8> = Vec::from_slice(&[1, 2, 3, 4, 5, 6]).unwrap();
        for index in 0..7 {
            let mut list = full.clone();
            let removed = remove_ordered(&mut list, index);
            let mut expected = full.clone();
            let wanted = (index < expected.len()).then(|| expected.remove(index));
            assert_eq!((removed, &list), (wanted, &expected), "index {index}");
        }
        let mut list = full.clone();
        retain_ordered(&mut list, |&v| v % 3 != 0);
        assert_eq!(list[..], [1, 2, 4, 5]);
        retain_ordered(&mut list, |_| false);
        assert!(list.is_empty());
        assert_eq!(remove_ordered(&mut list, 0), None);
    }

    #[test]
    fn the_factory_passwords_are_the_documented_ones() {
        let config = Config::default();
        let hash_of = |id| match &config.profile(id).unwrap().credential {
            Credential::Hashed(h) => h.0,
            other => panic!("{other:?}"),
        };
        assert_eq!(hash_of(ADMIN), hash_password(b"admin").0);
        assert_eq!(hash_of(SUPERVISOR), hash_password(b"supervisor").0);
    }

    #[test]
    fn reset_in_place_gives_the_default() {
        let mut config = Config {
            version: 7,
            inactivity_secs: 5,
            ..Config::default()
        };
        config.profiles.push(Profile::new(1, b"user1")).unwrap();
        config.bundles.push(Bundle::new(1)).unwrap();
        config.variables.push(Variable::new(1)).unwrap();
        config.set_setting(1024, 9, b"Demo").unwrap();
        config.reset();
        assert_eq!(config, Config::default());
    }

    /// Regression (the bug this test caught): build.rs lets `LWM2M_NAME_LEN` go down to 5, but the factory profiles are
    /// named "anonymous" (9) and "supervisor" (10): `Profile::new` truncates them, and the
    /// supervisor the client's configurator logs in as no longer exists by that name
    /// (while "super" logs in with the supervisor's password). Fails with
    /// `LWM2M_NAME_LEN=5..=9`.
    #[test]
    fn the_factory_profiles_keep_their_names_at_every_name_len() {
        let config = Config::default();
        for (id, name) in [
            (ANONYMOUS, &b"anonymous"[..]),
            (ADMIN, b"admin"),
            (SUPERVISOR, b"supervisor"),
        ] {
            assert_eq!(
                config.profile_by_name(name).map(|p| p.id),
                Some(id),
                "NAME_LEN {NAME_LEN}: {}",
                core::str::from_utf8(name).unwrap()
            );
        }
    }

    #[test]
    fn debug_output_shows_no_secret() {
        let mut config = Config::default();
        config.set_setting(1024, 16, b"WIFI-KEY-1234").unwrap(); // Wi-Fi key
        config.set_setting(1024, 54, b"mqtt-pass").unwrap(); // MQTT password
        let shown = format!("{config:?} {:?}", config.profile(ADMIN).unwrap());
        for secret in ["WIFI-KEY-1234", "mqtt-pass"] {
            let bytes = format!("{:?}", secret.as_bytes());
            assert!(!shown.contains(secret) && !shown.contains(&bytes[1..bytes.len() - 1]));
        }
        let hash = format!("{:?}", hash_password(b"admin").0);
        assert!(!shown.contains(&hash[1..hash.len() - 1]), "{shown}");
    }
}
