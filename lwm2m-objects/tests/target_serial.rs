//! The raw serial target and the last commands of object 1027 through the engine: SERIAL
//! (`/1027//1` = 6) over `target_traits::serial::RawSerial` on a simulated peer, the
//! delimiter and timeout of `/1027//21`, `/34` (send and receive, send), `/35` (the bytes
//! received), `/43` (their count), `/7` (the target's supply), `/30` (reset keep); `BB`
//! for a board without the access, `A1` for one that cannot measure its supply; every
//! answer the same blocking (`Device::handle`) and suspended (`Device::start` /
//! `resume`, the operation performed on the spot or away from the buffers as a worker
//! thread does).
//!
//! `ports/linux/tests/target_serial.rs` runs the same objects against a real TCP peer.

mod common;
use common::*;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use lwm2m_core::io::{Operation, TargetCommand, ANSWER_LEN_BYTES};
use lwm2m_core::target::{Absent, TargetMux};
use lwm2m_core::Step;
use lwm2m_objects::target::RAW_ANSWER;
use target_traits::serial::RawSerial;
use target_traits::{ErrorKind, ErrorType, RamTarget, Vcc};

/// The target's end of the line: it answers every write with the bytes written in upper
/// case and `CR LF`, or with `answer` when set; `unasked` bytes come when it likes.
#[derive(Default)]
struct Peer {
    inbound: VecDeque<u8>,
    sent: Vec<u8>,
    answer: Option<Vec<u8>>,
    silent: bool,
}

#[derive(Clone, Default)]
struct Wire(Rc<RefCell<Peer>>);

impl Wire {
    fn unasked(&self, bytes: &[u8]) {
        self.0.borrow_mut().inbound.extend(bytes);
    }
}

impl embedded_io::ErrorType for Wire {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let mut peer = self.0.borrow_mut();
        let n = buf.len().min(peer.inbound.len());
        for slot in &mut buf[..n] {
            *slot = peer.inbound.pop_front().unwrap();
        }
        Ok(n)
    }
}

impl embedded_io::ReadReady for Wire {
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        Ok(!self.0.borrow().inbound.is_empty())
    }
}

