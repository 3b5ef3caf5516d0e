//! A board's host side: requests delivered into a `HostMux` from other threads (as
//! interrupt handlers would), served by the device loop through `MuxHost`, answers sent
//! through `Transmit`, waiting through `Sleep`.

mod common;
use common::{Board, GET, REBOOT};

use std::sync::Mutex;
use std::time::{Duration, Instant as StdInstant};

use lwm2m_core::{ChannelKind, Config, Device, Effect, FrameLimits, Instant};
use transport_traits::mux::{HostMux, MuxHost, Role, Sleep, Transmit};
use transport_traits::run::{run, Clock, Stopped};
use transport_traits::{ErrorKind, ErrorType};

static MUX: HostMux<3, 64> = HostMux::new();
static ANSWERS: Mutex<Vec<(usize, Vec<u8>)>> = Mutex::new(Vec::new());

struct Uart;

impl ErrorType for Uart {
    type Error = ErrorKind;
}

impl Transmit for Uart {
    fn send(&mut self, channel: usize, frame: &[u8]) -> Result<(), ErrorKind> {
        ANSWERS.lock().unwrap().push((channel, frame.to_vec()));
        Ok(())
    }
}

/// Wall-clock milliseconds since `start`, for the clock and the sleeper alike.
#[derive(Clone, Copy)]
struct Wall {
    start: StdInstant,
}

impl Clock for Wall {
    fn now(&mut self) -> Instant {
        Instant::from_millis(self.start.elapsed().as_millis() as u64)
    }
}

impl Sleep for Wall {
    fn sleep_until(&mut self, deadline: Option<Instant>) -> bool {
        std::thread::sleep(Duration::from_millis(1));
        deadline.is_some_and(|d| self.now() >= d)
    }
}

/// Delivers `frame` on `channel` and waits for its answer, as a link that never
/// pipelines would.
fn exchange(channel: usize, frame: &[u8]) -> Vec<u8> {
    let before = ANSWERS.lock().unwrap().len();
    while MUX.deliver(channel, frame).is_err() {
        std::thread::yield_now();
    }
    loop {
        if let Some((c, answer)) = ANSWERS.lock().unwrap().get(before).cloned() {
            assert_eq!(c, channel);
            return answer;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn requests_from_other_threads_are_served_through_the_mailboxes() {
    let limits = FrameLimits {
        max_request: 59,
        max_response: 64,
    };
    let mut device = Device::new(
        (Board::guarded(),),
        Config::default(),
        Config::reset,
        limits,
    );
    let wall = Wall {
        start: StdInstant::now(),
    };
    let roles = [
        Role::Link(ChannelKind::Serial),
        Role::Link(ChannelKind::Ble),
        Role::Side(lwm2m_core::config::ADMIN),
    ];
    let links = std::thread::spawn(|| {
        let mut answers = vec![
            exchange(0, &GET), // the serial link takes the session
            exchange(1, &GET), // BLE: another interlocutor
            exchange(1, &REBOOT),
            exchange(2, &GET), // the side handler, outside the session
        ];
        MUX.close(0);
        answers.push(exchange(1, &REBOOT)); // anonymous BLE: no right
        answers.push(exchange(2, &REBOOT)); // the side handler as admin
        answers
    });
    let mut host = MuxHost::new(&MUX, roles, Uart, wall);
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let stopped = run(&mut device, &mut host, &mut { wall }, &mut rx, &mut tx);
    assert_eq!(stopped, Ok(Stopped::Effect(Effect::Reboot)));
    let answers = links.join().unwrap();
    let serial = b"\x00SN1\x90\x00".to_vec();
    assert_eq!(
        answers,
        [
            serial.clone(),
            vec![0xA8, 0x90, 0x00],
            vec![0xA8, 0x90, 0x00],
            serial,
            vec![0x81, 0x90, 0x00],
            vec![0x00, 0x90, 0x00],
        ]
    );
}
