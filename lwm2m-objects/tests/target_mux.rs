//! Object 1027 and target variables through the target multiplexer
//! (`lwm2m_core::target::TargetMux`): the protocol of `/1027//1` selects memory access or
//! Modbus, `/1027//21` gives the Modbus unit and register numbering, Modbus server
//! exceptions become `B*` codes, a protocol the board lacks answers `BB`.
//!
//! The Modbus side is an in-memory register bank here; `ports/linux/tests/modbus.rs`
//! runs the same objects against a real Modbus server.

mod common;
use common::*;
use lwm2m_core::storage::NoStore;
use lwm2m_core::target::{ModbusTable as Table, TargetMux};
use lwm2m_core::wire::tlv::{self, TlvKind};
use target_traits::modbus::{self, Modbus};
use target_traits::{ErrorKind, ErrorType, RamTarget};

/// A Modbus server's tables, for unit 1 only: 256 of each.
struct Bank {
    coils: [bool; 256],
    discrete: [bool; 256],
    holding: [u16; 256],
    input: [u16; 256],
    transactions: usize,
}

impl Bank {
    fn new() -> Bank {
        let mut bank = Bank {
            coils: [false; 256],
            discrete: [false; 256],
            holding: [0; 256],
            input: [0; 256],
            transactions: 0,
        };
        for i in 0..256 {
            bank.holding[i] = 0x1000 + i as u16;
            bank.input[i] = 0x2000 + i as u16;
            bank.discrete[i] = i % 3 == 0;
        }
        bank
    }
}

impl ErrorType for Bank {
    type Error = ErrorKind;
}

impl Modbus for Bank {
    fn read(
        &mut self,
        unit: u8,
        table: Table,
        address: u16,
        count: u16,
        out: &mut [u8],
    ) -> Result<(), ErrorKind> {
        modbus::check(table, count, out.len(), false)?;
        self.transactions += 1;
        if unit != 1 {
            return Err(ErrorKind::Unreachable);
        }
        let range = usize::from(address)..usize::from(address) + usize::from(count);
        if range.end > 256 {
            return Err(modbus::exception_kind(0x02));
        }
        out.fill(0);
        for (i, at) in range.enumerate() {
            match table {
                Table::Coils | Table::DiscreteInputs => {
                    let bits = if table == Table::Coils {
                        &self.coils
                    } else {
                        &self.discrete
                    };
                    if bits[at] {
                        out[i / 8] |= 1 << (i % 8);
                    }
                }
                Table::HoldingRegisters | Table::InputRegisters => {
                    let words = if table == Table::HoldingRegisters {
                        &self.holding
                    } else {
                        &self.input
                    };
                    out[2 * i..2 * i + 2].copy_from_slice(&words[at].to_be_bytes());
                }
            }
        }
        Ok(())
    }

    fn write(
        &mut self,
        unit: u8,
        table: Table,
        address: u16,
        count: u16,
        data: &[u8],
    ) -> Result<(), ErrorKind> {
        modbus::check(table, count, data.len(), true)?;
        self.transactions += 1;
        if unit != 1 {
            return Err(ErrorKind::Unreachable);
        }
        let range = usize::from(address)..usize::from(address) + usize::from(count);
        if range.end > 256 {
            return Err(modbus::exception_kind(0x02));
        }
        for (i, at) in range.enumerate() {
            match table {
                Table::Coils => self.coils[at] = data[i / 8] >> (i % 8) & 1 != 0,
                _ => self.holding[at] = u16::from_be_bytes([data[2 * i], data[2 * i + 1]]),
            }
        }
        Ok(())
    }
}

type Mux = TargetMux<RamTarget<64>, Bank>;

fn harness(memory: bool, modbus: bool) -> Harness<Mux> {
    let mut h = Harness::with_target(TargetMux::new(
        memory.then(|| RamTarget::new(0x2000_0000)),
        modbus.then(Bank::new),
    ));
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    h
}

fn frame(method: u8, object: u16, resource: u16, payload: &str) -> String {
    to_hex(&request_apdu(
        method,
        object,
        0xFFFF,
        resource,
        &hex(payload),
    ))
}

