//! `cargo xtask modbus-bench [READS]`: how fast a client reads a Modbus variable through
//! the desktop device, end to end over loopback (a WebSocket request in, a Modbus TCP
//! transaction out to the real pymodbus server of the tests, the answer back), beside
//! the server's own round trip for the same register read by a bare pymodbus client.
//! A report: nothing is asserted of the times (the goal, at most 1.2 times the bare
//! client's, is printed beside them).
//!
//! Two more rows say where the device's time goes: an in-device request over the same
//! WebSocket (the link and the engine alone) and the same register read over a raw
//! Modbus TCP socket from Rust (the server alone, without a Python client).
//!
//! On two CPUs the figures depend on where the scheduler puts the three processes: a
//! wake-up on the other CPU costs far more than one on the same CPU, and the device's
//! read has twice the hand-overs of the bare client's (client → device → server and
//! back). `taskset -c 0 cargo xtask modbus-bench` runs everything on one CPU: steadier
//! figures, every hand-over a local one.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tungstenite::{Message, WebSocket};

use crate::{cargo, python_with_pymodbus, root, run, Result};

/// Timed reads of each kind per round, unless the command line says otherwise.
const DEFAULT_READS: u32 = 2000;
/// Untimed reads before the first round (connections up, caches and branch predictors warm).
const WARM_UP: u32 = 200;
/// Rounds of every measurement, taken in turn. A reader's figure is its best round: on a
/// machine doing other work too, a slower round is one disturbed (the median round is
/// printed beside it).
const ROUNDS: usize = 5;
/// The measured variable: UINT16 on holding register 40 of unit 1, which the server
/// holds as 1040 (`ports/linux/tests/modbus/server.py`).
const VARIABLE: u16 = 1;
const UNIT: u8 = 1;
const REGISTER: u16 = 40;
const REGISTER_VALUE: u16 = 1040;
/// How long a process has to print its ready line, and a peer to answer.
const READY_WITHIN: Duration = Duration::from_secs(20);
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// The answer of a request that returns no data: status 00, then `90 00`.
const OK: [u8; 3] = [0x00, 0x90, 0x00];

