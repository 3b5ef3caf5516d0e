//! The objects against a Modbus RTU link (spec decision 13): the standard objects behind
//! `TargetMux<_, Rtu<..>>`, the far end of an in-memory serial pair rmodbus's RTU server
//! (target-traits' simulated line and clock: no thread, no sleep). The same client frames
//! run blocking (`Device::handle`, the blocking master) and async (the async device loop,
//! `transport_traits::run::asynch::run`, the request suspended on each operation while the
//! async master awaits the server); both must give the same answers, the same
//! transactions on the line and the same server tables.

mod common;
#[path = "../../target-traits/tests/common/mod.rs"]
mod line;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use common::*;
use line::{Delay, Line, Port, MS};
use lwm2m_core::io::{IoResult, Operation};
use lwm2m_core::session::Session;
use lwm2m_core::storage::NoStore;
use lwm2m_core::target::{Absent, TargetMux};
use lwm2m_core::{ChannelId, Config, Effect, Instant};
use target_traits::modbus::rtu::{Rtu, DEFAULT_TIMEOUT_MS};
use target_traits::modbus::{self, Modbus, Table};
use target_traits::ErrorKind;
use transport_traits::run::{self, asynch, HostEvent, Stopped};

type Master = Rtu<Port, Delay>;

/// The server's tables: a few known registers and bits, unit 1.
fn server() -> Rc<RefCell<Line>> {
    let line = Line::new();
    {
        let mut l = line.borrow_mut();
        let s = &mut l.storage;
        s.holdings[10] = 0x1234;
        s.holdings[11] = 0xABCD;
        s.inputs[3] = 0x0102;
        for i in [0, 2, 3, 9] {
            s.coils[i] = true;
        }
        for i in [1, 7, 8] {
            s.discretes[i] = true;
        }
    }
    line
}

fn master(line: &Rc<RefCell<Line>>) -> Master {
    Rtu::new(Port(line.clone()), Delay(line.clone()))
}

/// One request of the client, the answer it must get, and what happens to the line
/// before it is sent.
struct Exchange {
    apdu: Vec<u8>,
    expect: String,
    before: fn(&mut Line),
}

/// What a request got: its answer, how long the line's clock ran meanwhile, how many
/// requests the server received meanwhile.
#[derive(Debug)]
struct Answered {
    answer: String,
    elapsed_ns: u64,
    transactions: usize,
}

fn nothing(_: &mut Line) {}

fn ex(apdu: Vec<u8>, expect: &str) -> Exchange {
    Exchange {
        apdu,
        expect: expect.replace(' ', ""),
        before: nothing,
    }
}

/// `method` on `/object//resource` with a hex payload.
fn on(method: u8, object: u16, resource: u16, payload: &str) -> Vec<u8> {
    request_apdu(method, object, 0xFFFF, resource, &hex(payload))
}

/// `method` on `/1029/{id}/resource` with a hex payload.
fn var(method: u8, id: u16, resource: u16, payload: &str) -> Vec<u8> {
    request_apdu(method, 1029, id, resource, &hex(payload))
}

const GET: u8 = 1;
const POST: u8 = 2;
const PUT: u8 = 3;

/// objects.md §6.4: slave 1, offsetFirstRegister, 115200 bd, RS232, 1 stop, EVEN, 8 bits,
/// CR_LF, no flow control, timeout 10 (1 s). Register N is PDU address N − 1.
const SERIAL_MODBUS: &str = "0a 30 09 01 00 c2 11 01";
/// The same with timeout 3 (300 ms).
const SERIAL_MODBUS_300_MS: &str = "03 30 09 01 00 c2 11 01";

/// Logged in, MODBUS selected, configured with `record` and connected.
fn connect(record: &str) -> Vec<Exchange> {
    vec![
        ex(hex(LOGIN_ADMIN), "00 9000"),
        // The board reaches Modbus only (as the client decodes the mask: bits 0 and 1).
        ex(on(GET, 1027, 20, ""), "00 03 9000"),
        ex(on(PUT, 1027, 1, "03"), "00 9000"),
        ex(on(PUT, 1027, 21, record), "00 9000"),
        ex(on(POST, 1027, 3, ""), "00 9000"),
        ex(on(GET, 1027, 3, ""), "00 01 9000"),
    ]
}

