use super::rtu::RtuDecoder;
use super::*;
use proptest::prelude::*;

/// `bytes` and their CRC: an RTU frame.
fn rtu(bytes: &[u8]) -> Vec<u8> {
    let mut frame = bytes.to_vec();
    frame.extend_from_slice(&CRC.checksum(bytes).to_le_bytes());
    frame
}

const UNIT: Framing = Framing::Rtu { unit: 1 };

/// What `answer` sends for `frame` when the device answers every side request with
/// `response`, and the APDUs it was sent.
fn served(framing: Framing, frame: &[u8], response: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut out = Response::new();
    let mut seen = Vec::new();
    answer(framing, frame, &mut out, |apdu| {
        seen.push(apdu.to_vec());
        Ok::<_, Exception>(response.to_vec())
    });
    (out.to_vec(), seen)
}

/// `GET /1029/{id}/4` and `PUT /1029/{id}/4` with `payload`.
fn value_apdu(method: Method, id: u16, payload: &[u8]) -> Vec<u8> {
    let mut apdu = vec![0; MAX_SIDE_APDU + 256];
    let len = Request::new(method, Path::new(1029, id, 4))
        .with_payload(payload)
        .emit_apdu(&mut apdu)
        .unwrap();
    apdu.truncate(len);
    apdu
}

#[test]
fn an_rtu_read_of_a_block_is_a_get_of_its_value_answered_with_a_crc() {
    // Two registers of variable 5 (160).
    let frame = rtu(&[1, 0x03, 0, 160, 0, 2]);
    let (out, seen) = served(UNIT, &frame, &[0x00, 0x00, 0x01, 0x02, 0x03, 0x90, 0x00]);
    assert_eq!(seen, [value_apdu(Method::Get, 5, &[])]);
    assert_eq!(out, rtu(&[1, 0x03, 4, 0x00, 0x01, 0x02, 0x03]));
    // A value shorter than the registers asked for but for its padding: zero-padded.
    let frame = rtu(&[1, 0x03, 0, 160, 0, 1]);
    let (out, _) = served(UNIT, &frame, &[0x00, 0x07, 0x90, 0x00]);
    assert_eq!(out, rtu(&[1, 0x03, 2, 0x07, 0x00]));
}

#[test]
fn an_rtu_write_is_a_put_of_its_registers() {
    let frame = rtu(&[1, 0x10, 0, 160, 0, 2, 4, 0xDE, 0xAD, 0xBE, 0xEF]);
    let (out, seen) = served(UNIT, &frame, &[0x00, 0x90, 0x00]);
    assert_eq!(
        seen,
        [value_apdu(Method::Put, 5, &[0xDE, 0xAD, 0xBE, 0xEF])]
    );
    assert_eq!(out, rtu(&[1, 0x10, 0, 160, 0, 2]));
    let frame = rtu(&[1, 0x06, 0, 64, 0x12, 0x34]);
    let (out, seen) = served(UNIT, &frame, &[0x00, 0x90, 0x00]);
    assert_eq!(seen, [value_apdu(Method::Put, 2, &[0x12, 0x34])]);
    assert_eq!(out, frame, "function 6 echoes its request");
}

#[test]
fn refusals_are_their_exceptions() {
    let frame = rtu(&[1, 0x03, 0, 192, 0, 1]);
    for (response, exception) in [
        (&[0x81, 0x90, 0x00][..], 0x02), // no right
        (&[0x84, 0x90, 0x00], 0x02),     // no such variable
        (&[0x80, 0x90, 0x00], 0x02),     // malformed
        (&[], 0x02),                     // nothing
        (&[0xA8, 0x90, 0x00], 0x06),     // busy
        (&[0xA5, 0x90, 0x00], 0x04),     // the target failed
        (&[0xBB, 0x90, 0x00], 0x04),
    ] {
        let (out, _) = served(UNIT, &frame, response);
        assert_eq!(out, rtu(&[1, 0x83, exception]), "{response:02x?}");
    }
    // A value shorter than the registers asked for.
    let (out, _) = served(UNIT, &rtu(&[1, 0x03, 0, 192, 0, 3]), &[0, 1, 2, 0x90, 0]);
    assert_eq!(out, rtu(&[1, 0x83, 0x02]));
    // The port could not reach the device.
    let mut out = Response::new();
    answer(UNIT, &frame, &mut out, |_| {
        Err::<Vec<u8>, _>(Exception::DeviceFailure)
    });
    assert_eq!(out.as_slice(), rtu(&[1, 0x83, 0x04]));
}