pub fn modbus_bench(args: &[String]) -> Result {
    let reads = match args {
        [] => DEFAULT_READS,
        [n] => n
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or("usage: cargo xtask modbus-bench [READS]")?,
        _ => return Err("usage: cargo xtask modbus-bench [READS]".into()),
    };
    stop_children_on_signal()?;
    run(
        "build desktop device",
        cargo().args(["build", "--release", "-p", "port-linux"]),
    )?;
    let python = python_with_pymodbus()?;
    let scripts = root().join("ports/linux/tests/modbus");

    let server = Process::start(
        "the Modbus server (server.py)",
        Command::new(&python)
            .arg(scripts.join("server.py"))
            .arg("0"),
    )?;
    let server_port: u16 = server
        .ready("listening ")?
        .parse()
        .map_err(|e| format!("server.py: its port: {e}"))?;
    let device = Process::start(
        "port-linux",
        Command::new(root().join("target/release/port-linux"))
            .args(["--modbus", &format!("127.0.0.1:{server_port}")])
            .args(["--ws", "127.0.0.1:0", "--no-demo"]),
    )?;
    let ws_addr = device.ready("listening on ws://")?;

    let mut client = DeviceClient::connect(&ws_addr)?;
    client.configure()?;
    let mut raw = RawModbus::connect(server_port)?;
    let variable = apdu(1, 1029, VARIABLE, 4, &[]);
    let mut value = vec![0x00];
    value.extend_from_slice(&REGISTER_VALUE.to_be_bytes());
    value.extend_from_slice(&[0x90, 0x00]);
    // An in-device resource: the serial number (/3//2), answered without target I/O.
    let in_device = apdu(1, 3, 0xFFFF, 2, &[]);
    for _ in 0..WARM_UP {
        client.expect(&variable, &value)?;
        client.expect_ok(&in_device)?;
        raw.read()?;
    }

    println!("\n==> {ROUNDS} rounds of {reads} reads of each reader (µs per read: the mean)");
    let mut rounds = Figures::default();
    for round in 1..=ROUNDS {
        let device_us = per_read(reads, || client.expect(&variable, &value))?;
        let in_device_us = per_read(reads, || client.expect_ok(&in_device))?;
        let raw_us = per_read(reads, || raw.read())?;
        let pymodbus_us = bare_pymodbus(&python, &scripts, server_port, reads)?;
        println!("    round {round}: device {device_us}; bare pymodbus {pymodbus_us:.1}");
        println!("             in-device request {in_device_us}; raw Modbus TCP {raw_us}");
        rounds.device.push(device_us);
        rounds.pymodbus.push(pymodbus_us);
        rounds.in_device.push(in_device_us);
        rounds.raw.push(raw_us);
    }
    drop(client);
    drop(device);
    drop(server);

    let device = Summary::of(rounds.device.iter().map(|s| s.mean));
    let pymodbus = Summary::of(rounds.pymodbus.iter().copied());
    let in_device = Summary::of(rounds.in_device.iter().map(|s| s.mean));
    let raw = Summary::of(rounds.raw.iter().map(|s| s.mean));
    let p50 = |samples: &[Sample]| median(&mut samples.iter().map(|s| s.p50).collect::<Vec<_>>());
    let (device_p50, in_device_p50, raw_p50) = (
        p50(&rounds.device),
        p50(&rounds.in_device),
        p50(&rounds.raw),
    );
    let ratio = device.best / pymodbus.best;
    // The CPUs this command may run on (`taskset` narrows them), which its children share.
    let cpus = match thread::available_parallelism().map_or(0, |n| n.get()) {
        1 => "1 CPU".to_string(),
        n => format!("{n} CPUs"),
    };
    println!(
        "\nA UINT16 variable on holding register {REGISTER} of unit {UNIT}, read over \
         loopback ({cpus}; {ROUNDS} rounds of {reads} reads):\n"
    );
    println!("| reader | µs per read, best round | reads per second | µs per read, median round |");
    println!("|---|---:|---:|---:|");
    let row = |what: &str, us: Summary| {
        println!(
            "| {what} | {:.1} | {:.0} | {:.1} |",
            us.best,
            1e6 / us.best,
            us.median
        )
    };
    row(
        &format!("device: `GET /1029/{VARIABLE}/4` over WebSocket, Modbus TCP to the server"),
        device,
    );
    row(
        "bare pymodbus client, the same register (`client.py bench`)",
        pymodbus,
    );
    println!(
        "| **ratio device / bare pymodbus** (goal ≤ 1.2) | **{ratio:.2}** | | {:.2} |",
        device.median / pymodbus.median
    );
    println!(
        "\nWhere the device's time goes (the parts add up when every reader ran with the \
         same placement of the processes, as on one CPU):\n"
    );
    println!("| part | µs per read, best round | median read, µs |");
    println!("|---|---:|---:|");
    let part = |what: &str, us: f64, p50: f64| println!("| {what} | {us:.1} | {p50:.1} |");
    part("the device's read, end to end", device.best, device_p50);
    part(
        "WebSocket and engine: an in-device request (`GET /3//2`)",
        in_device.best,
        in_device_p50,
    );
    part(
        "the server: the same register over a raw Modbus TCP socket from Rust",
        raw.best,
        raw_p50,
    );
    part(
        "the rest: the device's Modbus master beyond a bare socket, wake-ups",
        device.best - in_device.best - raw.best,
        device_p50 - in_device_p50 - raw_p50,
    );
    println!(
        "\nmodbus-bench: device_us={:.1} server_us={:.1} ratio={ratio:.2}",
        device.best, pymodbus.best
    );
    Ok(())
}

/// Each reader's figures of every round.
#[derive(Default)]
struct Figures {
    device: Vec<Sample>,
    pymodbus: Vec<f64>,
    in_device: Vec<Sample>,
    raw: Vec<Sample>,
}

/// A reader's mean µs per read over the rounds: the best round (the least disturbed by
/// the machine's other work: the one reported) and the median one.
#[derive(Clone, Copy)]
struct Summary {
    best: f64,
    median: f64,
}

impl Summary {
    fn of(means: impl Iterator<Item = f64>) -> Summary {
        let mut means: Vec<f64> = means.collect();
        let median = median(&mut means);
        Summary {
            best: means[0],
            median,
        }
    }
}

/// The median of `values`, which are left sorted.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Microseconds of `reads` calls of `read`: their mean, and the median, 99th percentile
/// and slowest of them (a stall, such as a delayed acknowledgement, shows there).
fn per_read(reads: u32, mut read: impl FnMut() -> Result) -> Result<Sample> {
    let mut each = Vec::with_capacity(reads as usize);
    let started = Instant::now();
    for _ in 0..reads {
        let at = Instant::now();
        read()?;
        each.push(at.elapsed());
    }
    let mean = started.elapsed().as_secs_f64() * 1e6 / f64::from(reads);
    each.sort();
    let us = |i: usize| each[i.min(each.len() - 1)].as_secs_f64() * 1e6;
    Ok(Sample {
        mean,
        p50: us(each.len() / 2),
        p99: us(each.len() * 99 / 100),
        max: us(each.len() - 1),
    })
}

