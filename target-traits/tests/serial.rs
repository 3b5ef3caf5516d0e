//! `serial::RawSerial`, blocking and async, over a simulated line: a peer that answers
//! what it is sent, a character at a time as the simulated clock passes (the adapter's
//! delay moves it), or that never answers, or floods. Deterministic: no thread, no sleep;
//! a delay past a minute of simulated time fails the test instead of hanging it.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use target_traits::serial::{asynch, Delimiter, RawSerial, Serial, Until, DEFAULT_TIMEOUT_MS};
use target_traits::ErrorKind;

const MS: u64 = 1_000_000;
/// One character at 9600 baud.
const CHAR_NS: u64 = 1_146_000;
/// Past this much simulated time the adapter is taken for hung.
const HUNG_NS: u64 = 60_000 * MS;

type Responder = Box<dyn FnMut(&[u8]) -> Vec<u8>>;

struct Wire {
    now_ns: u64,
    /// Bytes towards the adapter, each with the time it arrives.
    inbound: VecDeque<(u64, u8)>,
    /// Everything the adapter sent.
    sent: Vec<u8>,
    /// What the peer answers to each write.
    responder: Responder,
    /// From a write to the first byte of its answer.
    latency_ns: u64,
    /// Between two characters (0: the answer arrives at once).
    char_ns: u64,
    /// The peer sends this byte without end.
    flood: Option<u8>,
    /// The port is at its end of file once nothing is left to read.
    closed: bool,
    /// Writes fail.
    broken: bool,
    /// A write opens the port again once it is at its end (a connection made anew).
    reopens: bool,
}

impl Wire {
    fn new(responder: Responder) -> Rc<RefCell<Wire>> {
        Rc::new(RefCell::new(Wire {
            now_ns: 0,
            inbound: VecDeque::new(),
            sent: Vec::new(),
            responder,
            latency_ns: 5 * MS,
            char_ns: CHAR_NS,
            flood: None,
            closed: false,
            broken: false,
            reopens: false,
        }))
    }

    /// A peer that answers `answer` to every write.
    fn answering(answer: &'static [u8]) -> Rc<RefCell<Wire>> {
        Wire::new(Box::new(move |_| answer.to_vec()))
    }

    /// Bytes the peer sends now, unasked.
    fn inject(&mut self, bytes: &[u8]) {
        let now = self.now_ns;
        self.inbound.extend(bytes.iter().map(|b| (now, *b)));
    }

    fn ready(&self) -> bool {
        self.flood.is_some()
            || self.closed && self.inbound.is_empty()
            || self
                .inbound
                .front()
                .is_some_and(|(at, _)| *at <= self.now_ns)
    }

    fn take(&mut self, buf: &mut [u8]) -> usize {
        if let Some(byte) = self.flood {
            buf.fill(byte);
            return buf.len();
        }
        let mut n = 0;
        while n < buf.len()
            && self
                .inbound
                .front()
                .is_some_and(|(at, _)| *at <= self.now_ns)
        {
            buf[n] = self.inbound.pop_front().unwrap().1;
            n += 1;
        }
        n
    }

    fn advance(&mut self, ns: u64) {
        self.now_ns += ns;
        assert!(self.now_ns < HUNG_NS, "the adapter waits without end");
    }
}

struct Port(Rc<RefCell<Wire>>);
struct Delay(Rc<RefCell<Wire>>);

impl embedded_io::ErrorType for Port {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Read for Port {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let mut wire = self.0.borrow_mut();
        assert!(wire.ready(), "a blocking read of a quiet line would block");
        Ok(wire.take(buf))
    }
}

impl embedded_io::ReadReady for Port {
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        Ok(self.0.borrow().ready())
    }
}

