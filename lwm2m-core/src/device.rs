//! The sans-IO device engine: takes a request APDU and the time, returns the response
//! APDU and the next deadline. It never blocks, allocates or panics.

use crate::acl::{Origin, Security, Subject};
use crate::blob::BlobId;
use crate::config::{Config, NfcPriority};
use crate::dispatch::{dispatch, Flow, Position, Resume};
use crate::io::{self, IoCursor, IoResult, Operation, TargetCommand, TargetSettings, TargetVar};
use crate::object::{Context, Effect, FrameLimits, InlineIo, ObjectSet};
use crate::session::{Channel, ChannelId, LoginGuard, Session};
use crate::storage::{ConfigStore, LoadState, NoStore, StoreError};
use crate::target::{NoTarget, TargetIo};
use crate::time::{Instant, WallClock};
use crate::wire::multi::MultiRequest;
use crate::wire::{
    is_nfc_select, Method, Path, Request, Response, ResultCode, APDU_HEADER_LEN, STATUS_WORD_OK,
};

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

/// What [`Device::start`] and [`Device::resume`] produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Step {
    /// The request is done: the response is in the output buffer.
    Done(Outcome),
    /// The request waits on this operation: perform it, then call [`Device::resume`].
    Pending(Operation),
}

/// A request waiting on an operation: all the engine keeps of it (its buffers stay with
/// the port).
#[derive(Clone, Copy, Debug)]
struct Waiting {
    channel: Channel,
    security: Security,
    logins: u8,
    effect: Option<Effect>,
    position: Position,
    /// Operations of the current item done before this one.
    done: u16,
    operation: Operation,
    /// Length and CRC of the request buffer: it must be the same on resume.
    fingerprint: (usize, u32),
    /// The method and path of the item that waits: it must be the same on resume.
    item: Option<(Method, Path)>,
}

/// The length and CRC-32 of a request buffer: catches a port that changed the buffer by
/// mistake. A checksum can be forged, so what keeps the access check is [`item_at`].
fn fingerprint(request: &[u8]) -> (usize, u32) {
    (request.len(), crate::storage::CRC.checksum(request))
}

/// The method and path of the request, or of the multi-request item, at `position`: a
/// resumed request runs that item without checking its access again, so it must be the
/// one that was admitted (whatever request bytes a port hands back, they cannot make
/// another method or resource run unchecked; the items after it are checked when they
/// run). A single packet's commands are in the output buffer, which the port keeps as it
/// was, as the rights they run with, written there by the `OpenPacket` operation: the
/// port that performs operations is trusted with them.
fn item_at(parsed: &Request<'_>, position: Position) -> Option<(Method, Path)> {
    match position {
        Position::Request => Some((parsed.method, parsed.path)),
        // A packet's commands are in the response buffer, which the port keeps as it was
        // (the request that opened it is the one checked here).
        #[cfg(feature = "packets")]
        Position::Packet { .. } => Some((parsed.method, parsed.path)),
        Position::Item { index, .. } => {
            let multi = MultiRequest::parse(parsed.payload).ok()?;
            let item = multi.items().nth(usize::from(index))?;
            let inner = Request::parse_frame(item.frame).ok()?;
            Some((inner.method, inner.path))
        }
    }
}

/// A status-only response after the whole response buffer was wiped (a waiting read
/// may have put bytes in it).
fn wiped_status(limits: FrameLimits, out: &mut [u8], code: ResultCode) -> usize {
    let max_response = usize::from(limits.max_response).min(out.len());
    out[..max_response].fill(0);
    status_response(limits, out, code)
}

/// The device's own target and store perform operations at once (the blocking
/// [`Device::handle`]).
const INLINE: bool = true;
/// Operations suspend the request ([`Step::Pending`]).
const SUSPEND: bool = false;

/// The device's own target and store.
struct Parts<T, S> {
    target: T,
    store: S,
}

impl<T: TargetIo, S: ConfigStore> Parts<T, S> {
    /// What a request runs with: these when it runs blocking ([`INLINE`]), nothing when
    /// its operations suspend it.
    fn inline(&mut self, inline: bool) -> Option<&mut dyn InlineIo> {
        match inline {
            INLINE => Some(self),
            SUSPEND => None,
        }
    }
}

impl<T: TargetIo, S: ConfigStore> InlineIo for Parts<T, S> {
    fn read(&mut self, var: &TargetVar, out: &mut [u8]) -> IoResult {
        self.target.read(var, out)
    }

    fn write(&mut self, var: &TargetVar, data: &[u8]) -> IoResult {
        self.target.write(var, data)
    }

    fn save(&mut self, config: &Config) -> IoResult {
        io::save(&mut self.store, config)
    }

    fn append_blob(&mut self, blob: BlobId, data: &[u8]) -> IoResult {
        io::stored(self.store.append_blob(blob, data))
    }

    fn clear_blob(&mut self, blob: BlobId) -> IoResult {
        io::stored(self.store.clear_blob(blob))
    }

