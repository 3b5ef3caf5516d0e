//! A board's wiring, in memory: the async device loop over a serial host on one port
//! and a Modbus RTU slave on another, side by side ([`Beside`]): the master reads and
//! writes a variable through the slave, with the rights of the anonymous profile,
//! between the serial link's requests, and the serial link's session stays its own.

mod common;
use common::{Board, GET};

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use embassy_futures::select::{select, Either};
use lwm2m_core::acl::Access;
use lwm2m_core::config::ANONYMOUS;
use lwm2m_core::object::{Context, HandlerResult, Object, ResourceDef};
use lwm2m_core::wire::{Body, Method, Request, ResultCode};
use lwm2m_core::{Channel, ChannelId, ChannelKind, Config, Device, FrameLimits, Instant};
use transport_traits::modbus_slave::rtu::RtuSlave;
use transport_traits::run::asynch::{self, Alarm, BlockingIo};
use transport_traits::run::Clock;
use transport_traits::serial::{encode, encoded_len, SerialHost};
use transport_traits::side::Beside;

/// Object 1029 as far as the slave reaches it: variable 5 a 4-byte value anyone reads
/// and writes, variable 6 refused (`81`), any other missing (`84`).
struct Vars {
    value: [u8; 4],
}

impl Object for Vars {
    fn id(&self) -> u16 {
        1029
    }

    fn resources(&self) -> &'static [ResourceDef] {
        const T: &[ResourceDef] = &[ResourceDef::any(4)
            .get(Access::Anyone)
            .put(Access::Anyone)
            .answers(64)];
        T
    }

    fn handle(
        &mut self,
        _: &mut Context<'_>,
        req: &Request<'_>,
        body: &mut Body<'_>,
    ) -> HandlerResult {
        match (req.path.instance, req.method) {
            (5, Method::Get) => body.push(&self.value)?,
            (5, _) => {
                self.value = req.payload.try_into().map_err(|_| ResultCode::BadRequest)?;
            }
            (6, _) => return Err(ResultCode::Unauthorized),
            _ => return Err(ResultCode::NotFound),
        }
        Ok(ResultCode::Ok)
    }
}

/// One end of a line: what the device reads, what it wrote.
#[derive(Clone, Default)]
struct Line {
    rx: Rc<RefCell<VecDeque<u8>>>,
    tx: Rc<RefCell<Vec<u8>>>,
}

impl embedded_io_async::ErrorType for Line {
    type Error = core::convert::Infallible;
}

impl embedded_io_async::Read for Line {
    /// What the line holds, a few bytes at a time; waits (yields) while it is empty.
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        loop {
            let n = {
                let mut rx = self.rx.borrow_mut();
                let n = buf.len().min(rx.len()).min(3);
                for slot in &mut buf[..n] {
                    *slot = rx.pop_front().unwrap();
                }
                n
            };
            if n > 0 {
                return Ok(n);
            }
            embassy_futures::yield_now().await;
        }
    }
}

impl embedded_io_async::Write for Line {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.tx.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl Line {
    fn send(&self, bytes: &[u8]) {
        self.rx.borrow_mut().extend(bytes);
    }

