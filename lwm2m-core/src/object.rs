//! The object interface: what `lwm2m-objects` implements and the dispatcher calls.
//!
//! Each object declares its resources once, as a table of [`ResourceDef`]: resource id,
//! instance rule, the [`Access`] of each method, and which of its methods this build
//! provides. Dispatch, the access check and the documentation all read the same table.

use crate::acl::{self, Access, Origin, Security, Subject};
use crate::blob::BlobId;
use crate::config::{Config, Domain, NfcPriority, Rights};
use crate::device::State;
use crate::io::{self, IoCursor, IoResult, Operation, TargetCommand, TargetSettings, TargetVar};
use crate::session::Channel;
use crate::time::{Duration, Instant};
use crate::wire::{Body, Method, Request, ResultCode, ABSENT};

/// Which instance ids a resource entry answers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum InstanceRule {
    /// A single-instance object: no instance (0xFFFF) or instance 0.
    Single,
    /// Only the form without instance (`/1029//4`).
    Absent,
    /// An instance that must exist ([`Object::instance_exists`]); 0xFFFF is a valid id
    /// here (the admin profile is `/1025/65535`).
    Existing,
    /// Any instance id, existing or not (create).
    Any,
}

/// One entry of an object's resource table: 6 bytes of flash.
///
/// Declared with the builder methods ([`ResourceDef::single`], [`ResourceDef::get`]...)
/// and read with [`ResourceDef::access`], [`ResourceDef::implements`],
/// [`ResourceDef::answer`], [`ResourceDef::instance_rule`] and [`ResourceDef::wraps`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ResourceDef {
    /// Resource id.
    pub id: u16,
    /// One nibble per method (GET in bits 0–3, POST 4–7, PUT 8–11, DELETE 12–15): its
    /// [`Access`] in the low three bits, and [`PROVIDED`] if this build serves it.
    access: u16,
    /// The most data a successful GET answers in bits 0–12 ([`ANSWER_MASK`] stands for
    /// [`UNBOUNDED`]), the instance rule in bits 14–15 and [`MULTI_REQUEST_BIT`].
    meta: u16,
}

/// The bit of a method's nibble of [`ResourceDef::access`] saying this build serves it.
const PROVIDED: u16 = 0b1000;
const ACCESS_BITS: u16 = 0b0111;
const ANSWER_MASK: u16 = 0x1FFF;
const MULTI_REQUEST_BIT: u16 = 1 << 13;
const INSTANCE_SHIFT: u16 = 14;

/// What a resource that wraps requests holds ([`ResourceDef::envelope`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Envelope {
    /// A multi-request body (`len u16 | frame | expectedStatus u8` items, spec decision 8).
    MultiRequest,
}

/// [`ResourceDef::answer`] of a resource whose GET answer size is not declared: a
/// multi-request holding it is refused unless the object bounds it itself.
pub const UNBOUNDED: u16 = u16::MAX;

/// The largest answer size a [`ResourceDef`] declares ([`ResourceDef::answers`]): 8 190
/// bytes, as large as the table's 13 bits hold.
pub const MAX_ANSWER: u16 = ANSWER_MASK - 1;

/// The shift of `method`'s nibble in [`ResourceDef::access`].
const fn nibble(method: Method) -> u16 {
    4 * (method as u16 - 1)
}

/// Every method provided (the default of an entry).
const ALL_PROVIDED: u16 = PROVIDED | PROVIDED << 4 | PROVIDED << 8 | PROVIDED << 12;

impl ResourceDef {
    const fn with(id: u16, instance: InstanceRule) -> ResourceDef {
        ResourceDef {
            id,
            access: ALL_PROVIDED,
            meta: (instance as u16) << INSTANCE_SHIFT | ANSWER_MASK,
        }
    }

    /// A resource of a single-instance object.
    pub const fn single(id: u16) -> ResourceDef {
        ResourceDef::with(id, InstanceRule::Single)
    }

    /// A resource addressed without instance only.
    pub const fn absent(id: u16) -> ResourceDef {
        ResourceDef::with(id, InstanceRule::Absent)
    }

    /// A resource of an existing instance.
    pub const fn existing(id: u16) -> ResourceDef {
        ResourceDef::with(id, InstanceRule::Existing)
    }

    /// A resource of any instance id (create).
    pub const fn any(id: u16) -> ResourceDef {
        ResourceDef::with(id, InstanceRule::Any)
    }

    const fn set(mut self, method: Method, access: Access) -> ResourceDef {
        let shift = nibble(method);
        self.access = self.access & !(ACCESS_BITS << shift) | (access as u16) << shift;
        self
    }

    /// Sets the access of GET.
    pub const fn get(self, access: Access) -> ResourceDef {
        self.set(Method::Get, access)
    }

    /// Sets the access of PUT.
    pub const fn put(self, access: Access) -> ResourceDef {
        self.set(Method::Put, access)
    }

    /// Sets the access of POST.
    pub const fn post(self, access: Access) -> ResourceDef {
        self.set(Method::Post, access)
    }

    /// Sets the access of DELETE.
    pub const fn delete(self, access: Access) -> ResourceDef {
        self.set(Method::Delete, access)
    }

    /// Marks the resource as known but not provided by this build: every method it
    /// declares answers `A1`, without data, once the access check passed.
    pub const fn not_implemented(mut self) -> ResourceDef {
        self.access &= !ALL_PROVIDED;
        self.answers(0)
    }

    /// Marks `method` of the resource as known but not provided by this build: it
    /// answers `A1`, without data, once the access check passed; the other methods are
    /// served. A GET not provided answers nothing ([`ResourceDef::answer`] 0).
    pub const fn not_implemented_for(mut self, method: Method) -> ResourceDef {
        self.access &= !(PROVIDED << nibble(method));
        if matches!(method, Method::Get) {
            self = self.answers(0);
        }
        self
    }

    /// Declares the resource an envelope of requests, unwrapped by the dispatcher.
    pub const fn envelope(mut self, envelope: Envelope) -> ResourceDef {
        match envelope {
            Envelope::MultiRequest => self.meta |= MULTI_REQUEST_BIT,
        }
        self
    }

