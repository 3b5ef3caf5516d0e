//! `port-linux --bridge-serial tcp:HOST:PORT` over real sockets: a board (the engine and
//! the standard objects behind `transport_traits::serial::SerialLink`, on a TCP "serial
//! line" as QEMU exposes one) reached by WebSocket clients through the bridge.

mod common;
use common::*;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant as StdInstant};

use lwm2m_core::{Channel, ChannelKind, Config, Device, FrameLimits, Instant};
use lwm2m_objects::{standard_objects, DeviceInfo, NoHooks};
use transport_traits::serial::{encode, encoded_len, SerialLink};
use transport_traits::FrameLink;
use tungstenite::Message;

/// A TCP stream as an `embedded-io` serial port.
struct Serial(TcpStream);

impl embedded_io::ErrorType for Serial {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Read for Serial {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        self.0.read(buf).map_err(|_| embedded_io::ErrorKind::Other)
    }
}

impl embedded_io::Write for Serial {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.0.write(buf).map_err(|_| embedded_io::ErrorKind::Other)
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        self.0.flush().map_err(|_| embedded_io::ErrorKind::Other)
    }
}

const LIMITS: FrameLimits = FrameLimits {
    max_request: 256,
    max_response: 256,
};

/// What the board saw: requests handled and link-closed frames.
#[derive(Default)]
struct Seen {
    requests: usize,
    closed: usize,
}

/// A board listening on a TCP "serial line"; returns its address and what it saw. It
/// keeps its one device (and so its serial channel's session) across TCP connections of
/// the line, as a QEMU board outlives a bridge process. With `noise`, it writes garbage
/// on the line before every answer.
fn board(noise: bool) -> (String, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let log = seen.clone();
    thread::spawn(move || {
        let info = DeviceInfo {
            manufacturer: "IoTize",
            flavor: "bridge-test",
            serial: heapless::String::try_from("BOARD0001").unwrap(),
            firmware_version: lwm2m_objects::device::TAP_FIRMWARE_LEVEL,
        };
        let mut device = Device::new(
            standard_objects(info, NoHooks),
            Config::default(),
            Config::reset,
            LIMITS,
        );
        let channel = Channel::new(1, ChannelKind::Serial);
        let start = StdInstant::now();
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let mut link = SerialLink::<_, 300, { encoded_len(300) }>::new(Serial(stream));
            let (mut rx, mut tx) = ([0u8; 300], [0u8; 256]);
            // The line's TCP connection ending is not a link-closed frame: a UART has
            // no such event, only the bridge's empty frame ends the session.
            while let Ok(n) = link.receive(&mut rx) {
                if n == 0 {
                    log.lock().unwrap().closed += 1;
                    device.channel_closed(channel.id);
                    continue;
                }
                log.lock().unwrap().requests += 1;
                let now = Instant::from_millis(start.elapsed().as_millis() as u64);
                let outcome = device.handle(channel, &rx[..n], now, &mut tx);
                if noise {
                    let _ =
                        embedded_io::Write::write_all(link.port_mut(), &[0x42, 0x00, 0x13, 0x37]);
                }
                if link.send(&tx[..outcome.len]).is_err() {
                    break;
                }
            }
        }
    });
    (addr, seen)
}

fn bridge(serial: &str) -> Port {
    Port::start(&["--bridge-serial", &format!("tcp:{serial}")], &[])
}