    fn command(
        &mut self,
        settings: &TargetSettings,
        command: &TargetCommand,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<usize, ResultCode> {
        self.target.command(settings, command, input, output)
    }

    #[cfg(feature = "packets")]
    fn write_packet(&mut self, offset: u32, data: &[u8]) -> IoResult {
        io::write_packet(&mut self.store, offset, data)
    }

    #[cfg(feature = "packets")]
    fn open_packet(
        &mut self,
        crypto: &mut dyn crate::crypto::Crypto,
        config: &Config,
        source: crate::packets::PacketSource,
        request: &[u8],
        area: &mut [u8],
    ) -> IoResult {
        crate::packets::open(crypto, config, source, request, area, self.store.packets())
    }
}

/// Loads the configuration from `store` into `state` in place, the device's factory one
/// when none is found, and tells the objects ([`Device::boot`], [`Device::load_config`]).
fn load<O: ObjectSet, S: ConfigStore>(
    objects: &mut O,
    state: &mut State,
    store: &mut S,
) -> Result<LoadState, StoreError> {
    #[cfg(feature = "packets")]
    state.empty_packet_store(store);
    let loaded = store.load_into(&mut state.config);
    if !matches!(loaded, Ok(LoadState::Config | LoadState::Previous)) {
        (state.factory)(&mut state.config);
    }
    objects.config_loaded(&mut state.config);
    loaded
}

/// The earlier of two deadlines, either of which may be absent.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Writes a status-only response into `out` (within the device's response size).
fn status_response(limits: FrameLimits, out: &mut [u8], code: ResultCode) -> usize {
    let max_response = usize::from(limits.max_response).min(out.len());
    match Response::new(&mut out[..max_response]) {
        Some(response) => response.status(code),
        None => 0,
    }
}

/// An lwM2M device: objects, configuration image, session, the target that holds
/// variable values, and the store that keeps the configuration across restarts.
pub struct Device<O, T = NoTarget, S = NoStore> {
    objects: O,
    state: State,
    parts: Parts<T, S>,
    waiting: Option<Waiting>,
}

/// What a request reaches of the device through its [`Context`] (one pointer): the
/// configuration, the session and the login guard, the frame sizes, the factory reset,
/// the NFC priority override.
pub(crate) struct State {
    pub(crate) config: Config,
    pub(crate) session: Session,
    pub(crate) guard: LoginGuard,
    pub(crate) limits: FrameLimits,
    pub(crate) factory: fn(&mut Config),
    pub(crate) nfc_override: Option<NfcPriority>,
    /// The wall clock (`/3//13`, `/1024//79`); an in-place boot keeps it, as it keeps
    /// the port's monotonic clock it counts on.
    pub(crate) clock: WallClock,
    /// The device's random numbers (nonces, IVs, keys).
    #[cfg(feature = "crypto")]
    pub(crate) drbg: crate::secure::Drbg,
    /// The answer to seal of the tunnel request [`Device::unseal`] opened.
    #[cfg(feature = "crypto")]
    pub(crate) sealing: Option<crate::secure::Sealing>,
    /// What the packet store holds (`/1024//81`, `/82`, `/83`).
    #[cfg(feature = "packets")]
    pub(crate) packet_store: crate::crypto::chunk::PacketStore,
    /// The execute CRC of what the packet store holds.
    #[cfg(feature = "packets")]
    pub(crate) packet_crc: crate::crypto::chunk::ExecuteCrc,
    /// The primitives the encrypted session and single packets run on.
    #[cfg(feature = "crypto")]
    pub(crate) crypto: crate::secure::Primitives,
}

impl State {
    /// The state of a device just built: `config`, no session, no login failure, the
    /// software primitives, no packet store (its storage is taken at boot).
    const fn new(config: Config, factory: fn(&mut Config), limits: FrameLimits) -> State {
        State {
            config,
            session: Session::new(),
            guard: LoginGuard::new(),
            limits,
            factory,
            nfc_override: None,
            clock: WallClock::new(),
            #[cfg(feature = "crypto")]
            drbg: crate::secure::Drbg::new(),
            #[cfg(feature = "crypto")]
            sealing: None,
            #[cfg(feature = "packets")]
            packet_store: crate::crypto::chunk::PacketStore::new(0),
            #[cfg(feature = "packets")]
            packet_crc: crate::crypto::chunk::ExecuteCrc::new(),
            #[cfg(feature = "crypto")]
            crypto: crate::secure::Primitives::new(),
        }
    }

    /// Runs the timers once more after a request, which may have shortened them (a
    /// side handler's `PUT /1024//34` does not extend the idle session it shortens): the
    /// deadline returned is never in the past.
    ///
    /// Every entry point ran the timers at `now` before the request (`Device::expire`):
    /// only the session is looked at again, the lock-out cannot have elapsed since (a
    /// failed login only sets it later than `now`).
    // The end of every request: a hint to build it into `execute` where the build inlines
    // (a size-optimised firmware build does not take it).
    #[inline]
    fn finish(&mut self, len: usize, effect: Option<Effect>, now: Instant) -> Outcome {
        let session = self.session.expire_at(&self.config, now);
        Outcome {
            len,
            next_deadline: earliest(session, self.guard.deadline()),
            effect,
        }
    }

