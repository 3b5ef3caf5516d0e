//! Drives a device with the standard objects through a sequence of APDUs on two
//! channels with a clock that moves forward, so that logins, logouts, lock-outs, idle
//! timeouts and session ownership all get exercised, and checks the response framing
//! invariants on every answer.
//!
//! Input layout:
//!
//! ```text
//! flags u8 | record*
//! record: ctrl u8 | len (u8, or u16 BE if ctrl bit 6) | len bytes (fewer at the end)
//! ```
//!
//! `flags` bit 0: log in as admin/admin on channel 1 first; bit 1: then turn the
//! hashed-password option on (so later logins cost a PBKDF2); bit 2: make channel 2 an
//! NFC link instead of a second WebSocket.
//!
//! `ctrl` bits 0-2: how far the clock moves before the request (see [`STEPS_MS`]);
//! bit 3: send on channel 2; bit 4: call `poll` before; bit 5: close the channel first
//! (as if the link dropped); bit 6: two-byte length; bit 7: send the same APDU twice.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lwm2m_core::wire::{is_nfc_select, ResultCode};
use lwm2m_core::{Channel, ChannelKind, Config, Device, FrameLimits, Instant, Outcome};
use lwm2m_objects::{standard_objects, DeviceInfo, NoHooks, StandardObjects};

const LIMITS: FrameLimits = FrameLimits {
    max_request: 1024,
    max_response: 1024,
};

const OUT_LEN: usize = LIMITS.max_response as usize;

/// Largest chunk taken from the input for one APDU (above `max_request` on purpose).
const MAX_CHUNK: usize = 1100;

/// Clock steps in milliseconds: none, short, just under and just over the 60 s
/// inactivity period and login lock-out, and past the admin's 3600 s lifetime.
const STEPS_MS: [u64; 8] = [0, 10, 1_000, 59_999, 60_000, 61_000, 3_600_000, 86_400_000];

const WS1: Channel = Channel::new(1, ChannelKind::WebSocket);
const WS2: Channel = Channel::new(2, ChannelKind::WebSocket);
const NFC: Channel = Channel::new(2, ChannelKind::Nfc);

/// POST /1024//0 admin/admin (vectors.txt §A).
const LOGIN_ADMIN: [u8; 44] = [
    0xa2, 0xda, 0x00, 0x00, 0x27, 0x02, 0x04, 0x00, 0xff, 0xff, 0x00, 0x00, b'a', b'd', b'm', b'i',
    b'n', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b'a', b'd', b'm', b'i', b'n', 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0,
];
/// PUT /1024//6 = 0008 (hashPassword).
const SET_HASH_OPTION: [u8; 14] = [
    0xa2, 0xda, 0x00, 0x00, 0x09, 0x03, 0x04, 0x00, 0xff, 0xff, 0x00, 0x06, 0x00, 0x08,
];

type TapDevice = Device<StandardObjects<NoHooks>>;

fn transcript_device() -> TapDevice {
    let info = DeviceInfo {
        manufacturer: "IoTize",
        flavor: "test",
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

/// Sends `apdu` and checks every invariant of the answer.
fn exchange(device: &mut TapDevice, channel: Channel, apdu: &[u8], now: Instant) -> u8 {
    let mut out = [0u8; OUT_LEN];
    let Outcome {
        len,
        next_deadline,
        effect: _,
    } = device.handle(channel, apdu, now, &mut out);
    let resp = &out[..len];
    if let Some(deadline) = next_deadline {
        assert!(
            deadline > now,
            "deadline {deadline:?} not after now {now:?}"
        );
    }
    if is_nfc_select(apdu) {
        assert_eq!(resp, [0x90, 0x00], "NFC select answer");
        return 0x00;
    }
    assert!(len >= 3, "response shorter than 3 bytes: {resp:02x?}");
    assert!(len <= OUT_LEN);
    assert_eq!(
        &resp[len - 2..],
        [0x90, 0x00],
        "no status word: {resp:02x?}"
    );
    let status = resp[0];
    assert!(
        ResultCode::from_u8(status).is_some(),
        "unknown status byte {status:#04x}: {resp:02x?}"
    );
    if status & 0x80 != 0 {
        assert_eq!(len, 3, "error response carries data: {resp:02x?}");
    }
    status
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let mut device = transcript_device();
    let mut now = Instant::ZERO;
    let second = if flags & 0b100 != 0 { NFC } else { WS2 };

    if flags & 0b001 != 0 {
        assert_eq!(
            exchange(&mut device, WS1, &LOGIN_ADMIN, now),
            0x00,
            "admin login"
        );
        if flags & 0b010 != 0 {
            assert_eq!(
                exchange(&mut device, WS1, &SET_HASH_OPTION, now),
                0x00,
                "hash option"
            );
        }
    }

    while let Some((&ctrl, tail)) = rest.split_first() {
        let (len, tail) = if ctrl & 0x40 != 0 {
            match tail.split_first_chunk::<2>() {
                Some((len, tail)) => (usize::from(u16::from_be_bytes(*len)), tail),
                None => (tail.len(), &tail[tail.len()..]),
            }
        } else {
            match tail.split_first() {
                Some((&len, tail)) => (usize::from(len), tail),
                None => (0, tail),
            }
        };
        let len = len.min(MAX_CHUNK).min(tail.len());
        let (apdu, tail) = tail.split_at(len);
        rest = tail;

        now = Instant::from_millis(now.as_millis() + STEPS_MS[usize::from(ctrl & 0b111)]);
        let channel = if ctrl & 0b1000 != 0 { second } else { WS1 };
        if ctrl & 0x10 != 0 {
            let _ = device.poll(now);
        }
        if ctrl & 0x20 != 0 {
            device.channel_closed(channel.id);
        }
        exchange(&mut device, channel, apdu, now);
        if ctrl & 0x80 != 0 {
            exchange(&mut device, channel, apdu, now);
        }
    }
});
