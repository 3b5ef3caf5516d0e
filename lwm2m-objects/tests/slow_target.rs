//! The same objects driven through a blocking target (`Device::handle` over a
//! `MemoryTarget`) and through a slow one, which answers an operation only after a number
//! of polls, as a Modbus RTU transaction or a flash erase would: while a request waits,
//! the device answers other channels `A8` at once and its idle timeout fires on time, and
//! the answers are byte for byte those of the blocking target.

mod common;
use common::*;
use lwm2m_core::io::{IoResult, Operation};
use lwm2m_core::storage::NoStore;
use lwm2m_core::target::{MemoryTarget, NoTarget, TargetIo};
use lwm2m_core::{Instant, ResultCode, Step};
use target_traits::{MemoryAccess, RamTarget};

const BASE: u32 = 0x2000_0000;
type Ram = RamTarget<256>;

/// Variable `id` (1..=16) of bundle 1: UINT8, UINT16 or UINT32 arrays at their own
/// addresses.
fn variables() -> impl Iterator<Item = (u16, u8, u8, u32)> {
    (1..=16u16).map(|id| {
        let (var_type, quantity) = match id % 3 {
            0 => (0x21, 3),
            1 => (0x22, 2),
            _ => (0x23, 1),
        };
        (id, var_type, quantity, BASE + u32::from(id) * 12)
    })
}

use common::{get_apdu as get, request_apdu as apdu};

/// Logs in as admin on channel 1 and declares bundle 1 and its 16 variables, through
/// the blocking path (no target operation).
fn configure<T: TargetIo>(h: &mut Harness<T>) {
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    let mut send = |frame: Vec<u8>| {
        let answer = h.send_on(WS1, &frame);
        assert_eq!(to_hex(&answer), "009000", "{}", to_hex(&frame));
    };
    send(apdu(2, 1028, 1, 0xFFFF, &[]));
    for (id, var_type, quantity, address) in variables() {
        send(apdu(2, 1029, id, 0xFFFF, &[]));
        send(apdu(3, 1029, id, 0, &address.to_be_bytes()));
        send(apdu(3, 1029, id, 1, &[var_type]));
        send(apdu(3, 1029, id, 2, &[quantity]));
        send(apdu(3, 1029, id, 6, &1u16.to_be_bytes()));
    }
}

/// The target memory both devices see.
fn ram() -> Ram {
    let mut ram = Ram::new(BASE);
    let pattern: Vec<u8> = (0..256u32).map(|i| (i * 7 + 3) as u8).collect();
    ram.write(BASE, &pattern).unwrap();
    ram
}

/// A target that completes an operation only after `polls` polls.
struct SlowTarget {
    ram: MemoryTarget<Ram>,
    polls: u32,
    waited: u32,
    operations: u32,
}

impl SlowTarget {
    fn new(polls: u32) -> SlowTarget {
        SlowTarget {
            ram: MemoryTarget(ram()),
            polls,
            waited: 0,
            operations: 0,
        }
    }

    /// One poll of the bus: `None` while the transaction runs, then its result.
    fn poll(&mut self, op: &Operation, request: &[u8], out: &mut [u8]) -> Option<IoResult> {
        if self.waited < self.polls {
            self.waited += 1;
            return None;
        }
        self.waited = 0;
        self.operations += 1;
        let config = lwm2m_core::Config::default();
        Some(op.perform(&config, request, out, &mut self.ram, &mut NoStore))
    }
}

/// A device on no target of its own: only the test's slow target completes its reads.
fn slow_device() -> Harness<NoTarget> {
    let mut h = Harness::new();
    configure(&mut h);
    h
}

/// The device on the blocking target.
fn fast_device() -> Harness<MemoryTarget<Ram>> {
    let mut h = Harness::with_target(MemoryTarget(ram()));
    configure(&mut h);
    h
}

/// Drives `request` on channel 1 through `target`, calling `meanwhile` at every poll
/// that found the target still busy. Returns the answer.
fn drive(
    h: &mut Harness<NoTarget>,
    target: &mut SlowTarget,
    request: &[u8],
    mut meanwhile: impl FnMut(&mut Harness<NoTarget>),
) -> Vec<u8> {
    let mut out = [0u8; 1024];
    let mut step = h.device.start(WS1, request, h.now, &mut out);
    loop {
        match step {
            Step::Done(outcome) => return out[..outcome.len].to_vec(),
            Step::Pending(op) => {
                assert_eq!(h.device.pending(), Some(op));
                let result = loop {
                    match target.poll(&op, request, &mut out) {
                        Some(result) => break result,
                        None => meanwhile(h),
                    }
                };
                step = h.device.resume(result, request, h.now, &mut out);
            }
        }
    }
}

