//! Desktop port: the lwM2M device stack as a WebSocket device.
//!
//! One binary WebSocket message carries one request APDU; the response is one binary
//! message (spec README, decision 1). The device runs on the main thread in the device loop
//! every port shares (`transport_traits::run::run`), which sleeps until the next request
//! or the engine's next deadline; [`WsHost`] is this port's host side, and each connection
//! has a thread that only moves bytes.
//!
//! Resources are bounded: at most `--max-connections` connections (more are refused at
//! once, the others go on), a WebSocket handshake must complete within
//! `--handshake-timeout` seconds, and a message larger than the largest request APDU is
//! refused before it is buffered (the connection is closed with code 1009). Connection
//! ids are handed out by the device loop, which never gives a new connection the id of
//! one still open or of the session's owner.

mod bridge;
mod demo;
mod flash;
mod modbus;
mod modbus_slave;
mod serial_target;
mod worker;

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use clap::Parser;
use lwm2m_core::session::Session;
use lwm2m_core::storage::{ConfigStore, LoadState, Loaded};
use lwm2m_core::target::TargetMux;
use lwm2m_core::wire::APDU_HEADER_LEN;
use lwm2m_core::{
    Channel, ChannelId, ChannelKind, Config, Device, Effect, FrameLimits, Instant, ResultCode,
};
use lwm2m_objects::firmware::FirmwareInfo;
use lwm2m_objects::interface::InterfaceInfo;
use lwm2m_objects::{standard_objects, DeviceHooks, DeviceInfo, StandardObjects};
use transport_traits::channels::ChannelIds;
use transport_traits::run::{self, Clock, HostEvent, Stopped};
use transport_traits::ErrorType;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::{Message, WebSocket};
use zeroize::Zeroize;

/// Largest Tap request frame and response this port accepts and produces.
const LIMITS: FrameLimits = FrameLimits {
    max_request: 1024,
    max_response: 1024,
};

/// Serial number compiled in (`LWM2M_SERIAL` at build time), overridable with `--serial`.
const BUILD_SERIAL: &str = match option_env!("LWM2M_SERIAL") {
    Some(serial) => serial,
    None => "LNX0000000000001",
};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "lwM2M (IoTize Tap) device serving WebSocket on the desktop"
)]
struct Args {
    /// Address to listen on (port 0 picks a free port; the real one is printed).
    #[arg(long, default_value = "127.0.0.1:2000")]
    ws: SocketAddr,
    /// Directory holding the device's flash image, `config.flash` (default: in memory,
    /// fresh each start).
    #[arg(long)]
    state: Option<PathBuf>,
    /// Serial number reported by /3//2.
    #[arg(long, default_value = BUILD_SERIAL)]
    serial: String,
    /// Start without the demo: a blank `--state` gives the empty factory configuration,
    /// and the simulated target is plain memory. With the demo (the default) a blank
    /// `--state` starts with, and saves, bundle 1 `demo`, readable by anonymous, with
    /// variables on the simulated target that a simulated process moves (a counter, a
    /// waveform around a set-point) and in the device; a factory reset gives the empty
    /// factory configuration either way.
    #[arg(long)]
    no_demo: bool,
    /// Most WebSocket connections open at a time; more are refused at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    max_connections: u16,
    /// Seconds a new connection has to complete its WebSocket handshake.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    handshake_timeout: u64,
    /// Start from the factory configuration (admin/admin) when `--state` holds a damaged
    /// one, and save it. Without it the device refuses to start on a damaged
    /// configuration rather than silently accept the factory credentials.
    #[arg(long)]
    factory_reset: bool,
    /// Start from the configuration saved before the newest one when the newest is
    /// damaged, and save it again.
    #[arg(long, conflicts_with = "factory_reset")]
    previous_config: bool,
    /// Seconds of silence after which a connection that does not own the session is
    /// closed (its slot freed); the owner's connection is never closed for silence.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout: u64,
    /// The Modbus TCP server the device reaches when the target protocol is MODBUS
    /// (`/1027//1` = 3): variables on its registers, `/1027//37` and `/38`. Without it,
    /// MODBUS answers BB (not available).
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "bridge_serial")]
    modbus: Option<String>,
    /// The raw serial line the device reaches when the target protocol is SERIAL
    /// (`/1027//1` = 6): a serial port served as TCP (ser2net, QEMU `-serial
    /// tcp:…,server`), reconnected when it goes away; `/1027//34` exchanges with it (the
    /// answer ends at the delimiter or timeout of `/1027//21`), `/35` and `/43` read and
    /// count what it sent unasked. Without it, SERIAL answers BB (not available).
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "bridge_serial")]
    target_serial: Option<String>,
    /// Serve Modbus TCP on this address as a side handler: a master reads and writes
    /// variables (variable `id` is the block of holding registers from `id × 32`) with the
    /// rights of `--modbus-slave-profile`, outside the session.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "bridge_serial")]
    modbus_slave: Option<SocketAddr>,
    /// The profile whose rights the Modbus master's requests run with (default:
    /// anonymous).
    #[arg(
        long,
        default_value_t = 0,
        value_name = "ID",
        requires = "modbus_slave"
    )]
    modbus_slave_profile: u16,
    /// Serve the serial line of a board, exposed as TCP at `tcp:HOST:PORT` (QEMU's
    /// `-serial tcp:…`), as this WebSocket endpoint instead of running a device here: one
    /// client at a time, each message a frame on the line (`transport_traits::serial`).
    #[arg(long, value_name = "tcp:HOST:PORT", value_parser = parse_bridge,
          conflicts_with_all = ["state", "factory_reset", "previous_config"])]
    bridge_serial: Option<String>,
    /// Milliseconds the board has to answer through the bridge (tests only).
    #[arg(long, default_value_t = 10_000, hide = true,
          value_parser = clap::value_parser!(u64).range(1..))]
    bridge_answer_ms: u64,
    /// Size of the connection id space (tests only: the production space is 65535).
    #[arg(long, default_value_t = u16::MAX, hide = true,
          value_parser = clap::value_parser!(u16).range(2..))]
    channel_ids: u16,
}