#[test]
fn what_the_map_refuses_by_itself_never_reaches_the_device() {
    for (frame, exception) in [
        // Not the start of a block.
        (rtu(&[1, 0x03, 0, 161, 0, 1]), 0x83_02),
        (rtu(&[1, 0x06, 0, 33, 0, 1]), 0x86_02),
        // Longer than a block (and than any value).
        (rtu(&[1, 0x03, 0, 160, 0, 33]), 0x83_02),
        // Input registers, coils: no use in the map.
        (rtu(&[1, 0x04, 0, 160, 0, 1]), 0x84_01),
        (rtu(&[1, 0x01, 0, 160, 0, 1]), 0x81_01),
        (rtu(&[1, 0x05, 0, 160, 0xFF, 0]), 0x85_01),
        (rtu(&[1, 0x0F, 0, 160, 0, 8, 1, 0xFF]), 0x8F_01),
        // A function rmodbus does not know.
        (rtu(&[1, 0x2B, 0, 0, 0, 0]), 0xAB_01),
        // A byte count that is not twice the count.
        (rtu(&[1, 0x10, 0, 160, 0, 1, 4, 1, 2, 3, 4]), 0x90_03),
    ] {
        let (out, seen) = served(UNIT, &frame, &[0x00, 0x90, 0x00]);
        assert!(seen.is_empty(), "{frame:02x?}");
        let [function, code] = (exception as u16).to_be_bytes();
        assert_eq!(out, rtu(&[1, function, code]), "{frame:02x?}");
    }
}

#[test]
fn rtu_frames_of_other_units_with_bad_crcs_or_broadcast_reads_go_unanswered() {
    let mut bad = rtu(&[1, 0x03, 0, 160, 0, 1]);
    bad[7] ^= 1;
    for frame in [
        rtu(&[2, 0x03, 0, 160, 0, 1]),
        rtu(&[0, 0x03, 0, 160, 0, 1]),
        bad,
        rtu(&[]),
        vec![1],
    ] {
        let mut out = Response::new();
        assert_eq!(
            request(UNIT, &frame, &mut out),
            Action::Silent,
            "{frame:02x?}"
        );
        let (out, seen) = served(UNIT, &frame, &[0x00, 0x90, 0x00]);
        assert!(out.is_empty() && seen.is_empty(), "{frame:02x?}");
    }
}

#[test]
fn a_broadcast_write_is_performed_and_not_answered() {
    let frame = rtu(&[0, 0x06, 0, 64, 0x12, 0x34]);
    let (out, seen) = served(UNIT, &frame, &[0x00, 0x90, 0x00]);
    assert_eq!(seen, [value_apdu(Method::Put, 2, &[0x12, 0x34])]);
    assert!(out.is_empty());
}

/// From the review of the desktop's TCP slave, now the shared module's.
#[test]
fn tcp_byte_counts_that_overrun_or_disagree_are_illegal_data_value() {
    for frame in [
        &[0, 1, 0, 0, 0, 7, 1, 0x10, 0, 0, 0, 1, 0xF6][..],
        &[
            0, 1, 0, 0, 0, 11, 1, 0x10, 0, 32, 0, 1, 4, 0xDE, 0xAD, 0xBE, 0xEF,
        ],
    ] {
        let (out, seen) = served(Framing::Tcp, frame, &[0x00, 0x90, 0x00]);
        assert!(seen.is_empty());
        assert_eq!(out, [0, 1, 0, 0, 0, 3, 1, 0x90, 3]);
    }
}

/// Found by the property below: a function of 128 or more overflowed rmodbus's
/// exception code (`function + 0x80`), a panic in a debug build.
#[test]
fn a_function_of_128_or_more_is_illegal_function_without_a_panic() {
    for function in [0x80u8, 0x83, 0xFF] {
        let (out, seen) = served(UNIT, &rtu(&[1, function, 0, 160, 0, 1]), &[0, 0x90, 0]);
        assert!(seen.is_empty());
        assert_eq!(out, rtu(&[1, function, 0x01]));
        let frame = [0, 9, 0, 0, 0, 6, 1, function, 0, 160, 0, 1];
        let (out, _) = served(Framing::Tcp, &frame, &[0, 0x90, 0]);
        assert_eq!(out, [0, 9, 0, 0, 0, 3, 1, function, 0x01]);
    }
}

