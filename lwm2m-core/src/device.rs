//! The sans-IO device engine: takes a request APDU and the time, returns the response
//! APDU and the next deadline. It never blocks, allocates or panics.

use crate::config::{Config, NfcPriority};
use crate::dispatch::dispatch;
use crate::object::{Context, Effect, FrameLimits, ObjectSet};
use crate::session::{Channel, ChannelId, LoginGuard, Session};
use crate::storage::{ConfigStore, LoadState, NoStore, StoreError};
use crate::target::{NoTarget, TargetIo};
use crate::time::Instant;
use crate::wire::{is_nfc_select, Request, Response, ResultCode, APDU_HEADER_LEN, STATUS_WORD_OK};

/// What [`Device::handle`] produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Outcome {
    /// Length of the response written at the start of the output buffer (0 only when
    /// the buffer cannot hold any response).
    pub len: usize,
    /// When to call [`Device::poll`] at the latest, `None` if nothing is pending.
    pub next_deadline: Option<Instant>,
    /// Something to do once the response has been sent.
    pub effect: Option<Effect>,
}

/// An lwM2M device: objects, configuration image, session, the target that holds
/// variable values, and the store that keeps the configuration across restarts.
pub struct Device<O, T = NoTarget, S = NoStore> {
    objects: O,
    config: Config,
    factory: fn(&mut Config),
    session: Session,
    guard: LoginGuard,
    limits: FrameLimits,
    target: T,
    store: S,
    nfc_override: Option<NfcPriority>,
}

impl<O: ObjectSet> Device<O> {
    /// A device serving `objects` with the configuration `config` (loaded from flash, or
    /// the factory configuration on first boot). `factory` restores the factory
    /// configuration in place (such as [`Config::reset`]) on a factory reset. `limits`
    /// must describe the buffers the port passes to [`Device::handle`].
    pub fn new(objects: O, config: Config, factory: fn(&mut Config), limits: FrameLimits) -> Self {
        Device {
            objects,
            config,
            factory,
            session: Session::default(),
            guard: LoginGuard::default(),
            limits,
            target: NoTarget,
            store: NoStore,
            nfc_override: None,
        }
    }
}

impl<O: ObjectSet, T: TargetIo, S: ConfigStore> Device<O, T, S> {
    /// The same device reaching variable values through `target`.
    pub fn with_target<T2: TargetIo>(self, target: T2) -> Device<O, T2, S> {
        Device {
            objects: self.objects,
            config: self.config,
            factory: self.factory,
            session: self.session,
            guard: self.guard,
            limits: self.limits,
            target,
            store: self.store,
            nfc_override: self.nfc_override,
        }
    }

    /// The same device saving its configuration to `store` on the save command and on
    /// factory reset. Load the configuration from the same store at boot
    /// ([`ConfigStore::load`]) and pass it to [`Device::new`].
    pub fn with_store<S2: ConfigStore>(self, store: S2) -> Device<O, T, S2> {
        Device {
            objects: self.objects,
            config: self.config,
            factory: self.factory,
            session: self.session,
            guard: self.guard,
            limits: self.limits,
            target: self.target,
            store,
            nfc_override: self.nfc_override,
        }
    }

    /// Handles one request APDU from `channel` received at `now`, writing the response
    /// APDU into `out`.
    pub fn handle(
        &mut self,
        channel: Channel,
        request: &[u8],
        now: Instant,
        out: &mut [u8],
    ) -> Outcome {
        self.expire(now);
        let mut effect = None;
        let len = self.respond(channel, None, request, now, out, &mut effect);
        self.finish(len, effect, now)
    }

    /// Handles one request of a local side handler (an on-board script engine, a
    /// Modbus-slave handler) with the rights of `profile`, without taking, extending or
    /// ending the session. Login and logout are refused (`81`).
    pub fn handle_side(
        &mut self,
        channel: Channel,
        profile: u16,
        request: &[u8],
        now: Instant,
        out: &mut [u8],
    ) -> Outcome {
        self.expire(now);
        let mut effect = None;
        let len = self.respond(channel, Some(profile), request, now, out, &mut effect);
        self.finish(len, effect, now)
    }

