//! Multi-requests are never half executed: when the answers of the items might not fit
//! the response, the whole request is refused before any item runs; and the answer sizes
//! the objects declare for that hold for every resource.

mod common;
use common::configurator::{CONFIGURATOR_FRAMES, EXTRA_FRAMES};
use common::*;

use lwm2m_core::object::{Object, UNBOUNDED};
use lwm2m_core::wire::{Method, Request, ABSENT};
use lwm2m_core::Config;
use lwm2m_objects::{standard_objects, NoHooks};
use target_traits::RamTarget;

/// The APDU of a multi-request (`GET /1024//89`) of `frames` (hex), each "expect anything".
fn multi(frames: &[&str]) -> String {
    let mut body = String::new();
    for frame in frames {
        let bytes = hex(frame);
        body += &to_hex(&(bytes.len() as u16).to_be_bytes());
        body += &to_hex(&bytes);
        body += "ff";
    }
    let frame = hex(&format!("010400ffff0059{body}"));
    let mut apdu = vec![0xA2, 0xCA, 0, 0, frame.len() as u8];
    apdu.extend_from_slice(&frame);
    to_hex(&apdu)
}

#[test]
fn a_multi_request_whose_answers_cannot_fit_runs_nothing() {
    let mut h = Harness::new();
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    // PUT /1024//9 "Hacked", then 90 reads of the serial number (18 bytes each): about
    // 1900 bytes of answers for a 1024-byte response.
    let mut frames = vec!["030400ffff0009 4861636b6564"];
    frames.extend(std::iter::repeat_n("010003ffff0002", 90));
    assert_eq!(h.tx(&multi(&frames)), "a09000");
    assert_eq!(
        h.tx("a2ca000007010400ffff0009"),
        "009000",
        "app name unchanged"
    );

    // The same write with as many reads as fit runs whole.
    let mut frames = vec!["030400ffff0009 4861636b6564"];
    frames.extend(std::iter::repeat_n("010003ffff0002", 40));
    let answer = h.tx(&multi(&frames));
    assert!(answer.starts_with("00000100"), "{answer}");
    assert_eq!(
        h.tx("a2ca000007010400ffff0009"),
        format!("00{}9000", to_hex(b"Hacked"))
    );
}

/// A device configured by the configurator's frames and the extra bundles, as admin.
fn configured() -> Harness<lwm2m_core::target::MemoryTarget<RamTarget<256>>> {
    let ram = RamTarget::<256>::new(0x2000_0000);
    let mut h = Harness::with_target(lwm2m_core::target::MemoryTarget(ram));
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    for frame in CONFIGURATOR_FRAMES.iter().chain(EXTRA_FRAMES) {
        let frame = hex(frame);
        let ins = if frame[0] == 1 { 0xCA } else { 0xDA };
        let mut apdu = vec![0xA2, ins, 0, 0, frame.len() as u8];
        apdu.extend_from_slice(&frame);
        assert_eq!(to_hex(&h.send_on(WS1, &apdu)), "009000");
    }
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    h
}

