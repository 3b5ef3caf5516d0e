//! Every write is checked against what `objects.md` declares for it (enum values, bit
//! fields, references to profiles and bundles, body layouts, variable sizes), with `86`
//! for anything else (spec decision 3), and credentials are read by the administrator
//! only.

mod common;
use common::*;
use lwm2m_core::config::{AclEntry, Bundle, Rights, Variable};
use lwm2m_core::{Config, Device};
use lwm2m_objects::{standard_objects, NoHooks};

/// Wraps a bare Tap frame (hex) into an APDU.
fn apdu(frame_hex: &str) -> String {
    let frame = hex(frame_hex);
    let ins = if frame[0] == 1 { "ca" } else { "da" };
    format!("a2{ins}0000{:02x}{}", frame.len() % 256, to_hex(&frame))
}

/// A device with the administrator logged in.
fn admin() -> Harness {
    let mut h = Harness::new();
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    h
}

fn tx(h: &mut Harness, frame: &str) -> String {
    h.tx(&apdu(frame))
}

fn login(h: &mut Harness, user: &str, password: &str) {
    let mut body = [0u8; 32];
    body[..user.len()].copy_from_slice(user.as_bytes());
    body[16..16 + password.len()].copy_from_slice(password.as_bytes());
    let response = tx(h, &format!("02 0400 ffff 0000 {}", to_hex(&body)));
    assert_eq!(response, "009000", "login {user}");
}

/// Creates profile 1 `user1` with password `pwd`, as admin.
fn create_user1(h: &mut Harness) {
    for frame in [
        "02 0401 0001 ffff",
        "03 0401 0001 0000 7573657231",
        "02 0401 0001 0002 707764",
    ] {
        assert_eq!(tx(h, frame), "009000", "{frame}");
    }
}

/// `PUT /object//resource` (or POST) with `body` (hex).
fn write(h: &mut Harness, method: u8, object: u16, resource: u16, body: &str) -> String {
    tx(
        h,
        &format!("{method:02x} {object:04x} ffff {resource:04x} {body}"),
    )
}

fn read(h: &mut Harness, object: u16, resource: u16) -> String {
    tx(h, &format!("01 {object:04x} ffff {resource:04x}"))
}

const PUT: u8 = 3;
const POST: u8 = 2;

#[test]
fn enum_settings_take_only_the_values_of_their_enum() {
    // (object, resource, every value of the enum (enums.json), values outside it)
    let cases: &[(u16, u16, &[u8], &[u8])] = &[
        (1024, 13, &[0, 1, 2], &[3, 0xff]), // NfcPairingMode
        (1024, 14, &[0, 2, 3], &[1, 4]),    // LowPowerOptimizationLevel
        (1024, 15, &[0, 1], &[2, 7]),       // WifiMode
        (1024, 26, &[0, 1, 2, 3, 4], &[5]), // CloudPlatform
        (1024, 98, &[0, 1, 2], &[3]),       // WifiSSIDVisibility
        (1024, 99, &[0, 1], &[2]),          // WifiKeyVisibility
        (1027, 1, &[0, 1, 2, 3, 4, 6, 7, 255], &[5, 8, 0xfe]), // TargetProtocol
        (1027, 2, &[0, 1], &[2]),           // TargetCoreType
    ];
    let mut h = admin();
    for &(object, resource, good, bad) in cases {
        for &value in good {
            let body = format!("{value:02x}");
            assert_eq!(write(&mut h, PUT, object, resource, &body), "009000");
            assert_eq!(
                read(&mut h, object, resource),
                format!("00{value:02x}9000"),
                "/{object}//{resource} = {value}"
            );
        }
        for &value in bad {
            let body = format!("{value:02x}");
            assert_eq!(
                write(&mut h, PUT, object, resource, &body),
                "869000",
                "/{object}//{resource} = {value}"
            );
        }
        // Refused values leave the last good one in place; enums are one byte.
        let last = good[good.len() - 1];
        assert_eq!(read(&mut h, object, resource), format!("00{last:02x}9000"));
        assert_eq!(write(&mut h, PUT, object, resource, "0000"), "869000");
    }
    // The target protocol is also set with POST (setProtocol).
    assert_eq!(write(&mut h, POST, 1027, 1, "05"), "869000");
    assert_eq!(write(&mut h, POST, 1027, 1, "03"), "009000");
}