/// `--bridge-serial`'s value, checked.
fn parse_bridge(spec: &str) -> Result<String, String> {
    bridge::serial_address(spec).map(|_| spec.to_string())
}

/// The log, without the WebSocket library's trace records: they print every frame with
/// its payload (passwords, keys), whatever `RUST_LOG` asks.
struct NoFrameTraces(env_logger::Logger);

impl NoFrameTraces {
    fn allowed(metadata: &log::Metadata<'_>) -> bool {
        !(metadata.target().starts_with("tungstenite") && metadata.level() > log::Level::Debug)
    }
}

impl log::Log for NoFrameTraces {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        Self::allowed(metadata) && self.0.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        if Self::allowed(record.metadata()) {
            self.0.log(record);
        }
    }

    fn flush(&self) {
        self.0.flush();
    }
}

/// Exit status when `--state` holds a damaged configuration (sysexits' EX_CONFIG).
const EXIT_DAMAGED_CONFIG: u8 = 78;

/// `/3//11` after a start that replaced a damaged configuration by the factory one:
/// the NVM_ERROR result code (the client gives the value no meaning of its own).
const LAST_ERROR_CONFIG_LOST: u32 = ResultCode::NvmError.as_u8() as u32;

/// Board measurements of a desktop: free memory from the OS, clock from the system.
struct DesktopHooks;

impl DeviceHooks for DesktopHooks {
    fn free_memory(&self) -> u32 {
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|info| {
                let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
                let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
                Some(u32::try_from(kib.saturating_mul(1024)).unwrap_or(u32::MAX))
            })
            .unwrap_or(0)
    }
}

/// The system's clock, in Unix seconds: the device's wall clock at start and after a
/// reboot (`Device::set_unix_time`).
fn system_unix_time() -> Option<u32> {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    u32::try_from(since_epoch.as_secs()).ok()
}

enum Event {
    /// A TCP connection was accepted.
    Connected(TcpStream),
    Request {
        channel: ChannelId,
        apdu: Vec<u8>,
        reply: Sender<Reply>,
    },
    Closed(ChannelId),
    /// A request of the Modbus-slave side handler (`--modbus-slave`).
    Side(modbus_slave::SideRequest),
    /// The target worker finished an operation ([`worker`]).
    Wake,
    Shutdown,
}

struct Reply {
    response: Vec<u8>,
    /// The device reboots: the link goes down with it, once the answer is out (the
    /// connection thread says so on this channel).
    close: Option<Sender<()>>,
}

/// The target: for the memory protocols (SWD, the default), a simulated memory, 64 KiB
/// of RAM at 0x2000_0000 like a Cortex-M SRAM (the monitored system, so it survives a
/// reboot of the device), with the demo's process behind it ([`demo`]); for MODBUS, the
/// Modbus TCP server of `--modbus`; for SERIAL, the serial port over TCP of
/// `--target-serial`. The demo's simulated target runs on 3.3 V; without the demo the
/// desktop measures no target's supply (`/1027//7` answers A1).
type DesktopTarget = TargetMux<
    demo::SimulatedTarget,
    modbus::TcpMaster,
    serial_target::SerialTarget,
    demo::SimulatedSupply,
