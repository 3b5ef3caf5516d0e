//! Session rules (spec decisions 4 and 5): one interlocutor, login lock-out, idle
//! timeout, rights of anonymous.

mod common;
use common::*;
use lwm2m_core::auth::Credential;
use lwm2m_core::config::{Profile, ADMIN};
use lwm2m_core::{Channel, ChannelKind, Config, Device, Effect, ResultCode};
use lwm2m_objects::{standard_objects, NoHooks};

fn status(response: &str) -> u8 {
    u8::from_str_radix(&response[..2], 16).unwrap()
}

#[test]
fn three_failed_logins_lock_login_out_for_60_s() {
    let mut h = Harness::new();
    for _ in 0..3 {
        assert_eq!(h.tx(LOGIN_ADMIN_WRONG), "819000");
    }
    // Even the right password is refused while locked out.
    assert_eq!(h.tx(LOGIN_ADMIN), "a39000");
    assert!(h.last.next_deadline.is_some());
    h.advance_secs(59);
    assert_eq!(h.tx(LOGIN_ADMIN), "a39000");
    h.advance_secs(1);
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
}

#[test]
fn lock_out_survives_reconnecting_and_switching_channel() {
    let mut h = Harness::new();
    for _ in 0..3 {
        assert_eq!(h.tx(LOGIN_ADMIN_WRONG), "819000");
    }
    h.device.channel_closed(WS1.id);
    let response = h.send_on(WS2, &hex(LOGIN_ADMIN));
    assert_eq!(to_hex(&response), "a39000");
}

/// A device whose configuration has a user `user1` / `pwd1` besides the defaults.
fn device_with_user() -> Harness {
    let mut config = Config::default();
    let user = Profile::new(1, b"user1").with_credential(Credential::from_password(b"pwd1"));
    config.profiles.push(user).unwrap();
    Harness::from_device(Device::new(
        standard_objects(device_info(), NoHooks),
        config,
        Config::reset,
        LIMITS,
    ))
}

/// The Tap frame of `POST /1024//0` (login) with `name` and `password`.
fn login_frame(name: &[u8], password: &[u8]) -> Vec<u8> {
    let mut frame = hex("020400ffff0000");
    for field in [name, password] {
        let mut padded = [0u8; 16];
        padded[..field.len()].copy_from_slice(field);
        frame.extend_from_slice(&padded);
    }
    frame
}

fn apdu(frame: &[u8]) -> String {
    let mut apdu = vec![0xA2, if frame[0] == 1 { 0xCA } else { 0xDA }, 0, 0];
    apdu.push(frame.len() as u8);
    apdu.extend_from_slice(frame);
    to_hex(&apdu)
}

#[test]
fn another_accounts_login_does_not_forgive_failed_guesses() {
    let mut h = device_with_user();
    let guess = apdu(&login_frame(b"admin", b"guess"));
    let own_login = apdu(&login_frame(b"user1", b"pwd1"));
    // Two wrong admin passwords, then the attacker's own good login, and again.
    assert_eq!(h.tx(&guess), "819000");
    assert_eq!(h.tx(&guess), "819000");
    assert_eq!(h.tx(&own_login), "009000");
    assert_eq!(h.tx(LOGOUT), "009000");
    // The third wrong guess locks login out, for the attacker's account too.
    assert_eq!(h.tx(&guess), "819000");
    for _ in 0..100 {
        assert_eq!(h.tx(&guess), "a39000");
        assert_eq!(h.tx(&own_login), "a39000");
    }
}

