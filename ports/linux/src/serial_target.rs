//! `--target-serial HOST:PORT`: the raw serial line of the SERIAL protocol (`/1027//1` =
//! 6), a serial port reached over TCP (ser2net, QEMU's `-serial tcp:…,server`): the
//! bytes on the socket are the bytes on the line. The exchanges, the delimiter and
//! timeout of `/1027//21` and the received bytes are `target_traits::serial::RawSerial`'s;
//! this module holds the socket ([`TcpSerial`]) and the time base ([`StdDelay`]).
//!
//! A connection is opened when none is up, within [`CONNECT_TIMEOUT`]; one the peer
//! closed or reset is noticed before the next exchange sends (the adapter looks at the
//! line first) and opened again by the send, so a peer that restarted is reached on the
//! very next request; never in the middle of an answer. A peer that cannot be reached is `A5`; one lost mid-exchange, or that
//! stops taking what is sent for [`WRITE_TIMEOUT`], `B7`; one that closes while the
//! device reads `B6` (the next request reconnects).

use std::io::{ErrorKind as IoKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use embedded_io::ErrorKind;
use target_traits::serial::RawSerial;

/// How long a connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a send may wait for the peer to take its bytes: a peer that stops reading
/// (a stalled ser2net, its flow control held) fails the send (`B7`) instead of holding
/// the target's thread for ever.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// The received bytes the device keeps (`GET /1027//35`, `/43`): the newest 4 KiB.
pub const RECEIVED: usize = 4096;

/// The serial target of `--target-serial`.
pub type SerialTarget = RawSerial<TcpSerial, StdDelay, RECEIVED>;

/// The line of the target at `address` (`HOST:PORT`); nothing is connected yet.
pub fn target(address: &str) -> std::io::Result<SerialTarget> {
    Ok(RawSerial::new(
        TcpSerial::new(address)?,
        StdDelay::default(),
    ))
}

/// A serial port over a TCP connection, as `embedded-io` sees one.
pub struct TcpSerial {
    peer: SocketAddr,
    stream: Option<TcpStream>,
}

impl TcpSerial {
    /// The port of the peer at `address`; nothing is connected yet.
    pub fn new(address: &str) -> std::io::Result<TcpSerial> {
        let peer = address.to_socket_addrs()?.next().ok_or_else(|| {
            std::io::Error::new(IoKind::InvalidInput, format!("{address}: no address"))
        })?;
        Ok(TcpSerial { peer, stream: None })
    }

    /// The peer's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The connection, opened if none is up.
    fn connection(&mut self) -> Result<&mut TcpStream, ErrorKind> {
        if self.stream.is_none() {
            let stream =
                TcpStream::connect_timeout(&self.peer, CONNECT_TIMEOUT).map_err(|err| {
                    log::warn!("target serial: {}: {err}", self.peer);
                    ErrorKind::ConnectionRefused
                })?;
            let _ = stream.set_nodelay(true);
            stream
                .set_write_timeout(Some(WRITE_TIMEOUT))
                .map_err(|err| kind(err.kind()))?;
            log::info!("target serial: connected to {}", self.peer);
            self.stream = Some(stream);
        }
        self.stream.as_mut().ok_or(ErrorKind::NotConnected)
    }

    /// Whether a byte waits, without waiting: `None` if the connection is gone (closed
    /// or reset by the peer).
    fn peek(&mut self) -> Result<Option<bool>, ErrorKind> {
        let stream = self.connection()?;
        stream
            .set_nonblocking(true)
            .map_err(|err| kind(err.kind()))?;
        let mut byte = [0u8; 1];
        let peeked = stream.peek(&mut byte);
        let _ = stream.set_nonblocking(false);
        match peeked {
            Ok(0) => Ok(None),
            Ok(_) => Ok(Some(true)),
            Err(err) if err.kind() == IoKind::WouldBlock => Ok(Some(false)),
            Err(err) if err.kind() == IoKind::Interrupted => Ok(Some(false)),
            Err(err)
                if matches!(
                    err.kind(),
                    IoKind::ConnectionReset | IoKind::ConnectionAborted
                ) =>
            {
                Ok(None)
            }
            Err(err) => {
                log::warn!("target serial: {err}");
                self.stream = None;
                Err(kind(err.kind()))
            }
        }
    }
}

/// An `embedded-io` error kind for a socket's.
fn kind(kind: IoKind) -> ErrorKind {
    match kind {
        IoKind::ConnectionRefused => ErrorKind::ConnectionRefused,
        IoKind::ConnectionReset => ErrorKind::ConnectionReset,
        IoKind::ConnectionAborted => ErrorKind::ConnectionAborted,
        IoKind::NotConnected => ErrorKind::NotConnected,
        IoKind::BrokenPipe => ErrorKind::BrokenPipe,
        IoKind::TimedOut | IoKind::WouldBlock => ErrorKind::TimedOut,
        IoKind::Interrupted => ErrorKind::Interrupted,
        _ => ErrorKind::Other,
    }
}

impl embedded_io::ErrorType for TcpSerial {
    type Error = ErrorKind;
}

impl embedded_io::ReadReady for TcpSerial {
    /// A connection the peer closed is ready: its read says it is at its end (the
    /// adapter fails an answer coming, or sends again, which connects anew). Never a new
    /// connection here: one opened in the middle of an answer would take a partial
    /// answer for a whole one, and a peer that takes connections and closes them would
    /// have one opened at every look at the line.
    fn read_ready(&mut self) -> Result<bool, ErrorKind> {
        match self.peek()? {
            Some(ready) => Ok(ready),
            None => {
                log::info!("target serial: {} closed the connection", self.peer);
                Ok(true)
            }
        }
    }
}

impl embedded_io::Read for TcpSerial {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        let stream = self.connection()?;
        loop {
            match stream.read(buf) {
                Ok(0) if !buf.is_empty() => {
                    // At its end: the next call connects again.
                    self.stream = None;
                    return Ok(0);
                }
                Ok(n) => return Ok(n),
                Err(err) if err.kind() == IoKind::Interrupted => {}
                Err(err) => {
                    log::warn!("target serial: receiving: {err}");
                    self.stream = None;
                    return Err(kind(err.kind()));
                }
            }
        }
    }
}