>;
const TARGET_RAM_BASE: u32 = 0x2000_0000;

/// The engine: its target and store are the worker's ([`worker::DesktopIo`]).
type DesktopDevice = Device<StandardObjects<DesktopHooks>>;

/// Why the device does not start on a damaged store whose previous image is intact.
const PREVIOUS_INTACT: &str = "its newest configuration is damaged; the one saved before it is \
                               intact (--previous-config starts from it)";
/// Why the device does not start on a damaged store.
const DAMAGED: &str =
    "it holds a configuration, but a damaged one (corrupt, or not written by this device)";

/// Why the device could not boot.
enum BootError {
    Io(io::Error),
    /// The store holds a configuration, but not a valid one: what is wrong with it.
    Damaged(String),
}

impl From<io::Error> for BootError {
    fn from(err: io::Error) -> Self {
        BootError::Io(err)
    }
}

/// Boots a device at start: the configuration comes from `store`, the factory default
/// when it holds none. A damaged store is an error unless the operator's recovery flags
/// (`--factory-reset`, `--previous-config`) say how to repair it, which is recorded in
/// `/3//11`. A reboot boots in place ([`reboot`]), without them.
fn boot(args: &Args, store: &mut flash::DesktopStore) -> Result<DesktopDevice, BootError> {
    let factory_reset = args.factory_reset;
    let previous_config = args.previous_config;
    let serial = &args.serial;
    let mut serial_number = heapless::String::new();
    for c in serial.chars().take(lwm2m_objects::device::SERIAL_LEN) {
        let _ = serial_number.push(c);
    }
    let info = DeviceInfo {
        manufacturer: "IoTize",
        flavor: concat!("lwm2m-device-linux ", env!("CARGO_PKG_VERSION")),
        serial: serial_number,
        firmware_version: lwm2m_objects::device::TAP_FIRMWARE_LEVEL,
    };
    let mut lost = false;
    let config = match store.load().map_err(io::Error::other)? {
        Loaded::Config(config) => {
            log::info!("configuration loaded (version {:08x})", config.version);
            config
        }
        Loaded::Blank if args.no_demo => {
            log::info!("no configuration saved yet: factory configuration");
            Config::default()
        }
        // The demo is the first configuration of a blank store, saved at once so that a
        // reboot finds it; a factory reset gives the empty factory configuration, which
        // the client's configurator starts from.
        Loaded::Blank => {
            log::info!("no configuration saved yet: the demo, saved");
            let mut config = Config::default();
            demo::add(&mut config);
            store.save(&config).map_err(io::Error::other)?;
            config
        }
        Loaded::Previous(config) if previous_config => {
            log::warn!(
                "the newest saved configuration is damaged: the previous one (version \
                 {:08x}) is loaded and saved again, as --previous-config asks",
                config.version
            );
            store.save(&config).map_err(io::Error::other)?;
            lost = true;
            config
        }
        Loaded::Damaged | Loaded::Previous(_) if factory_reset => {
            log::warn!(
                "the saved configuration is damaged: replaced by the factory configuration \
                 (admin/admin), as --factory-reset asks"
            );
            let config = Config::default();
            store.save(&config).map_err(io::Error::other)?;
            lost = true;
            config
        }
        Loaded::Previous(_) => return Err(BootError::Damaged(PREVIOUS_INTACT.into())),
        Loaded::Damaged => return Err(BootError::Damaged(DAMAGED.into())),
    };
    let mut objects = standard_objects(info, DesktopHooks);
    if lost {
        objects.0.set_last_error(LAST_ERROR_CONFIG_LOST);
    }
    *objects.1.info_mut() = interface_info(serial);
    objects.6.set_image(running_image());
    let mut device = Device::new(objects, config, Config::reset, LIMITS);
    device.take_packets_of(store);
    // The SCRAM nonces, the device's IVs and the key of `/1024//47`.
    device.seed(&entropy()?);
    Ok(device)
}

/// What the desktop says of its interfaces (`/1024//5`, `/21`, `/22`, `/23`, `/35`,
/// `/60`): the serial number as UID, WebSocket its only host protocol, no BLE radio, no
/// data log, the system's hostname, no product key.
fn interface_info(serial: &str) -> InterfaceInfo {
    let mut info = InterfaceInfo::EMPTY;
    let uid = &serial.as_bytes()[..serial.len().min(lwm2m_objects::interface::UID_LEN)];
    info.uid = heapless::Vec::from_slice(uid).unwrap_or_default();
    info.host_protocols = ChannelKind::WebSocket.host_protocol();
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    for c in hostname.trim().chars().filter(char::is_ascii_graphic) {
        if info.hostname.push(c).is_err() {
            break;
        }
    }
    info
}

