//! A board firmware booted in QEMU, reached through `port-linux --bridge-serial` over
//! WebSocket: what the real client does first (device information, login, the
//! configuration of a variable, its value written and read, logout), a reboot, the
//! board's clock (the inactivity period), and a storm of malformed input on the serial
//! line, after which the board answers the next good frame.
//!
//! Ignored by `cargo test`: `cargo xtask test` builds the board and runs it with
//! `LWM2M_BOARD_ELF` (the firmware) and `LWM2M_BOARD_MACHINE` (the QEMU machine, also the
//! board's `/3//1`) set, QEMU installed.
//!
//! Then the deepest stack the board used: the firmware paints the RAM between its
//! static data and its stack at boot (`port_common::stack`); at the end the test dumps
//! that RAM through QEMU's monitor and finds where the paint stops (at least that much
//! stack: the paths driven here). It fails if less than 1 KiB of paint is left above the
//! static data. `LWM2M_BOARD_STACK` gives the range
//! (`0xLOW..0xHIGH`: cortex-m-rt's `_stack_end` and `_stack_start`); the figure is
//! written to the file `LWM2M_BOARD_REPORT` names, if set (`stack=N`).
//! `LWM2M_BOARD_LOADER` (`file=F,addr=A`), if set, loads `F` at `A` as a programmer
//! would (the erased pages of a store the image leaves out).
//!
//! QEMU serves the board's UART on a listening socket the test binds first and hands it
//! (`-chardev socket,fd=N,server=on,wait=on`: no port to guess, no race). Between QEMU
//! and the bridge the test relays the line, so that it can write to the board directly.
//!
//! With `LWM2M_BOARD_MODBUS` set (a board with a Modbus RTU slave on its second UART:
//! `mps2-an386`), QEMU serves that UART on a second socket too, and a real Modbus master
//! — pymodbus' TCP client with its RTU framer (`tests/modbus/client.py --rtu`, the Python
//! `LWM2M_PYTHON` names) — reads and writes a variable through it, and is refused one
//! the anonymous profile may not read, while the client's session over the bridge stays
//! logged in and answered.

mod common;
use common::*;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use transport_traits::serial::{encode, encoded_len};