    /// The envelope the resource is ([`ResourceDef::envelope`]), if it wraps requests:
    /// the dispatcher unwraps it itself, the object's handler never sees it.
    pub const fn wraps(&self) -> Option<Envelope> {
        if self.meta & MULTI_REQUEST_BIT != 0 {
            Some(Envelope::MultiRequest)
        } else {
            None
        }
    }

    /// Which instance ids the entry answers to.
    pub const fn instance_rule(&self) -> InstanceRule {
        match self.meta >> INSTANCE_SHIFT {
            0 => InstanceRule::Single,
            1 => InstanceRule::Absent,
            2 => InstanceRule::Existing,
            _ => InstanceRule::Any,
        }
    }

    /// Declares the most data a successful GET answers: at most [`MAX_ANSWER`] bytes, or
    /// [`UNBOUNDED`].
    ///
    /// # Panics
    ///
    /// If `bytes` is above [`MAX_ANSWER`] and not [`UNBOUNDED`]: in a table (a `const`),
    /// the build fails. An object whose answers are larger bounds them itself
    /// ([`Object::answer_bound`]).
    pub const fn answers(mut self, bytes: u16) -> ResourceDef {
        assert!(
            bytes <= MAX_ANSWER || bytes == UNBOUNDED,
            "a declared answer size is at most MAX_ANSWER bytes, or UNBOUNDED"
        );
        let bytes = if bytes == UNBOUNDED {
            ANSWER_MASK
        } else {
            bytes
        };
        self.meta = self.meta & !ANSWER_MASK | bytes;
        self
    }

    /// The most data a successful GET answers, in bytes ([`Object::answer_bound`]);
    /// [`UNBOUNDED`] until declared.
    pub const fn answer(&self) -> u16 {
        match self.meta & ANSWER_MASK {
            ANSWER_MASK => UNBOUNDED,
            bytes => bytes,
        }
    }

    /// The access of `method`.
    pub const fn access(&self, method: Method) -> Access {
        Access::from_bits(self.access >> nibble(method) & ACCESS_BITS)
    }

    /// Whether this build serves `method` on the resource: the method is declared (its
    /// access is not [`Access::Never`]) and not marked not implemented
    /// ([`ResourceDef::not_implemented`], [`ResourceDef::not_implemented_for`]).
    pub const fn implements(&self, method: Method) -> bool {
        !matches!(self.access(method), Access::Never) && self.provides(method)
    }

    /// Whether `method` is not marked not implemented (its access aside).
    pub(crate) const fn provides(&self, method: Method) -> bool {
        self.access & PROVIDED << nibble(method) != 0
    }

    /// Whether this entry answers to `resource` on `instance`.
    pub const fn matches(&self, resource: u16, instance: u16) -> bool {
        self.id == resource
            && match self.instance_rule() {
                InstanceRule::Single => instance == ABSENT || instance == 0,
                InstanceRule::Absent => instance == ABSENT,
                InstanceRule::Existing | InstanceRule::Any => true,
            }
    }
}

impl core::fmt::Debug for ResourceDef {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ResourceDef")
            .field("id", &self.id)
            .field("get", &self.access(Method::Get))
            .field("put", &self.access(Method::Put))
            .field("post", &self.access(Method::Post))
            .field("delete", &self.access(Method::Delete))
            .field("answer", &self.answer())
            .field("instance", &self.instance_rule())
            .field("wraps", &self.wraps())
            .finish()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for ResourceDef {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "ResourceDef {{ id: {}, get: {}, put: {}, post: {}, delete: {}, answer: {} }}",
            self.id,
            self.access(Method::Get),
            self.access(Method::Put),
            self.access(Method::Post),
            self.access(Method::Delete),
            self.answer()
        )
    }
}

/// Finds the entry of `table` for `resource` on `instance` (first match wins).
pub fn find_resource(table: &[ResourceDef], resource: u16, instance: u16) -> Option<&ResourceDef> {
    table.iter().find(|def| def.matches(resource, instance))
}

/// What [`Object::answer_bound`] answers by default: the declared [`ResourceDef::answer`]
/// of a GET the resource serves ([`ResourceDef::implements`]), nothing otherwise.
pub fn default_bound(table: &[ResourceDef], request: &Request<'_>) -> usize {
    if request.method != Method::Get {
        return 0;
    }
    let path = request.path;
    find_resource(table, path.resource, path.instance)
        .filter(|def| def.implements(Method::Get))
        .map_or(0, |def| usize::from(def.answer()))
}

/// Something the port must do after sending the response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Effect {
    /// Restart the device (`POST /3//4`).
    Reboot,
    /// The configuration was reset to the factory default and saved (`POST /3//5`). The
    /// link and the session stay up: the client's configurator goes on configuring on
    /// them. A port may reset its own peripherals.
    FactoryReset,
}

/// Sizes of the frames the device accepts and produces (`/1024//88`, spec decision 10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FrameLimits {
    /// Largest Tap request frame (method byte through payload; APDU header excluded).
    pub max_request: u16,
    /// Largest response (status byte through `90 00`).
    pub max_response: u16,
}

/// What an object sees of the device while it handles one request: the request's
/// security context, the configuration, and the operations it may ask for (a target
/// read or write, a save, a blob append or clear: [`crate::io`]). It never reaches the session, the store or
/// the target itself.
pub struct Context<'a> {
    /// The device's state (one pointer: building a context per request costs little).
    pub(crate) state: &'a mut State,
    pub(crate) now: Instant,
    pub(crate) channel: Channel,
    pub(crate) security: Security,
    /// Logins attempted by this request so far (a multi-request may hold several).
    pub(crate) logins: u8,
    /// What the port is asked to do once the response is sent.
    pub(crate) effect: Option<Effect>,
    /// The request buffer as the port passed it (where a suspended write finds its data).
    pub(crate) request: &'a [u8],
    pub(crate) io: IoCursor,
    /// The device's own target and store when the request runs blocking
    /// ([`crate::Device::handle`]): operations are performed at once, not suspended.
    pub(crate) inline: Option<&'a mut dyn InlineIo>,
    /// The single packet the handler opened, for the dispatcher to run
    /// ([`Context::run_packet`]).
    #[cfg(feature = "packets")]
    pub(crate) packet: Option<crate::packets::Opened>,
    /// Whether the request is an item of a multi-request or of a single packet (which
    /// cannot open a packet: envelopes do not nest).
    #[cfg(feature = "packets")]
    pub(crate) in_item: bool,
    /// The commands of the single packet being run: their address and length (compared,
    /// never dereferenced) and their offset in the output buffer, where an operation of
    /// theirs finds its bytes ([`io::At::Output`]).
    #[cfg(feature = "packets")]
    pub(crate) packet_area: Option<(usize, usize, usize)>,
}