#[test]
fn wifi_protocol_takes_the_clients_mask_and_reads_back_one_protocol() {
    let mut h = admin();
    // Nothing written: the most capable protocol, not a 00 the client cannot decode.
    assert_eq!(read(&mut h, 1024, 96), "00049000");
    // putProtocol([B, G, N]) writes the mask 07 (objects.md §7.4); getProtocol decodes
    // one WifiProtocol value (decision 12).
    assert_eq!(write(&mut h, PUT, 1024, 96, "07"), "009000");
    assert_eq!(read(&mut h, 1024, 96), "00049000");
    assert_eq!(write(&mut h, PUT, 1024, 96, "03"), "009000");
    assert_eq!(read(&mut h, 1024, 96), "00029000");
    assert_eq!(write(&mut h, PUT, 1024, 96, "01"), "009000");
    assert_eq!(read(&mut h, 1024, 96), "00019000");
    // No protocol at all, or a bit that is no protocol.
    for bad in ["00", "08", "0f", "0001"] {
        assert_eq!(write(&mut h, PUT, 1024, 96, bad), "869000", "{bad}");
    }
    assert_eq!(read(&mut h, 1024, 96), "00019000");
}

#[test]
fn bit_field_settings_refuse_undefined_bits() {
    let mut h = admin();
    // /1024//17 HostProtocol mask: NFC | WIFI | BLE | WEBSOCKET.
    assert_eq!(write(&mut h, PUT, 1024, 17, "0461"), "009000");
    assert_eq!(read(&mut h, 1024, 17), "0004619000");
    assert_eq!(write(&mut h, PUT, 1024, 17, "0800"), "869000");
    assert_eq!(write(&mut h, PUT, 1024, 17, "0080"), "869000");
    assert_eq!(read(&mut h, 1024, 17), "0004619000");
    // /1024//91 LoraConfig: bits 0x80..0x08 only.
    assert_eq!(write(&mut h, PUT, 1024, 91, "f8"), "009000");
    assert_eq!(write(&mut h, PUT, 1024, 91, "01"), "869000");
    assert_eq!(read(&mut h, 1024, 91), "00f89000");
}

#[test]
fn wifi_country_code_is_an_iso_3166_numeric_code() {
    let mut h = admin();
    assert_eq!(write(&mut h, PUT, 1024, 95, "03e7"), "009000");
    assert_eq!(write(&mut h, PUT, 1024, 95, "03e8"), "869000");
    assert_eq!(write(&mut h, PUT, 1024, 95, "ffff"), "869000");
    assert_eq!(read(&mut h, 1024, 95), "0003e79000");
}

#[test]
fn profile_ids_must_name_an_existing_profile() {
    let mut h = admin();
    for resource in [43, 66] {
        // Profile 1 does not exist yet.
        assert_eq!(write(&mut h, PUT, 1024, resource, "0001"), "869000");
        assert_eq!(read(&mut h, 1024, resource), "0000009000");
        // The built-in profiles always exist; anonymous (0) is the default.
        for id in ["ffff", "fffe", "0000"] {
            assert_eq!(write(&mut h, PUT, 1024, resource, id), "009000");
        }
        assert_eq!(write(&mut h, PUT, 1024, resource, "0001"), "869000");
        assert_eq!(write(&mut h, PUT, 1024, resource, "000001"), "869000");
    }
    create_user1(&mut h);
    for resource in [43, 66] {
        assert_eq!(write(&mut h, PUT, 1024, resource, "0001"), "009000");
        assert_eq!(read(&mut h, 1024, resource), "0000019000");
    }
}