impl embedded_io::Write for Wire {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        let mut peer = self.0.borrow_mut();
        peer.sent.extend_from_slice(buf);
        if !peer.silent {
            let answer = match &peer.answer {
                Some(answer) => answer.clone(),
                None => [&buf.to_ascii_uppercase()[..], b"\r\n"].concat(),
            };
            peer.inbound.extend(answer);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// The adapter's delay: time passes at once, counted.
#[derive(Clone, Default)]
struct Clock(Rc<RefCell<u64>>);

impl embedded_hal::delay::DelayNs for Clock {
    fn delay_ns(&mut self, ns: u32) {
        *self.0.borrow_mut() += u64::from(ns);
        assert!(
            *self.0.borrow() < 60_000_000_000,
            "the line waits without end"
        );
    }
}

/// The board's measure of its target's supply.
struct Meter(u16);

impl ErrorType for Meter {
    type Error = ErrorKind;
}

impl Vcc for Meter {
    fn millivolts(&mut self) -> Result<u16, ErrorKind> {
        match self.0 {
            0 => Err(ErrorKind::PowerFailure),
            mv => Ok(mv),
        }
    }
}

/// 32 received bytes at most.
type Line = RawSerial<Wire, Clock, 32>;
type Mux = TargetMux<RamTarget<64>, Absent, Line, Meter>;

fn mux(serial: bool, vcc: Option<u16>) -> (Mux, Wire, Clock) {
    let (wire, clock) = (Wire::default(), Clock::default());
    let line = serial.then(|| RawSerial::new(wire.clone(), clock.clone()));
    let mux = TargetMux::new(Some(RamTarget::new(0x2000_0000)), None::<Absent>)
        .with_serial(line)
        .with_vcc(vcc.map(Meter));
    (mux, wire, clock)
}

fn harness(serial: bool, vcc: Option<u16>) -> (Harness<Mux>, Wire, Clock) {
    let (mux, wire, clock) = mux(serial, vcc);
    let mut h = Harness::with_target(mux);
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    (h, wire, clock)
}

fn frame(method: u8, resource: u16, payload: &str) -> String {
    to_hex(&request_apdu(method, 1027, 0xFFFF, resource, &hex(payload)))
}

const GET: u8 = 1;
const POST: u8 = 2;
const PUT: u8 = 3;

/// SERIAL with `/1027//21` of delimiter `delimiter` and a timeout of `tenths` × 100 ms
/// (115200 bd, RS232, 8 bits, no parity).
fn serial_with(h: &mut Harness<Mux>, delimiter: u8, tenths: u8) {
    assert_eq!(h.tx(&frame(PUT, 1, "06")), "009000");
    let record = format!("{tenths:02x} {:02x} 01 01 00 c2 01 00", delimiter << 4);
    assert_eq!(h.tx(&frame(PUT, 21, &record)), "009000");
}

fn ascii(s: &str) -> String {
    to_hex(s.as_bytes())
}

#[test]
fn serial_is_among_the_available_protocols_when_the_board_has_a_line() {
    // The client lists p when mask & p == p: 6 reads as JTAG, DIRECT_IO and SERIAL; with
    // Modbus, 7.
    assert_eq!(harness(true, None).0.tx(&frame(GET, 20, "")), "00069000");
    assert_eq!(harness(false, None).0.tx(&frame(GET, 20, "")), "00009000");
    let (mut both, _, _) = mux(true, None);
    both.modbus = Some(Absent);
    let mut h = Harness::with_target(both);
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    assert_eq!(h.tx(&frame(GET, 20, "")), "00079000");
}

#[test]
fn a_raw_exchange_ends_at_the_configured_delimiter() {
    let (mut h, wire, _) = harness(true, None);
    serial_with(&mut h, 1, 10);
    assert_eq!(h.tx(&frame(POST, 3, "")), "009000");
    assert_eq!(h.tx(&frame(GET, 3, "")), "00019000");
    // CR: the answer is "HI\r", the LF after it is received.
    assert_eq!(
        h.tx(&frame(GET, 34, &ascii("hi"))),
        format!("00{}9000", ascii("HI\r"))
    );
    assert_eq!(wire.0.borrow().sent, b"hi");
    assert_eq!(h.tx(&frame(GET, 43, "")), "0000019000");
    assert_eq!(h.tx(&frame(GET, 35, "")), "000a9000");
    assert_eq!(h.tx(&frame(GET, 43, "")), "0000009000");
    assert_eq!(h.tx(&frame(GET, 35, "")), "009000");
    // LF, then CR LF: the answer ends at the delimiter, which it holds.
    serial_with(&mut h, 2, 10);
    assert_eq!(
        h.tx(&frame(GET, 34, &ascii("a\rb"))),
        format!("00{}9000", ascii("A\rB\r\n"))
    );
    wire.0.borrow_mut().answer = Some(b"1\n2\r\n3".to_vec());
    serial_with(&mut h, 3, 10);
    assert_eq!(
        h.tx(&frame(GET, 34, "00")),
        format!("00{}9000", ascii("1\n2\r\n"))
    );
    // The "3" after it: received.
    assert_eq!(h.tx(&frame(GET, 35, "")), format!("00{}9000", ascii("3")));
}

#[test]
fn without_a_delimiter_the_answer_is_what_came_within_the_timeout() {
    let (mut h, wire, clock) = harness(true, None);
    serial_with(&mut h, 0, 3);
    assert_eq!(
        h.tx(&frame(GET, 34, &ascii("ok"))),
        format!("00{}9000", ascii("OK\r\n"))
    );
    assert_eq!(*clock.0.borrow(), 300_000_000, "300 ms of quiet line");
    // A silent target: an empty answer, once the timeout passed.
    wire.0.borrow_mut().silent = true;
    serial_with(&mut h, 1, 5);
    assert_eq!(h.tx(&frame(GET, 34, "00")), "009000");
    assert_eq!(*clock.0.borrow(), 800_000_000);
}

#[test]
fn a_send_only_leaves_the_answer_received() {
    let (mut h, wire, _) = harness(true, None);
    serial_with(&mut h, 1, 10);
    assert_eq!(h.tx(&frame(POST, 34, &ascii("abc"))), "009000");
    assert_eq!(h.tx(&frame(GET, 43, "")), "0000059000");
    // And what the target sends unasked, behind it.
    wire.unasked(b"!");
    assert_eq!(h.tx(&frame(GET, 43, "")), "0000069000");
    assert_eq!(
        h.tx(&frame(GET, 35, "")),
        format!("00{}9000", ascii("ABC\r\n!"))
    );
    // Stale bytes are not taken for the next answer.
    wire.unasked(b"old\r");
    assert_eq!(
        h.tx(&frame(GET, 34, &ascii("x"))),
        format!("00{}9000", ascii("X\r"))
    );
    assert_eq!(
        h.tx(&frame(GET, 35, "")),
        format!("00{}9000", ascii("old\r\n"))
    );
}

#[test]
fn the_received_bytes_keep_the_newest_and_answers_their_bound() {
    let (mut h, wire, _) = harness(true, None);
    serial_with(&mut h, 1, 10);
    // 40 bytes unasked: the line keeps the newest 32.
    let unasked: Vec<u8> = (0..40).collect();
    wire.unasked(&unasked);
    assert_eq!(h.tx(&frame(GET, 43, "")), "0000209000");
    assert_eq!(
        h.tx(&frame(GET, 35, "")),
        format!("00{}9000", to_hex(&unasked[8..]))
    );
    // An answer longer than RAW_ANSWER: cut there, the rest received.
    let long: Vec<u8> = (0..300u16).map(|i| b'a' + (i % 26) as u8).collect();
    wire.0.borrow_mut().answer = Some(long.clone());
    let answer = h.tx(&frame(GET, 34, "00"));
    assert_eq!(
        answer,
        format!("00{}9000", to_hex(&long[..usize::from(RAW_ANSWER)]))
    );
    assert_eq!(h.tx(&frame(GET, 43, "")), "0000209000");
    assert_eq!(
        h.tx(&frame(GET, 35, "")),
        format!("00{}9000", to_hex(&long[300 - 32..]))
    );
}

#[test]
fn the_commands_need_the_serial_protocol_and_a_line() {
    // A board without a line: BB under SERIAL.
    let (mut h, _, _) = harness(false, None);
    serial_with(&mut h, 1, 10);
    for (method, resource, body) in [
        (GET, 34, "41"),
        (POST, 34, "41"),
        (GET, 35, ""),
        (GET, 43, ""),
        (POST, 3, ""),
    ] {
        assert_eq!(h.tx(&frame(method, resource, body)), "bb9000", "{resource}");
    }
    // A board with one, under another protocol: BB, nothing sent.
    let (mut h, wire, _) = harness(true, None);
    for protocol in ["00", "03"] {
        assert_eq!(h.tx(&frame(PUT, 1, protocol)), "009000");
        assert_eq!(h.tx(&frame(GET, 34, "41")), "bb9000");
        assert_eq!(h.tx(&frame(POST, 34, "41")), "bb9000");
        assert_eq!(h.tx(&frame(GET, 35, "")), "bb9000");
        assert_eq!(h.tx(&frame(GET, 43, "")), "bb9000");
    }
    assert!(wire.0.borrow().sent.is_empty());
    // Reset keep is BB whatever the board has; so is reset.
    serial_with(&mut h, 1, 10);
    assert_eq!(h.tx(&frame(POST, 30, "")), "bb9000");
    assert_eq!(h.tx(&frame(POST, 5, "")), "bb9000");
}

#[test]
fn bad_bodies_are_refused() {
    let (mut h, wire, _) = harness(true, None);
    serial_with(&mut h, 1, 10);
    // Nothing to send.
    assert_eq!(h.tx(&frame(GET, 34, "")), "869000");
    assert_eq!(h.tx(&frame(POST, 34, "")), "869000");
    assert!(wire.0.borrow().sent.is_empty());
    // A delimiter the protocol does not know is not configured.
    assert_eq!(h.tx(&frame(PUT, 21, "0a 40 01 01 00 c2 01 00")), "869000");
    // Methods the resources do not have.
    assert_eq!(h.tx(&frame(POST, 35, "")), "859000");
    assert_eq!(h.tx(&frame(PUT, 34, "41")), "859000");
    assert_eq!(h.tx(&frame(POST, 43, "")), "859000");
    assert_eq!(h.tx(&frame(POST, 7, "")), "859000");
    // Only the administrator exchanges with the target.
    assert_eq!(h.tx(LOGOUT), "009000");
    assert_eq!(h.tx(&frame(GET, 34, "41")), "819000");
    assert_eq!(h.tx(&frame(GET, 35, "")), "819000");
    assert!(wire.0.borrow().sent.is_empty());
}

#[test]
fn the_supply_is_the_board_s_measure_or_not_implemented() {
    let (mut h, _, _) = harness(false, Some(3300));
    assert_eq!(h.tx(&frame(GET, 7, "")), "000ce49000");
    // Whatever the protocol.
    assert_eq!(h.tx(&frame(PUT, 1, "03")), "009000");
    assert_eq!(h.tx(&frame(GET, 7, "")), "000ce49000");
    // A measure that fails: its error's code.
    let (mut h, _, _) = harness(false, Some(0));
    assert_eq!(h.tx(&frame(GET, 7, "")), "a69000");
    // No measure: A1, which the client's helpers read as a feature absent.
    let (mut h, _, _) = harness(true, None);
    assert_eq!(h.tx(&frame(GET, 7, "")), "a19000");
}

#[test]
fn exchanges_count_in_the_statistics_and_reading_the_received_bytes_does_not() {
    let (mut h, wire, _) = harness(true, Some(3300));
    serial_with(&mut h, 1, 10);
    assert_eq!(
        h.tx(&frame(GET, 34, "41")),
        format!("00{}9000", ascii("A\r"))
    );
    assert_eq!(h.tx(&frame(POST, 34, "41")), "009000");
    assert_eq!(
        h.tx(&frame(GET, 35, "")),
        format!("00{}9000", ascii("\nA\r\n"))
    );
    assert_eq!(h.tx(&frame(GET, 43, "")), "0000009000");
    assert_eq!(h.tx(&frame(GET, 7, "")), "000ce49000");
    wire.0.borrow_mut().inbound.clear();
    assert_eq!(h.tx(&frame(GET, 11, "")), "0000000000000000029000");
}

/// The answer of `request`, suspended: each operation performed by `perform`.
fn suspended(
    h: &mut Harness<Mux>,
    request: &[u8],
    mut perform: impl FnMut(&mut Harness<Mux>, &Operation, &[u8], &mut [u8]) -> lwm2m_core::io::IoResult,
) -> String {
    let mut out = [0u8; 1024];
    let mut step = h.device.start(WS1, request, h.now, &mut out);
    loop {
        match step {
            Step::Done(outcome) => return to_hex(&out[..outcome.len]),
            Step::Pending(op) => {
                let result = perform(h, &op, request, &mut out);
                step = h.device.resume(result, request, h.now, &mut out);
            }
        }
    }
}

/// On the spot, with the device's own target.
fn on_the_spot(
    h: &mut Harness<Mux>,
    op: &Operation,
    request: &[u8],
    out: &mut [u8],
) -> lwm2m_core::io::IoResult {
    h.device.perform(op, request, out)
}

/// As the desktop's worker thread: into a buffer of its own, the operation's output area
/// copied back.
fn away(
    h: &mut Harness<Mux>,
    op: &Operation,
    request: &[u8],
    out: &mut [u8],
) -> lwm2m_core::io::IoResult {
    let mut own = vec![0u8; out.len()];
    let result = h.device.perform(op, request, &mut own);
    if let (Some(into), Some(from)) = (op.read_buffer(out), op.read_buffer(&mut own)) {
        into.copy_from_slice(from);
    }
    result
}

#[test]
fn suspended_requests_answer_as_the_blocking_ones() {
    let requests = [
        frame(GET, 34, &ascii("hi")),
        frame(GET, 43, ""),
        frame(GET, 35, ""),
        frame(POST, 34, &ascii("abc")),
        frame(GET, 43, ""),
        frame(GET, 35, ""),
        frame(GET, 35, ""),
        frame(GET, 7, ""),
        frame(POST, 30, ""),
        frame(GET, 34, ""),
        frame(GET, 11, ""),
    ];
    let (mut blocking, _, _) = harness(true, Some(3300));
    serial_with(&mut blocking, 1, 10);
    let expected: Vec<String> = requests.iter().map(|r| blocking.tx(r)).collect();
    assert_eq!(expected[0], format!("00{}9000", ascii("HI\r")));
    assert_eq!(expected[5], format!("00{}9000", ascii("ABC\r\n")));
    for perform in [on_the_spot, away] {
        let (mut h, _, _) = harness(true, Some(3300));
        serial_with(&mut h, 1, 10);
        let answers: Vec<String> = requests
            .iter()
            .map(|r| suspended(&mut h, &hex(r), perform))
            .collect();
        assert_eq!(answers, expected);
    }
}

#[test]
fn a_suspended_exchange_asks_for_its_bound_and_the_length_trailer() {
    let (mut h, _, _) = harness(true, None);
    serial_with(&mut h, 1, 10);
    let request = hex(&frame(GET, 34, &ascii("hi")));
    let mut out = [0u8; 1024];
    let Step::Pending(op) = h.device.start(WS1, &request, h.now, &mut out) else {
        panic!("a raw exchange waits on the target");
    };
    let Operation::Target {
        command,
        output_len,
        ..
    } = op
    else {
        panic!("{op:?}");
    };
    assert_eq!(command, TargetCommand::SendReceive);
    assert_eq!(
        usize::from(output_len),
        usize::from(RAW_ANSWER) + ANSWER_LEN_BYTES
    );
    // Performed: the answer from the area's start, its length in the last two bytes.
    assert_eq!(h.device.perform(&op, &request, &mut out), Ok(()));
    let area = op.read_buffer(&mut out).unwrap();
    assert_eq!(&area[..3], b"HI\r");
    assert_eq!(&area[area.len() - 2..], &[0, 3]);
    // A port that put a length beyond the room there: A0, no data, no panic.
    let end = area.len();
    area[end - 2..].copy_from_slice(&(RAW_ANSWER + 1).to_be_bytes());
    let Step::Done(outcome) = h.device.resume(Ok(()), &request, h.now, &mut out) else {
        panic!("done");
    };
    assert_eq!(to_hex(&out[..outcome.len]), "a09000");
}

#[test]
fn a_multi_request_holds_raw_exchanges_within_their_bound() {
    let (mut h, _, _) = harness(true, None);
    serial_with(&mut h, 1, 10);
    let items = [
        request_apdu(GET, 1027, 0xFFFF, 34, b"hi"),
        request_apdu(GET, 1027, 0xFFFF, 43, &[]),
        request_apdu(GET, 1027, 0xFFFF, 35, &[]),
    ];
    let answer = h.tx(&to_hex(&multi_apdu(&items)));
    let hi = ascii("HI\r");
    assert_eq!(
        answer,
        format!("00 0004 00{hi} 0003 000001 0002 000a 9000").replace(' ', "")
    );
    // Four fit a 1 024-byte response whatever they answer; five might not: refused
    // before any runs (nothing read).
    let four = vec![request_apdu(GET, 1027, 0xFFFF, 34, b"x"); 4];
    let x = ascii("X\r");
    assert_eq!(
        h.tx(&to_hex(&multi_apdu(&four))),
        format!("00{}9000", format!("0003 00{x} ").repeat(4)).replace(' ', "")
    );
    let five = vec![request_apdu(GET, 1027, 0xFFFF, 35, &[]); 5];
    assert_eq!(h.tx(&to_hex(&multi_apdu(&five))), "a09000");
    assert_eq!(h.tx(&frame(GET, 43, "")), "0000049000");
}
