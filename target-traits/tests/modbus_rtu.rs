//! The RTU master against rmodbus's RTU server on a simulated serial line (spec decision
//! 13): the four tables read and written, exceptions, a silent server, noise, stale
//! bytes, a corrupt answer, blocking and async.

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use common::{Delay, Line, Port, MS, UNIT};
use embassy_futures::block_on;
use target_traits::modbus::rtu::Rtu;
use target_traits::modbus::{asynch, Modbus, Table};
use target_traits::ErrorKind;

fn master(line: &Rc<RefCell<Line>>) -> Rtu<Port, Delay> {
    Rtu::new(Port(line.clone()), Delay(line.clone()))
}

fn filled_line() -> Rc<RefCell<Line>> {
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

#[test]
fn reads_every_table_of_an_rmodbus_server() {
    let line = filled_line();
    let mut rtu = master(&line);
    let mut words = [0u8; 4];
    rtu.read(UNIT, Table::HoldingRegisters, 10, 2, &mut words)
        .unwrap();
    assert_eq!(words, [0x12, 0x34, 0xAB, 0xCD]);
    let mut word = [0u8; 2];
    rtu.read(UNIT, Table::InputRegisters, 3, 1, &mut word)
        .unwrap();
    assert_eq!(word, [0x01, 0x02]);
    let mut bits = [0u8; 2];
    rtu.read(UNIT, Table::Coils, 0, 10, &mut bits).unwrap();
    assert_eq!(bits, [0b0000_1101, 0b0000_0010]);
    let mut bits = [0u8; 2];
    rtu.read(UNIT, Table::DiscreteInputs, 1, 9, &mut bits)
        .unwrap();
    assert_eq!(bits, [0b1100_0001, 0b0000_0000]);
    assert_eq!(line.borrow().requests.len(), 4, "one transaction a call");
}

#[test]
fn writes_coils_and_holding_registers_single_and_multiple() {
    let line = Line::new();
    let mut rtu = master(&line);
    rtu.write(UNIT, Table::HoldingRegisters, 5, 1, &[0xBE, 0xEF])
        .unwrap();
    rtu.write(UNIT, Table::HoldingRegisters, 20, 3, &[0, 1, 0, 2, 0, 3])
        .unwrap();
    rtu.write(UNIT, Table::Coils, 7, 1, &[1]).unwrap();
    rtu.write(UNIT, Table::Coils, 16, 10, &[0b1010_0101, 0b11])
        .unwrap();
    let l = line.borrow();
    let functions: Vec<u8> = l.requests.iter().map(|r| r[1]).collect();
    assert_eq!(functions, [6, 16, 5, 15]);
    assert_eq!(l.storage.holdings[5], 0xBEEF);
    assert_eq!(&l.storage.holdings[20..23], &[1, 2, 3]);
    assert!(l.storage.coils[7]);
    let coils: Vec<bool> = l.storage.coils[16..26].to_vec();
    let expected = [
        true, false, true, false, false, true, false, true, true, true,
    ];
    assert_eq!(coils, expected);
}

#[test]
fn the_largest_transfers_fit() {
    let line = Line::new();
    let mut rtu = master(&line);
    let words: Vec<u8> = (0..246u8).collect();
    rtu.write(UNIT, Table::HoldingRegisters, 0, 123, &words)
        .unwrap();
    let mut back = [0u8; 250];
    rtu.read(UNIT, Table::HoldingRegisters, 0, 125, &mut back)
        .unwrap();
    assert_eq!(&back[..246], &words[..]);
    let bits = [0x5Au8; 246];
    rtu.write(UNIT, Table::Coils, 0, 1968, &bits).unwrap();
    let mut back = [0u8; 250];
    rtu.read(UNIT, Table::Coils, 0, 2000, &mut back).unwrap();
    assert_eq!(&back[..246], &bits[..]);
    assert_eq!(&back[246..], &[0; 4]);
}

#[test]
fn an_illegal_data_address_is_b3_and_is_not_asked_again() {
    let line = Line::new();
    let mut rtu = master(&line);
    let mut out = [0u8; 4];
    let err = rtu
        .read(UNIT, Table::HoldingRegisters, 255, 2, &mut out)
        .unwrap_err();
    assert_eq!(err, ErrorKind::BadParameter);
    assert_eq!(err.status_byte(), 0xB3);
    assert_eq!(line.borrow().requests.len(), 1);
    let err = rtu.write(UNIT, Table::Coils, 2047, 2, &[3]).unwrap_err();
    assert_eq!(err.status_byte(), 0xB3);
}

#[test]
fn a_silent_server_is_lost_communication_after_the_retries() {
    let line = Line::new();
    line.borrow_mut().silent_for = usize::MAX;
    let mut rtu = master(&line);
    let mut out = [0u8; 2];
    let err = rtu
        .read(UNIT, Table::HoldingRegisters, 0, 1, &mut out)
        .unwrap_err();
    assert_eq!(err, ErrorKind::LostCommunication);
    assert_eq!(err.status_byte(), 0xB7);
    let l = line.borrow();
    assert_eq!(l.requests.len(), 2, "sent once, then one retry");
    assert!(
        (2000 * MS..2010 * MS).contains(&l.now_ns),
        "two timeouts of 1000 ms: {} ns",
        l.now_ns
    );
}

#[test]
fn a_retry_gets_the_answer_the_first_attempt_missed() {
    let line = filled_line();
    line.borrow_mut().silent_for = 1;
    let mut rtu = master(&line);
    let mut out = [0u8; 2];
    rtu.read(UNIT, Table::HoldingRegisters, 10, 1, &mut out)
        .unwrap();
    assert_eq!(out, [0x12, 0x34]);
    assert_eq!(line.borrow().requests.len(), 2);
}

#[test]
fn timeout_and_retries_are_configurable() {
    let line = filled_line();
    line.borrow_mut().latency_ns = 80 * MS;
    let mut rtu = master(&line);
    rtu.set_timeout_ms(50);
    rtu.set_retries(0);
    assert_eq!((rtu.timeout_ms(), rtu.retries()), (50, 0));
    let mut out = [0u8; 2];
    assert_eq!(
        rtu.read(UNIT, Table::HoldingRegisters, 10, 1, &mut out),
        Err(ErrorKind::LostCommunication)
    );
    assert_eq!(line.borrow().requests.len(), 1);
    // The late answer is on the line when the next request goes: it is dropped first.
    // (One arriving during the next transaction could not be told from its answer: RTU
    // has no transaction id, so the timeout must exceed the server's slowest answer.)
    line.borrow_mut().now_ns += 100 * MS;
    rtu.set_timeout_ms(200);
    rtu.read(UNIT, Table::HoldingRegisters, 11, 1, &mut out)
        .unwrap();
    assert_eq!(out, [0xAB, 0xCD]);
}

#[test]
fn the_trait_s_timeout_is_the_one_awaited() {
    // What the target multiplexer sets from /1027//21 before every transaction.
    let line = Line::new();
    line.borrow_mut().silent_for = usize::MAX;
    let mut rtu = master(&line);
    Modbus::set_timeout_ms(&mut rtu, 300);
    assert_eq!(rtu.timeout_ms(), 300);
    let mut out = [0u8; 2];
    assert_eq!(
        rtu.read(UNIT, Table::HoldingRegisters, 0, 1, &mut out),
        Err(ErrorKind::LostCommunication)
    );
    let now = line.borrow().now_ns;
    assert!(
        (600 * MS..610 * MS).contains(&now),
        "two timeouts of 300 ms: {now} ns"
    );
    // 0: the master's default.
    Modbus::set_timeout_ms(&mut rtu, 0);
    assert_eq!(
        rtu.timeout_ms(),
        target_traits::modbus::rtu::DEFAULT_TIMEOUT_MS
    );
}

#[test]
fn noise_before_the_answer_is_skipped() {
    let line = filled_line();
    // Bytes that look like the start of an answer (unit, function, even the byte count).
    line.borrow_mut().noise = vec![0x00, 0xFF, 0x01, 0x03, 0x07, 0x01, 0x03, 0x04, 0x01, 0x01];
    let mut rtu = master(&line);
    let mut out = [0u8; 4];
    rtu.read(UNIT, Table::HoldingRegisters, 10, 2, &mut out)
        .unwrap();
    assert_eq!(out, [0x12, 0x34, 0xAB, 0xCD]);
    assert_eq!(line.borrow().requests.len(), 1);
}

#[test]
fn a_false_start_in_the_noise_does_not_hide_an_exception() {
    let line = Line::new();
    // The beginning of a 9-byte answer, then the 5-byte exception: the false start
    // would be complete only 1 byte after the line falls quiet.
    line.borrow_mut().noise = vec![0x01, 0x03, 0x04];
    let mut rtu = master(&line);
    let mut out = [0u8; 4];
    assert_eq!(
        rtu.read(UNIT, Table::HoldingRegisters, 255, 2, &mut out),
        Err(ErrorKind::BadParameter)
    );
    assert_eq!(line.borrow().requests.len(), 1);
}

#[test]
fn a_stale_answer_on_the_line_is_dropped_before_sending() {
    let line = filled_line();
    // A complete, valid answer to the same request, left over from an earlier one.
    let stale = common::serve(
        UNIT,
        rmodbus::ModbusProto::Rtu,
        &mut Box::<common::Storage>::default(),
        &{
            let mut req = [0u8; 8];
            let request = target_traits::modbus::frame::Request::read(
                target_traits::modbus::frame::Proto::Rtu,
                UNIT,
                Table::HoldingRegisters,
                10,
                1,
            );
            request.encode(&mut req).unwrap();
            req
        },
    )
    .unwrap();
    line.borrow_mut().inject(&stale);
    let mut rtu = master(&line);
    let mut out = [0u8; 2];
    rtu.read(UNIT, Table::HoldingRegisters, 10, 1, &mut out)
        .unwrap();
    assert_eq!(out, [0x12, 0x34], "not the stale zeros");
}

#[test]
fn a_corrupt_answer_is_data_after_the_retries() {
    let line = filled_line();
    line.borrow_mut().corrupt = true;
    let mut rtu = master(&line);
    let mut out = [0u8; 2];
    let err = rtu
        .read(UNIT, Table::HoldingRegisters, 10, 1, &mut out)
        .unwrap_err();
    assert_eq!(err, ErrorKind::Data);
    assert_eq!(err.status_byte(), 0xB5);
    assert_eq!(line.borrow().requests.len(), 2);
    assert_eq!(out, [0, 0]);
}

#[test]
fn a_corrupt_answer_then_silence_is_data() {
    let line = filled_line();
    {
        let mut l = line.borrow_mut();
        l.corrupt = true;
        l.silent_after_corrupt = true;
    }
    let mut rtu = master(&line);
    rtu.set_retries(2);
    let mut out = [0u8; 2];
    let err = rtu
        .read(UNIT, Table::HoldingRegisters, 10, 1, &mut out)
        .unwrap_err();
    assert_eq!(
        err,
        ErrorKind::Data,
        "the server is there, its answer was damaged"
    );
    assert_eq!(line.borrow().requests.len(), 3);
}

#[test]
fn another_unit_s_answer_is_not_taken() {
    let line = filled_line();
    line.borrow_mut().unit = 2;
    let mut rtu = master(&line);
    let mut out = [0u8; 2];
    // rmodbus's server ignores a request for another unit: silence.
    assert_eq!(
        rtu.read(UNIT, Table::HoldingRegisters, 10, 1, &mut out),
        Err(ErrorKind::LostCommunication)
    );
    rtu.read(2, Table::HoldingRegisters, 10, 1, &mut out)
        .unwrap();
    assert_eq!(out, [0x12, 0x34]);
}

#[test]
fn bad_parameters_are_refused_before_anything_is_sent() {
    let line = Line::new();
    let mut rtu = master(&line);
    let mut out = [0u8; 4];
    assert_eq!(
        rtu.read(UNIT, Table::HoldingRegisters, 0, 0, &mut []),
        Err(ErrorKind::BadParameter)
    );
    assert_eq!(
        rtu.read(UNIT, Table::HoldingRegisters, 0, 126, &mut [0; 252]),
        Err(ErrorKind::BadParameter)
    );
    assert_eq!(
        rtu.read(UNIT, Table::HoldingRegisters, 0, 1, &mut out),
        Err(ErrorKind::BadParameter)
    );
    assert_eq!(
        rtu.write(UNIT, Table::InputRegisters, 0, 1, &[0, 1]),
        Err(ErrorKind::BadParameter)
    );
    assert_eq!(
        rtu.read(0, Table::HoldingRegisters, 0, 2, &mut out),
        Err(ErrorKind::BadParameter),
        "nobody answers a broadcast read"
    );
    assert!(line.borrow().requests.is_empty());
}

#[test]
fn a_broadcast_write_is_sent_once_and_not_awaited() {
    let line = Line::new();
    let mut rtu = master(&line);
    rtu.write(0, Table::HoldingRegisters, 3, 1, &[0, 42])
        .unwrap();
    let l = line.borrow();
    assert_eq!(l.requests.len(), 1);
    assert_eq!(
        l.storage.holdings[3], 42,
        "rmodbus performs a broadcast write"
    );
    assert_eq!(l.now_ns, 0);
}

#[test]
fn a_serial_error_is_communication() {
    let line = Line::new();
    line.borrow_mut().broken = true;
    let mut rtu = master(&line);
    let err = rtu.write(UNIT, Table::Coils, 0, 1, &[1]).unwrap_err();
    assert_eq!(err, ErrorKind::Communication);
    assert_eq!(err.status_byte(), 0xB6);
}

#[test]
fn the_port_and_delay_are_given_back() {
    let line = Line::new();
    let mut rtu = master(&line);
    assert!(Rc::ptr_eq(&rtu.port_mut().0, &line));
    let (port, _delay) = rtu.release();
    assert!(Rc::ptr_eq(&port.0, &line));
}

// The async master: the same line, driven by `block_on`; the reads race a delay of the
// timeout.

#[test]
fn async_reads_and_writes() {
    let line = filled_line();
    let mut rtu = master(&line);
    block_on(async {
        let mut words = [0u8; 4];
        asynch::Modbus::read(&mut rtu, UNIT, Table::HoldingRegisters, 10, 2, &mut words)
            .await
            .unwrap();
        assert_eq!(words, [0x12, 0x34, 0xAB, 0xCD]);
        let mut bits = [0u8; 1];
        asynch::Modbus::read(&mut rtu, UNIT, Table::Coils, 0, 4, &mut bits)
            .await
            .unwrap();
        assert_eq!(bits, [0b1101]);
        asynch::Modbus::write(
            &mut rtu,
            UNIT,
            Table::HoldingRegisters,
            30,
            2,
            &[0, 7, 0, 8],
        )
        .await
        .unwrap();
        asynch::Modbus::write(&mut rtu, UNIT, Table::Coils, 100, 1, &[1])
            .await
            .unwrap();
    });
    let l = line.borrow();
    assert_eq!(&l.storage.holdings[30..32], &[7, 8]);
    assert!(l.storage.coils[100]);
}

#[test]
fn async_exception_is_b3() {
    let line = Line::new();
    let mut rtu = master(&line);
    let mut out = [0u8; 2];
    let err = block_on(asynch::Modbus::read(
        &mut rtu,
        UNIT,
        Table::InputRegisters,
        300,
        1,
        &mut out,
    ))
    .unwrap_err();
    assert_eq!(err.status_byte(), 0xB3);
    assert_eq!(line.borrow().requests.len(), 1);
}

#[test]
fn async_silent_server_is_lost_communication_after_the_retries() {
    let line = Line::new();
    line.borrow_mut().silent_for = usize::MAX;
    let mut rtu = master(&line);
    rtu.set_retries(2);
    let mut out = [0u8; 2];
    let err = block_on(asynch::Modbus::read(
        &mut rtu,
        UNIT,
        Table::HoldingRegisters,
        0,
        1,
        &mut out,
    ))
    .unwrap_err();
    assert_eq!(err, ErrorKind::LostCommunication);
    let l = line.borrow();
    assert_eq!(l.requests.len(), 3);
    assert_eq!(l.now_ns, 3000 * MS, "three timeouts of 1000 ms");
}

#[test]
fn async_noise_stale_bytes_and_a_late_answer() {
    let line = filled_line();
    {
        let mut l = line.borrow_mut();
        l.noise = vec![0x01, 0x03, 0x02, 0xFF, 0x00];
        l.inject(&[0x01, 0x03, 0x02, 0x00, 0x00]);
    }
    let mut rtu = master(&line);
    let mut out = [0u8; 2];
    block_on(asynch::Modbus::read(
        &mut rtu,
        UNIT,
        Table::HoldingRegisters,
        11,
        1,
        &mut out,
    ))
    .unwrap();
    assert_eq!(out, [0xAB, 0xCD]);
    // Answered after the timeout: lost, then the next request still works.
    line.borrow_mut().latency_ns = 1500 * MS;
    rtu.set_retries(0);
    assert_eq!(
        block_on(asynch::Modbus::read(
            &mut rtu,
            UNIT,
            Table::HoldingRegisters,
            11,
            1,
            &mut out
        )),
        Err(ErrorKind::LostCommunication)
    );
    line.borrow_mut().latency_ns = 5 * MS;
    line.borrow_mut().now_ns += 1000 * MS;
    let mut word = [0u8; 2];
    block_on(asynch::Modbus::read(
        &mut rtu,
        UNIT,
        Table::HoldingRegisters,
        10,
        1,
        &mut word,
    ))
    .unwrap();
    assert_eq!(word, [0x12, 0x34]);
}

#[test]
fn async_corrupt_answer_is_data_and_serial_error_is_communication() {
    let line = filled_line();
    line.borrow_mut().corrupt = true;
    let mut rtu = master(&line);
    let mut out = [0u8; 2];
    assert_eq!(
        block_on(asynch::Modbus::read(
            &mut rtu,
            UNIT,
            Table::HoldingRegisters,
            10,
            1,
            &mut out
        )),
        Err(ErrorKind::Data)
    );
    line.borrow_mut().broken = true;
    assert_eq!(
        block_on(asynch::Modbus::write(
            &mut rtu,
            UNIT,
            Table::Coils,
            0,
            1,
            &[1]
        )),
        Err(ErrorKind::Communication)
    );
}
