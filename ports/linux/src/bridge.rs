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
//! The link-closed frame is also sent when the bridge starts (a bridge killed before
//! left the session open) and when it is stopped (SIGINT, SIGTERM), and whenever a
//! client's turn ends, on an error or a panic too.
//!
//! Bounded like the device: a message larger than the largest request is refused from
//! its header (code 1009), a handshake must complete within the handshake timeout, each
//! whole request message within the idle timeout (pings do not count), and a board that
//! does not answer within 10 s closes the client with code 1011. Its late answer is then
//! waited for (as long again) and dropped before the next request goes out, and whatever
//! else the board sent unasked is dropped too; a board that does not stop sending is an
//! error after the answer timeout, never a hang.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use transport_traits::serial::{encode, encoded_len, Decoder};

use crate::{close_ws, Link};
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
    /// Most connections open at a time (the one served and those being turned away).
    pub max_connections: usize,
}

/// The serial line and the state of its receiver.
struct Line {
    stream: TcpStream,
    decoder: Box<Decoder<DECODER_ROOM>>,
    /// A request timed out: the board may still answer it, and that answer is dropped
    /// before the next request goes out (waited for up to the answer timeout).
    late: bool,
    dropped: u64,
    /// Time the board has to answer.
    answer_timeout: Duration,
    /// The line reached its end: nothing more can be bridged.
    closed: bool,
}

/// Whether the serial line reached its end.
fn line_is_closed(line: &Mutex<Line>) -> bool {
    match line.lock() {
        Ok(line) => line.closed,
        Err(poisoned) => poisoned.into_inner().closed,
    }
}

/// The serial line closed.
fn line_closed() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "the serial line closed")
}

impl Line {
    /// Sends `apdu` and waits for the board's answer: the first frame it sends after the
    /// request (what it sent before is dropped first).
    fn exchange(&mut self, apdu: &[u8]) -> io::Result<Vec<u8>> {
        let answer = self.exchange_once(apdu);
        if let Err(err) = &answer {
            self.closed |= matches!(
                err.kind(),
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionReset
            );
        }
        answer
    }

    fn exchange_once(&mut self, apdu: &[u8]) -> io::Result<Vec<u8>> {
        self.sync()?;
        self.send(apdu)?;
        match self.next_frame(Instant::now() + self.answer_timeout)? {
            Some(answer) => Ok(answer),
            None => {
                self.late = true;
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the board did not answer",
                ))
            }
        }
    }

    /// Drops what the board sent unasked: the late answer of a request that timed out
    /// (waited for, up to the answer timeout), then whatever the line holds now. A board
    /// that does not stop sending is an error after the answer timeout.
    fn sync(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + self.answer_timeout;
        if self.late {
            if self.next_frame(deadline)?.is_some() {
                log::debug!("late answer dropped");
            }
            self.late = false;
        }
        self.stream.set_nonblocking(true)?;
        let drained = self.drain_until(deadline);
        self.stream.set_nonblocking(false)?;
        drained
    }

    /// Reads and drops bytes until none is waiting; an error if the line still sends at
    /// `deadline`.
    fn drain_until(&mut self, deadline: Instant) -> io::Result<()> {
        let mut chunk = [0u8; 256];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(line_closed()),
                Ok(_) if Instant::now() >= deadline => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the board does not stop sending",
                    ))
                }
                Ok(_) => {}
                // Whatever the decoder holds is ended by the next frame's delimiter.
                Err(err) if is_timeout(&err) => return Ok(()),
                Err(err) => return Err(err),
            }
        }
    }

    /// The next non-empty frame the board sends before `deadline`; `None` if none came.
    fn next_frame(&mut self, deadline: Instant) -> io::Result<Option<Vec<u8>>> {
        let mut byte = [0u8; 1];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.stream.set_read_timeout(Some(left))?;
            // One byte at a time: what follows the frame stays in the socket, for
            // `sync` to drop.
            match self.stream.read(&mut byte) {
                Ok(0) => return Err(line_closed()),
                Ok(_) => {}
                Err(err) if is_timeout(&err) => continue,
                Err(err) => return Err(err),
            }
            match self.decoder.push(byte[0]) {
                None | Some(Ok([])) => {}
                Some(Ok(frame)) => return Ok(Some(frame.to_vec())),
                Some(Err(err)) => {
                    self.dropped += 1;
                    log::debug!("serial frame dropped: {err:?}");
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
}

/// Tells the board that its interlocutor went away (the link-closed frame), whatever
/// state the line's lock is in.
fn link_closed(line: &Mutex<Line>) {
    let mut line = match line.lock() {
        Ok(line) => line,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Err(err) = line.send(&[]) {
        log::warn!("serial line: {err}");
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
        late: false,
        dropped: 0,
        answer_timeout: options.answer,
        closed: false,
    }));
    // A bridge stopped without a word (killed, crashed) left the board's session to its
    // client: it ends now, before anybody is served.
    link_closed(&line);
    let listener = TcpListener::bind(options.ws)
        .map_err(|err| io::Error::new(err.kind(), format!("listen on {}: {err}", options.ws)))?;
    {
        let line = line.clone();
        ctrlc::set_handler(move || {
            // The client goes away with the bridge: so does its session on the board.
            link_closed(&line);
            log::info!("stopped");
            std::process::exit(0);
        })
        .map_err(io::Error::other)?;
    }
    println!("listening on ws://{}", listener.local_addr()?);
    let busy = Arc::new(AtomicBool::new(false));
    let open = Arc::new(AtomicUsize::new(0));
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
        // Each connection has a thread until its handshake is done or refused: bounded.
        if open.fetch_add(1, Ordering::AcqRel) >= options.max_connections {
            open.fetch_sub(1, Ordering::AcqRel);
            log::warn!(
                "connection refused: {} open already",
                options.max_connections
            );
            drop(stream);
            continue;
        }
        let (line, busy, options, open) =
            (line.clone(), busy.clone(), options.clone(), open.clone());
        thread::spawn(move || {
            let served = serve(stream, &line, &busy, &options);
            open.fetch_sub(1, Ordering::AcqRel);
            match served {
                Ok(()) => {}
                // Nothing more can be bridged: the bridge stops, and whoever runs it
                // (`cargo xtask qemu`) sees it.
                Err(why) if line_is_closed(&line) => {
                    log::error!("client: {why}; the serial line closed: stopping");
                    std::process::exit(1);
                }
                Err(why) => log::info!("client: {why}"),
            }
        });
    }
    Ok(())
}

