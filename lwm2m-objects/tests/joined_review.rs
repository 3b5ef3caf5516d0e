//! A review of the bundle's joined Modbus reads (`TargetVar::joined`, feature
//! `joined-reads`): every bundle read must answer exactly what reading each variable alone
//! answers, blocking and suspended, alone and inside a multi-request.
#![cfg(feature = "joined-reads")]

mod common;
use common::*;
use lwm2m_core::storage::NoStore;
use lwm2m_core::target::{ModbusTable as Table, TargetMux};
use lwm2m_core::wire::tlv::{self, TlvKind};
use target_traits::modbus::{self, Modbus};
use target_traits::{ErrorKind, ErrorType, RamTarget};

/// A server for units 1 and 2 over the whole address range: register `a` of unit `u`
/// holds `u << 12 ^ a * 7` (input registers inverted), bit `a` is `(a * 5 + u) % 3 == 0`
/// (discrete inputs inverted). Registers in `missing` answer exception 02.
#[derive(Default)]
struct Server {
    transactions: usize,
    missing: Vec<u16>,
}

fn word(unit: u8, table: Table, at: u16) -> u16 {
    let w = (u16::from(unit) << 12) ^ at.wrapping_mul(7);
    if table == Table::InputRegisters {
        !w
    } else {
        w
    }
}

fn bit(unit: u8, table: Table, at: u16) -> bool {
    let b = (u32::from(at) * 5 + u32::from(unit)) % 3 == 0;
    b ^ (table == Table::DiscreteInputs)
}

impl ErrorType for Server {
    type Error = ErrorKind;
}

impl Modbus for Server {
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
        if unit != 1 && unit != 2 {
            return Err(ErrorKind::Unreachable);
        }
        if u32::from(address) + u32::from(count) > 0x1_0000 {
            return Err(modbus::exception_kind(0x02));
        }
        if (address..=address + (count - 1)).any(|a| self.missing.contains(&a)) {
            return Err(modbus::exception_kind(0x02));
        }
        out.fill(0);
        for i in 0..count {
            let at = address + i;
            let i = usize::from(i);
            if table.is_bits() {
                if bit(unit, table, at) {
                    out[i / 8] |= 1 << (i % 8);
                }
            } else {
                out[2 * i..2 * i + 2].copy_from_slice(&word(unit, table, at).to_be_bytes());
            }
        }
        Ok(())
    }

    fn write(&mut self, _: u8, _: Table, _: u16, _: u16, _: &[u8]) -> Result<(), ErrorKind> {
        Err(ErrorKind::NotImplemented)
    }
}

type Mux = TargetMux<RamTarget<64>, Server>;

fn frame(method: u8, object: u16, resource: u16, payload: &str) -> String {
    to_hex(&request_apdu(
        method,
        object,
        0xFFFF,
        resource,
        &hex(payload),
    ))
}

