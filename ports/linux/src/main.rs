//! Desktop port: the lwM2M device stack as a WebSocket device.
//!
//! One binary WebSocket message carries one request APDU; the response is one binary
//! message (spec README, decision 1). The device engine runs on the main thread, which
//! sleeps until the next request or the engine's next deadline; each connection has a
//! thread that only moves bytes.

mod flash;

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::Instant as StdInstant;

use clap::Parser;
use lwm2m_core::storage::ConfigStore;
use lwm2m_core::target::MemoryTarget;
use lwm2m_core::{Channel, ChannelId, ChannelKind, Config, Device, Effect, FrameLimits, Instant};
use lwm2m_objects::{standard_objects, DeviceHooks, DeviceInfo, StandardObjects};
use target_traits::RamTarget;
use tungstenite::{Message, WebSocket};

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
}

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

    fn unix_time(&self) -> Option<u32> {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        u32::try_from(since_epoch.as_secs()).ok()
    }
}

enum Event {
    Request {
        channel: ChannelId,
        apdu: Vec<u8>,
        reply: Sender<Reply>,
    },
    Closed(ChannelId),
    Shutdown,
}

struct Reply {
    response: Vec<u8>,
    /// The device rebooted: the link goes down with it.
    close: bool,
}

/// The simulated target the desktop device reads variables from: 64 KiB of RAM at
/// 0x2000_0000, like a Cortex-M SRAM. It is the monitored system, so it survives a reboot
/// of the device.
type DesktopTarget = MemoryTarget<RamTarget<{ 64 * 1024 }>>;
const TARGET_RAM_BASE: u32 = 0x2000_0000;

type DesktopDevice = Device<StandardObjects<DesktopHooks>, DesktopTarget, flash::DesktopStore>;

/// Boots a device: the configuration comes from `store` (the factory default when it holds
/// none).
fn boot(
    serial: &str,
    target: DesktopTarget,
    mut store: flash::DesktopStore,
) -> io::Result<DesktopDevice> {
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
    let config = match store.load().map_err(io::Error::other)? {
        Some(config) => {
            log::info!("configuration loaded (version {:08x})", config.version);
            config
        }
        None => Config::default(),
    };
    Ok(Device::new(
        standard_objects(info, DesktopHooks),
        config,
        Config::default,
        LIMITS,
    )
    .with_target(target)
    .with_store(store))
}

fn main() -> io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let store = flash::DesktopStore::open(args.state.as_deref())?;
    let device = boot(
        &args.serial,
        MemoryTarget(RamTarget::new(TARGET_RAM_BASE)),
        store,
    )?;

    let listener = TcpListener::bind(args.ws)?;
    let (events, inbox) = mpsc::channel();
    {
        let events = events.clone();
        ctrlc::set_handler(move || {
            let _ = events.send(Event::Shutdown);
        })
        .map_err(io::Error::other)?;
    }
    println!("listening on ws://{}", listener.local_addr()?);
    thread::spawn(move || accept_loop(listener, events));
    run_device(device, &args.serial, inbox);
    log::info!("stopped");
    Ok(())
}

/// The device loop: handles requests one at a time and polls the engine at its
/// deadlines.
fn run_device(mut device: DesktopDevice, serial: &str, inbox: Receiver<Event>) {
    let start = StdInstant::now();
    let now = || Instant::from_millis(start.elapsed().as_millis() as u64);
    let mut deadline = device.next_deadline();
    let mut out = vec![0u8; usize::from(LIMITS.max_response)];
    loop {
        let event = match deadline {
            Some(at) => {
                let wait = at.saturating_since(now()).as_millis();
                match inbox.recv_timeout(std::time::Duration::from_millis(wait)) {
                    Ok(event) => event,
                    Err(RecvTimeoutError::Timeout) => {
                        deadline = device.poll(now());
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
            None => match inbox.recv() {
                Ok(event) => event,
                Err(_) => return,
            },
        };
        match event {
            Event::Request {
                channel,
                apdu,
                reply,
            } => {
                let channel = Channel {
                    id: channel,
                    kind: ChannelKind::WebSocket,
                };
                let outcome = device.handle(channel, &apdu, now(), &mut out);
                log::debug!(
                    "ch{} rx {} tx {}",
                    channel.id.0,
                    Hex(&apdu),
                    Hex(&out[..outcome.len])
                );
                deadline = outcome.next_deadline;
                let close = match outcome.effect {
                    Some(Effect::Reboot) => {
                        log::info!("reboot");
                        true
                    }
                    Some(Effect::FactoryReset) => {
                        log::info!("factory reset: default configuration saved");
                        false
                    }
                    _ => false,
                };
                let _ = reply.send(Reply {
                    response: out[..outcome.len].to_vec(),
                    close,
                });
                if close {
                    let (target, store) = device.into_parts();
                    device = match boot(serial, target, store) {
                        Ok(device) => device,
                        Err(err) => {
                            log::error!("reboot failed: {err}");
                            return;
                        }
                    };
                    deadline = device.next_deadline();
                }
            }
            Event::Closed(channel) => {
                device.channel_closed(channel);
                deadline = device.next_deadline();
            }
            Event::Shutdown => return,
        }
    }
}

fn accept_loop(listener: TcpListener, events: Sender<Event>) {
    let mut next_id: u16 = 0;
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        next_id = next_id.wrapping_add(1);
        let channel = ChannelId(next_id);
        let events = events.clone();
        thread::spawn(move || {
            if let Err(err) = serve_connection(stream, channel, &events) {
                log::debug!("ch{}: {}", channel.0, err);
            }
            let _ = events.send(Event::Closed(channel));
        });
    }
}

fn serve_connection(
    stream: TcpStream,
    channel: ChannelId,
    events: &Sender<Event>,
) -> Result<(), String> {
    let peer = stream.peer_addr().map_err(|e| e.to_string())?;
    let mut socket: WebSocket<TcpStream> =
        tungstenite::accept(stream).map_err(|e| e.to_string())?;
    log::info!("ch{}: connected from {}", channel.0, peer);
    loop {
        let apdu = match socket.read().map_err(|e| e.to_string())? {
            Message::Binary(bytes) => bytes.to_vec(),
            // One binary message is one APDU; anything else is not this protocol.
            Message::Text(_) => {
                let _ = socket.close(None);
                return Err("text message refused".into());
            }
            Message::Close(_) => return Ok(()),
            _ => continue,
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
        socket
            .send(Message::Binary(response.into()))
            .map_err(|e| e.to_string())?;
        if close {
            let _ = socket.close(None);
            let _ = socket.flush();
            return Ok(());
        }
    }
}

struct Hex<'a>(&'a [u8]);

impl std::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}
