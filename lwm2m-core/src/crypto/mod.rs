//! The cryptography of the encrypted session and of single packets (feature `crypto`):
//! what `protocol.md` §7.1, §9, §10 and §11.2 compute, as functions of their inputs. The
//! engine keeps the keys; this layer keeps nothing between calls.
//!
//! - [`Crypto`]: the primitives (AES-128-CBC without padding, HMAC-SHA256), in software
//!   by default ([`Software`], RustCrypto's `aes`, `cbc`, `hmac`, `sha2`), or a board's
//!   hardware AES and SHA-256 behind the same three methods.
//! - [`crc32`]: the client's CRC-32/MPEG-2 (§7.1), chained.
//! - [`scram`]: the device's side of the SCRAM login (§9): the proofs and the session key
//!   from a profile's stored record and the two nonces.
//! - [`tunnel`]: the encrypted frame (§10.2, §10.3): opened with its CRC checked, sealed
//!   around an answer, and the replay guard's order of frame ids (decision 6).
//! - [`packet`]: the single packet (§11.1, §11.2; decision 7): checked parsing, its key,
//!   decryption in place, the encoder of the data log's packets, senderId ↔ profile.
//! - [`chunk`]: loading the packet store (§11.3, §11.4): chunks, the execute CRC, the
//!   store's state. The replay guard's record is `crate::storage::replay`, the firmware
//!   slot `crate::firmware`.
//!
//! Every secret this layer computes is returned in a type that wipes itself on drop
//! ([`crate::auth::Secret16`]), and every intermediate value is wiped before returning.

pub mod chunk;
pub mod packet;
pub mod scram;
pub mod tunnel;

use crc::{Crc, Table, CRC_32_MPEG_2};

/// Bytes of an AES block.
pub const BLOCK: usize = 16;

/// An AES-128 key.
pub type Key = [u8; BLOCK];

/// An initialisation vector.
pub type Iv = [u8; BLOCK];

/// The primitives the encrypted session and single packets run on. A board with an AES
/// or SHA-256 peripheral implements them over it; [`Software`] is the default.
pub trait Crypto {
    /// Encrypts `blocks` in place with AES-128 in CBC mode from `iv`, no padding.
    fn aes128_cbc_encrypt(&mut self, key: &Key, iv: &Iv, blocks: &mut [[u8; BLOCK]]);

    /// Decrypts `blocks` in place with AES-128 in CBC mode from `iv`, no padding.
    fn aes128_cbc_decrypt(&mut self, key: &Key, iv: &Iv, blocks: &mut [[u8; BLOCK]]);

    /// HMAC-SHA256 under `key` of the concatenation of `parts`.
    fn hmac_sha256(&mut self, key: &[u8], parts: &[&[u8]]) -> [u8; 32];
}

impl<C: Crypto + ?Sized> Crypto for &mut C {
    fn aes128_cbc_encrypt(&mut self, key: &Key, iv: &Iv, blocks: &mut [[u8; BLOCK]]) {
        C::aes128_cbc_encrypt(self, key, iv, blocks)
    }

    fn aes128_cbc_decrypt(&mut self, key: &Key, iv: &Iv, blocks: &mut [[u8; BLOCK]]) {
        C::aes128_cbc_decrypt(self, key, iv, blocks)
    }

    fn hmac_sha256(&mut self, key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        C::hmac_sha256(self, key, parts)
    }
}

/// The primitives in software: RustCrypto's `aes` (constant-time, fixsliced), `cbc`,
/// `hmac` and `sha2`. Their key schedules are wiped when dropped (`zeroize`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Software;

impl Crypto for Software {
    fn aes128_cbc_encrypt(&mut self, key: &Key, iv: &Iv, blocks: &mut [[u8; BLOCK]]) {
        use aes::cipher::{BlockEncryptMut, KeyIvInit};
        let mut cipher = cbc::Encryptor::<aes::Aes128>::new(key.into(), iv.into());
        for block in blocks {
            cipher.encrypt_block_mut(block.into());
        }
    }

    fn aes128_cbc_decrypt(&mut self, key: &Key, iv: &Iv, blocks: &mut [[u8; BLOCK]]) {
        use aes::cipher::{BlockDecryptMut, KeyIvInit};
        let mut cipher = cbc::Decryptor::<aes::Aes128>::new(key.into(), iv.into());
        for block in blocks {
            cipher.decrypt_block_mut(block.into());
        }
    }

    fn hmac_sha256(&mut self, key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        use hmac::{KeyInit, Mac};
        // HMAC takes a key of any length (RFC 2104): never an error.
        let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(key) else {
            return [0; 32];
        };
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

/// The client's CRC-32/MPEG-2 (§7.1: polynomial `04C11DB7`, initial `FFFFFFFF`, no
/// reflection, no final XOR), over a 1 KiB table: the tunnel checks and computes one per
/// frame (tableless, it was about 40 % of an encrypted request).
const MPEG_2: Crc<u32, Table<1>> = Crc::<u32, Table<1>>::new(&CRC_32_MPEG_2);

/// The CRC of §7.1 of `bytes`, chained from `previous` (`None` for the first part):
/// `crc32(b, Some(crc32(a, None))) == crc32(a ‖ b, None)`.
pub fn crc32(bytes: &[u8], previous: Option<u32>) -> u32 {
    let mut digest = match previous {
        Some(crc) => MPEG_2.digest_with_initial(crc),
        None => MPEG_2.digest(),
    };
    digest.update(bytes);
    digest.finalize()
}

/// `bytes` as AES blocks, if it is a whole number of them.
pub fn blocks_mut(bytes: &mut [u8]) -> Option<&mut [[u8; BLOCK]]> {
    match bytes.as_chunks_mut::<BLOCK>() {
        (blocks, []) => Some(blocks),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::hex;

    /// `protocol.md` §7.1 and vectors.txt §B.4.
    #[test]
    fn the_crc_is_the_client_s() {
        for (input, crc) in [
            ("00000000", 0xc704dd7b),
            ("31323334", 0xa695c4aa),
            ("3132333435363738", 0x49e3c2fb),
            ("00000007010003ffff000200", 0xb6b5eb18),
        ] {
            assert_eq!(crc32(&hex(input), None), crc, "{input}");
        }
        let whole = hex("3132333435363738");
        let first = crc32(&whole[..4], None);
        assert_eq!(crc32(&whole[4..], Some(first)), 0x49e3c2fb);
    }

    /// vectors.txt §B.8: the plaintext of `GET /3//2` under key 00..0f, IV zero.
    #[test]
    fn aes_cbc_is_the_client_s() {
        let key: Key = core::array::from_fn(|i| i as u8);
        let mut frame = hex("00000007010003ffff000200b6b5eb18");
        let blocks = blocks_mut(&mut frame).unwrap();
        Software.aes128_cbc_encrypt(&key, &[0; 16], blocks);
        assert_eq!(frame, hex("d47d3b6b3f2b65cbe3dc9a2e9d899e8a"));
        Software.aes128_cbc_decrypt(&key, &[0; 16], blocks_mut(&mut frame).unwrap());
        assert_eq!(frame, hex("00000007010003ffff000200b6b5eb18"));
        assert!(blocks_mut(&mut [0u8; 17]).is_none());
    }

    /// RFC 4231 test case 2.
    #[test]
    fn hmac_sha256_is_rfc_4231_s() {
        let mac = Software.hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            mac.to_vec(),
            hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
    }
}