    /// The packet store of `store` emptied (what a reset left in it is never run) and
    /// sized (UNAVAILABLE if `store` has none).
    #[cfg(feature = "packets")]
    fn empty_packet_store<S: ConfigStore + ?Sized>(&mut self, store: &mut S) {
        let capacity = store.packets().map_or(0, |packets| packets.capacity());
        self.packet_store = crate::crypto::chunk::PacketStore::new(capacity);
        self.packet_crc = crate::crypto::chunk::ExecuteCrc::new();
    }

    /// [`Device::poll`].
    fn poll(&mut self, now: Instant) -> Option<Instant> {
        let session = self.session.expire_at(&self.config, now);
        // Clears an elapsed lock-out.
        let _ = self.guard.check(now);
        earliest(session, self.guard.deadline())
    }

    /// The NFC priority in force: the override, else the configuration.
    pub(crate) fn nfc_priority(&self) -> NfcPriority {
        self.nfc_override.unwrap_or(self.config.nfc_priority)
    }

    /// The frame sizes the request under way answers within: an answer to seal leaves
    /// room for what sealing adds ([`crate::secure::SEAL_OVERHEAD`]).
    pub(crate) fn limits(&self) -> FrameLimits {
        #[cfg(feature = "crypto")]
        if let Some(sealing) = &self.sealing {
            if !matches!(sealing.kind, crate::secure::SealKind::Refused(_)) {
                return FrameLimits {
                    max_request: self.limits.max_request,
                    max_response: self
                        .limits
                        .max_response
                        .saturating_sub(crate::secure::SEAL_OVERHEAD as u16),
                };
            }
        }
        self.limits
    }
}

impl<O: ObjectSet> Device<O> {
    /// A device serving `objects` with the configuration `config` (loaded from flash, or
    /// the factory configuration on first boot). `factory` restores the factory
    /// configuration in place (such as [`Config::reset`]) on a factory reset. `limits`
    /// must describe the buffers the port passes to [`Device::handle`].
    pub fn new(
        mut objects: O,
        mut config: Config,
        factory: fn(&mut Config),
        limits: FrameLimits,
    ) -> Self {
        objects.config_loaded(&mut config);
        Device {
            objects,
            state: State::new(config, factory, limits),
            parts: Parts {
                target: NoTarget,
                store: NoStore,
            },
            waiting: None,
        }
    }
}

impl<O: ObjectSet, T: TargetIo, S: ConfigStore> Device<O, T, S> {
    /// A device with no configuration yet, to [`boot`](Device::boot) before it serves
    /// a request: what a board with little RAM builds. The function is `const`, so the
    /// device can be built at compile time into a static (e.g. a
    /// `static_cell::ConstStaticCell`), and booted there: neither the device nor its
    /// configuration is ever on the stack, as they are when [`Device::new`] builds
    /// them. `factory` and `limits` are those of [`Device::new`].
    ///
    /// Until it is booted the device has the empty configuration ([`Config::EMPTY`]: no
    /// profile), under which no login succeeds and only what anyone may read is
    /// answered.
    pub const fn unbooted(
        objects: O,
        target: T,
        store: S,
        factory: fn(&mut Config),
        limits: FrameLimits,
    ) -> Self {
        Device {
            objects,
            state: State::new(Config::EMPTY, factory, limits),
            parts: Parts { target, store },
            waiting: None,
        }
    }

    /// Starts the device afresh, in place, as a reset would, with the configuration
    /// loaded from its store: what a board calls at boot (on a device built
    /// [`unbooted`](Device::unbooted)) and on a reboot request ([`Effect::Reboot`]),
    /// without building a device or a configuration on the stack.
    ///
    /// The session ends, a request waiting on an operation is dropped, the NFC priority
    /// override is cleared; the configuration is the one stored
    /// ([`ConfigStore::load_into`]), else the factory one (the `factory` function of
    /// the device): on a blank store, a damaged one ([`LoadState::Damaged`]) or an
    /// error of the store. Only [`LoadState::Blank`] means a first boot: on
    /// [`LoadState::Damaged`], [`LoadState::Previous`] or an error, say so before
    /// serving requests. The objects are told the configuration was loaded
    /// ([`ObjectSet::config_loaded`]); their own state (such as the last error of
    /// object 3) is theirs. The count of failed logins is kept: a reboot is no way
    /// around the lock-out.
    pub fn boot(&mut self) -> Result<LoadState, StoreError> {
        let Device {
            objects,
            state,
            parts,
            waiting,
        } = self;
        Self::restart(objects, state, waiting, &mut parts.store)
    }

    /// [`Device::boot`] with the configuration loaded from `store` rather than from the
    /// device's own: for a port that keeps its store beside the device and performs
    /// the operations requests wait on itself (an async one, [`Device::resume`]).
    pub fn boot_from<S2: ConfigStore>(&mut self, store: &mut S2) -> Result<LoadState, StoreError> {
        let Device {
            objects,
            state,
            waiting,
            ..
        } = self;
        Self::restart(objects, state, waiting, store)
    }

