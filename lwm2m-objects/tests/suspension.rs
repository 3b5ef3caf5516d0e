//! A request that waits on an operation (`Device::start` / `resume`) against a port that
//! closes links, changes buffers or reuses ids, and handlers that mix operations: each
//! test shows a bug the engine once had.

mod common;
use common::*;
use lwm2m_core::acl::Access;
use lwm2m_core::config::Variable;
use lwm2m_core::io::Operation;
use lwm2m_core::object::{Context, HandlerResult, Object, ResourceDef};
use lwm2m_core::target::{TargetIo, TargetVar};
use lwm2m_core::wire::{Body, Method, Request};
use lwm2m_core::{Config, Device, ResultCode, Step};

use common::{get_apdu as get, multi_apdu as multi, request_apdu as apdu};

/// [`configured`], bundle 1 readable by anonymous, logged out.
fn readable_by_anonymous() -> Harness {
    let mut h = configured();
    assert_eq!(
        to_hex(&h.send_on(WS1, &apdu(3, 1028, 1, 0, &[0x41, 0x00, 0x01]))),
        "009000"
    );
    assert_eq!(h.tx(LOGOUT), "009000");
    assert_eq!(h.device.config().inactivity_secs, 60);
    h
}

/// Logs in as admin on WS1 and declares bundle 1 with target variable 1 (UINT16 × 2).
fn configured() -> Harness {
    let mut h = Harness::new();
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    let mut send = |frame: Vec<u8>| {
        let answer = h.send_on(WS1, &frame);
        assert_eq!(to_hex(&answer), "009000", "{}", to_hex(&frame));
    };
    send(apdu(2, 1028, 1, 0xFFFF, &[]));
    send(apdu(2, 1029, 1, 0xFFFF, &[]));
    send(apdu(3, 1029, 1, 0, &0x2000_0000u32.to_be_bytes()));
    send(apdu(3, 1029, 1, 1, &[0x22]));
    send(apdu(3, 1029, 1, 2, &[2]));
    send(apdu(3, 1029, 1, 6, &1u16.to_be_bytes()));
    h
}

// ---------------------------------------------------------------------------------------
// 1. The owner's link closes while its request waits: the request goes on, and a login
//    later in the same multi-request gives the session back to the closed link.
// ---------------------------------------------------------------------------------------

#[test]
fn a_closed_link_is_not_given_the_session_back_by_its_waiting_request() {
    let mut h = configured();
    // No idle limit: a session lasts until its link closes or it logs out.
    assert_eq!(h.tx("a2da000008030400ffff002200"), "009000");
    let request = multi(&[get(1029, 1, 4), hex(LOGIN_ADMIN)]);
    let mut out = [0u8; 1024];
    let Step::Pending(op) = h.device.start(WS1, &request, h.now, &mut out) else {
        panic!("a target read waits")
    };
    assert!(matches!(op, Operation::ReadTarget { .. }));
    // The link of the owner closes while the read waits; the port frees its id.
    h.device.channel_closed(WS1.id);
    assert_eq!(h.device.session().owner(), None);
    // The port completes the read it had started and resumes.
    let Step::Done(_) = h.device.resume(Ok(()), &request, h.now, &mut out) else {
        panic!("done after its one read")
    };
    assert_eq!(
        h.device.session().owner(),
        None,
        "the login item re-admitted the link that closed (now logged in as {:#x})",
        h.device.session().user()
    );
    // Consequence: nobody else ever gets the device (no idle limit).
    h.advance_secs(3600);
    assert_eq!(h.tx_on(WS2, GET_GROUP), "0000009000");
}

#[test]
fn the_channel_of_a_waiting_request_stays_in_use() {
    let mut h = configured();
    let request = get(1029, 1, 4);
    let mut out = [0u8; 1024];
    let Step::Pending(_) = h.device.start(WS1, &request, h.now, &mut out) else {
        panic!("a target read waits")
    };
    h.device.channel_closed(WS1.id);
    // The engine still knows channel 1 (its request waits, and its answer will be
    // produced for channel 1): a port must not give id 1 to a new link now, or that link
    // gets the admin's answer. Either the request is dropped with its link, or the id
    // stays in use.
    assert!(
        h.device.pending().is_none() || h.device.channel_in_use(WS1.id),
        "channel 1 is free for a new link while its admin request still waits"
    );
}

// ---------------------------------------------------------------------------------------
// 2. Resume with another request than the one started: it runs without any access check,
//    with the security context of the first one.
// ---------------------------------------------------------------------------------------