/// A variable: `(id, address "function unit register", type, quantity, bundle)`.
type Var = (u16, &'static str, u8, u8, u16);

/// A logged-in admin, Modbus on unit `unit` with `offset` numbering, the variables set up.
fn device(unit: u8, offset: bool, vars: &[Var]) -> Harness<Mux> {
    let mut h = Harness::with_target(TargetMux::new(None, Some(Server::default())));
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    assert_eq!(h.tx(&frame(3, 1027, 1, "03")), "009000");
    let b6 = if offset { "10" } else { "00" };
    assert_eq!(
        h.tx(&frame(
            3,
            1027,
            21,
            &format!("00 30 09 01 00 c2 {b6} {unit:02x}")
        )),
        "009000"
    );
    let mut bundles: Vec<u16> = vars.iter().map(|v| v.4).collect();
    bundles.sort();
    bundles.dedup();
    for b in bundles {
        assert_eq!(
            h.tx(&to_hex(&request_apdu(2, 1028, b, 0xFFFF, &[]))),
            "009000"
        );
    }
    let put = |id: u16, r: u16, p: &[u8]| to_hex(&request_apdu(3, 1029, id, r, p));
    for &(id, address, var_type, quantity, bundle) in vars {
        assert_eq!(
            h.tx(&to_hex(&request_apdu(2, 1029, id, 0xFFFF, &[]))),
            "009000"
        );
        assert_eq!(h.tx(&put(id, 0, &hex(address))), "009000");
        assert_eq!(h.tx(&put(id, 1, &[var_type])), "009000", "{id}");
        assert_eq!(h.tx(&put(id, 2, &[quantity])), "009000", "{id}");
        assert_eq!(h.tx(&put(id, 6, &bundle.to_be_bytes())), "009000");
    }
    h
}

/// The answer to a read of bundle `bundle`'s values (container `container`) built from
/// each variable read alone; the status alone if one fails.
fn expected(h: &mut Harness<Mux>, vars: &[Var], bundle: Option<u16>, container: u16) -> String {
    let mut records = Vec::new();
    for &(id, ..) in vars.iter().filter(|v| bundle.is_none_or(|b| v.4 == b)) {
        let answer = h.send_on(WS1, &request_apdu(1, 1029, id, 4, &[]));
        let (value, status) = answer.split_at(answer.len() - 2);
        if status != [0x90, 0x00] || value[0] != 0 {
            return to_hex(&answer);
        }
        let value = &value[1..];
        let mut header = [0u8; 8];
        let n = tlv::emit_header(&mut header, TlvKind::ResourceValue, id, value.len()).unwrap();
        records.extend_from_slice(&header[..n]);
        records.extend_from_slice(value);
    }
    let mut header = [0u8; 8];
    let n = tlv::emit_header(
        &mut header,
        TlvKind::MultipleResource,
        container,
        records.len(),
    )
    .unwrap();
    format!("00{}{}9000", to_hex(&header[..n]), to_hex(&records))
}

/// `request` run through `start` / `resume`, each operation performed by a mux of its
/// own: the answer and the number of operations.
fn suspended(h: &mut Harness<Mux>, request: &[u8]) -> (String, usize) {
    let missing = h.device.target().modbus.as_ref().unwrap().missing.clone();
    let server = Server {
        transactions: 0,
        missing,
    };
    let mut mux: Mux = TargetMux::new(None, Some(server));
    let mut out = [0u8; 1024];
    let mut step = h.device.start(WS1, request, h.now, &mut out);
    let mut operations = 0;
    loop {
        match step {
            lwm2m_core::Step::Done(outcome) => break (to_hex(&out[..outcome.len]), operations),
            lwm2m_core::Step::Pending(op) => {
                operations += 1;
                let config = lwm2m_core::Config::default();
                let result = op.perform(&config, request, &mut out, &mut mux, &mut NoStore);
                step = h.device.resume(result, request, h.now, &mut out);
            }
        }
    }
}

/// The data of a multi-request answer item holding `answer` (a whole APDU answer).
fn item(answer: &str) -> String {
    let status = &answer[..2];
    let data = &answer[2..answer.len() - 4];
    let len = 1 + data.len() / 2;
    format!("{len:04x}{status}{data}")
}

/// Every way of reading bundle 1 answers what each variable read alone answers.
fn check(unit: u8, offset: bool, vars: &[Var]) {
    check_missing(unit, offset, vars, Vec::new())
}

/// [`check`] with registers and bits `missing` on the server.
fn check_missing(unit: u8, offset: bool, vars: &[Var], missing: Vec<u16>) {
    let mut h = device(unit, offset, vars);
    h.device.target_mut().modbus.as_mut().unwrap().missing = missing;
    let want = expected(&mut h, vars, Some(1), 1);
    let bundle = request_apdu(1, 1028, 1, 1, &[]);
    assert_eq!(to_hex(&h.send_on(WS1, &bundle)), want, "blocking");
    let (answer, ops) = suspended(&mut h, &bundle);
    eprintln!("bundle operations: {ops}");
    assert_eq!(answer, want, "suspended");
    // Through a variable of the bundle.
    let first = vars.iter().find(|v| v.4 == 1).unwrap().0;
    let via = request_apdu(1, 1029, first, 7, &[]);
    assert_eq!(to_hex(&h.send_on(WS1, &via)), want, "blocking /7");
    assert_eq!(suspended(&mut h, &via).0, want, "suspended /7");
    // Every readable variable.
    let all = request_apdu(1, 1029, 0xFFFF, 4, &[]);
    let want_all = expected(&mut h, vars, None, 0);
    let blocking_all = to_hex(&h.send_on(WS1, &all));
    assert_eq!(blocking_all, want_all, "blocking all");
    assert_eq!(suspended(&mut h, &all).0, blocking_all, "suspended all");
    // Inside a multi-request, after an item that performed an operation, twice.
    let single = request_apdu(1, 1029, first, 4, &[]);
    let single_answer = to_hex(&h.send_on(WS1, &single));
    let multi = multi_apdu(&[
        single.clone(),
        bundle.clone(),
        single.clone(),
        bundle.clone(),
        all.clone(),
        via.clone(),
    ]);
    let items = [
        item(&single_answer),
        item(&want),
        item(&single_answer),
        item(&want),
        item(&blocking_all),
        item(&want),
    ]
    .concat();
    let multi_want = format!("00{items}9000");
    if multi_want.len() / 2 > 1000 {
        return;
    }
    assert_eq!(
        to_hex(&h.send_on(WS1, &multi)),
        multi_want,
        "blocking multi"
    );
    assert_eq!(suspended(&mut h, &multi).0, multi_want, "suspended multi");
}

#[test]
fn registers_joined_in_runs_with_single_reads_between() {
    check(
        1,
        false,
        &[
            (1, "03010010", 0x22, 2, 1),
            (2, "03010012", 0x23, 3, 1),
            (3, "03010018", 0x22, 1, 1),
            // In-device between target runs.
            (4, "00000000", 0x80 | 0x22, 1, 1),
            (5, "03010019", 0x22, 1, 1),
            (6, "0301001a", 0x23, 1, 1),
            (7, "04010000", 0x22, 4, 1),
            (8, "03010020", 0x21, 2, 1),
            (9, "03010022", 0x22, 1, 1),
            (10, "01010005", 0x00, 7, 1),
            (11, "0101000c", 0x22, 1, 1),
            (12, "0101000e", 0x21, 3, 1),
            (13, "02010000", 0x00, 1, 1),
        ],
    );
}

#[test]
fn unit_zero_is_the_configured_unit_and_other_units_are_not_joined() {
    check(
        2,
        false,
        &[
            (1, "03000010", 0x22, 1, 1),
            (2, "03020011", 0x22, 1, 1),
            (3, "03010012", 0x22, 1, 1),
            (4, "03010013", 0x22, 1, 1),
        ],
    );
}

#[test]
fn registers_numbered_from_one() {
    check(
        1,
        true,
        &[
            (1, "03010001", 0x22, 1, 1),
            (2, "03010002", 0x23, 1, 1),
            (3, "03010004", 0x22, 1, 1),
        ],
    );
}

#[test]
fn the_end_of_the_address_range() {
    check(
        1,
        false,
        &[
            (1, "0301fffd", 0x22, 1, 1),
            (2, "0301fffe", 0x22, 1, 1),
            (3, "0301ffff", 0x22, 1, 1),
        ],
    );
    check(
        1,
        false,
        &[(1, "0301fffe", 0x22, 1, 1), (2, "0301ffff", 0x23, 1, 1)],
    );
}

#[test]
fn more_than_one_read_of_registers_or_bits() {
    // 4 × 32 = 128 registers: more than one read carries.
    let vars: Vec<Var> = (0..4u16)
        .map(|i| {
            let address: &'static str =
                Box::leak(format!("0301{:04x}", 0x100 + 32 * i).into_boxed_str());
            (i + 1, address, 0x23, 16, 1)
        })
        .collect();
    check(1, false, &vars);
}

#[test]
fn an_exception_in_a_joined_read_answers_as_alone() {
    let vars: &[Var] = &[
        (1, "03010010", 0x22, 1, 1),
        (2, "03010011", 0x22, 1, 1),
        (3, "03010012", 0x22, 1, 1),
    ];
    let mut h = device(1, false, vars);
    h.device.target_mut().modbus.as_mut().unwrap().missing = vec![0x11];
    let want = expected(&mut h, vars, Some(1), 1);
    assert_eq!(
        to_hex(&h.send_on(WS1, &request_apdu(1, 1028, 1, 1, &[]))),
        want
    );
}

#[test]
fn long_values_and_wide_ids() {
    check(
        1,
        false,
        &[
            (300, "03010100", 0x23, 50, 1),
            (301, "03010164", 0x22, 20, 1),
            (2, "03010178", 0x22, 5, 1),
            (302, "0301017d", 0x22, 1, 1),
        ],
    );
}

#[test]
fn a_failed_joined_read_fails_its_item_only_and_is_counted_once() {
    let vars: &[Var] = &[
        (1, "03010010", 0x22, 1, 1),
        (2, "03010011", 0x22, 1, 1),
        (3, "03010012", 0x22, 1, 1),
        (4, "03010020", 0x22, 1, 2),
        (5, "03010021", 0x22, 1, 2),
    ];
    let mut h = device(1, false, vars);
    h.device.target_mut().modbus.as_mut().unwrap().missing = vec![0x11];
    let bad = expected(&mut h, vars, Some(1), 1);
    assert!(!bad.starts_with("00"), "{bad}");
    let good = expected(&mut h, vars, Some(2), 2);
    let b1 = request_apdu(1, 1028, 1, 1, &[]);
    let b2 = request_apdu(1, 1028, 2, 1, &[]);
    assert_eq!(to_hex(&h.send_on(WS1, &b1)), bad);
    assert_eq!(suspended(&mut h, &b1).0, bad);
    let multi = multi_apdu(&[b2.clone(), b1.clone(), b2.clone()]);
    let want = format!("00{}{}{}9000", item(&good), item(&bad), item(&good));
    assert_eq!(to_hex(&h.send_on(WS1, &multi)), want);
    assert_eq!(suspended(&mut h, &multi).0, want);
    assert_eq!(h.tx(&frame(2, 1027, 11, "")), "009000");
    assert_eq!(h.send_on(WS1, &b1), hex(&bad));
    assert_eq!(h.send_on(WS1, &b2), hex(&good));
    // One failed transaction, one that succeeded.
    assert_eq!(h.tx(&frame(1, 1027, 11, "")), "0000000001000000019000");
}

#[test]
fn random_layouts_answer_as_each_variable_alone() {
    let mut seed: u64 = 0x1234_5678_9abc_def0;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    for round in 0..300 {
        let unit = [1u8, 2][next(2) as usize];
        let offset = next(2) == 0;
        let count = 2 + next(10) as u16;
        let mut vars: Vec<Var> = Vec::new();
        let mut register = next(4) as u16;
        let mut bits = next(4) as u16;
        for id in 1..=count {
            let function = [1u8, 2, 3, 4, 3, 3][next(6) as usize];
            let var_type = [0x00u8, 0x21, 0x22, 0x23, 0x22, 0x23][next(6) as usize];
            let var_type = if next(12) == 0 { 0x80 | 0x22 } else { var_type };
            let quantity = 1 + next(6) as u8;
            let item = match var_type & 0x3F {
                0x00 | 0x21 => 1u16,
                0x22 => 2,
                _ => 4,
            };
            let var_unit = [0u8, unit, 1, 2][next(4) as usize];
            let is_bits = function <= 2;
            let at = if is_bits { &mut bits } else { &mut register };
            let start = *at + u16::from(offset) + next(3).saturating_sub(1) as u16;
            let len = item * u16::from(quantity);
            // A bit, or an 8-bit element, an item each; else a register per two bytes.
            let items = if is_bits || item == 1 {
                len
            } else {
                len.div_ceil(2)
            };
            *at = start - u16::from(offset) + items;
            let address: &'static str =
                Box::leak(format!("{function:02x}{var_unit:02x}{start:04x}").into_boxed_str());
            vars.push((id, address, var_type, quantity, 1 + (next(5) == 0) as u16));
        }
        if !vars.iter().any(|v| v.4 == 1) {
            continue;
        }
        eprintln!("round {round}: unit {unit} offset {offset} {vars:?}");
        let missing = if next(3) == 0 {
            vec![next(24) as u16]
        } else {
            Vec::new()
        };
        check_missing(unit, offset, &vars, missing);
    }
}