/// The running image for `/5//6`: this executable, at address 0, with its
/// CRC-32/MPEG-2; `None` (the check answers A1) if it cannot be read.
fn running_image() -> Option<FirmwareInfo> {
    let path = std::env::current_exe().ok()?;
    let bytes = std::fs::read(&path).ok()?;
    let image = FirmwareInfo {
        address: 0,
        size: u32::try_from(bytes.len()).ok()?,
        crc: lwm2m_core::crypto::crc32(&bytes, None),
    };
    log::info!(
        "firmware image {}: {} bytes, CRC {:08x}",
        path.display(),
        image.size,
        image.crc
    );
    Some(image)
}

/// 32 bytes of the system's entropy.
fn entropy() -> io::Result<[u8; 32]> {
    use std::io::Read;
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut seed)?;
    Ok(seed)
}

/// A reboot: the device booted again in place. Damage found now is not repaired
/// (the operator's recovery flags answer the damage found at start): the device stops,
/// with the status it would stop with at start.
fn reboot(device: &mut DesktopDevice, store: &mut flash::DesktopStore) -> Result<(), BootError> {
    let loaded = device.boot_from(store).map_err(io::Error::other)?;
    // A clean start: nothing to report in `/3//11`.
    device.objects_mut().0.set_last_error(0);
    match loaded {
        LoadState::Config => {
            log::info!(
                "configuration loaded (version {:08x})",
                device.config().version
            );
            Ok(())
        }
        LoadState::Blank => {
            log::info!("no configuration saved yet: factory configuration");
            Ok(())
        }
        LoadState::Previous => Err(BootError::Damaged(PREVIOUS_INTACT.into())),
        LoadState::Damaged => Err(BootError::Damaged(DAMAGED.into())),
    }
}

fn main() -> ExitCode {
    let logger =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).build();
    let max = logger.filter();
    if log::set_boxed_logger(Box::new(NoFrameTraces(logger))).is_ok() {
        log::set_max_level(max);
    }
    let args = Args::parse();
    if let Some(serial) = &args.bridge_serial {
        let options = bridge::Options {
            serial: serial.clone(),
            ws: args.ws,
            max_message: MAX_MESSAGE,
            handshake: StdDuration::from_secs(args.handshake_timeout),
            idle: StdDuration::from_secs(args.idle_timeout),
            answer: StdDuration::from_millis(args.bridge_answer_ms),
            max_connections: usize::from(args.max_connections),
        };
        return match bridge::run(options) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                log::error!("{err}");
                ExitCode::FAILURE
            }
        };
    }
    match start(&args) {
        Ok(()) => {
            log::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(BootError::Damaged(why)) => {
            let file = args.state.as_deref().map(|dir| dir.join(flash::FILE_NAME));
            log::error!(
                "{}: {why}. Refusing to start with the factory configuration and its \
                 default credentials. Restore the file, or start with --factory-reset to \
                 replace it by the factory configuration.",
                file.as_deref()
                    .unwrap_or(std::path::Path::new("store"))
                    .display()
            );
            ExitCode::from(EXIT_DAMAGED_CONFIG)
        }
        Err(BootError::Io(err)) => {
            log::error!("{err}");
            ExitCode::FAILURE
        }
    }
}

/// The store of `--state`, and whether a damaged flash file was replaced by an erased
/// one (`--factory-reset`).
fn open_store(args: &Args) -> Result<(flash::DesktopStore, bool), BootError> {
    match flash::DesktopStore::open(args.state.as_deref(), false) {
        Ok(store) => Ok((store, false)),
        Err(flash::OpenError::Io(err)) => Err(BootError::Io(err)),
        Err(err @ flash::OpenError::WrongSize { .. }) if args.factory_reset => {
            log::warn!("{err}: replaced by an erased one, as --factory-reset asks");
            match flash::DesktopStore::open(args.state.as_deref(), true) {
                Ok(store) => Ok((store, true)),
                Err(err) => Err(BootError::Io(io::Error::other(err.to_string()))),
            }
        }
        Err(err @ flash::OpenError::WrongSize { .. }) => Err(BootError::Damaged(format!(
            "not a flash image of this device ({err})"
        ))),
    }
}

