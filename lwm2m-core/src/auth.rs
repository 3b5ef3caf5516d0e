//! Credentials and password checks (`protocol.md` §8).
//!
//! Secrets are zeroized when dropped and compared in constant time.

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of the username and password fields of a login body.
pub const FIELD_LEN: usize = 16;
/// Length of a `POST /1024//0` login body: `username[16]` then `password[16]`.
pub const LOGIN_BODY_LEN: usize = 2 * FIELD_LEN;
/// Salt of the client's password hash.
pub const PASSWORD_HASH_SALT: &[u8] = b"n0 salt in 1oTi2e";
/// PBKDF2 iterations of the client's password hash.
#[cfg(not(fuzzing))]
pub const PASSWORD_HASH_ITERATIONS: u32 = 4096;
/// PBKDF2 iterations of the password hash in fuzzing builds (`--cfg fuzzing`, set by
/// cargo-fuzz): one, so that the fuzzers explore logins at a useful rate. Such a build
/// does not interoperate with the client and must never ship.
#[cfg(fuzzing)]
pub const PASSWORD_HASH_ITERATIONS: u32 = 1;
/// Length of a SCRAM password record: `storedKey(16) | serverKey(16) | salt(4)`.
pub const SCRAM_RECORD_LEN: usize = 36;

/// A 16-byte secret (plain password field or password hash), wiped on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Secret16(pub [u8; FIELD_LEN]);

impl core::fmt::Debug for Secret16 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Secret16(..)")
    }
}

/// How a profile's password is stored.
///
/// A password the client writes in plain ASCII (no `hashPassword` option) is stored as
/// its hash too, so the device never keeps a password in clear and every login costs the
/// same, whatever the name (see [`verify`]).
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Credential {
    /// No password: login is impossible (the anonymous profile, a profile just created).
    #[default]
    None,
    /// The 16-byte PBKDF2-HMAC-SHA1 hash of the password ([`hash_password`]).
    Hashed(Secret16),
    /// The SCRAM record `storedKey | serverKey | salt` (§8.3), for encrypted sessions.
    Scram(ScramRecord),
}

impl core::fmt::Debug for Credential {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Credential::None => "None",
            Credential::Hashed(_) => "Hashed(..)",
            Credential::Scram(_) => "Scram(..)",
        })
    }
}

/// The 36-byte SCRAM password record, wiped on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct ScramRecord {
    /// `PBKDF2-HMAC-SHA256(saltedPassword, "ClientKey", 2)[0..16]`.
    pub stored_key: [u8; 16],
    /// `PBKDF2-HMAC-SHA256(saltedPassword, "ServerKey", 2)[0..16]`.
    pub server_key: [u8; 16],
    /// The salt the client picked.
    pub salt: [u8; 4],
}

impl ScramRecord {
    /// Decodes the 36-byte record of `POST /1025/{id}/2` under SCRAM.
    pub fn from_bytes(bytes: &[u8]) -> Option<ScramRecord> {
        if bytes.len() != SCRAM_RECORD_LEN {
            return None;
        }
        let mut record = ScramRecord {
            stored_key: [0; 16],
            server_key: [0; 16],
            salt: [0; 4],
        };
        record.stored_key.copy_from_slice(&bytes[..16]);
        record.server_key.copy_from_slice(&bytes[16..32]);
        record.salt.copy_from_slice(&bytes[32..]);
        Some(record)
    }
}

impl Credential {
    /// The credential of a password written in clear: its hash. The password is cut at
    /// 16 bytes and at its first zero byte, like the client's login field.
    pub fn from_password(password: &[u8]) -> Credential {
        Credential::Hashed(hash_password(field_text(&pad_field(password))))
    }
}

/// Zero-pads or truncates `text` to a 16-byte field, as the client encodes login fields.
pub fn pad_field(text: &[u8]) -> [u8; FIELD_LEN] {
    let mut field = [0u8; FIELD_LEN];
    let n = text.len().min(FIELD_LEN);
    field[..n].copy_from_slice(&text[..n]);
    field
}

