//! Cost of the access-control decision and of a bundle read, on the host.
//!
//! ```text
//! cargo bench -p lwm2m-objects --bench acl
//! ```
//!
//! - `acl::rights` / `acl::check (Read)`: a user profile on a bundle whose ACL holds
//!   [`MAX_ACL_ENTRIES`] (8) entries, none of them anonymous's. "found last": the user's
//!   entry is the 8th; "not found": the user has no entry (both scans run to the end).
//!   "16 bundles": the same bundle is the last of [`MAX_BUNDLES`] (16), so the bundle
//!   lookup also runs to the end.
//! - `handle GET /1028/1/1`: the values of a bundle of 16 UINT32 variables as OMA-TLV,
//!   read by a logged-in user with the read right; the variables live in the target
//!   (a `MemoryTarget(RamTarget)`) or in the device (in-device static).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use lwm2m_core::acl::{self, Access, Subject};
use lwm2m_core::auth::Credential;
use lwm2m_core::config::{
    AclEntry, Bundle, Config, Profile, Rights, Variable, ADMIN, MAX_ACL_ENTRIES, MAX_BUNDLES,
};
use lwm2m_core::target::MemoryTarget;
use lwm2m_core::{Channel, ChannelKind, Device, FrameLimits, Instant};
use lwm2m_objects::{standard_objects, DeviceInfo, NoHooks, StandardObjects};
use target_traits::RamTarget;

const LIMITS: FrameLimits = FrameLimits {
    max_request: 1024,
    max_response: 1024,
};
const WS: Channel = Channel::new(1, ChannelKind::WebSocket);

/// The bundle the benchmarks read.
const BUNDLE: u16 = 1;
/// A user whose ACL entry is the last of the bundle's.
const LAST: Subject = Subject {
    user: 17,
    rights: 17,
};
/// A user without an ACL entry.
const ABSENT_USER: Subject = Subject {
    user: 30,
    rights: 30,
};

/// Variables of the read bundle.
const VARIABLES: u16 = 16;
const RAM_BASE: u32 = 0x2000_0000;
type Ram = RamTarget<256>;
type TapDevice = Device<StandardObjects<NoHooks>, MemoryTarget<Ram>>;

/// A bundle whose 8 ACL entries are for profiles 10..=17 (17 last).
fn full_acl_bundle(id: u16) -> Bundle {
    let mut bundle = Bundle::new(id);
    for profile in 10..10 + MAX_ACL_ENTRIES as u16 {
        bundle
            .acl
            .push(AclEntry {
                profile,
                rights: Rights::READ,
            })
            .unwrap();
    }
    bundle
}

/// One bundle, or `MAX_BUNDLES` bundles with [`BUNDLE`] last.
fn acl_config(bundles: usize) -> Config {
    let mut config = Config::default();
    for id in 0..bundles as u16 - 1 {
        config.bundles.push(full_acl_bundle(100 + id)).unwrap();
    }
    config.bundles.push(full_acl_bundle(BUNDLE)).unwrap();
    config
}

/// user1 (password `pwd`) may read bundle 1, which holds variables 1..=16: UINT32 in the
/// target at `RAM_BASE + 4 × (id - 1)`, or in the device.
fn bundle_config(in_device: bool) -> Config {
    let mut config = Config::default();
    config
        .profiles
        .push(Profile::new(1, b"user1").with_credential(Credential::from_password(b"pwd")))
        .unwrap();
    let mut bundle = Bundle::new(BUNDLE);
    for (profile, rights) in [(1, Rights::READ), (ADMIN, Rights::ALL)] {
        bundle.acl.push(AclEntry { profile, rights }).unwrap();
    }
    config.bundles.push(bundle).unwrap();
    for id in 1..=VARIABLES {
        let mut var = Variable::new(id);
        var.bundle = Some(BUNDLE);
        if in_device {
            var.var_type = 0x83; // in-device static, UINT32
            var.value = heapless::Vec::from_slice(&u32::from(id).to_be_bytes()).unwrap();
        } else {
            var.var_type = 0x03; // target, UINT32
            var.address = (RAM_BASE + 4 * u32::from(id - 1)).to_be_bytes();
        }
        config.variables.push(var).unwrap();
    }
    config
}

