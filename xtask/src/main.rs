//! Project tasks. `cargo xtask test` installs what the tests need on a fresh machine and
//! runs every check CI runs.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

mod declarations;
mod modbus_bench;

/// Checks run so far that passed (printed as the closing summary line).
static PASSED: AtomicUsize = AtomicUsize::new(0);

/// The declared `rust-version` of the library crates (workspace Cargo.toml).
const MSRV: &str = "1.88";
const LIBRARY_CRATES: [&str; 4] = [
    "lwm2m-core",
    "lwm2m-objects",
    "transport-traits",
    "target-traits",
];
const THUMB_TARGETS: [&str; 2] = ["thumbv6m-none-eabi", "thumbv7em-none-eabihf"];
const FUZZ_TARGETS: [&str; 9] = [
    "request_parser",
    "handle",
    "session",
    "serial",
    "modbus_response",
    "target",
    "modbus_slave",
    "tunnel",
    "packet",
];
/// Seconds each fuzz target runs in the smoke run (override with FUZZ_SECONDS).
const DEFAULT_FUZZ_SECONDS: u32 = 20;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("interop") => interop(),
        Some("fuzz") => fuzz(fuzz_seconds()),
        Some("instructions") => instructions(),
        Some("footprint") => footprint(),
        Some("boards") => boards(),
        Some("qemu") => qemu(&args[1..]),
        Some("modbus-bench") => modbus_bench::modbus_bench(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <test|interop|fuzz|instructions|footprint|boards|qemu|modbus-bench>"
            );
            eprintln!("  test     install what is missing, then run every check CI runs");
            eprintln!("  interop  build the desktop device and run the real-client interop test");
            eprintln!("  fuzz     fuzz smoke run (FUZZ_SECONDS per target, default {DEFAULT_FUZZ_SECONDS})");
            eprintln!("  instructions  instructions of Device::handle per request (callgrind)");
            eprintln!("  footprint     flash, RAM and stack of a Cortex-M4 firmware and of the boards (QEMU)");
            eprintln!(
                "  boards   build the board firmwares and drive each in QEMU through the bridge"
            );
            eprintln!("  qemu BOARD [--ws ADDR]  boot BOARD in QEMU, served as WebSocket on ADDR");
            eprintln!(
                "  modbus-bench [READS]  variable reads per second through port-linux --modbus"
            );
            eprintln!("                        beside a bare pymodbus client (default 2000 reads)");
            return ExitCode::from(2);
        }
    };
    let passed = PASSED.load(Ordering::Relaxed);
    // Reports end with their own figures line.
    let report = matches!(
        args.first().map(String::as_str),
        Some("instructions" | "footprint" | "modbus-bench")
    );
    match result {
        Ok(()) if report => ExitCode::SUCCESS,
        Ok(()) => {
            println!("checks: {passed} passed, 0 failed");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("xtask: {err}");
            println!("checks: {passed} passed, 1 failed");
            ExitCode::FAILURE
        }
    }
}

