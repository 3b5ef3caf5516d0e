//! The device loop, blocking and async, over the same scripted host: the same answers,
//! deadlines honoured, links closed, effects returned to the port.

mod common;
use common::{Board, GET, REBOOT, SAVE};

use lwm2m_core::io::{IoResult, Operation};
use lwm2m_core::session::Session;
use lwm2m_core::storage::NoStore;
use lwm2m_core::target::NoTarget;
use lwm2m_core::{
    Channel, ChannelId, ChannelKind, Config, Device, Effect, FrameLimits, Instant, Step,
};
use transport_traits::run::{self, asynch, HostEvent, Stopped};
use transport_traits::{ErrorKind, ErrorType};

/// A script of events; records what the loop did.
struct Script {
    events: Vec<(Option<Vec<u8>>, HostEvent)>,
    answers: Vec<(ChannelId, Vec<u8>, Option<Effect>)>,
    deadlines: Vec<Option<Instant>>,
    owners: Vec<Option<ChannelId>>,
}

/// A scripted request of `channel`.
fn request(channel: Channel, bytes: &[u8]) -> (Option<Vec<u8>>, HostEvent) {
    (
        Some(bytes.to_vec()),
        HostEvent::Request {
            channel,
            len: bytes.len(),
        },
    )
}

impl Script {
    fn new() -> Script {
        let ws = Channel::new(1, ChannelKind::WebSocket);
        let ble = Channel::new(2, ChannelKind::Ble);
        Script {
            events: vec![
                request(ws, &GET),
                request(ws, &GET),
                request(ble, &GET), // another channel: A8
                (None, HostEvent::Timeout),
                (None, HostEvent::Closed(ws.id)),
                request(ble, &GET), // the session is free again
                request(ble, &REBOOT),
                (None, HostEvent::Stop),
            ],
            answers: Vec::new(),
            deadlines: Vec::new(),
            owners: Vec::new(),
        }
    }

    fn next(&mut self, session: &Session, deadline: Option<Instant>, buf: &mut [u8]) -> HostEvent {
        self.deadlines.push(deadline);
        self.owners.push(session.owner().map(|c| c.id));
        let (bytes, event) = self.events.remove(0);
        match (bytes, event) {
            (Some(bytes), HostEvent::Request { channel, .. }) => match buf.get_mut(..bytes.len()) {
                Some(room) => {
                    room.copy_from_slice(&bytes);
                    event
                }
                // Longer than the buffer: reported empty, as the async Host asks.
                None => HostEvent::Request { channel, len: 0 },
            },
            (_, event) => event,
        }
    }
}

impl Script {
    /// The answers sent, by channel.
    fn answered(&self) -> Vec<(u16, Vec<u8>)> {
        self.answers
            .iter()
            .map(|(c, a, _)| (c.0, a.clone()))
            .collect()
    }
}

impl ErrorType for Script {
    type Error = ErrorKind;
}

impl run::Host for Script {
    fn wait(
        &mut self,
        session: &Session,
        deadline: Option<Instant>,
        buf: &mut [u8],
    ) -> Result<HostEvent, ErrorKind> {
        Ok(self.next(session, deadline, buf))
    }

    fn reply(
        &mut self,
        channel: ChannelId,
        frame: &[u8],
        effect: Option<Effect>,
    ) -> Result<(), ErrorKind> {
        self.answers.push((channel, frame.to_vec(), effect));
        Ok(())
    }
}

impl asynch::Host for Script {
    async fn wait(
        &mut self,
        session: &Session,
        deadline: Option<Instant>,
        buf: &mut [u8],
    ) -> Result<HostEvent, ErrorKind> {
        Ok(self.next(session, deadline, buf))
    }

    async fn reply(
        &mut self,
        channel: ChannelId,
        frame: &[u8],
        effect: Option<Effect>,
    ) -> Result<(), ErrorKind> {
        self.answers.push((channel, frame.to_vec(), effect));
        Ok(())
    }
}

/// Runs the async loop to its end on this thread.
fn run_async<H: asynch::Host<Error = ErrorKind>, I: asynch::Io>(
    dev: &mut Device<(Board,)>,
    host: &mut H,
    io: &mut I,
    mut clock: Seconds,
    rx: &mut [u8],
    tx: &mut [u8],
) -> Result<Stopped, ErrorKind> {
    embassy_futures::block_on(asynch::run(dev, host, io, &mut clock, rx, tx))
}

/// A clock that moves one second per reading.
struct Seconds(u64);