#[test]
fn every_get_answers_at_most_its_declared_bound() {
    let mut h = configured();
    let config: Config = h.device.config().clone();
    let (device, interface, profile, target, bundle, variable, firmware) =
        standard_objects(device_info(), NoHooks);
    let objects: [&dyn Object; 7] = [
        &device, &interface, &profile, &target, &bundle, &variable, &firmware,
    ];
    let profiles: Vec<u16> = config.profiles.iter().map(|p| p.id).collect();
    let bundles: Vec<u16> = config.bundles.iter().map(|b| b.id).collect();
    let variables: Vec<u16> = config.variables.iter().map(|v| v.id).collect();
    let mut checked = 0;
    for object in objects {
        for def in object.resources() {
            if !def.implements(Method::Get) {
                continue;
            }
            let instances = match object.id() {
                1025 => profiles.clone(),
                1028 => bundles.clone(),
                1029 if def.instance_rule() != lwm2m_core::object::InstanceRule::Absent => {
                    variables.clone()
                }
                _ => vec![ABSENT],
            };
            for instance in instances {
                if (object.id(), def.id) == (1024, 89) {
                    continue; // the multi-request itself
                }
                let mut frame = vec![0x01];
                frame.extend_from_slice(&object.id().to_be_bytes());
                frame.extend_from_slice(&instance.to_be_bytes());
                frame.extend_from_slice(&def.id.to_be_bytes());
                let request = Request::parse_frame(&frame).unwrap();
                assert_eq!(request.method, Method::Get);
                let bound = object.answer_bound(&config, &request);
                let path = format!("/{}/{}/{}", object.id(), instance, def.id);
                assert!(bound < usize::from(UNBOUNDED), "{path}: no declared bound");
                let mut apdu = vec![0xA2, 0xCA, 0, 0, frame.len() as u8];
                apdu.extend_from_slice(&frame);
                let answer = h.send_on(WS1, &apdu);
                let data = answer.len() - 3;
                assert!(
                    data <= bound,
                    "{path}: {data} bytes answered, bound {bound}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 90, "{checked} GETs checked");
}

fn frame_apdu(frame: &str) -> String {
    let frame = hex(frame);
    let ins = if frame[0] == 1 { 0xCA } else { 0xDA };
    let mut apdu = vec![0xA2, ins, 0, 0, frame.len() as u8];
    apdu.extend_from_slice(&frame);
    to_hex(&apdu)
}

/// Admin on a device with target variable 1 (UINT32 at 0x20000000) and a secret in
/// `/1024//36` (application data, a setting every build carries).
fn with_target_variable() -> Harness<lwm2m_core::target::MemoryTarget<RamTarget<2048>>> {
    let ram = RamTarget::<2048>::new(0x2000_0000);
    let mut h = Harness::with_target(lwm2m_core::target::MemoryTarget(ram));
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    for frame in [
        "020405 0001 ffff",
        "030405 0001 0000 20000000",
        "030405 0001 0001 23",
        "030400 ffff 0024 53336372337420707721",
    ] {
        assert_eq!(h.tx(&frame_apdu(frame)), "009000", "{frame}");
    }
    h
}

#[test]
fn an_item_that_makes_a_later_answer_larger_is_refused_before_anything_runs() {
    let mut h = with_target_variable();
    // A secret read, the variable grown to 250 × u32, its value read (1000 bytes, where
    // the configuration before the request bounds it at 4), then writes.
    let frames = [
        "010400ffff0024",
        "030405 0001 0002 fa",
        "010405 0001 0004",
        "030400ffff0009 41",
    ];
    let mut out = [0u8; 1024];
    let outcome = h.device.handle(WS1, &hex(&multi(&frames)), h.now, &mut out);
    assert_eq!(&out[..outcome.len], [0xA0, 0x90, 0x00]);
    assert_eq!(
        h.tx(&frame_apdu("010405 0001 0002")),
        "00019000",
        "quantity unchanged"
    );
    assert_eq!(
        h.tx("a2ca000007010400ffff0009"),
        "009000",
        "app name unchanged"
    );
    // What the refused request's items wrote into the buffer is not left there.
    assert!(
        !out.windows(9).any(|w| w == b"S3cr3t pw"),
        "secret left in the buffer"
    );
}

#[test]
fn the_data_of_a_failed_request_is_wiped_from_the_buffer() {
    let mut h = with_target_variable();
    // Variable 1 holds "WXYZ"; variable 2 lies outside the target memory, so a list of
    // all values fails after variable 1's record was written.
    for frame in [
        "030405 0001 0004 5758595a",
        "020405 0002 ffff",
        "030405 0002 0000 30000000",
        "030405 0002 0001 23",
    ] {
        assert_eq!(h.tx(&frame_apdu(frame)), "009000", "{frame}");
    }
    let leaked = |out: &[u8]| out.windows(4).any(|w| w == b"WXYZ");
    let mut out = [0u8; 1024];
    let outcome = h
        .device
        .handle(WS1, &hex(&frame_apdu("010405 ffff 0004")), h.now, &mut out);
    assert!(
        out[0] & 0x80 != 0 && outcome.len == 3,
        "{:02x?}",
        &out[..outcome.len]
    );
    assert!(!leaked(&out), "a failed request's data left in the buffer");
    let mut out = [0u8; 1024];
    let outcome = h
        .device
        .handle(WS1, &hex(&multi(&["010405 ffff 0004"])), h.now, &mut out);
    assert_eq!(out[0], 0x00, "{:02x?}", &out[..outcome.len]);
    assert!(!leaked(&out), "a failed item's data left in the buffer");
}

#[test]
fn a_stored_setting_longer_than_its_kind_never_exceeds_its_bound() {
    // An image of another build may hold 100 bytes for a u16 setting (/1024//8).
    let mut config = Config::default();
    config.set_setting(1024, 8, &[0x41; 100]).unwrap();
    let mut h = Harness::from_device(lwm2m_core::Device::new(
        standard_objects(device_info(), NoHooks),
        config,
        Config::reset,
        LIMITS,
    ));
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    assert_eq!(
        h.tx(&frame_apdu("010400ffff0008")),
        "0000009000",
        "read as unset"
    );
}

#[test]
fn a_bundle_list_is_bounded_by_its_own_variables() {
    let mut h = with_target_variable();
    // Variable 1 grows to 800 bytes, in no bundle; two bundles of one UINT8 each.
    assert_eq!(h.tx(&frame_apdu("030405 0001 0002 c8")), "009000");
    for (bundle, var) in [("0002", "0002"), ("0003", "0003")] {
        for frame in [
            format!("020404 {bundle} ffff"),
            format!("020405 {var} ffff"),
            format!("030405 {var} 0001 a1"),
            format!("030405 {var} 0006 {bundle}"),
        ] {
            assert_eq!(h.tx(&frame_apdu(&frame)), "009000", "{frame}");
        }
    }
    let answer = h.tx(&multi(&["010404 0002 0001", "010404 0003 0001"]));
    assert!(answer.starts_with("00"), "{answer}");
}
