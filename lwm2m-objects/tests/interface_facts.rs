//! The read-only facts of object 1024 come from the board ([`InterfaceInfo`]), the local
//! time from the device's wall clock and the configured time zone, and the disabled
//! services are a stored mask: each answered in the form the client decodes.

mod common;
use common::*;
use lwm2m_core::Instant;
use lwm2m_objects::interface::InterfaceInfo;

fn admin() -> Harness {
    let mut h = Harness::new();
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    h
}

fn get(h: &mut Harness, object: u16, resource: u16) -> String {
    to_hex(&h.send_on(WS1, &get_apdu(object, 0xffff, resource)))
}

fn write(h: &mut Harness, method: u8, object: u16, resource: u16, body: &[u8]) -> String {
    to_hex(&h.send_on(WS1, &request_apdu(method, object, 0xffff, resource, body)))
}

const PUT: u8 = 3;
const POST: u8 = 2;

#[test]
fn a_board_that_says_nothing_answers_decodable_defaults() {
    let mut h = admin();
    assert_eq!(get(&mut h, 1024, 5), "009000", "no UID");
    assert_eq!(get(&mut h, 1024, 21), "0000009000", "no host protocol");
    assert_eq!(get(&mut h, 1024, 22), "a19000", "no BLE radio");
    assert_eq!(get(&mut h, 1024, 23), "0000009000", "no data log");
    assert_eq!(get(&mut h, 1024, 35), "009000");
    assert_eq!(get(&mut h, 1024, 60), "009000");
    // The image layout this firmware reads.
    assert_eq!(get(&mut h, 1024, 18), "0000019000");
}

#[test]
fn the_facts_are_the_boards_and_read_only() {
    let mut h = admin();
    *h.device.objects_mut().1.info_mut() = InterfaceInfo {
        uid: heapless::Vec::from_slice(&[0xe0, 0x04, 0x01, 0x50, 0x12, 0x34, 0x56, 0x78]).unwrap(),
        host_protocols: 0x0441,
        ble_address: Some([0xc0, 0x11, 0x22, 0x33, 0x44, 0x55]),
        max_packet_count: 512,
        hostname: heapless::String::try_from("tap-0001").unwrap(),
        product_key: heapless::String::try_from("PK-1").unwrap(),
    };
    assert_eq!(get(&mut h, 1024, 5), "00e0040150123456789000");
    assert_eq!(get(&mut h, 1024, 21), "0004419000");
    assert_eq!(get(&mut h, 1024, 22), "00c011223344559000");
    assert_eq!(get(&mut h, 1024, 23), "0002009000");
    assert_eq!(
        get(&mut h, 1024, 35),
        format!("00{}9000", to_hex(b"tap-0001"))
    );
    assert_eq!(get(&mut h, 1024, 60), format!("00{}9000", to_hex(b"PK-1")));
    // Nobody writes them; a UID logs nobody in.
    for resource in [5, 18, 21, 22, 23, 35, 60] {
        let answer = write(&mut h, PUT, 1024, resource, &[0]);
        assert_ne!(&answer[..2], "00", "PUT /1024//{resource}: {answer}");
    }
    assert_eq!(
        write(&mut h, POST, 1024, 5, &[0xe0, 0x04]),
        "a19000",
        "login with the UID"
    );
    // Read by the administrator only.
    assert_eq!(h.tx(LOGOUT), "009000");
    assert_eq!(get(&mut h, 1024, 5), "819000");
}

/// Nine big-endian u32s of `struct tm`.
fn tm(fields: [u32; 9]) -> String {
    let bytes: Vec<u8> = fields.iter().flat_map(|f| f.to_be_bytes()).collect();
    format!("00{}9000", to_hex(&bytes))
}

#[test]
fn local_time_is_the_wall_clock_in_the_configured_zone() {
    let mut h = Harness::new();
    // Never set: seconds since boot, from 1970-01-01 (a Thursday).
    h.now = Instant::from_secs(61);
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    assert_eq!(get(&mut h, 1024, 79), tm([1, 1, 0, 1, 0, 70, 4, 0, 0]));
    // Set by the port at boot: 2024-02-29 13:14:15 UTC.
    h.device.set_unix_time(1_709_212_455, h.now);
    assert_eq!(
        get(&mut h, 1024, 79),
        tm([15, 14, 13, 29, 1, 124, 4, 59, 0])
    );
    // The interlocutor's PUT /3//13, then a second later.
    assert_eq!(
        write(&mut h, PUT, 3, 13, &1_709_251_199u32.to_be_bytes()),
        "009000"
    );
    h.now = Instant::from_secs(62);
    // 2024-03-01 00:00:00.
    assert_eq!(get(&mut h, 1024, 79), tm([0, 0, 0, 1, 2, 124, 5, 60, 0]));
    assert_eq!(
        get(&mut h, 3, 13),
        format!("00{}9000", to_hex(b"1709251200"))
    );
    // POSIX zones: standard time, daylight saving rules left out.
    for (zone, hours) in [
        ("CET-1CEST,M3.5.0,M10.5.0/3", 1),
        ("EST5EDT", 19),
        ("<+0530>-5:30", 5),
        ("UTC0", 0),
        ("Europe/Paris", 0),
    ] {
        assert_eq!(write(&mut h, PUT, 1024, 78, zone.as_bytes()), "009000");
        let answer = get(&mut h, 1024, 79);
        let hour = u32::from_str_radix(&answer[18..26], 16).unwrap();
        assert_eq!(hour, hours, "{zone}: {answer}");
    }
    let minutes = u32::from_str_radix(&get(&mut h, 1024, 79)[10..18], 16).unwrap();
    assert_eq!(minutes, 0);
    assert_eq!(write(&mut h, PUT, 1024, 78, b"<+0530>-5:30"), "009000");
    let minutes = u32::from_str_radix(&get(&mut h, 1024, 79)[10..18], 16).unwrap();
    assert_eq!(minutes, 30);
}

#[test]
fn disabled_services_are_a_stored_mask_of_their_codes() {
    let mut h = admin();
    assert_eq!(get(&mut h, 1024, 75), "00009000");
    assert_eq!(write(&mut h, POST, 1024, 75, &[0x03]), "009000");
    assert_eq!(get(&mut h, 1024, 75), "00039000");
    // ServiceCode has DATALOG 1 and JVM 2 only.
    assert_eq!(write(&mut h, POST, 1024, 75, &[0x04]), "869000");
    assert_eq!(get(&mut h, 1024, 75), "00039000");
}

#[test]
fn the_sub_protocol_is_none() {
    let mut h = admin();
    assert_eq!(get(&mut h, 1027, 40), "00ff9000");
}