#[test]
fn resume_with_another_request_does_not_run_it_unchecked() {
    let mut h = readable_by_anonymous();

    // Anonymous starts a read it may do...
    let read = get(1029, 1, 4);
    let mut out = [0u8; 1024];
    let Step::Pending(_) = h.device.start(WS1, &read, h.now, &mut out) else {
        panic!("a target read waits")
    };
    // ...and the port resumes with another request in the buffer: PUT /1024//34 (admin
    // only), which anonymous gets 81 for.
    let admin_only = apdu(3, 1024, 0xFFFF, 34, &[0]);
    let Step::Done(outcome) = h.device.resume(Ok(()), &admin_only, h.now, &mut out) else {
        panic!()
    };
    let answer = to_hex(&out[..outcome.len]);
    assert_eq!(
        h.device.config().inactivity_secs,
        60,
        "anonymous changed an admin-only setting (answer {answer})"
    );
    assert_ne!(&answer[..2], "00", "{answer}");
}

// ---------------------------------------------------------------------------------------
// 3. An error answer after resume leaves the bytes read in the output buffer.
// ---------------------------------------------------------------------------------------

#[test]
fn an_error_on_resume_wipes_what_the_read_put_in_the_output_buffer() {
    let mut h = configured();
    let request = get(1029, 1, 4);
    let mut out = [0u8; 1024];
    let Step::Pending(op) = h.device.start(WS1, &request, h.now, &mut out) else {
        panic!("a target read waits")
    };
    // The port reads the (secret) value into place.
    op.read_buffer(&mut out).unwrap().fill(0x5E);
    // The request buffer was changed meanwhile (a port bug, a DMA overrun): the engine
    // answers 80...
    let mut changed = request.clone();
    changed[0] = 0x00;
    let Step::Done(outcome) = h.device.resume(Ok(()), &changed, h.now, &mut out) else {
        panic!()
    };
    assert_eq!(to_hex(&out[..outcome.len]), "809000");
    // ...but an error answer carries no data, and what was read is wiped, as every
    // other error answer of the engine does (Response::finish).
    assert!(
        !out.contains(&0x5E),
        "the value read is still in the output buffer: {}",
        to_hex(&out[..8])
    );
}

// ---------------------------------------------------------------------------------------
// 4. Custom objects: Device::handle and start/resume disagree.
// ---------------------------------------------------------------------------------------

/// A target of one byte per address, counting its writes.
#[derive(Default)]
struct CountingTarget {
    memory: [u8; 16],
    reads: u32,
    writes: u32,
}

impl TargetIo for CountingTarget {
    fn read(&mut self, var: &TargetVar, buf: &mut [u8]) -> Result<(), ResultCode> {
        self.reads += 1;
        let at = var.address_u32() as usize;
        buf.copy_from_slice(&self.memory[at..at + buf.len()]);
        Ok(())
    }

    fn write(&mut self, var: &TargetVar, data: &[u8]) -> Result<(), ResultCode> {
        self.writes += 1;
        let at = var.address_u32() as usize;
        self.memory[at..at + data.len()].copy_from_slice(data);
        Ok(())
    }
}

/// Object 32770: POST /32770//0 reads variable 1 into the answer and writes its payload
/// to variable 2 (a read-modify-write a firmware object may well do); GET /32770//1
/// reads variable 1 into a scratch body and answers it.
struct Custom;

impl Object for Custom {
    fn id(&self) -> u16 {
        32770
    }

    fn resources(&self) -> &'static [ResourceDef] {
        const TABLE: &[ResourceDef] = &[
            ResourceDef::single(0).post(Access::Anyone),
            ResourceDef::single(1).get(Access::Anyone).answers(1),
        ];
        TABLE
    }

    fn handle(
        &mut self,
        ctx: &mut Context<'_>,
        req: &Request<'_>,
        body: &mut Body<'_>,
    ) -> HandlerResult {
        match (req.path.resource, req.method) {
            (0, Method::Post) => {
                ctx.read_value(1, body)?;
                ctx.write_value(2, req.payload)?;
            }
            (1, Method::Get) => {
                let mut scratch = [0u8; 4];
                let mut value = Body::new(&mut scratch);
                ctx.read_value(1, &mut value)?;
                let byte = value.as_slice()[0];
                body.push_u8(byte)?;
            }
            _ => return Err(ResultCode::MethodNotAllowed),
        }
        Ok(ResultCode::Ok)
    }
}