#[test]
fn a_bundle_of_16_target_variables_reads_the_same_through_a_slow_target() {
    let request = get(1028, 1, 1);
    let mut fast = fast_device();
    let expected = fast.send_on(WS1, &request);
    assert_eq!(expected[0], 0x00, "{}", to_hex(&expected));
    // Container header, 16 records: 2 × 16-bit, 4-byte and 3-byte values.
    assert!(expected.len() > 16 * 4, "{}", to_hex(&expected));

    let mut slow = slow_device();
    let mut target = SlowTarget::new(5);
    let mut busy_answers = 0;
    let answer = drive(&mut slow, &mut target, &request, |h| {
        // Another channel is answered at once, without running anything.
        let answer = h.send_on(WS2, &get(3, 0xFFFF, 2));
        assert_eq!(to_hex(&answer), "a89000");
        busy_answers += 1;
    });
    assert_eq!(to_hex(&answer), to_hex(&expected));
    assert_eq!(target.operations, 16, "one read per variable");
    assert_eq!(busy_answers, 16 * 5);
    assert_eq!(slow.device.pending(), None);
    // Done: the owner goes on as before.
    assert_eq!(slow.tx(GET_GROUP), "00ffff9000");
}

#[test]
fn values_and_a_multi_request_read_the_same_through_a_slow_target() {
    // GET /1029/4/4, GET /3//2, GET /1029//4 (every value), PUT /1029/2/4 then GET it.
    let value = [0xDE, 0xAD, 0xBE, 0xEF];
    let multi_apdu = multi_apdu(&[
        get(1029, 4, 4),
        get(3, 0xFFFF, 2),
        get(1029, 0xFFFF, 4),
        apdu(3, 1029, 2, 4, &value),
        get(1029, 2, 4),
    ]);
    let mut fast = fast_device();
    let expected = fast.send_on(WS1, &multi_apdu);
    assert_eq!(expected[0], 0x00, "{}", to_hex(&expected));

    let mut slow = slow_device();
    let mut target = SlowTarget::new(2);
    let answer = drive(&mut slow, &mut target, &multi_apdu, |_| {});
    assert_eq!(to_hex(&answer), to_hex(&expected));
    // 1 + 16 + 1 write + 1 read.
    assert_eq!(target.operations, 19);
    // The write reached the slow target.
    let mut back = [0u8; 4];
    target.ram.0.read(BASE + 24, &mut back).unwrap();
    assert_eq!(back, value);
}

#[test]
fn the_idle_timeout_fires_on_time_while_a_read_waits() {
    let mut slow = slow_device();
    // 2 s of inactivity end the session.
    assert_eq!(
        to_hex(&slow.send_on(WS1, &apdu(3, 1024, 0xFFFF, 34, &[2]))),
        "009000"
    );
    let started = slow.now;
    let mut target = SlowTarget::new(1000);
    let mut ended_at = None;
    let answer = drive(&mut slow, &mut target, &get(1028, 1, 1), |h| {
        // 10 ms pass per poll.
        h.now = Instant::from_millis(h.now.as_millis() + 10);
        let deadline = h.device.poll(h.now);
        if ended_at.is_none() && h.device.session().owner().is_none() {
            ended_at = Some(h.now);
        }
        if ended_at.is_none() {
            assert_eq!(
                deadline,
                Some(Instant::from_millis(started.as_millis() + 2000))
            );
        }
    });
    assert_eq!(
        ended_at,
        Some(Instant::from_millis(started.as_millis() + 2000)),
        "the session ended at its deadline, not when the read completed"
    );
    // The request admitted before the session ended still gets its answer.
    assert_eq!(answer[0], 0x00);
    // The device is free: another channel takes the session.
    assert_eq!(slow.tx_on(WS2, GET_GROUP), "0000009000");
}

#[test]
fn a_target_failure_answers_its_code_and_ends_only_its_item() {
    let mut slow = slow_device();
    let request = get(1029, 3, 4);
    let mut out = [0u8; 1024];
    let Step::Pending(op) = slow.device.start(WS1, &request, slow.now, &mut out) else {
        panic!("a target read waits")
    };
    assert!(matches!(op, Operation::ReadTarget { .. }));
    let step = slow.device.resume(
        Err(ResultCode::TargetProtocolLostCom),
        &request,
        slow.now,
        &mut out,
    );
    let Step::Done(outcome) = step else {
        panic!("a failed read is not retried")
    };
    assert_eq!(to_hex(&out[..outcome.len]), "b79000");
    // Resuming with nothing waiting answers nothing.
    let Step::Done(outcome) = slow.device.resume(Ok(()), &request, slow.now, &mut out) else {
        panic!()
    };
    assert_eq!(outcome.len, 0);
}

#[test]
fn a_save_is_an_operation_the_port_performs() {
    let mut slow = slow_device();
    let request = apdu(2, 1024, 0xFFFF, 10, &[]);
    let mut out = [0u8; 64];
    let Step::Pending(op) = slow.device.start(WS1, &request, slow.now, &mut out) else {
        panic!("a save waits")
    };
    assert_eq!(op, Operation::SaveConfig);
    // The store is full: the port says so.
    let Step::Done(outcome) =
        slow.device
            .resume(Err(ResultCode::NvmFull), &request, slow.now, &mut out)
    else {
        panic!()
    };
    assert_eq!(to_hex(&out[..outcome.len]), "a79000");
}
