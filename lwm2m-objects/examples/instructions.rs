//! The requests whose instruction counts `cargo xtask instructions` reports: run under
//! `valgrind --tool=callgrind --toggle-collect=instructions::measured`, which counts the
//! instructions of [`measured`] only.
//!
//! ```text
//! instructions CASE ITERATIONS
//! ```
//!
//! CASE is `get` (`GET /3//2`, anonymous), `login` (`POST /1024//0` admin/admin, the
//! password in clear), `multi` (a multi-request of three GETs: `/3//0`, `/3//2`,
//! `/1024//7`) or `copy` (only copying the `get` request and its answer: the floor any
//! engine pays); with the `crypto` feature also `tunnel` (`GET /3//2` through the
//! encrypted tunnel: opening the frame, the request, sealing the answer), `aes` (the bare
//! cipher: AES-128-CBC decryption and encryption of 32 bytes, each with its key set up),
//! `scram` (both steps of a SCRAM login, the client's proof computed between them outside
//! the count) and `packet` (checking an encrypted 1 KiB single packet: its key, its
//! decryption and its CRC). Every iteration is checked against the expected answer
//! outside the count.

use std::hint::black_box;

use lwm2m_core::{Channel, ChannelKind, Config, Device, FrameLimits, Instant};
use lwm2m_objects::{standard_objects, DeviceInfo, NoHooks, StandardObjects};

const LIMITS: FrameLimits = FrameLimits {
    max_request: 1024,
    max_response: 1024,
};
const WS: Channel = Channel::new(1, ChannelKind::WebSocket);

type TapDevice = Device<StandardObjects<NoHooks>>;

fn device() -> TapDevice {
    let info = DeviceInfo {
        manufacturer: "IoTize",
        flavor: "instructions",
        serial: heapless::String::try_from("TAPEMU000000000001").unwrap(),
        firmware_version: "1.99.0",
    };
    Device::new(
        standard_objects(info, NoHooks),
        Config::default(),
        Config::reset,
        LIMITS,
    )
}

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

/// What is counted: one `handle` (or, for `copy`, the two copies alone).
#[inline(never)]
fn measured(case: &str, device: &mut TapDevice, request: &[u8], out: &mut [u8]) -> usize {
    if case == "copy" {
        // The request into the engine's buffer, the answer out of it.
        out[..request.len()].copy_from_slice(black_box(request));
        black_box(&out);
        let answer = black_box(EXPECTED_GET);
        out[..answer.len()].copy_from_slice(answer);
        return answer.len();
    }
    device
        .handle(black_box(WS), black_box(request), Instant::ZERO, out)
        .len
}

const EXPECTED_GET: &[u8] = b"\x00TAPEMU000000000001\x90\x00";

fn main() {
    let mut args = std::env::args().skip(1);
    let case = args.next().unwrap_or_else(|| "get".into());
    let iterations: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
    #[cfg(feature = "crypto")]
    if crypto::run(&case, iterations) {
        return;
    }
    let (request, expected): (Vec<u8>, Vec<u8>) = match case.as_str() {
        "get" | "copy" => (hex("a2ca000007 010003ffff0002"), EXPECTED_GET.to_vec()),
        "login" => (
            hex("a2da000027 020400ffff0000 61646d696e0000000000000000000000 61646d696e0000000000000000000000"),
            vec![0x00, 0x90, 0x00],
        ),
        "multi" => (
            hex("a2ca000025 010400ffff0059 0007 010003ffff0000 ff 0007 010003ffff0002 ff 0007 010400ffff0007 ff"),
            hex("00 0007 00 496f54697a65 0013 00 544150454d55303030303030303030303031 0003 00 0000 9000"),
        ),
        other => {
            eprintln!("unknown case {other}: get, login, multi or copy");
            std::process::exit(2);
        }
    };
    let mut out = [0u8; 1024];
    for _ in 0..iterations {
        // A fresh device per login (the session stays logged in otherwise).
        let mut dev = device();
        let len = measured(&case, &mut dev, &request, &mut out);
        assert_eq!(&out[..len], &expected[..], "{case}");
    }
}

/// The cases of the encrypted session.
#[cfg(feature = "crypto")]
mod crypto {
    use super::*;
    use lwm2m_core::auth::ScramRecord;
    use lwm2m_core::crypto::packet::{self, HashKey, Header};
    use lwm2m_core::crypto::scram::{self, Nonces};
    use lwm2m_core::crypto::{blocks_mut, tunnel, Crypto, Software};

    /// `GET /1024//47`.
    const NEW_KEY: &str = "a2ca000007 010400ffff002f";
    /// admin/admin, salt a1b2c3d4, 1000 iterations (vectors.txt §B.7).
    const RECORD: &str = "76f1fcd0e4af69633612304ff45d2ad34cdd977c33381fc808277ca2b45e22fea1b2c3d4";

    /// What is counted for the tunnel: opening the request, handling it, sealing the answer.
    #[inline(never)]
    fn measured_tunnel(device: &mut TapDevice, request: &mut [u8], out: &mut [u8]) -> usize {
        let len = device.unseal(black_box(WS), black_box(&mut *request));
        device.handle(WS, &request[..len], Instant::ZERO, out).len
    }