type Result<T = ()> = std::result::Result<T, String>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Progress goes to stderr (`cargo xtask qemu`: its stdout is the bridge's ready line).
static PROGRESS_TO_STDERR: AtomicBool = AtomicBool::new(false);

fn run(what: &str, cmd: &mut Command) -> Result {
    let quiet = PROGRESS_TO_STDERR.load(Ordering::Relaxed);
    let say = |text: String| match quiet {
        true => eprintln!("{text}"),
        false => println!("{text}"),
    };
    say(format!("\n==> {what}\n    $ {cmd:?}"));
    if quiet {
        cmd.stdout(std::io::stderr());
    }
    let started = Instant::now();
    let status = cmd
        .status()
        .map_err(|e| format!("{what}: cannot start {:?}: {e}", cmd.get_program()))?;
    say(format!("    ({what}: {:.0?})", started.elapsed()));
    if status.success() {
        PASSED.fetch_add(1, Ordering::Relaxed);
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

fn cargo() -> Command {
    let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn test() -> Result {
    let started = Instant::now();
    install_thumb_targets()?;
    run(
        "format check",
        cargo().args(["fmt", "--all", "--", "--check"]),
    )?;
    run(
        "clippy",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    run(
        "unit, vector and property tests",
        cargo().args(["test", "--workspace"]),
    )?;
    run(
        "the async device loop and the Modbus slave",
        cargo().args([
            "test",
            "-p",
            "transport-traits",
            "--features",
            "async,modbus-slave",
        ]),
    )?;
    // The small capacity preset without any optional settings group: the engine's and
    // the objects' tests (the validation suite of every setting's encoding needs every
    // group and the large preset's value sizes, the default build's).
    let mut small = cargo();
    small
        .args([
            "test",
            "-p",
            "lwm2m-core",
            "-p",
            "lwm2m-objects",
            "--no-default-features",
        ])
        .args([
            "--lib",
            "--test",
            "implemented",
            "--test",
            "multi",
            "--test",
            "session",
        ])
        .args([
            "--test",
            "slow_target",
            "--test",
            "suspension",
            "--test",
            "configuration",
            "--test",
            "boot",
            "--test",
            "target_mux",
            "--test",
            "target_serial",
            "--test",
            "modbus_rtu",
            "--test",
            "target_review",
            "--test",
            "declarations",
        ])
        .args([
            "--test",
            "malformed",
            "--test",
            "transcript",
            "--test",
            "anonymous_property",
        ])
        .env("LWM2M_PRESET", "small")
        .env("CARGO_TARGET_DIR", root().join("target").join("small"));
    run(
        "tests of the small preset without settings groups",
        &mut small,
    )?;
    for target in THUMB_TARGETS {
        // Without any feature, with the encrypted session's cryptography, and with single
        // packets.
        for features in [None, Some("lwm2m-core/crypto"), Some("lwm2m-core/packets")] {
            let mut cmd = cargo();
            cmd.arg("build");
            for krate in LIBRARY_CRATES {
                cmd.args(["-p", krate]);
            }
            cmd.args(["--no-default-features", "--target", target]);
            if let Some(features) = features {
                cmd.args(["--features", features]);
            }
            let with = features.map_or(String::new(), |f| format!(" with {f}"));
            run(&format!("no_std build for {target}{with}"), &mut cmd)?;
        }
    }
    msrv()?;
    let mut doc = cargo();
    doc.args(["doc", "--no-deps", "--all-features"])
        .env("RUSTDOCFLAGS", "-D warnings");
    for krate in LIBRARY_CRATES {
        doc.args(["-p", krate]);
    }
    run("API documentation builds without warnings", &mut doc)?;
    interop()?;
    footprint()?;
    boards()?;
    fuzz(fuzz_seconds())?;
    forget_packaged_crates();
    run(
        "publish dry run",
        cargo().args(["package", "--workspace", "--quiet"]),
    )?;
    println!("\nall checks passed in {:.0?}", started.elapsed());
    Ok(())
}

/// Checks that the library crates build with their declared minimum Rust version.
fn msrv() -> Result {
    let toolchain = format!("{MSRV}-x86_64-unknown-linux-gnu");
    let installed = output(Command::new("rustup").args(["toolchain", "list"])).unwrap_or_default();
    if !installed.lines().any(|l| l.starts_with(&toolchain)) {
        run(
            &format!("install Rust {MSRV} (MSRV)"),
            Command::new("rustup").args(["toolchain", "install", MSRV, "--profile", "minimal"]),
        )?;
    }
    // Through the rustup proxy, which understands `+toolchain`.
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root()).arg(format!("+{MSRV}")).arg("check");
    for krate in LIBRARY_CRATES {
        cmd.args(["-p", krate]);
    }
    // Every optional dependency too (the cryptography of the encrypted session).
    cmd.args(["--features", "lwm2m-core/crypto"]);
    // A separate target directory: the stable build's artifacts are not reusable.
    cmd.args(["--target-dir", "target/msrv"]);
    run(&format!("library crates build with Rust {MSRV}"), &mut cmd)
}

fn install_thumb_targets() -> Result {
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"]))
        .ok_or("rustup is needed to add the thumb targets")?;
    let missing: Vec<&str> = THUMB_TARGETS
        .into_iter()
        .filter(|t| !installed.lines().any(|l| l.trim() == *t))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    run(
        "install thumb targets",
        Command::new("rustup")
            .arg("target")
            .arg("add")
            .args(&missing),
    )
}

fn interop() -> Result {
    run(
        "build desktop device",
        cargo().args(["build", "--release", "-p", "port-linux"]),
    )?;
    let dir = root().join("interop");
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    run(
        "install the real client (npm ci)",
        Command::new(npm)
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir),
    )?;
    let device = root().join("target/release/port-linux");
    let python = python_with_pymodbus()?;
    run(
        "interop with @iotize/tap over WebSocket (and a real Modbus server)",
        Command::new(npm)
            .arg("test")
            .current_dir(&dir)
            .env("LWM2M_DEVICE_BIN", device)
            .env("LWM2M_PYTHON", python),
    )
}

/// The Python of the Modbus tests' real peers: a virtual environment in `target/pyenv`
/// with the pinned pymodbus of `ports/linux/tests/modbus/requirements.txt`, made when
/// missing (with Debian's `python3-venv` when `venv` is missing).
fn python_with_pymodbus() -> Result<PathBuf> {
    let env_dir = root().join("target").join("pyenv");
    let python = env_dir.join("bin").join("python");
    let requirements = root().join("ports/linux/tests/modbus/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements)
        .map_err(|e| format!("{}: {e}", requirements.display()))?;
    let pinned = wanted
        .lines()
        .find_map(|l| l.trim().strip_prefix("pymodbus=="))
        .ok_or("requirements.txt pins no pymodbus")?
        .to_string();
    let installed =
        output(Command::new(&python).args(["-c", "import pymodbus; print(pymodbus.__version__)"]));
    if installed.as_deref().map(str::trim) == Some(pinned.as_str()) {
        return Ok(python);
    }
    let venv = |cmd: &mut Command| cmd.args(["-m", "venv", "--clear"]).arg(&env_dir).status();
    if !venv(&mut Command::new("python3")).is_ok_and(|s| s.success()) {
        run(
            "install python3-venv",
            Command::new("sh").args([
                "-c",
                "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv",
            ]),
        )?;
        run(
            "make the Python environment of the Modbus tests",
            Command::new("python3")
                .args(["-m", "venv", "--clear"])
                .arg(&env_dir),
        )?;
    }
    run(
        &format!("install pymodbus {pinned} (the real Modbus peers)"),
        Command::new(&python)
            .args(["-m", "pip", "install", "-q", "-r"])
            .arg(&requirements),
    )?;
    Ok(python)
}

fn fuzz_seconds() -> u32 {
    env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_FUZZ_SECONDS)
}

fn fuzz(seconds: u32) -> Result {
    if output(Command::new("rustup").args(["run", "nightly", "rustc", "--version"])).is_none() {
        run(
            "install nightly toolchain",
            Command::new("rustup").args([
                "toolchain",
                "install",
                "nightly",
                "--profile",
                "minimal",
            ]),
        )?;
    }
    if output(cargo().args(["fuzz", "--version"])).is_none() {
        run(
            "install cargo-fuzz",
            cargo().args(["install", "cargo-fuzz", "--locked"]),
        )?;
    }
    let dir = root().join("fuzz");
    for target in FUZZ_TARGETS {
        let corpus = dir.join("corpus").join(target);
        std::fs::create_dir_all(&corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
        let seeds = dir.join("seeds").join(target);
        let mut cmd = Command::new("cargo");
        cmd.current_dir(root())
            .args(["+nightly", "fuzz", "run", target])
            .arg(&corpus)
            .arg(&seeds)
            .arg("--")
            .arg(format!("-max_total_time={seconds}"));
        run(&format!("fuzz {target} for {seconds} s"), &mut cmd)?;
    }
    Ok(())
}

/// Counts the instructions of `Device::handle` per request with callgrind (x86-64 host):
/// `lwm2m-objects/examples/instructions.rs` runs each case many times and callgrind counts
/// only inside its `measured` function. Installs valgrind from Debian when missing.
fn instructions() -> Result {
    if output(Command::new("valgrind").arg("--version")).is_none() {
        run(
            "install valgrind",
            Command::new("sh").args([
                "-c",
                "apt-get update -qq && apt-get install -y -qq valgrind",
            ]),
        )?;
    }
    build_instructions("target", None)?;
    // Built as a firmware is: link-time optimisation, one codegen unit (`[profile.instructions]`).
    let binary = root().join("target/instructions/examples/instructions");
    // (case, iterations, what it is)
    let cases = [
        ("get", 1000, "GET /3//2, anonymous"),
        ("login", 20, "POST /1024//0 admin/admin, password in clear"),
        ("multi", 1000, "multi-request of three GETs"),
        (
            "copy",
            1000,
            "copying the GET request and its answer (floor)",
        ),
        (
            "tunnel",
            1000,
            "GET /3//2 through the encrypted tunnel (/1024//48)",
        ),
        (
            "aes",
            1000,
            "bare AES-128-CBC: decrypt and encrypt 32 bytes",
        ),
        ("scram", 10, "SCRAM login, both steps (/1024//40, /41)"),
        (
            "packet",
            100,
            "an encrypted single packet of 1 KiB checked (key, decryption, CRC)",
        ),
    ];
    let mut counts = Vec::new();
    println!();
    println!("| request | instructions |");
    println!("|---|---|");
    for (case, iterations, what) in cases {
        let per_request = callgrind(&binary, case, iterations)?;
        println!("| {what} | {per_request} |");
        counts.push((case, per_request));
    }
    // The same with the software AES a microcontroller runs (x86's AES-NI off).
    build_instructions("target/instructions-soft", Some("--cfg aes_force_soft"))?;
    let soft = root().join("target/instructions-soft/instructions/examples/instructions");
    let (tunnel_soft, aes_soft) = (
        callgrind(&soft, "tunnel", 200)?,
        callgrind(&soft, "aes", 200)?,
    );
    println!("| GET /3//2 through the tunnel, software AES | {tunnel_soft} |");
    println!("| bare AES-128-CBC, software AES | {aes_soft} |");
    let count = |name: &str| counts.iter().find(|(c, _)| *c == name).map_or(0, |c| c.1);
    // What the tunnel adds to the plain request, against the bare cipher (goal ≤ 1.25).
    let added = count("tunnel").saturating_sub(count("get"));
    let ratio = added as f64 / count("aes").max(1) as f64;
    let added_soft = tunnel_soft.saturating_sub(count("get"));
    let ratio_soft = added_soft as f64 / aes_soft.max(1) as f64;
    println!(
        "\nthe tunnel adds {added} instructions to GET /3//2: {ratio:.2} × the bare cipher's {} \
         (AES-NI); with the software AES, {added_soft}: {ratio_soft:.2} × its {aes_soft}",
        count("aes")
    );
    println!(
        "instructions: get={} login={} multi={} tunnel={} aes={} scram={} packet={} tunnel_ratio={ratio:.2} tunnel_ratio_soft_aes={ratio_soft:.2}",
        count("get"),
        count("login"),
        count("multi"),
        count("tunnel"),
        count("aes"),
        count("scram"),
        count("packet")
    );
    Ok(())
}

/// Builds the measured requests (`lwm2m-objects/examples/instructions.rs`) as a firmware
/// is built (link-time optimisation, one codegen unit: `[profile.instructions]`) into
/// `target_dir`, with `rustflags` if any.
fn build_instructions(target_dir: &str, rustflags: Option<&str>) -> Result {
    let mut cmd = cargo();
    cmd.args([
        "build",
        "--profile",
        "instructions",
        "-p",
        "lwm2m-objects",
        "--example",
        "instructions",
        "--target-dir",
        target_dir,
    ]);
    let what = match rustflags {
        Some(flags) => {
            cmd.env("RUSTFLAGS", flags);
            format!("build the measured requests ({flags})")
        }
        None => "build the measured requests".to_string(),
    };
    run(&what, &mut cmd)
}

/// The instructions `binary` spends in its measured functions per iteration of `case`,
/// counted by callgrind.
fn callgrind(binary: &Path, case: &str, iterations: u64) -> Result<u64> {
    let out_file = std::env::temp_dir().join(format!("lwm2m-callgrind-{case}.out"));
    let out = Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--toggle-collect=instructions::measured",
            "--toggle-collect=instructions::crypto::measured_*",
        ])
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(binary)
        .args([case, &iterations.to_string()])
        .output()
        .map_err(|e| format!("valgrind: {e}"))?;
    let _ = std::fs::remove_file(out_file);
    if !out.status.success() {
        return Err(format!(
            "callgrind of {case} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let log = String::from_utf8_lossy(&out.stderr);
    let collected: u64 = log
        .lines()
        .find_map(|l| l.split("Collected :").nth(1))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| format!("no instruction count in callgrind's output:\n{log}"))?;
    // The SCRAM case counts two requests an iteration.
    Ok(collected / iterations)
}

/// Builds the footprint firmware (`xtask/footprint-firmware`: the core, every object and a
/// flash store for a Cortex-M4 with `opt-level = "z"`, LTO, `panic = "abort"`), reads its
/// sections, and runs it under QEMU (`mps2-an386`) for the stack it paints and measures.
/// Installs the thumb target and Debian's `qemu-system-arm` when missing.
fn footprint() -> Result {
    install_thumb_targets()?;
    install_qemu()?;
    let small = footprint_run("small")?;
    let large = footprint_run("large")?;
    let with_crypto = footprint_crypto_flash("crypto")?;
    let with_packets = footprint_crypto_flash("packets")?;
    // The declaration tables measured are the objects': the report's data (the firmware's
    // `DECLARATIONS`, which points at them) adds nothing to the flash. (Up to 3 bytes:
    // the read-only data may be laid out in another order, with other padding.)
    let without_declarations = footprint_build(
        "small-without-declarations",
        "without its declarations",
        &["--no-default-features"],
    )?;
    if small.sizes.flash.abs_diff(without_declarations.flash) > 3 {
        return Err(format!(
            "the footprint firmware has {} bytes of flash, {} without its declarations: \
             a table it points at is in the firmware for the report only",
            small.sizes.flash, without_declarations.flash
        ));
    }
    let figure = |run: &FirmwareRun, name: &str| -> Result<u64> {
        run.text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| format!("the firmware printed no {name}: {}", run.text))
    };
    let (engine, config) = (figure(&small, "engine")?, figure(&small, "config")?);
    let (engine_large, config_large) = (figure(&large, "engine")?, figure(&large, "config")?);
    let boot_stack = figure(&small, "boot-stack")?;
    let stack = figure(&small, "stack")?;
    let request_stack = |i: usize| figure(&small, &format!("request-{i}"));
    let (get, login, password, save, reset) = (
        request_stack(0)?,
        request_stack(1)?,
        request_stack(7)?,
        request_stack(15)?,
        request_stack(16)?,
    );
    println!();
    println!(
        "Cortex-M4 (thumbv7em-none-eabihf, opt-level z, LTO, panic abort), the core, every object"
    );
    println!("and a flash store; 256-byte frames; no optional settings group:");
    println!();
    println!("| what | small preset | large preset |");
    println!("|---|---|---|");
    println!(
        "| flash (vector table, text, rodata, data) | {} | {} |",
        small.sizes.flash, large.sizes.flash
    );
    println!(
        "| of which the password hashing (PBKDF2-HMAC-SHA1) | {} | {} |",
        small.sizes.crypto, large.sizes.crypto
    );
    println!(
        "| flash with the encrypted session (feature `crypto`: SCRAM, the tunnel; goal ≤ 40 KiB) | {with_crypto} | |"
    );
    println!(
        "| flash with the encrypted session and single packets (feature `packets`) | {with_packets} | |"
    );
    println!(
        "| static RAM (data + bss, with the frame buffers; the emulated flash left out) | {} | {} |",
        small.sizes.ram, large.sizes.ram
    );
    println!("| of which the engine state (`Device`) | {engine} | {engine_large} |");
    println!("| of which its configuration image (`Config`) | {config} | {config_large} |");
    println!(
        "| stack to boot (build the engine with `Device::new`, load its configuration in place) | {boot_stack} | {} |",
        figure(&large, "boot-stack")?
    );
    println!(
        "| worst stack of a request | {stack} | {} |",
        figure(&large, "stack")?
    );
    println!();
    println!("Flash by part (small preset; code by symbol name):");
    println!();
    println!("| part | bytes |");
    println!("|---|---|");
    for (part, bytes) in &small.sizes.parts {
        println!("| {part} | {bytes} |");
    }
    // What counts and what does not: `declarations.rs`.
    let (tables, tables_per_resource) = declarations::report(&small.tables);
    println!();
    println!(
        "Declaration tables (small preset): the flash of each object's resource table \
         (`Object::resources`), unlisted resources (`Object::unlisted`) and setting lines, \
         read from the ELF, per declared resource (the handlers' code is not counted):"
    );
    println!();
    print!("{tables}");
    println!();
    println!("Stack of single requests (small preset):");
    println!();
    println!("| request | stack |");
    println!("|---|---|");
    println!("| `GET /3//2` | {get} |");
    println!("| login admin/admin (one PBKDF2-HMAC-SHA1) | {login} |");
    println!("| set a password (one PBKDF2-HMAC-SHA1) | {password} |");
    println!("| save the configuration | {save} |");
    println!("| factory reset (restore and save) | {reset} |");
    println!();
    println!("RAM of each settings group at its largest (`LWM2M_SETTINGS_BYTES` must hold the groups a build carries):");
    println!();
    println!("| group | bytes |");
    println!("|---|---|");
    for line in small.text.lines() {
        if let Some((group, room)) = line.strip_prefix("group-").and_then(|l| l.split_once('=')) {
            println!("| {group} | {room} |");
        }
    }
    // The board firmwares: the same core and objects with a device loop, a serial
    // host and drivers, measured as they run.
    let mut measured = Vec::new();
    for board in &BOARDS {
        measured.push((board, board_run(board)?));
    }
    println!();
    println!(
        "The board firmwares (small preset, 256-byte frames, every object), booted in QEMU and"
    );
    println!("driven through the bridge (peak stack: where the paint of the free RAM stops):");
    println!();
    println!("| board | flash | static RAM | peak stack | free RAM for the stack |");
    println!("|---|---|---|---|---|");
    for (board, figures) in &measured {
        println!(
            "| {} ({}) | {} | {} | {} | {} |",
            board.machine,
            board.target,
            figures.sizes.flash,
            figures.sizes.ram,
            figures.stack,
            figures.room
        );
    }
    println!(
        "footprint: flash={} ram={} stack={} flash_with_crypto={with_crypto} flash_with_packets={with_packets} tables_per_resource={tables_per_resource:.1}",
        small.sizes.flash, small.sizes.ram, stack
    );
    Ok(())
}

/// Debian's `qemu-system-arm`, when missing.
fn install_qemu() -> Result {
    if output(Command::new("qemu-system-arm").arg("--version")).is_some() {
        return Ok(());
    }
    run(
        "install qemu-system-arm",
        Command::new("sh").args([
            "-c",
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-arm",
        ]),
    )
}

/// A board firmware: a crate of its own under `ports/`, built for its target.
struct Board {
    /// Its folder, from the root.
    dir: &'static str,
    /// Its binary.
    bin: &'static str,
    target: &'static str,
    /// The QEMU machine it runs on (also its `/3//1`).
    machine: &'static str,
    /// It serves a Modbus RTU slave on its second UART (`port-common`'s feature
    /// `modbus-slave`), which the board test drives with a real master.
    modbus_slave: bool,
}

const BOARDS: [Board; 2] = [
    Board {
        dir: "ports/mps2-an386",
        bin: "port-mps2-an386",
        target: "thumbv7em-none-eabihf",
        machine: "mps2-an386",
        modbus_slave: true,
    },
    Board {
        dir: "ports/microbit",
        bin: "port-microbit",
        target: "thumbv6m-none-eabi",
        machine: "microbit",
        modbus_slave: false,
    },
];

/// The flash a board firmware reserves out of its image (`__config_flash_start` and
/// `__config_flash_end` in `elf`: its configuration store's pages), as a programmer
/// leaves it for a new device: erased. QEMU's unprogrammed flash reads zeros, so it is
/// loaded (`-device loader,FILE,ADDR`): the QEMU options, and the file (removed once
/// the caller is done with it). None for a board without such pages.
fn erased_flash(elf: &Path) -> Result<Option<(String, PathBuf)>> {
    let [Some(start), Some(end)] =
        symbol_addresses(elf, ["__config_flash_start", "__config_flash_end"])?
    else {
        return Ok(None);
    };
    let len = end
        .checked_sub(start)
        .ok_or_else(|| format!("{}: config flash ends before it starts", elf.display()))?;
    let path = env::temp_dir().join(format!(
        "lwm2m-erased-{}-{}.bin",
        elf.file_name().and_then(|n| n.to_str()).unwrap_or("board"),
        std::process::id()
    ));
    std::fs::write(&path, vec![0xFF; len as usize])
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Some((
        format!("file={},addr={start:#x}", path.display()),
        path,
    )))
}

/// The addresses of the symbols `names` in the firmware `elf` (`None` for one it lacks).
fn symbol_addresses<const N: usize>(elf: &Path, names: [&str; N]) -> Result<[Option<u64>; N]> {
    use object::{Object, ObjectSymbol};
    let data = std::fs::read(elf).map_err(|e| format!("{}: {e}", elf.display()))?;
    let file = object::File::parse(&*data).map_err(|e| format!("{}: {e}", elf.display()))?;
    Ok(names.map(|name| {
        file.symbols()
            .find(|s| s.name() == Ok(name))
            .map(|s| s.address())
    }))
}

/// A board firmware's figures: its sections, and the deepest stack it used in QEMU.
struct BoardFigures {
    /// The firmware.
    elf: PathBuf,
    sizes: ElfSizes,
    /// Bytes from the top of the stack to where the paint stops.
    stack: u64,
    /// Bytes between the static data and the top of the stack.
    room: u64,
}

/// Checks and builds `board`, then boots it in QEMU and drives it through the bridge
/// over WebSocket (`ports/linux/tests/qemu_board.rs`: device information, a variable,
/// a board's Modbus RTU slave through a real master, a storm of malformed input, a save
/// and a reboot, the idle timeout), which reports the deepest stack it used (the
/// firmware paints its free RAM at boot).
fn board_run(board: &Board) -> Result<BoardFigures> {
    let elf = build_board(board)?;
    let sizes = elf_sizes(&elf)?;
    // cortex-m-rt's: the static data end at `_stack_end`, the stack starts at
    // `_stack_start`.
    let [Some(low), Some(high)] = symbol_addresses(&elf, ["_stack_end", "_stack_start"])? else {
        return Err(format!("{}: no _stack_end or _stack_start", elf.display()));
    };
    let report = env::temp_dir().join(format!("lwm2m-{}-{}", board.bin, std::process::id()));
    let _ = std::fs::remove_file(&report);
    let erased = erased_flash(&elf)?;
    let _erased = erased.as_ref().map(|(_, file)| Removed(file.clone()));
    let mut test = cargo();
    if let Some((loader, _)) = &erased {
        test.env("LWM2M_BOARD_LOADER", loader);
    }
    if board.modbus_slave {
        // Its second UART as a socket, a real Modbus master (pymodbus) on it.
        test.env("LWM2M_BOARD_MODBUS", "1")
            .env("LWM2M_PYTHON", python_with_pymodbus()?);
    }
    run(
        &format!(
            "{} in QEMU {}, through the bridge over WebSocket",
            board.bin, board.machine
        ),
        test.args(["test", "-p", "port-linux", "--test", "qemu_board"])
            .args(["--", "--ignored", "--nocapture"])
            .env("LWM2M_BOARD_ELF", &elf)
            .env("LWM2M_BOARD_MACHINE", board.machine)
            .env("LWM2M_BOARD_STACK", format!("{low:#x}..{high:#x}"))
            .env("LWM2M_BOARD_REPORT", &report),
    )?;
    let text =
        std::fs::read_to_string(&report).map_err(|e| format!("{}: {e}", report.display()))?;
    let _ = std::fs::remove_file(&report);
    let stack = text
        .lines()
        .find_map(|l| l.strip_prefix("stack="))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("the board test reported no stack: {text}"))?;
    Ok(BoardFigures {
        elf,
        sizes,
        stack,
        room: high - low,
    })
}

/// A file removed when dropped.
struct Removed(PathBuf);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `board`'s figures, as a line of the report.
fn board_line(board: &Board, figures: &BoardFigures) -> String {
    format!(
        "{}: flash {} bytes, static RAM {} bytes (an emulated flash left out), peak stack {} bytes (of {} free)",
        board.bin, figures.sizes.flash, figures.sizes.ram, figures.stack, figures.room
    )
}

/// Checks (format, clippy) and builds every board firmware for its target from its own
/// lock file, then boots it in QEMU and drives it through the bridge over WebSocket
/// ([`board_run`]), then with the real client through `cargo xtask qemu`. Installs the
/// thumb targets and QEMU when missing.
fn boards() -> Result {
    install_thumb_targets()?;
    install_qemu()?;
    for board in &BOARDS {
        let figures = board_run(board)?;
        println!("    {}", board_line(board, &figures));
        check_board_logs(board, &figures.elf)?;
        // The real client's services against the board, through `cargo xtask qemu`.
        let interop = root().join("interop");
        if !interop.join("node_modules").exists() {
            run(
                "install the real client (npm ci)",
                Command::new("npm")
                    .args(["ci", "--no-audit", "--no-fund"])
                    .current_dir(&interop),
            )?;
        }
        // Built before the client starts `cargo xtask qemu`, whose ready line it awaits
        // for a limited time.
        run(
            "build the bridge (port-linux)",
            cargo().args(["build", "--release", "-p", "port-linux"]),
        )?;
        let xtask = env::current_exe().map_err(|e| e.to_string())?;
        run(
            &format!(
                "the real client against {} (cargo xtask qemu {})",
                board.bin, board.machine
            ),
            Command::new("node")
                .args(["--test", "board.test.mjs"])
                .current_dir(&interop)
                .env("LWM2M_BOARD", board.machine)
                .env("LWM2M_XTASK", xtask),
        )?;
    }
    Ok(())
}

/// Checks (format, clippy) and builds `board` for its target from its own lock file,
/// small preset; the path of its firmware.
fn build_board(board: &Board) -> Result<PathBuf> {
    let dir = root().join(board.dir);
    let target_dir = dir.join("target");
    let in_board = |args: &[&str]| {
        let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.current_dir(&dir).args(args);
        cmd
    };
    run(
        &format!("format check of {}", board.dir),
        &mut in_board(&["fmt", "--", "--check"]),
    )?;
    let built = ["--release", "--locked", "--target-dir"];
    run(
        &format!("clippy of {} ({})", board.dir, board.target),
        in_board(&["clippy"])
            .args(built)
            .arg(&target_dir)
            .args(["--", "-D", "warnings"]),
    )?;
    run(
        &format!("build {} ({})", board.dir, board.target),
        in_board(&["build"])
            .args(built)
            .arg(&target_dir)
            .env("LWM2M_PRESET", "small"),
    )?;
    Ok(target_dir
        .join(board.target)
        .join("release")
        .join(board.bin))
}

/// Checks the logs of `board`'s firmware `elf`: its default build holds no `core::fmt`
/// code (a board logs through defmt only), and the build with the feature `defmt`
/// (defmt over RTT) passes clippy and links.
fn check_board_logs(board: &Board, elf: &Path) -> Result {
    use object::{Object, ObjectSymbol};
    let data = std::fs::read(elf).map_err(|e| format!("{}: {e}", elf.display()))?;
    let file = object::File::parse(&*data).map_err(|e| format!("{}: {e}", elf.display()))?;
    let formatting: Vec<String> = file
        .symbols()
        .filter_map(|s| s.name().ok())
        // `core::fmt::...`, legacy-mangled (`4core3fmt`, `core..fmt` in trait impls) or
        // v0-mangled (`4core3fmt` too).
        .filter(|name| name.contains("4core3fmt") || name.contains("core..fmt"))
        .map(str::to_string)
        .collect();
    if !formatting.is_empty() {
        return Err(format!(
            "{}: core::fmt code in the firmware (log through defmt): {formatting:?}",
            board.bin
        ));
    }
    let dir = root().join(board.dir);
    let target_dir = dir.join("target").join("defmt");
    for (what, command) in [("clippy", &["clippy"][..]), ("build", &["build"][..])] {
        let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.current_dir(&dir)
            .args(command)
            .args([
                "--release",
                "--locked",
                "--features",
                "defmt",
                "--target-dir",
            ])
            .arg(&target_dir)
            .env("LWM2M_PRESET", "small");
        if what == "clippy" {
            cmd.args(["--", "-D", "warnings"]);
        }
        run(
            &format!("{what} of {} with defmt logs", board.dir),
            &mut cmd,
        )?;
    }
    Ok(())
}

/// `cargo xtask qemu BOARD --ws ADDR`: builds the board and the desktop bridge, boots the
/// board in QEMU with its serial line on a socket bound here (handed to QEMU: no port to
/// guess), serves that line as WebSocket on `ADDR` (`port-linux --bridge-serial`), prints
/// the bridge's `listening on ws://...` once a client can connect, and runs until stopped
/// (SIGINT, SIGTERM, SIGHUP), then stops QEMU and the bridge. Ends with an error if either
/// stops by itself.
fn qemu(args: &[String]) -> Result {
    let usage = || {
        let names: Vec<&str> = BOARDS.iter().map(|b| b.machine).collect();
        format!(
            "usage: cargo xtask qemu BOARD [--ws ADDR:PORT] (BOARD: {})",
            names.join(" or ")
        )
    };
    let name = args.first().ok_or_else(usage)?;
    let board = BOARDS
        .iter()
        .find(|b| b.machine == name.as_str() || b.dir.ends_with(name.as_str()))
        .ok_or_else(usage)?;
    let ws = match &args[1..] {
        [] => "127.0.0.1:2000".to_string(),
        [flag, addr] if flag == "--ws" => addr.clone(),
        _ => return Err(usage()),
    };
    // Stdout carries the ready line only, as port-linux's does.
    PROGRESS_TO_STDERR.store(true, Ordering::Relaxed);
    install_thumb_targets()?;
    install_qemu()?;
    let elf = build_board(board)?;
    let erased = erased_flash(&elf)?;
    let _erased = erased.as_ref().map(|(_, file)| Removed(file.clone()));
    run(
        "build the bridge (port-linux)",
        cargo().args(["build", "--release", "-p", "port-linux"]),
    )?;
    let line = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let line_addr = line.local_addr().map_err(|e| e.to_string())?;
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<&'static str>();
    {
        let stop = stop_tx.clone();
        ctrlc::set_handler(move || {
            let _ = stop.send("stopped");
        })
        .map_err(|e| e.to_string())?;
    }
    // QEMU inherits the listening socket: no close-on-exec while it is spawned.
    let sock = socket2::SockRef::from(&line);
    sock.set_cloexec(false).map_err(|e| e.to_string())?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&line);
    // The children run in process groups of their own: a Ctrl-C in the terminal reaches
    // this command only, which stops them in order (else QEMU could stop first, and the
    // command end with an error).
    use std::os::unix::process::CommandExt;
    let qemu = Command::new("qemu-system-arm")
        .process_group(0)
        .args([
            "-M",
            board.machine,
            "-nographic",
            "-monitor",
            "none",
            "-kernel",
        ])
        .arg(&elf)
        .args(
            erased
                .iter()
                .flat_map(|(loader, _)| ["-device".to_string(), format!("loader,{loader}")]),
        )
        .arg("-chardev")
        .arg(format!("socket,id=line,fd={fd},server=on,wait=on"))
        .args(["-serial", "chardev:line"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn();
    sock.set_cloexec(true).map_err(|e| e.to_string())?;
    let qemu = Child(qemu.map_err(|e| format!("qemu-system-arm: {e}"))?);
    drop(line);
    let mut bridge = Child(
        Command::new(root().join("target/release/port-linux"))
            .process_group(0)
            .arg("--bridge-serial")
            .arg(format!("tcp:{line_addr}"))
            .args(["--ws", &ws])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("port-linux: {e}"))?,
    );
    // The bridge's ready line, passed on once it is printed: a client can connect.
    let stdout = bridge.0.stdout.take().ok_or("no bridge output")?;
    {
        let stop = stop_tx.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                match line {
                    Ok(line) => println!("{line}"),
                    Err(_) => break,
                }
            }
            let _ = stop.send("the bridge stopped");
        });
    }
    let watch =
        |mut child: Child, what: &'static str, stop: std::sync::mpsc::Sender<&'static str>| {
            std::thread::spawn(move || {
                let _ = child.0.wait();
                let _ = stop.send(what);
            })
        };
    // The children are watched through their pids (killed below by pid).
    let (qemu_pid, bridge_pid) = (qemu.0.id(), bridge.0.id());
    watch(qemu, "QEMU stopped", stop_tx.clone());
    watch(bridge, "the bridge stopped", stop_tx);
    let why = stop_rx.recv().unwrap_or("stopped");
    for pid in [bridge_pid, qemu_pid] {
        let _ = Command::new("kill").arg(pid.to_string()).status();
    }
    match why {
        "stopped" => Ok(()),
        other => Err(format!("{}: {other}", board.bin)),
    }
}

