//! Credentials and password checks (`protocol.md` §8).
//!
//! Secrets are zeroized when dropped and compared in constant time.

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

mod hash;
pub use hash::hash_password;

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