impl run::Clock for Seconds {
    fn now(&mut self) -> Instant {
        self.0 += 1;
        Instant::from_secs(self.0)
    }
}

fn device() -> Device<(Board,)> {
    let limits = FrameLimits {
        max_request: 64,
        max_response: 64,
    };
    Device::new((Board::open(),), Config::default(), Config::reset, limits)
}

fn check(host: &Script, first: Result<Stopped, ErrorKind>, second: Result<Stopped, ErrorKind>) {
    assert_eq!(
        first,
        Ok(Stopped::Effect(Effect::Reboot)),
        "a reboot returns to the port"
    );
    assert_eq!(second, Ok(Stopped::Asked));
    let answers = host.answered();
    assert_eq!(
        answers,
        [
            (1, b"\x00SN1\x90\x00".to_vec()),
            (1, b"\x00SN1\x90\x00".to_vec()),
            (2, vec![0xA8, 0x90, 0x00]),
            (2, b"\x00SN1\x90\x00".to_vec()),
            (2, vec![0x00, 0x90, 0x00]),
        ]
    );
    assert_eq!(
        host.answers[4].2,
        Some(Effect::Reboot),
        "the reply knows of the reboot"
    );
    // The session's idle deadline (60 s after its last request) is what the loop waited for.
    assert_eq!(host.deadlines[3], Some(Instant::from_secs(3 + 60)));
    assert_eq!(host.owners[3], Some(ChannelId(1)));
    assert_eq!(
        host.owners[5], None,
        "closing the owner's link ends the session"
    );
}

#[test]
fn the_blocking_and_the_async_loop_serve_the_same_script() {
    let (mut rx, mut tx) = ([0u8; 69], [0u8; 64]);

    let mut host = Script::new();
    let mut dev = device();
    let first = run::run(&mut dev, &mut host, &mut Seconds(0), &mut rx, &mut tx);
    let second = run::run(&mut dev, &mut host, &mut Seconds(100), &mut rx, &mut tx);
    check(&host, first, second);
    assert!(rx.iter().chain(&tx).all(|&b| b == 0), "buffers wiped");

    let mut host = Script::new();
    let mut dev = device();
    let mut io = asynch::BlockingIo {
        target: NoTarget,
        store: NoStore,
    };
    let first = run_async(&mut dev, &mut host, &mut io, Seconds(0), &mut rx, &mut tx);
    let second = run_async(&mut dev, &mut host, &mut io, Seconds(100), &mut rx, &mut tx);
    check(&host, first, second);
}

/// A store whose save takes `polls` polls of its future (a flash erase on an async
/// driver), counting what it saved.
struct SlowStore {
    polls: u32,
    saves: u32,
}

impl asynch::Io for SlowStore {
    async fn perform(
        &mut self,
        op: &Operation,
        _config: &Config,
        _request: &[u8],
        _out: &mut [u8],
    ) -> IoResult {
        assert_eq!(*op, Operation::SaveConfig);
        for _ in 0..self.polls {
            embassy_futures::yield_now().await;
        }
        self.saves += 1;
        Ok(())
    }
}

#[test]
fn the_async_loop_answers_busy_while_an_operation_is_awaited() {
    let ws = Channel::new(1, ChannelKind::WebSocket);
    let ble = Channel::new(2, ChannelKind::Ble);
    let mut host = Script::new();
    host.events = vec![
        request(ws, &SAVE),
        // Taken while the save is awaited (one event per poll of the store).
        request(ble, &GET),
        (None, HostEvent::Timeout),
        request(ble, &GET),
        // After the save: the owner closes, BLE takes the session.
        (None, HostEvent::Closed(ws.id)),
        request(ble, &GET),
        (None, HostEvent::Stop),
    ];
    let mut dev = device();
    let mut io = SlowStore { polls: 3, saves: 0 };
    let (mut rx, mut tx) = ([0u8; 69], [0u8; 64]);
    let stopped = run_async(&mut dev, &mut host, &mut io, Seconds(0), &mut rx, &mut tx);
    assert_eq!(stopped, Ok(Stopped::Asked));
    assert_eq!(io.saves, 1);
    let answers = host.answered();
    assert_eq!(
        answers,
        [
            (2, vec![0xA8, 0x90, 0x00]),
            (2, vec![0xA8, 0x90, 0x00]),
            (1, vec![0x00, 0x90, 0x00]),
            (2, b"\x00SN1\x90\x00".to_vec()),
        ]
    );
    assert_eq!(dev.pending(), None);
}

// The async loop while an operation is awaited: the NFC SELECT, a stop.

/// A store whose save never completes (a flash or bus driver that hangs).
struct StuckStore;

