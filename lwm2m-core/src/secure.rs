//! The encrypted session (feature `crypto`; `protocol.md` §9, §10; decision 6): what the
//! session keeps of it, and the tunnel's two ends around the engine.
//!
//! - [`Secure`], in the [`Session`](crate::session::Session): the session key (from a
//!   SCRAM login, or the anonymous key of `/1024//47`), the two IVs, the id of the last
//!   frame accepted, whether the login was SCRAM (its rights are granted inside the tunnel
//!   only), a SCRAM login between its two steps. Wiped whenever the session ends.
//! - [`Device::unseal`](crate::Device::unseal), before the engine: a tunnel request
//!   (`GET /1024//48`, `GET /1024//44`) of the session's owner is decrypted in place, its
//!   CRC and frame id checked, and rewritten as the plain APDU of its inner frame; the
//!   engine runs it as any other, with the session's rights (`Sealing` remembers it).
//! - `seal`, after the engine: the answer to such a request is encrypted in place into
//!   the answer the client expects (`00 | [device IV] | sealed frame | 90 00`), with the
//!   key and IV the request came under, so that a logout or an IV exchange inside the
//!   tunnel takes effect after its own answer.
//! - [`Drbg`]: the device's random numbers (nonces, IVs, the anonymous key), HMAC-DRBG
//!   (NIST SP 800-90A §10.1.2) over HMAC-SHA256, seeded by the port
//!   ([`Device::seed`](crate::Device::seed)); unseeded, nothing that needs it runs (`A3`).

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::auth::{ScramRecord, Secret16};
use crate::crypto::scram::Nonces;
use crate::crypto::{tunnel, Crypto, Iv, Software, BLOCK};
use crate::session::ChannelId;
use crate::wire::{Method, Path, Request, ResultCode, APDU_HEADER_LEN, STATUS_WORD_OK};

/// `/1024//48`: the tunnel.
pub const TUNNEL: u16 = 48;
/// `/1024//44`: the tunnel with an IV per request.
pub const TUNNEL_WITH_IV: u16 = 44;
/// Bytes an answer grows by when sealed, at most: outer status, device IV, frame header,
/// CRC, padding, outer status word.
pub const SEAL_OVERHEAD: usize = 1 + BLOCK + tunnel::HEADER_LEN + tunnel::CRC_LEN + (BLOCK - 1) + 2;

/// What the session keeps of the encrypted session.
#[derive(Default, Zeroize, ZeroizeOnDrop)]
pub struct Secure {
    /// The session key, once a SCRAM login or `/1024//47` gave one.
    key: Option<[u8; BLOCK]>,
    /// The client's IV (it encrypts requests).
    iv_request: Iv,
    /// The device's IV (it encrypts answers).
    iv_answer: Iv,
    /// The IVs before the last exchange of `/1024//45`: a client that did not take the
    /// new ones up (the client library's logout right after an exchange builds its frame
    /// with the old ones; a failed exchange leaves them) is still understood, and both
    /// sides go back to them.
    previous: Option<(Iv, Iv)>,
    /// The id of the last frame accepted under this key.
    last_id: Option<u16>,
    /// A `/1024//48` frame was accepted under this key: `/1024//44` is refused from then
    /// on. The CRC is no MAC: a captured `/48` frame resent as `/44` with an IV of the
    /// attacker's choice would flip bits of its first block (its method and path) at will.
    tunnel_48: bool,
    /// The logged-in user's rights came from a SCRAM login: granted inside the tunnel only.
    scram: bool,
    /// A SCRAM login between `/1024//40` and `/1024//41`.
    login: Option<PendingLogin>,
}

impl core::fmt::Debug for Secure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Secure")
            .field("key", &self.key.is_some())
            .field("last_id", &self.last_id)
            .field("scram", &self.scram)
            .finish_non_exhaustive()
    }
}