fn custom_device() -> Device<(Custom,), CountingTarget> {
    let mut config = Config::default();
    for (id, address) in [(1u16, 3u32), (2, 7)] {
        let mut var = Variable::new(id); // UINT8 × 1, target
        var.address = address.to_be_bytes();
        config.variables.push(var).unwrap();
    }
    let mut target = CountingTarget::default();
    target.memory[3] = 0x42;
    Device::new((Custom,), config, Config::reset, LIMITS).with_target(target)
}

/// Drives `request` through start / resume, performing each operation with the device's
/// own target.
fn start_resume(device: &mut Device<(Custom,), CountingTarget>, request: &[u8]) -> Vec<u8> {
    let mut out = [0u8; 1024];
    let mut step = device.start(WS1, request, lwm2m_core::Instant::ZERO, &mut out);
    loop {
        match step {
            Step::Done(outcome) => return out[..outcome.len].to_vec(),
            Step::Pending(op) => {
                let result = device.perform(&op, request, &mut out);
                step = device.resume(result, request, lwm2m_core::Instant::ZERO, &mut out);
            }
        }
    }
}

#[test]
fn handle_writes_the_target_once_after_a_read_in_the_same_handler() {
    let request = apdu(2, 32770, 0xFFFF, 0, &[0x99]);

    let mut sans_io = custom_device();
    let answer = start_resume(&mut sans_io, &request);
    assert_eq!(to_hex(&answer), "00429000");
    assert_eq!(sans_io.target().writes, 1, "start/resume writes once");

    let mut blocking = custom_device();
    let mut out = [0u8; 1024];
    let outcome = blocking.handle(WS1, &request, lwm2m_core::Instant::ZERO, &mut out);
    assert_eq!(to_hex(&out[..outcome.len]), "00429000");
    assert_eq!(
        blocking.target().writes,
        1,
        "Device::handle wrote the target variable {} times",
        blocking.target().writes
    );
}

#[test]
fn a_read_into_a_scratch_body_answers_the_same_through_start_resume() {
    let request = get(32770, 0xFFFF, 1);

    let mut blocking = custom_device();
    let mut out = [0u8; 1024];
    let outcome = blocking.handle(WS1, &request, lwm2m_core::Instant::ZERO, &mut out);
    let expected = to_hex(&out[..outcome.len]);
    // A target value is read into the response only (a later read has nowhere else to
    // go): refused alike on a blocking and a suspending board.
    assert_eq!(expected, "a09000");

    let mut sans_io = custom_device();
    let answer = start_resume(&mut sans_io, &request);
    assert_eq!(
        to_hex(&answer),
        expected,
        "the read landed at offset 0 of the response, not in the handler's body"
    );
}

// ---------------------------------------------------------------------------------------
// The fingerprint of the request buffer is a CRC: whoever writes the other request (the
// next client, when a port reuses its buffer) can make it collide. What keeps the access
// check is that the waiting item must keep its method and path.
// ---------------------------------------------------------------------------------------

/// CRC-32C (iSCSI), the fingerprint's CRC.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Sets `message[at..at + 4]` so that its CRC-32C is `target` (CRC is affine over GF(2):
/// solve for the 32 bits of the window).
fn forge_crc(message: &mut [u8], at: usize, target: u32) {
    let base = crc32c(message);
    // The effect on the CRC of each bit of the window.
    let mut rows: Vec<(u32, u32)> = (0..32)
        .map(|bit| {
            let mut m = message.to_vec();
            m[at + bit / 8] ^= 1 << (bit % 8);
            (crc32c(&m) ^ base, 1u32 << bit)
        })
        .collect();
    // Gaussian elimination: find a set of bits whose effects XOR to `base ^ target`.
    let mut want = base ^ target;
    let mut chosen = 0u32;
    for pivot in 0..32 {
        let mask = 1u32 << pivot;
        let Some(i) = (pivot..32).find(|&i| rows[i].0 & mask != 0) else {
            continue;
        };
        rows.swap(pivot, i);
        let (effect, bits) = rows[pivot];
        for (j, row) in rows.iter_mut().enumerate() {
            if j != pivot && row.0 & mask != 0 {
                row.0 ^= effect;
                row.1 ^= bits;
            }
        }
        if want & mask != 0 {
            want ^= effect;
            chosen ^= bits;
        }
    }
    assert_eq!(want, 0, "the window spans the CRC");
    for bit in 0..32 {
        if chosen & (1 << bit) != 0 {
            message[at + bit / 8] ^= 1 << (bit % 8);
        }
    }
    assert_eq!(crc32c(message), target);
}