/// `PUT /1027//1`, `/21` (unit 1, registers numbered from 0) and `POST /1027//3`: MODBUS
/// selected, configured and connected.
fn modbus_connected(h: &mut Harness<Mux>) {
    assert_eq!(h.tx(&frame(3, 1027, 1, "03")), "009000");
    assert_eq!(
        h.tx(&frame(3, 1027, 21, "00 30 09 01 00 c2 01 01")),
        "009000"
    );
    assert_eq!(h.tx(&frame(2, 1027, 3, "")), "009000");
    assert_eq!(h.tx(&frame(1, 1027, 3, "")), "00019000");
}

#[test]
fn the_available_protocols_are_what_the_board_has() {
    // Memory only: 0, which the client reads as SWD (it lists p when mask & p == p);
    // Modbus: 3 (the client adds S3P and JTAG: no byte says MODBUS alone).
    assert_eq!(harness(true, false).tx(&frame(1, 1027, 20, "")), "00009000");
    assert_eq!(harness(false, true).tx(&frame(1, 1027, 20, "")), "00039000");
    assert_eq!(harness(true, true).tx(&frame(1, 1027, 20, "")), "00039000");
    assert_eq!(
        harness(false, false).tx(&frame(1, 1027, 20, "")),
        "00009000"
    );
}

#[test]
fn connecting_needs_a_protocol_the_board_reaches() {
    let mut h = harness(true, false);
    assert_eq!(h.tx(&frame(1, 1027, 3, "")), "00009000");
    assert_eq!(h.tx(&frame(3, 1027, 1, "03")), "009000");
    assert_eq!(h.tx(&frame(2, 1027, 3, "")), "bb9000");
    assert_eq!(h.tx(&frame(1, 1027, 3, "")), "00009000");
    // SWD over the memory access.
    assert_eq!(h.tx(&frame(3, 1027, 1, "00")), "009000");
    assert_eq!(h.tx(&frame(2, 1027, 3, "")), "009000");
    assert_eq!(h.tx(&frame(1, 1027, 3, "")), "00019000");
    assert_eq!(h.tx(&frame(2, 1027, 4, "")), "009000");
    assert_eq!(h.tx(&frame(1, 1027, 3, "")), "00009000");
}

#[test]
fn modbus_reads_and_writes_through_modbus_options() {
    let mut h = harness(false, true);
    modbus_connected(&mut h);
    // 2 holding registers at 100 of unit 1 (objects.md §6.4).
    assert_eq!(
        h.tx(&frame(1, 1027, 38, "03 01 0064 00000002 02")),
        "0010641065 9000".replace(' ', "")
    );
    // Coil 5 of unit 1 set, then 8 coils from 0 read: one byte each.
    assert_eq!(
        h.tx(&frame(2, 1027, 37, "01 01 0005 00000001 00 01")),
        "009000"
    );
    assert_eq!(
        h.tx(&frame(1, 1027, 38, "01 01 0000 00000008 00")),
        "0000000000000100009000"
    );
    // Holding registers written, read back.
    assert_eq!(
        h.tx(&frame(2, 1027, 37, "03 01 000a 00000002 02 beef cafe")),
        "009000"
    );
    assert_eq!(
        h.tx(&frame(1, 1027, 38, "03 01 000a 00000002 02")),
        "00beefcafe9000"
    );
    // Input registers and discrete inputs are read only.
    assert_eq!(
        h.tx(&frame(1, 1027, 38, "04 01 0003 00000001 02")),
        "0020039000"
    );
    assert_eq!(
        h.tx(&frame(2, 1027, 37, "04 01 0003 00000001 02 0001")),
        "b39000"
    );
    // A register the server lacks: its exception (illegal data address), B3.
    assert_eq!(
        h.tx(&frame(1, 1027, 38, "03 01 00ff 00000002 02")),
        "b39000"
    );
    // A server that is not there: A5.
    assert_eq!(
        h.tx(&frame(1, 1027, 38, "03 07 0000 00000001 02")),
        "a59000"
    );
    // Bodies of the wrong size, counts beyond the protocol's.
    assert_eq!(h.tx(&frame(1, 1027, 38, "03 01 0000 0000")), "869000");
    assert_eq!(
        h.tx(&frame(2, 1027, 37, "03 01 0000 00000002 02 0001")),
        "869000"
    );
    assert_eq!(
        h.tx(&frame(1, 1027, 38, "03 01 0000 0000007e 02")),
        "b39000"
    );
    assert_eq!(
        h.tx(&frame(1, 1027, 38, "07 01 0000 00000001 02")),
        "869000"
    );
}

