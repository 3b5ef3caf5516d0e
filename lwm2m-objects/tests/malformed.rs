//! Bad input gets an error status ending `90 00`, never a panic, and the device keeps
//! serving (spec decision 3).

mod common;
use common::*;
use lwm2m_core::wire::{Request, CLA, INS_GET, INS_PUT_POST};
use proptest::prelude::*;

fn assert_error(response: &[u8], input: &[u8]) {
    assert!(response.len() >= 3, "short response to {}", to_hex(input));
    assert!(
        response[0] & 0x80 != 0,
        "status {:02x} for {}",
        response[0],
        to_hex(input)
    );
    assert_eq!(
        &response[response.len() - 2..],
        &[0x90, 0x00],
        "for {}",
        to_hex(input)
    );
}

fn still_serves(h: &mut Harness) {
    assert_eq!(h.tx("a2ca000007010003ffff0003"), "00312e39392e309000");
}

#[test]
fn truncated_apdus() {
    let mut h = Harness::new();
    let full = hex("a2ca000007010003ffff0002");
    for len in 0..full.len() {
        let response = h.send_on(WS1, &full[..len]);
        assert_eq!(response, vec![0x80, 0x90, 0x00], "prefix of {len} bytes");
    }
    still_serves(&mut h);
}

#[test]
fn wrong_class_instruction_and_parameters() {
    let mut h = Harness::new();
    for apdu in [
        "00ca000007010003ffff0002",
        "a2cb000007010003ffff0002",
        "a2a4000007010003ffff0002",
        "a2ca010007010003ffff0002",
        "a2ca000107010003ffff0002",
    ] {
        assert_eq!(h.tx(apdu), "809000", "{apdu}");
    }
    still_serves(&mut h);
}

#[test]
fn lc_larger_or_smaller_than_the_data() {
    let mut h = Harness::new();
    assert_eq!(h.tx("a2ca000008010003ffff0002"), "809000");
    assert_eq!(h.tx("a2ca0000ff010003ffff0002"), "809000");
    assert_eq!(h.tx("a2ca000006010003ffff0002"), "809000");
    still_serves(&mut h);
}

#[test]
fn unknown_method_bytes() {
    let mut h = Harness::new();
    for method in [0u8, 5, 6, 0x7f, 0x80, 0xff] {
        let apdu = [CLA, INS_GET, 0, 0, 7, method, 0, 3, 0xff, 0xff, 0, 2];
        assert_eq!(
            h.send_on(WS1, &apdu),
            vec![0x80, 0x90, 0x00],
            "method {method}"
        );
    }
    still_serves(&mut h);
}

#[test]
fn a_3000_byte_message_is_refused_whole() {
    let mut h = Harness::new();
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    // A well-formed PUT /1024//34 whose payload makes the frame exceed /1024//88.
    let payload = vec![0u8; 3000 - 12];
    let request = Request::new(
        lwm2m_core::wire::Method::Put,
        lwm2m_core::wire::Path::single(1024, 34),
    )
    .with_payload(&payload);
    let mut apdu = vec![0u8; 3000];
    let n = request.emit_apdu(&mut apdu).unwrap();
    assert_eq!(n, 3000);
    assert_eq!(h.send_on(WS1, &apdu), vec![0x80, 0x90, 0x00]);
    // Nothing was executed: the inactivity period is unchanged.
    assert_eq!(h.tx("a2ca000007010400ffff0022"), "00003c9000");
}

#[test]
fn wrong_body_sizes_are_not_acceptable() {
    let mut h = Harness::new();
    // A 31-byte login body.
    assert_eq!(
        h.tx(&LOGIN_ADMIN[..LOGIN_ADMIN.len() - 2].replacen("27", "26", 1)),
        "869000"
    );
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    // Options written on 3 bytes; inactivity on 0 bytes; reboot with a body.
    assert_eq!(h.tx("a2da00000a030400ffff0006000000"), "869000");
    assert_eq!(h.tx("a2da000007030400ffff0022"), "869000");
    assert_eq!(h.tx("a2da000008020003ffff000401"), "869000");
    // An undefined option bit.
    assert_eq!(h.tx("a2da000009030400ffff00060100"), "869000");
}

fn malformed_apdu() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Anything at all.
        proptest::collection::vec(any::<u8>(), 0..300),
        // A plausible header with a wrong Lc.
        (
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 7..300),
            1u8..=255
        )
            .prop_map(|(get, frame, delta)| {
                let mut apdu = vec![CLA, if get { INS_GET } else { INS_PUT_POST }, 0, 0];
                apdu.push(((frame.len() % 256) as u8).wrapping_add(delta));
                apdu.extend(frame);
                apdu
            }),
        // A correct header and Lc, an unknown method.
        (5u8..=255, proptest::collection::vec(any::<u8>(), 6..300)).prop_map(|(method, rest)| {
            let mut apdu = vec![CLA, INS_GET, 0, 0, ((rest.len() + 1) % 256) as u8, method];
            apdu.extend(rest);
            apdu
        }),
        // A correct header, a frame too short for a path.
        proptest::collection::vec(any::<u8>(), 0..7).prop_map(|frame| {
            let mut apdu = vec![CLA, INS_PUT_POST, 0, 0, frame.len() as u8];
            apdu.extend(frame);
            apdu
        }),
    ]
    .prop_filter("must not be a valid request or the NFC select", |apdu| {
        Request::parse_apdu(apdu).is_err() && !lwm2m_core::wire::is_nfc_select(apdu)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn malformed_frames_get_an_error_status(apdu in malformed_apdu()) {
        let mut h = Harness::new();
        let response = h.send_on(WS1, &apdu);
        assert_error(&response, &apdu);
        still_serves(&mut h);
    }

    #[test]
    fn any_well_formed_request_gets_a_complete_response(
        method in 1u8..=4,
        object in prop_oneof![Just(3u16), Just(1024), Just(1025), any::<u16>()],
        instance in prop_oneof![Just(0xffffu16), Just(0), Just(1), any::<u16>()],
        resource in prop_oneof![0u16..120, Just(0xffff), any::<u16>()],
        payload in proptest::collection::vec(any::<u8>(), 0..64),
        login in any::<bool>(),
    ) {
        let mut h = Harness::new();
        if login {
            assert_eq!(h.tx(LOGIN_ADMIN), "009000");
        }
        let mut apdu = vec![CLA, if method == 1 { INS_GET } else { INS_PUT_POST }, 0, 0, 0, method];
        apdu.extend(object.to_be_bytes());
        apdu.extend(instance.to_be_bytes());
        apdu.extend(resource.to_be_bytes());
        apdu.extend(&payload);
        apdu[4] = ((apdu.len() - 5) % 256) as u8;
        let response = h.send_on(WS1, &apdu);
        prop_assert!(response.len() >= 3);
        prop_assert_eq!(&response[response.len() - 2..], &[0x90, 0x00]);
        prop_assert!(lwm2m_core::ResultCode::from_u8(response[0]).is_some());
        if response[0] & 0x80 != 0 {
            prop_assert_eq!(response.len(), 3, "errors carry no data");
        }
    }
}