    /// [`Device::boot`] from `store`.
    fn restart<S2: ConfigStore>(
        objects: &mut O,
        state: &mut State,
        waiting: &mut Option<Waiting>,
        store: &mut S2,
    ) -> Result<LoadState, StoreError> {
        *waiting = None;
        state.session.end();
        state.nfc_override = None;
        load(objects, state, store)
    }

    /// Sets the wall clock to `unix` seconds (since 1970-01-01 UTC) at `now`: what a
    /// board with a real-time clock, or one that learnt the time, does at boot. The
    /// interlocutor sets it too (`PUT /3//13`); a device never set counts from boot.
    pub fn set_unix_time(&mut self, unix: u32, now: Instant) {
        self.state.clock.set(unix, now);
    }

    /// The wall clock at `now`, in Unix seconds (seconds since boot if never set): what a
    /// board with a real-time clock copies into it after the interlocutor set the time.
    pub fn unix_time(&self, now: Instant) -> u32 {
        self.state.clock.unix_time(now)
    }

    /// The same device reaching variable values through `target`.
    pub fn with_target<T2: TargetIo>(self, target: T2) -> Device<O, T2, S> {
        Device {
            objects: self.objects,
            state: self.state,
            parts: Parts {
                target,
                store: self.parts.store,
            },
            waiting: self.waiting,
        }
    }

    /// The same device saving its configuration to `store` on the save command and on
    /// factory reset. Load the configuration from it at boot, in place
    /// ([`Device::load_config`]; a device built [`unbooted`](Device::unbooted) with its
    /// store boots with [`Device::boot`]).
    pub fn with_store<S2: ConfigStore>(self, store: S2) -> Device<O, T, S2> {
        Device {
            objects: self.objects,
            state: self.state,
            parts: Parts {
                target: self.parts.target,
                store,
            },
            waiting: self.waiting,
        }
    }

    /// Handles one request APDU from `channel` received at `now`, writing the response
    /// APDU into `out`, and performs the operations it waits on with the device's own
    /// target and store (blocking): what a blocking port calls. A port that completes
    /// operations itself calls [`Device::start`] and [`Device::resume`].
    pub fn handle(
        &mut self,
        channel: Channel,
        request: &[u8],
        now: Instant,
        out: &mut [u8],
    ) -> Outcome {
        let step = self.begin(channel, None, request, now, out, INLINE);
        let step = self.sealed(step, out);
        Self::complete(step)
    }

    /// Handles one request of a local side handler (an on-board script engine, a
    /// Modbus-slave handler) with the rights of `profile`, without taking, extending or
    /// ending the session. Login and logout are refused (`81`). Blocking, like
    /// [`Device::handle`].
    pub fn handle_side(
        &mut self,
        channel: Channel,
        profile: u16,
        request: &[u8],
        now: Instant,
        out: &mut [u8],
    ) -> Outcome {
        let step = self.begin(channel, Some(profile), request, now, out, INLINE);
        Self::complete(step)
    }

    /// The outcome of a request run inline. Such a run never suspends: its handlers'
    /// operations are performed on the spot, through the device's own target and store
    /// (`object::InlineIo`, over `Parts`), and `execute` answers `A0` should one ask for
    /// an operation all the same. So a firmware that only calls `handle` carries none of
    /// the suspension machinery ([`Device::resume`] and what it checks).
    fn complete(step: Step) -> Outcome {
        match step {
            Step::Done(outcome) => outcome,
            // Never: a request run inline does not suspend (`execute`).
            Step::Pending(_) => Outcome {
                len: 0,
                next_deadline: None,
                effect: None,
            },
        }
    }

    /// Starts one request APDU from `channel` received at `now`, writing the response
    /// APDU into `out`: done, or waiting on an operation the port performs before it
    /// calls [`Device::resume`] ([`crate::io`]). While a request waits, every other
    /// request (of any channel) is answered `A8` at once and [`Device::poll`] runs the
    /// timers.
    pub fn start(
        &mut self,
        channel: Channel,
        request: &[u8],
        now: Instant,
        out: &mut [u8],
    ) -> Step {
        let step = self.begin(channel, None, request, now, out, SUSPEND);
        self.sealed(step, out)
    }

    /// Starts a side handler's request ([`Device::handle_side`]), like [`Device::start`].
    pub fn start_side(
        &mut self,
        channel: Channel,
        profile: u16,
        request: &[u8],
        now: Instant,
        out: &mut [u8],
    ) -> Step {
        self.begin(channel, Some(profile), request, now, out, SUSPEND)
    }

    /// Takes the waiting request up again with the `result` of its operation. `request`
    /// and `out` must be the buffers it was started with, untouched since (a read's
    /// bytes are already in `out`). Without a waiting request it answers nothing
    /// (`len` 0).
    pub fn resume(
        &mut self,
        result: IoResult,
        request: &[u8],
        now: Instant,
        out: &mut [u8],
    ) -> Step {
        let step = self.resume_unsealed(result, request, now, out);
        self.sealed(step, out)
    }