impl asynch::Io for StuckStore {
    async fn perform(
        &mut self,
        _op: &Operation,
        _config: &Config,
        _request: &[u8],
        _out: &mut [u8],
    ) -> IoResult {
        core::future::pending::<()>().await;
        Ok(())
    }
}

#[test]
fn the_nfc_select_is_answered_90_00_while_an_operation_is_awaited() {
    let ws = Channel::new(1, ChannelKind::WebSocket);
    let nfc = Channel::new(3, ChannelKind::Nfc);
    let select = lwm2m_core::wire::NFC_SELECT;
    let mut host = Script::new();
    host.events = vec![
        (
            Some(SAVE.to_vec()),
            HostEvent::Request {
                channel: ws,
                len: SAVE.len(),
            },
        ),
        // A phone taps while the save is awaited.
        (
            Some(select.to_vec()),
            HostEvent::Request {
                channel: nfc,
                len: select.len(),
            },
        ),
        (None, HostEvent::Timeout),
        (None, HostEvent::Stop),
    ];
    let mut dev = device();
    // The core answers the SELECT with a bare 90 00 even while a request waits.
    {
        let mut out = [0u8; 64];
        let Step::Pending(_) = dev.start(ws, &SAVE, Instant::ZERO, &mut out) else {
            panic!("a save waits")
        };
        let mut busy = [0u8; 16];
        let Step::Done(outcome) = dev.start(nfc, &select, Instant::ZERO, &mut busy) else {
            panic!()
        };
        assert_eq!(&busy[..outcome.len], &[0x90, 0x00], "the core's answer");
        dev.cancel();
    }
    let mut io = SlowStore { polls: 3, saves: 0 };
    let (mut rx, mut tx) = ([0u8; 69], [0u8; 64]);
    let stopped = run_async(&mut dev, &mut host, &mut io, Seconds(0), &mut rx, &mut tx);
    assert_eq!(stopped, Ok(Stopped::Asked));
    let nfc_answer: Vec<Vec<u8>> = host
        .answers
        .iter()
        .filter(|(c, _, _)| *c == nfc.id)
        .map(|(_, a, _)| a.clone())
        .collect();
    assert_eq!(
        nfc_answer,
        [vec![0x90, 0x00]],
        "the async loop answers the NFC SELECT A8 while an operation is awaited"
    );
}

/// A host that says Stop once, and fails the test if the loop waits on it again.
struct StopOnce {
    events: Vec<HostEvent>,
    stopped: bool,
}

impl ErrorType for StopOnce {
    type Error = ErrorKind;
}

impl asynch::Host for StopOnce {
    async fn wait(
        &mut self,
        _session: &Session,
        _deadline: Option<Instant>,
        buf: &mut [u8],
    ) -> Result<HostEvent, ErrorKind> {
        assert!(
            !self.stopped,
            "the loop waited on the host again after it was asked to stop \
             (it stays inside an operation that never completes)"
        );
        let event = self.events.remove(0);
        if let HostEvent::Request { len, .. } = event {
            buf[..len].copy_from_slice(&SAVE);
        }
        self.stopped = event == HostEvent::Stop;
        Ok(event)
    }

    async fn reply(&mut self, _: ChannelId, _: &[u8], _: Option<Effect>) -> Result<(), ErrorKind> {
        Ok(())
    }
}

#[test]
fn the_async_loop_stops_when_asked_while_an_operation_hangs() {
    let ws = Channel::new(1, ChannelKind::WebSocket);
    let mut host = StopOnce {
        events: vec![
            HostEvent::Request {
                channel: ws,
                len: SAVE.len(),
            },
            HostEvent::Stop,
        ],
        stopped: false,
    };
    let mut dev = device();
    let (mut rx, mut tx) = ([0u8; 69], [0u8; 64]);
    let stopped = run_async(
        &mut dev,
        &mut host,
        &mut StuckStore,
        Seconds(0),
        &mut rx,
        &mut tx,
    );
    assert_eq!(stopped, Ok(Stopped::Asked));
    assert_eq!(dev.pending(), None, "the request given up");
}

// The async loop while an operation is awaited: the closes it records.

/// The async loop on a script whose requests and side requests land in the buffer.
struct Events {
    events: Vec<(Option<Vec<u8>>, HostEvent)>,
    answers: Vec<(ChannelId, Vec<u8>)>,
}

impl ErrorType for Events {
    type Error = ErrorKind;
}

