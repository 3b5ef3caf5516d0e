//! The encrypted session (feature `crypto`) against an attacker on the link: each test
//! shows a defect a review found (the client played with `lwm2m_core::crypto`).

mod common;
use common::*;
use lwm2m_core::auth::{Credential, ScramRecord};
use lwm2m_core::config::ADMIN;
use lwm2m_core::crypto::scram::{self, Nonces};
use lwm2m_core::crypto::{crc32, tunnel, Iv, Key, Software};
use lwm2m_core::{Channel, ChannelKind, Config, Device, Step};
use lwm2m_objects::{standard_objects, NoHooks, StandardObjects};

use common::{get_apdu as get, multi_apdu as multi, request_apdu as apdu};

/// admin/admin, salt a1b2c3d4, 1000 iterations (vectors.txt §B.7).
fn admin_record() -> ScramRecord {
    ScramRecord::from_bytes(&hex(
        "76f1fcd0e4af69633612304ff45d2ad34cdd977c33381fc808277ca2b45e22fea1b2c3d4",
    ))
    .unwrap()
}

/// The transcript device, admin with a SCRAM record, seeded.
fn scram_device() -> Harness {
    let mut config = Config::default();
    config.profile_mut(ADMIN).unwrap().credential = Credential::Scram(admin_record());
    let mut device: Device<StandardObjects<NoHooks>> = Device::new(
        standard_objects(device_info(), NoHooks),
        config,
        Config::reset,
        LIMITS,
    );
    device.seed(&[0x5a; 32]);
    Harness::from_device(device)
}

/// The client's side of the tunnel.
struct Client {
    key: Key,
    iv_request: Iv,
    iv_answer: Iv,
    next_id: u16,
}

impl Client {
    fn new(key: Key) -> Client {
        Client {
            key,
            iv_request: [0; 16],
            iv_answer: [0; 16],
            next_id: 0,
        }
    }

    /// The ciphertext of the inner frame of `apdu` (an APDU) as frame `id` under `iv`.
    fn frame(&self, id: u16, iv: &Iv, apdu: &[u8]) -> Vec<u8> {
        let inner = &apdu[5..];
        let mut frame = vec![0u8; tunnel::sealed_len(inner.len()).unwrap()];
        frame[tunnel::HEADER_LEN..tunnel::HEADER_LEN + inner.len()].copy_from_slice(inner);
        tunnel::seal(&mut Software, &self.key, iv, id, &mut frame, inner.len()).unwrap();
        frame
    }

    /// `GET /1024//48` carrying `apdu`'s inner frame, the next id.
    fn wrap(&mut self, apdu: &[u8]) -> Vec<u8> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        get_with(48, &self.frame(id, &self.iv_request, apdu))
    }

    /// The inner answer (`status | data | 90 00`) of a `/48` answer.
    fn open(&self, answer: &[u8]) -> Vec<u8> {
        assert_eq!(answer[0], 0, "outer status of {}", to_hex(answer));
        assert_eq!(&answer[answer.len() - 2..], [0x90, 0x00]);
        let mut frame = answer[1..answer.len() - 2].to_vec();
        let opened = tunnel::open(&mut Software, &self.key, &self.iv_answer, &mut frame)
            .unwrap_or_else(|e| panic!("{e:?}: {}", to_hex(answer)));
        frame[opened.inner].to_vec()
    }

    /// Sends `apdu` through the tunnel on WS1, returns the inner answer.
    fn send(&mut self, h: &mut Harness, apdu: &[u8]) -> Vec<u8> {
        let mut request = self.wrap(apdu);
        let answer = unsealed_send(h, WS1, &mut request);
        self.open(&answer)
    }
}

/// `GET /1024//<resource>` with `payload`.
fn get_with(resource: u16, payload: &[u8]) -> Vec<u8> {
    apdu(1, 1024, 0xFFFF, resource, payload)
}

/// What a port does: `unseal`, then `handle`.
/// (`Harness::send_on` opens a tunnel request itself, as the device loop does.)
fn unsealed_send(h: &mut Harness, channel: Channel, request: &mut [u8]) -> Vec<u8> {
    h.send_on(channel, request)
}