/// Microseconds per read of one round of one reader.
struct Sample {
    mean: f64,
    p50: f64,
    p99: f64,
    max: f64,
}

impl std::fmt::Display for Sample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.1} (p50 {:.1}, p99 {:.1}, max {:.0})",
            self.mean, self.p50, self.p99, self.max
        )
    }
}

/// The bare pymodbus client's mean microseconds per read of the register.
fn bare_pymodbus(python: &Path, scripts: &Path, port: u16, reads: u32) -> Result<f64> {
    let client = Process::start(
        "client.py bench",
        Command::new(python)
            .arg(scripts.join("client.py"))
            .arg(port.to_string())
            .args(["bench", &UNIT.to_string(), &REGISTER.to_string()])
            .arg(reads.to_string()),
    )?;
    let text = client.output()?;
    text.lines()
        .find_map(|l| l.strip_prefix("mean_us "))
        .and_then(|us| us.trim().parse().ok())
        .ok_or_else(|| format!("client.py bench printed no mean_us: {text}"))
}

/// The pids of the children running, killed if this command is stopped by a signal
/// (their guards are not dropped then).
static RUNNING: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn stop_children_on_signal() -> Result {
    ctrlc::set_handler(|| {
        let running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
        for pid in running.iter() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        std::process::exit(130);
    })
    .map_err(|e| e.to_string())
}

/// A child process, killed when dropped (an error path leaves nothing behind); its
/// stderr is kept for the error messages.
struct Process {
    what: &'static str,
    child: std::process::Child,
    ready: mpsc::Receiver<String>,
    log: Arc<Mutex<String>>,
}

