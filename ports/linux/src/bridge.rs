//! `--bridge-serial tcp:HOST:PORT`: a board's serial line, exposed as TCP (QEMU's
//! `-serial tcp:…`), served as a WebSocket endpoint, so that the real client reaches a
//! board.
//!
//! Each binary WebSocket message (one request APDU) is sent on the line as one frame of
//! `transport_traits::serial`; the next frame the board sends back is the answer, one
//! binary message. The board sees one serial channel with its own session rules, so the
//! bridge serves one WebSocket client at a time: another one is closed at once with code
//! 1013 (try again later). When the client goes away the bridge sends the link-closed
//! frame (an empty APDU) and the board ends the session of its serial channel, as a link
//! of its own closing would.
//!
//! Bounded like the device: a message larger than the largest request is refused from
//! its header (code 1009), a handshake must complete within the handshake timeout, a
//! client silent for the idle timeout is closed, and a board that does not answer within
//! 10 s closes the client with code 1011 (what the board sends late is dropped before the
//! next request goes out).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use transport_traits::serial::{encode, encoded_len, Decoder};

use crate::close_ws;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

/// How long the bridge waits for the serial line to accept its connection (QEMU listens
/// a moment after it starts).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer frame a board sends (APDU), with room to spare.
const MAX_ANSWER: usize = 4096;
/// Room of the decoder: an answer and its CRC.
const DECODER_ROOM: usize = MAX_ANSWER + transport_traits::serial::CRC_LEN;

/// What the bridge needs to know.
pub struct Options {
    /// `tcp:HOST:PORT` of the serial line.
    pub serial: String,
    /// Where to serve WebSocket.
    pub ws: SocketAddr,
    /// Largest request message accepted.
    pub max_message: usize,
    /// Time a client has to complete its handshake.
    pub handshake: Duration,
    /// Time a client may stay silent.
    pub idle: Duration,
    /// Time the board has to answer a request.
    pub answer: Duration,
}

/// The serial line and the state of its receiver.
struct Line {
    stream: TcpStream,
    decoder: Box<Decoder<DECODER_ROOM>>,
    /// An answer timed out: what the board sends late is dropped before the next request.
    stale: bool,
    dropped: u64,
    /// Time the board has to answer.
    answer_timeout: Duration,
}

impl Line {
    /// Sends `apdu` and waits for the board's answer.
    fn exchange(&mut self, apdu: &[u8]) -> io::Result<Vec<u8>> {
        if self.stale {
            self.drain()?;
        }
        self.send(apdu)?;
        let deadline = Instant::now() + self.answer_timeout;
        let mut chunk = [0u8; 256];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.stale = true;
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the board did not answer",
                ));
            }
            self.stream.set_read_timeout(Some(left))?;
            let n = match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the serial line closed",
                    ))
                }
                Ok(n) => n,
                Err(err) if is_timeout(&err) => continue,
                Err(err) => return Err(err),
            };
            for (i, &byte) in chunk[..n].iter().enumerate() {
                match self.decoder.push(byte) {
                    None => {}
                    Some(Ok([])) => {}
                    Some(Ok(answer)) => {
                        let answer = answer.to_vec();
                        if i + 1 < n {
                            // The board answers one request with one frame: more bytes
                            // now are noise, dropped with the rest before the next one.
                            self.stale = true;
                        }
                        return Ok(answer);
                    }
                    Some(Err(err)) => {
                        self.dropped += 1;
                        log::debug!("serial frame dropped: {err:?}");
                    }
                }
            }
        }
    }

    /// Sends one frame holding `apdu` (empty: the link-closed frame).
    fn send(&mut self, apdu: &[u8]) -> io::Result<()> {
        let mut frame = vec![0u8; encoded_len(apdu.len())];
        let len = encode(apdu, &mut frame)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
        self.stream.write_all(&frame[..len])?;
        self.stream.flush()
    }

    /// Drops what the line holds now (a late answer, noise).
    fn drain(&mut self) -> io::Result<()> {
        self.stream
            .set_read_timeout(Some(Duration::from_millis(50)))?;
        let mut chunk = [0u8; 256];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the serial line closed",
                    ))
                }
                Ok(_) => {}
                Err(err) if is_timeout(&err) => break,
                Err(err) => return Err(err),
            }
        }
        self.stale = false;
        // The next answer starts with a delimiter, which ends whatever the decoder holds.
        Ok(())
    }
}

fn is_timeout(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The address of `tcp:HOST:PORT`.
pub fn serial_address(spec: &str) -> Result<String, String> {
    let addr = spec
        .strip_prefix("tcp:")
        .ok_or_else(|| format!("{spec}: a serial line is given as tcp:HOST:PORT"))?;
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            Ok(addr.to_string())
        }
        _ => Err(format!("{spec}: a serial line is given as tcp:HOST:PORT")),
    }
}

