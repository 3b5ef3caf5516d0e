//! The client's password hash, PBKDF2-HMAC-SHA1 (`protocol.md` §8.1), over SHA-1's
//! compression function: the only cryptography of a build without the encrypted
//! session, kept in a module of its own so that `cargo xtask footprint` can tell its
//! flash apart.
//!
//! The compression function is written here (FIPS 180-4 §6.1.2, four loops of twenty
//! rounds, its message schedule in 16 words): the `sha1` crate has only unrolled
//! rounds, 2.9 KB on a Cortex-M4 against about 0.4 KB for these, a tenth of a small
//! firmware, for a hash a device computes at a login or a password change. The tests
//! hold it to the crate (`pbkdf2_matches_the_pbkdf2_crate`, `sha1_matches_the_sha1_crate`)
//! and to RFC 6070.

use zeroize::Zeroize;

use super::{Secret16, FIELD_LEN, PASSWORD_HASH_ITERATIONS, PASSWORD_HASH_SALT};

/// The client's password hash: `PBKDF2-HMAC-SHA1(password, "n0 salt in 1oTi2e",
/// 4096)[0..16]` (§8.1).
pub fn hash_password(password: &[u8]) -> Secret16 {
    #[cfg(test)]
    super::tests::HASHES.with(|n| n.set(n.get() + 1));
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
            let mut digest = sha1(key);
            block[..SHA1_LEN].copy_from_slice(&digest);
            digest.zeroize();
        } else if let Some(head) = block.get_mut(..key.len()) {
            head.copy_from_slice(key);
        }
        let pad = |byte: u8| {
            let mut state = SHA1_IV;
            let mut padded = block;
            padded.iter_mut().for_each(|b| *b ^= byte);
            compress(&mut state, &padded);
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
    compress(&mut state, block);
    for (bytes, word) in out.chunks_exact_mut(4).zip(state) {
        bytes.copy_from_slice(&word.to_be_bytes());
    }
    state.zeroize();
}

/// SHA-1's compression function (FIPS 180-4 §6.1.2): `state` after `block`. The rounds
/// go as four loops of twenty, one per round function, over a 16-word schedule.
fn compress(state: &mut [u32; 5], block: &[u8; SHA1_BLOCK]) {
    let mut w = [0u32; 16];
    for (word, bytes) in w.iter_mut().zip(block.chunks_exact(4)) {
        *word = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    }
    let mut v = *state;
    let mut t = 0;
    for (k, f) in [
        (0x5A82_7999, choose as fn(u32, u32, u32) -> u32),
        (0x6ED9_EBA1, parity),
        (0x8F1B_BCDC, majority),
        (0xCA62_C1D6, parity),
    ] {
        for _ in 0..20 {
            if t >= 16 {
                let x = w[(t + 13) % 16] ^ w[(t + 8) % 16] ^ w[(t + 2) % 16] ^ w[t % 16];
                w[t % 16] = x.rotate_left(1);
            }
            let [a, b, c, d, e] = v;
            let temp = a
                .rotate_left(5)
                .wrapping_add(f(b, c, d))
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(w[t % 16]);
            v = [temp, a, b.rotate_left(30), c, d];
            t += 1;
        }
    }
    for (word, add) in state.iter_mut().zip(v) {
        *word = word.wrapping_add(add);
    }
    w.zeroize();
    v.zeroize();
}

/// SHA-1's `Ch`.
fn choose(x: u32, y: u32, z: u32) -> u32 {
    (x & y) ^ (!x & z)
}

/// SHA-1's `Parity`.
fn parity(x: u32, y: u32, z: u32) -> u32 {
    x ^ y ^ z
}

/// SHA-1's `Maj`.
fn majority(x: u32, y: u32, z: u32) -> u32 {
    (x & y) ^ (x & z) ^ (y & z)
}

/// The SHA-1 digest of `message` (a key longer than a block, RFC 2104).
fn sha1(message: &[u8]) -> [u8; SHA1_LEN] {
    let mut state = SHA1_IV;
    let mut blocks = message.chunks_exact(SHA1_BLOCK);
    let mut block = [0u8; SHA1_BLOCK];
    for whole in blocks.by_ref() {
        block.copy_from_slice(whole);
        compress(&mut state, &block);
    }
    // The rest, `0x80`, zeros and the length in bits: one block, or two when the
    // length no longer fits after the rest.
    let rest = blocks.remainder();
    let mut tail = [0u8; 2 * SHA1_BLOCK];
    tail[..rest.len()].copy_from_slice(rest);
    tail[rest.len()] = 0x80;
    let end = if rest.len() < SHA1_BLOCK - 8 {
        SHA1_BLOCK
    } else {
        2 * SHA1_BLOCK
    };
    let bits = (message.len() as u64).wrapping_mul(8);
    tail[end - 8..end].copy_from_slice(&bits.to_be_bytes());
    for last in tail[..end].chunks_exact(SHA1_BLOCK) {
        block.copy_from_slice(last);
        compress(&mut state, &block);
    }
    let mut out = [0u8; SHA1_LEN];
    for (bytes, word) in out.chunks_exact_mut(4).zip(state) {
        bytes.copy_from_slice(&word.to_be_bytes());
    }
    block.zeroize();
    tail.zeroize();
    state.zeroize();
    out
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
        fn sha1_matches_the_sha1_crate(message in proptest::collection::vec(any::<u8>(), 0..300)) {
            use sha1::Digest;
            let expected: [u8; SHA1_LEN] = sha1::Sha1::digest(&message).into();
            prop_assert_eq!(super::sha1(&message), expected);
        }

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
}