#[test]
fn while_configuring_references_may_come_before_what_they_name() {
    // The real configurator's order: version 255.255.65535, then the NFC auto-login
    // and JVM profile (1), the special-feature bundle (2), and only then profile 1.
    let mut h = admin();
    assert_eq!(write(&mut h, PUT, 1024, 10, "ffffffff"), "009000");
    assert_eq!(write(&mut h, PUT, 1024, 43, "0001"), "009000");
    assert_eq!(write(&mut h, PUT, 1024, 66, "0001"), "009000");
    assert_eq!(write(&mut h, PUT, 1024, 100, "0002"), "009000");
    create_user1(&mut h);
    assert_eq!(read(&mut h, 1024, 43), "0000019000");
    // Once configured, a reference must name something again.
    assert_eq!(write(&mut h, PUT, 1024, 10, "01020003"), "009000");
    assert_eq!(write(&mut h, PUT, 1024, 66, "0009"), "869000");
    assert_eq!(write(&mut h, PUT, 1024, 101, "0009"), "869000");
}

#[test]
fn special_features_name_an_existing_bundle_or_none() {
    let mut h = admin();
    for resource in 100..=105 {
        for method in [PUT, POST] {
            assert_eq!(write(&mut h, method, 1024, resource, "0009"), "869000");
            assert_eq!(write(&mut h, method, 1024, resource, "ffff"), "869000");
            // 0: the feature belongs to no bundle.
            assert_eq!(write(&mut h, method, 1024, resource, "0000"), "009000");
        }
    }
    assert_eq!(tx(&mut h, "02 0404 0009 ffff"), "009000");
    assert_eq!(write(&mut h, POST, 1024, 102, "0009"), "009000");
    assert_eq!(read(&mut h, 1024, 102), "0000099000");
}

#[test]
fn deleting_a_profile_or_bundle_drops_the_references_to_it() {
    let mut h = admin();
    create_user1(&mut h);
    assert_eq!(tx(&mut h, "02 0404 0002 ffff"), "009000");
    assert_eq!(write(&mut h, PUT, 1024, 43, "0001"), "009000");
    assert_eq!(write(&mut h, PUT, 1024, 66, "ffff"), "009000");
    assert_eq!(write(&mut h, POST, 1024, 101, "0002"), "009000");
    assert_eq!(write(&mut h, POST, 1024, 104, "0002"), "009000");
    assert_eq!(tx(&mut h, "04 0401 0001 ffff"), "009000");
    assert_eq!(read(&mut h, 1024, 43), "0000009000");
    assert_eq!(read(&mut h, 1024, 66), "00ffff9000");
    assert_eq!(tx(&mut h, "04 0404 0002 ffff"), "009000");
    assert_eq!(read(&mut h, 1024, 101), "0000009000");
    assert_eq!(read(&mut h, 1024, 104), "0000009000");
    // A new profile or bundle with the same id does not inherit them.
    create_user1(&mut h);
    assert_eq!(tx(&mut h, "02 0404 0002 ffff"), "009000");
    assert_eq!(read(&mut h, 1024, 43), "0000009000");
    assert_eq!(read(&mut h, 1024, 101), "0000009000");
}