#[test]
fn the_protocol_configuration_gives_the_unit_and_the_register_numbering() {
    let mut h = harness(false, true);
    modbus_connected(&mut h);
    // Unit 0 in the options: the configuration's (1).
    assert_eq!(
        h.tx(&frame(1, 1027, 38, "03 00 0001 00000001 02")),
        "0010019000"
    );
    // objects.md §6.4: slave 1, offsetFirstRegister, 115200 bd, RS232, 1 stop, EVEN, 8
    // bits, CR_LF, no flow control, timeout 10.
    assert_eq!(
        h.tx(&frame(3, 1027, 21, "0a 30 09 01 00 c2 11 01")),
        "009000"
    );
    // Register 1 is PDU address 0 now, of unit 1.
    assert_eq!(
        h.tx(&frame(1, 1027, 38, "03 00 0001 00000001 02")),
        "0010009000"
    );
    assert_eq!(
        h.tx(&frame(1, 1027, 38, "03 00 0000 00000001 02")),
        "869000"
    );
}

#[test]
fn a_target_variable_on_a_holding_register_reads_and_writes_the_server() {
    let mut h = harness(false, true);
    modbus_connected(&mut h);
    // Variable 1: UINT16 on holding register 11 of unit 1; variable 2: UINT32 on 20
    // and 21 (most significant word first); variable 3: BOOLEAN on coil 7.
    for (id, address, var_type) in [
        (1u16, "0301000b", "22"),
        (2, "03010014", "23"),
        (3, "01010007", "00"),
    ] {
        assert_eq!(
            h.tx(&to_hex(&request_apdu(2, 1029, id, 0xFFFF, &[]))),
            "009000"
        );
        let at = |r: u16, p: &str| to_hex(&request_apdu(3, 1029, id, r, &hex(p)));
        assert_eq!(h.tx(&at(0, address)), "009000");
        assert_eq!(h.tx(&at(1, var_type)), "009000");
    }
    let get = |id: u16| to_hex(&request_apdu(1, 1029, id, 4, &[]));
    let put = |id: u16, v: &str| to_hex(&request_apdu(3, 1029, id, 4, &hex(v)));
    assert_eq!(h.tx(&get(1)), "00100b9000");
    assert_eq!(h.tx(&get(2)), "00101410159000");
    assert_eq!(h.tx(&get(3)), "00009000");
    assert_eq!(h.tx(&put(1, "abcd")), "009000");
    assert_eq!(h.tx(&put(2, "01020304")), "009000");
    assert_eq!(h.tx(&put(3, "01")), "009000");
    assert_eq!(
        h.device.target().modbus.as_ref().unwrap().holding[11],
        0xabcd
    );
    assert_eq!(
        h.device.target().modbus.as_ref().unwrap().holding[20..22],
        [0x0102, 0x0304]
    );
    assert!(h.device.target().modbus.as_ref().unwrap().coils[7]);
    assert_eq!(h.tx(&get(2)), "00010203049000");
    assert_eq!(h.tx(&get(3)), "00019000");
    // The same variable under a protocol the board lacks.
    assert_eq!(h.tx(&frame(3, 1027, 1, "00")), "009000");
    assert_eq!(h.tx(&get(1)), "bb9000");
}

#[test]
fn memory_reads_and_writes_through_memory_info() {
    let mut h = harness(true, false);
    assert_eq!(h.tx(&frame(3, 1027, 1, "00")), "009000");
    // 4 bytes at 0x20000010 written, then read as two 16-bit items.
    assert_eq!(
        h.tx(&frame(2, 1027, 33, "20000010 00000004 01 deadbeef")),
        "009000"
    );
    assert_eq!(
        h.tx(&frame(1, 1027, 33, "20000010 00000002 02")),
        "00deadbeef9000"
    );
    // Outside the target's memory: B3; a body that does not match: 86.
    assert_eq!(h.tx(&frame(1, 1027, 33, "30000000 00000001 01")), "b39000");
    assert_eq!(
        h.tx(&frame(2, 1027, 33, "20000010 00000004 01 dead")),
        "869000"
    );
    // Modbus options on a board without Modbus: BB.
    assert_eq!(h.tx(&frame(3, 1027, 1, "03")), "009000");
    assert_eq!(
        h.tx(&frame(1, 1027, 38, "03 01 0000 00000001 02")),
        "bb9000"
    );
}