    /// [`Device::resume`], the answer not sealed yet.
    fn resume_unsealed(
        &mut self,
        result: IoResult,
        request: &[u8],
        now: Instant,
        out: &mut [u8],
    ) -> Step {
        self.expire(now);
        let Some(waiting) = self.waiting.take() else {
            return Step::Done(self.finish(0, None, now));
        };
        // The same request, or nothing runs: another one would skip its access check.
        let parsed = match Request::parse_apdu(request) {
            Ok(parsed)
                if waiting.fingerprint == fingerprint(request)
                    && waiting.item.is_some()
                    && item_at(&parsed, waiting.position) == waiting.item =>
            {
                parsed
            }
            _ => {
                warn!("resumed with another request: refused");
                let len = wiped_status(self.state.limits(), out, ResultCode::BadRequest);
                return Step::Done(self.finish(len, waiting.effect, now));
            }
        };
        let Some(done) = waiting.done.checked_add(u16::from(result.is_ok())) else {
            let len = wiped_status(self.state.limits(), out, ResultCode::InternalServerError);
            return Step::Done(self.finish(len, waiting.effect, now));
        };
        let resume = Resume::After {
            position: waiting.position,
            result,
        };
        let ctx = Context {
            state: &mut self.state,
            now,
            channel: waiting.channel,
            security: waiting.security,
            logins: waiting.logins,
            effect: waiting.effect,
            request,
            io: IoCursor {
                done,
                next: 0,
                pending: None,
            },
            inline: None,
            #[cfg(feature = "packets")]
            packet: None,
            #[cfg(feature = "packets")]
            in_item: false,
            #[cfg(feature = "packets")]
            packet_area: None,
        };
        execute(
            &mut self.objects,
            &mut self.waiting,
            ctx,
            &parsed,
            resume,
            out,
            SUSPEND,
        )
    }

    /// Performs `op` with the device's own target and store, blocking
    /// ([`Operation::perform`]); `request` and `out` are the buffers of the waiting
    /// request. [`Device::handle`] does this until the request is done.
    pub fn perform(&mut self, op: &Operation, request: &[u8], out: &mut [u8]) -> IoResult {
        op.perform(
            &self.state.config,
            request,
            out,
            &mut self.parts.target,
            &mut self.parts.store,
        )
    }

    /// Gives the waiting request up without an answer: the port will not complete its
    /// operation (it was lost with its link, or the port's I/O failed). What the request
    /// changed before it waited stays changed; the device takes requests again. The port
    /// wipes the request's output buffer (it may hold a single packet's decrypted
    /// commands, or values read), as the device loop of `transport-traits` does.
    pub fn cancel(&mut self) {
        if self.waiting.take().is_some() {
            warn!("waiting request cancelled");
        }
        #[cfg(feature = "crypto")]
        {
            self.state.sealing = None;
        }
    }

    /// Seeds the device's random numbers (SCRAM nonces, the device's IVs, the key of
    /// `/1024//47`) with `entropy` from the board: a hardware generator, `/dev/urandom`;
    /// 32 bytes or more. Call it at boot; later calls mix more in. Until it is seeded,
    /// what needs a random number answers `A3`.
    #[cfg(feature = "crypto")]
    pub fn seed(&mut self, entropy: &[u8]) {
        let State { drbg, crypto, .. } = &mut self.state;
        drbg.seed(&mut crypto.get(), entropy);
    }

    /// Opens a tunnel request in place before it is handled: if `request` is a
    /// `GET /1024//48` or `GET /1024//44` of the channel that owns an encrypted session,
    /// its frame is decrypted and checked (CRC, frame id newer than the last one
    /// accepted) and `request` is rewritten as the plain APDU of its inner frame; the
    /// next [`Device::handle`] or [`Device::start`] of `channel` runs it with the
    /// session's rights and seals its answer (a refused frame is answered `80`, a replay
    /// `81`, in clear, nothing executed). Returns the length of the request to handle
    /// (`request.len()` for any other request, left as it is). The device loop of
    /// `transport-traits` calls it for every request; a port calling `handle` itself
    /// calls it first.
    #[cfg(feature = "crypto")]
    pub fn unseal(&mut self, channel: Channel, request: &mut [u8]) -> usize {
        // While a request waits, the sealing is its own (its answer is sealed once it is
        // resumed and done), and any other request is answered `A8`, in clear.
        if self.waiting.is_some() {
            return request.len();
        }
        self.state.sealing = None;
        if !self.state.session.is_owner(channel.id) {
            return request.len();
        }
        let State {
            session,
            drbg,
            crypto,
            ..
        } = &mut self.state;
        let mut software = crate::crypto::Software;
        // The answer's IV is drawn with software HMAC: `crypto` opens the frame.
        let answer_iv = || drbg.draw(&mut software).ok();
        match crate::secure::unseal(
            &mut crypto.get(),
            &mut session.secure,
            channel.id,
            answer_iv,
            request,
        ) {
            Some((len, sealing)) => {
                self.state.sealing = Some(sealing);
                len
            }
            None => request.len(),
        }
    }