fn start(args: &Args) -> Result<(), BootError> {
    let (mut store, replaced) = open_store(args)?;
    for region in flash::BLOB_REGIONS {
        // What a board would hand its TLS stack or its JVM; the desktop only reports it.
        match lwm2m_core::blob::BlobStore::stored_len(store.blobs(), region.blob) {
            Ok(0) => {}
            Ok(n) => log::info!("blob /1024//{}: {n} bytes", region.blob.0),
            Err(err) => log::warn!("blob /1024//{}: {err}", region.blob.0),
        }
    }
    let modbus = match &args.modbus {
        Some(server) => Some(modbus::TcpMaster::new(server).map_err(BootError::Io)?),
        None => None,
    };
    if let Some(master) = &modbus {
        log::info!("target: Modbus TCP server {}", master.server());
    }
    let serial = match &args.target_serial {
        Some(peer) => Some(serial_target::target(peer).map_err(BootError::Io)?),
        None => None,
    };
    if let Some(line) = &serial {
        log::info!("target: serial line over TCP {}", line.port().peer());
    }
    let target: DesktopTarget =
        TargetMux::new(Some(demo::SimulatedTarget::new(!args.no_demo)), modbus)
            .with_serial(serial)
            .with_vcc((!args.no_demo).then_some(demo::SimulatedSupply));
    let mut device = boot(args, &mut store)?;
    if replaced {
        device
            .objects_mut()
            .0
            .set_last_error(LAST_ERROR_CONFIG_LOST);
    }

    let listener = TcpListener::bind(args.ws)
        .map_err(|err| io::Error::new(err.kind(), format!("listen on {}: {err}", args.ws)))?;
    let (events, inbox) = mpsc::channel();
    let mut io = worker::DesktopIo::start(target, store, events.clone())?;
    {
        let events = events.clone();
        // Ctrl-C, SIGTERM and SIGHUP (ctrlc's "termination" feature).
        ctrlc::set_handler(move || {
            let _ = events.send(Event::Shutdown);
        })
        .map_err(io::Error::other)?;
    }
    println!("listening on ws://{}", listener.local_addr()?);
    {
        let events = events.clone();
        thread::spawn(move || accept_loop(listener, events));
    }
    let mut ids = ChannelIds::new(1, args.channel_ids);
    let mut open = HashSet::new();
    // The Modbus-slave side handler: a channel id of its own, never a connection's.
    let side = match args.modbus_slave {
        Some(address) => {
            let slave = TcpListener::bind(address)?;
            let channel = ids
                .allocate(|_| false)
                .ok_or_else(|| io::Error::other("no channel id"))?;
            open.insert(channel);
            log::info!(
                "modbus slave on {} (profile {})",
                slave.local_addr()?,
                args.modbus_slave_profile
            );
            println!("modbus slave on {}", slave.local_addr()?);
            let events = events.clone();
            thread::spawn(move || modbus_slave::serve(slave, events));
            Some((channel, args.modbus_slave_profile))
        }
        None => None,
    };
    let links = Links {
        events,
        ids,
        open,
        max: usize::from(args.max_connections),
        timeouts: Timeouts {
            handshake: StdDuration::from_secs(args.handshake_timeout),
            idle: StdDuration::from_secs(args.idle_timeout),
        },
        owner: Arc::new(AtomicU32::new(NO_OWNER)),
        refused: Refusals::default(),
    };
    let mut host = WsHost {
        inbox,
        links,
        replies: HashMap::new(),
        started: StdInstant::now(),
        side,
    };
    run_device(device, &mut host, &mut io)
}

/// How long a connection may stay silent.
#[derive(Clone, Copy)]
struct Timeouts {
    /// The whole WebSocket handshake.
    handshake: StdDuration,
    /// Between two messages, for a connection that does not own the session.
    idle: StdDuration,
}

/// [`Links::owner`] when nobody owns the session.
const NO_OWNER: u32 = u32::MAX;

/// Counts refused connections, logged at most once a second (a flood of them must not
/// flood the log).
#[derive(Default)]
struct Refusals {
    since_log: u64,
    last_log: Option<StdInstant>,
}

impl Refusals {
    fn refused(&mut self, why: &str) {
        self.since_log += 1;
        let now = StdInstant::now();
        if self
            .last_log
            .is_none_or(|at| now.duration_since(at) >= StdDuration::from_secs(1))
        {
            log::warn!(
                "connection refused ({why}); {} refused since the last report",
                self.since_log
            );
            self.since_log = 0;
            self.last_log = Some(now);
        }
    }
}