#[test]
fn a_multi_request_gets_no_more_guesses_than_separate_requests() {
    let mut h = device_with_user();
    let guess = login_frame(b"admin", b"guess");
    let own = login_frame(b"user1", b"pwd1");
    let logout = hex("020400ffff0001");
    // 12 guesses (what fits the largest request), two by two between the attacker's own login and a logout.
    let mut items: Vec<&[u8]> = Vec::new();
    for _ in 0..6 {
        items.extend([&guess[..], &guess[..], &own[..], &logout[..]]);
    }
    let mut multi = hex("010400ffff0059");
    for item in &items {
        multi.extend_from_slice(&(item.len() as u16).to_be_bytes());
        multi.extend_from_slice(item);
        multi.push(0xFF);
    }
    let response = hex(&h.tx(&apdu(&multi)));
    assert_eq!(response[0], 0x00);
    // Items: len u16 | status | data; no item here answers data.
    let statuses: Vec<u8> = response[1..response.len() - 2]
        .chunks(3)
        .map(|item| item[2])
        .collect();
    let guesses: Vec<u8> = statuses
        .iter()
        .zip(&items)
        .filter(|(_, item)| ***item == guess[..])
        .map(|(s, _)| *s)
        .collect();
    // One login per request: the first guess is checked, every other login item is
    // refused before any check (the attacker's own logins too).
    let mut expected = vec![0x81];
    expected.resize(12, 0xA3);
    assert_eq!(guesses, expected, "{statuses:02x?}");
    let own_logins: Vec<u8> = statuses
        .iter()
        .zip(&items)
        .filter(|(_, item)| ***item == own[..])
        .map(|(s, _)| *s)
        .collect();
    assert_eq!(own_logins, vec![0xA3; 6]);
}

#[test]
fn failed_guesses_are_forgotten_after_a_quiet_lock_out_period() {
    let mut h = Harness::new();
    assert_eq!(h.tx(LOGIN_ADMIN_WRONG), "819000");
    assert_eq!(h.tx(LOGIN_ADMIN_WRONG), "819000");
    h.advance_secs(59);
    assert_eq!(h.tx(LOGIN_ADMIN_WRONG), "819000");
    assert_eq!(h.tx(LOGIN_ADMIN), "a39000", "three failures within 60 s");
    h.advance_secs(60);
    assert_eq!(h.tx(LOGIN_ADMIN_WRONG), "819000");
    assert_eq!(h.tx(LOGIN_ADMIN_WRONG), "819000");
    h.advance_secs(60);
    assert_eq!(h.tx(LOGIN_ADMIN_WRONG), "819000");
    assert_eq!(
        h.tx(LOGIN_ADMIN),
        "009000",
        "a quiet minute forgets failures"
    );
}

#[test]
fn a_side_handler_shortening_the_idle_limit_never_leaves_a_deadline_in_the_past() {
    // Fuzz finding (session target): unlimited inactivity, the clock at 61 s, then a
    // side handler writes an inactivity period of 60 s.
    let config = Config {
        inactivity_secs: 0,
        ..Config::default()
    };
    let mut h = Harness::from_device(Device::new(
        standard_objects(device_info(), NoHooks),
        config,
        Config::reset,
        LIMITS,
    ));
    assert_eq!(h.tx("a2ca000007010003ffff0000"), "00496f54697a659000"); // GET /3//0
    assert_eq!(h.device.session().owner(), Some(WS1));
    h.advance_secs(61);
    let mut out = [0u8; 64];
    let side = Channel::new(9, ChannelKind::Side);
    let put = hex("a2da000008030400ffff00223c");
    let outcome = h.device.handle_side(side, ADMIN, &put, h.now, &mut out);
    assert_eq!(&out[..outcome.len], [0, 0x90, 0]);
    assert!(
        outcome.next_deadline.is_none_or(|d| d > h.now),
        "deadline {:?} at {:?}",
        outcome.next_deadline,
        h.now
    );
    assert_eq!(h.device.session().owner(), None, "idle past the new limit");
}

#[test]
fn idle_timeout_logs_out() {
    let mut h = Harness::new();
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    // Default inactivity period 60 s; admin lifetime 3600 s: 60 s wins.
    let deadline = h
        .last
        .next_deadline
        .expect("a logged-in session has a deadline");
    assert_eq!(deadline.as_millis(), 60_000);
    h.advance_secs(30);
    assert_eq!(
        h.tx("a2ca000007010400ffff0004"),
        "00000000".to_owned() + "3c9000"
    );
    h.advance_secs(59);
    assert_eq!(h.tx(GET_GROUP), "00ffff9000");
    h.advance_secs(60);
    assert_eq!(
        h.device.session().owner(),
        None,
        "poll at the deadline ends the session"
    );
    assert_eq!(h.tx(GET_GROUP), "0000009000");
}

