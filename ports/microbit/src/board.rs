//! The wiring of the BBC micro:bit (nRF51822, Cortex-M0, as QEMU's `microbit` machine
//! emulates it): UART0 as the serial host link, TIMER0 as the time base, six pages of
//! the flash through the NVMC, and the interrupt vectors. What the device does is not
//! here.

use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::NVIC;

use crate::nvmc::Nvmc;
use crate::time::{self, Millis};
use crate::uart::Uart;

/// UART0.
pub const UART0_BASE: usize = 0x4000_2000;

/// UART0, the serial host link.
pub type Serial = Uart<UART0_BASE>;

/// The nRF51's interrupts this firmware uses.
#[derive(Clone, Copy)]
enum Interrupt {
    /// UART0 (IRQ 2): a byte received.
    Uart0 = 2,
    /// TIMER0 (IRQ 8): the wake-up compare.
    Timer0 = 8,
}

// SAFETY: the numbers are those of the nRF51's interrupts.
unsafe impl InterruptNumber for Interrupt {
    fn number(self) -> u16 {
        self as u16
    }
}

/// What the device runs on.
pub struct Board {
    /// The serial host link.
    pub serial: Serial,
    /// Milliseconds since boot.
    pub clock: Millis,
    /// The configuration store's flash: six pages of the nRF51's.
    pub flash: Nvmc,
}

impl Board {
    /// Sets the board up: UART0 started, TIMER0 counting with its wake-up interrupt.
    /// `None` after the first call.
    pub fn take() -> Option<Board> {
        let _core = cortex_m::Peripherals::take()?;
        // SAFETY: `Peripherals::take` succeeds once, so this is the only `Nvmc`.
        let flash = unsafe { Nvmc::take() }?;
        // SAFETY: UART0 is an nRF51 UART, and only this `Serial` drives it.
        let serial = unsafe { Serial::take() };
        // Started after the receiver: QEMU then hands it the first byte at once (about
        // a second late otherwise).
        time::start();
        // SAFETY: their handlers only lower the UART's interrupt and move the timer's
        // compare (in a critical section); no critical section relies on them being
        // masked.
        unsafe {
            NVIC::unmask(Interrupt::Uart0);
            NVIC::unmask(Interrupt::Timer0);
        }
        Some(Board {
            serial,
            clock: Millis,
            flash,
        })
    }
}

/// Waits for an interrupt unless a byte is already waiting: the idle function of the
/// serial host. TIMER0's wake-up ends the wait within a millisecond, a received byte
/// at once (its interrupt is raised again here, lowered by its handler); masked while
/// checking, a byte arriving after the check still wakes the core (WFI wakes on a
/// pending interrupt), and the handler runs when unmasked.
pub fn idle() {
    cortex_m::interrupt::free(|_| {
        // SAFETY: UART0 is an nRF51 UART; these touch its interrupt enable only, and
        // read its receive event.
        unsafe {
            Serial::listen();
            if !Serial::rx_ready() {
                cortex_m::asm::wfi();
            }
        }
    });
}

/// UART0's interrupt: it only wakes the core, so it is lowered (the receive event stays
/// for the reader).
unsafe extern "C" fn uart0() {
    // SAFETY: UART0 is an nRF51 UART; the write clears its receive interrupt enable.
    unsafe { Serial::unlisten() };
}

/// TIMER0's interrupt: the next wake-up.
unsafe extern "C" fn timer0() {
    time::on_compare();
}

extern "C" {
    /// cortex-m-rt's handler of every exception and interrupt left unhandled.
    fn DefaultHandler();
}

/// The 26 interrupt vectors of the nRF51 (radio, UART, timers, RTC, GPIOTE...): UART0's
/// and TIMER0's, every other one the default handler.
#[link_section = ".vector_table.interrupts"]
#[no_mangle]
#[used]
static __INTERRUPTS: [unsafe extern "C" fn(); 26] = {
    let mut vectors = [DefaultHandler as unsafe extern "C" fn(); 26];
    vectors[Interrupt::Uart0 as usize] = uart0;
    vectors[Interrupt::Timer0 as usize] = timer0;
    vectors
};