/// The connections the device loop knows, and how new ones are let in.
struct Links {
    events: Sender<Event>,
    ids: ChannelIds,
    /// Ids of the connections whose thread has not ended yet.
    open: HashSet<ChannelId>,
    max: usize,
    timeouts: Timeouts,
    /// The id of the connection that owns the session ([`NO_OWNER`]: none), published
    /// for the connection threads, which close a silent connection that does not own it.
    owner: Arc<AtomicU32>,
    refused: Refusals,
}

impl Links {
    /// Gives `stream` an id and a thread, or refuses it (closing it) when the limit is
    /// reached or no id is free.
    fn admit(&mut self, stream: TcpStream, session: &Session) {
        if self.open.len() >= self.max {
            self.refused.refused("every connection slot taken");
            return;
        }
        let open = &self.open;
        let Some(channel) = self
            .ids
            .allocate(|id| open.contains(&id) || session.is_owner(id))
        else {
            self.refused.refused("no connection id free");
            return;
        };
        self.open.insert(channel);
        let events = self.events.clone();
        let timeouts = self.timeouts;
        let owner = self.owner.clone();
        let spawned = thread::Builder::new()
            .name(format!("ch{}", channel.0))
            .spawn(move || {
                if let Err(err) = serve_connection(stream, channel, &events, timeouts, &owner) {
                    log::debug!("ch{}: {}", channel.0, err);
                }
                let _ = events.send(Event::Closed(channel));
            });
        if let Err(err) = spawned {
            log::warn!("connection refused, no thread: {err}");
            self.open.remove(&channel);
        }
    }

    /// Publishes who owns the session now.
    fn publish_owner(&self, session: &Session) {
        let owner = session
            .owner()
            .map_or(NO_OWNER, |owner| u32::from(owner.id.0));
        self.owner.store(owner, Ordering::Relaxed);
    }
}

/// Runs the device on the shared device loop until it is stopped; a reboot boots it
/// again in place from the same store (`Device::boot`: the session ends, the login
/// lock-out is kept), and stops the device as at start when the store is damaged.
fn run_device(
    mut device: DesktopDevice,
    host: &mut WsHost,
    io: &mut worker::DesktopIo,
) -> Result<(), BootError> {
    let mut clock = SinceStart(host.started);
    set_wall_clock(&mut device, &mut clock);
    let mut rx = vec![0u8; MAX_MESSAGE];
    let mut tx = vec![0u8; usize::from(LIMITS.max_response)];
    loop {
        let stopped = embassy_futures::block_on(run::asynch::run(
            &mut device,
            host,
            io,
            &mut clock,
            &mut rx,
            &mut tx,
        ));
        match stopped {
            Ok(Stopped::Effect(Effect::Reboot)) => {
                log::info!("reboot");
                reboot(&mut device, &mut io.store)?;
                set_wall_clock(&mut device, &mut clock);
            }
            Ok(Stopped::Effect(Effect::FactoryReset)) => {
                log::info!("factory reset: default configuration saved");
            }
            Ok(Stopped::Effect(_)) => {}
            Ok(Stopped::Asked) | Err(_) => return Ok(()),
        }
    }
}

/// The device's wall clock from the system's.
fn set_wall_clock(device: &mut DesktopDevice, clock: &mut SinceStart) {
    match system_unix_time() {
        Some(unix) => device.set_unix_time(unix, clock.now()),
        None => log::warn!(
            "the system clock is before 1970 or after 2106: the device counts from its start"
        ),
    }
}

/// The device's clock: milliseconds since the process started.
struct SinceStart(StdInstant);

impl Clock for SinceStart {
    fn now(&mut self) -> Instant {
        Instant::from_millis(self.0.elapsed().as_millis() as u64)
    }
}

/// The WebSocket connections as the device loop's host side: requests come from the
/// connection threads over a channel, answers go back to the thread that asked.
struct WsHost {
    inbox: Receiver<Event>,
    links: Links,
    /// Where the answer to each connection's pending request goes.
    replies: HashMap<ChannelId, Sender<Reply>>,
    started: StdInstant,
    /// The Modbus-slave side handler's channel and profile.
    side: Option<(ChannelId, u16)>,
}

impl ErrorType for WsHost {
    type Error = transport_traits::ErrorKind;
}