/// The firmware's own memory as the target: its declared regions only.
#[test]
fn the_firmware_s_own_regions_are_the_only_memory_reached() {
    use std::sync::atomic::{AtomicU8, Ordering};
    use target_traits::regions::{Region, RegionTarget};
    static MEASURED: [AtomicU8; 4] = [const { AtomicU8::new(0) }; 4];
    static SET_POINT: [AtomicU8; 2] = [const { AtomicU8::new(0) }; 2];
    MEASURED[3].store(0x2a, Ordering::Relaxed);
    let target = RegionTarget::new([
        Region::read_only(0x2000_0000, &MEASURED),
        Region::read_write(0x2000_0100, &SET_POINT),
    ]);
    let mut h = Harness::with_target(TargetMux::<_, Bank>::new(Some(target), None));
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    assert_eq!(
        h.tx(&frame(1, 1027, 33, "20000000 00000004 01")),
        "000000002a9000"
    );
    assert_eq!(
        h.tx(&frame(2, 1027, 33, "20000100 00000001 02 0102")),
        "009000"
    );
    assert_eq!(SET_POINT[1].load(Ordering::Relaxed), 2);
    // Read-only: B4; outside every region (or across two): B3; nothing touched.
    assert_eq!(
        h.tx(&frame(2, 1027, 33, "20000000 00000001 01 ff")),
        "b49000"
    );
    assert_eq!(h.tx(&frame(1, 1027, 33, "20000002 00000004 01")), "b39000");
    assert_eq!(h.tx(&frame(1, 1027, 33, "1fffffff 00000002 01")), "b39000");
    assert_eq!(MEASURED[0].load(Ordering::Relaxed), 0);
}

#[test]
fn the_communication_statistics_count_every_target_transaction() {
    let mut h = harness(false, true);
    assert_eq!(h.tx(&frame(1, 1027, 11, "")), "0000000000000000009000");
    modbus_connected(&mut h);
    assert_eq!(
        h.tx(&frame(1, 1027, 38, "03 01 0064 00000002 02")),
        "0010641065 9000".replace(' ', "")
    );
    assert_eq!(
        h.tx(&frame(1, 1027, 38, "03 01 00ff 00000002 02")),
        "b39000"
    );
    assert_eq!(
        h.tx(&frame(1, 1027, 38, "03 07 0000 00000001 02")),
        "a59000"
    );
    // The connect, one read: two successes; two failures.
    assert_eq!(h.tx(&frame(1, 1027, 11, "")), "0000000002000000029000");
    assert_eq!(h.tx(&frame(2, 1027, 11, "")), "009000");
    assert_eq!(h.tx(&frame(1, 1027, 11, "")), "0000000000000000009000");
}

/// Bundle 1 over holding registers and discrete inputs of unit 1: `(id, address,
/// type, quantity)`. Variables 1–3 are registers 10–14 one after the other, 4 stands
/// alone (20), 5 is an 8-bit variable (21, a register of its own), 6 and 7 follow it
/// (22, 23), 8–10 are discrete inputs 3–6.
const JOINED: [(u16, &str, u8, u8); 10] = [
    (1, "0301000a", 0x22, 1),
    (2, "0301000b", 0x23, 1),
    (3, "0301000d", 0x22, 2),
    (4, "03010014", 0x22, 1),
    (5, "03010015", 0x21, 1),
    (6, "03010016", 0x22, 1),
    (7, "03010017", 0x22, 1),
    (8, "02010003", 0x00, 1),
    (9, "02010004", 0x00, 2),
    (10, "02010006", 0x00, 1),
];

fn joined_bundle(h: &mut Harness<Mux>) {
    modbus_connected(h);
    let put = |id: u16, r: u16, p: &[u8]| to_hex(&request_apdu(3, 1029, id, r, p));
    assert_eq!(
        h.tx(&to_hex(&request_apdu(2, 1028, 1, 0xFFFF, &[]))),
        "009000"
    );
    for (id, address, var_type, quantity) in JOINED {
        assert_eq!(
            h.tx(&to_hex(&request_apdu(2, 1029, id, 0xFFFF, &[]))),
            "009000"
        );
        assert_eq!(h.tx(&put(id, 0, &hex(address))), "009000");
        assert_eq!(h.tx(&put(id, 1, &[var_type])), "009000");
        assert_eq!(h.tx(&put(id, 2, &[quantity])), "009000");
        assert_eq!(h.tx(&put(id, 6, &1u16.to_be_bytes())), "009000");
    }
}

