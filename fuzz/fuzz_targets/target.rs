//! Object 1027 and Modbus variables under hostile bodies: a device logged in as admin,
//! its target the multiplexer over a simulated memory and an in-memory Modbus server,
//! driven with requests built from the input on `/1027//1` (the protocol), `/1027//21`
//! (the protocol configuration), `/1027//33` (`MemoryInfo`, memory read and write),
//! `/1027//37`, `/1027//38` (`ModbusOptions`, Modbus write and read), `/1027//3`, `/20`,
//! the raw serial line (`/1027//34` send and receive or send, `/35`, `/43`, over
//! `RawSerial` and a peer that echoes what it is sent, its bytes from the input), `/7`
//! and `/30`, and variables of any address and type read and written on the target.
//!
//! Checked: nothing panics; every answer is `status | data | 90 00` with a known status,
//! data only on success, within the response's room; the server is reached only within
//! its tables and the protocol's limits (a request the device sends beyond them is a
//! finding); the memory only within the simulation (`RamTarget` refuses the rest); a raw
//! serial answer never beyond `RAW_ANSWER`.
//!
//! Input layout: records `op u8 | len u8 | len bytes` where `op % 12` picks the request
//! (the bytes its body: for a variable, `id u8 | address 4 | type u8 | value...`; for
//! op 11, bytes the serial peer sends unasked).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lwm2m_core::target::{ModbusTable as Table, TargetMux};
use lwm2m_core::wire::ResultCode;
use lwm2m_core::{Channel, ChannelKind, Config, Device, FrameLimits, Instant};
use lwm2m_objects::target::RAW_ANSWER;
use lwm2m_objects::{standard_objects, DeviceInfo, NoHooks, StandardObjects};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use target_traits::modbus::{self, Modbus};
use target_traits::serial::RawSerial;
use target_traits::{ErrorKind, ErrorType, RamTarget, Vcc};

const LIMITS: FrameLimits = FrameLimits {
    max_request: 1024,
    max_response: 1024,
};
const WS: Channel = Channel::new(1, ChannelKind::WebSocket);
/// Items of each table of the server.
const ITEMS: usize = 300;

/// A Modbus server with every table; a request outside what the protocol allows is a
/// finding (the device must never send one).
struct Server {
    bits: [bool; ITEMS],
    words: [u16; ITEMS],
}

impl ErrorType for Server {
    type Error = ErrorKind;
}

impl Modbus for Server {
    fn read(
        &mut self,
        _unit: u8,
        table: Table,
        address: u16,
        count: u16,
        out: &mut [u8],
    ) -> Result<(), ErrorKind> {
        assert_eq!(modbus::check(table, count, out.len(), false), Ok(()));
        let end = usize::from(address) + usize::from(count);
        if end > ITEMS {
            return Err(modbus::exception_kind(2));
        }
        out.fill(0);
        for (i, at) in (usize::from(address)..end).enumerate() {
            if table.is_bits() {
                if self.bits[at] {
                    out[i / 8] |= 1 << (i % 8);
                }
            } else {
                out[2 * i..2 * i + 2].copy_from_slice(&self.words[at].to_be_bytes());
            }
        }
        Ok(())
    }

    fn write(
        &mut self,
        _unit: u8,
        table: Table,
        address: u16,
        count: u16,
        data: &[u8],
    ) -> Result<(), ErrorKind> {
        assert_eq!(modbus::check(table, count, data.len(), true), Ok(()));
        let end = usize::from(address) + usize::from(count);
        if end > ITEMS {
            return Err(modbus::exception_kind(2));
        }
        for (i, at) in (usize::from(address)..end).enumerate() {
            if table.is_bits() {
                self.bits[at] = data[i / 8] >> (i % 8) & 1 != 0;
            } else {
                self.words[at] = u16::from_be_bytes([data[2 * i], data[2 * i + 1]]);
            }
        }
        Ok(())
    }
}

/// The serial peer's end of the line: it echoes what it is sent (a loopback plug), and
/// sends what the input says unasked.
#[derive(Clone, Default)]
struct Echo(Rc<RefCell<VecDeque<u8>>>);

impl embedded_io::ErrorType for Echo {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Read for Echo {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let mut inbound = self.0.borrow_mut();
        let n = buf.len().min(inbound.len());
        for slot in &mut buf[..n] {
            *slot = inbound.pop_front().unwrap();
        }
        Ok(n)
    }
}

impl embedded_io::ReadReady for Echo {
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        Ok(!self.0.borrow().is_empty())
    }
}

