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

impl embedded_io::ReadReady for Port {
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        Ok(!self.rx.is_empty())
    }
}

/// A port whose line never stops delivering `00 55` (empty frames and a one-byte frame,
/// too short: dropped), and which counts how often it was asked whether it is ready.
#[derive(Default)]
struct Storm {
    at: usize,
    asked: usize,
    tx: Vec<u8>,
}

impl embedded_io::ErrorType for Storm {
    type Error = core::convert::Infallible;
}

impl embedded_io::ReadReady for Storm {
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        self.asked += 1;
        Ok(true)
    }
}

impl embedded_io::Read for Storm {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        for b in buf.iter_mut() {
            *b = [0x00, 0x55][self.at % 2];
            self.at += 1;
        }
        Ok(buf.len())
    }
}

impl embedded_io::Write for Storm {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.tx.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// A clock one millisecond later at every reading.
struct Ticking(u64);

impl Clock for Ticking {
    fn now(&mut self) -> Instant {
        self.0 += 1;
        Instant::from_millis(self.0)
    }
}

const SERIAL: Channel = Channel::new(7, lwm2m_core::ChannelKind::Serial);

type TestHost<P> = SerialHost<P, Ticking, 64, { encoded_len(64) }>;

fn host_over(bytes: &[u8]) -> TestHost<Port> {
    let port = Port {
        rx: bytes.iter().copied().collect(),
        tx: Vec::new(),
        chunk: 5,
    };
    SerialHost::new(port, Ticking(0), SERIAL)
}

fn wait<P>(host: &mut TestHost<P>, deadline: Option<u64>, buf: &mut [u8]) -> HostEvent
where
    P: embedded_io::Read + embedded_io::ReadReady + embedded_io::Write,
{
    let session = Session::default();
    host.wait(&session, deadline.map(Instant::from_millis), buf)
        .unwrap()
}

#[test]
fn a_serial_host_delivers_requests_and_the_closed_frame() {
    let mut line = framed(&good_apdu());
    line.extend(framed(&[]));
    line.extend(framed(&[1, 2, 3]));
    let mut host = host_over(&line);
    let mut buf = [0u8; 32];
    let len = good_apdu().len();
    assert_eq!(
        wait(&mut host, None, &mut buf),
        HostEvent::Request {
            channel: SERIAL,
            len
        }
    );
    assert_eq!(&buf[..len], &good_apdu()[..]);
    assert_eq!(
        wait(&mut host, None, &mut buf),
        HostEvent::Closed(SERIAL.id)
    );
    assert_eq!(
        wait(&mut host, Some(1000), &mut buf),
        HostEvent::Request {
            channel: SERIAL,
            len: 3
        }
    );
    assert_eq!(host.dropped(), 0);
    // The line is quiet now: the deadline passes.
    assert_eq!(wait(&mut host, Some(20), &mut buf), HostEvent::Timeout);
    // The decoder keeps no copy of the frames it delivered.
    assert!(host.link.decoder.buf.iter().all(|&b| b == 0));
}

#[test]
fn a_serial_host_drops_noise_and_frames_too_long_for_the_buffer() {
    let mut line = vec![0x13, 0x37, 0x00, 0x05, 0x01]; // noise, a group cut short
    let mut bad_crc = framed(&good_apdu());
    bad_crc[4] ^= 0x10;
    line.extend(bad_crc);
    line.extend(framed(&[0x77; 200])); // longer than the decoder
    line.extend(framed(&[0x66; 40])); // fits the decoder, not the buffer below
    line.extend([0x42; 300]); // a frame that never ends, ended by the next delimiter
    line.extend(framed(&good_apdu()));
    let mut host = host_over(&line);
    let mut buf = [0u8; 32];
    assert_eq!(
        wait(&mut host, Some(10_000), &mut buf),
        HostEvent::Request {
            channel: SERIAL,
            len: good_apdu().len()
        }
    );
    assert_eq!(&buf[..good_apdu().len()], &good_apdu()[..]);
    assert_eq!(host.dropped(), 6);
}

#[test]
fn a_serial_host_meets_its_deadline_on_a_line_that_never_stops() {
    let mut host: TestHost<Storm> = SerialHost::new(Storm::default(), Ticking(0), SERIAL);
    let mut buf = [0u8; 32];
    assert_eq!(wait(&mut host, Some(50), &mut buf), HostEvent::Timeout);
    assert!(host.clock_mut().0 >= 50);
    assert!(host.dropped() > 0);
    // A deadline already past: at once.
    let asked = host.port_mut().asked;
    assert_eq!(wait(&mut host, Some(10), &mut buf), HostEvent::Timeout);
    assert_eq!(host.port_mut().asked, asked);
}

static IDLE_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[test]
fn a_serial_host_idles_while_nothing_is_ready_and_replies_one_frame() {
    let mut host = host_over(&[]).with_idle(|| {
        IDLE_CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    let mut buf = [0u8; 32];
    assert_eq!(wait(&mut host, Some(30), &mut buf), HostEvent::Timeout);
    assert!(IDLE_CALLS.load(std::sync::atomic::Ordering::Relaxed) >= 20);

    host.reply(SERIAL.id, &[0x00, 0x90, 0x00], None).unwrap();
    let mut d = Decoder::<16>::new();
    assert_eq!(
        events(&mut d, &host.port_mut().tx),
        [Ok(vec![0x00, 0x90, 0x00])]
    );
    // An answer larger than the send buffer is refused, not cut.
    assert_eq!(
        host.reply(SERIAL.id, &[1; 65], None),
        Err(SerialError::Overflow)
    );
}

#[test]
fn a_serial_host_reports_the_end_of_its_port() {
    /// Ready, and at its end.
    struct Ended;
    impl embedded_io::ErrorType for Ended {
        type Error = core::convert::Infallible;
    }
    impl embedded_io::ReadReady for Ended {
        fn read_ready(&mut self) -> Result<bool, Self::Error> {
            Ok(true)
        }
    }
    impl embedded_io::Read for Ended {
        fn read(&mut self, _: &mut [u8]) -> Result<usize, Self::Error> {
            Ok(0)
        }
    }
    impl embedded_io::Write for Ended {
        fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> Result<(), Self::Error> {
            Ok(())
        }
    }
    let mut host: TestHost<Ended> = SerialHost::new(Ended, Ticking(0), SERIAL);
    let session = Session::default();
    assert_eq!(
        host.wait(&session, None, &mut [0u8; 32]),
        Err(SerialError::Closed)
    );
}

proptest! {
    #[test]
    fn after_any_noise_a_serial_host_serves_the_next_frame(
        noise in proptest::collection::vec(any::<u8>(), 0..600),
        apdu in proptest::collection::vec(any::<u8>(), 1..32),
        chunk in 1usize..40,
    ) {
        let mut line = noise;
        line.extend(framed(&apdu));
        let port = Port { rx: line.into_iter().collect(), tx: Vec::new(), chunk };
        let mut host: TestHost<Port> = SerialHost::new(port, Ticking(0), SERIAL);
        let mut buf = [0u8; 32];
        let session = Session::default();
        // Noise may hold a (2^-32) valid frame, or the link-closed frame: skipped.
        let got = loop {
            match host.wait(&session, Some(Instant::from_millis(100_000)), &mut buf).unwrap() {
                HostEvent::Request { len, .. } if buf[..len] == apdu[..] => break true,
                HostEvent::Request { .. } | HostEvent::Closed(_) => {}
                HostEvent::Timeout => break false,
                other => panic!("{other:?}"),
            }
        };
        prop_assert!(got);
    }
}

#[cfg(feature = "async")]
mod asynch_host {
    use super::*;
    use crate::run::asynch::Alarm;

    /// The async port reads what the queue holds, and waits forever on an empty one.
    impl embedded_io_async::Read for Port {
        async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
            if self.rx.is_empty() {
                core::future::pending::<()>().await;
            }
            embedded_io::Read::read(self, buf)
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

    /// The deadline comes at once: a wait with one on a quiet line times out.
    impl Alarm for Ticking {
        async fn at(&mut self, _deadline: Instant) {}
    }

    type AsyncHost = SerialHost<Port, Ticking, 64, { encoded_len(64) }>;

    fn wait(host: &mut AsyncHost, deadline: Option<u64>, buf: &mut [u8]) -> HostEvent {
        let session = Session::default();
        embassy_futures::block_on(crate::run::asynch::Host::wait(
            host,
            &session,
            deadline.map(Instant::from_millis),
            buf,
        ))
        .unwrap()
    }

    #[test]
    fn the_async_serial_host_serves_frames_drops_noise_and_meets_its_deadline() {
        let mut line = vec![0x13, 0x37, 0x00];
        line.extend(framed(&good_apdu()));
        line.extend(framed(&[0x66; 40])); // longer than the buffer below
        line.extend(framed(&[]));
        let port = Port {
            rx: line.into_iter().collect(),
            tx: Vec::new(),
            chunk: 5,
        };
        let mut host = AsyncHost::new(port, Ticking(0), SERIAL);
        let mut buf = [0u8; 32];
        let len = good_apdu().len();
        assert_eq!(
            wait(&mut host, Some(1000), &mut buf),
            HostEvent::Request {
                channel: SERIAL,
                len
            }
        );
        assert_eq!(&buf[..len], &good_apdu()[..]);
        assert_eq!(
            wait(&mut host, None, &mut buf),
            HostEvent::Closed(SERIAL.id)
        );
        assert_eq!(host.dropped(), 2);
        // The line is quiet now: the deadline's alarm ends the wait.
        assert_eq!(wait(&mut host, Some(1000), &mut buf), HostEvent::Timeout);
        // One answer, one frame.
        let sent = embassy_futures::block_on(crate::run::asynch::Host::reply(
            &mut host,
            SERIAL.id,
            &[1, 2, 3],
            None,
        ));
        assert_eq!(sent, Ok(()));
        assert_eq!(host.port_mut().tx, framed(&[1, 2, 3]));
    }
}

/// Once a frame is delivered, no copy of it stays in the link: neither the decoder's nor
/// the raw bytes read from the port, which COBS leaves mostly as they were (a review found
/// the password readable in the read buffer).
#[test]
fn no_password_is_left_in_the_link_after_delivery() {
    let mut apdu = vec![0xA2, 0xDA, 0, 0, 39, 2, 4, 0, 0xFF, 0xFF, 0, 0];
    apdu.extend_from_slice(b"admin\0\0\0\0\0\0\0\0\0\0\0");
    apdu.extend_from_slice(b"s3cretPassw0rd!\0");
    let port = Port {
        rx: framed(&apdu).into_iter().collect(),
        tx: Vec::new(),
        chunk: 64,
    };
    let mut link = SerialLink::<_, 64, { encoded_len(64) }>::new(port);
    let mut buf = [0u8; 64];
    let n = link.receive(&mut buf).unwrap();
    assert_eq!(&buf[..n], &apdu[..]);
    buf.zeroize();
    let secret = b"ssw0rd!"; // the part in the last 32-byte read
    let holds = |bytes: &[u8]| bytes.windows(secret.len()).any(|w| w == secret);
    assert!(!holds(&link.decoder.buf), "decoder");
    assert!(
        !holds(&link.chunk),
        "the password is left in SerialLink::chunk"
    );
}