    /// Takes the single packets' store of `store` (feature `packets`), empty: for a port
    /// that keeps its store beside the device and performs the operations itself, and
    /// built the device with [`Device::new`] (booting from a store,
    /// [`Device::boot`], [`Device::boot_from`] and [`Device::load_config`], does this
    /// too). Until then the packet store is UNAVAILABLE.
    #[cfg(feature = "packets")]
    pub fn take_packets_of<S2: ConfigStore>(&mut self, store: &mut S2) {
        self.state.empty_packet_store(store);
    }

    /// Runs the encrypted session and single packets on the board's primitives (its AES
    /// and SHA-256 peripherals behind [`crate::crypto::Crypto`]) rather than software,
    /// for what the engine does itself; a single packet opened by a port's
    /// [`Operation::perform`] runs on software (a port with hardware calls
    /// [`crate::packets::open`] with its own).
    #[cfg(feature = "crypto")]
    pub fn with_crypto(&mut self, crypto: &'static mut (dyn crate::crypto::Crypto + Send)) {
        self.state.crypto.set(crypto);
    }

    /// Without the `crypto` feature there is no tunnel: every request is left as it is.
    #[cfg(not(feature = "crypto"))]
    pub fn unseal(&mut self, _channel: Channel, request: &mut [u8]) -> usize {
        request.len()
    }

    /// Whether the request `begin` takes up is the tunnel request `unseal` opened (for
    /// this channel, not a side handler's), or the refusal of the frame it could not
    /// open; a sealing left for another channel is dropped.
    #[cfg(feature = "crypto")]
    #[inline(never)]
    fn tunnelled(
        &mut self,
        channel: Channel,
        side_profile: Option<u16>,
    ) -> Result<bool, ResultCode> {
        match self.state.sealing.as_ref() {
            Some(sealing) if sealing.channel == channel.id && side_profile.is_none() => {
                if let crate::secure::SealKind::Refused(code) = sealing.kind {
                    self.state.sealing = None;
                    return Err(code);
                }
                Ok(true)
            }
            _ => {
                self.state.sealing = None;
                Ok(false)
            }
        }
    }

    /// The answer of a tunnelled request sealed in place, once it is done.
    #[cfg(feature = "crypto")]
    #[inline(always)]
    fn sealed(&mut self, step: Step, out: &mut [u8]) -> Step {
        // A clear request: nothing to seal (the common case, kept cheap).
        if self.state.sealing.is_none() {
            return step;
        }
        self.seal_answer(step, out)
    }

    /// [`Device::sealed`] of a tunnelled request.
    #[cfg(feature = "crypto")]
    #[inline(never)]
    fn seal_answer(&mut self, step: Step, out: &mut [u8]) -> Step {
        let Step::Done(mut outcome) = step else {
            return step;
        };
        // A request done while another waits was answered `A8`: the sealing is the
        // waiting request's.
        if self.waiting.is_some() {
            return Step::Done(outcome);
        }
        if let Some(sealing) = self.state.sealing.take() {
            outcome.len =
                crate::secure::seal(&mut self.state.crypto.get(), &sealing, out, outcome.len);
            // An IV exchange in the tunnel: the new IVs from the next frame on.
            if let Some((request, answer)) = sealing.then {
                self.state.session.secure.set_ivs(request, answer);
            }
        }
        Step::Done(outcome)
    }

    #[cfg(not(feature = "crypto"))]
    fn sealed(&mut self, step: Step, _out: &mut [u8]) -> Step {
        step
    }

    /// The operation the waiting request waits on, `None` if no request waits.
    pub fn pending(&self) -> Option<Operation> {
        self.waiting.as_ref().map(|w| w.operation)
    }

    fn finish(&mut self, len: usize, effect: Option<Effect>, now: Instant) -> Outcome {
        self.state.finish(len, effect, now)
    }