/// The SCRAM login of admin/admin in clear on WS1: the session key.
fn scram_login(h: &mut Harness) -> Key {
    let mut body = b"admin".to_vec();
    body.resize(16, 0);
    body.extend_from_slice(&[1, 2, 3, 4]);
    let answer = h.send_on(WS1, &get_with(40, &body));
    assert_eq!(answer[0], 0, "{}", to_hex(&answer));
    let nonces = Nonces {
        client: [1, 2, 3, 4],
        server: answer[1..5].try_into().unwrap(),
    };
    let proof = scram::client_proof(&mut Software, &admin_record(), nonces);
    let answer = h.send_on(WS1, &get_with(41, &proof.0));
    assert_eq!(answer[0], 0, "{}", to_hex(&answer));
    scram::session_key(&mut Software, &admin_record(), nonces).0
}

/// `PUT /1024//34` (admin only): the inactivity period.
fn put_inactivity(secs: u8) -> Vec<u8> {
    apdu(3, 1024, 0xFFFF, 34, &[secs])
}

// ---------------------------------------------------------------------------------------
// 1. The anonymous key of `/1024//47` travels in clear: whoever listens can wrap frames
//    under it. A SCRAM login tunnelled under that key (§9.1: "a re-login while encrypted
//    would be tunnelled") put in a multi-request with an admin write after the proof ran
//    that write with the admin's rights, though it did not come under the SCRAM key.
// ---------------------------------------------------------------------------------------

#[test]
fn a_scram_login_under_the_anonymous_key_gives_its_own_request_no_rights() {
    let mut h = scram_device();
    // The client starts encryption anonymously (the key in clear).
    let answer = h.send_on(WS1, &get_with(47, &[]));
    assert_eq!(answer[0], 0);
    let anonymous_key: Key = answer[1..17].try_into().unwrap();
    let mut client = Client::new(anonymous_key);
    // It logs in as admin inside the tunnel: step 1.
    let mut body = b"admin".to_vec();
    body.resize(16, 0);
    body.extend_from_slice(&[1, 2, 3, 4]);
    let inner = client.send(&mut h, &get_with(40, &body));
    assert_eq!(inner[0], 0, "{}", to_hex(&inner));
    let nonces = Nonces {
        client: [1, 2, 3, 4],
        server: inner[1..5].try_into().unwrap(),
    };
    let proof = scram::client_proof(&mut Software, &admin_record(), nonces);
    // The attacker, who read the anonymous key, opens the client's proof frame and
    // rewraps its proof with an admin write after it.
    let forged = multi(&[get_with(41, &proof.0), put_inactivity(0)]);
    let inner = client.send(&mut h, &forged);
    assert_eq!(inner[0], 0, "{}", to_hex(&inner));
    assert_eq!(
        h.device.config().inactivity_secs,
        60,
        "an admin write ran under the anonymous key"
    );
}

#[test]
fn a_scram_login_in_clear_gives_its_own_request_no_rights() {
    let mut h = scram_device();
    let mut body = b"admin".to_vec();
    body.resize(16, 0);
    body.extend_from_slice(&[1, 2, 3, 4]);
    let answer = h.send_on(WS1, &get_with(40, &body));
    let nonces = Nonces {
        client: [1, 2, 3, 4],
        server: answer[1..5].try_into().unwrap(),
    };
    let proof = scram::client_proof(&mut Software, &admin_record(), nonces);
    let answer = h.send_on(WS1, &multi(&[get_with(41, &proof.0), put_inactivity(0)]));
    assert_eq!(answer[0], 0);
    assert_eq!(h.device.config().inactivity_secs, 60);
}

// ---------------------------------------------------------------------------------------
// 2. A tunnelled request that waits on a target operation lost its sealing to any other
//    request meanwhile (its `unseal`, a side handler's request, the busy answer's
//    `sealed`): once resumed, its answer went out in clear — or the busy answer of the
//    other channel was sealed with its key, IV and frame id.
// ---------------------------------------------------------------------------------------