/// A blocking target and store that perform a request's operations at once (the
/// device's own: one pointer in the [`Context`]).
pub(crate) trait InlineIo {
    /// Reads the value of `var` from the target into `out`.
    fn read(&mut self, var: &TargetVar, out: &mut [u8]) -> IoResult;
    /// Writes `data` as the value of `var` in the target.
    fn write(&mut self, var: &TargetVar, data: &[u8]) -> IoResult;
    /// Saves `config` to the store ([`io::save`]).
    fn save(&mut self, config: &Config) -> IoResult;
    /// Appends `data` to `blob` in the store.
    fn append_blob(&mut self, blob: BlobId, data: &[u8]) -> IoResult;
    /// Empties `blob` in the store.
    fn clear_blob(&mut self, blob: BlobId) -> IoResult;
    /// Runs `command` on the target ([`crate::target::TargetIo::command`]): the
    /// answer's length.
    fn command(
        &mut self,
        settings: &TargetSettings,
        command: &TargetCommand,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<usize, ResultCode>;
    /// Writes a chunk's bytes into the packet store ([`io::write_packet`]).
    #[cfg(feature = "packets")]
    fn write_packet(&mut self, offset: u32, data: &[u8]) -> IoResult;
    /// Opens a single packet into `area` ([`crate::packets::open`]).
    #[cfg(feature = "packets")]
    fn open_packet(
        &mut self,
        crypto: &mut dyn crate::crypto::Crypto,
        config: &Config,
        source: crate::packets::PacketSource,
        request: &[u8],
        area: &mut [u8],
    ) -> IoResult;
}

impl Context<'_> {
    /// Where `data` lies for an operation: in the request, or among the commands of the
    /// single packet being run.
    fn locate(&self, data: &[u8]) -> Option<io::At> {
        if let Some(at) = io::offset_in(self.request, data) {
            return Some(io::At::Request(at));
        }
        #[cfg(feature = "packets")]
        if let Some((address, len, offset)) = self.packet_area {
            let start = (data.as_ptr() as usize).checked_sub(address)?;
            if start.checked_add(data.len())? <= len {
                return Some(io::At::Output(offset.checked_add(start)?));
            }
        }
        None
    }

    /// The time of the request.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The device's wall clock now, in Unix seconds ([`crate::WallClock`]): seconds
    /// since boot if nobody set it.
    pub fn unix_time(&self) -> u32 {
        self.state.clock.unix_time(self.now)
    }

    /// Sets the device's wall clock to `unix` seconds now (`PUT /3//13`).
    pub fn set_unix_time(&mut self, unix: u32) {
        self.state.clock.set(unix, self.now);
    }

    /// The channel the request came from.
    pub fn channel(&self) -> Channel {
        self.channel
    }

    /// The request's security context.
    pub fn security(&self) -> Security {
        self.security
    }

    /// On whose behalf the request runs: as admitted, changed by a login or a logout
    /// inside a multi-request.
    pub fn subject(&self) -> Subject {
        self.security.subject
    }

    /// Whether the request comes from a side handler (which cannot change the session).
    pub fn is_side(&self) -> bool {
        matches!(self.security.origin, Origin::Side | Origin::Packet)
    }

    /// The rights of the subject on the data of `bundle`.
    pub fn rights(&self, bundle: Option<u16>) -> Rights {
        acl::rights(&self.state.config, self.subject(), bundle)
    }

    /// Appends the value of variable `id` to `body`, returning its length. An in-device
    /// value is copied at once; a target value is an [`Operation::ReadTarget`] the
    /// request waits on ([`crate::io`]): propagate the error, the handler runs again
    /// once the bytes are in place. `A0` if the value does not fit `body`, or if `body`
    /// is not the request's (or nested in it) and the value is in the target.
    pub fn read_value(&mut self, id: u16, body: &mut Body<'_>) -> Result<usize, ResultCode> {
        let var = self.state.config.variable(id).ok_or(ResultCode::NotFound)?;
        let len = var.value_len().ok_or(ResultCode::NotAcceptable)?;
        if len > body.remaining() {
            return Err(ResultCode::InternalServerError);
        }
        match var.domain() {
            Domain::Target => {
                let settings = TargetSettings::of(&self.state.config);
                let var = TargetVar::of(var, settings).ok_or(ResultCode::NotAcceptable)?;
                // Only a body of the response can receive a read made later: a body over
                // a buffer of the handler's own is refused on every board alike.
                let at = body
                    .response_offset()
                    .ok_or(ResultCode::InternalServerError)?;
                match self.inline.as_mut() {
                    Some(io) => {
                        let out = body
                            .spare()
                            .get_mut(..len)
                            .ok_or(ResultCode::InternalServerError)?;
                        io.read(&var, out)?;
                    }
                    None => self.io.ask(Operation::ReadTarget { var, at })?,
                }
            }
            Domain::InTapStatic | Domain::InTapVolatile => {
                let out = body
                    .spare()
                    .get_mut(..len)
                    .ok_or(ResultCode::InternalServerError)?;
                // Never written: zeros, as the configurator would have padded.
                out.fill(0);
                let n = var.value.len().min(len);
                out[..n].copy_from_slice(&var.value[..n]);
            }
            Domain::Gpio => return Err(ResultCode::NotImplemented),
        }
        body.advance(len)?;
        Ok(len)
    }