/// The whole tour: `/38` and `/37` on the four tables, a TARGET variable on a holding
/// register, registers the server lacks.
fn tour() -> Vec<Exchange> {
    let mut script = connect(SERIAL_MODBUS);
    script.extend([
        // Holding registers 11 and 12 of unit 1: PDU addresses 10 and 11.
        ex(
            on(GET, 1027, 38, "03 01 000b 00000002 02"),
            "00 1234 abcd 9000",
        ),
        // Unit 0 in the options: the unit of /1027//21.
        ex(on(GET, 1027, 38, "03 00 000b 00000001 02"), "00 1234 9000"),
        // Coils 1 to 10 (PDU 0 to 9), discrete inputs 2 to 4, input register 4: bits one
        // byte each, registers big-endian.
        ex(
            on(GET, 1027, 38, "01 01 0001 0000000a 00"),
            "00 01 00 01 01 00 00 00 00 00 01 9000",
        ),
        ex(
            on(GET, 1027, 38, "02 01 0002 00000003 00"),
            "00 01 00 00 9000",
        ),
        ex(on(GET, 1027, 38, "04 01 0004 00000001 02"), "00 0102 9000"),
        // Writes: registers 21 and 22 (function 16), register 6 (function 6), coil 101
        // (function 5), coils 17 to 19 (function 15).
        ex(
            on(POST, 1027, 37, "03 01 0015 00000002 02 beef cafe"),
            "00 9000",
        ),
        ex(on(POST, 1027, 37, "03 01 0006 00000001 02 0042"), "00 9000"),
        ex(on(POST, 1027, 37, "01 01 0065 00000001 00 01"), "00 9000"),
        ex(
            on(POST, 1027, 37, "01 01 0011 00000003 00 01 00 01"),
            "00 9000",
        ),
        // Read back from the server.
        ex(
            on(GET, 1027, 38, "03 01 0015 00000002 02"),
            "00 beef cafe 9000",
        ),
        ex(
            on(GET, 1027, 38, "01 01 0011 00000003 00"),
            "00 01 00 01 9000",
        ),
        // Variable 1: TARGET UINT16 on holding register 11 of unit 1 (PDU 10).
        ex(var(POST, 1, 0xFFFF, ""), "00 9000"),
        ex(var(PUT, 1, 0, "03 01 00 0b"), "00 9000"),
        ex(var(PUT, 1, 1, "22"), "00 9000"),
        ex(var(GET, 1, 4, ""), "00 1234 9000"),
        ex(var(PUT, 1, 4, "5678"), "00 9000"),
        ex(var(GET, 1, 4, ""), "00 5678 9000"),
        // Variable 2 on holding register 400: the server has 256 (illegal data address).
        ex(var(POST, 2, 0xFFFF, ""), "00 9000"),
        ex(var(PUT, 2, 0, "03 01 01 90"), "00 9000"),
        ex(var(PUT, 2, 1, "22"), "00 9000"),
        ex(var(GET, 2, 4, ""), "b3 9000"),
        // The same through /38 and /37 (coil 2305: the server has 2048).
        ex(on(GET, 1027, 38, "03 01 0190 00000001 02"), "b3 9000"),
        ex(on(POST, 1027, 37, "01 01 0901 00000001 00 01"), "b3 9000"),
        // The device keeps serving the target.
        ex(var(GET, 1, 4, ""), "00 5678 9000"),
    ]);
    script
}

/// Every request the server received: (function, PDU address), all of unit 1.
fn transactions(line: &Line) -> Vec<(u8, u16)> {
    line.requests
        .iter()
        .map(|r| {
            assert_eq!(r[0], 1, "unit 1: {r:02x?}");
            (r[1], u16::from_be_bytes([r[2], r[3]]))
        })
        .collect()
}