#[test]
fn resume_with_a_request_forged_to_the_same_crc_is_refused() {
    assert_eq!(crc32c(b"123456789"), 0xE306_9283, "the CRC-32C check value");
    let mut h = readable_by_anonymous();

    // Anonymous starts a multi-request it may run: a target read, then GET /3//2 (with
    // five bytes of payload the handler ignores).
    let read = multi(&[get(1029, 1, 4), apdu(1, 3, 0xFFFF, 2, &[0; 5])]);
    let mut out = [0u8; 1024];
    let Step::Pending(_) = h.device.start(WS1, &read, h.now, &mut out) else {
        panic!("a target read waits")
    };
    // The port receives the next request into the same buffer before it resumes (the
    // bug the fingerprint is there to catch). The sender wrote it: PUT /1024//34 = 0
    // (admin only), then a GET /3//2 whose four payload bytes make the CRC collide.
    let mut forged = multi(&[
        apdu(3, 1024, 0xFFFF, 34, &[0]),
        apdu(1, 3, 0xFFFF, 2, &[0; 4]),
    ]);
    assert_eq!(forged.len(), read.len(), "the same length");
    let window = forged.len() - 5; // the four payload bytes of the last item
    forge_crc(&mut forged, window, crc32c(&read));
    assert_ne!(forged, read);
    let Step::Done(outcome) = h.device.resume(Ok(()), &forged, h.now, &mut out) else {
        panic!()
    };
    let answer = to_hex(&out[..outcome.len]);
    assert_eq!(
        h.device.config().inactivity_secs,
        60,
        "anonymous changed an admin-only setting through a request with the CRC of \
         the one it started (answer {answer})"
    );
}

// ---------------------------------------------------------------------------------------
// A target write of bytes that are not in the request: Device::handle wrote them,
// start/resume refused them (A0); now both refuse them.
// ---------------------------------------------------------------------------------------

/// Object 32772: POST /32772//0 writes the inverse of its one-byte payload to variable 2
/// (a firmware object converting what the client sent before it reaches the target).
struct Inverting;

impl Object for Inverting {
    fn id(&self) -> u16 {
        32772
    }

    fn resources(&self) -> &'static [ResourceDef] {
        const TABLE: &[ResourceDef] = &[ResourceDef::single(0).post(Access::Anyone)];
        TABLE
    }

    fn handle(
        &mut self,
        ctx: &mut Context<'_>,
        req: &Request<'_>,
        _body: &mut Body<'_>,
    ) -> HandlerResult {
        let byte = *req.payload.first().ok_or(ResultCode::NotAcceptable)?;
        ctx.write_value(2, &[!byte])?;
        Ok(ResultCode::Ok)
    }
}

fn inverting_device() -> Device<(Inverting,), CountingTarget> {
    let mut config = Config::default();
    let mut var = Variable::new(2); // UINT8 × 1, target
    var.address = 7u32.to_be_bytes();
    config.variables.push(var).unwrap();
    Device::new((Inverting,), config, Config::reset, LIMITS).with_target(CountingTarget::default())
}

#[test]
fn a_write_of_bytes_outside_the_request_answers_the_same_through_start_resume() {
    let request = apdu(2, 32772, 0xFFFF, 0, &[0x0F]);

    let mut blocking = inverting_device();
    let mut out = [0u8; 1024];
    let outcome = blocking.handle(WS1, &request, lwm2m_core::Instant::ZERO, &mut out);
    let expected = to_hex(&out[..outcome.len]);

    let mut sans_io = inverting_device();
    let mut out = [0u8; 1024];
    let mut step = sans_io.start(WS1, &request, lwm2m_core::Instant::ZERO, &mut out);
    let answer = loop {
        match step {
            Step::Done(outcome) => break to_hex(&out[..outcome.len]),
            Step::Pending(op) => {
                let result = sans_io.perform(&op, &request, &mut out);
                step = sans_io.resume(result, &request, lwm2m_core::Instant::ZERO, &mut out);
            }
        }
    };
    assert_eq!(
        (answer.as_str(), sans_io.target().memory[7]),
        (expected.as_str(), blocking.target().memory[7]),
        "Device::handle answers {expected} (target byte {:#04x}), start/resume answers \
         {answer} (target byte {:#04x})",
        blocking.target().memory[7],
        sans_io.target().memory[7]
    );
}