#[test]
fn target_protocol_configuration_takes_only_its_declared_layouts() {
    let mut h = admin();
    // objects.md §6.4: serial/Modbus 8 bytes (slave 1, offsetFirstRegister, 115200,
    // RS232, 1 stop bit, EVEN, 8 bits, CR_LF, no flow control, timeout 10).
    let serial = "0a 30 09 01 00 c2 11 01";
    // TapNPass: the same 8 bytes (9600 bd, USB, identification + LED) + one USB alias.
    let tapnpass = "05 00 01 a3 80 25 00 01 12 34 56 78 01";
    // Never written: the serial record of zeros, which the three decoders of the
    // client read (S3P its first two bytes).
    assert_eq!(read(&mut h, 1027, 21), "0000000000000000009000");
    // S3P (delay 5, INDEXED) is the record's first two bytes: the rest is kept.
    assert_eq!(write(&mut h, PUT, 1027, 21, "05 01"), "009000");
    assert_eq!(read(&mut h, 1027, 21), "0005010000000000009000");
    assert_eq!(write(&mut h, PUT, 1027, 21, tapnpass), "009000");
    assert_eq!(write(&mut h, POST, 1027, 21, "07 00"), "009000");
    assert_eq!(
        read(&mut h, 1027, 21),
        format!(
            "00{}9000",
            tapnpass.replace(' ', "").replacen("0500", "0700", 1)
        )
    );
    for method in [PUT, POST] {
        for good in [
            serial,
            "05 00 01 a3 80 25 00 01", // TapNPass without alias
            tapnpass,
        ] {
            assert_eq!(write(&mut h, method, 1027, 21, good), "009000", "{good}");
            assert_eq!(
                read(&mut h, 1027, 21),
                format!("00{}9000", good.replace(' ', ""))
            );
        }
        for bad in [
            "",
            "05",
            "05 01 00",                      // 3 bytes: no layout has 3
            "05 02",                         // S3P mode 2
            "0a 30 09 01 00 c2 11",          // 7 bytes
            "0a 30 09 01 00 c2 11 01 00",    // 9 bytes
            "0a 30 09 01 00 c2 11 01 12 34", // a truncated USB alias
            "0a 30 0d 01 00 c2 11 01",       // parity 3
            "0a 30 0b 01 00 c2 11 01",       // data bits 3
            "0a 30 c9 01 00 c2 11 01",       // stop bits 3
            "0a 30 09 02 00 c2 11 01",       // physical port 2
            "0a 40 09 01 00 c2 11 01",       // handshake delimiter 4
            "0a 34 09 01 00 c2 11 01",       // hardware flow control 4
        ] {
            assert_eq!(write(&mut h, method, 1027, 21, bad), "869000", "{bad:?}");
        }
        assert_eq!(
            read(&mut h, 1027, 21),
            format!("00{}9000", tapnpass.replace(' ', ""))
        );
    }
}

#[test]
fn text_settings_take_the_lengths_the_client_allows() {
    let mut h = admin();
    // Schema maxima: universal link 128, application path 128, NTP server 100.
    for (resource, len) in [(19u16, 128usize), (11, 128), (77, 100)] {
        let text = to_hex(&vec![b'a'; len]);
        assert_eq!(write(&mut h, PUT, 1024, resource, &text), "009000");
        assert_eq!(read(&mut h, 1024, resource), format!("00{text}9000"));
        let longer = to_hex(&vec![b'a'; len + 1]);
        assert_eq!(write(&mut h, PUT, 1024, resource, &longer), "869000");
    }
}

#[test]
fn create_profile_takes_no_body() {
    let mut h = admin();
    assert_eq!(tx(&mut h, "02 0401 0005 ffff 75"), "869000");
    assert_eq!(tx(&mut h, "01 0401 0005 0000"), "849000");
    assert_eq!(tx(&mut h, "02 0401 0005 ffff"), "009000");
    // Creating an existing profile again (the configurator re-run) checks the body too.
    assert_eq!(tx(&mut h, "02 0401 0005 ffff 00"), "869000");
}

#[test]
fn delete_takes_no_body() {
    let mut h = admin();
    create_user1(&mut h);
    assert_eq!(tx(&mut h, "02 0404 0001 ffff"), "009000");
    assert_eq!(tx(&mut h, "02 0405 0001 ffff"), "009000");
    for object in ["0401", "0404", "0405"] {
        assert_eq!(tx(&mut h, &format!("04 {object} 0001 ffff 00")), "869000");
    }
    // Nothing was deleted.
    assert_eq!(tx(&mut h, "01 0401 0001 0000"), "0075736572319000");
    assert_eq!(tx(&mut h, "01 0404 0001 0004"), "009000");
    assert_eq!(tx(&mut h, "01 0405 0001 0001"), "00219000");
    for object in ["0401", "0404", "0405"] {
        assert_eq!(tx(&mut h, &format!("04 {object} 0001 ffff")), "009000");
    }
}