/// What the tour leaves: every answer, one transaction for each target request (an
/// exception is not asked again), the server's tables written.
fn check_tour(script: &[Exchange], answered: &[Answered], line: &Line) {
    let got: Vec<&str> = answered.iter().map(|a| a.answer.as_str()).collect();
    let expected: Vec<&str> = script.iter().map(|e| e.expect.as_str()).collect();
    assert_eq!(got, expected);
    assert_eq!(
        transactions(line),
        [
            // The connect's probe: holding register 0 of the configured unit.
            (3, 0),
            (3, 10),
            (3, 10),
            (1, 0),
            (2, 1),
            (4, 3),
            (16, 20),
            (6, 5),
            (5, 100),
            (15, 16),
            (3, 20),
            (1, 16),
            (3, 10),
            (6, 10),
            (3, 10),
            (3, 399),
            (3, 399),
            (5, 2304),
            (3, 10),
        ]
    );
    let s = &line.storage;
    assert_eq!(s.holdings[10], 0x5678, "the variable written on the server");
    assert_eq!(&s.holdings[20..22], &[0xBEEF, 0xCAFE]);
    assert_eq!(s.holdings[5], 0x0042);
    assert_eq!(s.holdings[11], 0xABCD, "untouched");
    assert!(s.coils[100]);
    assert_eq!(&s.coils[16..19], &[true, false, true]);
}

/// A line that falls silent: with a timeout of 3 (300 ms) in `/1027//21`, a read is `B7`
/// after the request and its one retry each waited 300 ms; the line back, the next request
/// is served.
fn silence() -> Vec<Exchange> {
    let mut script = connect(SERIAL_MODBUS_300_MS);
    script.extend([
        ex(var(POST, 1, 0xFFFF, ""), "00 9000"),
        ex(var(PUT, 1, 0, "03 01 00 0b"), "00 9000"),
        ex(var(PUT, 1, 1, "22"), "00 9000"),
        Exchange {
            before: |line| line.silent_for = usize::MAX,
            ..ex(on(GET, 1027, 38, "03 01 000b 00000001 02"), "b7 9000")
        },
        ex(var(GET, 1, 4, ""), "b7 9000"),
        Exchange {
            before: |line| line.silent_for = 0,
            ..ex(on(GET, 1027, 38, "03 01 000b 00000001 02"), "00 1234 9000")
        },
        ex(var(GET, 1, 4, ""), "00 1234 9000"),
    ]);
    script
}

fn check_silence(script: &[Exchange], answered: &[Answered]) {
    let got: Vec<&str> = answered.iter().map(|a| a.answer.as_str()).collect();
    let expected: Vec<&str> = script.iter().map(|e| e.expect.as_str()).collect();
    assert_eq!(got, expected);
    let silent = &answered[answered.len() - 4..answered.len() - 2];
    for a in silent {
        assert_eq!(a.transactions, 2, "sent once, asked again once: {a:?}");
        assert!(
            (600 * MS..610 * MS).contains(&a.elapsed_ns),
            "two timeouts of 300 ms (/1027//21), not the master's 1 s: {a:?}"
        );
    }
    for a in &answered[answered.len() - 2..] {
        assert_eq!(a.transactions, 1, "{a:?}");
        assert!(a.elapsed_ns < 50 * MS, "{a:?}");
    }
}

// Blocking: `Device::handle`, the device's own target the multiplexer over the blocking
// master.

/// Runs `script` through `Device::handle`.
fn run_blocking(line: &Rc<RefCell<Line>>, script: &[Exchange]) -> Vec<Answered> {
    let mut h = Harness::with_target(TargetMux::new(None::<Absent>, Some(master(line))));
    script
        .iter()
        .map(|e| {
            (e.before)(&mut line.borrow_mut());
            let (t0, n0) = {
                let l = line.borrow();
                (l.now_ns, l.requests.len())
            };
            let answer = to_hex(&h.send_on(WS1, &e.apdu));
            let l = line.borrow();
            Answered {
                answer,
                elapsed_ns: l.now_ns - t0,
                transactions: l.requests.len() - n0,
            }
        })
        .collect()
}

#[test]
fn blocking_the_objects_read_and_write_an_rmodbus_rtu_server() {
    let line = server();
    let script = tour();
    let answered = run_blocking(&line, &script);
    check_tour(&script, &answered, &line.borrow());
}