impl Process {
    fn start(what: &'static str, cmd: &mut Command) -> Result<Process> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Registered while the signal handler cannot run, so that none is missed.
        let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
        let mut child = cmd.spawn().map_err(|e| format!("{what}: {e}"))?;
        running.push(child.id());
        drop(running);
        let (tx, ready) = mpsc::channel();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        thread::spawn(move || {
            // The first line is the ready line; the rest is drained.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().ok_or("no stderr")?;
        let sink = log.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stderr.read(&mut buf) {
                let mut log = sink.lock().unwrap_or_else(|e| e.into_inner());
                log.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Ok(Process {
            what,
            child,
            ready,
            log,
        })
    }

    /// The rest of the first line printed, which must begin with `prefix`.
    fn ready(&self, prefix: &str) -> Result<String> {
        let line = self.ready.recv_timeout(READY_WITHIN).map_err(|_| {
            format!(
                "{} did not start: {}",
                self.what,
                self.log.lock().unwrap_or_else(|e| e.into_inner())
            )
        })?;
        line.trim()
            .strip_prefix(prefix)
            .map(str::to_string)
            .ok_or_else(|| format!("{}: unexpected first line {line:?}", self.what))
    }

    /// What it printed on stdout once it ended by itself, successfully.
    fn output(mut self) -> Result<String> {
        let status = self
            .child
            .wait()
            .map_err(|e| format!("{}: {e}", self.what))?;
        // The reading thread ends, and with it this iterator, at the end of the output.
        let text: Vec<String> = self.ready.iter().collect();
        let text = text.join("\n");
        if !status.success() {
            return Err(format!(
                "{} failed ({status}): {text}{}",
                self.what,
                self.log.lock().unwrap_or_else(|e| e.into_inner())
            ));
        }
        Ok(text)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Killed and forgotten under the lock: the signal handler kills only children
        // not yet reaped (a pid reaped may be another process's already).
        {
            let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
            let _ = self.child.kill();
            running.retain(|&pid| pid != self.child.id());
        }
        let _ = self.child.wait();
    }
}

/// A request APDU: a Tap frame (method, object, instance, resource, body) in its header.
fn apdu(method: u8, object: u16, instance: u16, resource: u16, body: &[u8]) -> Vec<u8> {
    let mut frame = vec![method];
    for v in [object, instance, resource] {
        frame.extend_from_slice(&v.to_be_bytes());
    }
    frame.extend_from_slice(body);
    let ins = if method == 1 { 0xCA } else { 0xDA };
    let mut apdu = vec![0xA2, ins, 0, 0, frame.len() as u8];
    apdu.extend_from_slice(&frame);
    apdu
}

/// A WebSocket client of the device, one binary message per APDU each way.
struct DeviceClient(WebSocket<TcpStream>);

impl DeviceClient {
    fn connect(addr: &str) -> Result<DeviceClient> {
        let stream = TcpStream::connect(addr).map_err(|e| format!("{addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(ANSWER_WITHIN))
            .map_err(|e| e.to_string())?;
        let (socket, _) = tungstenite::client(format!("ws://{addr}/"), stream)
            .map_err(|e| format!("WebSocket handshake with {addr}: {e}"))?;
        Ok(DeviceClient(socket))
    }

    fn exchange(&mut self, apdu: &[u8]) -> Result<tungstenite::Bytes> {
        self.0
            .send(Message::Binary(apdu.to_vec().into()))
            .map_err(|e| format!("to the device: {e}"))?;
        loop {
            match self.0.read().map_err(|e| format!("from the device: {e}"))? {
                Message::Binary(answer) => return Ok(answer),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => return Err(format!("from the device: {other:?}")),
            }
        }
    }

    fn expect(&mut self, apdu: &[u8], answer: &[u8]) -> Result {
        let got = self.exchange(apdu)?;
        if *got != *answer {
            return Err(format!(
                "request {} answered {}, not {}",
                to_hex(apdu),
                to_hex(&got),
                to_hex(answer)
            ));
        }
        Ok(())
    }

    /// A request answered with status 00 (and whatever data).
    fn expect_ok(&mut self, apdu: &[u8]) -> Result {
        let got = self.exchange(apdu)?;
        if got.first() != Some(&0) || !got.ends_with(&[0x90, 0x00]) {
            return Err(format!(
                "request {} answered {}",
                to_hex(apdu),
                to_hex(&got)
            ));
        }
        Ok(())
    }

    /// Logged in as admin, the target protocol MODBUS and connected, the variable made:
    /// the requests of `interop/modbus.test.mjs`.
    fn configure(&mut self) -> Result {
        let mut credentials = [0u8; 32];
        credentials[..5].copy_from_slice(b"admin");
        credentials[16..21].copy_from_slice(b"admin");
        self.expect(&apdu(2, 1024, 0xFFFF, 0, &credentials), &OK)?;
        // PUT /1027//1 = 3 (MODBUS), POST /1027//3 (connect).
        self.expect(&apdu(3, 1027, 0xFFFF, 1, &[3]), &OK)?;
        self.expect(&apdu(2, 1027, 0xFFFF, 3, &[]), &OK)?;
        // The variable, its type (UINT16) and its address (function 3, unit, register).
        self.expect(&apdu(2, 1029, VARIABLE, 0xFFFF, &[]), &OK)?;
        self.expect(&apdu(3, 1029, VARIABLE, 1, &[0x22]), &OK)?;
        let [hi, lo] = REGISTER.to_be_bytes();
        self.expect(&apdu(3, 1029, VARIABLE, 0, &[3, UNIT, hi, lo]), &OK)
    }
}

impl Drop for DeviceClient {
    fn drop(&mut self) {
        let _ = self.0.close(None);
        let _ = self.0.flush();
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The register read over a bare Modbus TCP socket (function 3, one register).
struct RawModbus {
    stream: TcpStream,
    transaction: u16,
}

impl RawModbus {
    fn connect(port: u16) -> Result<RawModbus> {
        let stream =
            TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("Modbus server: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(ANSWER_WITHIN))
            .map_err(|e| e.to_string())?;
        Ok(RawModbus {
            stream,
            transaction: 0,
        })
    }

    fn read(&mut self) -> Result {
        self.transaction = self.transaction.wrapping_add(1);
        let [t0, t1] = self.transaction.to_be_bytes();
        let [a0, a1] = REGISTER.to_be_bytes();
        // MBAP header (transaction, protocol 0, length 6, unit), then the PDU.
        let request = [t0, t1, 0, 0, 0, 6, UNIT, 3, a0, a1, 0, 1];
        self.stream
            .write_all(&request)
            .map_err(|e| format!("to the Modbus server: {e}"))?;
        let mut answer = [0u8; 11];
        self.stream
            .read_exact(&mut answer)
            .map_err(|e| format!("from the Modbus server: {e}"))?;
        let [v0, v1] = REGISTER_VALUE.to_be_bytes();
        if answer != [t0, t1, 0, 0, 0, 5, UNIT, 3, 2, v0, v1] {
            return Err(format!("Modbus server answered {}", to_hex(&answer)));
        }
        Ok(())
    }
}
