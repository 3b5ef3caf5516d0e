//! Every resource the real client knows (`shared/spec/objects.json`, one entry per path
//! with the client's methods) is declared in the table of the object that serves it,
//! with each of the client's methods.

use lwm2m_core::object::{find_resource, InstanceRule, Object};
use lwm2m_core::wire::{Method, ABSENT};
use lwm2m_objects::{standard_objects, NoHooks};

mod common;

fn spec() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/spec/objects.json"
    );
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("{path}: {err} (the spec travels beside the repository)"));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn every_resource_of_the_client_is_declared_with_its_methods() {
    let (device, interface, profile, target, bundle, variable, firmware) =
        standard_objects(common::device_info(), NoHooks);
    let objects: [&dyn Object; 7] = [
        &device, &interface, &profile, &target, &bundle, &variable, &firmware,
    ];
    let mut missing = Vec::new();
    let mut not_served = std::collections::BTreeSet::new();
    let mut checked = 0;
    for entry in spec().as_array().unwrap() {
        let object_id = entry["object"].as_u64().unwrap() as u16;
        let resource = entry["resource"].as_u64().unwrap() as u16;
        let path = entry["path"].as_str().unwrap();
        let Some(object) = objects.iter().find(|o| o.id() == object_id) else {
            not_served.insert(object_id);
            continue;
        };
        let instance = if entry["instance"].as_bool().unwrap() {
            1
        } else {
            ABSENT
        };
        let Some(def) = find_resource(common::declared(object.id()), resource, instance) else {
            missing.push(format!("{path}: not declared"));
            continue;
        };
        for method in entry["methods"].as_array().unwrap() {
            let method = match method.as_str().unwrap() {
                "GET" => Method::Get,
                "PUT" => Method::Put,
                "POST" => Method::Post,
                other => panic!("{path}: method {other}"),
            };
            checked += 1;
            if def.access(method) == lwm2m_core::acl::Access::Never {
                missing.push(format!("{path}: {method:?} not declared"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{} gaps:\n{}",
        missing.len(),
        missing.join("\n")
    );
    assert!(checked > 140, "only {checked} methods checked");
    // Objects of the client this release does not serve at all.
    assert_eq!(not_served.into_iter().collect::<Vec<_>>(), [1031]);
}

#[test]
fn no_resource_is_declared_twice() {
    let (device, interface, profile, target, bundle, variable, firmware) =
        standard_objects(common::device_info(), NoHooks);
    let objects: [&dyn Object; 7] = [
        &device, &interface, &profile, &target, &bundle, &variable, &firmware,
    ];
    for object in objects {
        let table = common::declared(object.id());
        for (i, def) in table.iter().enumerate() {
            let twin = table[i + 1..]
                .iter()
                .find(|other| other.id == def.id && other.instance_rule() == def.instance_rule());
            assert!(
                twin.is_none(),
                "/{}: resource {} declared twice",
                object.id(),
                def.id
            );
        }
    }
}

/// An object serves every resource it declares as declared: each entry is in its table
/// or, providing no method, kept out of it ([`Object::unlisted`]) with the same access for
/// every method, where the dispatcher finds no table entry before it; nothing else.
#[test]
fn every_declared_resource_is_served_as_declared() {
    let (device, interface, profile, target, bundle, variable, firmware) =
        standard_objects(common::device_info(), NoHooks);
    let objects: [&dyn Object; 7] = [
        &device, &interface, &profile, &target, &bundle, &variable, &firmware,
    ];
    let methods = [Method::Get, Method::Put, Method::Post, Method::Delete];
    let mut unlisted = 0;
    for object in objects {
        let declared = common::declared(object.id());
        let table = object.resources();
        for entry in table {
            assert!(declared.contains(entry), "/{}: {entry:?}", object.id());
        }
        for def in declared {
            if table.contains(def) {
                continue;
            }
            unlisted += 1;
            let path = format!("/{}//{}", object.id(), def.id);
            assert_eq!(def.instance_rule(), InstanceRule::Single, "{path}");
            for instance in [ABSENT, 0] {
                assert!(
                    find_resource(table, def.id, instance).is_none(),
                    "{path}: the table answers it"
                );
                for method in methods {
                    assert!(!def.implements(method), "{path}: {method:?} provided");
                    assert_eq!(
                        object.unlisted(def.id, instance, method),
                        Some(def.access(method)),
                        "{path} {method:?}"
                    );
                }
            }
            assert_eq!(object.unlisted(def.id, 1, Method::Get), None, "{path}");
        }
        assert_eq!(object.unlisted(0xFFF0, ABSENT, Method::Get), None);
    }
    assert_eq!(
        unlisted,
        lwm2m_objects::interface::UNLISTED.len() + lwm2m_objects::target::UNLISTED.len()
    );
    // The client's resources this release does not implement at all, whatever the groups:
    // the debug probe's and the TapNPass adapter's of 1027.
    assert!(
        unlisted >= 6,
        "only {unlisted} resources kept out of the tables"
    );
}

#[test]
fn every_carried_setting_at_its_largest_fits_the_settings_room() {
    use lwm2m_core::config::settings::{ENTRY_HEADER_LEN, SETTINGS_BYTES};
    let needed: usize = lwm2m_objects::SETTINGS_TABLES
        .iter()
        .flat_map(|table| table.iter())
        .filter(|line| line.group.included())
        .map(|line| ENTRY_HEADER_LEN + line.kind.max_len())
        .sum();
    assert_eq!(needed, lwm2m_objects::SETTINGS_ROOM);
    assert!(
        needed <= SETTINGS_BYTES,
        "{needed} bytes of settings carried, {SETTINGS_BYTES} of room"
    );
}
