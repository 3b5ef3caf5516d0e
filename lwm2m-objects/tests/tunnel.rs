//! The encrypted session through the engine: a SCRAM login played by a client built on
//! `lwm2m_core::crypto` (the primitives are pinned to the real client's vectors in their
//! unit tests, and `interop/scram.test.mjs` runs the real client), then the tunnel: its
//! rights, its answers sealed under the right key and IV also after a request waited on a
//! target operation, refusals that execute nothing, and a session end that wipes the key.
#![cfg(feature = "crypto")]

mod common;
use common::tunnel::{Client, ADMIN_RECORD};
use common::*;
use lwm2m_core::crypto::Software;
use lwm2m_core::io::Operation;
use lwm2m_core::storage::NoStore;
use lwm2m_core::target::MemoryTarget;
use lwm2m_core::{Instant, Step};
use target_traits::{MemoryAccess, RamTarget};

/// SCRAM on, the admin's record written (in clear, as admin), logged out; seeded.
fn scram_device<T: lwm2m_core::target::TargetIo>(h: &mut Harness<T>) {
    h.device.seed(&[42; 32]);
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    assert_eq!(h.tx("a2da000009030400ffff00060010"), "009000");
    assert_eq!(
        h.tx(&format!("a2da00002b020401ffff0002{ADMIN_RECORD}")),
        "009000"
    );
    assert_eq!(h.tx("a2da00000b030400ffff002a000003e8"), "009000");
    assert_eq!(h.tx(LOGOUT), "009000");
}

/// A SCRAM login as admin: the client of the session, the salt and iterations checked.
fn scram_login<T: lwm2m_core::target::TargetIo>(h: &mut Harness<T>) -> Client {
    let (client, first) = common::tunnel::scram_login(h);
    assert_eq!(
        first[5..13],
        hex("a1b2c3d4000003e8")[..],
        "salt and iterations"
    );
    client
}

const INNER_GET_GROUP: [u8; 7] = [1, 4, 0, 0xff, 0xff, 0, 7];

#[test]
fn scram_rights_hold_in_the_tunnel_only() {
    let mut h = Harness::new();
    scram_device(&mut h);
    let mut client = scram_login(&mut h);
    let answer = h.send_on(WS1, &client.seal(&INNER_GET_GROUP));
    assert_eq!(to_hex(&client.open(&answer)), "00ffff9000");
    // In clear, the same session is anonymous.
    assert_eq!(h.tx(GET_GROUP), "0000009000");
    assert_eq!(
        h.tx("a2da000008030400ffff000961"),
        "819000",
        "PUT /1024//9 in clear"
    );
    let put = [3, 4, 0, 0xff, 0xff, 0, 9, b'x'];
    let answer = h.send_on(WS1, &client.seal(&put));
    assert_eq!(to_hex(&client.open(&answer)), "009000");
}

#[test]
fn a_replayed_or_damaged_frame_executes_nothing() {
    let mut h = Harness::new();
    scram_device(&mut h);
    let mut client = scram_login(&mut h);
    let first = client.seal(&[3, 4, 0, 0xff, 0xff, 0, 9, b'a']);
    assert_eq!(to_hex(&client.open(&h.send_on(WS1, &first))), "009000");
    let second = client.seal(&[3, 4, 0, 0xff, 0xff, 0, 9, b'b']);
    assert_eq!(to_hex(&client.open(&h.send_on(WS1, &second))), "009000");
    assert_eq!(to_hex(&h.send_on(WS1, &first)), "819000", "a replay");
    let mut damaged = client.seal(&[3, 4, 0, 0xff, 0xff, 0, 9, b'c']);
    let last = damaged.len() - 1;
    damaged[last] ^= 0x80;
    assert_eq!(to_hex(&h.send_on(WS1, &damaged)), "809000", "a flipped bit");
    // Neither counted: the next frame (id 3) goes through; the name is still "b".
    let answer = h.send_on(WS1, &client.seal(&[1, 4, 0, 0xff, 0xff, 0, 9]));
    assert_eq!(to_hex(&client.open(&answer)), "00629000");
}

#[test]
fn the_session_s_end_wipes_the_key() {
    let mut h = Harness::new();
    scram_device(&mut h);
    let mut client = scram_login(&mut h);
    let frame = client.seal(&INNER_GET_GROUP);
    assert_eq!(to_hex(&client.open(&h.send_on(WS1, &frame))), "00ffff9000");
    // Idle past the inactivity period: the session ends, and its key with it.
    h.advance_secs(3601);
    assert_eq!(
        to_hex(&h.send_on(WS1, &client.seal(&INNER_GET_GROUP))),
        "809000"
    );
    // A logout inside the tunnel is answered sealed, then the key is gone.
    let mut client = scram_login(&mut h);
    let answer = h.send_on(WS1, &client.seal(&[2, 4, 0, 0xff, 0xff, 0, 1]));
    assert_eq!(to_hex(&client.open(&answer)), "009000");
    assert_eq!(
        to_hex(&h.send_on(WS1, &client.seal(&INNER_GET_GROUP))),
        "809000"
    );
}

