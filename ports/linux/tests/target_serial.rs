//! `--target-serial` against a real TCP peer on loopback (a serial port as ser2net or
//! QEMU would serve it), driven over the WebSocket link as a client would: SERIAL
//! selected (`/1027//1` = 6), a CR delimiter configured (`/1027//21`), `/1027//34` send
//! and receive, send only, `/43` and `/35` the bytes received; the peer restarting
//! between two requests; a peer that never answers holding its request only.

mod common;
use common::*;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The peer's answer to a line: `>` and the line in upper case, `CR LF`.
fn answer(line: &[u8]) -> Vec<u8> {
    [b">", &line.to_ascii_uppercase()[..], b"\r\n"].concat()
}

/// Serves one connection: each CR-terminated line answered ([`answer`]); `bye\r`
/// answered, then the connection closed. Every line received is reported on `lines`.
fn serve(mut stream: TcpStream, lines: &mpsc::Sender<Vec<u8>>) {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while let Ok(1) = stream.read(&mut byte) {
        if byte[0] != b'\r' {
            line.push(byte[0]);
            continue;
        }
        let _ = lines.send(line.clone());
        if stream.write_all(&answer(&line)).is_err() {
            return;
        }
        if line == b"bye" {
            return;
        }
        line.clear();
    }
}

/// A responder on a free loopback port: its address and the lines it receives.
fn responder() -> (String, mpsc::Receiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (lines, received) = mpsc::channel();
    thread::spawn(move || {
        for stream in listener.incoming() {
            match stream {
                Ok(stream) => serve(stream, &lines),
                Err(_) => return,
            }
        }
    });
    (address, received)
}

fn ascii(s: &str) -> String {
    to_hex(s.as_bytes())
}

/// `GET /1027//43` until it answers `count` (the peer's bytes on their way), at most 2 s.
fn wait_for_count(client: &mut Client, count: u16) {
    let started = Instant::now();
    let expected = format!("00{count:04x}9000");
    loop {
        let answer = tx(client, "010403ffff002b");
        if answer == expected {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{answer}, expected {expected}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_raw_serial_target_over_tcp() {
    let (peer, lines) = responder();
    let port = Port::start(&["--target-serial", &peer], &[]);
    let mut client = port.connect();
    assert_eq!(tx(&mut client, &login("admin", "admin")), "009000");
    // SERIAL is available, selected, configured: 115200 bd, RS232, 8 bits, no parity,
    // delimiter CR, timeout 10 × 100 ms.
    assert_eq!(tx(&mut client, "010403ffff0014"), "00069000");
    assert_eq!(tx(&mut client, "030403ffff0001 06"), "009000");
    assert_eq!(
        tx(&mut client, "030403ffff0015 0a100101 00c20100"),
        "009000"
    );
    assert_eq!(tx(&mut client, "020403ffff0003"), "009000");
    assert_eq!(tx(&mut client, "010403ffff0003"), "00019000");
    // GET /1027//34: the answer up to the CR; the LF after it is received.
    let started = Instant::now();
    assert_eq!(
        tx(&mut client, &format!("010403ffff0022 {}", ascii("hello\r"))),
        format!("00{}9000", ascii(">HELLO\r"))
    );
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "the delimiter, not the timeout, ended it"
    );
    assert_eq!(
        lines.recv_timeout(Duration::from_secs(1)).unwrap(),
        b"hello"
    );
    wait_for_count(&mut client, 1);
    // POST /1027//34: sent only; the answer is received.
    assert_eq!(
        tx(&mut client, &format!("020403ffff0022 {}", ascii("ping\r"))),
        "009000"
    );
    assert_eq!(lines.recv_timeout(Duration::from_secs(1)).unwrap(), b"ping");
    wait_for_count(&mut client, 8);
    // GET /1027//35: all of it, oldest first; then nothing.
    assert_eq!(
        tx(&mut client, "010403ffff0023"),
        format!("00{}9000", ascii("\n>PING\r\n"))
    );
    assert_eq!(tx(&mut client, "010403ffff002b"), "0000009000");
    assert_eq!(tx(&mut client, "010403ffff0023"), "009000");
    // The peer closes after its answer and takes a new connection: the next request
    // reaches it.
    assert_eq!(
        tx(&mut client, &format!("010403ffff0022 {}", ascii("bye\r"))),
        format!("00{}9000", ascii(">BYE\r"))
    );
    thread::sleep(Duration::from_millis(200));
    assert_eq!(
        tx(&mut client, &format!("010403ffff0022 {}", ascii("again\r"))),
        format!("00{}9000", ascii(">AGAIN\r"))
    );
    // An empty exchange is refused; the supply cannot be measured here.
    assert_eq!(tx(&mut client, "010403ffff0022"), "869000");
    assert_eq!(tx(&mut client, "010403ffff0007"), "a19000");
    // Three exchanges and a send succeeded, and the connect: the statistics.
    assert_eq!(tx(&mut client, "010403ffff000b"), "0000000000000000059000");
}

#[test]
fn a_silent_peer_ends_the_answer_at_the_timeout_and_holds_its_request_only() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = silent.local_addr().unwrap().to_string();
    // Accepts, answers nothing (for as long as the test runs).
    thread::spawn(move || {
        let _held: Vec<_> = silent.incoming().filter_map(Result::ok).collect();
    });
    let port = Port::start(&["--target-serial", &address], &[]);
    let mut owner = port.connect();
    let mut other = port.connect();
    assert_eq!(tx(&mut owner, &login("admin", "admin")), "009000");
    // SERIAL, delimiter CR, a 1.5 s timeout.
    assert_eq!(tx(&mut owner, "030403ffff0001 06"), "009000");
    assert_eq!(tx(&mut owner, "030403ffff0015 0f100101 00c20100"), "009000");
    let started = Instant::now();
    owner
        .send(tungstenite::Message::Binary(
            apdu(&format!("010403ffff0022 {}", ascii("x\r"))).into(),
        ))
        .unwrap();
    thread::sleep(Duration::from_millis(200));
    // Meanwhile the other channel is answered at once: the loop does not wait.
    assert_eq!(tx(&mut other, GET_GROUP), "a89000");
    assert!(started.elapsed() < Duration::from_millis(1200));
    // The held request: an empty answer once the timeout has passed.
    let answer = loop {
        match owner.read().unwrap() {
            tungstenite::Message::Binary(bytes) => break to_hex(&bytes),
            tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(answer, "009000");
    let took = started.elapsed();
    assert!(
        (Duration::from_millis(1400)..Duration::from_millis(4000)).contains(&took),
        "{took:?}"
    );
    assert_eq!(tx(&mut owner, GET_GROUP), "00ffff9000");
}

#[test]
fn serial_without_the_option_is_not_available() {
    let port = Port::start(&[], &[]);
    let mut client = port.connect();
    assert_eq!(tx(&mut client, &login("admin", "admin")), "009000");
    assert_eq!(tx(&mut client, "010403ffff0014"), "00009000");
    assert_eq!(tx(&mut client, "030403ffff0001 06"), "009000");
    assert_eq!(
        tx(&mut client, &format!("010403ffff0022 {}", ascii("x\r"))),
        "bb9000"
    );
    assert_eq!(tx(&mut client, "010403ffff002b"), "bb9000");
}