    /// Reads `joined` (target variables joined by [`TargetVar::joined`]) in one target
    /// transaction into the first `joined.len()` spare bytes of `body`, their values one
    /// after the other; `body` does not advance. Like [`Context::read_value`], an
    /// operation the request waits on: propagate the error. `Ok(true)`: the bytes have
    /// just arrived there, for the caller to lay out; `Ok(false)`: they arrived before an
    /// earlier run of the handler, which laid them out already (the caller's layout must
    /// be the same on every run).
    pub fn read_joined(
        &mut self,
        joined: &TargetVar,
        body: &mut Body<'_>,
    ) -> Result<bool, ResultCode> {
        let at = body
            .response_offset()
            .ok_or(ResultCode::InternalServerError)?;
        let out = body
            .spare()
            .get_mut(..joined.len())
            .ok_or(ResultCode::InternalServerError)?;
        match self.inline.as_mut() {
            Some(io) => io.read(joined, out).map(|()| true),
            None => self
                .io
                .ask_fresh(Operation::ReadTarget { var: *joined, at }),
        }
    }

    /// Writes `data`, which must be exactly its length, as the value of variable `id`. An
    /// in-device value is stored at once; a target value is an
    /// [`Operation::WriteTarget`] the request waits on: `data` must lie in the request
    /// (the payload of the request or of its item), else `A0`, on every board alike.
    pub fn write_value(&mut self, id: u16, data: &[u8]) -> Result<(), ResultCode> {
        let var = self
            .state
            .config
            .variable_mut(id)
            .ok_or(ResultCode::NotFound)?;
        if Some(data.len()) != var.value_len() {
            return Err(ResultCode::NotAcceptable);
        }
        match var.domain() {
            Domain::Target => {
                let var = TargetVar::of(var, TargetSettings::default())
                    .ok_or(ResultCode::NotAcceptable)?;
                // The settings read once the variable is no longer borrowed mutably.
                let var = TargetVar {
                    settings: TargetSettings::of(&self.state.config),
                    ..var
                };
                // Only bytes of the request (or of the packet being run) can be written
                // later: other bytes are refused on every board alike.
                let at = self.locate(data).ok_or(ResultCode::InternalServerError)?;
                if let Some(io) = self.inline.as_mut() {
                    return io.write(&var, data);
                }
                self.io.ask(Operation::WriteTarget { var, at })
            }
            Domain::InTapStatic | Domain::InTapVolatile => {
                var.value =
                    heapless::Vec::from_slice(data).map_err(|_| ResultCode::NotAcceptable)?;
                Ok(())
            }
            Domain::Gpio => Err(ResultCode::NotImplemented),
        }
    }

    /// Runs `command` on the target with the settings of the configuration, its input
    /// `input` (which must lie in the request, else `A0`), its answer appended to `body`
    /// (`A0` if `body` is not the response's): the answer's length. The answer is
    /// `answer_len` bytes (`A0` if they do not fit), or, for an answer of the target's
    /// length ([`TargetCommand::answer_varies`]), at most `answer_len` and at most what
    /// `body` has room for besides the length trailer ([`crate::io`]), on every board
    /// alike. The command is a [`TargetCommand`] operation the request waits on
    /// ([`crate::io`]): propagate the error, the handler runs again once it is done.
    pub fn target_command(
        &mut self,
        command: TargetCommand,
        input: &[u8],
        answer_len: usize,
        body: &mut Body<'_>,
    ) -> Result<usize, ResultCode> {
        let settings = TargetSettings::of(&self.state.config);
        // The room of the answer, and of its output area (the trailer included).
        let trailer = if command.answer_varies() {
            io::ANSWER_LEN_BYTES
        } else {
            0
        };
        let fits = body
            .remaining()
            .checked_sub(trailer)
            .ok_or(ResultCode::InternalServerError)?;
        if trailer == 0 && answer_len > fits {
            return Err(ResultCode::InternalServerError);
        }
        let room = answer_len.min(fits);
        let area = room.saturating_add(trailer);
        let input_at = self.locate(input).ok_or(ResultCode::InternalServerError)?;
        let output_at = body
            .response_offset()
            .ok_or(ResultCode::InternalServerError)?;
        let len = match self.inline.as_mut() {
            Some(io) => {
                let out = body
                    .spare()
                    .get_mut(..room)
                    .ok_or(ResultCode::InternalServerError)?;
                io.command(&settings, &command, input, out)?
            }
            None => {
                let len16 =
                    |n: usize| u16::try_from(n).map_err(|_| ResultCode::InternalServerError);
                self.io.ask(Operation::Target {
                    command,
                    settings,
                    input_at,
                    input_len: len16(input.len())?,
                    output_at,
                    output_len: len16(area)?,
                })?;
                // Done: the answer is in place, its length in the trailer if it varies.
                match body.spare().get(room..area) {
                    Some(&[hi, lo]) => usize::from(u16::from_be_bytes([hi, lo])),
                    _ => room,
                }
            }
        };
        let len = io::answered(&command, len, room)?;
        body.advance(len)?;
        Ok(len)
    }

    /// Sets whether NFC takes the session over until the next reboot (`POST /1024//24`).
    pub fn override_nfc_priority(&mut self, priority: NfcPriority) {
        self.state.nfc_override = Some(priority);
    }

    /// The NFC priority in force: the override, else the configuration.
    pub fn nfc_priority(&self) -> NfcPriority {
        self.state.nfc_priority()
    }

    /// The configuration image.
    pub fn config(&self) -> &Config {
        &self.state.config
    }

    /// The configuration image, for writes (already authorised by the access check).
    pub fn config_mut(&mut self) -> &mut Config {
        &mut self.state.config
    }

    /// The device's frame sizes.
    pub fn limits(&self) -> FrameLimits {
        self.state.limits()
    }

    /// Logs in with a `POST /1024//0` body. Side handlers cannot log in (`81`). One
    /// request attempts one login at most: a second one in the same multi-request is
    /// refused with `A3` before any check, so a request can neither carry several guesses
    /// nor make the device derive several password hashes.
    pub fn login(&mut self, body: &[u8]) -> Result<(), ResultCode> {
        if self.is_side() {
            return Err(ResultCode::Unauthorized);
        }
        if self.logins > 0 {
            return Err(ResultCode::ServiceUnavailable);
        }
        self.logins = 1;
        // A logout earlier in the same multi-request freed the session: this channel
        // takes it again before logging in.
        let state = &mut *self.state;
        if state.session.owner().is_none() {
            let nfc = state.nfc_priority();
            state.session.admit(self.channel, self.now, nfc)?;
        }
        let result = state
            .session
            .login(&state.config, &mut state.guard, body, self.now);
        self.security.subject = Subject::new(&state.config, state.session.user());
        result
    }

