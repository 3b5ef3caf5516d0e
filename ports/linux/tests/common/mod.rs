//! The `port-linux` binary on a loopback socket, driven like a client would.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

pub type Client = WebSocket<MaybeTlsStream<TcpStream>>;

/// A running `port-linux`, killed when dropped.
pub struct Port {
    pub child: Child,
    pub addr: String,
    /// Everything the process wrote to stderr (its log) so far.
    pub log: Arc<Mutex<String>>,
}

impl Port {
    /// Starts the binary on a free loopback port with `args`, and waits for it to listen.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Port {
        let mut child = spawn(args, env);
        let log = collect(child.stderr.take().unwrap());
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ws://")
            .unwrap_or_else(|| {
                panic!(
                    "unexpected first line {line:?}, log: {}",
                    log.lock().unwrap()
                )
            })
            .to_string();
        Port { child, addr, log }
    }

    /// A WebSocket client; retried for up to 5 s while the device refuses connections
    /// (all its connection slots taken).
    pub fn connect(&self) -> Client {
        let start = Instant::now();
        loop {
            match tungstenite::connect(format!("ws://{}", self.addr)) {
                Ok((socket, _)) => return socket,
                Err(err) if start.elapsed() < Duration::from_secs(5) => {
                    let _ = err;
                    thread::sleep(Duration::from_millis(10));
                }
                Err(err) => panic!("cannot connect to {}: {err}", self.addr),
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A field of `/proc/PID/status` (e.g. `Threads`, `VmHWM`), as a number.
    pub fn status(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status
            .lines()
            .find(|l| l.starts_with(&format!("{field}:")))
            .unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Waits (at most `limit`) for the process to end.
    pub fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        wait(&mut self.child, limit)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `port-linux` on a free port with `args`, without the demo: these tests start
/// from the empty factory configuration.
pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_port-linux"));
    cmd.args(["--ws", "127.0.0.1:0", "--no-demo"])
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Runs the binary with `args` until it exits (at most 10 s), returning its status and
/// all it wrote to stderr.
pub fn exit_status_and_log(args: &[&str]) -> (ExitStatus, String) {
    let mut child = spawn(args, &[]);
    let status = wait(&mut child, Duration::from_secs(10)).expect("exits at once");
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    (status, log)
}

/// Reads `from` to its end in a thread, into the returned buffer.
pub fn collect(mut from: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    log
}

pub fn wait(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        thread::sleep(Duration::from_millis(20));
    }
    None
}

pub fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The request APDU of a bare Tap frame (hex).
pub fn apdu(frame: &str) -> Vec<u8> {
    let frame = hex(frame);
    let mut apdu = vec![0xA2, if frame[0] == 1 { 0xCA } else { 0xDA }, 0, 0];
    apdu.push(frame.len() as u8);
    apdu.extend_from_slice(&frame);
    apdu
}

/// Sends one Tap frame (hex) and returns the response as hex.
pub fn tx(client: &mut Client, frame: &str) -> String {
    client.send(Message::Binary(apdu(frame).into())).unwrap();
    loop {
        match client.read().unwrap() {
            Message::Binary(bytes) => return to_hex(&bytes),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// The frame of a login (`POST /1024//0`) with `name` and `password`.
pub fn login(name: &str, password: &str) -> String {
    let mut frame = "020400ffff0000".to_string();
    for field in [name, password] {
        let mut padded = [0u8; 16];
        padded[..field.len()].copy_from_slice(field.as_bytes());
        frame += &to_hex(&padded);
    }
    frame
}

pub const GET_GROUP: &str = "010400ffff0007";
pub const LOGOUT: &str = "020400ffff0001";

/// A fresh directory under the system temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "lwm2m-port-linux-test-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