#[test]
fn blocking_a_silent_line_is_b7_within_the_timeout_of_the_protocol_configuration() {
    let line = server();
    let script = silence();
    let answered = run_blocking(&line, &script);
    check_silence(&script, &answered);
}

// Async: the async device loop; the device's own target is none (NoTarget: A5), every
// target operation is performed by `RtuIo` over the async master.

/// One Modbus transaction of the multiplexer.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Transaction {
    unit: u8,
    table: Table,
    address: u16,
    count: u16,
    /// What a write sends; `None` for a read.
    data: Option<Vec<u8>>,
    /// Bytes a read answers.
    len: usize,
}

/// The Modbus master the multiplexer sees in `RtuIo`: first it records the one
/// transaction an operation asks for (and refuses it), then, given the async master's
/// result, answers the same transaction with it.
#[derive(Default)]
struct Recorder {
    timeout_ms: Option<u32>,
    asked: Option<Transaction>,
    result: Option<Result<Vec<u8>, ErrorKind>>,
}

impl Recorder {
    fn transact(&mut self, asked: Transaction, out: &mut [u8]) -> Result<(), ErrorKind> {
        let Some(result) = &self.result else {
            assert_eq!(self.asked, None, "one transaction an operation");
            self.asked = Some(asked);
            return Err(ErrorKind::Other);
        };
        assert_eq!(self.asked.as_ref(), Some(&asked), "the same transaction");
        out.copy_from_slice(result.as_ref().map_err(|kind| *kind)?);
        Ok(())
    }
}

impl target_traits::ErrorType for Recorder {
    type Error = ErrorKind;
}

impl Modbus for Recorder {
    fn read(
        &mut self,
        unit: u8,
        table: Table,
        address: u16,
        count: u16,
        out: &mut [u8],
    ) -> Result<(), ErrorKind> {
        let asked = Transaction {
            unit,
            table,
            address,
            count,
            data: None,
            len: out.len(),
        };
        self.transact(asked, out)
    }

    fn write(
        &mut self,
        unit: u8,
        table: Table,
        address: u16,
        count: u16,
        data: &[u8],
    ) -> Result<(), ErrorKind> {
        let asked = Transaction {
            unit,
            table,
            address,
            count,
            data: Some(data.to_vec()),
            len: 0,
        };
        self.transact(asked, &mut [])
    }

    fn set_timeout_ms(&mut self, timeout_ms: u32) {
        self.timeout_ms = Some(timeout_ms);
    }
}

/// A board's async target: the operations a request waits on, the Modbus transaction of
/// each awaited on the async RTU master. The multiplexer's own code turns the operation
/// into the transaction and the transaction's result into the operation's.
struct RtuIo {
    rtu: Master,
    performed: Vec<Operation>,
}

impl asynch::Io for RtuIo {
    async fn perform(
        &mut self,
        op: &Operation,
        config: &Config,
        request: &[u8],
        out: &mut [u8],
    ) -> IoResult {
        self.performed.push(*op);
        let mut mux = TargetMux::<Absent, Recorder>::new(None, Some(Recorder::default()));
        let planned = op.perform(config, request, out, &mut mux, &mut NoStore);
        let mut recorder = mux.modbus.take().unwrap();
        let Some(asked) = recorder.asked.clone() else {
            // No transaction: answered by the multiplexer alone (connect, protocols).
            return planned;
        };
        if let Some(ms) = recorder.timeout_ms {
            self.rtu
                .set_timeout_ms(if ms == 0 { DEFAULT_TIMEOUT_MS } else { ms });
        }
        let Transaction {
            unit,
            table,
            address,
            count,
            ..
        } = asked;
        let result = match &asked.data {
            Some(data) => {
                modbus::asynch::Modbus::write(&mut self.rtu, unit, table, address, count, data)
                    .await
                    .map(|()| Vec::new())
            }
            None => {
                let mut buf = vec![0; asked.len];
                modbus::asynch::Modbus::read(&mut self.rtu, unit, table, address, count, &mut buf)
                    .await
                    .map(|()| buf)
            }
        };
        recorder.result = Some(result);
        let mut mux = TargetMux::<Absent, Recorder>::new(None, Some(recorder));
        op.perform(config, request, out, &mut mux, &mut NoStore)
    }
}

