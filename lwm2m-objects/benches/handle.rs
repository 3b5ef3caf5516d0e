//! Cost of `Device::handle` for the standard objects, on the host.
//!
//! ```text
//! cargo bench -p lwm2m-objects --bench handle
//! ```
//!
//! - `handle GET /3//2`: an anonymous read, the device reused across iterations.
//! - `handle login admin/admin (plain)`: a plain-password login on a fresh device (built
//!   outside the timing).
//!   Passwords are stored as their hash, so the device derives the PBKDF2-HMAC-SHA1 hash
//!   (4096 iterations) of the field to compare it.
//! - `handle login unknown name (plain)`, `handle login admin, wrong password (plain)`:
//!   the same cost whatever the name (no user enumeration by timing).
//! - `handle login admin (hashed-password option)`: the `hashPassword` security option
//!   on: the field is the hash, compared as it is.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use lwm2m_core::config::SecurityOptions;
use lwm2m_core::{Channel, ChannelKind, Config, Device, FrameLimits, Instant};
use lwm2m_objects::{standard_objects, DeviceInfo, NoHooks, StandardObjects};

const LIMITS: FrameLimits = FrameLimits {
    max_request: 1024,
    max_response: 1024,
};
const WS: Channel = Channel::new(1, ChannelKind::WebSocket);

/// vectors.txt §A.
const GET_SERIAL: [u8; 12] = [
    0xa2, 0xca, 0x00, 0x00, 0x07, 0x01, 0x00, 0x03, 0xff, 0xff, 0x00, 0x02,
];
const LOGIN_ADMIN: [u8; 44] = login(*b"admin\0\0\0\0\0\0\0\0\0\0\0");
const LOGIN_ADMIN_WRONG: [u8; 44] = login(*b"wrong\0\0\0\0\0\0\0\0\0\0\0");
const LOGIN_UNKNOWN: [u8; 44] = login_as(*b"nobody", *b"admin\0\0\0\0\0\0\0\0\0\0\0");
const LOGIN_ADMIN_HASHED: [u8; 44] = login([
    0x01, 0x55, 0xaf, 0xfc, 0x02, 0x3a, 0xff, 0x68, 0x82, 0xf5, 0x6a, 0x4e, 0x0d, 0x9c, 0x54, 0x66,
]);

/// POST /1024//0 with user name `admin` and the given password field.
const fn login(password: [u8; 16]) -> [u8; 44] {
    login_as(*b"admin", password)
}

/// POST /1024//0 with the given user name and password field.
const fn login_as<const N: usize>(name: [u8; N], password: [u8; 16]) -> [u8; 44] {
    let mut apdu = [0u8; 44];
    let header = [
        0xa2, 0xda, 0x00, 0x00, 0x27, 0x02, 0x04, 0x00, 0xff, 0xff, 0x00, 0x00,
    ];
    let mut i = 0;
    while i < header.len() {
        apdu[i] = header[i];
        i += 1;
    }
    let mut i = 0;
    while i < name.len() {
        apdu[12 + i] = name[i];
        i += 1;
    }
    let mut i = 0;
    while i < 16 {
        apdu[28 + i] = password[i];
        i += 1;
    }
    apdu
}

type TapDevice = Device<StandardObjects<NoHooks>>;

fn device(config: Config) -> TapDevice {
    let info = DeviceInfo {
        manufacturer: "IoTize",
        flavor: "bench",
        serial: heapless::String::try_from("TAPEMU000000000001").unwrap(),
        firmware_version: "1.99.0",
    };
    Device::new(
        standard_objects(info, NoHooks),
        config,
        Config::reset,
        LIMITS,
    )
}

fn hashed_config() -> Config {
    Config {
        security_options: SecurityOptions(SecurityOptions::HASH_PASSWORD),
        ..Config::default()
    }
}

/// Sends one APDU and returns the response bytes (for the sanity checks).
fn send(device: &mut TapDevice, apdu: &[u8]) -> Vec<u8> {
    let mut out = [0u8; 1024];
    let outcome = device.handle(WS, apdu, Instant::ZERO, &mut out);
    out[..outcome.len].to_vec()
}

fn benches(c: &mut Criterion) {
    // The requests do what the benchmark names say.
    assert_eq!(
        send(&mut device(Config::default()), &GET_SERIAL),
        b"\x00TAPEMU000000000001\x90\x00"
    );
    assert_eq!(
        send(&mut device(Config::default()), &LOGIN_ADMIN),
        [0x00, 0x90, 0x00]
    );
    assert_eq!(
        send(&mut device(hashed_config()), &LOGIN_ADMIN_HASHED),
        [0x00, 0x90, 0x00]
    );

    let mut out = [0u8; 1024];

    let mut dev = device(Config::default());
    c.bench_function("handle GET /3//2", |b| {
        b.iter(|| {
            let outcome = dev.handle(
                black_box(WS),
                black_box(&GET_SERIAL[..]),
                black_box(Instant::ZERO),
                &mut out,
            );
            black_box((outcome, &out));
        })
    });

    c.bench_function("handle login admin/admin (plain)", |b| {
        b.iter_batched(
            || device(Config::default()),
            |mut dev| {
                let outcome = dev.handle(
                    black_box(WS),
                    black_box(&LOGIN_ADMIN[..]),
                    black_box(Instant::ZERO),
                    &mut out,
                );
                black_box((outcome, &out));
                // Dropped outside the timing.
                dev
            },
            BatchSize::SmallInput,
        )
    });

    for (name, apdu) in [
        ("handle login unknown name (plain)", LOGIN_UNKNOWN),
        (
            "handle login admin, wrong password (plain)",
            LOGIN_ADMIN_WRONG,
        ),
    ] {
        assert_eq!(
            send(&mut device(Config::default()), &apdu),
            [0x81, 0x90, 0x00]
        );
        c.bench_function(name, |b| {
            b.iter_batched(
                || device(Config::default()),
                |mut dev| {
                    let outcome = dev.handle(
                        black_box(WS),
                        black_box(&apdu[..]),
                        black_box(Instant::ZERO),
                        &mut out,
                    );
                    black_box((outcome, &out));
                    dev
                },
                BatchSize::SmallInput,
            )
        });
    }

    c.bench_function("handle login admin (hashed-password option)", |b| {
        b.iter_batched(
            || device(hashed_config()),
            |mut dev| {
                let outcome = dev.handle(
                    black_box(WS),
                    black_box(&LOGIN_ADMIN_HASHED[..]),
                    black_box(Instant::ZERO),
                    &mut out,
                );
                black_box((outcome, &out));
                dev
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(handle, benches);
criterion_main!(handle);