#[test]
fn tcp_serves_every_unit_and_checks_the_mbap_length() {
    let frame = [0, 1, 0, 0, 0, 6, 0, 0x03, 0, 32, 0, 1];
    let (out, _) = served(Framing::Tcp, &frame, &[0x00, 0x12, 0x34, 0x90, 0x00]);
    assert_eq!(out, [0, 1, 0, 0, 0, 5, 0, 0x03, 2, 0x12, 0x34]);
    // A length that is not the frame's, another protocol: nothing.
    for frame in [
        &[0, 1, 0, 0, 0, 7, 0, 0x03, 0, 32, 0, 1][..],
        &[0, 1, 0, 1, 0, 6, 0, 0x03, 0, 32, 0, 1],
        &[0, 1, 0, 0, 0, 2, 0, 0x06],
    ] {
        let (out, seen) = served(Framing::Tcp, frame, &[0x00, 0x90, 0x00]);
        assert!(out.is_empty() && seen.is_empty(), "{frame:02x?}");
    }
}

/// Every frame `bytes` makes a decoder give.
fn frames(decoder: &mut RtuDecoder, bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .iter()
        .filter_map(|&b| decoder.push(b).map(<[u8]>::to_vec))
        .collect()
}

/// A small deterministic generator (xorshift32).
fn noise(seed: u32, n: usize) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn the_decoder_finds_frames_after_noise_cut_frames_and_bad_crcs() {
    let read = rtu(&[1, 0x03, 0, 160, 0, 2]);
    let write = rtu(&[1, 0x10, 0, 160, 0, 2, 4, 0xDE, 0xAD, 0xBE, 0xEF]);
    let mut bad = write.clone();
    bad[9] ^= 0x10;
    let mut line = Vec::new();
    line.extend(&read);
    line.extend(noise(0x1234_5678, 700));
    line.extend(&write);
    line.extend(&read[..5]); // cut short
    line.extend(&bad);
    line.extend(&write[..3]);
    line.extend(&read);
    line.extend(noise(0x9E37_79B9, 3000));
    line.extend(&write);
    let mut decoder = RtuDecoder::new();
    assert_eq!(
        frames(&mut decoder, &line),
        [read.clone(), write.clone(), read.clone(), write.clone()]
    );
    // A frame in pieces.
    assert!(frames(&mut decoder, &write[..6]).is_empty());
    assert_eq!(
        frames(&mut decoder, &write[6..]),
        std::slice::from_ref(&write)
    );
    assert_eq!(decoder.frame(), Some(&write[..]));
    decoder.push(0);
    assert_eq!(decoder.frame(), None);
}

#[test]
fn the_largest_write_fits_the_decoder() {
    let mut body = vec![1, 0x10, 0, 0, 0, 123, 246];
    body.extend((0..246).map(|i| i as u8));
    let frame = rtu(&body);
    assert_eq!(frame.len(), MAX_RTU_FRAME - 1);
    let mut decoder = RtuDecoder::new();
    let mut line = noise(7, 400);
    line.extend(&frame);
    assert_eq!(frames(&mut decoder, &line).last(), Some(&frame));
}

proptest! {
    /// No input panics: what the decoder gives is a whole request with its CRC, and the
    /// slave answers it (or not) within a response's room.
    #[test]
    fn hostile_input_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let mut decoder = RtuDecoder::new();
        for &byte in &bytes {
            if let Some(frame) = decoder.push(byte) {
                prop_assert!(crc_ok(frame));
                let frame = frame.to_vec();
                let (out, _) = served(UNIT, &frame, &[0x00, 1, 2, 3, 4, 0x90, 0x00]);
                prop_assert!(out.len() <= MAX_RTU_FRAME);
            }
        }
    }

    /// Any frame whatever, of either framing, with any answer of the device.
    #[test]
    fn any_frame_and_answer_never_panics(
        frame in proptest::collection::vec(any::<u8>(), 0..300),
        response in proptest::collection::vec(any::<u8>(), 0..80),
        crc in any::<bool>(),
    ) {
        let rtu_frame = if crc { rtu(&frame) } else { frame.clone() };
        // A TCP frame with its MBAP header, or as it came.
        let mut tcp_frame = frame.clone();
        if crc {
            let len = (frame.len() as u16).to_be_bytes();
            tcp_frame.splice(0..0, [0, 1, 0, 0, len[0], len[1]]);
        }
        for (framing, frame) in [(UNIT, &rtu_frame), (Framing::Tcp, &tcp_frame)] {
            let mut out = Response::new();
            if let Action::Side(side) = request(framing, frame, &mut out) {
                let mut apdu = [0u8; MAX_SIDE_APDU];
                prop_assert!(side.emit(frame, &mut apdu).is_some());
                prop_assert!(side.apdu_len() <= MAX_SIDE_APDU);
            }
            served(framing, frame, &response);
        }
    }

    /// Writes of function 16 with a frame that holds its count: its registers become the
    /// PUT's payload, whatever the byte count's claims.
    #[test]
    fn writes_carry_their_registers(block in 0u16..2048, words in proptest::collection::vec(any::<u16>(), 1..=32)) {
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
        let address = block * BLOCK;
        let mut body = vec![1, 0x10];
        body.extend(address.to_be_bytes());
        body.extend((words.len() as u16).to_be_bytes());
        body.push(bytes.len() as u8);
        body.extend(&bytes);
        let (out, seen) = served(UNIT, &rtu(&body), &[0x00, 0x90, 0x00]);
        prop_assert_eq!(seen, vec![value_apdu(Method::Put, block, &bytes)]);
        prop_assert_eq!(out, rtu(&body[..6]));
    }
}

