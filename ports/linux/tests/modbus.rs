//! `--modbus` against a Modbus TCP server that accepts and never answers (a dead PLC):
//! the request that waits on it ends with `B7` within the timeout of `/1027//21`, and
//! meanwhile the device answers every other channel at once (`A8`) — the target is
//! performed on a thread of its own, the device loop never waits on it. The real
//! server's behaviour is `interop/modbus.test.mjs`'s (pymodbus).

mod common;
use common::*;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use tungstenite::Message;

/// Sends one frame (hex, spaces allowed) without waiting for its answer.
fn send(client: &mut Client, frame: &str) {
    let frame: String = frame.split_whitespace().collect();
    client.send(Message::Binary(apdu(&frame).into())).unwrap();
}

/// The next answer, as hex.
fn receive(client: &mut Client) -> String {
    loop {
        match client.read().unwrap() {
            Message::Binary(bytes) => return to_hex(&bytes),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// [`tx`] of a frame written with spaces.
fn ask(client: &mut Client, frame: &str) -> String {
    let frame: String = frame.split_whitespace().collect();
    tx(client, &frame)
}

#[test]
fn a_silent_server_holds_its_request_only() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = silent.local_addr().unwrap().to_string();
    // Accepts, reads nothing, answers nothing (for as long as the test runs).
    std::thread::spawn(move || {
        let _held: Vec<_> = silent.incoming().filter_map(Result::ok).collect();
    });
    let port = Port::start(&["--modbus", &address], &[]);
    let mut owner = port.connect();
    let mut other = port.connect();
    assert_eq!(tx(&mut owner, &login("admin", "admin")), "009000");
    // MODBUS, unit 1, a 1.5 s timeout (15 × 100 ms); connecting asks the server for a
    // register: silence, B7.
    assert_eq!(ask(&mut owner, "030403ffff0001 03"), "009000");
    assert_eq!(
        ask(&mut owner, "030403ffff0015 0f300901 00c21101"),
        "009000"
    );
    assert_eq!(ask(&mut owner, "020403ffff0003"), "b79000");
    assert_eq!(ask(&mut owner, "010403ffff0003"), "00009000");
    // GET /1027//38: holding register 1 (offsetFirstRegister: PDU address 0) of unit 1,
    // sent without waiting for its answer.
    let started = Instant::now();
    send(&mut owner, "010403ffff0026 03 01 0001 00000001 02");
    std::thread::sleep(Duration::from_millis(200));
    // Meanwhile the other channel is answered, several times, long before the held
    // request's timeout: the loop is not waiting on the server.
    for _ in 0..3 {
        assert_eq!(tx(&mut other, GET_GROUP), "a89000");
    }
    let answered = started.elapsed();
    assert!(answered < Duration::from_millis(1200), "{answered:?}");
    // The held request: B7 once the timeout has passed.
    assert_eq!(receive(&mut owner), "b79000");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1400), "{took:?}");
    assert!(took < Duration::from_millis(4000), "{took:?}");
    // And the device serves on.
    assert_eq!(tx(&mut owner, GET_GROUP), "00ffff9000");
}
