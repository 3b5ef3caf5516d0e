//! Session layer: which host channel owns the device, who is logged in, and when that
//! ends (spec decisions 4 and 5).

use crate::auth::{self, LoginBody};
use crate::config::{Config, NfcPriority, Profile, SecurityOptions, ANONYMOUS};
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
#[derive(Debug)]
pub struct Session {
    owner: Option<Channel>,
    user: u16,
    last_activity: Instant,
    /// The encrypted session: its key and IVs, wiped whenever the session ends.
    #[cfg(feature = "crypto")]
    pub(crate) secure: crate::secure::Secure,
}

impl Default for Session {
    fn default() -> Session {
        Session::new()
    }
}

impl Session {
    /// No session: nobody owns it, anonymous.
    pub const fn new() -> Session {
        Session {
            owner: None,
            user: ANONYMOUS,
            last_activity: Instant::ZERO,
            #[cfg(feature = "crypto")]
            secure: crate::secure::Secure::new(),
        }
    }

    /// The channel that owns the session, if any.
    pub fn owner(&self) -> Option<Channel> {
        self.owner
    }

    /// Whether the link `channel` owns the session.
    pub fn is_owner(&self, channel: ChannelId) -> bool {
        self.owner.is_some_and(|owner| owner.id == channel)
    }

    /// The logged-in profile id ([`ANONYMOUS`] before login).
    pub fn user(&self) -> u16 {
        self.user
    }

    /// Whose rights a request of the owner runs with: the logged-in profile's, except
    /// that the rights of a SCRAM login are granted inside the tunnel only (decision 6).
    pub fn user_for(&self, tunnelled: bool) -> u16 {
        #[cfg(feature = "crypto")]
        if self.secure.is_scram() && !tunnelled {
            return ANONYMOUS;
        }
        let _ = tunnelled;
        self.user
    }

    /// The encrypted session.
    #[cfg(feature = "crypto")]
    pub fn secure(&self) -> &crate::secure::Secure {
        &self.secure
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
        match self.owner {
            Some(owner) if owner.id == channel.id => {}
            Some(owner) => {
                if channel.kind != ChannelKind::Nfc || nfc != NfcPriority::Priority {
                    return Err(ResultCode::DeviceUnavailable);
                }
                info!("NFC takes the session over from {:?}", owner);
                self.open(channel);
            }
            None => self.open(channel),
        }
        self.last_activity = now;
        Ok(())
    }

    /// `channel` owns a new session, anonymous (what ended before is forgotten).
    fn open(&mut self, channel: Channel) {
        info!("session opened by {:?}", channel);
        self.owner = Some(channel);
        self.user = ANONYMOUS;
        #[cfg(feature = "crypto")]
        {
            self.secure.clear();
        }
    }

    /// Ends the session: back to anonymous, nobody owns the device.
    pub fn end(&mut self) {
        self.owner = None;
        self.user = ANONYMOUS;
        // The key, the IVs and a login under way are wiped (the old value's drop).
        #[cfg(feature = "crypto")]
        {
            self.secure.clear();
        }
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
        let ended = self
            .deadline(config)
            .is_some_and(|deadline| now >= deadline);
        if ended {
            self.end_idle();
        }
        ended
    }

    /// [`Session::expire`], returning the deadline left instead ([`Session::deadline`]
    /// after the check, computed once): `None` if the session ended or never ends.
    pub fn expire_at(&mut self, config: &Config, now: Instant) -> Option<Instant> {
        match self.deadline(config) {
            Some(deadline) if now >= deadline => {
                self.end_idle();
                None
            }
            deadline => deadline,
        }
    }

    /// Ends a session idle past its limit.
    fn end_idle(&mut self) {
        info!("session idle timeout");
        self.end();
    }