    /// Waits (yielding to the device loop) until the device wrote `len` bytes, and
    /// takes them; then lets the loop run a while, to see that nothing more comes.
    async fn take(&self, len: usize) -> Vec<u8> {
        for _ in 0..100_000 {
            if self.tx.borrow().len() >= len {
                break;
            }
            embassy_futures::yield_now().await;
        }
        for _ in 0..1000 {
            embassy_futures::yield_now().await;
        }
        std::mem::take(&mut *self.tx.borrow_mut())
    }
}

/// Time stands still: no session times out.
struct Frozen;

impl Clock for Frozen {
    fn now(&mut self) -> Instant {
        Instant::ZERO
    }
}

impl Alarm for Frozen {
    async fn at(&mut self, _: Instant) {
        core::future::pending::<()>().await;
    }
}

const SERIAL: Channel = Channel::new(1, ChannelKind::Serial);
const SIDE: ChannelId = ChannelId(2);

fn framed(apdu: &[u8]) -> Vec<u8> {
    let mut out = vec![0; encoded_len(apdu.len())];
    let len = encode(apdu, &mut out).unwrap();
    out.truncate(len);
    out
}

fn rtu(bytes: &[u8]) -> Vec<u8> {
    let crc = crc::Crc::<u16>::new(&crc::CRC_16_MODBUS).checksum(bytes);
    let mut frame = bytes.to_vec();
    frame.extend(crc.to_le_bytes());
    frame
}

#[test]
fn a_master_reads_and_writes_a_variable_beside_the_serial_link() {
    let limits = FrameLimits {
        max_request: 64,
        max_response: 64,
    };
    let objects = (
        Board::open(),
        Vars {
            value: [0, 1, 2, 3],
        },
    );
    let mut device = Device::new(objects, Config::default(), Config::reset, limits);
    let (serial, modbus) = (Line::default(), Line::default());
    let host = SerialHost::<_, _, 80, { encoded_len(64) }>::new(serial.clone(), Frozen, SERIAL);
    let slave = RtuSlave::new(modbus.clone(), 1);
    let mut host = Beside::new(host, slave, SIDE, ANONYMOUS);
    let mut io = BlockingIo {
        target: lwm2m_core::target::NoTarget,
        store: lwm2m_core::storage::NoStore,
    };
    let (mut rx, mut tx) = ([0u8; 69], [0u8; 64]);
    let sn = framed(&[0x00, b'S', b'N', b'1', 0x90, 0x00]);
    let script = async {
        // The serial link takes the session.
        serial.send(&framed(&GET));
        assert_eq!(serial.take(sn.len()).await, sn);
        // Two registers of variable 5 read, then written, then read again.
        modbus.send(&rtu(&[1, 0x03, 0, 160, 0, 2]));
        assert_eq!(modbus.take(9).await, rtu(&[1, 0x03, 4, 0, 1, 2, 3]));
        let write = rtu(&[1, 0x10, 0, 160, 0, 2, 4, 0xDE, 0xAD, 0xBE, 0xEF]);
        modbus.send(&write);
        assert_eq!(modbus.take(8).await, rtu(&[1, 0x10, 0, 160, 0, 2]));
        // The serial link between, then noise and a frame for another unit on the bus,
        // then a read.
        serial.send(&framed(&GET));
        modbus.send(&[0x55, 0x01, 0x03, 0xFF]);
        modbus.send(&rtu(&[7, 0x03, 0, 160, 0, 2]));
        modbus.send(&rtu(&[1, 0x03, 0, 160, 0, 2]));
        assert_eq!(serial.take(sn.len()).await, sn);
        assert_eq!(
            modbus.take(9).await,
            rtu(&[1, 0x03, 4, 0xDE, 0xAD, 0xBE, 0xEF])
        );
        // Variable 6, refused; no variable at 224; not a block's start: ILLEGAL DATA
        // ADDRESS.
        for address in [192u8, 224, 161] {
            modbus.send(&rtu(&[1, 0x03, 0, address, 0, 1]));
            assert_eq!(modbus.take(5).await, rtu(&[1, 0x83, 0x02]), "{address}");
        }
        // A frame the map refuses by itself: answered at once.
        modbus.send(&rtu(&[1, 0x04, 0, 160, 0, 1]));
        assert_eq!(modbus.take(5).await, rtu(&[1, 0x84, 0x01]));
        serial.send(&framed(&GET));
        assert_eq!(serial.take(sn.len()).await, sn);
    };
    let mut clock = Frozen;
    let run = asynch::run(
        &mut device,
        &mut host,
        &mut io,
        &mut clock,
        &mut rx,
        &mut tx,
    );
    match embassy_futures::block_on(select(run, script)) {
        Either::First(stopped) => panic!("the loop stopped: {stopped:?}"),
        Either::Second(()) => {}
    }
    // The serial link still owns the session: the side requests never took it.
    assert_eq!(device.session().owner().map(|c| c.id), Some(SERIAL.id));
    assert_eq!(device.objects().1.value, [0xDE, 0xAD, 0xBE, 0xEF]);
}
