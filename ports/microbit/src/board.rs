//! The wiring of the BBC micro:bit (nRF51822, Cortex-M0, as QEMU's `microbit` machine
//! emulates it): UART0 as the serial host link, TIMER0 as the time base, a flash
//! emulated in RAM, and the interrupt vectors. What the device does is not here.

use core::mem::MaybeUninit;
use core::ptr::addr_of_mut;

use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::NVIC;
use lwm2m_core::storage::flash_size_needed;

use lwm2m_core::storage::RamFlash as Ram;

/// The configuration store's flash: emulated in RAM, sectors of 1024 bytes.
pub type RamFlash = Ram<'static, 1024>;
use crate::time::{self, Millis};
use crate::uart::Uart;

/// UART0.
pub const UART0_BASE: usize = 0x4000_2000;

/// UART0, the serial host link.
pub type Serial = Uart<UART0_BASE>;

/// Bytes of the emulated flash: what the configuration store needs (two slots of
/// 1 KiB pages).
pub const FLASH_LEN: usize = flash_size_needed::<RamFlash>() as usize;

/// The emulated flash, outside the RAM the report counts (`EMULATED_FLASH` in the
/// symbol table); erased by [`Board::take`].
#[no_mangle]
#[link_section = ".uninit.EMULATED_FLASH"]
static mut EMULATED_FLASH: MaybeUninit<[u8; FLASH_LEN]> = MaybeUninit::uninit();

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
    /// The configuration store's flash, erased.
    pub flash: RamFlash,
}

impl Board {
    /// Sets the board up: UART0 started, TIMER0 counting with its wake-up interrupt,
    /// the emulated flash erased. `None` after the first call.
    pub fn take() -> Option<Board> {
        let _core = cortex_m::Peripherals::take()?;
        // SAFETY: `Peripherals::take` succeeds once, so this runs once: nothing else
        // refers to the array, and writing every byte initialises it.
        let cells = unsafe {
            let cells = addr_of_mut!(EMULATED_FLASH).cast::<u8>();
            cells.write_bytes(0xFF, FLASH_LEN);
            core::slice::from_raw_parts_mut(cells, FLASH_LEN)
        };
        let flash = RamFlash::new(cells);
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

/// What the free RAM below the stack is filled with at boot ([`paint_stack`]).
pub const PAINT: u32 = 0xA5A5_A5A5;

extern "C" {
    /// The end of the static data, where the stack may grow down to (cortex-m-rt).
    static _stack_end: u32;
}

/// Fills the RAM between the static data and the current stack with [`PAINT`], so
/// that the deepest stack the device has used can be read from a memory dump (the
/// lowest word no longer painted; `cargo xtask boards` prints it).
#[inline(always)]
pub fn paint_stack() {
    let mut at = core::ptr::addr_of!(_stack_end) as usize;
    // A little below the caller's frame.
    let end = cortex_m::register::msp::read() as usize - 64;
    while at < end {
        // SAFETY: free RAM between the static data and the stack, word-aligned
        // (cortex-m-rt aligns `_stack_end`).
        unsafe { core::ptr::write_volatile(at as *mut u32, PAINT) };
        at += 4;
    }
}