/// From the adversarial review: on a bus the decoder also hears the master's frames to
/// other units and their slaves' answers, whose data may be anybody's (a string a user
/// typed into another unit's registers). A frame of this unit carried inside them was
/// taken as a request: the device wrote a variable nobody addressed to it.
#[test]
fn a_frame_carried_in_the_data_of_another_units_traffic_is_no_request() {
    let inner = rtu(&[1, 0x06, 0, 64, 0x12, 0x34]);
    let read = rtu(&[1, 0x03, 0, 160, 0, 2]);
    // The master writes it into unit 2's registers; unit 2 answers.
    let mut write = vec![2, 0x10, 0, 0, 0, 4, 8];
    write.extend(&inner);
    let write = rtu(&write);
    let mut line = write.clone();
    line.extend(rtu(&[2, 0x10, 0, 0, 0, 4]));
    // The master reads it back from unit 2 (and unit 2 answers it, or an exception).
    let read_back = rtu(&[2, 0x03, 0, 0, 0, 4]);
    line.extend(&read_back);
    let mut answer = vec![2, 0x03, 8];
    answer.extend(&inner);
    line.extend(rtu(&answer));
    line.extend(rtu(&[2, 0x83, 0x02]));
    // Read/write multiple registers (23) to unit 2, and its answer.
    let mut both = vec![2, 0x17, 0, 0, 0, 1, 0, 0, 0, 4, 8];
    both.extend(&inner);
    line.extend(rtu(&both));
    line.extend(rtu(&[2, 0x17, 2, 0, 0]));
    line.extend(&read);
    let mut decoder = RtuDecoder::new();
    // The master's requests of functions 3 and 16, to unit 2 and to this one, and
    // nothing else.
    assert_eq!(frames(&mut decoder, &line), [write, read_back, read]);
}

/// In step with the line, a header claiming the longest frame holds the decoder up for
/// that frame's length at most; a stray byte before a frame costs it nothing.
#[test]
fn in_step_the_decoder_waits_for_a_frame_no_longer_than_it_can_be() {
    let read = rtu(&[1, 0x03, 0, 160, 0, 2]);
    let mut decoder = RtuDecoder::new();
    let mut line = vec![1, 0x10, 0, 0, 0, 123, 246];
    line.extend(&read);
    line.extend(vec![0; 255 - line.len()]);
    assert!(frames(&mut decoder, &line).is_empty());
    assert_eq!(frames(&mut decoder, &read), std::slice::from_ref(&read));
    for stray in [0x00, 0x01, 0x10, 0x83, 0xFF] {
        let mut line = vec![stray];
        line.extend(&read);
        assert_eq!(
            frames(&mut decoder, &line),
            std::slice::from_ref(&read),
            "{stray:02x}"
        );
    }
}

/// From the adversarial review: a read or write of no register ran a GET (answered with
/// no data) or a PUT without payload on the device; Modbus answers a quantity of 0
/// ILLEGAL DATA VALUE.
#[test]
fn a_read_or_write_of_no_register_is_illegal_data_value() {
    for (frame, function) in [
        (rtu(&[1, 0x03, 0, 160, 0, 0]), 0x83),
        (rtu(&[1, 0x10, 0, 160, 0, 0, 0]), 0x90),
    ] {
        let (out, seen) = served(UNIT, &frame, &[0x00, 0x90, 0x00]);
        assert!(seen.is_empty(), "{frame:02x?}");
        assert_eq!(out, rtu(&[1, function, 0x03]), "{frame:02x?}");
    }
}
