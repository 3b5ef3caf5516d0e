//! The nRF51's UART0, polled, as an `embedded-io` serial port.
//!
//! Registers (nRF51 Series Reference Manual, "UART"): `TASKS_STARTRX` (+0x000),
//! `TASKS_STARTTX` (+0x008), `EVENTS_RXDRDY` (+0x108: a byte is in `RXD`),
//! `EVENTS_TXDRDY` (+0x11C: the byte written to `TXD` is sent), `INTENSET` /
//! `INTENCLR` (+0x304 / +0x308: bit 2 RXDRDY), `ENABLE` (+0x500: 4 enables the
//! UART), `PSELTXD` / `PSELRXD` (+0x50C / +0x514), `RXD` (+0x518), `TXD` (+0x51C),
//! `BAUDRATE` (+0x524). The receiver holds a few bytes; `EVENTS_RXDRDY` is cleared
//! before `RXD` is read, since a read that leaves a byte behind raises it again.

use core::convert::Infallible;
use core::ptr::{read_volatile, write_volatile};

const TASKS_STARTRX: usize = 0x000;
const TASKS_STARTTX: usize = 0x008;
const EVENTS_RXDRDY: usize = 0x108;
const EVENTS_TXDRDY: usize = 0x11C;
const INTENSET: usize = 0x304;
const INTENCLR: usize = 0x308;
const ENABLE: usize = 0x500;
const PSELTXD: usize = 0x50C;
const PSELRXD: usize = 0x514;
const RXD: usize = 0x518;
const TXD: usize = 0x51C;
const BAUDRATE: usize = 0x524;

const ENABLE_UART: u32 = 4;
const INT_RXDRDY: u32 = 1 << 2;
/// 115200 baud (QEMU delivers bytes as fast as they are read, whatever it is).
const BAUD_115200: u32 = 0x01D7_E000;
/// The micro:bit's USB serial pins: TX on P0.24, RX on P0.25.
const PIN_TX: u32 = 24;
const PIN_RX: u32 = 25;

/// The nRF51 UART at `BASE`, owned by [`Uart::take`]'s caller.
pub struct Uart<const BASE: usize> {
    _owned: (),
    /// A byte was written to `TXD` and `EVENTS_TXDRDY` not seen since.
    sending: bool,
}

impl<const BASE: usize> Uart<BASE> {
    /// The UART, enabled and started both ways at 115200 baud, 8N1.
    ///
    /// # Safety
    ///
    /// `BASE` is the address of an nRF51 UART, and nothing else drives it (but
    /// [`Uart::rx_ready`], [`Uart::listen`] and [`Uart::unlisten`]).
    pub unsafe fn take() -> Self {
        Self::write(PSELTXD, PIN_TX);
        Self::write(PSELRXD, PIN_RX);
        Self::write(BAUDRATE, BAUD_115200);
        Self::write(ENABLE, ENABLE_UART);
        Self::write(EVENTS_RXDRDY, 0);
        Self::write(EVENTS_TXDRDY, 0);
        Self::write(TASKS_STARTRX, 1);
        Self::write(TASKS_STARTTX, 1);
        Uart {
            _owned: (),
            sending: false,
        }
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

    /// A received byte is waiting (a read of `EVENTS_RXDRDY`, which changes nothing:
    /// usable from anywhere, without the `Uart`).
    ///
    /// # Safety
    ///
    /// `BASE` is the address of an nRF51 UART.
    pub unsafe fn rx_ready() -> bool {
        Self::read(EVENTS_RXDRDY) != 0
    }

    /// Raises the UART's interrupt when a byte is received (or at once if one waits).
    ///
    /// # Safety
    ///
    /// `BASE` is the address of an nRF51 UART.
    pub unsafe fn listen() {
        Self::write(INTENSET, INT_RXDRDY);
    }

    /// Lowers it again: the work of its handler, which owns no `Uart` (the event stays
    /// set, for the reader).
    ///
    /// # Safety
    ///
    /// `BASE` is the address of an nRF51 UART.
    pub unsafe fn unlisten() {
        Self::write(INTENCLR, INT_RXDRDY);
    }

    /// The received byte, if any.
    fn try_read_byte(&mut self) -> Option<u8> {
        if Self::read(EVENTS_RXDRDY) == 0 {
            return None;
        }
        Self::write(EVENTS_RXDRDY, 0);
        Some(Self::read(RXD) as u8)
    }

    /// Waits until the byte written last is sent.
    fn wait_sent(&mut self) {
        if self.sending {
            while Self::read(EVENTS_TXDRDY) == 0 {}
            Self::write(EVENTS_TXDRDY, 0);
            self.sending = false;
        }
    }

    fn write_byte(&mut self, byte: u8) {
        self.wait_sent();
        Self::write(TXD, u32::from(byte));
        self.sending = true;
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
        let mut n = 0;
        while n == 0 {
            for slot in buf.iter_mut() {
                match self.try_read_byte() {
                    Some(byte) => {
                        *slot = byte;
                        n += 1;
                    }
                    None => break,
                }
            }
        }
        Ok(n)
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
        self.wait_sent();
        Ok(())
    }
}