    /// What is counted for the bare cipher.
    #[inline(never)]
    fn measured_aes(key: &[u8; 16], data: &mut [u8; 32]) {
        let blocks = blocks_mut(&mut data[..]).unwrap();
        Software.aes128_cbc_decrypt(black_box(key), &[0; 16], blocks);
        Software.aes128_cbc_encrypt(black_box(key), &[0; 16], blocks);
    }

    /// What is counted for a single packet: its key, its decryption, its CRC.
    #[inline(never)]
    fn measured_packet(hash_key: &HashKey, bytes: &mut [u8]) -> usize {
        let header = *packet::key_input(bytes).unwrap();
        let key = packet::packet_key(&mut Software, &hash_key.0, b"admin", &header);
        packet::decrypt(&mut Software, &key.0, black_box(bytes))
            .map(|p| p.data.len())
            .unwrap_or(0)
    }

    fn seeded() -> TapDevice {
        let mut dev = device();
        dev.seed(&[7; 32]);
        dev
    }

    /// Runs `case` if it is one of the encrypted session's.
    pub fn run(case: &str, iterations: usize) -> bool {
        let mut out = [0u8; 1024];
        match case {
            "tunnel" => {
                let mut dev = seeded();
                let answer = {
                    let mut request = hex(NEW_KEY);
                    let len = dev.unseal(WS, &mut request);
                    let n = dev.handle(WS, &request[..len], Instant::ZERO, &mut out).len;
                    out[..n].to_vec()
                };
                let key: [u8; 16] = answer[1..17].try_into().unwrap();
                let inner = hex("010003ffff0002");
                for id in 0..iterations {
                    let mut frame = [0u8; 16];
                    frame[4..11].copy_from_slice(&inner);
                    tunnel::seal(&mut Software, &key, &[0; 16], id as u16, &mut frame, 7).unwrap();
                    let mut request = hex("a2ca000017 010400ffff0030");
                    request.extend_from_slice(&frame);
                    let len = measured_tunnel(&mut dev, &mut request, &mut out);
                    let mut sealed = out[1..len - 2].to_vec();
                    let opened = tunnel::open(&mut Software, &key, &[0; 16], &mut sealed).unwrap();
                    assert_eq!(&sealed[opened.inner], EXPECTED_GET, "tunnel");
                }
            }
            "aes" => {
                let key = [9u8; 16];
                for i in 0..iterations {
                    let mut data = [i as u8; 32];
                    measured_aes(&key, &mut data);
                    assert_eq!(data, [i as u8; 32], "aes");
                }
            }
            "scram" => {
                let record = ScramRecord::from_bytes(&hex(RECORD)).unwrap();
                let admin = hex("a2da000027 020400ffff0000 61646d696e0000000000000000000000 61646d696e0000000000000000000000");
                for _ in 0..iterations {
                    let mut dev = seeded();
                    // SCRAM on, the admin's record: set up outside the count.
                    for apdu in [
                        admin.clone(),
                        hex("a2da000009 030400ffff0006 0010"),
                        hex(&format!("a2da00002b 020401ffff0002 {RECORD}")),
                        hex("a2da000007 020400ffff0001"),
                    ] {
                        assert_eq!(dev.handle(WS, &apdu, Instant::ZERO, &mut out).len, 3);
                    }
                    let first =
                        hex("a2ca00001b 010400ffff0028 61646d696e0000000000000000000000 01020304");
                    let n = super::measured("scram", &mut dev, &first, &mut out);
                    assert_eq!(n, 15, "scram step 1");
                    let nonces = Nonces {
                        client: [1, 2, 3, 4],
                        server: out[1..5].try_into().unwrap(),
                    };
                    let proof = scram::client_proof(&mut Software, &record, nonces);
                    let mut second = hex("a2ca000017 010400ffff0029");
                    second.extend_from_slice(&proof.0);
                    let n = super::measured("scram", &mut dev, &second, &mut out);
                    let server = scram::server_proof(&mut Software, &record, nonces);
                    assert_eq!(&out[1..n - 2], &server.0[..], "scram step 2");
                }
            }
            "packet" => {
                let record = ScramRecord::from_bytes(&hex(RECORD)).unwrap();
                let hash_key = HashKey::of(&record);
                let header = Header {
                    send_time: 0x6000_0000,
                    packet_length: 0,
                    packet_id: 7,
                    config_version: 0,
                    message_type: 2,
                    extended: false,
                    encrypted: true,
                    ack: false,
                    sender: packet::SENDER_ADMIN,
                    salt: 0x1234,
                };
                let data = [0x5a; 1000];
                let mut sealed = [0u8; 1100];
                let len = packet::seal(
                    &mut Software,
                    &hash_key,
                    b"admin",
                    &header,
                    0,
                    &data,
                    &mut sealed,
                )
                .unwrap();
                for _ in 0..iterations {
                    let mut bytes = sealed[..len].to_vec();
                    assert_eq!(measured_packet(&hash_key, &mut bytes), 1000, "packet");
                }
            }
            _ => return false,
        }
        true
    }
}