/// The answer to `GET /1028/1/1` as the server's tables make it: each value read alone.
fn joined_expected() -> String {
    let values: [&[u8]; 10] = [
        &[0x10, 0x0a],
        &[0x10, 0x0b, 0x10, 0x0c],
        &[0x10, 0x0d, 0x10, 0x0e],
        &[0x10, 0x14],
        &[0x15],
        &[0x10, 0x16],
        &[0x10, 0x17],
        &[1],
        &[0, 0],
        &[1],
    ];
    let mut records = Vec::new();
    for (id, value) in (1u16..).zip(values) {
        let mut header = [0u8; 8];
        let n = tlv::emit_header(&mut header, TlvKind::ResourceValue, id, value.len()).unwrap();
        records.extend_from_slice(&header[..n]);
        records.extend_from_slice(value);
    }
    let mut header = [0u8; 8];
    let n = tlv::emit_header(&mut header, TlvKind::MultipleResource, 1, records.len()).unwrap();
    format!("00{}{}9000", to_hex(&header[..n]), to_hex(&records))
}

fn transactions(h: &Harness<Mux>) -> usize {
    h.device.target().modbus.as_ref().unwrap().transactions
}

#[test]
#[cfg_attr(
    not(feature = "joined-reads"),
    ignore = "needs the joined-reads feature"
)]
fn a_bundle_read_of_adjacent_registers_is_one_modbus_transaction() {
    let mut h = harness(false, true);
    joined_bundle(&mut h);
    let expected = joined_expected();
    // Each value alone first: ten transactions, the values the bundle must hold.
    let before = transactions(&h);
    for (id, ..) in JOINED {
        let answer = h.tx(&to_hex(&request_apdu(1, 1029, id, 4, &[])));
        assert!(answer.starts_with("00"), "{id}: {answer}");
    }
    assert_eq!(transactions(&h) - before, 10);
    // Registers 10–14 in one read, 20 and 21 alone, 22–23 in one, inputs 3–6 in one.
    let before = transactions(&h);
    assert_eq!(h.tx(&to_hex(&request_apdu(1, 1028, 1, 1, &[]))), expected);
    assert_eq!(transactions(&h) - before, 5);
}

#[test]
#[cfg_attr(
    not(feature = "joined-reads"),
    ignore = "needs the joined-reads feature"
)]
fn a_joined_bundle_read_is_the_same_when_the_request_waits_on_each_read() {
    let mut h = harness(false, true);
    joined_bundle(&mut h);
    let expected = joined_expected();
    // The device's own target performs nothing: each read suspends the request, and is
    // performed by `mux`, as an async port does. A multi-request of the bundle, a value
    // read alone, and the bundle again: the handler runs again after each of its reads.
    let mut mux: Mux = TargetMux::new(None, Some(Bank::new()));
    let bundle = request_apdu(1, 1028, 1, 1, &[]);
    let request = multi_apdu(&[bundle.clone(), request_apdu(1, 1029, 4, 4, &[]), bundle]);
    let mut out = [0u8; 1024];
    let mut step = h.device.start(WS1, &request, h.now, &mut out);
    let mut operations = 0;
    let answer = loop {
        match step {
            lwm2m_core::Step::Done(outcome) => break out[..outcome.len].to_vec(),
            lwm2m_core::Step::Pending(op) => {
                operations += 1;
                let config = lwm2m_core::Config::default();
                let result = op.perform(&config, &request, &mut out, &mut mux, &mut NoStore);
                step = h.device.resume(result, &request, h.now, &mut out);
            }
        }
    };
    assert_eq!(operations, 11);
    assert_eq!(mux.modbus.as_ref().unwrap().transactions, 11);
    // Each item's answer is the bundle's answer read blocking.
    let bundle_answer = &expected[2..expected.len() - 4];
    let answer = to_hex(&answer);
    assert_eq!(answer.matches(bundle_answer).count(), 2, "{answer}");
    assert!(answer.contains("1014"), "{answer}");
}