#[test]
fn an_in_device_value_must_fit_the_devices_value_store() {
    let mut h = admin();
    assert_eq!(tx(&mut h, "02 0405 0001 ffff"), "009000");
    // IN_TAP_VOLATIL UINT32: 16 items are VALUE_LEN (64) bytes, 17 are too many.
    assert_eq!(tx(&mut h, "03 0405 0001 0001 e3"), "009000");
    assert_eq!(tx(&mut h, "03 0405 0001 0002 10"), "009000");
    assert_eq!(tx(&mut h, "03 0405 0001 0002 11"), "869000");
    assert_eq!(tx(&mut h, "01 0405 0001 0002"), "00109000");
    assert_eq!(
        tx(&mut h, &format!("03 0405 0001 0004 {}", "ab".repeat(64))),
        "009000"
    );
    // The configurator's order: quantity first (as UINT8 in the target), then the type.
    assert_eq!(tx(&mut h, "02 0405 0002 ffff"), "009000");
    assert_eq!(tx(&mut h, "03 0405 0002 0002 11"), "009000");
    assert_eq!(tx(&mut h, "03 0405 0002 0001 e3"), "869000");
    assert_eq!(tx(&mut h, "01 0405 0002 0001"), "00219000");
    // An in-device UINT8[17] fits.
    assert_eq!(tx(&mut h, "03 0405 0002 0001 e1"), "009000");
}

#[test]
fn a_value_must_fit_one_request_and_one_response() {
    let mut h = admin();
    assert_eq!(tx(&mut h, "02 0405 0001 ffff"), "009000");
    // TARGET UINT32[255]: 1020 bytes, a PUT of it would be a 1027-byte frame (the
    // device takes 1024).
    assert_eq!(tx(&mut h, "03 0405 0001 0002 ff"), "009000");
    assert_eq!(tx(&mut h, "03 0405 0001 0001 23"), "869000");
    assert_eq!(tx(&mut h, "03 0405 0001 0001 22"), "009000");
    assert_eq!(tx(&mut h, "01 0405 0001 0001"), "00229000");
}

#[test]
fn values_too_many_for_one_response_are_each_still_readable() {
    let mut h = admin();
    // Three TARGET UINT32[100] (400 bytes each) are accepted although their values do
    // not all fit one 1024-byte response (the real configurator writes such sets).
    for id in ["0001", "0002", "0003"] {
        assert_eq!(tx(&mut h, &format!("02 0405 {id} ffff")), "009000");
        assert_eq!(tx(&mut h, &format!("03 0405 {id} 0002 64")), "009000");
        assert_eq!(tx(&mut h, &format!("03 0405 {id} 0001 23")), "009000");
    }
    // So are 17 in-device UINT32[16] (64 bytes each, 1 139 bytes of TLV in all).
    for id in 0x10..0x21u16 {
        assert_eq!(tx(&mut h, &format!("02 0405 {id:04x} ffff")), "009000");
        assert_eq!(tx(&mut h, &format!("03 0405 {id:04x} 0002 10")), "009000");
        assert_eq!(tx(&mut h, &format!("03 0405 {id:04x} 0001 a3")), "009000");
        let value = format!("{id:02x}").repeat(64);
        assert_eq!(
            tx(&mut h, &format!("03 0405 {id:04x} 0004 {value}")),
            "009000"
        );
        assert_eq!(
            tx(&mut h, &format!("01 0405 {id:04x} 0004")),
            format!("00{value}9000")
        );
    }
    // Drop the target variables: the list of the in-device values alone cannot be
    // answered in one response: A0, without data.
    for id in ["0001", "0002", "0003"] {
        assert_eq!(tx(&mut h, &format!("04 0405 {id} ffff")), "009000");
    }
    assert_eq!(tx(&mut h, "01 0405 ffff 0004"), "a09000");
}

#[test]
fn read_profile_leaves_out_a_variable_that_no_frame_can_carry() {
    // An image written before sizes were checked: in-device UINT32[255] next to a UINT8,
    // both readable by anonymous.
    let mut config = Config::default();
    let mut bundle = Bundle::new(1);
    bundle
        .acl
        .push(AclEntry {
            profile: 0,
            rights: Rights::READ,
        })
        .unwrap();
    config.bundles.push(bundle).unwrap();
    let mut oversize = Variable::new(1);
    oversize.var_type = 0xe3;
    oversize.quantity = 255;
    oversize.bundle = Some(1);
    config.variables.push(oversize).unwrap();
    let mut small = Variable::new(2);
    small.var_type = 0xe1;
    small.bundle = Some(1);
    small.value = heapless::Vec::from_slice(&[0x5a]).unwrap();
    config.variables.push(small).unwrap();
    let mut h = Harness::from_device(Device::new(
        standard_objects(device_info(), NoHooks),
        config,
        Config::reset,
        LIMITS,
    ));
    assert_eq!(tx(&mut h, "01 0405 ffff 0004"), "008300c1025a9000");
    assert_eq!(tx(&mut h, "01 0404 0001 0001"), "008301c1025a9000");
    assert_eq!(tx(&mut h, "01 0405 0002 0007"), "008301c1025a9000");
}