impl asynch::Host for Events {
    async fn wait(
        &mut self,
        _session: &Session,
        _deadline: Option<Instant>,
        buf: &mut [u8],
    ) -> Result<HostEvent, ErrorKind> {
        let (bytes, event) = self.events.remove(0);
        Ok(match (bytes, event) {
            (Some(bytes), HostEvent::Request { channel, .. } | HostEvent::Side { channel, .. })
                if bytes.len() > buf.len() =>
            {
                HostEvent::Request { channel, len: 0 }
            }
            (Some(bytes), event) => {
                buf[..bytes.len()].copy_from_slice(&bytes);
                event
            }
            (None, event) => event,
        })
    }

    async fn reply(
        &mut self,
        channel: ChannelId,
        frame: &[u8],
        _: Option<Effect>,
    ) -> Result<(), ErrorKind> {
        self.answers.push((channel, frame.to_vec()));
        Ok(())
    }
}

/// The session owner's link closes while its save is awaited, then the port stops the
/// loop (to go on later, as `run` allows): the close was recorded beside the operation
/// but is applied only when the operation completes, and Stop returns before that.
#[test]
fn a_link_closed_before_a_stop_is_not_left_owning_the_session() {
    let ws = Channel::new(1, ChannelKind::WebSocket);
    let ble = Channel::new(2, ChannelKind::Ble);
    let mut host = Events {
        events: vec![
            (
                Some(SAVE.to_vec()),
                HostEvent::Request {
                    channel: ws,
                    len: SAVE.len(),
                },
            ),
            (None, HostEvent::Closed(ws.id)),
            (None, HostEvent::Stop),
        ],
        answers: Vec::new(),
    };
    let mut dev = device();
    let (mut rx, mut tx) = ([0u8; 69], [0u8; 64]);
    let stopped = run_async(
        &mut dev,
        &mut host,
        &mut StuckStore,
        Seconds(0),
        &mut rx,
        &mut tx,
    );
    assert_eq!(stopped, Ok(Stopped::Asked));
    assert_eq!(dev.pending(), None, "the request given up");
    let owner = dev.session().owner().map(|c| c.id);
    // The port goes on: another link is refused (A8) for as long as the dead link's
    // session lasts, and a new link given id 1 (a fixed-id link reconnecting) would
    // inherit it, login included.
    host.events = vec![
        (
            Some(GET.to_vec()),
            HostEvent::Request {
                channel: ble,
                len: GET.len(),
            },
        ),
        (None, HostEvent::Stop),
    ];
    let again = run_async(
        &mut dev,
        &mut host,
        &mut StuckStore,
        Seconds(10),
        &mut rx,
        &mut tx,
    );
    assert_eq!(again, Ok(Stopped::Asked));
    assert_eq!(
        owner,
        None,
        "channel 1 closed, yet it still owns the session after the stop (BLE answered {:02x?})",
        host.answers.last().map(|(_, a)| a.clone())
    );
    assert!(!dev.channel_in_use(ws.id));
}

/// A side handler's save waits while channel 1 owns the session. The side channel is
/// reported closed twice (a mailbox closed, reopened and closed again) before the owner's
/// link closes: the loop keeps two closes and drops the third, the owner's.
#[test]
fn a_repeated_close_does_not_crowd_out_the_owners_close() {
    let ws = Channel::new(1, ChannelKind::WebSocket);
    let side = Channel::new(5, ChannelKind::Side);
    let mut host = Events {
        events: vec![
            (
                Some(GET.to_vec()),
                HostEvent::Request {
                    channel: ws,
                    len: GET.len(),
                },
            ),
            (
                Some(SAVE.to_vec()),
                HostEvent::Side {
                    channel: side,
                    profile: 0,
                    len: SAVE.len(),
                },
            ),
            // Taken while the save is awaited (one event per poll of the store).
            (None, HostEvent::Closed(side.id)),
            (None, HostEvent::Closed(side.id)),
            (None, HostEvent::Closed(ws.id)),
            (None, HostEvent::Stop),
        ],
        answers: Vec::new(),
    };
    let mut dev = device();
    let mut io = SlowStore { polls: 3, saves: 0 };
    let (mut rx, mut tx) = ([0u8; 69], [0u8; 64]);
    let stopped = run_async(&mut dev, &mut host, &mut io, Seconds(0), &mut rx, &mut tx);
    assert_eq!(stopped, Ok(Stopped::Asked));
    assert_eq!(io.saves, 1);
    assert_eq!(dev.pending(), None);
    assert_eq!(
        dev.session().owner().map(|c| c.id),
        None,
        "channel 1 closed while the side request waited, yet it still owns the session"
    );
}