impl embedded_io::Write for TcpSerial {
    fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        let stream = self.connection()?;
        stream.write(buf).map_err(|err| {
            log::warn!("target serial: sending: {err}");
            self.stream = None;
            kind(err.kind())
        })
    }

    fn flush(&mut self) -> Result<(), ErrorKind> {
        match self.stream.as_mut() {
            Some(stream) => stream.flush().map_err(|err| kind(err.kind())),
            None => Ok(()),
        }
    }
}

/// The adapter's delay on the desktop: a sleep, with what a sleep overshoots taken off
/// the next one, so that the quiet time the adapter counts is the time that passed.
#[derive(Debug, Default)]
pub struct StdDelay {
    /// When the last delay was to end.
    deadline: Option<Instant>,
}

/// A last deadline further in the past than this is from an earlier wait: not carried.
const CARRIED: Duration = Duration::from_millis(1);

impl embedded_hal::delay::DelayNs for StdDelay {
    fn delay_ns(&mut self, ns: u32) {
        let now = Instant::now();
        let base = self
            .deadline
            .filter(|last| now.saturating_duration_since(*last) < CARRIED)
            .unwrap_or(now);
        let deadline = base + Duration::from_nanos(u64::from(ns));
        if let Some(left) = deadline.checked_duration_since(now) {
            std::thread::sleep(left);
        }
        self.deadline = Some(deadline);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;
    use target_traits::serial::{Delimiter, Serial, Until};

    const CR: Until = Until {
        delimiter: Delimiter::Cr,
        timeout_ms: 1000,
    };

    /// Answers one line on `stream` with `ok:` and the line.
    fn serve_one(stream: &mut TcpStream) {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while stream.read(&mut byte).unwrap() == 1 {
            line.push(byte[0]);
            if byte[0] == b'\r' {
                break;
            }
        }
        stream.write_all(&[b"ok:", &line[..]].concat()).unwrap();
    }

    /// A peer that restarted between two requests (its connections closed) answers the
    /// very next one, as the Modbus master's does.
    #[test]
    fn a_peer_that_restarted_is_reached_on_the_next_request() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let peer = thread::spawn(move || {
            let (mut first, _) = listener.accept().unwrap();
            serve_one(&mut first);
            drop(first);
            let (mut second, _) = listener.accept().unwrap();
            serve_one(&mut second);
        });
        let mut line = target(&address.to_string()).unwrap();
        let mut answer = [0u8; 32];
        let n = line.send_receive(b"a\r", &mut answer, CR).unwrap();
        assert_eq!(&answer[..n], b"ok:a\r");
        thread::sleep(Duration::from_millis(200));
        let n = line.send_receive(b"b\r", &mut answer, CR);
        assert_eq!(n, Ok(5), "the first request after the peer came back");
        assert_eq!(&answer[..5], b"ok:b\r");
        peer.join().unwrap();
    }