fn device(config: Config) -> TapDevice {
    let info = DeviceInfo {
        manufacturer: "IoTize",
        flavor: "bench",
        serial: heapless::String::try_from("TAPEMU000000000001").unwrap(),
        firmware_version: "1.99.0",
    };
    let mut ram = Ram::new(RAM_BASE);
    for id in 1..=VARIABLES {
        let address = RAM_BASE + 4 * u32::from(id - 1);
        target_traits::MemoryAccess::write(&mut ram, address, &u32::from(id).to_be_bytes())
            .unwrap();
    }
    Device::new(
        standard_objects(info, NoHooks),
        config,
        Config::reset,
        LIMITS,
    )
    .with_target(MemoryTarget(ram))
}

/// `POST /1024//0` user1 / pwd.
fn login_user1() -> Vec<u8> {
    let mut apdu = vec![
        0xa2, 0xda, 0x00, 0x00, 0x27, 0x02, 0x04, 0x00, 0xff, 0xff, 0x00, 0x00,
    ];
    let mut field = |text: &[u8]| {
        let mut f = [0u8; 16];
        f[..text.len()].copy_from_slice(text);
        apdu.extend_from_slice(&f);
    };
    field(b"user1");
    field(b"pwd");
    apdu
}

/// `GET /1028/1/1`.
const GET_BUNDLE: [u8; 12] = [
    0xa2, 0xca, 0x00, 0x00, 0x07, 0x01, 0x04, 0x04, 0x00, 0x01, 0x00, 0x01,
];

fn send(device: &mut TapDevice, apdu: &[u8]) -> Vec<u8> {
    let mut out = [0u8; 1024];
    let n = device.handle(WS, apdu, Instant::ZERO, &mut out).len;
    out[..n].to_vec()
}

/// The expected TLV: container 88 01 60 holding `c4 id value` for every variable.
fn expected_bundle() -> Vec<u8> {
    let mut tlv = vec![0x00, 0x88, BUNDLE as u8, 6 * VARIABLES as u8];
    for id in 1..=VARIABLES {
        tlv.extend_from_slice(&[0xc4, id as u8]);
        tlv.extend_from_slice(&u32::from(id).to_be_bytes());
    }
    tlv.extend_from_slice(&[0x90, 0x00]);
    tlv
}

fn logged_in(in_device: bool) -> TapDevice {
    let mut device = device(bundle_config(in_device));
    assert_eq!(send(&mut device, &login_user1()), [0x00, 0x90, 0x00]);
    // The request does what the benchmark says.
    assert_eq!(send(&mut device, &GET_BUNDLE), expected_bundle());
    device
}

fn acl_benches(c: &mut Criterion) {
    for (bundles, label) in [(1, ""), (MAX_BUNDLES, ", 16 bundles")] {
        let config = acl_config(bundles);
        // The subjects see what the benchmark names say.
        assert_eq!(acl::rights(&config, LAST, Some(BUNDLE)), Rights::READ);
        assert_eq!(
            acl::rights(&config, ABSENT_USER, Some(BUNDLE)),
            Rights::NONE
        );
        for (subject, case) in [(LAST, "found last"), (ABSENT_USER, "not found")] {
            c.bench_function(
                &format!("acl::rights user, 8 entries, {case}{label}"),
                |b| {
                    b.iter(|| {
                        acl::rights(
                            black_box(&config),
                            black_box(subject),
                            black_box(Some(BUNDLE)),
                        )
                    })
                },
            );
            c.bench_function(
                &format!("acl::check Read user, 8 entries, {case}{label}"),
                |b| {
                    b.iter(|| {
                        acl::check(
                            black_box(&config),
                            black_box(Access::Read),
                            black_box(subject),
                            black_box(3),
                            || black_box(Some(BUNDLE)),
                        )
                    })
                },
            );
        }
    }
}

fn handle_benches(c: &mut Criterion) {
    let mut out = [0u8; 1024];
    for (in_device, name) in [
        (
            false,
            "handle GET /1028/1/1, 16 UINT32 target variables, user with read",
        ),
        (
            true,
            "handle GET /1028/1/1, 16 UINT32 in-device variables, user with read",
        ),
    ] {
        let mut dev = logged_in(in_device);
        c.bench_function(name, |b| {
            b.iter(|| {
                let outcome = dev.handle(
                    black_box(WS),
                    black_box(&GET_BUNDLE[..]),
                    black_box(Instant::ZERO),
                    &mut out,
                );
                black_box((outcome, &out));
            })
        });
    }
}

criterion_group!(acl_group, acl_benches, handle_benches);
criterion_main!(acl_group);