/// The first step of a SCRAM login: whose record, and the nonces.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct PendingLogin {
    /// The profile named, if it has a SCRAM record (else the proof fails).
    pub(crate) profile: Option<u16>,
    /// Its record (a dummy one for a name without any: every login costs the same).
    pub(crate) record: ScramRecord,
    /// The nonces.
    #[zeroize(skip)]
    pub(crate) nonces: Nonces,
}

impl Secure {
    /// No key, no login under way.
    pub const fn new() -> Secure {
        Secure {
            key: None,
            iv_request: [0; BLOCK],
            iv_answer: [0; BLOCK],
            previous: None,
            last_id: None,
            tunnel_48: false,
            scram: false,
            login: None,
        }
    }

    /// Forgets everything, wiping it; nothing to do (and no wiping paid for) when there
    /// is nothing: a session that never had a key or a login under way.
    #[inline]
    pub(crate) fn clear(&mut self) {
        if self.key.is_some() || self.login.is_some() || self.scram {
            self.wipe();
        }
    }

    /// [`Secure::clear`] of a session that had something.
    #[cold]
    #[inline(never)]
    fn wipe(&mut self) {
        *self = Secure::new();
    }

    /// Whether the session has a key (the client may tunnel).
    pub fn has_key(&self) -> bool {
        self.key.is_some()
    }

    /// Whether the logged-in user's rights came from a SCRAM login.
    pub fn is_scram(&self) -> bool {
        self.scram
    }

    /// A new key for the session (SCRAM login, `/1024//47`): the IVs back to zeros, no
    /// frame accepted yet; `scram` says whose rights the tunnel carries.
    pub(crate) fn start(&mut self, key: &Secret16, scram: bool) {
        self.zeroize();
        self.key = Some(key.0);
        self.scram = scram;
    }

    /// The SCRAM login waiting for its proof, taken.
    pub(crate) fn take_login(&mut self) -> Option<PendingLogin> {
        self.login.take()
    }

    /// A SCRAM login waits for its proof.
    pub(crate) fn set_login(&mut self, login: PendingLogin) {
        self.login = Some(login);
    }

    /// Both IVs, from now on (an IV exchange), the ones before kept as the previous.
    pub(crate) fn set_ivs(&mut self, request: Iv, answer: Iv) {
        self.previous = Some((self.iv_request, self.iv_answer));
        self.iv_request = request;
        self.iv_answer = answer;
    }
}

/// The answer to seal for the request [`Device::unseal`](crate::Device::unseal) opened,
/// or the refusal to answer in its place.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct Sealing {
    /// The channel of the request.
    #[zeroize(skip)]
    pub(crate) channel: ChannelId,
    /// What the answer is.
    #[zeroize(skip)]
    pub(crate) kind: SealKind,
    /// The frame id to echo.
    pub(crate) id: u16,
    /// The key of the request.
    pub(crate) key: [u8; BLOCK],
    /// The IV the answer is encrypted from.
    pub(crate) iv: Iv,
    /// IVs the request switches to once answered (`/1024//45` in the tunnel).
    pub(crate) then: Option<(Iv, Iv)>,
}

/// What [`Sealing`] answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SealKind {
    /// A `/1024//48` request: the sealed frame.
    Frame,
    /// A `/1024//44` request: the device's IV, then the sealed frame.
    FrameWithIv,
    /// The frame did not open, or replayed: this status, in clear.
    Refused(ResultCode),
}