    /// The first step of a SCRAM login (`GET /1024//40`,
    /// [`crate::session::Session::scram_begin`]): the device's nonce, the salt and the
    /// hash iterations (`iterations`, from `/1024//42`). Side handlers cannot log in
    /// (`81`); `A3` while login is locked out or before the device is seeded.
    #[cfg(feature = "crypto")]
    pub fn scram_begin(&mut self, body: &[u8], iterations: u32) -> Result<[u8; 12], ResultCode> {
        if self.is_side() {
            return Err(ResultCode::Unauthorized);
        }
        let State {
            session,
            config,
            guard,
            drbg,
            crypto,
            ..
        } = &mut *self.state;
        let nonce: [u8; 4] = drbg.draw(&mut crypto.get())?;
        let random = |name: &[u8]| {
            let [n0, n1, n2, n3] = nonce;
            let [d0, d1, d2, d3] = drbg.decoy_salt(&mut crypto.get(), name);
            [n0, n1, n2, n3, d0, d1, d2, d3]
        };
        session.scram_begin(config, guard, body, self.now, random, iterations)
    }

    /// The second step of a SCRAM login (`GET /1024//41`): the device's proof, once the
    /// client's is right; the profile is logged in, its rights granted in the tunnel
    /// only (to frames under the new key: the rest of this request runs anonymous), and
    /// the encrypted session starts with the key both sides derive. A wrong
    /// proof is `81` and counts towards the lock-out; one login a request.
    #[cfg(feature = "crypto")]
    pub fn scram_finish(&mut self, proof: &[u8]) -> Result<crate::auth::Secret16, ResultCode> {
        if self.is_side() {
            return Err(ResultCode::Unauthorized);
        }
        if self.logins > 0 {
            return Err(ResultCode::ServiceUnavailable);
        }
        self.logins = 1;
        let state = &mut *self.state;
        let answer =
            state
                .session
                .scram_finish(&mut state.crypto.get(), &mut state.guard, proof, self.now);
        // The rights of the rest of the request (the items after it in a multi-request):
        // a SCRAM login's are granted to frames under its own key only, and this request
        // came in clear or under another key (the anonymous one of `/1024//47` travels in
        // clear: whoever read it could wrap the client's proof with requests of theirs).
        if answer.is_ok() {
            self.security.subject = Subject::new(&state.config, state.session.user_for(false));
        }
        answer
    }

    /// `GET /1024//45`: the device's new IV for the client's `client_iv` (16 bytes).
    /// Inside the tunnel both IVs switch once this request is answered (its answer still
    /// under the old ones); in clear, at once. `A3` before the device is seeded; `86` for
    /// another length; `81` without an encrypted session, or in clear in a SCRAM one.
    #[cfg(feature = "crypto")]
    pub fn exchange_iv(&mut self, client_iv: &[u8]) -> Result<[u8; 16], ResultCode> {
        if self.is_side() || !self.state.session.secure.has_key() {
            return Err(ResultCode::Unauthorized);
        }
        // The IVs of a SCRAM session's tunnel are exchanged inside it (§10.4): a clear
        // request runs anonymous, and an IV of an attacker's choosing would turn the
        // client's next frame into a request of theirs (CBC XORs the IV into the first
        // block, the CRC is linear) run with the SCRAM rights.
        if self.state.sealing.is_none() && self.state.session.secure.is_scram() {
            return Err(ResultCode::Unauthorized);
        }
        let client: [u8; 16] = client_iv
            .try_into()
            .map_err(|_| ResultCode::NotAcceptable)?;
        let state = &mut *self.state;
        let device: [u8; 16] = state.drbg.draw(&mut state.crypto.get())?;
        match state.sealing.as_mut() {
            Some(sealing) => sealing.then = Some((client, device)),
            None => state.session.secure.set_ivs(client, device),
        }
        Ok(device)
    }

    /// `GET /1024//47`: a new session key, sent in clear, for an encrypted session that
    /// grants nothing more than anonymous (decision 6): a SCRAM login's rights end with
    /// its key. `A3` before the device is seeded.
    #[cfg(feature = "crypto")]
    pub fn new_session_key(&mut self) -> Result<crate::auth::Secret16, ResultCode> {
        if self.is_side() {
            return Err(ResultCode::Unauthorized);
        }
        let state = &mut *self.state;
        let key = crate::auth::Secret16(state.drbg.draw(&mut state.crypto.get())?);
        if state.session.secure.is_scram() {
            state.session.logout_keeping_channel();
            self.security.subject = Subject::ANONYMOUS;
        }
        state.session.secure.start(&key, false);
        Ok(key)
    }

    /// Logs out and ends the session. Side handlers cannot end it (`81`).
    pub fn logout(&mut self) -> Result<(), ResultCode> {
        if self.is_side() {
            return Err(ResultCode::Unauthorized);
        }
        self.state.session.logout();
        self.security.subject = Subject::ANONYMOUS;
        Ok(())
    }

    /// How long the session may stay idle, `None` if forever.
    pub fn idle_limit(&self) -> Option<Duration> {
        self.state.session.idle_limit(&self.state.config)
    }

    /// Saves the configuration image (the configurator's save command): an
    /// [`Operation::SaveConfig`] the request waits on; `A4` if the flash write failed,
    /// `A7` if the image does not fit.
    pub fn save_config(&mut self) -> Result<(), ResultCode> {
        match self.inline.as_mut() {
            Some(inline) => inline.save(&self.state.config),
            None => self.io.ask(Operation::SaveConfig),
        }
    }