/// Logs in as admin (plain: its rights hold in the tunnel too), declares bundle 1 with
/// target variable 1, and starts anonymous encryption: the client.
fn waiting_tunnel() -> (Harness, Client) {
    let mut h = Harness::new();
    h.device.seed(&[0x33; 32]);
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    for frame in [
        apdu(2, 1028, 1, 0xFFFF, &[]),
        apdu(2, 1029, 1, 0xFFFF, &[]),
        apdu(3, 1029, 1, 0, &0x2000_0000u32.to_be_bytes()),
        apdu(3, 1029, 1, 1, &[0x22]),
        apdu(3, 1029, 1, 2, &[2]),
        apdu(3, 1029, 1, 6, &1u16.to_be_bytes()),
    ] {
        assert_eq!(to_hex(&h.send_on(WS1, &frame)), "009000");
    }
    let answer = h.send_on(WS1, &get_with(47, &[]));
    assert_eq!(answer[0], 0);
    let client = Client::new(answer[1..17].try_into().unwrap());
    (h, client)
}

/// Starts the tunnelled read of variable 1 on WS1: it waits on the target.
fn start_waiting_read(h: &mut Harness, client: &mut Client) -> (Vec<u8>, [u8; 1024]) {
    let mut request = client.wrap(&get(1029, 1, 4));
    let len = h.device.unseal(WS1, &mut request);
    request.truncate(len);
    let mut out = [0u8; 1024];
    let Step::Pending(_) = h.device.start(WS1, &request, h.now, &mut out) else {
        panic!("a target read waits")
    };
    (request, out)
}

/// Completes the waiting read: the answer must be sealed.
fn resume_sealed(h: &mut Harness, client: &Client, request: &[u8], out: &mut [u8; 1024]) {
    let Step::Done(outcome) = h.device.resume(Ok(()), request, h.now, out) else {
        panic!("done after its one read")
    };
    let answer = out[..outcome.len].to_vec();
    let inner = client.open(&answer);
    assert_eq!(inner[0], 0, "{}", to_hex(&inner));
}

#[test]
fn another_channel_s_request_meanwhile_does_not_unseal_a_waiting_answer() {
    let (mut h, mut client) = waiting_tunnel();
    let (request, mut out) = start_waiting_read(&mut h, &mut client);
    // Another link's request meanwhile, unsealed first as a port does: busy, in clear.
    let mut other = get(3, 0xFFFF, 2);
    let busy = unsealed_send(&mut h, WS2, &mut other);
    assert_eq!(to_hex(&busy), "a89000");
    resume_sealed(&mut h, &client, &request, &mut out);
}

#[test]
fn a_busy_answer_meanwhile_takes_no_sealing() {
    let (mut h, mut client) = waiting_tunnel();
    let (request, mut out) = start_waiting_read(&mut h, &mut client);
    // Another link's request meanwhile, straight to `start` (nothing to unseal).
    let mut busy = [0u8; 64];
    let Step::Done(outcome) = h.device.start(WS2, &get(3, 0xFFFF, 2), h.now, &mut busy) else {
        panic!("busy")
    };
    assert_eq!(to_hex(&busy[..outcome.len]), "a89000");
    resume_sealed(&mut h, &client, &request, &mut out);
}

#[test]
fn a_side_handler_s_request_meanwhile_does_not_unseal_a_waiting_answer() {
    let (mut h, mut client) = waiting_tunnel();
    let (request, mut out) = start_waiting_read(&mut h, &mut client);
    let script = Channel::new(9, ChannelKind::WebSocket);
    let mut busy = [0u8; 64];
    let _ = h
        .device
        .start_side(script, ADMIN, &get(3, 0xFFFF, 2), h.now, &mut busy);
    resume_sealed(&mut h, &client, &request, &mut out);
}

// ---------------------------------------------------------------------------------------
// 3. User enumeration: the first step of a SCRAM login answered a name without a SCRAM
//    record with a fresh random salt each time, a SCRAM profile with its record's: two
//    asks tell which names are SCRAM profiles.
// ---------------------------------------------------------------------------------------