impl embedded_io::Write for Echo {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.0.borrow_mut().extend(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Time passes at once.
struct NoDelay;

impl embedded_hal::delay::DelayNs for NoDelay {
    fn delay_ns(&mut self, _: u32) {}
}

/// A supply of 3.3 V.
struct Supply;

impl ErrorType for Supply {
    type Error = ErrorKind;
}

impl Vcc for Supply {
    fn millivolts(&mut self) -> Result<u16, ErrorKind> {
        Ok(3300)
    }
}

type Mux = TargetMux<RamTarget<256>, Server, RawSerial<Echo, NoDelay, 64>, Supply>;

/// The APDU of `method` on `/object/instance/resource` with `payload`.
fn apdu(method: u8, object: u16, instance: u16, resource: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![method];
    for v in [object, instance, resource] {
        frame.extend_from_slice(&v.to_be_bytes());
    }
    frame.extend_from_slice(payload);
    let ins = if method == 1 { 0xCA } else { 0xDA };
    let mut out = vec![0xA2, ins, 0, 0, frame.len() as u8];
    out.extend_from_slice(&frame);
    out
}

fn send(device: &mut Device<StandardObjects<NoHooks>, Mux>, request: &[u8]) -> Vec<u8> {
    let mut out = [0u8; LIMITS.max_response as usize];
    let outcome = device.handle(WS, request, Instant::ZERO, &mut out);
    let answer = &out[..outcome.len];
    assert!(
        answer.len() >= 3 && answer.ends_with(&[0x90, 0x00]),
        "{answer:02x?}"
    );
    let status = answer[0];
    assert!(ResultCode::from_u8(status).is_some(), "{status:02x}");
    if status & 0x80 != 0 {
        assert_eq!(answer.len(), 3, "an error carries no data: {answer:02x?}");
    }
    answer.to_vec()
}

fuzz_target!(|data: &[u8]| {
    let info = DeviceInfo {
        manufacturer: "IoTize",
        flavor: "fuzz",
        serial: heapless::String::new(),
        firmware_version: "1.0.0",
    };
    let echo = Echo::default();
    let target = TargetMux::new(
        Some(RamTarget::new(0x2000_0000)),
        Some(Server {
            bits: [false; ITEMS],
            words: [0; ITEMS],
        }),
    )
    .with_serial(Some(RawSerial::new(echo.clone(), NoDelay)))
    .with_vcc(Some(Supply));
    let mut device = Device::new(
        standard_objects(info, NoHooks),
        Config::default(),
        Config::reset,
        LIMITS,
    )
    .with_target(target);
    let mut login = vec![0x02, 0x04, 0x00, 0xff, 0xff, 0x00, 0x00];
    for field in [b"admin", b"admin"] {
        let mut padded = [0u8; 16];
        padded[..5].copy_from_slice(field);
        login.extend_from_slice(&padded);
    }
    let mut frame = vec![0xA2, 0xDA, 0, 0, login.len() as u8];
    frame.extend_from_slice(&login);
    send(&mut device, &frame);
    let mut rest = data;
    while let [op, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (body, next) = tail.split_at(n);
        rest = next;
        let request = match op % 12 {
            0 => apdu(3, 1027, 0xFFFF, 1, body),
            1 => apdu(3 - (op >> 7), 1027, 0xFFFF, 21, body),
            2 => apdu(1, 1027, 0xFFFF, 33, body),
            3 => apdu(2, 1027, 0xFFFF, 33, body),
            4 => apdu(1, 1027, 0xFFFF, 38, body),
            5 => apdu(2, 1027, 0xFFFF, 37, body),
            6 => apdu(
                if op & 0x80 != 0 { 2 } else { 1 },
                1027,
                0xFFFF,
                3 + (op >> 7) as u16 * 17,
                body,
            ),
            8 => apdu(1 + (op >> 7), 1027, 0xFFFF, 34, body),
            9 => apdu(1, 1027, 0xFFFF, if op & 0x80 != 0 { 43 } else { 35 }, body),
            10 => apdu(1 + (op >> 7), 1027, 0xFFFF, 7 + (op >> 7) as u16 * 23, body),
            11 => {
                echo.0.borrow_mut().extend(body);
                continue;
            }
            _ => {
                // A variable: created, placed, typed, then read or written.
                let [id, a0, a1, a2, a3, var_type, value @ ..] = body else {
                    continue;
                };
                let id = u16::from(*id);
                send(&mut device, &apdu(2, 1029, id, 0xFFFF, &[]));
                send(&mut device, &apdu(3, 1029, id, 0, &[*a0, *a1, *a2, *a3]));
                send(&mut device, &apdu(3, 1029, id, 1, &[*var_type]));
                if value.is_empty() {
                    apdu(1, 1029, id, 4, &[])
                } else {
                    apdu(3, 1029, id, 4, value)
                }
            }
        };
        if request.len() <= 5 + usize::from(LIMITS.max_request) && request.len() - 5 <= 255 {
            let answer = send(&mut device, &request);
            if matches!(op % 12, 8 | 9) {
                assert!(answer.len() - 3 <= usize::from(RAW_ANSWER), "{answer:02x?}");
            }
        }
    }
});