/// Opens the tunnel request in `buf` (a whole APDU) in place, if it is one: the plain APDU
/// of its inner frame and the answer to seal, or the refusal; `None` for any other
/// request (it runs as it is).
pub(crate) fn unseal<C: Crypto>(
    crypto: &mut C,
    secure: &mut Secure,
    channel: ChannelId,
    answer_iv: impl FnOnce() -> Option<Iv>,
    buf: &mut [u8],
) -> Option<(usize, Sealing)> {
    let request = Request::parse_apdu(buf).ok()?;
    let with_iv = match (request.method, request.path) {
        (Method::Get, p) if p == Path::single(1024, TUNNEL) => false,
        (Method::Get, p) if p == Path::single(1024, TUNNEL_WITH_IV) => true,
        _ => return None,
    };
    let key = secure.key?;
    let whole = buf.len();
    let refused = |code| {
        Some((
            whole,
            Sealing {
                channel,
                kind: SealKind::Refused(code),
                id: 0,
                key: [0; BLOCK],
                iv: [0; BLOCK],
                then: None,
            },
        ))
    };
    if with_iv && secure.tunnel_48 {
        warn!("/1024//44 after /1024//48 under one key: refused");
        return refused(ResultCode::Unauthorized);
    }
    let payload = buf.get_mut(APDU_HEADER_LEN + 7..)?;
    // The IVs a frame may come under: its own (`/44`), else the current ones, then the
    // previous ones.
    let (ivs, frame) = if with_iv {
        let (iv, frame) = payload.split_first_chunk_mut::<BLOCK>()?;
        ([*iv, *iv], frame)
    } else {
        let previous = secure
            .previous
            .map_or(secure.iv_request, |(request, _)| request);
        ([secure.iv_request, previous], payload)
    };
    let tries = if with_iv || secure.previous.is_none() {
        1
    } else {
        2
    };
    // The device's IV for a `/44` answer, drawn before anything changes.
    let answer_iv = match with_iv {
        true => match answer_iv() {
            Some(iv) => iv,
            None => return refused(ResultCode::ServiceUnavailable),
        },
        false => secure.iv_answer,
    };
    let (opened, which) = match tunnel::open_with_any(crypto, &key, &ivs[..tries], frame) {
        Ok(opened) => opened,
        Err(err) => {
            warn!("tunnel frame refused: {:?}", err);
            return refused(ResultCode::BadRequest);
        }
    };
    if !tunnel::is_newer(opened.id, secure.last_id) {
        warn!("tunnel frame {} replayed", opened.id);
        frame.zeroize();
        return refused(ResultCode::Unauthorized);
    }
    secure.last_id = Some(opened.id);
    secure.tunnel_48 |= !with_iv;
    let mut answer_iv = answer_iv;
    if with_iv {
        // The last IVs of `/44` stay in force for later `/48` frames (decision 6).
        secure.iv_request = ivs[0];
        secure.iv_answer = answer_iv;
        secure.previous = None;
    } else if which == 1 {
        // The client is on the IVs before the last exchange: both sides go back to them.
        if let Some((request, answer)) = secure.previous.take() {
            secure.iv_request = request;
            secure.iv_answer = answer;
            answer_iv = answer;
        }
    }
    let inner = frame.get(opened.inner.clone())?;
    let len = inner.len();
    let ins = match inner.first() {
        Some(&1) => 0xCA,
        _ => 0xDA,
    };
    // The inner frame moves down to follow a plain APDU header.
    let start = APDU_HEADER_LEN + 7 + usize::from(with_iv) * BLOCK + opened.inner.start;
    let end = start + len;
    let region = buf.get_mut(..end)?;
    crate::wire::shift_down(region.get_mut(APDU_HEADER_LEN..)?, start - APDU_HEADER_LEN);
    let header = region.get_mut(..APDU_HEADER_LEN)?;
    header.copy_from_slice(&[0xA2, ins, 0, 0, (len % 256) as u8]);
    // What followed the inner frame (padding, CRC, the old bytes) is wiped.
    if let Some(rest) = buf.get_mut(APDU_HEADER_LEN + len..) {
        rest.zeroize();
    }
    let sealing = Sealing {
        channel,
        kind: if with_iv {
            SealKind::FrameWithIv
        } else {
            SealKind::Frame
        },
        id: opened.id,
        key,
        iv: answer_iv,
        then: None,
    };
    Some((APDU_HEADER_LEN + len, sealing))
}