/// The device loop's host, async: its waits block on the inbox (the host is the
/// reactor, [`worker`]); a wake-up of the target worker makes the loop look at the
/// operation it awaits.
impl run::asynch::Host for WsHost {
    async fn wait(
        &mut self,
        session: &Session,
        deadline: Option<Instant>,
        buf: &mut [u8],
    ) -> Result<HostEvent, Self::Error> {
        self.links.publish_owner(session);
        std::future::poll_fn(|cx| match self.next_event(session, deadline, buf) {
            Some(event) => std::task::Poll::Ready(Ok(event)),
            None => {
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            }
        })
        .await
    }

    async fn reply(
        &mut self,
        channel: ChannelId,
        frame: &[u8],
        effect: Option<Effect>,
    ) -> Result<(), Self::Error> {
        self.send_reply(channel, frame, effect);
        Ok(())
    }
}

impl WsHost {
    /// The next event until `deadline`, blocking; `None` on a wake-up of the target
    /// worker. A request longer than `buf` (the loop's scratch while an operation is
    /// awaited, which it answers `A8` without reading) is reported with length 0.
    fn next_event(
        &mut self,
        session: &Session,
        deadline: Option<Instant>,
        buf: &mut [u8],
    ) -> Option<HostEvent> {
        loop {
            let event = match deadline {
                Some(at) => {
                    let now = self.started.elapsed().as_millis() as u64;
                    let wait = at.as_millis().saturating_sub(now);
                    match self.inbox.recv_timeout(StdDuration::from_millis(wait)) {
                        Ok(event) => event,
                        Err(RecvTimeoutError::Timeout) => return Some(HostEvent::Timeout),
                        Err(RecvTimeoutError::Disconnected) => return Some(HostEvent::Stop),
                    }
                }
                None => match self.inbox.recv() {
                    Ok(event) => event,
                    Err(_) => return Some(HostEvent::Stop),
                },
            };
            match event {
                Event::Connected(stream) => self.links.admit(stream, session),
                Event::Request {
                    channel,
                    mut apdu,
                    reply,
                } => {
                    // Connection threads refuse messages over MAX_MESSAGE, the size of the
                    // loop's buffer; its scratch while an operation is awaited is shorter.
                    let len = match buf.get_mut(..apdu.len()) {
                        Some(into) => {
                            into.copy_from_slice(&apdu);
                            apdu.len()
                        }
                        None => 0,
                    };
                    // A login body carries a password.
                    apdu.zeroize();
                    self.replies.insert(channel, reply);
                    let channel = Channel {
                        id: channel,
                        kind: ChannelKind::WebSocket,
                    };
                    return Some(HostEvent::Request { channel, len });
                }
                Event::Closed(channel) => {
                    self.links.open.remove(&channel);
                    self.replies.remove(&channel);
                    return Some(HostEvent::Closed(channel));
                }
                Event::Side(request) => {
                    let Some((id, profile)) = self.side else {
                        continue;
                    };
                    // Its master was answered without it: not run late.
                    if request.given_up.load(Ordering::Acquire) {
                        continue;
                    }
                    let len = match buf.get_mut(..request.apdu.len()) {
                        Some(into) => {
                            into.copy_from_slice(&request.apdu);
                            request.apdu.len()
                        }
                        None => 0,
                    };
                    self.replies.insert(id, request.reply);
                    let channel = Channel {
                        id,
                        kind: ChannelKind::Side,
                    };
                    return Some(HostEvent::Side {
                        channel,
                        profile,
                        len,
                    });
                }
                Event::Wake => return None,
                Event::Shutdown => return Some(HostEvent::Stop),
            }
        }
    }

    /// Sends the answer to `channel`'s pending request; before a reboot, waits until it
    /// is out.
    fn send_reply(&mut self, channel: ChannelId, frame: &[u8], effect: Option<Effect>) {
        if let Some(reply) = self.replies.remove(&channel) {
            let (done, sent) = mpsc::channel();
            let reboot = effect == Some(Effect::Reboot);
            let _ = reply.send(Reply {
                response: frame.to_vec(),
                close: reboot.then_some(done),
            });
            // Before the device reboots (and the process may stop), the answer is out.
            if reboot {
                let _ = sent.recv_timeout(StdDuration::from_secs(2));
            }
        }
    }
}

fn accept_loop(listener: TcpListener, events: Sender<Event>) {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                if events.send(Event::Connected(stream)).is_err() {
                    return;
                }
            }
            // Out of file descriptors and the like: wait rather than spin.
            Err(err) => {
                log::warn!("accept: {err}");
                thread::sleep(StdDuration::from_millis(50));
            }
        }
    }
}

/// A connection's TCP stream; every read waits at most until `deadline` (the end of the
/// handshake, then of the idle time allowed until the next whole message), so a peer
/// trickling bytes cannot hold a slot longer.
struct Link {
    stream: TcpStream,
    deadline: Option<StdInstant>,
}

