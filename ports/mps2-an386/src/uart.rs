//! The CMSDK APB UART of the MPS2 boards as an `embedded-io-async` serial port (and a
//! blocking `embedded-io` one): reads wait for the receive interrupt, which wakes the
//! reading task ([`Uart::on_rx_interrupt`]); writes are polled.
//!
//! Registers (ARM CMSDK technical reference, "APB UART"): `DATA` (+0x00), `STATE`
//! (+0x04: bit 0 transmit buffer full, bit 1 receive buffer full, bits 2–3 overruns,
//! written 1 to clear), `CTRL` (+0x08: bit 0 transmit enable, bit 1 receive enable,
//! bit 3 receive interrupt enable), `INTSTATUS`/`INTCLEAR` (+0x0C), `BAUDDIV` (+0x10).
//! One byte is buffered each way.

use core::cell::Cell;
use core::convert::Infallible;
use core::future::poll_fn;
use core::ptr::{read_volatile, write_volatile};
use core::task::{Poll, Waker};

use critical_section::Mutex;

/// The task waiting for a received byte, one for each CMSDK UART the firmware reads
/// (a static is not generic: [`Uart::RX_WAKER`] picks its own by its address).
static RX_WAKERS: [Mutex<Cell<Option<Waker>>>; 2] =
    [Mutex::new(Cell::new(None)), Mutex::new(Cell::new(None))];

const DATA: usize = 0x00;
const STATE: usize = 0x04;
const CTRL: usize = 0x08;
const INTCLEAR: usize = 0x0C;
const BAUDDIV: usize = 0x10;

const STATE_TX_FULL: u32 = 1 << 0;
const STATE_RX_FULL: u32 = 1 << 1;
const STATE_RX_OVERRUN: u32 = 1 << 3;
const CTRL_TX_EN: u32 = 1 << 0;
const CTRL_RX_EN: u32 = 1 << 1;
const CTRL_RX_INT_EN: u32 = 1 << 3;
const INT_RX: u32 = 1 << 1;

/// The CMSDK UART at `BASE`, owned by [`Uart::take`]'s caller.
pub struct Uart<const BASE: usize> {
    _owned: (),
}