/// The text of a zero-padded field: up to the first zero byte.
pub fn field_text(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

/// The client's password hash: `PBKDF2-HMAC-SHA1(password, "n0 salt in 1oTi2e",
/// 4096)[0..16]` (§8.1).
pub fn hash_password(password: &[u8]) -> Secret16 {
    #[cfg(test)]
    tests::HASHES.with(|n| n.set(n.get() + 1));
    let mut block = pbkdf2_sha1(password, PASSWORD_HASH_SALT, PASSWORD_HASH_ITERATIONS);
    let mut out = Secret16([0; FIELD_LEN]);
    out.0.copy_from_slice(&block[..FIELD_LEN]);
    block.zeroize();
    out
}

/// SHA-1's initial state (FIPS 180-4 §5.3.1).
const SHA1_IV: [u32; 5] = [
    0x6745_2301,
    0xEFCD_AB89,
    0x98BA_DCFE,
    0x1032_5476,
    0xC3D2_E1F0,
];
/// Bytes of a SHA-1 block.
const SHA1_BLOCK: usize = 64;
/// Bytes of a SHA-1 digest.
const SHA1_LEN: usize = 20;
/// The longest message [`Hmac::short`] takes: one final block (message, `0x80`, the
/// 8-byte length).
const SHORT_MESSAGE: usize = SHA1_BLOCK - 9;

/// HMAC-SHA1 of one key, as the two SHA-1 states after its padded key blocks.
struct Hmac {
    inner: [u32; 5],
    outer: [u32; 5],
}

impl Hmac {
    fn new(key: &[u8]) -> Hmac {
        let mut block = [0u8; SHA1_BLOCK];
        if key.len() > SHA1_BLOCK {
            // RFC 2104: a key longer than a block is its hash.
            use sha1::Digest;
            let mut digest = sha1::Sha1::digest(key);
            block[..SHA1_LEN].copy_from_slice(&digest);
            digest.iter_mut().for_each(Zeroize::zeroize);
        } else if let Some(head) = block.get_mut(..key.len()) {
            head.copy_from_slice(key);
        }
        let pad = |byte: u8| {
            let mut state = SHA1_IV;
            let mut padded = block;
            padded.iter_mut().for_each(|b| *b ^= byte);
            sha1::block_api::compress(&mut state, core::slice::from_ref(&padded));
            padded.zeroize();
            state
        };
        let hmac = Hmac {
            inner: pad(0x36),
            outer: pad(0x5C),
        };
        block.zeroize();
        hmac
    }

    /// The HMAC of `message` (at most [`SHORT_MESSAGE`] bytes): two compressions.
    fn short(&self, message: &[u8]) -> [u8; SHA1_LEN] {
        let mut block = [0u8; SHA1_BLOCK];
        let mut digest = [0u8; SHA1_LEN];
        pad_block(&mut block, message);
        compress_into(self.inner, &block, &mut digest);
        pad_block(&mut block, &digest);
        let mut out = [0u8; SHA1_LEN];
        compress_into(self.outer, &block, &mut out);
        digest.zeroize();
        block.zeroize();
        out
    }

    /// `HMAC(u)` into `u`, a digest: `block` holds the padding of a digest-long
    /// message already ([`pad_block`]), so a round only copies 20 bytes in twice.
    fn round(&self, u: &mut [u8; SHA1_LEN], block: &mut [u8; SHA1_BLOCK]) {
        block[..SHA1_LEN].copy_from_slice(u);
        compress_into(self.inner, block, u);
        block[..SHA1_LEN].copy_from_slice(u);
        compress_into(self.outer, block, u);
    }
}

impl Drop for Hmac {
    fn drop(&mut self) {
        self.inner.zeroize();
        self.outer.zeroize();
    }
}

/// Fills `block` with the last block of a message of one block then `message` (at most
/// [`SHORT_MESSAGE`] bytes): `message`, `0x80`, zeros, the length in bits.
fn pad_block(block: &mut [u8; SHA1_BLOCK], message: &[u8]) {
    let len = message.len().min(SHORT_MESSAGE);
    block.fill(0);
    block[..len].copy_from_slice(&message[..len]);
    block[len] = 0x80;
    let bits = ((SHA1_BLOCK + len) as u64) * 8;
    block[SHA1_BLOCK - 8..].copy_from_slice(&bits.to_be_bytes());
}

/// The digest of a SHA-1 at `state` that ends with `block`, into `out`.
fn compress_into(mut state: [u32; 5], block: &[u8; SHA1_BLOCK], out: &mut [u8; SHA1_LEN]) {
    sha1::block_api::compress(&mut state, core::slice::from_ref(block));
    for (bytes, word) in out.chunks_exact_mut(4).zip(state) {
        bytes.copy_from_slice(&word.to_be_bytes());
    }
    state.zeroize();
}

/// The first block of `PBKDF2-HMAC-SHA1(password, salt, rounds)` (RFC 8018 §5.2; a
/// salt of at most 51 bytes, longer ones are cut). Each round is two SHA-1
/// compressions of one block: the key's padded blocks are hashed once, and no hasher
/// buffers a message, so its stack is a few hundred bytes.
fn pbkdf2_sha1(password: &[u8], salt: &[u8], rounds: u32) -> [u8; SHA1_LEN] {
    let hmac = Hmac::new(password);
    let mut first = [0u8; SHORT_MESSAGE];
    let salt_len = salt.len().min(SHORT_MESSAGE - 4);
    first[..salt_len].copy_from_slice(&salt[..salt_len]);
    first[salt_len..salt_len + 4].copy_from_slice(&1u32.to_be_bytes());
    let mut u = hmac.short(&first[..salt_len + 4]);
    let mut t = u;
    let mut block = [0u8; SHA1_BLOCK];
    pad_block(&mut block, &u);
    for _ in 1..rounds {
        hmac.round(&mut u, &mut block);
        t.iter_mut().zip(&u).for_each(|(t, u)| *t ^= u);
    }
    u.zeroize();
    block.zeroize();
    t
}

/// Constant-time equality of two byte strings of the same length.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// A decoded login body.
pub struct LoginBody<'a> {
    /// The username, without its zero padding.
    pub username: &'a [u8],
    /// The password field: ASCII zero-padded, or the 16-byte hash.
    pub password: &'a [u8; FIELD_LEN],
}

