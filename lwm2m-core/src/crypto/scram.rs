//! The device's side of the SCRAM login (`protocol.md` §9.2): from a profile's stored
//! record (`storedKey | serverKey | salt`, §8.3) and the nonces of the login, the proof
//! the client must send, the proof the device answers and the session key both derive.
//! No key crosses the wire; the device never sees the password.

use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use super::Crypto;
use crate::auth::{ScramRecord, Secret16, FIELD_LEN};

/// The nonces of one login (u32 big-endian on the wire): the client's, sent with the user
/// name (`GET /1024//40`), and the device's, answered with the salt and iterations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Nonces {
    /// The client's nonce.
    pub client: [u8; 4],
    /// The device's nonce.
    pub server: [u8; 4],
}

/// The first 16 bytes of `HMAC-SHA256(key, parts…)`, the rest wiped.
pub(super) fn truncated<C: Crypto>(crypto: &mut C, key: &[u8], parts: &[&[u8]]) -> Secret16 {
    let mut mac = crypto.hmac_sha256(key, parts);
    let mut out = Secret16([0; FIELD_LEN]);
    if let Some(head) = mac.get(..FIELD_LEN) {
        out.0.copy_from_slice(head);
    }
    mac.zeroize();
    out
}

/// The proof the client sends (`GET /1024//41`):
/// `HMAC-SHA256(storedKey, clientNonce ‖ storedKey ‖ serverNonce)[0..16]`.
pub fn client_proof<C: Crypto>(crypto: &mut C, record: &ScramRecord, nonces: Nonces) -> Secret16 {
    let key = &record.stored_key;
    truncated(crypto, key, &[&nonces.client, key, &nonces.server])
}

/// Whether `proof` is the client proof of `record` for `nonces`, compared in constant time
/// (a proof of another length is not).
pub fn verify_client_proof<C: Crypto>(
    crypto: &mut C,
    record: &ScramRecord,
    nonces: Nonces,
    proof: &[u8],
) -> bool {
    let expected = client_proof(crypto, record, nonces);
    proof.len() == FIELD_LEN && bool::from(expected.0.ct_eq(proof))
}

/// The proof the device answers:
/// `HMAC-SHA256(serverKey, serverNonce ‖ serverKey ‖ clientNonce)[0..16]`.
pub fn server_proof<C: Crypto>(crypto: &mut C, record: &ScramRecord, nonces: Nonces) -> Secret16 {
    let key = &record.server_key;
    truncated(crypto, key, &[&nonces.server, key, &nonces.client])
}

/// The session key of the encrypted session the login opens: `HMAC-SHA256(serverKey,
/// clientNonce ‖ serverKey ‖ salt ‖ storedKey ‖ serverNonce)[0..16]`.
pub fn session_key<C: Crypto>(crypto: &mut C, record: &ScramRecord, nonces: Nonces) -> Secret16 {
    let key = &record.server_key;
    let parts: [&[u8]; 5] = [
        &nonces.client,
        key,
        &record.salt,
        &record.stored_key,
        &nonces.server,
    ];
    truncated(crypto, key, &parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Software;
    use crate::test_util::hex;

    /// admin/admin with salt a1b2c3d4 and 1000 iterations (vectors.txt §B.7): the
    /// record the client's `createScramPasswordKey` writes.
    fn admin() -> ScramRecord {
        ScramRecord::from_bytes(&hex(
            "76f1fcd0e4af69633612304ff45d2ad34cdd977c33381fc808277ca2b45e22fea1b2c3d4",
        ))
        .unwrap()
    }

    #[test]
    fn the_proofs_and_the_session_key_are_the_client_s() {
        let nonces = Nonces {
            client: [1, 2, 3, 4],
            server: [0x0a, 0x0b, 0x0c, 0x0d],
        };
        let proof = client_proof(&mut Software, &admin(), nonces);
        assert_eq!(proof.0.to_vec(), hex("9f170a4a1f57124bff571babc43c1499"));
        assert!(verify_client_proof(
            &mut Software,
            &admin(),
            nonces,
            &proof.0
        ));
        let answer = server_proof(&mut Software, &admin(), nonces);
        assert_eq!(answer.0.to_vec(), hex("1bf0938273c49e32daad7e0dbaccfdde"));
        let key = session_key(&mut Software, &admin(), nonces);
        assert_eq!(key.0.to_vec(), hex("740c3b692c2746853c44ce4b596e08fe"));
    }

    /// The live transcript (vectors.txt §A, `protocol.md` §9.2): device nonce 16bd7676.
    #[test]
    fn the_live_login_verifies() {
        let nonces = Nonces {
            client: [1, 2, 3, 4],
            server: [0x16, 0xbd, 0x76, 0x76],
        };
        let proof = hex("025dfef7cbfc895682b0c6d64a16937d");
        assert!(verify_client_proof(&mut Software, &admin(), nonces, &proof));
        let answer = server_proof(&mut Software, &admin(), nonces);
        assert_eq!(answer.0.to_vec(), hex("7de7a791c9252817a514ecee241d8c44"));
        let key = session_key(&mut Software, &admin(), nonces);
        assert_eq!(key.0.to_vec(), hex("f46e122f9839bc7244de50a61827f060"));
    }

    #[test]
    fn a_wrong_or_short_proof_is_refused() {
        let nonces = Nonces {
            client: [1, 2, 3, 4],
            server: [0x0a, 0x0b, 0x0c, 0x0d],
        };
        let mut proof = hex("9f170a4a1f57124bff571babc43c1499");
        proof[15] ^= 1;
        assert!(!verify_client_proof(
            &mut Software,
            &admin(),
            nonces,
            &proof
        ));
        assert!(!verify_client_proof(
            &mut Software,
            &admin(),
            nonces,
            &proof[..15]
        ));
        assert!(!verify_client_proof(&mut Software, &admin(), nonces, &[]));
        // The right proof for other nonces.
        let other = Nonces {
            server: [0x0a, 0x0b, 0x0c, 0x0e],
            ..nonces
        };
        let good = hex("9f170a4a1f57124bff571babc43c1499");
        assert!(!verify_client_proof(&mut Software, &admin(), other, &good));
    }
}
