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
//! engine pays). Every iteration is checked against the expected answer outside the count.

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