impl<'a> LoginBody<'a> {
    /// Splits a 32-byte login body; `None` for any other length.
    pub fn parse(body: &'a [u8]) -> Option<LoginBody<'a>> {
        let body: &[u8; LOGIN_BODY_LEN] = body.try_into().ok()?;
        let (user, password) = body.split_at(FIELD_LEN);
        Some(LoginBody {
            username: field_text(user),
            password: password.try_into().ok()?,
        })
    }
}

/// A hash no password has in practice: what an absent profile, or one that cannot log in
/// with a password, is compared with, so that its check costs what a real one does.
const NO_CREDENTIAL: [u8; FIELD_LEN] = [0; FIELD_LEN];

/// Checks a login password field against the stored credential of the profile named in
/// the login (`None`: no such profile). `field_is_hash` is true when the `hashPassword`
/// security option is on (the client then sends the hash).
///
/// The cost is the same whatever the name and the password: one PBKDF2 derivation when
/// the field is the password in clear, none when it is the hash, then one constant-time
/// comparison. An unknown name, a profile without password or one with a SCRAM record
/// (which logs in through SCRAM) is compared with a dummy hash and refused.
pub fn verify(stored: Option<&Credential>, field: &[u8; FIELD_LEN], field_is_hash: bool) -> bool {
    // A password in clear is zero-padded: bytes after its end make it another one.
    let (candidate, well_formed) = if field_is_hash {
        (Secret16(*field), true)
    } else {
        let text = field_text(field);
        (hash_password(text), ct_eq(&pad_field(text), field))
    };
    let (expected, usable) = match stored {
        Some(Credential::Hashed(hash)) => (&hash.0, true),
        _ => (&NO_CREDENTIAL, false),
    };
    ct_eq(expected, &candidate.0) & usable & well_formed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::hex;
    use proptest::prelude::*;

    #[test]
    fn pbkdf2_matches_rfc_6070() {
        // RFC 6070 §2, the vectors with a 20-byte output.
        let cases: [(&[u8], &[u8], u32, &str); 4] = [
            (
                b"password",
                b"salt",
                1,
                "0c60c80f961f0e71f3a9b524af6012062fe037a6",
            ),
            (
                b"password",
                b"salt",
                2,
                "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957",
            ),
            (
                b"password",
                b"salt",
                4096,
                "4b007901b765489abead49d926f721d065a429c1",
            ),
            (
                b"pass\0word",
                b"sa\0lt",
                4096,
                "56fa6aa75548099dcc37d7f03425e0c3",
            ),
        ];
        for (password, salt, rounds, expected) in cases {
            let expected = hex(expected);
            assert_eq!(
                pbkdf2_sha1(password, salt, rounds)[..expected.len()],
                expected[..]
            );
        }
    }

    proptest! {
        #[test]
        fn pbkdf2_matches_the_pbkdf2_crate(
            password in proptest::collection::vec(any::<u8>(), 0..100),
            salt in proptest::collection::vec(any::<u8>(), 0..52),
            rounds in 1u32..40,
        ) {
            let mut expected = [0u8; SHA1_LEN];
            pbkdf2::pbkdf2_hmac::<sha1::Sha1>(&password, &salt, rounds, &mut expected);
            prop_assert_eq!(pbkdf2_sha1(&password, &salt, rounds), expected);
        }
    }

    #[test]
    fn password_hash_matches_the_client() {
        // vectors.txt §B.6
        assert_eq!(
            &hash_password(b"admin").0[..],
            &hex("0155affc023aff6882f56a4e0d9c5466")[..]
        );
        assert_eq!(
            &hash_password(b"").0[..],
            &hex("8dd54e7e5369257ffa3ce0b832e9b9c4")[..]
        );
        assert_eq!(
            &hash_password(b"secret1").0[..],
            &hex("b9aacde3224917f85fd5f825b47eaf74")[..]
        );
    }

    #[test]
    fn login_body_splits_like_the_vectors() {
        let body = hex("61646d696e000000000000000000000061646d696e0000000000000000000000");
        let login = LoginBody::parse(&body).unwrap();
        assert_eq!(login.username, b"admin");
        assert_eq!(field_text(login.password), b"admin");
        assert!(LoginBody::parse(&body[..31]).is_none());
    }

    #[test]
    fn verify_accepts_the_password_in_either_form() {
        let stored = Credential::from_password(b"admin");
        assert_eq!(stored, Credential::Hashed(hash_password(b"admin")));
        let field_plain = pad_field(b"admin");
        let field_hash = hash_password(b"admin").0;
        assert!(verify(Some(&stored), &field_plain, false));
        assert!(verify(Some(&stored), &field_hash, true));
        let wrong = pad_field(b"wrong");
        assert!(!verify(Some(&stored), &wrong, false));
        assert!(!verify(Some(&stored), &hash_password(b"wrong").0, true));
        // The hash sent in clear is not the password, nor is the password followed by
        // anything but its zero padding.
        assert!(!verify(Some(&stored), &field_hash, false));
        let mut trailing = pad_field(b"admin");
        trailing[15] = 1;
        assert!(!verify(Some(&stored), &trailing, false));
        assert!(!verify(Some(&Credential::None), &pad_field(b""), false));
        assert!(!verify(Some(&Credential::None), &NO_CREDENTIAL, true));
        assert!(!verify(None, &NO_CREDENTIAL, true));
        assert!(!verify(None, &pad_field(b""), false));
    }

    thread_local! {
        /// PBKDF2 derivations made by this thread.
        pub(super) static HASHES: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
    }

    fn hashes_of(f: impl FnOnce() -> bool) -> usize {
        let before = HASHES.with(|n| n.get());
        f();
        HASHES.with(|n| n.get()) - before
    }

    #[test]
    fn every_login_check_costs_the_same_whatever_the_name() {
        let hashed = Credential::from_password(b"admin");
        let scram = Credential::Scram(ScramRecord {
            stored_key: [1; 16],
            server_key: [2; 16],
            salt: [3; 4],
        });
        let stored: [Option<&Credential>; 4] =
            [Some(&hashed), Some(&scram), Some(&Credential::None), None];
        for field_is_hash in [false, true] {
            let field = if field_is_hash {
                hash_password(b"admin").0
            } else {
                pad_field(b"admin")
            };
            let costs: std::vec::Vec<usize> = stored
                .iter()
                .map(|s| hashes_of(|| verify(*s, &field, field_is_hash)))
                .collect();
            let expected = usize::from(!field_is_hash);
            assert_eq!(costs, [expected; 4], "hash field: {field_is_hash}");
        }
    }

    #[test]
    fn scram_record_splits_like_the_vector() {
        // vectors.txt §B.7 createScramPasswordKey
        let bytes = hex("76f1fcd0e4af69633612304ff45d2ad34cdd977c33381fc808277ca2b45e22fea1b2c3d4");
        let record = ScramRecord::from_bytes(&bytes).unwrap();
        assert_eq!(record.salt, [0xa1, 0xb2, 0xc3, 0xd4]);
        assert_eq!(record.server_key[0], 0x4c);
        assert!(ScramRecord::from_bytes(&bytes[..35]).is_none());
    }
}