#[test]
fn the_real_requests_reach_the_board_and_its_session_ends_with_the_client() {
    let (serial, seen) = board(false);
    let port = bridge(&serial);
    let mut client = port.connect();
    // GET /3//2: the board's serial number.
    assert_eq!(
        tx(&mut client, "010003ffff0002"),
        format!("00{}9000", to_hex(b"BOARD0001"))
    );
    assert_eq!(tx(&mut client, &login("admin", "admin")), "009000");
    assert_eq!(tx(&mut client, GET_GROUP), "00ffff9000");

    // The board has one serial channel: a second client is turned away, and the first
    // one is still served.
    let mut second = port.connect();
    match second.read() {
        Ok(Message::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 1013),
        other => panic!("expected a close 1013, got {other:?}"),
    }
    assert_eq!(tx(&mut client, GET_GROUP), "00ffff9000");

    // The client goes away: the board hears it and ends the session, so the next client
    // is anonymous.
    client.close(None).unwrap();
    let _ = client.read();
    let start = StdInstant::now();
    let mut next = loop {
        let mut next = port.connect();
        match next.send(Message::Binary(apdu(GET_GROUP).into())) {
            Ok(()) => match next.read() {
                Ok(Message::Binary(answer)) => {
                    assert_eq!(
                        to_hex(&answer),
                        "0000009000",
                        "the session outlived its client"
                    );
                    break next;
                }
                // Still the first client's turn: try again.
                _ if start.elapsed() < Duration::from_secs(5) => {
                    thread::sleep(Duration::from_millis(20));
                }
                other => panic!("{other:?}"),
            },
            Err(_) if start.elapsed() < Duration::from_secs(5) => {
                thread::sleep(Duration::from_millis(20));
            }
            Err(err) => panic!("{err}"),
        }
    };
    assert_eq!(tx(&mut next, LOGOUT), "009000");
    let seen = seen.lock().unwrap();
    assert!(seen.closed >= 1, "no link-closed frame reached the board");
    assert!(seen.requests >= 6);
}

#[test]
fn noise_on_the_line_is_dropped_and_oversized_messages_are_refused() {
    let (serial, _) = board(true);
    let port = bridge(&serial);
    let mut client = port.connect();
    for _ in 0..5 {
        assert_eq!(tx(&mut client, GET_GROUP), "0000009000");
    }
    // Larger than the largest request of the desktop port (the bridge's bound): refused
    // from its header, the connection closed.
    client
        .send(Message::Binary(vec![0xA2; 5 + 1024 + 1].into()))
        .unwrap();
    match client.read() {
        Ok(Message::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 1009),
        other => panic!("expected a close 1009, got {other:?}"),
    }
    // The line is still good for the next client.
    let mut next = port.connect();
    assert_eq!(tx(&mut next, GET_GROUP), "0000009000");
}

/// The answer timeout the last test gives the bridge.
const ANSWER_TIMEOUT: Duration = Duration::from_millis(400);

/// The bridge stopped by SIGTERM sends the link-closed frame first: the board ends the
/// logged-in session, and the first client of the next bridge does not ride it (a review
/// found the bridge exiting without it).
#[test]
fn sigterm_of_the_bridge_ends_the_session_of_its_client() {
    let (serial, seen) = board(false);
    let mut first = bridge(&serial);
    let mut client = first.connect();
    assert_eq!(tx(&mut client, &login("admin", "admin")), "009000");
    assert_eq!(tx(&mut client, GET_GROUP), "00ffff9000");
    std::process::Command::new("kill")
        .args(["-TERM", &first.pid().to_string()])
        .status()
        .unwrap();
    assert!(
        first.wait(Duration::from_secs(5)).is_some(),
        "bridge did not stop"
    );
    drop(client);
    thread::sleep(Duration::from_millis(200));
    let closed = seen.lock().unwrap().closed;

    let second = bridge(&serial);
    let mut next = second.connect();
    let group = tx(&mut next, GET_GROUP);
    // One link-closed frame when the bridge started, one when SIGTERM stopped it.
    assert_eq!(
        (closed, group.as_str()),
        (2, "0000009000"),
        "no link-closed frame on SIGTERM: the next client is admin"
    );
}

/// A board that answers only after the bridge gave up (closing the client with 1011)
/// answers late: that answer is dropped, never given to the next client, who comes at
/// once and gets its own (a review found it given to the second client, and every later
/// answer one behind).
#[test]
fn a_late_answer_is_never_given_to_the_next_client() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let serial = listener.local_addr().unwrap().to_string();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut late = true;
        let mut buf = [0u8; 512];
        let mut out = [0u8; 64];
        loop {
            let Ok(n) = stream.read(&mut buf) else { return };
            if n == 0 {
                return;
            }
            if buf[..n].iter().filter(|&&b| b == 0).count() < 2 || n <= 7 {
                continue;
            }
            let answer: &[u8] = if late {
                late = false;
                // Busy well past the bridge's deadline (a slow flash erase).
                thread::sleep(ANSWER_TIMEOUT + Duration::from_millis(200));
                &[0xEE, 0x90, 0x00]
            } else {
                &[0x00, 0x12, 0x34, 0x90, 0x00]
            };
            let len = encode(answer, &mut out).unwrap();
            if stream.write_all(&out[..len]).is_err() {
                return;
            }
        }
    });
    let answer_ms = ANSWER_TIMEOUT.as_millis().to_string();
    let port = Port::start(
        &[
            "--bridge-serial",
            &format!("tcp:{serial}"),
            "--bridge-answer-ms",
            &answer_ms,
        ],
        &[],
    );
    let mut client = port.connect();
    client
        .send(Message::Binary(apdu(GET_GROUP).into()))
        .unwrap();
    match client.read() {
        Ok(Message::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 1011),
        other => panic!("expected a close 1011, got {other:?}"),
    }
    drop(client);
    // The next client comes at once.
    let mut next = port.connect();
    next.send(Message::Binary(apdu(GET_GROUP).into())).unwrap();
    // The late answer (EE) was dropped: the second client gets its own.
    match next.read() {
        Ok(Message::Binary(answer)) => assert_eq!(
            to_hex(&answer),
            "0012349000",
            "the first client's late answer was given to the second client"
        ),
        other => panic!("expected an answer, got {other:?}"),
    }
}