#[test]
fn another_channel_cannot_use_the_session_s_tunnel() {
    let mut h = Harness::new();
    scram_device(&mut h);
    let mut client = scram_login(&mut h);
    let frame = client.seal(&INNER_GET_GROUP);
    assert_eq!(to_hex(&h.send_on(WS2, &frame)), "a89000");
    // Nor did it burn the frame id: the owner's frame still goes through.
    assert_eq!(to_hex(&client.open(&h.send_on(WS1, &frame))), "00ffff9000");
}

#[test]
fn a_tunnelled_request_that_waits_on_the_target_is_answered_sealed() {
    let mut h = Harness::new();
    scram_device(&mut h);
    let mut client = scram_login(&mut h);
    // Variable 1: a UINT32 in the target at 0x20000010.
    for inner in [
        vec![2, 4, 5, 0, 1, 0xff, 0xff],
        vec![3, 4, 5, 0, 1, 0, 0, 0x20, 0, 0, 0x10],
        vec![3, 4, 5, 0, 1, 0, 1, 0x23],
    ] {
        let answer = h.send_on(WS1, &client.seal(&inner));
        assert_eq!(
            to_hex(&client.open(&answer)),
            "009000",
            "{}",
            to_hex(&inner)
        );
    }
    let mut ram = MemoryTarget(RamTarget::<64>::new(0x2000_0000));
    ram.0.write(0x2000_0010, &[0xde, 0xad, 0xbe, 0xef]).unwrap();
    let mut request = client.seal(&[1, 4, 5, 0, 1, 0, 4]);
    let len = h.device.unseal(WS1, &mut request);
    let request = &request[..len];
    let mut out = [0u8; 1024];
    let mut step = h.device.start(WS1, request, Instant::ZERO, &mut out);
    let mut operations = 0;
    let answer = loop {
        match step {
            Step::Done(outcome) => break out[..outcome.len].to_vec(),
            Step::Pending(op) => {
                assert!(matches!(op, Operation::ReadTarget { .. }));
                operations += 1;
                // Meanwhile another channel is answered busy, in clear.
                assert_eq!(to_hex(&h.send_on(WS2, &hex(GET_GROUP))), "a89000");
                let config = lwm2m_core::Config::default();
                let result = op.perform(&config, request, &mut out, &mut ram, &mut NoStore);
                step = h.device.resume(result, request, Instant::ZERO, &mut out);
            }
        }
    };
    assert_eq!(operations, 1);
    assert_eq!(to_hex(&client.open(&answer)), "00deadbeef9000");
}

#[test]
fn a_frame_of_the_tunnel_cannot_be_resent_with_an_iv_of_the_attacker_s() {
    let mut h = Harness::new();
    scram_device(&mut h);
    let mut client = scram_login(&mut h);
    let frame = client.seal(&INNER_GET_GROUP);
    assert_eq!(to_hex(&client.open(&h.send_on(WS1, &frame))), "00ffff9000");
    // The next frame, captured, resent as GET /1024//44 with a chosen IV: refused.
    let next = client.seal(&INNER_GET_GROUP);
    let ciphertext = &next[12..];
    let mut forged = vec![
        0xa2,
        0xca,
        0,
        0,
        (7 + 16 + ciphertext.len()) as u8,
        1,
        4,
        0,
        0xff,
        0xff,
        0,
        44,
    ];
    forged.extend_from_slice(&[0x55; 16]);
    forged.extend_from_slice(ciphertext);
    assert_eq!(to_hex(&h.send_on(WS1, &forged)), "819000");
    // The genuine frame still goes through.
    assert_eq!(to_hex(&client.open(&h.send_on(WS1, &next))), "00ffff9000");
}

/// A board's primitives: software, counting the AES blocks it is given.
struct Counting;

static AES_BLOCKS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl lwm2m_core::crypto::Crypto for Counting {
    fn aes128_cbc_encrypt(&mut self, key: &[u8; 16], iv: &[u8; 16], blocks: &mut [[u8; 16]]) {
        AES_BLOCKS.fetch_add(blocks.len(), std::sync::atomic::Ordering::Relaxed);
        Software.aes128_cbc_encrypt(key, iv, blocks)
    }

    fn aes128_cbc_decrypt(&mut self, key: &[u8; 16], iv: &[u8; 16], blocks: &mut [[u8; 16]]) {
        AES_BLOCKS.fetch_add(blocks.len(), std::sync::atomic::Ordering::Relaxed);
        Software.aes128_cbc_decrypt(key, iv, blocks)
    }

    fn hmac_sha256(&mut self, key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        Software.hmac_sha256(key, parts)
    }
}

#[test]
fn a_board_s_primitives_run_the_tunnel() {
    let mut h = Harness::new();
    h.device.with_crypto(Box::leak(Box::new(Counting)));
    scram_device(&mut h);
    let mut client = scram_login(&mut h);
    let before = AES_BLOCKS.load(std::sync::atomic::Ordering::Relaxed);
    let answer = h.send_on(WS1, &client.seal(&INNER_GET_GROUP));
    assert_eq!(to_hex(&client.open(&answer)), "00ffff9000");
    let blocks = AES_BLOCKS.load(std::sync::atomic::Ordering::Relaxed) - before;
    // One block opened, one sealed: the engine ran on the board's primitives.
    assert_eq!(blocks, 2);
}