    /// Appends `data` to `blob` in the store (a chunk of a certificate, of the JVM code:
    /// [`crate::blob`]): an [`Operation::AppendBlob`] the request waits on. `data` must
    /// lie in the request (the payload of the request or of its item), else `A0`; `A7`
    /// if the blob's region has no room for it (nothing is written) or the store keeps
    /// no such blob, `A4` if the flash failed.
    pub fn append_blob(&mut self, blob: BlobId, data: &[u8]) -> Result<(), ResultCode> {
        let at = self.locate(data).ok_or(ResultCode::InternalServerError)?;
        let len = u16::try_from(data.len()).map_err(|_| ResultCode::NvmFull)?;
        match self.inline.as_mut() {
            Some(inline) => inline.append_blob(blob, data),
            None => self.io.ask(Operation::AppendBlob { blob, at, len }),
        }
    }

    /// Empties `blob` in the store: an [`Operation::ClearBlob`] the request waits on;
    /// `A4` if the flash failed.
    pub fn clear_blob(&mut self, blob: BlobId) -> Result<(), ResultCode> {
        match self.inline.as_mut() {
            Some(inline) => inline.clear_blob(blob),
            None => self.io.ask(Operation::ClearBlob { blob }),
        }
    }

    /// Restores the factory configuration, saves it, and asks the port for
    /// [`Effect::FactoryReset`]. Done again when the save completes, which gives the same
    /// configuration.
    pub fn factory_reset(&mut self) -> Result<(), ResultCode> {
        // In place: a whole configuration is never built on the stack.
        (self.state.factory)(&mut self.state.config);
        self.save_config()?;
        self.request_effect(Effect::FactoryReset);
        Ok(())
    }

    /// The 4 bytes of `GET /1024//81`: the packet store's state (§11.4).
    #[cfg(feature = "packets")]
    pub fn packet_store_info(&self) -> [u8; 4] {
        self.state.packet_store.info()
    }

    /// Loads the chunk `body` of `POST /1024//82` into the packet store (§11.3): an
    /// [`Operation::WritePacket`] the request waits on for the bytes the store does not
    /// hold yet. A chunk at offset 0 starts a new packet; one sent again after a lost
    /// answer is accepted, its bytes not written twice. `86` for a malformed chunk or
    /// one after a gap, `A7` past the store's room or without a store, `A4` if the
    /// flash failed (the store is then in error until the chunk is sent again).
    /// `body` must lie in the request.
    #[cfg(feature = "packets")]
    pub fn load_packet_chunk(&mut self, body: &[u8]) -> Result<(), ResultCode> {
        use crate::crypto::chunk::{Chunk, ExecuteCrc, StoreState};
        let chunk = Chunk::parse(body)?;
        let store = &mut self.state.packet_store;
        if store.state() == StoreState::Unavailable {
            return Err(ResultCode::NvmFull);
        }
        let loaded = if chunk.offset == 0 { 0 } else { store.loaded() };
        let skip = loaded
            .checked_sub(chunk.offset)
            .ok_or(crate::crypto::packet::PacketError::ChunkGap)?;
        let end = chunk
            .end()
            .ok_or(crate::crypto::packet::PacketError::StoreFull)?;
        if end > store.capacity() {
            return Err(ResultCode::NvmFull);
        }
        let fresh = usize::try_from(skip)
            .ok()
            .and_then(|skip| chunk.data.get(skip..))
            .unwrap_or(&[]);
        if !fresh.is_empty() {
            // In error until the write is known to be done.
            store.write_failed();
            match self.inline.as_mut() {
                Some(io) => io.write_packet(loaded, fresh)?,
                None => {
                    let at = self.locate(fresh).ok_or(ResultCode::InternalServerError)?;
                    let len = u16::try_from(fresh.len()).map_err(|_| ResultCode::NvmFull)?;
                    self.io.ask(Operation::WritePacket {
                        offset: loaded,
                        at,
                        len,
                    })?;
                }
            }
        }
        let store = &mut self.state.packet_store;
        if chunk.offset == 0 {
            store.executed();
            self.state.packet_crc = ExecuteCrc::new();
        }
        store.load(&chunk)?;
        self.state.packet_crc.update(fresh);
        Ok(())
    }

    /// Executes the packet in the store (`POST /1024//83`, §11.4) if `crc` is the
    /// execute CRC of what it holds: the packet is opened (an [`Operation::OpenPacket`]
    /// the request waits on) into the spare room of `body`, and the store is empty
    /// again, whatever the outcome. `86` for a wrong CRC or an empty store, `A7` without
    /// a store (no room for a packet); then the errors of [`crate::packets::open`]. Hand the result to
    /// [`Context::run_packet`].
    #[cfg(feature = "packets")]
    pub fn execute_stored_packet(
        &mut self,
        crc: u32,
        body: &mut Body<'_>,
    ) -> Result<crate::packets::Opened, ResultCode> {
        use crate::crypto::chunk::{ExecuteCrc, StoreState};
        use crate::packets::PacketSource;
        // A packet inside a multi-request or a packet would never run: refused first,
        // the store left as it is.
        if self.in_item {
            return Err(ResultCode::BadRequest);
        }
        // Run again once the packet was opened: the store was emptied the first time.
        if self.inline.is_none() && self.io.next_is_done() {
            return self.open_packet(PacketSource::Store { len: 0 }, body);
        }
        let store = &mut self.state.packet_store;
        let state = store.state();
        let len = store.loaded();
        let loaded = matches!(state, StoreState::Used | StoreState::Full)
            && self.state.packet_crc.matches(crc);
        store.executed();
        self.state.packet_crc = ExecuteCrc::new();
        match (state, loaded) {
            (StoreState::Unavailable, _) => Err(ResultCode::NvmFull),
            (_, false) => Err(crate::crypto::packet::PacketError::ExecuteCrc.into()),
            (_, true) => self.open_packet(PacketSource::Store { len }, body),
        }
    }

    /// Executes the packet `packet` (`POST /1024//80`: the request's payload) — opened
    /// like [`Context::execute_stored_packet`], into the spare room of `body`.
    #[cfg(feature = "packets")]
    pub fn execute_packet(
        &mut self,
        packet: &[u8],
        body: &mut Body<'_>,
    ) -> Result<crate::packets::Opened, ResultCode> {
        if self.in_item {
            return Err(ResultCode::BadRequest);
        }
        let at = io::offset_in(self.request, packet).ok_or(ResultCode::InternalServerError)?;
        let len = u16::try_from(packet.len()).map_err(|_| ResultCode::NotAcceptable)?;
        self.open_packet(crate::packets::PacketSource::Request { at, len }, body)
    }

