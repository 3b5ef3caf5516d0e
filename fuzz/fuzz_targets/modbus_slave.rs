//! Feeds arbitrary bytes to the Modbus slave (`transport_traits::modbus_slave`): as a
//! Modbus RTU line through the frame decoder, each frame it gives a whole request with
//! its CRC, and as one Modbus TCP frame and one RTU frame, the device answering every
//! side request with bytes of the input. Nothing panics, every response fits its room,
//! every side request's APDU fits the largest the register map makes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use transport_traits::modbus_slave::rtu::RtuDecoder;
use transport_traits::modbus_slave::{
    outcome, request, respond, Action, Framing, Response, MAX_RTU_FRAME, MAX_SIDE_APDU,
};

/// The side request `frame` asks for, answered with `device`'s bytes.
fn serve(framing: Framing, frame: &[u8], device: &[u8]) {
    let mut out = Response::new();
    if let Action::Side(side) = request(framing, frame, &mut out) {
        assert!(side.apdu_len() <= MAX_SIDE_APDU);
        let mut apdu = [0u8; MAX_SIDE_APDU];
        assert_eq!(side.emit(frame, &mut apdu), Some(side.apdu_len()));
        respond(framing, frame, outcome(device), &mut out);
    }
    if let Framing::Rtu { .. } = framing {
        assert!(out.len() <= MAX_RTU_FRAME);
    }
}

fuzz_target!(|data: &[u8]| {
    let (device, line) = data.split_at(
        data.len()
            .min(usize::from(data.first().copied().unwrap_or(0) % 72)),
    );
    let unit = Framing::Rtu { unit: 1 };
    let mut decoder = RtuDecoder::new();
    for &byte in line {
        if let Some(frame) = decoder.push(byte) {
            assert!((8..=MAX_RTU_FRAME).contains(&frame.len()));
            let frame = frame.to_vec();
            serve(unit, &frame, device);
        }
    }
    serve(unit, line, device);
    serve(Framing::Tcp, line, device);
});