impl Link {
    /// `stream`, whose reads wait at most until `deadline`.
    fn new(stream: TcpStream, deadline: Option<StdInstant>) -> Link {
        Link { stream, deadline }
    }
}

impl io::Read for Link {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(StdInstant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "too slow: the handshake or a message did not complete in time",
                ));
            }
            self.stream.set_read_timeout(Some(left))?;
        }
        self.stream.read(buf)
    }
}

impl io::Write for Link {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// Closes a WebSocket with `code` and `reason`, sending what is buffered; the peer may be
/// gone already.
fn close_ws<S: io::Read + io::Write>(socket: &mut WebSocket<S>, code: CloseCode, reason: &str) {
    let _ = socket.close(Some(CloseFrame {
        code,
        reason: reason.to_string().into(),
    }));
    let _ = socket.flush();
}

/// Largest WebSocket message (and frame) accepted: one request APDU of the advertised
/// size. A larger one is refused from its header, before its payload is buffered.
const MAX_MESSAGE: usize = APDU_HEADER_LEN + LIMITS.max_request as usize;

fn serve_connection(
    stream: TcpStream,
    channel: ChannelId,
    events: &Sender<Event>,
    timeouts: Timeouts,
    owner: &AtomicU32,
) -> Result<(), String> {
    let peer = stream.peer_addr().map_err(|e| e.to_string())?;
    // A peer that vanishes without closing (a phone out of range) is found out.
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(StdDuration::from_secs(30))
        .with_interval(StdDuration::from_secs(10))
        .with_retries(3);
    socket2::SockRef::from(&stream)
        .set_tcp_keepalive(&keepalive)
        .map_err(|e| e.to_string())?;
    // A peer that does not read what it is sent cannot hold the thread either.
    stream
        .set_write_timeout(Some(timeouts.handshake))
        .map_err(|e| e.to_string())?;
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let link = Link::new(stream, Some(StdInstant::now() + timeouts.handshake));
    let mut socket: WebSocket<Link> = tungstenite::accept_with_config(link, Some(config))
        .map_err(|e| format!("{peer}: handshake: {e}"))?;
    // From now on a whole message must arrive within the idle timeout (bytes trickled
    // one at a time do not reset it); then a connection that does not own the session is
    // closed.
    socket.get_mut().deadline = Some(StdInstant::now() + timeouts.idle);
    socket
        .get_mut()
        .stream
        .set_write_timeout(Some(timeouts.idle))
        .map_err(|e| e.to_string())?;
    log::info!("ch{}: connected from {}", channel.0, peer);
    loop {
        let apdu = match socket.read() {
            Ok(Message::Binary(bytes)) => {
                socket.get_mut().deadline = Some(StdInstant::now() + timeouts.idle);
                // Reuses the library's buffer when it holds the only reference, so that
                // the copy wiped after the request is the only one.
                Vec::from(bytes)
            }
            // One binary message is one APDU; anything else is not this protocol.
            Ok(Message::Text(_)) => {
                let _ = socket.close(None);
                let _ = socket.flush();
                return Err("text message refused".into());
            }
            Ok(Message::Close(_)) => return Ok(()),
            Ok(_) => {
                socket.get_mut().deadline = Some(StdInstant::now() + timeouts.idle);
                continue;
            }
            Err(tungstenite::Error::Capacity(err)) => {
                close_ws(
                    &mut socket,
                    CloseCode::Size,
                    "larger than the largest request",
                );
                return Err(format!("message refused: {err}"));
            }
            Err(tungstenite::Error::Io(err))
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if owner.load(Ordering::Relaxed) == u32::from(channel.0) {
                    socket.get_mut().deadline = Some(StdInstant::now() + timeouts.idle);
                    continue;
                }
                close_ws(&mut socket, CloseCode::Away, "idle");
                return Err("idle, not the session owner: closed".into());
            }
            Err(err) => return Err(err.to_string()),
        };
        let (reply, answer) = mpsc::channel();
        events
            .send(Event::Request {
                channel,
                apdu,
                reply,
            })
            .map_err(|_| "device stopped".to_string())?;
        let Reply { response, close } = answer.recv().map_err(|_| "device stopped".to_string())?;
        let sent = socket.send(Message::Binary(response.into()));
        if let Some(done) = close {
            let _ = socket.close(None);
            let _ = socket.flush();
            let _ = done.send(());
            return sent.map_err(|e| e.to_string());
        }
        sent.map_err(|e| e.to_string())?;
    }
}