    /// Checks a login body against the configuration and logs the profile in.
    ///
    /// Every attempt costs the same whatever the name (no user enumeration by timing):
    /// every profile's name is compared, and the password check runs against a dummy
    /// credential when no profile has that name ([`auth::verify`]).
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
        let profile = login_profile(config, login.username);
        if auth::verify(
            profile.map(|p| &p.credential),
            login.password,
            field_is_hash,
        ) {
            if let Some(profile) = profile {
                self.user = profile.id;
                // A plain login's rights hold in clear and in the tunnel alike.
                #[cfg(feature = "crypto")]
                {
                    self.secure.clear();
                }
                return Ok(());
            }
        }
        guard.failed(now);
        Err(ResultCode::Unauthorized)
    }

    /// The first step of a SCRAM login (`GET /1024//40`): `body` is the user name (16
    /// bytes, zero padded) and the client's nonce; the answer is the device's nonce (the
    /// first half of what `random` gives for the name: random), the salt of the
    /// profile's record and the hash iterations. A name without a SCRAM record is
    /// answered alike, with a decoy salt (the second half: the same every time for a
    /// name, else asking twice would tell), and its proof will fail.
    #[cfg(feature = "crypto")]
    pub fn scram_begin(
        &mut self,
        config: &Config,
        guard: &mut LoginGuard,
        body: &[u8],
        now: Instant,
        random: impl FnOnce(&[u8]) -> [u8; 8],
        iterations: u32,
    ) -> Result<[u8; 12], ResultCode> {
        use crate::auth::{Credential, ScramRecord};
        use crate::crypto::scram::Nonces;
        guard.check(now)?;
        let (name, client) = match body {
            [name @ .., c0, c1, c2, c3] if name.len() == auth::FIELD_LEN => {
                (name, [*c0, *c1, *c2, *c3])
            }
            _ => return Err(ResultCode::NotAcceptable),
        };
        let name = auth::field_text(name);
        // Computed for every name: an unknown one costs the same.
        let [n0, n1, n2, n3, d0, d1, d2, d3] = random(name);
        let (server_nonce, decoy_salt) = ([n0, n1, n2, n3], [d0, d1, d2, d3]);
        let profile = login_profile(config, name);
        let record = profile.and_then(|p| match &p.credential {
            Credential::Scram(record) => Some((p.id, record.clone())),
            _ => None,
        });
        let (profile, record) = match record {
            Some((id, record)) => (Some(id), record),
            None => (
                None,
                ScramRecord {
                    stored_key: [0; 16],
                    server_key: [0; 16],
                    salt: decoy_salt,
                },
            ),
        };
        let [s0, s1, s2, s3] = server_nonce;
        let [a0, a1, a2, a3] = record.salt;
        let [i0, i1, i2, i3] = iterations.to_be_bytes();
        self.secure.set_login(crate::secure::PendingLogin {
            profile,
            record,
            nonces: Nonces {
                client,
                server: server_nonce,
            },
        });
        Ok([s0, s1, s2, s3, a0, a1, a2, a3, i0, i1, i2, i3])
    }

    /// The second step of a SCRAM login (`GET /1024//41`): checks the client's proof
    /// (16 bytes) against the record named in the first step, logs the profile in and
    /// starts the encrypted session with the key both sides derive; the answer is the
    /// device's proof. A wrong proof, or no first step, is `81` and counts towards the
    /// lock-out.
    #[cfg(feature = "crypto")]
    pub fn scram_finish<C: crate::crypto::Crypto>(
        &mut self,
        crypto: &mut C,
        guard: &mut LoginGuard,
        proof: &[u8],
        now: Instant,
    ) -> Result<crate::auth::Secret16, ResultCode> {
        use crate::crypto::scram;
        guard.check(now)?;
        let login = self.secure.take_login();
        let verified = login.as_ref().and_then(|login| {
            let good = scram::verify_client_proof(crypto, &login.record, login.nonces, proof);
            good.then_some(login.profile).flatten()
        });
        match (login, verified) {
            (Some(login), Some(profile)) => {
                let key = scram::session_key(crypto, &login.record, login.nonces);
                self.user = profile;
                self.secure.start(&key, true);
                Ok(scram::server_proof(crypto, &login.record, login.nonces))
            }
            _ => {
                guard.failed(now);
                Err(ResultCode::Unauthorized)
            }
        }
    }

    /// Back to anonymous without an encrypted session, the channel still owning the
    /// session (a new key of `/1024//47` ends a SCRAM login's rights).
    #[cfg(feature = "crypto")]
    pub(crate) fn logout_keeping_channel(&mut self) {
        self.user = ANONYMOUS;
        self.secure.clear();
    }

    /// Logs out: back to anonymous and frees the session for other channels.
    pub fn logout(&mut self) {
        self.end();
    }
}

/// The profile a login names, found by comparing every profile's name in constant time
/// (names are unique). The anonymous profile cannot log in.
fn login_profile<'c>(config: &'c Config, username: &[u8]) -> Option<&'c Profile> {
    let wanted = auth::pad_field(username);
    let mut found = None;
    for profile in config.profiles.iter() {
        let same = auth::ct_eq(&auth::pad_field(&profile.name), &wanted)
            & (profile.name.len() == username.len());
        // A profile without a name (created, not yet named) cannot log in.
        if same && profile.id != ANONYMOUS && !profile.name.is_empty() {
            found = Some(profile);
        }
    }
    found
}

/// Counts failed logins across sessions, channels and names, and locks login out for
/// [`LOGIN_LOCKOUT`] after [`MAX_FAILED_LOGINS`] (spec decision 5).
///
/// The count is global and a successful login does **not** reset it: otherwise anyone
/// with an account of their own could interleave its logins with guesses of another
/// account's password and never be locked out. Failures are forgotten when the lock-out
/// they caused ends, or once [`LOGIN_LOCKOUT`] passed without a failure. A
/// multi-request gets no more guesses than a single request: it may attempt one login
/// (`object::Context::login`).
#[derive(Debug)]
pub struct LoginGuard {
    failures: u8,
    last_failure: Instant,
    locked_until: Option<Instant>,
}

impl Default for LoginGuard {
    fn default() -> LoginGuard {
        LoginGuard::new()
    }
}

impl LoginGuard {
    /// No failed login yet.
    pub const fn new() -> LoginGuard {
        LoginGuard {
            failures: 0,
            last_failure: Instant::ZERO,
            locked_until: None,
        }
    }

    /// `A3` while locked out; clears an expired lock-out.
    pub fn check(&mut self, now: Instant) -> Result<(), ResultCode> {
        match self.locked_until {
            Some(until) if now < until => return Err(ResultCode::ServiceUnavailable),
            Some(_) => {
                self.locked_until = None;
                self.failures = 0;
            }
            None if now >= self.last_failure + LOGIN_LOCKOUT => self.failures = 0,
            None => {}
        }
        Ok(())
    }

    fn failed(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        self.last_failure = now;
        if self.failures >= MAX_FAILED_LOGINS {
            self.locked_until = Some(now + LOGIN_LOCKOUT);
        }
    }

    /// Failed logins counted towards the next lock-out.
    pub fn failures(&self) -> u8 {
        self.failures
    }

    /// When the lock-out ends, if login is locked out.
    pub fn deadline(&self) -> Option<Instant> {
        self.locked_until
    }
}