/// A child process, killed when dropped (an error path leaves nothing behind).
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What one build of the footprint firmware printed, its sizes and its objects'
/// declaration tables.
struct FirmwareRun {
    sizes: ElfSizes,
    tables: Vec<declarations::ObjectTables>,
    text: String,
}

/// The flash of the footprint firmware of the small preset with `feature` (`crypto`: the
/// encrypted session; `packets`: single packets too), built only.
fn footprint_crypto_flash(feature: &str) -> Result<u64> {
    let what = format!("with the feature `{feature}`");
    Ok(footprint_build(&format!("small-{feature}"), &what, &["--features", feature])?.flash)
}

/// Builds the footprint firmware of the small preset with the cargo arguments `args`
/// into `target/NAME` (`what` says how it differs), only; its sizes.
fn footprint_build(name: &str, what: &str, args: &[&str]) -> Result<ElfSizes> {
    let dir = root().join("xtask/footprint-firmware");
    let target_dir = dir.join("target").join(name);
    run(
        &format!("build the footprint firmware {what}, small preset"),
        Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(&dir)
            .env("LWM2M_PRESET", "small")
            .arg("build")
            .arg("--target-dir")
            .arg(&target_dir)
            .args(["--release", "--locked"])
            .args(args),
    )?;
    elf_sizes(&target_dir.join("thumbv7em-none-eabihf/release/footprint-firmware"))
}