/// A board that never stops writing on the line does not hang the bridge: the client is
/// closed with 1011 at the answer timeout (a review found it never answered nor closed,
/// and the bridge's one channel taken for good).
#[test]
fn a_flooding_board_does_not_hang_the_bridge() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let serial = listener.local_addr().unwrap().to_string();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let noise = [0x55u8; 64];
        loop {
            if stream.write_all(&noise).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(5));
        }
    });
    let port = Port::start(
        &[
            "--bridge-serial",
            &format!("tcp:{serial}"),
            "--bridge-answer-ms",
            "400",
        ],
        &[],
    );
    let mut client = port.connect();
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = client.get_mut() {
        s.set_read_timeout(Some(Duration::from_secs(4))).unwrap();
    }
    client
        .send(Message::Binary(apdu(GET_GROUP).into()))
        .unwrap();
    match client.read() {
        Ok(Message::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 1011),
        other => {
            panic!("no answer nor close 4 s after a request (answer timeout 0.4 s): {other:?}")
        }
    }
}

/// A client that trickles one byte of a never-finished WebSocket frame every half idle
/// period does not hold the board's only channel: each whole message has the idle time
/// (a review found a per-read timeout, which such a client never hits).
#[test]
fn a_slowloris_client_does_not_hold_the_channel() {
    let (serial, _) = board(false);
    let port = Port::start(
        &[
            "--bridge-serial",
            &format!("tcp:{serial}"),
            "--idle-timeout",
            "1",
        ],
        &[],
    );
    let mut slow = port.connect();
    // A binary frame header announcing 100 bytes, masked, then its bytes one by one.
    let header = [0x82u8, 0x80 | 100, 1, 2, 3, 4];
    let MaybeTlsStream::Plain(raw) = slow.get_mut() else {
        unreachable!()
    };
    raw.write_all(&header).unwrap();
    for _ in 0..8 {
        thread::sleep(Duration::from_millis(400));
        if raw.write_all(&[0x11]).is_err() {
            break;
        }
    }
    // 3.2 s later, well past the 1 s idle timeout: the channel is free.
    let mut next = port.connect();
    next.send(Message::Binary(apdu(GET_GROUP).into())).unwrap();
    match next.read() {
        Ok(Message::Binary(answer)) => assert_eq!(to_hex(&answer), "0000009000"),
        other => panic!("the channel is still held by the trickling client: {other:?}"),
    }
}
use tungstenite::stream::MaybeTlsStream;

/// A serial line that ends (the board's QEMU stopped) stops the bridge with an error,
/// instead of turning every later client away: whoever runs it sees it stop.
#[test]
fn the_bridge_stops_when_its_serial_line_ends() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let serial = listener.local_addr().unwrap().to_string();
    thread::spawn(move || {
        // Takes the bridge's connection, then closes it.
        let (stream, _) = listener.accept().unwrap();
        thread::sleep(Duration::from_millis(300));
        drop(stream);
    });
    let mut port = bridge(&serial);
    thread::sleep(Duration::from_millis(500));
    let mut client = port.connect();
    let _ = client.send(Message::Binary(apdu(GET_GROUP).into()));
    let _ = client.read();
    let status = port
        .wait(Duration::from_secs(5))
        .expect("the bridge stopped");
    assert!(!status.success(), "it stopped with an error: {status:?}");
}