/// Seals the answer of `len` bytes at the start of `out` in place, as `sealing` says:
/// the length of the sealed answer (0 if `out` has no room: the answer is lost, never
/// sent in clear).
pub(crate) fn seal<C: Crypto>(
    crypto: &mut C,
    sealing: &Sealing,
    out: &mut [u8],
    len: usize,
) -> usize {
    let iv_len = match sealing.kind {
        SealKind::Refused(_) => return len,
        SealKind::Frame => 0,
        SealKind::FrameWithIv => BLOCK,
    };
    let Some(total) = tunnel::sealed_len(len) else {
        out.zeroize();
        return 0;
    };
    let front = 1 + iv_len + tunnel::HEADER_LEN;
    if out.len() < 1 + iv_len + total + STATUS_WORD_OK.len() || len > out.len() {
        out.zeroize();
        return 0;
    }
    // The answer moves up behind the outer status, the IV and the frame header.
    crate::wire::shift_up(out, len, front);
    let sealed = match out.get_mut(1 + iv_len..) {
        Some(frame) => tunnel::seal(crypto, &sealing.key, &sealing.iv, sealing.id, frame, len),
        None => Err(tunnel::TunnelError::Length),
    };
    let Ok(sealed) = sealed else {
        out.zeroize();
        return 0;
    };
    if let Some(first) = out.first_mut() {
        *first = ResultCode::Ok.as_u8();
    }
    if let Some(iv) = out.get_mut(1..1 + iv_len) {
        iv.copy_from_slice(&sealing.iv[..iv_len]);
    }
    let end = 1 + iv_len + sealed;
    if let Some(sw) = out.get_mut(end..end + 2) {
        sw.copy_from_slice(&STATUS_WORD_OK);
    }
    end + 2
}

/// The primitives the engine runs on: the board's, handed to
/// [`crate::Device::with_crypto`] (an AES or SHA-256 peripheral), else [`Software`].
pub(crate) struct Primitives(Option<&'static mut (dyn Crypto + Send)>);

impl Primitives {
    /// Software until a board hands its own.
    pub(crate) const fn new() -> Primitives {
        Primitives(None)
    }

    /// The board's primitives from now on.
    pub(crate) fn set(&mut self, crypto: &'static mut (dyn Crypto + Send)) {
        self.0 = Some(crypto);
    }

    /// The primitives, for one use.
    pub(crate) fn get(&mut self) -> Engine<'_> {
        match &mut self.0 {
            Some(board) => Engine::Board(&mut **board),
            None => Engine::Software(Software),
        }
    }
}

/// [`Primitives::get`]: the board's, or software.
pub(crate) enum Engine<'a> {
    Board(&'a mut (dyn Crypto + Send)),
    Software(Software),
}

impl Crypto for Engine<'_> {
    fn aes128_cbc_encrypt(
        &mut self,
        key: &crate::crypto::Key,
        iv: &Iv,
        blocks: &mut [[u8; BLOCK]],
    ) {
        match self {
            Engine::Board(c) => c.aes128_cbc_encrypt(key, iv, blocks),
            Engine::Software(c) => c.aes128_cbc_encrypt(key, iv, blocks),
        }
    }

    fn aes128_cbc_decrypt(
        &mut self,
        key: &crate::crypto::Key,
        iv: &Iv,
        blocks: &mut [[u8; BLOCK]],
    ) {
        match self {
            Engine::Board(c) => c.aes128_cbc_decrypt(key, iv, blocks),
            Engine::Software(c) => c.aes128_cbc_decrypt(key, iv, blocks),
        }
    }

    fn hmac_sha256(&mut self, key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        match self {
            Engine::Board(c) => c.hmac_sha256(key, parts),
            Engine::Software(c) => c.hmac_sha256(key, parts),
        }
    }
}

/// HMAC-DRBG over HMAC-SHA256 (NIST SP 800-90A §10.1.2), without reseed counter or
/// additional input: what the device draws its nonces, IVs and keys from. Seeded by the
/// port with entropy from the board (a hardware generator, `/dev/urandom`); each draw
/// updates the state, so an output never reveals the next.
#[derive(Default, Zeroize, ZeroizeOnDrop)]
pub struct Drbg {
    key: [u8; 32],
    value: [u8; 32],
    seeded: bool,
    /// Drawn once, when first seeded: the key of the decoy salts ([`Drbg::decoy_salt`]).
    decoy: [u8; 32],
}