    /// Runs the timers, checks a new request and admits its channel, then executes it.
    fn begin(
        &mut self,
        channel: Channel,
        side_profile: Option<u16>,
        request: &[u8],
        now: Instant,
        out: &mut [u8],
        run: bool,
    ) -> Step {
        self.expire(now);
        let status_only = |device: &mut Self, out: &mut [u8], code| {
            let len = status_response(device.state.limits(), out, code);
            Step::Done(device.finish(len, None, now))
        };
        // A tunnel request `unseal` opened for this channel, or refused. While a request
        // waits, the sealing is its own: this one is answered `A8` below.
        #[cfg(feature = "crypto")]
        let tunnelled = match self.state.sealing.is_some() && self.waiting.is_none() {
            false => false,
            true => match self.tunnelled(channel, side_profile) {
                Ok(tunnelled) => tunnelled,
                Err(code) => return status_only(self, out, code),
            },
        };
        #[cfg(not(feature = "crypto"))]
        let tunnelled = false;
        // Checked (not answered) first: an NFC SELECT (class 00) never parses, so it is
        // looked for only among the requests that do not.
        let parsed = Request::parse_apdu(request);
        if parsed.is_err() && is_nfc_select(request) {
            // The only bare status word the device sends (spec decision 3).
            let len = match out.get_mut(..2) {
                Some(sw) => {
                    sw.copy_from_slice(&STATUS_WORD_OK);
                    2
                }
                None => 0,
            };
            return Step::Done(self.finish(len, None, now));
        }
        if self.waiting.is_some() {
            // One request at a time: the device is busy until the operation completes.
            return status_only(self, out, ResultCode::DeviceUnavailable);
        }
        let parsed = match parsed {
            Ok(_)
                if request.len() - APDU_HEADER_LEN > usize::from(self.state.limits.max_request) =>
            {
                return status_only(self, out, ResultCode::BadRequest)
            }
            Ok(parsed) => parsed,
            Err(err) => {
                debug!("malformed request: {}", err);
                return status_only(self, out, err.result_code());
            }
        };
        let security = match side_profile {
            Some(profile) => Security {
                subject: Subject::new(&self.state.config, profile),
                origin: Origin::Side,
            },
            None => {
                let nfc = self.state.nfc_priority();
                if let Err(code) = self.state.session.admit(channel, now, nfc) {
                    return status_only(self, out, code);
                }
                Security {
                    subject: Subject::new(
                        &self.state.config,
                        self.state.session.user_for(tunnelled),
                    ),
                    origin: Origin::Session,
                }
            }
        };
        let ctx = Context {
            state: &mut self.state,
            now,
            channel,
            security,
            logins: 0,
            effect: None,
            request,
            io: IoCursor::default(),
            inline: self.parts.inline(run),
            #[cfg(feature = "packets")]
            packet: None,
            #[cfg(feature = "packets")]
            in_item: false,
            #[cfg(feature = "packets")]
            packet_area: None,
        };
        execute(
            &mut self.objects,
            &mut self.waiting,
            ctx,
            &parsed,
            Resume::Start,
            out,
            run,
        )
    }

    /// Ends what timed out by `now` and returns the next deadline. Call it at the
    /// deadline returned last, or sooner.
    pub fn poll(&mut self, now: Instant) -> Option<Instant> {
        self.state.poll(now)
    }

    fn expire(&mut self, now: Instant) {
        self.state.session.expire(&self.state.config, now);
        // Clears an elapsed lock-out.
        let _ = self.state.guard.check(now);
    }

    /// The earliest time something times out, `None` if nothing is pending.
    pub fn next_deadline(&self) -> Option<Instant> {
        earliest(
            self.state.session.deadline(&self.state.config),
            self.state.guard.deadline(),
        )
    }

    /// Whether the engine still knows `channel`: it owns the session. A port must not
    /// give the id of such a channel to a new link, which would inherit the session (and
    /// its login) of the old one.
    pub fn channel_in_use(&self, channel: ChannelId) -> bool {
        self.state.session.is_owner(channel) || self.waiting_on(channel)
    }

    /// Whether the request that waits on an operation came from `channel`.
    fn waiting_on(&self, channel: ChannelId) -> bool {
        self.waiting
            .as_ref()
            .is_some_and(|w| w.channel.id == channel)
    }

    /// The link of `channel` closed: if it owned the session, the session ends; a request
    /// of it that waits on an operation is given up ([`Device::cancel`]: its answer has
    /// nowhere to go, and it must not take the session again for a dead link).
    pub fn channel_closed(&mut self, channel: ChannelId) {
        if self.waiting_on(channel) {
            self.cancel();
        }
        if self.state.session.is_owner(channel) {
            info!("session owner disconnected");
            self.state.session.end();
        }
    }

    /// Loads the configuration from the device's store into the device, in place
    /// ([`ConfigStore::load_into`]), the device's factory one when none is found (a
    /// blank or damaged store, an error of the store), as [`Device::boot`] does without
    /// starting the device afresh: for a device built with [`Device::new`]. Only
    /// [`LoadState::Blank`] means a first boot: on [`LoadState::Damaged`] or
    /// [`LoadState::Previous`], say so before serving requests.
    pub fn load_config(&mut self) -> Result<LoadState, StoreError> {
        load(&mut self.objects, &mut self.state, &mut self.parts.store)
    }

    /// The configuration image.
    pub fn config(&self) -> &Config {
        &self.state.config
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
        &self.state.session
    }

    /// The frame sizes of this device.
    pub fn limits(&self) -> FrameLimits {
        self.state.limits
    }

    /// The target.
    pub fn target(&self) -> &T {
        &self.parts.target
    }

    /// The target, mutably.
    pub fn target_mut(&mut self) -> &mut T {
        &mut self.parts.target
    }

    /// The configuration store.
    pub fn store(&self) -> &S {
        &self.parts.store
    }

    /// The configuration store, for the port: the firmware reads the blobs it keeps
    /// (certificates, JVM code: [`crate::blob`]) here.
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.parts.store
    }

