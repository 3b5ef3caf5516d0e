//! The live transcript of vectors.txt (sections A and C) that concerns objects 3, 1024
//! and 1025, replayed byte for byte.

mod common;
use common::*;

#[test]
fn nfc_pairing_select_is_answered_9000() {
    let mut h = Harness::new();
    assert_eq!(h.tx("00a4040007f0024c774d324d9000"), "9000");
}

#[test]
fn device_information() {
    let mut h = Harness::new();
    assert_eq!(
        h.tx("a2ca000007010003ffff0002"),
        "00544150454d553030303030303030303030319000"
    );
    assert_eq!(h.tx("a2ca000007010003ffff0003"), "00312e39392e309000");
    assert_eq!(h.tx("a2ca000007010003ffff0000"), "00496f54697a659000");
}

#[test]
fn basic_auth_login_and_session_refresh() {
    let mut h = Harness::new();
    assert_eq!(h.tx("a2ca000007010400ffff0006"), "0000009000");
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    assert_eq!(h.tx(GET_GROUP), "00ffff9000");
    assert_eq!(h.tx("a2ca000007010401ffff0004"), "000e109000");
}

#[test]
fn wrong_password_is_unauthorized() {
    let mut h = Harness::new();
    assert_eq!(h.tx(LOGIN_ADMIN_WRONG), "819000");
    assert_eq!(h.tx(GET_GROUP), "0000009000");
}

#[test]
fn logout_returns_to_anonymous() {
    let mut h = Harness::new();
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    assert_eq!(h.tx(LOGOUT), "009000");
    assert_eq!(h.tx(GET_GROUP), "0000009000");
}

#[test]
fn hashed_field_in_plain_mode_is_refused() {
    // §A: the emulator runs in plain-password mode, so the hash is a wrong password.
    let mut h = Harness::new();
    assert_eq!(h.tx(LOGIN_ADMIN_HASHED), "819000");
}

#[test]
fn hashed_login_when_the_option_is_set() {
    // §C: security options 0008 -> BasicAuth with the hashed password.
    let mut h = Harness::new();
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    assert_eq!(h.tx("a2da000009030400ffff00060008"), "009000");
    assert_eq!(h.tx(LOGOUT), "009000");
    assert_eq!(h.tx("a2ca000007010400ffff0006"), "0000089000");
    assert_eq!(h.tx(LOGIN_ADMIN_HASHED), "009000");
    assert_eq!(h.tx(GET_GROUP), "00ffff9000");
    assert_eq!(h.tx("a2ca000007010401ffff0004"), "000e109000");
    // The plain field is now a wrong hash.
    assert_eq!(h.tx(LOGOUT), "009000");
    assert_eq!(h.tx(LOGIN_ADMIN), "819000");
}

#[test]
fn multi_request_answers_each_item() {
    // §A shape: [GET /3//2, GET /1024//7], both "expect anything".
    let mut h = Harness::new();
    assert_eq!(
        h.tx("a2ca00001b010400ffff0059 0007010003ffff0002ff 0007010400ffff0007ff"),
        "00 0013 00544150454d55303030303030303030303031 0003 000000 9000".replace(' ', "")
    );
}
