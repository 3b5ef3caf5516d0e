//! `--modbus HOST:PORT`: the device's Modbus master over Modbus TCP, the target of the
//! MODBUS protocol (`/1027//1` = 3). The framing is `target_traits::modbus::frame`'s (over
//! rmodbus); this module holds the socket.
//!
//! One transaction at a time, each bounded: a connection is opened when none is up (a
//! server that went away is reconnected on the next request), within the timeout; the
//! answer is awaited within the timeout of `/1027//21` (default 1 s). A server that
//! cannot be reached is `A5` (a kept connection the server closed meanwhile is opened
//! again and the request sent once more), one that does not answer in time `B7` (the
//! connection is dropped: a late answer cannot be taken for the next one), one that
//! closes the connection mid-answer `B7` too.

use std::io::{ErrorKind as IoKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use target_traits::modbus::frame::{Proto, Request, MAX_TCP_ADU};
use target_traits::modbus::{Modbus, Table};
use target_traits::{ErrorKind, ErrorType};

/// The answer timeout when `/1027//21` gives none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// A Modbus TCP master.
pub struct TcpMaster {
    /// The server.
    server: SocketAddr,
    /// The connection, while up.
    stream: Option<TcpStream>,
    /// The transaction id of the next request.
    transaction: u16,
    /// How long a connection and an answer may take.
    timeout: Duration,
}

impl TcpMaster {
    /// A master of the server at `address` (`HOST:PORT`); nothing is connected yet.
    pub fn new(address: &str) -> std::io::Result<TcpMaster> {
        let server = address.to_socket_addrs()?.next().ok_or_else(|| {
            std::io::Error::new(IoKind::InvalidInput, format!("{address}: no address"))
        })?;
        Ok(TcpMaster {
            server,
            stream: None,
            transaction: 0,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The server's address.
    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// The connection, opened if none is up: `A5` if the server cannot be reached.
    fn connection(&mut self) -> Result<&mut TcpStream, ErrorKind> {
        if self.stream.is_none() {
            let stream = TcpStream::connect_timeout(&self.server, self.timeout).map_err(|err| {
                log::warn!("modbus: {}: {err}", self.server);
                ErrorKind::Unreachable
            })?;
            let _ = stream.set_nodelay(true);
            log::info!("modbus: connected to {}", self.server);
            self.stream = Some(stream);
        }
        self.stream.as_mut().ok_or(ErrorKind::Unreachable)
    }

    /// One transaction: `request` sent, its answer decoded into `out`. The connection is
    /// dropped on any failure of its own (not on a server's exception).
    fn transact(&mut self, mut request: Request<'_>, out: &mut [u8]) -> Result<(), ErrorKind> {
        self.transaction = self.transaction.wrapping_add(1);
        request.proto = Proto::Tcp {
            transaction: self.transaction,
        };
        let mut frame = [0u8; MAX_TCP_ADU];
        let len = request.encode(&mut frame)?;
        let deadline = Instant::now() + self.timeout;
        // A connection kept from an earlier request may have been closed by the server
        // meanwhile (a restart): found closed before any byte of the answer, the request
        // is sent once more on a new one.
        let reused = self.stream.is_some();
        let mut result = self.exchange(&request, &frame[..len], deadline, out);
        if reused && result == Err(ErrorKind::Unreachable) {
            self.stream = None;
            result = self.exchange(&request, &frame[..len], deadline, out);
        }
        if let Err(kind) = result {
            if kind != ErrorKind::BadParameter && !is_exception(kind) {
                self.stream = None;
            }
        }
        result
    }

    fn exchange(
        &mut self,
        request: &Request<'_>,
        frame: &[u8],
        deadline: Instant,
        out: &mut [u8],
    ) -> Result<(), ErrorKind> {
        let stream = self.connection()?;
        // A connection the server closed: refused or reset when written to, or read to
        // its end before any byte of the answer (`read_frame`): Unreachable, which a
        // reused connection tries once more.
        stream.write_all(frame).map_err(|err| {
            log::warn!("modbus: sending: {err}");
            ErrorKind::Unreachable
        })?;
        let mut answer = [0u8; MAX_TCP_ADU];
        loop {
            let len = read_frame(stream, request, &mut answer, deadline)?;
            let response = &answer[..len];
            // A late answer to an earlier transaction: skipped.
            if request.is_stale(response) {
                continue;
            }
            return request.decode(response, out);
        }
    }
}

/// Whether `kind` may be a server's exception, after which the connection is sound.
fn is_exception(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::NotImplemented | ErrorKind::Other | ErrorKind::Busy
    )
}

/// Reads one whole TCP frame into `buf` before `deadline`: its length.
fn read_frame(
    stream: &mut TcpStream,
    request: &Request<'_>,
    buf: &mut [u8; MAX_TCP_ADU],
    deadline: Instant,
) -> Result<usize, ErrorKind> {
    let mut filled = 0;
    loop {
        let needed = request.response_len(&buf[..filled])?;
        if needed > buf.len() {
            return Err(ErrorKind::Data);
        }
        if filled >= needed {
            return Ok(needed);
        }
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
            .ok_or(ErrorKind::LostCommunication)?;
        stream
            .set_read_timeout(Some(left))
            .map_err(|_| ErrorKind::Communication)?;
        match stream.read(&mut buf[filled..needed]) {
            Ok(0) if filled == 0 => {
                log::warn!("modbus: the server closed the connection");
                return Err(ErrorKind::Unreachable);
            }
            Ok(0) => {
                log::warn!("modbus: the server closed the connection mid-answer");
                return Err(ErrorKind::LostCommunication);
            }
            Ok(n) => filled += n,
            Err(err) if matches!(err.kind(), IoKind::WouldBlock | IoKind::TimedOut) => {
                log::warn!("modbus: no answer within the timeout");
                return Err(ErrorKind::LostCommunication);
            }
            Err(err) if err.kind() == IoKind::Interrupted => {}
            Err(err) if filled == 0 && err.kind() == IoKind::ConnectionReset => {
                log::warn!("modbus: the server reset the connection");
                return Err(ErrorKind::Unreachable);
            }
            Err(err) => {
                log::warn!("modbus: receiving: {err}");
                return Err(ErrorKind::LostCommunication);
            }
        }
    }
}

impl ErrorType for TcpMaster {
    type Error = ErrorKind;
}

impl Modbus for TcpMaster {
    fn read(
        &mut self,
        unit: u8,
        table: Table,
        address: u16,
        count: u16,
        out: &mut [u8],
    ) -> Result<(), ErrorKind> {
        let request = Request::read(Proto::Tcp { transaction: 0 }, unit, table, address, count);
        self.transact(request, out)
    }

    fn write(
        &mut self,
        unit: u8,
        table: Table,
        address: u16,
        count: u16,
        data: &[u8],
    ) -> Result<(), ErrorKind> {
        let request = Request::write(
            Proto::Tcp { transaction: 0 },
            unit,
            table,
            address,
            count,
            data,
        );
        self.transact(request, &mut [])
    }

    fn set_timeout_ms(&mut self, ms: u32) {
        self.timeout = if ms == 0 {
            DEFAULT_TIMEOUT
        } else {
            Duration::from_millis(u64::from(ms))
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    /// Answers one read of one holding register on `stream` with 0x1234.
    fn serve_one(stream: &mut TcpStream) {
        let mut request = [0u8; 12];
        stream.read_exact(&mut request).unwrap();
        let answer = [
            request[0], request[1], 0, 0, 0, 5, request[6], 3, 2, 0x12, 0x34,
        ];
        stream.write_all(&answer).unwrap();
    }

    /// Spec decision 13: the device reconnects to a TCP server that went away on the next
    /// request. A server that restarted between two requests (its connections closed)
    /// answers the very next one (it was B7: written on the dead socket, read to its end;
    /// only the request after reconnected). From the review.
    #[test]
    fn a_server_that_restarted_is_reached_on_the_next_request() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (mut first, _) = listener.accept().unwrap();
            serve_one(&mut first);
            drop(first);
            let (mut second, _) = listener.accept().unwrap();
            serve_one(&mut second);
        });
        let mut master = TcpMaster::new(&address.to_string()).unwrap();
        let mut out = [0u8; 2];
        master
            .read(1, Table::HoldingRegisters, 0, 1, &mut out)
            .unwrap();
        thread::sleep(Duration::from_millis(200));
        let next = master.read(1, Table::HoldingRegisters, 0, 1, &mut out);
        assert_eq!(next, Ok(()), "the first request after the server came back");
        assert_eq!(out, [0x12, 0x34]);
        server.join().unwrap();
    }
}
