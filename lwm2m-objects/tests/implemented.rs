//! What a resource table says about implementation is what the device answers: for every
//! entry of every object, each method the entry declares, sent by the administrator (to
//! every existing instance where the entry needs one) with an empty payload and with
//! plausible ones, never answers `A1` when the table says this build implements the
//! method, and always answers `A1`, leaving the device as it was, when it says it does
//! not.

mod common;
use common::configurator::{CONFIGURATOR_FRAMES, EXTRA_FRAMES};
use common::*;

use lwm2m_core::acl::Access;
use lwm2m_core::object::{InstanceRule, Object, ResourceDef};
use lwm2m_core::target::MemoryTarget;
use lwm2m_core::wire::{Method, ResultCode, ABSENT};
use lwm2m_core::{Config, Device};
use lwm2m_objects::{standard_objects, NoHooks};
use target_traits::RamTarget;

const METHODS: [Method; 4] = [Method::Get, Method::Put, Method::Post, Method::Delete];

/// An instance id the fixture does not use (create, delete of a missing instance).
const FRESH: u16 = 0x0042;

/// The configuration the client's configurator and the extra fixture leave: profiles,
/// bundles with ACLs, in-device and target variables.
fn configured() -> Config {
    let mut h = Harness::with_target(MemoryTarget(RamTarget::<256>::new(0x2000_0000)));
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    for frame in CONFIGURATOR_FRAMES.iter().chain(EXTRA_FRAMES) {
        assert_eq!(h.tx(&apdu(&hex(frame))), "009000", "{frame}");
    }
    h.device.config().clone()
}

/// The APDU carrying Tap `frame`.
fn apdu(frame: &[u8]) -> String {
    let method = Method::from_u8(frame[0]).expect("method byte");
    let mut apdu = vec![0xA2, method.instruction(), 0, 0, frame.len() as u8];
    apdu.extend_from_slice(frame);
    to_hex(&apdu)
}

/// The frame of `method` on `/object/instance/resource` with `payload`.
fn frame(method: Method, object: u16, instance: u16, resource: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![method as u8];
    frame.extend_from_slice(&object.to_be_bytes());
    frame.extend_from_slice(&instance.to_be_bytes());
    frame.extend_from_slice(&resource.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// The instances `def` of `object` is tried on: the no-instance forms of a single
/// instance, every existing instance, and a fresh id for create/delete.
fn instances(config: &Config, object: u16, def: &ResourceDef) -> Vec<u16> {
    let existing = || -> Vec<u16> {
        match object {
            1025 => config.profiles.iter().map(|p| p.id).collect(),
            1028 => config.bundles.iter().map(|b| b.id).collect(),
            1029 => config.variables.iter().map(|v| v.id).collect(),
            other => panic!("/{other}: the fixture has no instances of this object"),
        }
    };
    match def.instance_rule() {
        InstanceRule::Single => vec![ABSENT, 0],
        InstanceRule::Absent => vec![ABSENT],
        InstanceRule::Existing => existing(),
        InstanceRule::Any => {
            let mut ids = existing();
            ids.push(FRESH);
            ids
        }
    }
}

/// The payloads every method is sent with: none, then bodies of the layouts of
/// `objects.md`, plus the structured body of the few resources that take one.
fn payloads(object: u16, resource: u16) -> Vec<Vec<u8>> {
    let mut list = vec![
        vec![],
        vec![0x00],                   // u8, enum, bool
        vec![0x01],                   // u8, enum, bit field
        vec![0x00, 0x01],             // u16, profile or bundle id, S3P record
        vec![0x00, 0x00, 0x00, 0x01], // u32, address, version, IPv4
        b"abc".to_vec(),              // ASCII text, password
        vec![0x41, 0x00, 0x03],       // ACL rights record
        vec![0x00; 8],                // serial/Modbus record
    ];
    match (object, resource) {
        // The administrator's plain login body.
        (1024, 0) => list.push(hex(LOGIN_ADMIN)[12..].to_vec()),
        // A multi-request of GET /3//2, expecting anything.
        (1024, 89) => list.push(hex("0007 010003ffff0002 ff")),
        _ => {}
    }
    list
}

/// A device with `config`, the administrator logged in, on a board with every radio a
/// group of this build serves (a board without BLE answers `A1` for its address: the
/// `interface_facts` tests).
fn admin_device(config: &Config) -> Harness<MemoryTarget<RamTarget<256>>> {
    let mut objects = standard_objects(device_info(), NoHooks);
    objects.1.info_mut().ble_address = Some([0xc0, 1, 2, 3, 4, 5]);
    let device = Device::new(objects, config.clone(), Config::reset, LIMITS)
        .with_target(MemoryTarget(RamTarget::<256>::new(0x2000_0000)));
    let mut h = Harness::from_device(device);
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    h
}

#[test]
fn a_method_answers_a1_exactly_when_it_is_declared_not_implemented() {
    let config = configured();
    let (device, interface, profile, target, bundle, variable, firmware) =
        standard_objects(device_info(), NoHooks);
    let objects: [&dyn Object; 7] = [
        &device, &interface, &profile, &target, &bundle, &variable, &firmware,
    ];
    let a1 = ResultCode::NotImplemented.as_u8();
    let mut mismatches = Vec::new();
    let (mut implemented, mut not_implemented) = (0, 0);
    for object in objects {
        for def in declared(object.id()) {
            for method in METHODS {
                if def.access(method) == Access::Never {
                    continue;
                }
                let declared = def.implements(method);
                for instance in instances(&config, object.id(), def) {
                    for payload in payloads(object.id(), def.id) {
                        let frame = frame(method, object.id(), instance, def.id, &payload);
                        let mut h = admin_device(&config);
                        let answer = h.tx(&apdu(&frame));
                        let status = hex(&answer)[0];
                        let request = format!(
                            "{method:?} /{}/{}/{} [{}]",
                            object.id(),
                            instance,
                            def.id,
                            to_hex(&payload)
                        );
                        if declared {
                            implemented += 1;
                            if status == a1 {
                                mismatches.push(format!(
                                    "{request}: declared implemented, answers {answer}"
                                ));
                            }
                        } else {
                            not_implemented += 1;
                            if status != a1 {
                                mismatches.push(format!(
                                    "{request}: declared not implemented, answers {answer}"
                                ));
                            } else if h.device.config() != &config || h.last.effect.is_some() {
                                mismatches.push(format!(
                                    "{request}: declared not implemented, answers A1 with a side effect"
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert!(
        implemented > 1000 && not_implemented > 150,
        "only {implemented} implemented and {not_implemented} not implemented requests sent"
    );
}

/// `PUT /1024//3` (putCurrentHostProtocol): the host protocol is the link the request came
/// on, which a request cannot switch. Only the administrator may try; the device answers
/// `A1` and keeps answering the link it is on.
#[test]
fn the_current_host_protocol_cannot_be_written() {
    let put_websocket = "a2da000009030400ffff00030400";
    let get = "a2ca000007010400ffff0003";
    let mut h = Harness::new();
    assert_eq!(h.tx(put_websocket), "819000", "anonymous");
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    let before = h.device.config().clone();
    assert_eq!(h.tx(put_websocket), "a19000");
    assert_eq!(h.tx("a2da000009030400ffff00030001"), "a19000", "NFC");
    assert_eq!(h.device.config(), &before);
    assert_eq!(h.tx(get), "0004009000", "WEBSOCKET");
}