#[test]
fn inactivity_period_is_configurable_and_zero_disables_it() {
    let mut h = Harness::new();
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    // PUT /1024//34 as u8 (what the client writes), read back as u16.
    assert_eq!(h.tx("a2da000008030400ffff00220a"), "009000");
    assert_eq!(h.tx("a2ca000007010400ffff0022"), "00000a9000");
    h.advance_secs(11);
    assert_eq!(h.tx(GET_GROUP), "0000009000");
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    assert_eq!(h.tx("a2da000009030400ffff00220000"), "009000");
    // Admin's lifetime (3600 s) still bounds the idle time.
    assert_eq!(
        h.last.next_deadline.map(|d| d.as_millis()),
        Some(h.now.as_millis() + 3_600_000)
    );
}

#[test]
fn profile_lifetime_bounds_the_idle_time() {
    let mut h = Harness::new();
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    // PUT /1025/65535/4 = 5 s
    assert_eq!(h.tx("a2da000009030401ffff00040005"), "009000");
    h.advance_secs(6);
    assert_eq!(h.tx(GET_GROUP), "0000009000");
}

#[test]
fn a_second_channel_gets_a8_until_the_owner_leaves() {
    let mut h = Harness::new();
    assert_eq!(h.tx(GET_GROUP), "0000009000");
    let serial = hex("a2ca000007010003ffff0002");
    assert_eq!(
        h.send_on(WS2, &serial),
        vec![ResultCode::DeviceUnavailable.as_u8(), 0x90, 0x00]
    );
    h.device.channel_closed(WS1.id);
    assert_eq!(h.send_on(WS2, &serial)[0], 0x00);
    // Now channel 2 owns it; logout frees it for channel 1.
    assert_eq!(h.send_on(WS2, &hex(LOGOUT)), vec![0x00, 0x90, 0x00]);
    assert_eq!(h.tx(GET_GROUP), "0000009000");
}

#[test]
fn a_second_channel_gets_through_after_the_owner_idles_out() {
    let mut h = Harness::new();
    assert_eq!(h.tx(GET_GROUP), "0000009000");
    h.advance_secs(61);
    assert_eq!(h.send_on(WS2, &hex(GET_GROUP)), hex("0000009000"));
}

#[test]
fn anonymous_rights() {
    let mut h = Harness::new();
    // Reboot, factory reset, options and password changes need admin.
    assert_eq!(h.tx("a2da000007020003ffff0004"), "819000");
    assert_eq!(h.tx("a2da000007020003ffff0005"), "819000");
    assert_eq!(h.tx("a2da000009030400ffff00060008"), "819000");
    assert_eq!(h.tx("a2da00000a020401ffff0002616263"), "819000");
    assert_eq!(h.tx("a2da000008030400ffff00220a"), "819000");
    // Measurements need a login.
    assert_eq!(h.tx("a2ca000007010003ffff000a"), "819000");
    // Public: identity, keep-alive, options, group, frame sizes.
    for apdu in [
        "a2ca000007010003ffff0001",
        "a2ca000007010400ffff0004",
        "a2ca000007010400ffff0058",
    ] {
        assert_eq!(status(&h.tx(apdu)), 0x00, "{apdu}");
    }
    assert_eq!(h.tx("a2ca000007010400ffff0058"), "00040004009000");
}

#[test]
fn admin_reboot_is_an_effect_for_the_port() {
    let mut h = Harness::new();
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    assert_eq!(h.tx("a2da000007020003ffff0004"), "009000");
    assert_eq!(h.last.effect, Some(Effect::Reboot));
}

#[test]
fn factory_reset_restores_the_default_configuration() {
    let mut h = Harness::new();
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    // Change admin's password to "x", then factory reset.
    assert_eq!(h.tx("a2da000008020401ffff000278"), "009000");
    assert_eq!(h.tx("a2da000007020003ffff0005"), "009000");
    assert_eq!(h.last.effect, Some(Effect::FactoryReset));
    // The configurator goes on as admin on the same session.
    assert_eq!(h.tx(GET_GROUP), "00ffff9000");
    assert_eq!(h.tx(LOGOUT), "009000");
    // The default password is back.
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
}

#[test]
fn factory_reset_can_be_disabled_by_option() {
    let mut h = Harness::new();
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    assert_eq!(h.tx("a2da000009030400ffff00060001"), "009000");
    assert_eq!(h.tx("a2da000007020003ffff0005"), "879000");
    assert_eq!(h.last.effect, None);
}