impl<const BASE: usize> Uart<BASE> {
    /// The waker of this UART's reading task: UART0's or UART1's (another address does
    /// not build).
    const RX_WAKER: &'static Mutex<Cell<Option<Waker>>> = match BASE {
        0x4000_4000 => &RX_WAKERS[0],
        0x4000_5000 => &RX_WAKERS[1],
        _ => panic!("a CMSDK UART the firmware has no waker for"),
    };

    /// The UART, enabled both ways at `baud` for a `clock_hz` peripheral
    /// clock, its receive interrupt raised for every byte (it wakes the board from
    /// `wfi`; the handler only clears it, [`Uart::clear_rx_interrupt`]).
    ///
    /// # Safety
    ///
    /// `BASE` is the address of a CMSDK UART, and nothing else drives it (but
    /// [`Uart::rx_ready`] and [`Uart::clear_rx_interrupt`]).
    pub unsafe fn take(clock_hz: u32, baud: u32) -> Self {
        let uart = Uart { _owned: () };
        Self::write(BAUDDIV, clock_hz / baud);
        Self::write(CTRL, CTRL_TX_EN | CTRL_RX_EN | CTRL_RX_INT_EN);
        // QEMU hands the receiver its first byte only when something wakes the chardev
        // up after the receiver is enabled (about a second late otherwise): one read of
        // DATA does.
        let _ = Self::read(DATA);
        uart
    }

    /// Reads a register. Only called with a `Uart` or under the contract of the
    /// functions that take none.
    fn read(offset: usize) -> u32 {
        // SAFETY: a register of the UART (`take`'s contract).
        unsafe { read_volatile((BASE + offset) as *const u32) }
    }

    fn write(offset: usize, value: u32) {
        // SAFETY: a register of the UART (`take`'s contract).
        unsafe { write_volatile((BASE + offset) as *mut u32, value) }
    }

    /// A received byte is waiting (a read of `STATE`, which changes nothing: usable
    /// from anywhere, without the `Uart`).
    ///
    /// # Safety
    ///
    /// `BASE` is the address of a CMSDK UART.
    pub unsafe fn rx_ready() -> bool {
        Self::read(STATE) & STATE_RX_FULL != 0
    }

    /// The received byte, if any. A byte lost to an overrun is forgotten (the framing
    /// resynchronises).
    fn try_read_byte(&mut self) -> Option<u8> {
        let state = Self::read(STATE);
        if state & STATE_RX_OVERRUN != 0 {
            Self::write(STATE, STATE_RX_OVERRUN);
        }
        (state & STATE_RX_FULL != 0).then(|| Self::read(DATA) as u8)
    }

    fn write_byte(&mut self, byte: u8) {
        while Self::read(STATE) & STATE_TX_FULL != 0 {}
        Self::write(DATA, u32::from(byte));
    }

    /// Clears the receive interrupt: the work of its handler, which owns no `Uart`
    /// (the write touches that interrupt only).
    ///
    /// # Safety
    ///
    /// `BASE` is the address of a CMSDK UART.
    pub unsafe fn clear_rx_interrupt() {
        Self::write(INTCLEAR, INT_RX);
    }

    /// The receive interrupt's work: clears it and wakes the task waiting for a byte.
    ///
    /// # Safety
    ///
    /// `BASE` is the address of a CMSDK UART.
    pub unsafe fn on_rx_interrupt() {
        // SAFETY: the caller's contract.
        unsafe { Self::clear_rx_interrupt() };
        if let Some(waker) = critical_section::with(|cs| Self::RX_WAKER.borrow(cs).take()) {
            waker.wake();
        }
    }

    /// Takes the bytes received into `buf`: how many (0 if none is waiting).
    fn take_bytes(&mut self, buf: &mut [u8]) -> usize {
        let mut n = 0;
        for slot in buf.iter_mut() {
            match self.try_read_byte() {
                Some(byte) => {
                    *slot = byte;
                    n += 1;
                }
                None => break,
            }
        }
        n
    }
}

impl<const BASE: usize> embedded_io::ErrorType for Uart<BASE> {
    type Error = Infallible;
}

impl<const BASE: usize> embedded_io::ReadReady for Uart<BASE> {
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        // SAFETY: `take` was given a UART.
        Ok(unsafe { Self::rx_ready() })
    }
}

impl<const BASE: usize> embedded_io::Read for Uart<BASE> {
    /// Waits for a byte, then takes every byte received meanwhile.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let n = self.take_bytes(buf);
            if n > 0 {
                return Ok(n);
            }
        }
    }
}

impl<const BASE: usize> embedded_io_async::Read for Uart<BASE> {
    /// Waits for a byte (the receive interrupt wakes the task), then takes every byte
    /// received meanwhile. Cancel-safe: bytes are taken only by the poll that returns
    /// them.
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        poll_fn(|cx| {
            let n = self.take_bytes(buf);
            if n > 0 {
                return Poll::Ready(Ok(n));
            }
            critical_section::with(|cs| {
                Self::RX_WAKER.borrow(cs).set(Some(cx.waker().clone()));
            });
            // A byte received before the waker was set raised its interrupt already: it
            // is looked for again.
            match self.take_bytes(buf) {
                0 => Poll::Pending,
                n => Poll::Ready(Ok(n)),
            }
        })
        .await
    }
}

impl<const BASE: usize> embedded_io::Write for Uart<BASE> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        for &byte in buf {
            self.write_byte(byte);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        while Self::read(STATE) & STATE_TX_FULL != 0 {}
        Ok(())
    }
}

impl<const BASE: usize> embedded_io_async::Write for Uart<BASE> {
    /// Polled: the bytes are sent before it returns.
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        embedded_io::Write::write(self, buf)
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        embedded_io::Write::flush(self)
    }
}