    #[test]
    fn a_peer_that_is_not_there_is_unreachable() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        drop(listener);
        let mut line = target(&address).unwrap();
        assert_eq!(line.send(b"x"), Err(target_traits::ErrorKind::Unreachable));
        assert_eq!(
            line.received_count(),
            Err(target_traits::ErrorKind::Unreachable)
        );
    }

    /// A peer that closes mid-answer (the listener still taking connections): `B6` at
    /// once, as the module says, not a new connection opened in the middle of the
    /// answer and the partial answer taken for a whole one at the timeout; the next
    /// request connects again.
    #[test]
    fn a_peer_that_closes_mid_answer_is_a_communication_error() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let peer = thread::spawn(move || {
            let (mut first, _) = listener.accept().unwrap();
            let mut byte = [0u8; 1];
            first.read_exact(&mut byte).unwrap();
            first.write_all(b"ok").unwrap();
            drop(first);
            // Later connections wait in the backlog, or are served.
            let (mut second, _) = listener.accept().unwrap();
            serve_one(&mut second);
            listener
        });
        let mut line = target(&address.to_string()).unwrap();
        let mut answer = [0u8; 32];
        let started = Instant::now();
        assert_eq!(
            line.send_receive(b"a", &mut answer, CR),
            Err(target_traits::ErrorKind::Communication)
        );
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
        let n = line.send_receive(b"b\r", &mut answer, CR).unwrap();
        assert_eq!(&answer[..n], b"ok:b\r");
        peer.join().unwrap();
    }

    /// A peer that never reads what it is sent (a stalled ser2net, flow control held):
    /// the send fails (`B7`) in bounded time instead of holding the target's thread,
    /// and with it every request, for ever.
    #[test]
    fn a_peer_that_never_reads_does_not_hold_the_line() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let held = thread::spawn(move || listener.accept().unwrap());
        let (done, result) = std::sync::mpsc::channel();
        thread::spawn(move || {
            let mut line = target(&address).unwrap();
            let flood = vec![0u8; 64 << 20];
            let _ = done.send(line.send(&flood));
        });
        let sent = result.recv_timeout(WRITE_TIMEOUT * 4);
        assert_eq!(sent, Ok(Err(target_traits::ErrorKind::LostCommunication)));
        drop(held.join().unwrap());
    }

    #[test]
    fn the_timeout_is_the_time_that_passed() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let _silent = thread::spawn(move || {
            let _held: Vec<_> = listener.incoming().filter_map(Result::ok).collect();
        });
        let mut line = target(&address).unwrap();
        let mut answer = [0u8; 8];
        let started = Instant::now();
        let until = Until {
            delimiter: Delimiter::Cr,
            timeout_ms: 300,
        };
        assert_eq!(line.send_receive(b"x", &mut answer, until), Ok(0));
        let took = started.elapsed();
        assert!(
            (Duration::from_millis(300)..Duration::from_millis(450)).contains(&took),
            "{took:?}"
        );
    }
}
