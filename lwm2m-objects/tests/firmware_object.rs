//! Object 5: the update state, and the CRC check of the running image as the port
//! describes it.

mod common;
use common::*;
use lwm2m_objects::firmware::{FirmwareInfo, FirmwareState};

fn post(h: &mut Harness, resource: u16, body: &[u8]) -> String {
    to_hex(&h.send_on(WS1, &request_apdu(2, 5, 0xffff, resource, body)))
}

fn check_body(address: u32, size: u32, crc: u32) -> Vec<u8> {
    [address, size, crc]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect()
}

#[test]
fn the_state_is_normal_and_anyone_reads_it() {
    let mut h = Harness::new();
    assert_eq!(to_hex(&h.send_on(WS1, &get_apdu(5, 0xffff, 3))), "00019000");
    h.device.objects_mut().6.set_state(FirmwareState::Updated);
    assert_eq!(to_hex(&h.send_on(WS1, &get_apdu(5, 0xffff, 3))), "00049000");
}

#[test]
fn a_crc_check_compares_with_the_running_image() {
    let mut h = Harness::new();
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    // A port that describes no image.
    assert_eq!(post(&mut h, 6, &check_body(0, 16, 0)), "a19000");
    let image = FirmwareInfo {
        address: 0x0800_0000,
        size: 0x1_2340,
        crc: 0xdead_beef,
    };
    h.device.objects_mut().6.set_image(Some(image));
    assert_eq!(
        post(&mut h, 6, &check_body(0x0800_0000, 0x1_2340, 0xdead_beef)),
        "00deadbeef9000"
    );
    for (address, size, crc) in [
        (0x0800_0000, 0x1_2340, 0xdead_beee),
        (0x0800_0000, 0x1_2341, 0xdead_beef),
        (0x0800_0004, 0x1_2340, 0xdead_beef),
    ] {
        assert_eq!(post(&mut h, 6, &check_body(address, size, crc)), "869000");
    }
    // The body is the 12-byte CrcCheckBody.
    let body = check_body(0x0800_0000, 0x1_2340, 0xdead_beef);
    assert_eq!(post(&mut h, 6, &body[..11]), "869000");
    assert_eq!(post(&mut h, 6, &[body.clone(), vec![0]].concat()), "869000");
    // The update goes through single packets: package and update are not provided.
    assert_eq!(post(&mut h, 0, &[]), "a19000");
    assert_eq!(post(&mut h, 2, &[]), "a19000");
    // A multi-request counts the CRC it answers before running anything.
    let request = request_apdu(2, 5, 0xffff, 6, &body);
    let parsed = lwm2m_core::wire::Request::parse_apdu(&request).unwrap();
    let bound =
        lwm2m_core::object::Object::answer_bound(&h.device.objects().6, h.device.config(), &parsed);
    assert_eq!(bound, 4);
    // The administrator's only.
    assert_eq!(h.tx(LOGOUT), "009000");
    assert_eq!(post(&mut h, 6, &body), "819000");
}