impl embedded_io::Write for Port {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        let mut wire = self.0.borrow_mut();
        if wire.broken {
            return Err(embedded_io::ErrorKind::Other);
        }
        if wire.reopens && wire.closed && wire.inbound.is_empty() {
            wire.closed = false;
        }
        wire.sent.extend_from_slice(buf);
        let answer = (wire.responder)(buf);
        let mut at = wire.now_ns + wire.latency_ns;
        for byte in answer {
            wire.inbound.push_back((at, byte));
            at += wire.char_ns;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl embedded_io_async::Read for Port {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        loop {
            {
                let mut wire = self.0.borrow_mut();
                if wire.ready() {
                    return Ok(wire.take(buf));
                }
            }
            embassy_futures::yield_now().await;
        }
    }
}

impl embedded_io_async::Write for Port {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        embedded_io::Write::write(self, buf)
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl embedded_hal::delay::DelayNs for Delay {
    fn delay_ns(&mut self, ns: u32) {
        self.0.borrow_mut().advance(u64::from(ns));
    }
}

impl embedded_hal_async::delay::DelayNs for Delay {
    async fn delay_ns(&mut self, ns: u32) {
        // A timer that fires `ns` after it starts, the clock moving 100 µs each time the
        // executor polls it.
        let end = self.0.borrow().now_ns + u64::from(ns);
        loop {
            {
                let mut wire = self.0.borrow_mut();
                if wire.now_ns >= end {
                    return;
                }
                let step = (end - wire.now_ns).min(100_000);
                wire.advance(step);
            }
            embassy_futures::yield_now().await;
        }
    }
}

fn line<const N: usize>(wire: &Rc<RefCell<Wire>>) -> RawSerial<Port, Delay, N> {
    RawSerial::new(Port(wire.clone()), Delay(wire.clone()))
}

fn until(delimiter: Delimiter, timeout_ms: u32) -> Until {
    Until {
        delimiter,
        timeout_ms,
    }
}

/// `send_receive` of `data`: the answer, and the simulated time it took.
fn exchange<const N: usize>(
    serial: &mut RawSerial<Port, Delay, N>,
    wire: &Rc<RefCell<Wire>>,
    data: &[u8],
    answer_room: usize,
    until: Until,
) -> (Result<Vec<u8>, ErrorKind>, u64) {
    let started = wire.borrow().now_ns;
    let mut answer = vec![0u8; answer_room];
    let result = serial
        .send_receive(data, &mut answer, until)
        .map(|n| answer[..n].to_vec());
    (result, wire.borrow().now_ns - started)
}

fn received<const N: usize>(serial: &mut RawSerial<Port, Delay, N>) -> Vec<u8> {
    let mut out = [0u8; 256];
    let n = serial.read_received(&mut out).unwrap();
    out[..n].to_vec()
}

#[test]
fn a_cr_ends_the_answer_and_what_follows_is_received() {
    let wire = Wire::answering(b"12.5\rNEXT");
    let mut serial = line::<64>(&wire);
    let (answer, took) = exchange(
        &mut serial,
        &wire,
        b"READ?\r",
        64,
        until(Delimiter::Cr, 1000),
    );
    assert_eq!(answer.unwrap(), b"12.5\r");
    assert_eq!(wire.borrow().sent, b"READ?\r");
    // Five characters after the latency, long before the timeout.
    assert!((5 * MS + 4 * CHAR_NS..20 * MS).contains(&took), "{took}");
    // The rest arrives after the answer ended: received bytes.
    wire.borrow_mut().advance(10 * MS);
    assert_eq!(serial.received_count(), Ok(4));
    assert_eq!(received(&mut serial), b"NEXT");
    assert_eq!(serial.received_count(), Ok(0));
}

#[test]
fn bytes_after_the_delimiter_in_the_same_read_are_received() {
    let wire = Wire::answering(b"ok\nmore\n");
    wire.borrow_mut().char_ns = 0;
    let mut serial = line::<64>(&wire);
    let (answer, _) = exchange(&mut serial, &wire, b"x", 64, until(Delimiter::Lf, 1000));
    assert_eq!(answer.unwrap(), b"ok\n");
    assert_eq!(received(&mut serial), b"more\n");
}

#[test]
fn cr_lf_ends_only_at_both() {
    let wire = Wire::answering(b"a\rb\nc\r\nd");
    let mut serial = line::<64>(&wire);
    let (answer, _) = exchange(&mut serial, &wire, b"x", 64, until(Delimiter::CrLf, 1000));
    assert_eq!(answer.unwrap(), b"a\rb\nc\r\n");
    // Under LF the same answer ends earlier.
    let wire = Wire::answering(b"a\rb\nc\r\nd");
    let mut serial = line::<64>(&wire);
    let (answer, _) = exchange(&mut serial, &wire, b"x", 64, until(Delimiter::Lf, 1000));
    assert_eq!(answer.unwrap(), b"a\rb\n");
}

#[test]
fn without_a_delimiter_the_answer_ends_at_its_timeout() {
    let wire = Wire::answering(b"abc\r\n");
    let mut serial = line::<64>(&wire);
    let (answer, took) = exchange(&mut serial, &wire, b"x", 64, until(Delimiter::None, 300));
    assert_eq!(answer.unwrap(), b"abc\r\n");
    // The timeout counts the quiet time: 300 ms of it, plus the few characters.
    assert!((300 * MS..320 * MS).contains(&took), "{took}");
    // A timeout of 0 is the default one.
    let (answer, took) = exchange(&mut serial, &wire, b"x", 64, until(Delimiter::None, 0));
    assert_eq!(answer.unwrap(), b"abc\r\n");
    let default = u64::from(DEFAULT_TIMEOUT_MS) * MS;
    assert!((default..default + 20 * MS).contains(&took), "{took}");
}

#[test]
fn a_peer_that_never_answers_ends_the_answer_at_the_timeout() {
    let wire = Wire::new(Box::new(|_| Vec::new()));
    let mut serial = line::<64>(&wire);
    let (answer, took) = exchange(&mut serial, &wire, b"x", 64, until(Delimiter::Cr, 500));
    assert_eq!(answer.unwrap(), b"");
    assert!((500 * MS..501 * MS).contains(&took), "{took}");
    // The longest timeout the configuration can give (255 × 100 ms) ends too.
    let (answer, took) = exchange(&mut serial, &wire, b"x", 64, until(Delimiter::CrLf, 25_500));
    assert_eq!(answer.unwrap(), b"");
    assert!((25_500 * MS..25_501 * MS).contains(&took), "{took}");
}

#[test]
fn a_full_answer_buffer_ends_the_answer_and_the_rest_is_received() {
    let wire = Wire::answering(b"abcdefgh\r");
    let mut serial = line::<64>(&wire);
    let (answer, took) = exchange(&mut serial, &wire, b"x", 4, until(Delimiter::Cr, 1000));
    assert_eq!(answer.unwrap(), b"abcd");
    assert!(took < 20 * MS, "{took}");
    wire.borrow_mut().advance(20 * MS);
    assert_eq!(received(&mut serial), b"efgh\r");
    // No room at all: the send alone.
    let (answer, _) = exchange(&mut serial, &wire, b"y", 0, until(Delimiter::Cr, 1000));
    assert_eq!(answer.unwrap(), b"");
    assert_eq!(wire.borrow().sent, b"xy");
}

#[test]
fn received_bytes_overflow_by_dropping_the_oldest() {
    let wire = Wire::new(Box::new(|_| Vec::new()));
    let mut serial = line::<8>(&wire);
    wire.borrow_mut().inject(b"0123456789abcdefghij");
    assert_eq!(serial.received_count(), Ok(8));
    assert_eq!(serial.dropped(), 12);
    let mut out = [0u8; 3];
    assert_eq!(serial.read_received(&mut out), Ok(3));
    assert_eq!(&out, b"cde");
    assert_eq!(received(&mut serial), b"fghij");
    assert_eq!(received(&mut serial), b"");
}

#[test]
fn what_arrived_before_the_send_is_not_the_answer() {
    let wire = Wire::answering(b"new\r");
    let mut serial = line::<16>(&wire);
    wire.borrow_mut().inject(b"old\r");
    let (answer, _) = exchange(&mut serial, &wire, b"x", 16, until(Delimiter::Cr, 1000));
    assert_eq!(answer.unwrap(), b"new\r");
    assert_eq!(received(&mut serial), b"old\r");
    // A send only: the answer is received.
    serial.send(b"ping").unwrap();
    wire.borrow_mut().advance(20 * MS);
    assert_eq!(received(&mut serial), b"new\r");
    assert_eq!(wire.borrow().sent, b"xping");
}

#[test]
fn a_flooding_peer_holds_no_call() {
    let wire = Wire::new(Box::new(|_| Vec::new()));
    wire.borrow_mut().flood = Some(b'x');
    let mut serial = line::<16>(&wire);
    // Under CR the flood never ends the answer: the full buffer does.
    let (answer, _) = exchange(&mut serial, &wire, b"x", 100, until(Delimiter::Cr, 1000));
    assert_eq!(answer.unwrap(), vec![b'x'; 100]);
    assert_eq!(serial.received_count(), Ok(16));
    assert!(serial.dropped() > 0);
}

#[test]
fn port_failures_are_errors() {
    let wire = Wire::answering(b"ok\r");
    let mut serial = line::<16>(&wire);
    wire.borrow_mut().broken = true;
    let (answer, _) = exchange(&mut serial, &wire, b"x", 16, until(Delimiter::Cr, 1000));
    assert_eq!(answer, Err(ErrorKind::Communication));
    assert_eq!(serial.send(b"x"), Err(ErrorKind::Communication));
    // The port at its end of file (a closed connection).
    wire.borrow_mut().closed = true;
    assert_eq!(serial.received_count(), Err(ErrorKind::Communication));
    assert_eq!(ErrorKind::Communication.status_byte(), 0xB6);
}

/// A port at its end before a send (a connection the peer closed between two
/// exchanges) is no error: what it held is received, the send opens it again; at its end
/// while an answer comes (the peer gone mid-answer), the answer fails at once (`B6`),
/// not at the timeout with what came before taken for a whole answer.
#[test]
fn an_end_of_file_fails_the_answer_but_not_the_next_send() {
    let wire = Wire::answering(b"ok\r");
    wire.borrow_mut().reopens = true;
    let mut serial = line::<16>(&wire);
    wire.borrow_mut().inject(b"late");
    wire.borrow_mut().closed = true;
    let (answer, _) = exchange(&mut serial, &wire, b"x", 16, until(Delimiter::Cr, 1000));
    assert_eq!(answer.unwrap(), b"ok\r");
    assert_eq!(received(&mut serial), b"late");
    // The peer goes away in the middle of its answer.
    let wire = Wire::answering(b"partial");
    let mut serial = line::<16>(&wire);
    let mut answer = [0u8; 16];
    let started = wire.borrow().now_ns;
    let result = {
        wire.borrow_mut().closed = true;
        serial.send_receive(b"x", &mut answer, until(Delimiter::Cr, 1000))
    };
    assert_eq!(result, Err(ErrorKind::Communication));
    let took = wire.borrow().now_ns - started;
    assert!(took < 100 * MS, "{took}");
    let result = block_on(asynch::Serial::send_receive(
        &mut line::<16>(&wire),
        b"x",
        &mut answer,
        until(Delimiter::Cr, 1000),
    ));
    assert_eq!(result, Err(ErrorKind::Communication));
}

fn block_on<F: core::future::Future>(future: F) -> F::Output {
    embassy_futures::block_on(future)
}

#[test]
fn the_async_line_ends_answers_alike() {
    let wire = Wire::answering(b"12.5\rNEXT");
    let mut serial = line::<64>(&wire);
    let mut answer = [0u8; 64];
    let n = block_on(asynch::Serial::send_receive(
        &mut serial,
        b"READ?\r",
        &mut answer,
        until(Delimiter::Cr, 1000),
    ))
    .unwrap();
    assert_eq!(&answer[..n], b"12.5\r");
    wire.borrow_mut().advance(10 * MS);
    assert_eq!(block_on(asynch::Serial::received_count(&mut serial)), Ok(4));
    let mut out = [0u8; 8];
    let n = block_on(asynch::Serial::read_received(&mut serial, &mut out)).unwrap();
    assert_eq!(&out[..n], b"NEXT");
    // A silent peer: the timeout ends the answer, empty.
    let silent = Wire::new(Box::new(|_| Vec::new()));
    let mut serial = line::<64>(&silent);
    let n = block_on(asynch::Serial::send_receive(
        &mut serial,
        b"x",
        &mut answer,
        until(Delimiter::CrLf, 200),
    ))
    .unwrap();
    assert_eq!(n, 0);
    let took = silent.borrow().now_ns;
    assert!((200 * MS..201 * MS).contains(&took), "{took}");
    // Without a delimiter: what arrived within the timeout.
    let wire = Wire::answering(b"abc");
    let mut serial = line::<64>(&wire);
    let n = block_on(asynch::Serial::send_receive(
        &mut serial,
        b"x",
        &mut answer[..2],
        until(Delimiter::None, 100),
    ))
    .unwrap();
    assert_eq!(&answer[..n], b"ab");
    block_on(asynch::Serial::send(&mut serial, b"y")).unwrap();
    wire.borrow_mut().advance(20 * MS);
    let n = block_on(asynch::Serial::read_received(&mut serial, &mut out)).unwrap();
    assert_eq!(&out[..n], b"cabc");
}