impl core::fmt::Debug for Drbg {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Drbg")
            .field("seeded", &self.seeded)
            .finish()
    }
}

impl Drbg {
    /// Unseeded: draws nothing.
    pub const fn new() -> Drbg {
        Drbg {
            key: [0; 32],
            value: [0; 32],
            seeded: false,
            decoy: [0; 32],
        }
    }

    /// Mixes `entropy` in (the first call seeds it; at least 32 bytes of the board's
    /// entropy are expected).
    pub fn seed<C: Crypto>(&mut self, crypto: &mut C, entropy: &[u8]) {
        let first = !self.seeded;
        if first {
            self.key = [0; 32];
            self.value = [1; 32];
        }
        self.update(crypto, entropy);
        self.seeded = true;
        if first {
            let mut decoy = [0; 32];
            self.fill(crypto, &mut decoy);
            self.decoy = decoy;
            decoy.zeroize();
        }
    }

    /// The salt the first step of a SCRAM login answers for `name` when it names no
    /// SCRAM profile: the same for a name every time (a fresh random salt would tell,
    /// asked twice, that the name is no SCRAM profile), unlike another name's, and
    /// unknown to whoever has not the key drawn at the first seed. (It changes when the
    /// device boots again, a real record's salt does not.)
    pub(crate) fn decoy_salt<C: Crypto>(&self, crypto: &mut C, name: &[u8]) -> [u8; 4] {
        let mut mac = crypto.hmac_sha256(&self.decoy, &[b"decoy salt", name]);
        let salt = [mac[0], mac[1], mac[2], mac[3]];
        mac.zeroize();
        salt
    }

    /// `Update` of SP 800-90A with `provided` data.
    fn update<C: Crypto>(&mut self, crypto: &mut C, provided: &[u8]) {
        for round in [0u8, 1] {
            self.key = crypto.hmac_sha256(&self.key, &[&self.value, &[round], provided]);
            self.value = crypto.hmac_sha256(&self.key, &[&self.value]);
            if provided.is_empty() {
                break;
            }
        }
    }

    /// `N` random bytes, drawn with the engine's primitives: `A3` if never seeded.
    pub(crate) fn draw<const N: usize, C: Crypto>(
        &mut self,
        crypto: &mut C,
    ) -> Result<[u8; N], ResultCode> {
        let mut out = [0u8; N];
        match self.fill(crypto, &mut out) {
            true => Ok(out),
            false => Err(ResultCode::ServiceUnavailable),
        }
    }

    /// Fills `out` with random bytes; `false` (and `out` untouched) if never seeded.
    pub fn fill<C: Crypto>(&mut self, crypto: &mut C, out: &mut [u8]) -> bool {
        if !self.seeded {
            return false;
        }
        for chunk in out.chunks_mut(32) {
            self.value = crypto.hmac_sha256(&self.key, &[&self.value]);
            chunk.copy_from_slice(&self.value[..chunk.len()]);
        }
        self.update(crypto, &[]);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unseeded_generator_draws_nothing() {
        let mut drbg = Drbg::new();
        let mut out = [7u8; 16];
        assert!(!drbg.fill(&mut Software, &mut out));
        assert_eq!(out, [7; 16]);
        drbg.seed(&mut Software, &[1; 32]);
        assert!(drbg.fill(&mut Software, &mut out));
        let first = out;
        assert!(drbg.fill(&mut Software, &mut out));
        assert_ne!(first, out, "every draw differs");
        let mut again = Drbg::new();
        again.seed(&mut Software, &[2; 32]);
        let mut other = [0u8; 16];
        again.fill(&mut Software, &mut other);
        assert_ne!(first, other, "another seed, other numbers");
    }
}