/// Builds the footprint firmware with capacity `preset` and runs it under QEMU.
fn footprint_run(preset: &str) -> Result<FirmwareRun> {
    let dir = root().join("xtask/footprint-firmware");
    let target_dir = dir.join("target").join(preset);
    run(
        &format!("build the footprint firmware, {preset} preset (thumbv7em-none-eabihf)"),
        Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(&dir)
            .env("LWM2M_PRESET", preset)
            .arg("build")
            .arg("--target-dir")
            .arg(&target_dir)
            .args(["--release", "--locked"]),
    )?;
    let elf_path = target_dir.join("thumbv7em-none-eabihf/release/footprint-firmware");
    let sizes = elf_sizes(&elf_path)?;
    let tables = declarations::read(&elf_path)?;
    let out = Command::new("timeout")
        .arg("120")
        .arg("qemu-system-arm")
        .args([
            "-M",
            "mps2-an386",
            "-nographic",
            "-monitor",
            "none",
            "-serial",
            "none",
        ])
        .args(["-semihosting-config", "enable=on,target=native", "-kernel"])
        .arg(&elf_path)
        .output()
        .map_err(|e| format!("qemu-system-arm: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "the footprint firmware ({preset}) failed under QEMU ({}): {text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    if !text.contains(&format!("preset={preset}")) {
        return Err(format!(
            "the firmware was not built with the {preset} preset: {text}"
        ));
    }
    Ok(FirmwareRun {
        sizes,
        tables,
        text,
    })
}

struct ElfSizes {
    flash: u64,
    ram: u64,
    /// Flash of the password hashing code.
    crypto: u64,
    /// Code of each part ([`PARTS`]), then the read-only data and the vector table.
    parts: Vec<(&'static str, u64)>,
}

/// The parts the flash is split into, each with the pieces of the (legacy-mangled) symbol
/// names of its code, first match wins; code that matches none is "other".
const PARTS: &[(&str, &[&str])] = &[
    (
        "password hashing (PBKDF2-HMAC-SHA1)",
        &[
            "sha1",
            "hmac",
            "pbkdf2",
            "6digest",
            "digest..",
            // `lwm2m_core::auth::hash`
            "4auth4hash",
            "auth..hash..",
        ],
    ),
    ("objects (`lwm2m-objects`)", &["lwm2m_objects"]),
    (
        "configuration image and flash store (`config::image`, `storage`, `blob`)",
        &["6config5image", "config..image", "7storage", "storage..", "4blob", "blob.."],
    ),
    ("engine (the rest of `lwm2m-core`)", &["lwm2m_core"]),
    (
        "compiler built-ins (memcpy, memset, division)",
        &["compiler_builtins", "__aeabi", "memcmp", "memcpy", "memset"],
    ),
    (
        "the test firmware and its board (start-up, report, emulated flash; its request loop inlines `Device::handle`)",
        &["footprint_firmware", "cortex_m", "Reset", "Handler", "__pre_init"],
    ),
];

/// Flash and static RAM of the firmware from its sections, without the emulated flash.
fn elf_sizes(path: &Path) -> Result<ElfSizes> {
    use object::{Object, ObjectSection, ObjectSymbol};
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let elf = object::File::parse(&*data).map_err(|e| format!("{}: {e}", path.display()))?;
    let section = |name: &str| elf.section_by_name(name).map_or(0, |s| s.size());
    let emulated = elf
        .symbols()
        .find(|s| s.name() == Ok("EMULATED_FLASH"))
        .map_or(0, |s| s.size());

    let mut parts: Vec<(&'static str, u64)> = PARTS.iter().map(|(name, _)| (*name, 0)).collect();
    let mut other = 0;
    // Functions the linker folded into one (`--icf=all`) share an address: counted once.
    let mut seen = std::collections::HashSet::new();
    for symbol in elf.symbols() {
        if symbol.kind() != object::SymbolKind::Text || !seen.insert(symbol.address() & !1) {
            continue;
        }
        let name = symbol.name().unwrap_or("");
        match PARTS
            .iter()
            .position(|(_, pieces)| pieces.iter().any(|piece| name.contains(piece)))
        {
            Some(i) => parts[i].1 += symbol.size(),
            None => other += symbol.size(),
        }
    }
    // Code without a sized symbol (padding, literal pools the symbols leave out) counts as
    // other too, so that the parts add up to the flash.
    let sized: u64 = parts.iter().map(|(_, n)| n).sum::<u64>() + other;
    other += section(".text").saturating_sub(sized);
    parts.push(("other code (core, heapless, zeroize...)", other));
    parts.push((
        "read-only data (resource tables, strings)",
        section(".rodata"),
    ));
    parts.push(("vector table", section(".vector_table")));
    // The first part is the password hashing.
    let crypto = parts.first().map_or(0, |(_, bytes)| *bytes);
    Ok(ElfSizes {
        parts,
        flash: section(".vector_table") + section(".text") + section(".rodata") + section(".data"),
        ram: section(".data") + section(".bss") + section(".uninit") - emulated,
        crypto,
    })
}

/// `cargo package --workspace` verifies each crate against the others through a local
/// registry, whose sources cargo extracts under `$CARGO_HOME/registry/src/-<hash>/` and then
/// reuses as long as the version is the same: a dry run from the same folder would verify
/// against the sources of an earlier run. Those extracted copies of this workspace's crates
/// are removed first.
fn forget_packaged_crates() {
    let home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let Some(src) = home.map(|h| h.join("registry/src")) else {
        return;
    };
    let Ok(registries) = std::fs::read_dir(&src) else {
        return;
    };
    for registry in registries.flatten() {
        // Local registries of `cargo package` are named "-<hash>"; crates.io's are not.
        if !registry.file_name().to_string_lossy().starts_with('-') {
            continue;
        }
        let Ok(crates) = std::fs::read_dir(registry.path()) else {
            continue;
        };
        for krate in crates.flatten() {
            let name = krate.file_name().to_string_lossy().into_owned();
            if LIBRARY_CRATES
                .iter()
                .any(|c| name.starts_with(&format!("{c}-")))
            {
                let _ = std::fs::remove_dir_all(krate.path());
            }
        }
    }
}