    /// Runs the timers once more after a request, which may have shortened them (a
    /// side handler's `PUT /1024//34` does not extend the idle session it shortens): the
    /// deadline returned is never in the past.
    fn finish(&mut self, len: usize, effect: Option<Effect>, now: Instant) -> Outcome {
        self.expire(now);
        Outcome {
            len,
            next_deadline: self.next_deadline(),
            effect,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn respond(
        &mut self,
        channel: Channel,
        side_profile: Option<u16>,
        request: &[u8],
        now: Instant,
        out: &mut [u8],
        effect: &mut Option<Effect>,
    ) -> usize {
        if is_nfc_select(request) {
            // The only bare status word the device sends (spec decision 3).
            return match out.get_mut(..2) {
                Some(sw) => {
                    sw.copy_from_slice(&STATUS_WORD_OK);
                    2
                }
                None => 0,
            };
        }
        let max_response = usize::from(self.limits.max_response).min(out.len());
        let Some(mut response) = Response::new(&mut out[..max_response]) else {
            return 0;
        };
        let parsed = Request::parse_apdu(request);
        let request = match parsed {
            Ok(_) if request.len() - APDU_HEADER_LEN > usize::from(self.limits.max_request) => {
                return response.status(ResultCode::BadRequest)
            }
            Ok(request) => request,
            Err(err) => {
                debug!("malformed request: {}", err);
                return response.status(err.result_code());
            }
        };
        if side_profile.is_none() {
            let nfc = self.nfc_override.unwrap_or(self.config.nfc_priority);
            if let Err(code) = self.session.admit(channel, now, nfc) {
                return response.status(code);
            }
        }
        let mut ctx = Context {
            now,
            channel,
            session: &mut self.session,
            guard: &mut self.guard,
            config: &mut self.config,
            effect,
            limits: self.limits,
            target: &mut self.target,
            store: &mut self.store,
            factory: self.factory,
            side_profile,
            logins: 0,
            nfc_override: &mut self.nfc_override,
        };
        let mut body = response.body();
        let status = dispatch(&mut self.objects, &mut ctx, &request, &mut body);
        let data_len = body.len();
        debug!("{:?} {} -> {}", request.method, request.path, status);
        response.finish(status, data_len)
    }

    /// Ends what timed out by `now` and returns the next deadline. Call it at the
    /// deadline returned last, or sooner.
    pub fn poll(&mut self, now: Instant) -> Option<Instant> {
        self.expire(now);
        self.next_deadline()
    }

    fn expire(&mut self, now: Instant) {
        if self.session.expire(&self.config, now) {
            info!("session idle timeout");
        }
        // Clears an elapsed lock-out.
        let _ = self.guard.check(now);
    }

    /// The earliest time something times out, `None` if nothing is pending.
    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.session.deadline(&self.config), self.guard.deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the engine still knows `channel`: it owns the session. A port must not
    /// give the id of such a channel to a new link, which would inherit the session (and
    /// its login) of the old one.
    pub fn channel_in_use(&self, channel: ChannelId) -> bool {
        self.session.is_owner(channel)
    }

    /// The link of `channel` closed: if it owned the session, the session ends.
    pub fn channel_closed(&mut self, channel: ChannelId) {
        if self.session.is_owner(channel) {
            info!("session owner disconnected");
            self.session.end();
        }
    }

    /// Loads the configuration from the device's store into the device, in place: what
    /// a board calls at boot ([`ConfigStore::load_into`]). Only [`LoadState::Blank`]
    /// means a first boot: on [`LoadState::Damaged`] (the configuration is then the
    /// factory one) or [`LoadState::Previous`], say so before serving requests.
    pub fn load_config(&mut self) -> Result<LoadState, StoreError> {
        self.store.load_into(&mut self.config)
    }

    /// The configuration image.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The objects.
    pub fn objects(&self) -> &O {
        &self.objects
    }

    /// The objects, mutably (e.g. to update a value the hardware measured).
    pub fn objects_mut(&mut self) -> &mut O {
        &mut self.objects
    }

    /// The session.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The frame sizes of this device.
    pub fn limits(&self) -> FrameLimits {
        self.limits
    }

    /// The target.
    pub fn target(&self) -> &T {
        &self.target
    }

    /// The target, mutably.
    pub fn target_mut(&mut self) -> &mut T {
        &mut self.target
    }

    /// The configuration store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Takes the device apart into its target and store (e.g. to reboot a simulated
    /// device on the same flash and target).
    pub fn into_parts(self) -> (T, S) {
        (self.target, self.store)
    }
}