/// The turn of the client that holds the board's serial channel: when it ends, however
/// it ends (an error, a panic), the board hears that its interlocutor went away and the
/// channel is free again.
struct Turn<'a> {
    line: &'a Mutex<Line>,
    busy: &'a AtomicBool,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        link_closed(self.line);
        self.busy.store(false, Ordering::Release);
    }
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
        .set_write_timeout(Some(options.handshake))
        .map_err(|e| e.to_string())?;
    let config = WebSocketConfig::default()
        .max_message_size(Some(options.max_message))
        .max_frame_size(Some(options.max_message));
    // The whole handshake within its timeout, then each whole message within the idle
    // time: bytes trickled one at a time do not hold the board's only channel.
    let link = Link::new(stream, Some(Instant::now() + options.handshake));
    let mut socket: WebSocket<Link> = tungstenite::accept_with_config(link, Some(config))
        .map_err(|e| format!("{peer}: handshake: {e}"))?;
    if busy.swap(true, Ordering::AcqRel) {
        close_ws(
            &mut socket,
            CloseCode::Again,
            "the board's serial channel is in use",
        );
        return Err(format!("{peer}: refused, another client is connected"));
    }
    let turn = Turn { line, busy };
    log::info!("{peer}: connected");
    let result = exchange_all(&mut socket, line, options);
    drop(turn);
    if let Ok(line) = line.lock() {
        log::info!(
            "{peer}: gone ({} frames dropped on the line so far)",
            line.dropped
        );
    }
    result.map_err(|why| format!("{peer}: {why}"))
}

fn exchange_all(
    socket: &mut WebSocket<Link>,
    line: &Mutex<Line>,
    options: &Options,
) -> Result<(), String> {
    socket
        .get_mut()
        .stream
        .set_write_timeout(Some(options.idle))
        .map_err(|e| e.to_string())?;
    loop {
        // Only a request counts: pings and pongs do not keep the channel.
        socket.get_mut().deadline = Some(Instant::now() + options.idle);
        let apdu = loop {
            match socket.read() {
                Ok(Message::Binary(bytes)) => break bytes,
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
                Err(tungstenite::Error::Io(err)) if is_timeout(&err) => {
                    close_ws(socket, CloseCode::Away, "idle");
                    return Err("idle: closed".into());
                }
                Err(err) => return Err(err.to_string()),
            }
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
