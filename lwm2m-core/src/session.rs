//! Session layer: which host channel owns the device, who is logged in, and when that
//! ends (spec decisions 4 and 5).

use crate::auth::{self, LoginBody};
use crate::config::{Config, NfcPriority, SecurityOptions, ANONYMOUS};
use crate::time::{Duration, Instant};
use crate::wire::ResultCode;

/// Failed logins allowed before login is locked out.
pub const MAX_FAILED_LOGINS: u8 = 3;
/// How long login stays locked out.
pub const LOGIN_LOCKOUT: Duration = Duration::from_secs(60);

/// Identifies one host link (a WebSocket connection, the BLE link, ...). Chosen by the
/// port; only compared for equality.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ChannelId(pub u16);

/// The kind of a host link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ChannelKind {
    /// NFC (ISO 14443 / ISO 7816 APDUs).
    Nfc,
    /// Bluetooth Low Energy.
    Ble,
    /// Wi-Fi raw TCP socket.
    WifiTcp,
    /// WebSocket (desktop port, Wi-Fi boards).
    WebSocket,
    /// MQTT relay.
    Mqtt,
    /// Serial / UART link.
    Serial,
    /// A local side handler (script engine, Modbus slave): runs single requests with its
    /// own profile, outside the session (see `Device::handle_side`).
    Side,
}

impl ChannelKind {
    /// The `HostProtocol` value of `/1024//3` (`enums.json`).
    pub const fn host_protocol(self) -> u16 {
        match self {
            ChannelKind::Nfc => 1,
            ChannelKind::Ble => 64,
            ChannelKind::WifiTcp => 32,
            ChannelKind::WebSocket => 1024,
            ChannelKind::Mqtt => 512,
            ChannelKind::Serial => 256,
            ChannelKind::Side => 0,
        }
    }
}

/// A host link: its identity and kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Channel {
    /// Identity, unique among the links open at a time.
    pub id: ChannelId,
    /// Kind.
    pub kind: ChannelKind,
}

impl Channel {
    /// A channel.
    pub const fn new(id: u16, kind: ChannelKind) -> Channel {
        Channel {
            id: ChannelId(id),
            kind,
        }
    }
}

/// The one interlocutor's session.
#[derive(Debug, Default)]
pub struct Session {
    owner: Option<Channel>,
    user: u16,
    last_activity: Instant,
}

impl Session {
    /// The channel that owns the session, if any.
    pub fn owner(&self) -> Option<Channel> {
        self.owner
    }

    /// The logged-in profile id ([`ANONYMOUS`] before login).
    pub fn user(&self) -> u16 {
        self.user
    }

    /// Lets `channel` in: it becomes the owner if nobody owns the session, and its
    /// activity is recorded. Another channel gets `A8`, except NFC when it has priority:
    /// it ends the current session and starts its own.
    pub fn admit(
        &mut self,
        channel: Channel,
        now: Instant,
        nfc: NfcPriority,
    ) -> Result<(), ResultCode> {
        if let Some(owner) = self.owner.filter(|owner| owner.id != channel.id) {
            if channel.kind != ChannelKind::Nfc || nfc != NfcPriority::Priority {
                return Err(ResultCode::DeviceUnavailable);
            }
            info!("NFC takes the session over from {:?}", owner);
            self.end();
        }
        if self.owner.is_none() {
            info!("session opened by {:?}", channel);
            self.owner = Some(channel);
            self.user = ANONYMOUS;
        }
        self.last_activity = now;
        Ok(())
    }

    /// Ends the session: back to anonymous, nobody owns the device.
    pub fn end(&mut self) {
        self.owner = None;
        self.user = ANONYMOUS;
    }

    /// How long the session may stay idle: the inactivity period and the profile's
    /// lifetime, whichever is shorter (0 in either means "no limit").
    pub fn idle_limit(&self, config: &Config) -> Option<Duration> {
        let inactivity = config.inactivity_secs;
        let lifetime = config.profile(self.user).map_or(0, |p| p.lifetime_secs);
        let limit = match (inactivity, lifetime) {
            (0, 0) => return None,
            (0, l) | (l, 0) => l,
            (a, b) => a.min(b),
        };
        Some(Duration::from_secs(u64::from(limit)))
    }

    /// When the session ends if nothing more arrives.
    pub fn deadline(&self, config: &Config) -> Option<Instant> {
        self.owner?;
        Some(self.last_activity + self.idle_limit(config)?)
    }

    /// Ends the session if it has been idle past its limit. Returns whether it ended.
    pub fn expire(&mut self, config: &Config, now: Instant) -> bool {
        match self.deadline(config) {
            Some(deadline) if now >= deadline => {
                self.end();
                true
            }
            _ => false,
        }
    }

    /// Checks a login body against the configuration and logs the profile in.
    pub fn login(
        &mut self,
        config: &Config,
        guard: &mut LoginGuard,
        body: &[u8],
        now: Instant,
    ) -> Result<(), ResultCode> {
        guard.check(now)?;
        let login = LoginBody::parse(body).ok_or(ResultCode::NotAcceptable)?;
        let field_is_hash = config
            .security_options
            .contains(SecurityOptions::HASH_PASSWORD);
        let profile = config
            .profile_by_name(login.username)
            .filter(|p| p.id != ANONYMOUS);
        let accepted = match profile {
            Some(p) => auth::verify(&p.credential, login.password, field_is_hash),
            None => false,
        };
        match profile {
            Some(p) if accepted => {
                guard.succeeded();
                self.user = p.id;
                Ok(())
            }
            _ => {
                guard.failed(now);
                Err(ResultCode::Unauthorized)
            }
        }
    }

    /// Logs out: back to anonymous and frees the session for other channels.
    pub fn logout(&mut self) {
        self.end();
    }
}

/// Counts failed logins across sessions and channels and locks login out after
/// [`MAX_FAILED_LOGINS`] (spec decision 5).
#[derive(Debug, Default)]
pub struct LoginGuard {
    failures: u8,
    locked_until: Option<Instant>,
}

impl LoginGuard {
    /// `A3` while locked out; clears an expired lock-out.
    pub fn check(&mut self, now: Instant) -> Result<(), ResultCode> {
        match self.locked_until {
            Some(until) if now < until => Err(ResultCode::ServiceUnavailable),
            Some(_) => {
                self.locked_until = None;
                self.failures = 0;
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn failed(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        if self.failures >= MAX_FAILED_LOGINS {
            self.locked_until = Some(now + LOGIN_LOCKOUT);
        }
    }

    fn succeeded(&mut self) {
        self.failures = 0;
    }

    /// When the lock-out ends, if login is locked out.
    pub fn deadline(&self) -> Option<Instant> {
        self.locked_until
    }
}
