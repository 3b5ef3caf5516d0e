//! The client's side of an encrypted session, built on `lwm2m_core::crypto` (pinned to
//! the real client's vectors in its unit tests): a SCRAM login as admin, then tunnel
//! frames sealed and answers opened under the session's key.
#![cfg(feature = "crypto")]

use lwm2m_core::auth::ScramRecord;
use lwm2m_core::crypto::scram::{self, Nonces};
use lwm2m_core::crypto::{tunnel, Software};
use lwm2m_core::storage::ConfigStore;
use lwm2m_core::target::TargetIo;

use super::{hex, to_hex, Harness};

/// admin/admin, salt a1b2c3d4, 1000 iterations (vectors.txt §B.7).
pub const ADMIN_RECORD: &str =
    "76f1fcd0e4af69633612304ff45d2ad34cdd977c33381fc808277ca2b45e22fea1b2c3d4";

/// The client's side of an encrypted session.
pub struct Client {
    pub key: [u8; 16],
    pub id: u16,
}

impl Client {
    /// The tunnel request (`GET /1024//48`) of `inner`, a bare request frame.
    pub fn seal(&mut self, inner: &[u8]) -> Vec<u8> {
        let mut frame = vec![0u8; tunnel::sealed_len(inner.len()).unwrap()];
        frame[4..4 + inner.len()].copy_from_slice(inner);
        tunnel::seal(
            &mut Software,
            &self.key,
            &[0; 16],
            self.id,
            &mut frame,
            inner.len(),
        )
        .unwrap();
        self.id += 1;
        let mut apdu = vec![
            0xa2,
            0xca,
            0,
            0,
            (7 + frame.len()) as u8,
            1,
            4,
            0,
            0xff,
            0xff,
            0,
            48,
        ];
        apdu.extend_from_slice(&frame);
        apdu
    }

    /// The inner answer of a sealed answer.
    pub fn open(&self, answer: &[u8]) -> Vec<u8> {
        assert!(
            answer.len() > 3 && answer[0] == 0,
            "not sealed: {}",
            to_hex(answer)
        );
        let mut frame = answer[1..answer.len() - 2].to_vec();
        let opened = tunnel::open(&mut Software, &self.key, &[0; 16], &mut frame).unwrap();
        frame[opened.inner].to_vec()
    }
}

/// A SCRAM login as admin (whose record is [`ADMIN_RECORD`]), its server proof checked:
/// the client of the session, and the device's answer to the first step.
pub fn scram_login<T: TargetIo, S: ConfigStore>(h: &mut Harness<T, S>) -> (Client, Vec<u8>) {
    let record = ScramRecord::from_bytes(&hex(ADMIN_RECORD)).unwrap();
    let first = h.tx("a2ca00001b010400ffff002861646d696e000000000000000000000001020304");
    let answer = hex(&first);
    assert_eq!(answer.len(), 15, "{first}");
    let nonces = Nonces {
        client: [1, 2, 3, 4],
        server: answer[1..5].try_into().unwrap(),
    };
    let proof = scram::client_proof(&mut Software, &record, nonces);
    let second = h.tx(&format!("a2ca000017010400ffff0029{}", to_hex(&proof.0)));
    let server = scram::server_proof(&mut Software, &record, nonces);
    assert_eq!(second, format!("00{}9000", to_hex(&server.0)));
    let client = Client {
        key: scram::session_key(&mut Software, &record, nonces).0,
        id: 0,
    };
    (client, answer)
}