#[test]
fn status_codes_for_absent_things() {
    let mut h = Harness::new();
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    // Unknown object, unknown resource, unknown profile instance.
    assert_eq!(h.tx("a2ca000007012345ffff0000"), "849000");
    assert_eq!(h.tx("a2ca000007010003ffff0063"), "849000");
    assert_eq!(h.tx("a2ca00000701040100090000"), "849000");
    // Single-instance objects answer instance 0 as well, nothing else.
    assert_eq!(h.tx("a2ca00000701000300000003"), "00312e39392e309000");
    assert_eq!(h.tx("a2ca00000701000300010003"), "849000");
    // Method not supported by the resource.
    assert_eq!(h.tx("a2da000007030003ffff0002"), "859000");
    assert_eq!(h.tx("a2da000007040003ffff0002"), "859000");
    // Known to the client, not provided by this build.
    assert_eq!(h.tx("a2ca000007010400ffff0016"), "a19000");
}

#[test]
fn multi_request_stops_after_a_failing_must_succeed_item() {
    let mut h = Harness::new();
    // [GET /3//3 expect ANY, POST /3//4 expect SUCCESS (refused: anonymous), GET /3//0]
    let response = h.tx(
        "a2ca000025010400ffff0059 0007010003ffff0003ff 0007020003ffff00047f 0007010003ffff0000ff",
    );
    assert_eq!(
        response,
        "00 0007 00312e39392e30 0001 81 9000".replace(' ', "")
    );
}

#[test]
fn multi_request_checks_each_item_and_refuses_nesting() {
    let mut h = Harness::new();
    // A nested multi-request item and a malformed item are answered 80; the rest runs.
    let response =
        h.tx("a2ca000021010400ffff0059 0007010400ffff0059ff 0003010003ff 0007010003ffff0003ff");
    assert_eq!(
        response,
        "00 0001 80 0001 80 0007 00312e39392e30 9000".replace(' ', "")
    );
    // A misframed body runs nothing.
    assert_eq!(h.tx("a2ca000009010400ffff0059 0009"), "809000");
}

#[test]
fn login_inside_a_multi_request_applies_to_the_next_items() {
    let mut h = Harness::new();
    let login = &LOGIN_ADMIN[10..];
    let apdu = format!("a2ca00003b010400ffff0059 0027{login}7f 0007010400ffff0007ff");
    assert_eq!(h.tx(&apdu), "00 0001 00 0003 00ffff 9000".replace(' ', ""));
}

#[test]
fn logout_then_login_in_one_multi_request_keeps_the_channel_as_owner() {
    let mut h = Harness::new();
    let login = &LOGIN_ADMIN[10..];
    let apdu =
        format!("a2ca000045010400ffff0059 0007020400ffff0001ff 0027{login}ff 0007010400ffff0007ff");
    assert_eq!(
        h.tx(&apdu),
        "00 0001 00 0001 00 0003 00ffff 9000".replace(' ', "")
    );
    assert_eq!(h.device.session().owner(), Some(WS1));
    assert_eq!(h.send_on(WS2, &hex(GET_GROUP)), hex("a89000"));
}

#[test]
fn anonymous_cannot_probe_which_profiles_exist() {
    let mut h = Harness::new();
    // Profile 1 does not exist, admin does: both refused the same way.
    assert_eq!(h.tx("a2ca00000701040100010000"), "819000");
    assert_eq!(h.tx("a2ca0000070104010007 0000"), "819000");
    assert_eq!(h.tx("a2ca000007010401ffff0000"), "819000");
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    assert_eq!(h.tx("a2ca00000701040100070000"), "849000");
}

#[test]
fn a_profile_without_a_name_cannot_log_in() {
    let mut h = Harness::new();
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    // Profile 7, created and given a password but no name.
    for frame in ["02 0401 0007 ffff", "02 0401 0007 0002 7037"] {
        assert_eq!(h.tx(&apdu(&hex(frame))), "009000", "{frame}");
    }
    assert_eq!(h.tx(LOGOUT), "009000");
    assert_eq!(h.tx(&apdu(&login_frame(b"", b"p7"))), "819000");
    assert_eq!(h.tx(GET_GROUP), "0000009000");
}