/// Connects to the serial line, retrying while nothing listens yet.
fn connect(addr: &str) -> io::Result<TcpStream> {
    let start = Instant::now();
    loop {
        let attempt = addr
            .to_socket_addrs()
            .and_then(|mut addrs| {
                addrs
                    .next()
                    .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))
            })
            .and_then(|a| TcpStream::connect_timeout(&a, Duration::from_secs(1)));
        match attempt {
            Ok(stream) => return Ok(stream),
            Err(err) if start.elapsed() < CONNECT_TIMEOUT => {
                log::debug!("serial line {addr}: {err}, retrying");
                thread::sleep(Duration::from_millis(100));
            }
            Err(err) => {
                return Err(io::Error::new(
                    err.kind(),
                    format!("serial line {addr}: {err}"),
                ))
            }
        }
    }
}

/// Runs the bridge until the process is stopped.
pub fn run(options: Options) -> io::Result<()> {
    let addr = serial_address(&options.serial)
        .map_err(|why| io::Error::new(io::ErrorKind::InvalidInput, why))?;
    let stream = connect(&addr)?;
    stream.set_nodelay(true)?;
    log::info!("bridging serial line {addr}");
    let line = Arc::new(Mutex::new(Line {
        stream,
        decoder: Box::new(Decoder::new()),
        stale: true,
        dropped: 0,
        answer_timeout: options.answer,
    }));
    let listener = TcpListener::bind(options.ws)
        .map_err(|err| io::Error::new(err.kind(), format!("listen on {}: {err}", options.ws)))?;
    ctrlc::set_handler(|| {
        log::info!("stopped");
        std::process::exit(0);
    })
    .map_err(io::Error::other)?;
    println!("listening on ws://{}", listener.local_addr()?);
    let busy = Arc::new(AtomicBool::new(false));
    let options = Arc::new(options);
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(err) => {
                log::warn!("accept: {err}");
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let (line, busy, options) = (line.clone(), busy.clone(), options.clone());
        thread::spawn(move || {
            if let Err(why) = serve(stream, &line, &busy, &options) {
                log::info!("client: {why}");
            }
        });
    }
    Ok(())
}

/// Serves one WebSocket client.
fn serve(
    stream: TcpStream,
    line: &Mutex<Line>,
    busy: &AtomicBool,
    options: &Options,
) -> Result<(), String> {
    let peer = stream.peer_addr().map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(options.handshake))
        .and_then(|()| stream.set_write_timeout(Some(options.handshake)))
        .map_err(|e| e.to_string())?;
    let config = WebSocketConfig::default()
        .max_message_size(Some(options.max_message))
        .max_frame_size(Some(options.max_message));
    let mut socket: WebSocket<TcpStream> = tungstenite::accept_with_config(stream, Some(config))
        .map_err(|e| format!("{peer}: handshake: {e}"))?;
    if busy.swap(true, Ordering::AcqRel) {
        close_ws(
            &mut socket,
            CloseCode::Again,
            "the board's serial channel is in use",
        );
        return Err(format!("{peer}: refused, another client is connected"));
    }
    log::info!("{peer}: connected");
    let result = exchange_all(&mut socket, line, options);
    // Whatever ended it, the board hears that its interlocutor went away.
    if let Ok(mut line) = line.lock() {
        if let Err(err) = line.send(&[]) {
            log::warn!("serial line: {err}");
        }
    }
    if let Ok(line) = line.lock() {
        log::info!(
            "{peer}: gone ({} frames dropped on the line so far)",
            line.dropped
        );
    }
    busy.store(false, Ordering::Release);
    result.map_err(|why| format!("{peer}: {why}"))
}

fn exchange_all(
    socket: &mut WebSocket<TcpStream>,
    line: &Mutex<Line>,
    options: &Options,
) -> Result<(), String> {
    socket
        .get_mut()
        .set_read_timeout(Some(options.idle))
        .and_then(|()| socket.get_mut().set_write_timeout(Some(options.idle)))
        .map_err(|e| e.to_string())?;
    loop {
        let apdu = match socket.read() {
            Ok(Message::Binary(bytes)) => bytes,
            Ok(Message::Text(_)) => {
                let _ = socket.close(None);
                let _ = socket.flush();
                return Err("text message refused".into());
            }
            Ok(Message::Close(_)) => return Ok(()),
            Ok(_) => continue,
            Err(tungstenite::Error::Capacity(err)) => {
                close_ws(socket, CloseCode::Size, "larger than the largest request");
                return Err(format!("message refused: {err}"));
            }
            Err(err) => return Err(err.to_string()),
        };
        // A request is never empty: an empty frame on the line means "link closed".
        if apdu.is_empty() {
            continue;
        }
        let answer = line
            .lock()
            .map_err(|_| "serial line poisoned".to_string())?
            .exchange(&apdu);
        match answer {
            Ok(answer) => socket
                .send(Message::Binary(answer.into()))
                .map_err(|e| e.to_string())?,
            Err(err) => {
                close_ws(socket, CloseCode::Error, "the board did not answer");
                return Err(err.to_string());
            }
        }
    }
}