/// The salt the first step answers for `name`.
fn salt_of(h: &mut Harness, name: &[u8]) -> Vec<u8> {
    let mut body = name.to_vec();
    body.resize(16, 0);
    body.extend_from_slice(&[9, 9, 9, 9]);
    let answer = h.send_on(WS1, &get_with(40, &body));
    assert_eq!(answer[0], 0, "{}", to_hex(&answer));
    answer[5..9].to_vec()
}

#[test]
fn a_name_without_a_scram_record_answers_the_same_salt_every_time() {
    let mut h = scram_device();
    assert_eq!(salt_of(&mut h, b"admin"), salt_of(&mut h, b"admin"));
    // No such profile, and a profile with a plain password.
    for name in [&b"nobody"[..], b"supervisor"] {
        let first = salt_of(&mut h, name);
        assert_eq!(
            first,
            salt_of(&mut h, name),
            "{}: its salt tells it is no SCRAM profile",
            String::from_utf8_lossy(name)
        );
    }
    assert_ne!(salt_of(&mut h, b"nobody"), salt_of(&mut h, b"somebody"));
}

// ---------------------------------------------------------------------------------------
// 4. A clear `GET /1024//45` in a SCRAM session (which the client never sends: its IV
//    exchanges travel in the tunnel, §10.4) set the tunnel's request IV to one of the
//    attacker's choosing. CBC's IV is XORed into the first block and the CRC is linear:
//    the client's next single-block frame then opened as a request of the attacker's
//    choosing, run with the SCRAM rights.
// ---------------------------------------------------------------------------------------

/// The plaintext of a one-block frame of `inner` (at most 8 bytes) as frame `id`.
fn one_block(id: u16, inner: &[u8]) -> [u8; 16] {
    let mut block = [0u8; 16];
    block[..2].copy_from_slice(&id.to_be_bytes());
    block[2..4].copy_from_slice(&(inner.len() as u16).to_be_bytes());
    block[4..4 + inner.len()].copy_from_slice(inner);
    let crc = crc32(&block[..12], None);
    block[12..].copy_from_slice(&crc.to_be_bytes());
    block
}

#[test]
fn a_clear_iv_exchange_does_not_steer_a_scram_tunnel() {
    let mut h = scram_device();
    let key = scram_login(&mut h);
    let mut client = Client::new(key);
    // The client's first frame, GET /1024//7, under the zero IVs: the attacker holds it
    // back. It knows its plaintext (the client's usual refresh, frame 0).
    let genuine = client.wrap(&get(1024, 0xFFFF, 7));
    let wanted = one_block(0, &put_inactivity(0)[5..]);
    let known = one_block(0, &get(1024, 0xFFFF, 7)[5..]);
    let iv: Vec<u8> = (0..16).map(|i| known[i] ^ wanted[i]).collect();
    // The attacker sets the request IV in clear, then lets the frame through.
    let _ = h.send_on(WS1, &get_with(45, &iv));
    let mut request = genuine;
    let _ = unsealed_send(&mut h, WS1, &mut request);
    assert_eq!(
        h.device.config().inactivity_secs,
        60,
        "the client's read ran as the attacker's admin write"
    );
}

/// The test client agrees with the device's own seal (a sanity check of the helpers).
#[test]
fn the_tunnel_works_after_a_scram_login() {
    let mut h = scram_device();
    let key = scram_login(&mut h);
    let mut client = Client::new(key);
    let inner = client.send(&mut h, &get(1024, 0xFFFF, 7));
    assert_eq!(to_hex(&inner), "00ffff9000");
    // In clear, anonymous.
    assert_eq!(h.tx(GET_GROUP), "0000009000");
    let inner = client.send(&mut h, &put_inactivity(30));
    assert_eq!(to_hex(&inner), "009000");
    assert_eq!(h.device.config().inactivity_secs, 30);
    // An IV exchange in the tunnel switches after its answer.
    let inner = client.send(&mut h, &get_with(45, &[0x11; 16]));
    assert_eq!(inner[0], 0);
    client.iv_request = [0x11; 16];
    client.iv_answer = inner[1..17].try_into().unwrap();
    let inner = client.send(&mut h, &get(1024, 0xFFFF, 7));
    assert_eq!(to_hex(&inner), "00ffff9000");
}