/// QEMU running the board, killed when dropped.
struct Qemu {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Qemu {
    /// Boots `elf` on `machine`, its first UART served on `line`, its second on
    /// `modbus` if given, and its monitor on `monitor` (listening sockets).
    fn boot(
        machine: &str,
        elf: &str,
        line: &TcpListener,
        modbus: Option<&TcpListener>,
        monitor: &TcpListener,
    ) -> Qemu {
        let (fd, monitor_fd) = (line.as_raw_fd(), monitor.as_raw_fd());
        // The child inherits the sockets: no close-on-exec while it is spawned (this
        // file has one test, so no other child is spawned meanwhile).
        let mut socks = vec![
            socket2::SockRef::from(line),
            socket2::SockRef::from(monitor),
        ];
        socks.extend(modbus.map(socket2::SockRef::from));
        // The second UART: a master connects when it likes (`wait=off`).
        let second_uart = match modbus {
            Some(modbus) => vec![
                "-chardev".to_string(),
                format!(
                    "socket,id=modbus,fd={},server=on,wait=off",
                    modbus.as_raw_fd()
                ),
                "-serial".to_string(),
                "chardev:modbus".to_string(),
            ],
            None => Vec::new(),
        };
        for sock in &socks {
            sock.set_cloexec(false).unwrap();
        }
        let spawned = Command::new("qemu-system-arm")
            .args([
                "-M",
                machine,
                "-nographic",
                "-monitor",
                "none",
                "-kernel",
                elf,
            ])
            .arg("-chardev")
            .arg(format!("socket,id=line,fd={fd},server=on,wait=on"))
            .args(["-serial", "chardev:line"])
            .args(second_uart)
            .arg("-chardev")
            .arg(format!(
                "socket,id=monitor,fd={monitor_fd},server=on,wait=off"
            ))
            .args(["-mon", "chardev=monitor,mode=readline"])
            // Flash the image leaves out, as the board's programmer leaves it (erased).
            .args(
                std::env::var("LWM2M_BOARD_LOADER")
                    .map(|spec| vec!["-device".to_string(), format!("loader,{spec}")])
                    .unwrap_or_default(),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn();
        for sock in &socks {
            sock.set_cloexec(true).unwrap();
        }
        let mut child = spawned.expect("qemu-system-arm (Debian package qemu-system-arm)");
        let log = collect(child.stderr.take().unwrap());
        Qemu { child, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

/// `len` bytes of the board's memory at `address`, saved by QEMU's monitor (at
/// `monitor`) into a file and read back.
fn dump(monitor: std::net::SocketAddr, address: u32, len: u32) -> Vec<u8> {
    let mut conn = TcpStream::connect(monitor).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let prompt = |conn: &mut TcpStream| {
        let mut seen = Vec::new();
        let mut byte = [0u8; 1];
        while !seen.ends_with(b"(qemu) ") {
            assert_eq!(conn.read(&mut byte).unwrap(), 1, "monitor closed: {seen:?}");
            seen.push(byte[0]);
        }
    };
    prompt(&mut conn);
    let file = std::env::temp_dir().join(format!("lwm2m-board-ram-{}", std::process::id()));
    let _ = std::fs::remove_file(&file);
    let command = format!("memsave {address:#x} {len} \"{}\"\n", file.display());
    conn.write_all(command.as_bytes()).unwrap();
    // The command echoed, then the prompt once it is done.
    prompt(&mut conn);
    let ram = std::fs::read(&file).unwrap();
    let _ = std::fs::remove_file(&file);
    assert_eq!(ram.len(), len as usize, "memsave");
    ram
}

/// What `port_common::stack` paints the free RAM with.
const PAINT: u32 = 0xA5A5_A5A5;

/// The paint that must be left above the static data.
const STACK_MARGIN: u32 = 1024;

/// The deepest stack the board used, from the painted RAM `low..high` (`high` the top
/// of the stack): how far down from `high` the paint is gone. A lower bound of what the
/// board can use (the paths this test drives, the interrupts as they came).
fn peak_stack(monitor: std::net::SocketAddr, low: u32, high: u32) -> u32 {
    let ram = dump(monitor, low, high - low);
    let painted = ram
        .chunks_exact(4)
        .take_while(|word| u32::from_le_bytes([word[0], word[1], word[2], word[3]]) == PAINT)
        .count() as u32;
    // A margin: a frame may skip words it never writes, so paint just above the static
    // data does not prove the stack stayed off them.
    assert!(
        4 * painted >= STACK_MARGIN,
        "{} bytes of paint left between {low:#x} and {high:#x}: the stack came within \
         {STACK_MARGIN} bytes of the static data",
        4 * painted
    );
    high - low - 4 * painted
}

/// `LWM2M_BOARD_STACK`: `0xLOW..0xHIGH`.
fn stack_range() -> (u32, u32) {
    let range = std::env::var("LWM2M_BOARD_STACK").expect("LWM2M_BOARD_STACK: 0xLOW..0xHIGH");
    let (low, high) = range.split_once("..").expect("0xLOW..0xHIGH");
    let parse = |s: &str| u32::from_str_radix(s.trim_start_matches("0x"), 16).expect("hex");
    let (low, high) = (parse(low), parse(high));
    assert!(low < high, "{range}");
    (low, high)
}

/// The serial line between QEMU and the bridge, relayed by the test: `to_board` writes
/// to the board directly.
struct Relay {
    /// Where the bridge connects (`tcp:ADDR`).
    addr: String,
    to_board: Arc<Mutex<TcpStream>>,
}

impl Relay {
    fn start(board: TcpStream) -> Relay {
        let bridge_side = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = bridge_side.local_addr().unwrap().to_string();
        board.set_nodelay(true).unwrap();
        let mut from_board = board.try_clone().unwrap();
        let to_board = Arc::new(Mutex::new(board));
        let writer = to_board.clone();
        thread::spawn(move || {
            // One bridge, for the whole test.
            let Ok((bridge, _)) = bridge_side.accept() else {
                return;
            };
            bridge.set_nodelay(true).unwrap();
            let mut from_bridge = bridge.try_clone().unwrap();
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = from_bridge.read(&mut buf) {
                    if n == 0 || writer.lock().unwrap().write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
            let mut to_bridge = bridge;
            let mut buf = [0u8; 4096];
            while let Ok(n) = from_board.read(&mut buf) {
                if n == 0 || to_bridge.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
        Relay { addr, to_board }
    }

    /// Writes `bytes` to the board, between two frames of the bridge.
    fn write_to_board(&self, bytes: &[u8]) {
        self.to_board.lock().unwrap().write_all(bytes).unwrap();
    }
}

fn framed(apdu: &[u8]) -> Vec<u8> {
    let mut out = vec![0; encoded_len(apdu.len())];
    let len = encode(apdu, &mut out).unwrap();
    out.truncate(len);
    out
}

/// A small deterministic generator (xorshift32): the storm is the same every run.
struct Noise(u32);

impl Noise {
    fn next(&mut self) -> u8 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        (self.0 >> 24) as u8
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next()).collect()
    }
}

/// Malformed serial input, none of it a frame the board takes (the odds that random
/// bytes between two delimiters carry their CRC are 2^-32 a frame): random bytes, dense
/// and sparse in delimiters, frames with a bad CRC or cut short, COBS groups cut by a
/// delimiter, frames too short for a CRC, frames longer than the board's buffer with a
/// good CRC, and a frame that never ends.
fn storm() -> Vec<u8> {
    let mut noise = Noise(0x1234_5678);
    let mut storm = noise.bytes(3000);
    for _ in 0..200 {
        // Short random frames.
        let len = 1 + usize::from(noise.next() % 24);
        storm.push(0);
        storm.extend(noise.bytes(len).into_iter().map(|b| b.max(1)));
    }
    storm.push(0);
    let request = apdu("010400ffff0007");
    for i in 0..50 {
        let mut frame = framed(&request);
        let end = frame.len() - 1;
        match i % 3 {
            // A bit flipped (never into a delimiter).
            0 => {
                let at = 1 + i % (end - 1);
                frame[at] ^= 1 << (i % 7);
                if frame[at] == 0 {
                    frame[at] = 0x55;
                }
            }
            // Cut short.
            1 => frame.truncate(frame.len() / 2),
            // Its CRC left out.
            _ => {
                frame.drain(end - 4..end);
            }
        }
        storm.extend(frame);
    }
    storm.extend([0x00, 0x05, 0x01, 0x02, 0x00]); // a COBS group cut by a delimiter
    storm.extend([0x00, 0x03, 0x01, 0x02, 0x00]); // shorter than a CRC
    for len in [262, 300, 1000, 3000] {
        // Good frames, longer than a request (256 bytes and its header).
        let mut long = apdu("010400ffff0007");
        long.resize(len, 0x42);
        storm.extend(framed(&long));
    }
    storm.extend(noise.bytes(2000).into_iter().map(|b| b.max(1))); // never ends
    storm
}

/// What the real Modbus master (pymodbus over RTU framing, `tests/modbus/client.py`)
/// printed against the board's second UART on `port`, or the error it exited with.
fn master(python: &str, port: u16, args: &[&str]) -> Result<String, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/modbus/client.py");
    let out = Command::new(python)
        .arg(script)
        .arg("--rtu")
        .arg(port.to_string())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the Python of LWM2M_PYTHON");
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).trim().to_string()),
        false => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
    }
}

/// The Modbus RTU slave of the board's second UART, through a real master, while the
/// client's session (admin, over the bridge) goes on: variable 5 (an in-device UINT32 in
/// bundle 1, which anonymous may read and write) read, written, read back; variable 6
/// (in bundle 2, no right for anonymous) and a register that starts no block refused
/// with ILLEGAL DATA ADDRESS. The session is still admin's after, answered between the
/// master's requests, and sees the master's write.
fn modbus_slave(client: &mut Client, python: &str, port: u16) {
    for frame in [
        "020404 0001 ffff",          // bundle 1
        "030404 0001 0000 410003",   // anonymous reads and writes it
        "020404 0002 ffff",          // bundle 2, no right for anonymous
        "020405 0005 ffff",          // variable 5,
        "030405 0005 0001 e3",       // an in-device UINT32,
        "030405 0005 0006 0001",     // in bundle 1,
        "030405 0005 0004 00010203", // its value
        "020405 0006 ffff",          // variable 6,
        "030405 0006 0001 e2",       // an in-device UINT16,
        "030405 0006 0006 0002",     // in bundle 2
    ] {
        let frame: String = frame.split_whitespace().collect();
        assert_eq!(tx(client, &frame), "009000", "{frame}");
    }
    let started = Instant::now();
    // Variable 5 is the two registers at 5 × 32.
    assert_eq!(
        master(python, port, &["read", "1", "160", "2"]),
        Ok("1\n515".into())
    );
    assert_eq!(tx(client, GET_GROUP), "00ffff9000", "the session, between");
    assert_eq!(
        master(python, port, &["write", "1", "160", "0xdead", "0xbeef"]),
        Ok(String::new())
    );
    assert_eq!(
        master(python, port, &["read", "1", "160", "2"]),
        Ok("57005\n48879".into())
    );
    for (address, what) in [("192", "variable 6, no right"), ("161", "no block's start")] {
        let refused = master(python, port, &["read", "1", address, "1"]);
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.contains("exception_code=2")),
            "{what}: {refused:?}"
        );
    }
    eprintln!("modbus slave: 5 master requests in {:?}", started.elapsed());
    // The session is undisturbed: still admin's, and it sees the master's write.
    assert_eq!(tx(client, GET_GROUP), "00ffff9000", "the session, after");
    assert_eq!(tx(client, "01040500050004"), "00deadbeef9000");
}

fn ascii(answer_hex: &str) -> String {
    let bytes = hex(answer_hex);
    assert!(
        bytes.len() >= 3 && bytes[0] == 0 && bytes[bytes.len() - 2..] == [0x90, 0x00],
        "not a good answer: {answer_hex}"
    );
    String::from_utf8_lossy(&bytes[1..bytes.len() - 2])
        .trim_end_matches('\0')
        .to_string()
}

#[test]
#[ignore = "needs a board firmware and QEMU: cargo xtask test runs it"]
fn a_board_in_qemu_serves_the_client_through_the_bridge() {
    let elf = std::env::var("LWM2M_BOARD_ELF").expect("LWM2M_BOARD_ELF: the firmware");
    let machine = std::env::var("LWM2M_BOARD_MACHINE").expect("LWM2M_BOARD_MACHINE");
    let (low, high) = stack_range();
    let line = TcpListener::bind("127.0.0.1:0").unwrap();
    let monitor = TcpListener::bind("127.0.0.1:0").unwrap();
    let monitor_addr = monitor.local_addr().unwrap();
    // The Modbus RTU slave's UART, and the Python of the master.
    let modbus = std::env::var_os("LWM2M_BOARD_MODBUS").map(|_| {
        let python = std::env::var("LWM2M_PYTHON").expect("LWM2M_PYTHON: pymodbus' Python");
        (TcpListener::bind("127.0.0.1:0").unwrap(), python)
    });
    let started = Instant::now();
    let qemu = Qemu::boot(
        &machine,
        &elf,
        &line,
        modbus.as_ref().map(|(socket, _)| socket),
        &monitor,
    );
    drop(monitor);
    let relay = Relay::start(TcpStream::connect(line.local_addr().unwrap()).unwrap());
    drop(line);
    let port = Port::start(&["--bridge-serial", &format!("tcp:{}", relay.addr)], &[]);
    let mut client = port.connect();
    let context = |what: &str| format!("{what}; QEMU: {}; bridge: {}", qemu.log(), port.log());

    // Device information, as the client reads it first.
    let flavor = ascii(&tx(&mut client, "010003ffff0001"));
    assert_eq!(flavor, machine, "{}", context("/3//1"));
    let serial = ascii(&tx(&mut client, "010003ffff0002"));
    assert!(!serial.is_empty(), "{}", context("/3//2"));
    eprintln!(
        "{machine}: serial {serial}, first answer {:?} after QEMU started",
        started.elapsed()
    );
    assert_eq!(tx(&mut client, GET_GROUP), "0000009000", "anonymous");
    assert_eq!(tx(&mut client, &login("admin", "admin")), "009000");
    assert_eq!(tx(&mut client, GET_GROUP), "00ffff9000", "admin");
    // A first boot on an erased store: no error to report in `/3//11`.
    assert_eq!(
        tx(&mut client, "010003ffff000b"),
        "00000000009000",
        "/3//11"
    );

    // A variable: created, placed in the target memory as a UINT32, written, read.
    for frame in [
        "020405 0001 ffff",
        "030405 0001 0000 20000000",
        "030405 0001 0001 23",
    ] {
        let frame: String = frame.split_whitespace().collect();
        assert_eq!(tx(&mut client, &frame), "009000", "{frame}");
    }
    assert_eq!(tx(&mut client, "030405000100045758595a"), "009000");
    assert_eq!(tx(&mut client, "01040500010004"), "005758595a9000");

    if let Some((socket, python)) = &modbus {
        modbus_slave(&mut client, python, socket.local_addr().unwrap().port());
    }

    // The storm, written to the board directly; then the next good frame is answered,
    // and the session and the variable are intact.
    let storm = storm();
    let stormed = Instant::now();
    relay.write_to_board(&storm);
    assert_eq!(
        tx(&mut client, GET_GROUP),
        "00ffff9000",
        "{}",
        context("after the storm")
    );
    eprintln!(
        "{machine}: {} bytes of storm, answered after {:?}",
        storm.len(),
        stormed.elapsed()
    );
    assert_eq!(tx(&mut client, "01040500010004"), "005758595a9000");

    // Saved, then a reboot: the configuration comes back from the flash, the session
    // does not.
    assert_eq!(tx(&mut client, "030400ffff000a01020003"), "009000", "save");
    assert_eq!(tx(&mut client, "020003ffff0004"), "009000", "reboot");
    assert_eq!(tx(&mut client, GET_GROUP), "0000009000", "after the reboot");
    assert_eq!(tx(&mut client, &login("admin", "admin")), "009000");
    assert_eq!(tx(&mut client, "01040500010001"), "00239000", "type kept");
    assert_eq!(
        tx(&mut client, "01040500010004"),
        "005758595a9000",
        "target kept"
    );

    assert_eq!(tx(&mut client, LOGOUT), "009000");
    assert_eq!(tx(&mut client, GET_GROUP), "0000009000", "logged out");

    // The board's time base: a session idle for the inactivity period (3 s) ends, one
    // idle for a third of it does not (with room for a loaded host).
    assert_eq!(tx(&mut client, &login("admin", "admin")), "009000");
    assert_eq!(tx(&mut client, "030400ffff00220003"), "009000");
    thread::sleep(Duration::from_millis(1000));
    assert_eq!(tx(&mut client, GET_GROUP), "00ffff9000", "idle 1 s of 3");
    thread::sleep(Duration::from_millis(3300));
    assert_eq!(tx(&mut client, GET_GROUP), "0000009000", "idle 3.3 s of 3");

    // The deepest stack of all this, boot included.
    let stack = peak_stack(monitor_addr, low, high);
    eprintln!(
        "{machine}: peak stack {stack} bytes of {} between the static data and the top",
        high - low
    );
    if let Ok(report) = std::env::var("LWM2M_BOARD_REPORT") {
        std::fs::write(report, format!("stack={stack}\n")).unwrap();
    }
    drop(client);
    drop(port);
    drop(qemu);
}