    /// Takes the device apart into its target and store (e.g. to reboot a simulated
    /// device on the same flash and target).
    pub fn into_parts(self) -> (T, S) {
        (self.parts.target, self.parts.store)
    }
}

/// Runs an admitted request from its start or from where it waited (`resume`), in the
/// context `ctx` the entry point built (straight into its frame: nothing is copied). A
/// request run [`INLINE`] never waits: should it ask for an operation, it ends with `A0`.
fn execute<O: ObjectSet>(
    objects: &mut O,
    waiting: &mut Option<Waiting>,
    mut ctx: Context<'_>,
    parsed: &Request<'_>,
    resume: Resume,
    out: &mut [u8],
    run: bool,
) -> Step {
    let max_response = usize::from(ctx.state.limits().max_response).min(out.len());
    let Some(mut response) = Response::new(&mut out[..max_response]) else {
        return Step::Done(ctx.state.finish(0, ctx.effect, ctx.now));
    };
    let mut body = response.body();
    let flow = dispatch(objects, &mut ctx, parsed, &mut body, resume);
    let Context {
        state,
        now,
        channel,
        security,
        logins,
        effect,
        request,
        io,
        ..
    } = ctx;
    match (flow, io.pending) {
        (Flow::Suspend(position), Some(operation)) if run == SUSPEND => {
            *waiting = Some(Waiting {
                channel,
                security,
                logins,
                effect,
                position,
                done: io.done,
                operation,
                // Filled by `remember`, out of line (see there).
                fingerprint: (0, 0),
                item: None,
            });
            remember(waiting, parsed, request);
            Step::Pending(operation)
        }
        (flow, _) => {
            let status = match flow {
                Flow::Done(status) => status,
                // A request run inline that asked for an operation all the same.
                Flow::Suspend(_) => ResultCode::InternalServerError,
            };
            debug!("{:?} {} -> {}", parsed.method, parsed.path, status);
            // An error carries no data (`Response::finish`).
            let data_len = body.len();
            let len = response.finish(status, data_len);
            Step::Done(state.finish(len, effect, now))
        }
    }
}

/// Records what identifies the waiting request (out of line: a blocking request never
/// waits, and its stack does not pay for this; computing it in `execute` and passing
/// it back costs every request 16 bytes of stack, measured by `cargo xtask footprint`).
#[cold]
#[inline(never)]
fn remember(waiting: &mut Option<Waiting>, parsed: &Request<'_>, request: &[u8]) {
    if let Some(waiting) = waiting.as_mut() {
        waiting.fingerprint = fingerprint(request);
        waiting.item = item_at(parsed, waiting.position);
    }
}

/// A request with more operations than the cursor counts ends.
#[cfg(test)]
mod suspension_tests {
    use super::*;
    use crate::acl::Access;
    use crate::object::{HandlerResult, Object, ResourceDef};
    use crate::session::ChannelKind;
    use crate::wire::Body;

    /// POST /32771//0 asks for more saves than a u16 counts (ignoring each answer, as a
    /// handler that batches its operations may).
    struct ManySaves;

    const SAVES: u32 = u16::MAX as u32 + 2;

    impl Object for ManySaves {
        fn id(&self) -> u16 {
            32771
        }

        fn resources(&self) -> &'static [ResourceDef] {
            const T: &[ResourceDef] = &[ResourceDef::single(0).post(Access::Anyone)];
            T
        }

        fn handle(
            &mut self,
            ctx: &mut Context<'_>,
            _req: &Request<'_>,
            _body: &mut Body<'_>,
        ) -> HandlerResult {
            for _ in 0..SAVES {
                let _ = ctx.save_config();
            }
            Ok(ResultCode::Ok)
        }
    }

    #[test]
    fn a_request_with_more_operations_than_the_cursor_counts_ends() {
        let limits = FrameLimits {
            max_request: 64,
            max_response: 64,
        };
        let mut device = Device::new((ManySaves,), Config::default(), Config::reset, limits);
        let channel = Channel::new(1, ChannelKind::WebSocket);
        let request = [0xA2, 0xDA, 0, 0, 7, 2, 0x80, 0x03, 0xFF, 0xFF, 0, 0];
        let now = Instant::ZERO;
        let mut out = [0u8; 64];
        let step = device.start(channel, &request, now, &mut out);
        assert_eq!(step, Step::Pending(Operation::SaveConfig));
        // Fast-forward: 65 534 saves done (as that many resumes would have left it).
        device.waiting.as_mut().unwrap().done = u16::MAX - 1;
        let mut step = device.resume(Ok(()), &request, now, &mut out);
        // Two more saves at most, then the request ends (answered, or refused A0): the
        // cursor must not stop counting and ask for the same save forever.
        for _ in 0..4 {
            match step {
                Step::Done(_) => return,
                Step::Pending(_) => step = device.resume(Ok(()), &request, now, &mut out),
            }
        }
        panic!(
            "still pending after every save was done (done = {})",
            device.waiting.map_or(0, |w| w.done)
        );
    }
}
