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
    let (device, interface, profile, target, bundle, variable) =
        standard_objects(device_info(), NoHooks);
    let objects: [&dyn Object; 6] = [&device, &interface, &profile, &target, &bundle, &variable];
    let profiles: Vec<u16> = config.profiles.iter().map(|p| p.id).collect();
    let bundles: Vec<u16> = config.bundles.iter().map(|b| b.id).collect();
    let variables: Vec<u16> = config.variables.iter().map(|v| v.id).collect();
    let mut checked = 0;
    for object in objects {
        for def in object.resources() {
            if def.get == lwm2m_core::acl::Access::Never || !def.implemented {
                continue;
            }
            let instances = match object.id() {
                1025 => profiles.clone(),
                1028 => bundles.clone(),
                1029 if def.instance != lwm2m_core::object::InstanceRule::Absent => {
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
