use super::*;
use proptest::prelude::*;

/// Every event a decoder gives for `bytes`: the APDUs (owned) and the errors.
fn events<const N: usize>(
    decoder: &mut Decoder<N>,
    bytes: &[u8],
) -> Vec<Result<Vec<u8>, FrameError>> {
    bytes
        .iter()
        .filter_map(|&b| decoder.push(b).map(|r| r.map(<[u8]>::to_vec)))
        .collect()
}

fn framed(apdu: &[u8]) -> Vec<u8> {
    let mut out = vec![0; encoded_len(apdu.len())];
    let len = encode(apdu, &mut out).unwrap();
    out.truncate(len);
    out
}

#[test]
fn the_crc_is_crc_32c() {
    assert_eq!(CRC.checksum(b"123456789"), 0xE306_9283);
}

#[test]
fn the_documented_example_is_what_is_sent() {
    assert_eq!(CRC.checksum(&[0x01, 0x02, 0x00, 0x03]), 0xC91D_4086);
    assert_eq!(
        framed(&[0x01, 0x02, 0x00, 0x03]),
        [0x00, 0x03, 0x01, 0x02, 0x06, 0x03, 0x86, 0x40, 0x1D, 0xC9, 0x00]
    );
}

#[test]
fn the_link_closed_frame_is_an_empty_apdu() {
    assert_eq!(framed(&[]), [0x00, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00]);
    let mut d = Decoder::<8>::new();
    assert_eq!(events(&mut d, &framed(&[])), [Ok(vec![])]);
}

#[test]
fn broken_frames_are_reported_and_the_next_one_is_received() {
    let good = framed(&[0xA2, 0xCA, 0, 0, 7, 1, 0, 3, 0xFF, 0xFF, 0, 2]);
    let mut bad_crc = good.clone();
    bad_crc[3] ^= 0x01;
    let mut d = Decoder::<64>::new();
    // Empty frames are nothing; a group cut short is malformed; a frame shorter than a
    // CRC is too short.
    assert_eq!(events(&mut d, &[0, 0, 0]), []);
    assert_eq!(
        events(&mut d, &[0x05, 1, 2, 0]),
        [Err(FrameError::Malformed)]
    );
    assert_eq!(
        events(&mut d, &[0x03, 1, 2, 0]),
        [Err(FrameError::TooShort)]
    );
    assert_eq!(events(&mut d, &bad_crc), [Err(FrameError::BadCrc)]);
    assert_eq!(events(&mut d, &good), [Ok(good_apdu())]);
}

fn good_apdu() -> Vec<u8> {
    vec![0xA2, 0xCA, 0, 0, 7, 1, 0, 3, 0xFF, 0xFF, 0, 2]
}

#[test]
fn a_frame_longer_than_the_buffer_is_dropped_whole() {
    let mut d = Decoder::<16>::new();
    // 13 bytes of APDU and the CRC: 17 stuffed bytes, one too many.
    let long = framed(&[0x55; 13]);
    assert_eq!(events(&mut d, &long), [Err(FrameError::TooLong)]);
    // Exactly the buffer: received.
    let fits = framed(&[0x55; 12]);
    assert_eq!(events(&mut d, &fits), [Ok(vec![0x55; 12])]);
}

#[test]
fn long_frames_cross_cobs_groups() {
    // 254-byte runs without zeros take the 0xFF group code.
    for len in [0, 1, 250, 253, 254, 255, 508, 1000] {
        let apdu: Vec<u8> = (0..len).map(|i| (i % 255) as u8 + 1).collect();
        let mut d = Decoder::<1100>::new();
        assert_eq!(events(&mut d, &framed(&apdu)), [Ok(apdu)], "{len} bytes");
    }
}

proptest! {
    #[test]
    fn every_apdu_goes_through(apdu in proptest::collection::vec(any::<u8>(), 0..600)) {
        let wire = framed(&apdu);
        prop_assert!(wire.len() <= encoded_len(apdu.len()));
        prop_assert_eq!(wire[0], DELIMITER);
        prop_assert_eq!(wire[wire.len() - 1], DELIMITER);
        prop_assert!(!wire[1..wire.len() - 1].contains(&DELIMITER));
        let mut d = Decoder::<604>::new();
        prop_assert_eq!(events(&mut d, &wire), [Ok(apdu)]);
    }

    #[test]
    fn after_any_noise_the_next_frame_is_received(
        noise in proptest::collection::vec(any::<u8>(), 0..400),
        apdu in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut d = Decoder::<256>::new();
        let noise_events = events(&mut d, &noise);
        let got = events(&mut d, &framed(&apdu));
        // The noise ends at the frame's leading delimiter (as a frame, good or not);
        // then the frame itself.
        prop_assert!(!got.is_empty() && got.len() <= 2, "{:?}", got);
        prop_assert_eq!(got.last().unwrap(), &Ok(apdu));
        prop_assert!(noise_events.len() <= noise.len());
    }

    #[test]
    fn the_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let mut d = Decoder::<64>::new();
        for b in bytes {
            if let Some(Ok(apdu)) = d.push(b) {
                prop_assert!(apdu.len() <= 64 - CRC_LEN);
            }
        }
    }
}

/// A serial port over two byte queues, read `chunk` bytes at most at a time.
struct Port {
    rx: std::collections::VecDeque<u8>,
    tx: Vec<u8>,
    chunk: usize,
}

impl embedded_io::ErrorType for Port {
    type Error = core::convert::Infallible;
}

impl embedded_io::Read for Port {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let n = buf.len().min(self.chunk).min(self.rx.len());
        for b in &mut buf[..n] {
            *b = self.rx.pop_front().unwrap();
        }
        Ok(n)
    }
}

impl embedded_io::Write for Port {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.tx.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

#[test]
fn a_serial_link_receives_frames_and_counts_what_it_dropped() {
    let mut rx = Vec::new();
    rx.extend_from_slice(&[0x13, 0x37, 0x00]); // noise
    rx.extend(framed(&good_apdu()));
    rx.extend(framed(&[0x77; 300])); // too long for the link
    rx.extend(framed(&[1, 2, 3]));
    for chunk in [1, 3, 32] {
        let port = Port {
            rx: rx.iter().copied().collect(),
            tx: Vec::new(),
            chunk,
        };
        let mut link = SerialLink::<_, 64, { encoded_len(64) }>::new(port);
        let mut buf = [0u8; 64];
        let n = link.receive(&mut buf).unwrap();
        assert_eq!(&buf[..n], &good_apdu()[..]);
        let n = link.receive(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[1, 2, 3]);
        assert_eq!(link.dropped(), 2, "the noise and the long frame");
        assert_eq!(link.receive(&mut buf), Err(SerialError::Closed));

        link.send(&[0x00, 0x90, 0x00]).unwrap();
        let mut d = Decoder::<16>::new();
        assert_eq!(
            events(&mut d, &link.port_mut().tx),
            [Ok(vec![0x00, 0x90, 0x00])]
        );
    }
}

#[test]
fn a_frame_larger_than_the_caller_buffer_is_an_overflow() {
    let port = Port {
        rx: framed(&[9; 20]).into_iter().collect(),
        tx: Vec::new(),
        chunk: 32,
    };
    let mut link = SerialLink::<_, 64, { encoded_len(64) }>::new(port);
    let mut small = [0u8; 8];
    assert_eq!(link.receive(&mut small), Err(SerialError::Overflow));
    // A response larger than the send buffer is refused, not cut.
    assert_eq!(link.send(&[1; 65]), Err(SerialError::Overflow));
    assert!(link.port_mut().tx.is_empty());
}
