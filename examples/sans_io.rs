//! The device engine without any I/O: feed request APDUs, print the responses.
//!
//! A port does exactly this with a real link: receive a frame, call `start` with the
//! current time; if the request waits on an operation (a target read or write, a save),
//! perform it — blocking, awaiting, or over several polls of a slow bus — and call
//! `resume`; send the response, and sleep until the next request or
//! `outcome.next_deadline`, then call `poll`. (`handle` does `start`, the operations and
//! `resume` in one blocking call.)
//!
//! Run: `cargo run -p examples --example sans_io`

use lwm2m_core::{Channel, ChannelKind, Config, Device, FrameLimits, Instant, Step};
use lwm2m_objects::{standard_objects, DeviceInfo, NoHooks};

fn main() {
    let info = DeviceInfo {
        manufacturer: "IoTize",
        flavor: "example",
        serial: heapless::String::try_from("EXAMPLE0001").unwrap(),
        firmware_version: "0.1.0",
    };
    let limits = FrameLimits {
        max_request: 256,
        max_response: 256,
    };
    let mut device = Device::new(
        standard_objects(info, NoHooks),
        Config::default(),
        Config::reset,
        limits,
    );
    let phone = Channel::new(1, ChannelKind::Ble);
    let mut out = [0u8; 256];

    let requests: [(&str, &[u8]); 6] = [
        (
            "GET /3//2 serial number",
            &[0xA2, 0xCA, 0, 0, 7, 1, 0, 3, 0xFF, 0xFF, 0, 2],
        ),
        (
            "POST /3//4 reboot (anonymous)",
            &[0xA2, 0xDA, 0, 0, 7, 2, 0, 3, 0xFF, 0xFF, 0, 4],
        ),
        (
            "POST /1024//0 login admin/admin",
            &login(b"admin", b"admin"),
        ),
        (
            "GET /1024//7 current group",
            &[0xA2, 0xCA, 0, 0, 7, 1, 4, 0, 0xFF, 0xFF, 0, 7],
        ),
        (
            "POST /1024//10 save the configuration",
            &[0xA2, 0xDA, 0, 0, 7, 2, 4, 0, 0xFF, 0xFF, 0, 10],
        ),
        (
            "GET /1234//0 unknown object",
            &[0xA2, 0xCA, 0, 0, 7, 1, 0x04, 0xD2, 0xFF, 0xFF, 0, 0],
        ),
    ];
    for (i, (what, apdu)) in requests.iter().enumerate() {
        let now = Instant::from_secs(i as u64);
        let mut step = device.start(phone, apdu, now, &mut out);
        let outcome = loop {
            match step {
                Step::Done(outcome) => break outcome,
                Step::Pending(op) => {
                    // Another request now would be answered A8 (busy) at once.
                    println!("{what:38}    waits on {op:?}");
                    let result = device.perform(&op, apdu, &mut out);
                    step = device.resume(result, apdu, now, &mut out);
                }
            }
        };
        println!("{what:38} -> {}", hex(&out[..outcome.len]));
        if let Some(deadline) = outcome.next_deadline {
            println!(
                "{:38}    session ends if idle until t = {} ms",
                "",
                deadline.as_millis()
            );
        }
    }
}

fn login(user: &[u8], password: &[u8]) -> [u8; 44] {
    let mut apdu = [0u8; 44];
    apdu[..12].copy_from_slice(&[0xA2, 0xDA, 0, 0, 39, 2, 4, 0, 0xFF, 0xFF, 0, 0]);
    apdu[12..12 + user.len()].copy_from_slice(user);
    apdu[28..28 + password.len()].copy_from_slice(password);
    apdu
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