    /// Opens the packet at `source` into the spare room of `body` (not advanced). Its
    /// callers have refused a packet inside an envelope.
    #[cfg(feature = "packets")]
    fn open_packet(
        &mut self,
        source: crate::packets::PacketSource,
        body: &mut Body<'_>,
    ) -> Result<crate::packets::Opened, ResultCode> {
        let room = body.remaining().min(usize::from(u16::MAX));
        match self.inline.as_mut() {
            Some(io) => {
                let area = body
                    .spare()
                    .get_mut(..room)
                    .ok_or(ResultCode::InternalServerError)?;
                let state = &mut *self.state;
                let mut crypto = state.crypto.get();
                io.open_packet(&mut crypto, &state.config, source, self.request, area)?;
            }
            None => {
                let at = body
                    .response_offset()
                    .ok_or(ResultCode::InternalServerError)?;
                let room = u16::try_from(room).map_err(|_| ResultCode::InternalServerError)?;
                self.io.ask(Operation::OpenPacket { source, at, room })?;
            }
        }
        let area = body.spare().get(..room).unwrap_or(&[]);
        crate::packets::Opened::read(area).ok_or(ResultCode::InternalServerError)
    }

    /// Has the dispatcher run the commands of the packet `opened` once the handler
    /// returns success: in order, with the rights of its sender, their answers in the
    /// body as a multi-request's (decision 7). `opened` must be what
    /// [`Context::execute_packet`] or [`Context::execute_stored_packet`] gave for this
    /// body, which the handler leaves empty.
    #[cfg(feature = "packets")]
    pub fn run_packet(&mut self, opened: crate::packets::Opened) {
        self.packet = Some(opened);
    }

    /// Asks the port to do something once the response is sent.
    pub fn request_effect(&mut self, effect: Effect) {
        self.effect = Some(effect);
    }
}

/// The result of a handler: a success code with data in the body, or an error code
/// (any data written is discarded).
pub type HandlerResult = Result<ResultCode, ResultCode>;

/// An lwM2M object.
pub trait Object {
    /// Object id (3, 1024, ...).
    fn id(&self) -> u16;

    /// The resource table.
    fn resources(&self) -> &'static [ResourceDef];

    /// The access of `method` on a resource the object declares outside
    /// [`Object::resources`], in a more compact form than a table entry: one this build
    /// provides no method of (`lwm2m-objects` keeps so the client's resources it does not
    /// implement). The dispatcher asks when the table has no entry for `resource` on
    /// `instance`, and refuses the request as it would on a table entry that provides
    /// nothing: `85` for [`Access::Never`], `81` to a subject without the right (asked
    /// with no bundle for [`Access::Read`] and [`Access::Write`]), `A1` otherwise. The
    /// default, `None`: no such resource (`84`).
    fn unlisted(&self, _resource: u16, _instance: u16, _method: Method) -> Option<Access> {
        None
    }

    /// Whether `instance` exists (asked for [`InstanceRule::Existing`] entries).
    fn instance_exists(&self, _ctx: &Context<'_>, _instance: u16) -> bool {
        true
    }

    /// The bundle whose ACL protects `instance` (asked for [`Access::Read`] and
    /// [`Access::Write`] entries); `None`: administrator only.
    fn owning_bundle(&self, _config: &Config, _instance: u16) -> Option<u16> {
        None
    }

    /// The most data a success of `request` can answer, in bytes. The executor adds up
    /// the bounds of the items of a multi-request and refuses the whole request, before
    /// any item runs, when the answers might not fit the response: a request is never
    /// half executed.
    ///
    /// The default reads the table: [`ResourceDef::answer`] for GET, nothing for the
    /// other methods (writes, executes and deletes answer a status only). An object whose
    /// answers depend on the configuration (values, TLV lists) overrides it; an error
    /// carries no data.
    fn answer_bound(&self, _config: &Config, request: &Request<'_>) -> usize {
        default_bound(self.resources(), request)
    }

    /// Whether [`Object::answer_bound`] of `request` depends on the configuration (the
    /// size of a variable's value, the members of a bundle): a multi-request in which an
    /// earlier item may change the configuration that way cannot know the bound before
    /// it runs, and is refused.
    fn bound_depends_on_config(&self, _request: &Request<'_>) -> bool {
        false
    }

    /// Whether a success of `request` may change bounds that depend on the
    /// configuration ([`Object::bound_depends_on_config`]): a variable's type, quantity or
    /// bundle, its creation or deletion.
    fn changes_bounds(&self, _request: &Request<'_>) -> bool {
        false
    }

    /// The device took `config` (at boot, or loaded from its store): the object drops
    /// what of its own section this build cannot serve (values of settings it leaves
    /// out, which would take room and could never be read or changed).
    fn config_loaded(&mut self, _config: &mut Config) {}

    /// Handles a request that passed the table lookup and the access check.
    fn handle(
        &mut self,
        ctx: &mut Context<'_>,
        request: &Request<'_>,
        body: &mut Body<'_>,
    ) -> HandlerResult;
}

/// The set of objects of a device, searched by id. Implemented for tuples of objects
/// (up to 12) and for slices of `&mut dyn Object`.
pub trait ObjectSet {
    /// The object with this id.
    fn find(&mut self, id: u16) -> Option<&mut dyn Object>;

    /// Tells every object that the device took `config` ([`Object::config_loaded`]).
    fn config_loaded(&mut self, config: &mut Config);
}

impl ObjectSet for [&mut dyn Object] {
    fn find(&mut self, id: u16) -> Option<&mut dyn Object> {
        self.iter_mut()
            .find(|o| o.id() == id)
            .map(|o| &mut **o as &mut dyn Object)
    }

    fn config_loaded(&mut self, config: &mut Config) {
        for object in self.iter_mut() {
            object.config_loaded(config);
        }
    }
}