/// The client: one request at a time, the next sent once the answer is in (meanwhile its
/// link is quiet); then it stops the loop.
struct Client {
    line: Rc<RefCell<Line>>,
    script: VecDeque<Exchange>,
    sent: Option<(u64, usize)>,
    answered: Vec<Answered>,
}

impl transport_traits::ErrorType for Client {
    type Error = transport_traits::ErrorKind;
}

impl asynch::Host for Client {
    async fn wait(
        &mut self,
        _: &Session,
        _: Option<Instant>,
        buf: &mut [u8],
    ) -> Result<HostEvent, Self::Error> {
        if self.sent.is_some() {
            // Awaiting the answer (the loop waits here beside an operation).
            core::future::pending::<()>().await;
        }
        let Some(e) = self.script.pop_front() else {
            return Ok(HostEvent::Stop);
        };
        let mut l = self.line.borrow_mut();
        (e.before)(&mut l);
        self.sent = Some((l.now_ns, l.requests.len()));
        buf[..e.apdu.len()].copy_from_slice(&e.apdu);
        Ok(HostEvent::Request {
            channel: WS1,
            len: e.apdu.len(),
        })
    }

    async fn reply(
        &mut self,
        _: ChannelId,
        frame: &[u8],
        _: Option<Effect>,
    ) -> Result<(), Self::Error> {
        let (t0, n0) = self.sent.take().expect("an answer to a request");
        let l = self.line.borrow();
        self.answered.push(Answered {
            answer: to_hex(frame),
            elapsed_ns: l.now_ns - t0,
            transactions: l.requests.len() - n0,
        });
        Ok(())
    }
}

/// The device's clock is the line's.
struct LineClock(Rc<RefCell<Line>>);

impl run::Clock for LineClock {
    fn now(&mut self) -> Instant {
        Instant::from_millis(self.0.borrow().now_ns / MS)
    }
}

/// Runs `script` through the async device loop; the operations it performed.
fn run_async(line: &Rc<RefCell<Line>>, script: Vec<Exchange>) -> (Vec<Answered>, Vec<Operation>) {
    let mut device = transcript_device();
    let mut client = Client {
        line: line.clone(),
        script: script.into(),
        sent: None,
        answered: Vec::new(),
    };
    let mut io = RtuIo {
        rtu: master(line),
        performed: Vec::new(),
    };
    let (mut rx, mut tx) = ([0u8; 1029], [0u8; 1024]);
    let stopped = embassy_futures::block_on(asynch::run(
        &mut device,
        &mut client,
        &mut io,
        &mut LineClock(line.clone()),
        &mut rx,
        &mut tx,
    ));
    assert_eq!(stopped, Ok(Stopped::Asked));
    assert_eq!(device.pending(), None);
    (client.answered, io.performed)
}

#[test]
fn async_the_objects_read_and_write_an_rmodbus_rtu_server() {
    let line = server();
    let script = tour();
    let (answered, performed) = run_async(&line, tour());
    check_tour(&script, &answered, &line.borrow());
    // Every target request suspended on its operation: the protocols, connect, 8 reads
    // and 5 writes of /38 and /37, and the variables' 4 reads and 1 write.
    let commands = performed
        .iter()
        .filter(|op| matches!(op, Operation::Target { .. }))
        .count();
    let reads = performed
        .iter()
        .filter(|op| matches!(op, Operation::ReadTarget { .. }))
        .count();
    let writes = performed
        .iter()
        .filter(|op| matches!(op, Operation::WriteTarget { .. }))
        .count();
    assert_eq!((commands, reads, writes), (2 + 13, 4, 1), "{performed:?}");
}

#[test]
fn async_a_silent_line_is_b7_within_the_timeout_of_the_protocol_configuration() {
    let line = server();
    let script = silence();
    let (answered, _) = run_async(&line, silence());
    check_silence(&script, &answered);
}
