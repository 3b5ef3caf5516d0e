//! The configuration image held in RAM (spec decision 11).
//!
//! Every authorised configuration write lands here at once; persistence to flash is the
//! job of a storage layer that copies this image in and out.

use heapless::Vec;

use crate::auth::Credential;

/// Largest number of profiles (anonymous and admin included).
pub const MAX_PROFILES: usize = 16;
/// Longest profile name (the client's login field is 16 bytes).
pub const NAME_LEN: usize = 16;

/// Profile id of the anonymous profile: every session starts with it.
pub const ANONYMOUS: u16 = 0;
/// Profile id of the administrator, who has every right.
pub const ADMIN: u16 = 0xFFFF;
/// Profile id of the supervisor, handled like the administrator.
pub const SUPERVISOR: u16 = 0xFFFE;

/// A profile name: ASCII bytes, at most [`NAME_LEN`].
pub type Name = Vec<u8, NAME_LEN>;

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

/// The whole configuration image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `/1024//6`.
    pub security_options: SecurityOptions,
    /// `/1024//34`: a session idle this long ends (seconds, 0: never).
    pub inactivity_secs: u16,
    /// Object 1025.
    pub profiles: Vec<Profile, MAX_PROFILES>,
}

impl Default for Config {
    /// The embedded default: anonymous, admin (password `admin`) and supervisor
    /// (password `supervisor`, which the client's configurator expects to exist),
    /// plain passwords, 60 s inactivity period.
    fn default() -> Config {
        let mut profiles = Vec::new();
        let defaults = [
            Profile::new(ANONYMOUS, b"anonymous"),
            Profile::new(ADMIN, b"admin")
                .with_credential(Credential::plain(b"admin"))
                .with_lifetime(3600),
            Profile::new(SUPERVISOR, b"supervisor")
                .with_credential(Credential::plain(b"supervisor"))
                .with_lifetime(3600),
        ];
        for profile in defaults {
            // Capacity is far above two.
            let _ = profiles.push(profile);
        }
        Config {
            security_options: SecurityOptions::default(),
            inactivity_secs: 60,
            profiles,
        }
    }
}

impl Config {
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
}