macro_rules! tuple_object_set {
    ($($name:ident : $index:tt),+) => {
        impl<$($name: Object),+> ObjectSet for ($($name,)+) {
            fn find(&mut self, id: u16) -> Option<&mut dyn Object> {
                $(if self.$index.id() == id {
                    return Some(&mut self.$index);
                })+
                None
            }

            fn config_loaded(&mut self, config: &mut Config) {
                $(self.$index.config_loaded(config);)+
            }
        }
    };
}

tuple_object_set!(A: 0);
tuple_object_set!(A: 0, B: 1);
tuple_object_set!(A: 0, B: 1, C: 2);
tuple_object_set!(A: 0, B: 1, C: 2, D: 3);
tuple_object_set!(A: 0, B: 1, C: 2, D: 3, E: 4);
tuple_object_set!(A: 0, B: 1, C: 2, D: 3, E: 4, F: 5);
tuple_object_set!(A: 0, B: 1, C: 2, D: 3, E: 4, F: 5, G: 6);
tuple_object_set!(A: 0, B: 1, C: 2, D: 3, E: 4, F: 5, G: 6, H: 7);
tuple_object_set!(A: 0, B: 1, C: 2, D: 3, E: 4, F: 5, G: 6, H: 7, I: 8);
tuple_object_set!(A: 0, B: 1, C: 2, D: 3, E: 4, F: 5, G: 6, H: 7, I: 8, J: 9);
tuple_object_set!(A: 0, B: 1, C: 2, D: 3, E: 4, F: 5, G: 6, H: 7, I: 8, J: 9, K: 10);
tuple_object_set!(A: 0, B: 1, C: 2, D: 3, E: 4, F: 5, G: 6, H: 7, I: 8, J: 9, K: 10, L: 11);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_keeps_its_rule_methods_and_envelope_in_six_bytes() {
        assert_eq!(core::mem::size_of::<ResourceDef>(), 6);
        let rules = [
            (ResourceDef::single(7), InstanceRule::Single),
            (ResourceDef::absent(7), InstanceRule::Absent),
            (ResourceDef::existing(7), InstanceRule::Existing),
            (ResourceDef::any(7), InstanceRule::Any),
        ];
        for (def, rule) in rules {
            let def = def
                .get(Access::Anyone)
                .put(Access::Admin)
                .post(Access::User);
            for def in [def, def.envelope(Envelope::MultiRequest)] {
                assert_eq!(def.instance_rule(), rule);
                assert!(def.implements(Method::Get) && def.implements(Method::Put));
                assert!(def.implements(Method::Post) && !def.implements(Method::Delete));
                let def = def.not_implemented_for(Method::Put);
                assert!(def.implements(Method::Get) && !def.implements(Method::Put));
                assert_eq!(def.instance_rule(), rule);
                let none = def.not_implemented();
                assert!(!none.implements(Method::Get) && !none.implements(Method::Post));
                assert_eq!((none.instance_rule(), none.wraps()), (rule, def.wraps()));
            }
            assert_eq!(def.wraps(), None);
            assert_eq!(
                def.envelope(Envelope::MultiRequest).wraps(),
                Some(Envelope::MultiRequest)
            );
        }
    }

    #[test]
    fn implemented_is_declared_per_method() {
        let def = ResourceDef::single(3)
            .get(Access::Anyone)
            .put(Access::Admin);
        assert!(def.implements(Method::Get) && def.implements(Method::Put));
        // A method the entry does not declare is not served either.
        assert!(!def.implements(Method::Post) && !def.implements(Method::Delete));

        let def = def.answers(2).not_implemented_for(Method::Put);
        assert!(def.implements(Method::Get) && !def.implements(Method::Put));
        assert_eq!(def.answer(), 2);
        assert_eq!(def.access(Method::Put), Access::Admin, "still declared");

        let def = def.not_implemented_for(Method::Get);
        assert!(!def.implements(Method::Get));
        assert_eq!(def.answer(), 0, "a GET not provided answers nothing");

        let def = ResourceDef::single(5)
            .get(Access::Admin)
            .post(Access::Admin)
            .not_implemented();
        assert!(METHODS.iter().all(|&m| !def.implements(m)));
        assert_eq!(def.answer(), 0);
    }

    #[test]
    fn every_access_and_answer_size_reads_back() {
        use Access::*;
        let all = [Never, Anyone, User, Admin, SelfOrAdmin, Read, Write];
        for (i, &first) in all.iter().enumerate() {
            // Each method its own access, set in any order, over an envelope and a rule.
            let [get, put, post, delete] = [0, 2, 4, 6].map(|k| all[(i + k) % all.len()]);
            let def = ResourceDef::existing(0xFFFF)
                .envelope(Envelope::MultiRequest)
                .delete(delete)
                .post(post)
                .put(put)
                .get(get)
                .get(first);
            assert_eq!(
                METHODS.map(|m| def.access(m)),
                [first, put, post, delete],
                "{def:?}"
            );
            assert_eq!(def.id, 0xFFFF);
            assert_eq!(def.instance_rule(), InstanceRule::Existing);
            assert_eq!(def.wraps(), Some(Envelope::MultiRequest));
            assert_eq!(def.answer(), UNBOUNDED);
        }
        for (bytes, read) in [(0, 0), (1, 1), (MAX_ANSWER, 8190), (UNBOUNDED, UNBOUNDED)] {
            let def = ResourceDef::any(3).get(Access::Write).answers(bytes);
            assert_eq!(def.answer(), read);
            assert_eq!(def.instance_rule(), InstanceRule::Any);
            assert_eq!(def.wraps(), None);
            assert_eq!(def.access(Method::Get), Access::Write);
        }
    }

    #[test]
    #[should_panic(expected = "at most MAX_ANSWER")]
    fn a_declared_answer_above_the_largest_is_refused() {
        // Not silently made unbounded (which would refuse a multi-request holding it):
        // in a table this is a build error.
        let _ = ResourceDef::single(0).answers(MAX_ANSWER + 1);
    }

    const METHODS: [Method; 4] = [Method::Get, Method::Put, Method::Post, Method::Delete];
}