#[test]
fn credentials_are_read_by_the_administrator_only() {
    let mut h = admin();
    create_user1(&mut h);
    assert_eq!(tx(&mut h, "02 0400 ffff 0001"), "009000");
    login(&mut h, "user1", "pwd");
    // Cloud MQTT client id and user name, relay client id and user name, relay topics
    // (derived from the net key, mqtt.md §2), LoRa ids; and the ones that already were.
    for resource in [16, 27, 28, 29, 52, 53, 54, 55, 58, 59, 90] {
        assert_eq!(read(&mut h, 1024, resource), "819000", "/1024//{resource}");
    }
    // Plain settings stay readable.
    assert_eq!(read(&mut h, 1024, 9), "009000");
    assert_eq!(read(&mut h, 1024, 50), "009000");
    assert_eq!(tx(&mut h, "02 0400 ffff 0001"), "009000");
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    for resource in [27, 28, 52, 53, 58, 59, 90] {
        assert_eq!(read(&mut h, 1024, resource), "009000", "/1024//{resource}");
    }
}

#[test]
fn a_deleted_profile_leaves_no_rights_to_the_next_one_with_its_id() {
    let mut h = admin();
    create_user1(&mut h);
    for frame in [
        "02 0404 0001 ffff",          // bundle 1
        "03 0404 0001 0000 41 01 03", // user1 may read and write it
        "02 0405 0005 ffff",          // variable 5, in-device UINT8, in bundle 1
        "03 0405 0005 0001 a1",
        "03 0405 0005 0006 0001",
        "04 0401 0001 ffff", // delete user1
        "02 0401 0001 ffff", // a new profile 1, "mallory"
        "03 0401 0001 0000 6d616c6c6f7279",
        "02 0401 0001 0002 707764",
    ] {
        assert_eq!(tx(&mut h, frame), "009000", "{frame}");
    }
    assert_eq!(tx(&mut h, "01 0404 0001 0000"), "859000");
    login(&mut h, "mallory", "pwd");
    assert_eq!(
        tx(&mut h, "01 0405 0005 0004"),
        "819000",
        "no read right inherited"
    );
    assert_eq!(
        tx(&mut h, "03 0405 0005 0004 2a"),
        "819000",
        "no write right inherited"
    );
}

#[test]
fn built_in_profiles_keep_their_own_rights() {
    let mut h = admin();
    // Anonymous aliased to the administrator would make every connection an admin.
    assert_eq!(tx(&mut h, "03 0401 0000 0005 ffff"), "869000");
    assert_eq!(tx(&mut h, "03 0401 ffff 0005 0000"), "869000");
    assert_eq!(tx(&mut h, "03 0401 fffe 0005 0000"), "869000");
    // Writing their own id is harmless; a user may still take the admin's rights.
    assert_eq!(tx(&mut h, "03 0401 0000 0005 0000"), "009000");
    create_user1(&mut h);
    assert_eq!(tx(&mut h, "03 0401 0001 0005 ffff"), "009000");
}

#[test]
fn a_password_longer_than_the_login_field_is_refused() {
    // The client logs in with the first 16 bytes in clear, but with the hash of the whole
    // password under hashPassword: a longer password could not serve both.
    let mut h = admin();
    create_user1(&mut h);
    let long = to_hex(b"correct-horse-battery");
    assert_eq!(tx(&mut h, &format!("02 0401 0001 0002 {long}")), "869000");
    let sixteen = to_hex(b"correct-horse-ba");
    assert_eq!(
        tx(&mut h, &format!("02 0401 0001 0002 {sixteen}")),
        "009000"
    );
}
