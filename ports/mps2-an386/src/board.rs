//! The wiring of the MPS2 AN386 (Cortex-M4, as QEMU's `mps2-an386` machine emulates
//! it): its clock, UART0 as the serial host link, UART1 as the Modbus RTU slave's line,
//! SysTick as the time base, a flash emulated in RAM, and the interrupt vectors (the
//! receive interrupts of UART0 and UART1 wake the task that reads them). What the
//! device does is not here.

use core::mem::MaybeUninit;
use core::ptr::addr_of_mut;

use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::NVIC;
use lwm2m_core::storage::flash_size_needed;

use lwm2m_core::storage::RamFlash as Ram;

/// The configuration store's flash: emulated in RAM, sectors of 4096 bytes.
pub type RamFlash = Ram<'static, 4096>;
use crate::time::{self, Millis};
use crate::uart::Uart;

/// The core and peripheral clock (`SYSCLK`: 25 MHz).
pub const CORE_HZ: u32 = 25_000_000;

/// CMSDK UART0.
pub const UART0_BASE: usize = 0x4000_4000;

/// CMSDK UART1.
pub const UART1_BASE: usize = 0x4000_5000;

/// The line rate (QEMU delivers bytes as fast as they are read, whatever it is).
pub const BAUD: u32 = 115_200;

/// UART0, the serial host link.
pub type Serial = Uart<UART0_BASE>;

/// UART1, the Modbus RTU slave's line.
pub type Modbus = Uart<UART1_BASE>;

/// Bytes of the emulated flash: what the configuration store needs (two slots).
pub const FLASH_LEN: usize = flash_size_needed::<RamFlash>() as usize;

/// The emulated flash, outside the RAM the report counts (`EMULATED_FLASH` in the
/// symbol table); erased by [`Board::take`].
#[no_mangle]
#[link_section = ".uninit.EMULATED_FLASH"]
static mut EMULATED_FLASH: MaybeUninit<[u8; FLASH_LEN]> = MaybeUninit::uninit();

/// The board's interrupts this firmware uses.
#[derive(Clone, Copy)]
enum Interrupt {
    /// UART0 received a byte (IRQ 0).
    Uart0Rx = 0,
    /// UART1 received a byte (IRQ 2; its transmit interrupt is 3, as QEMU's
    /// `hw/arm/mps2.c` wires the CMSDK UARTs of the AN385 family: RX 0, 2, 4, 18, 20).
    Uart1Rx = 2,
}

// SAFETY: the numbers are those of the board's interrupts.
unsafe impl InterruptNumber for Interrupt {
    fn number(self) -> u16 {
        self as u16
    }
}

/// What the device runs on.
pub struct Board {
    /// The serial host link.
    pub serial: Serial,
    /// The Modbus RTU slave's line.
    pub modbus: Modbus,
    /// Milliseconds since boot.
    pub clock: Millis,
    /// The configuration store's flash, erased.
    pub flash: RamFlash,
}

impl Board {
    /// Sets the board up: the millisecond tick, UART0 and UART1 enabled with their
    /// receive interrupts, the emulated flash erased. `None` after the first call.
    pub fn take() -> Option<Board> {
        let core = cortex_m::Peripherals::take()?;
        // SAFETY: `Peripherals::take` succeeds once, so this runs once: nothing else
        // refers to the array, and writing every byte initialises it.
        let cells = unsafe {
            let cells = addr_of_mut!(EMULATED_FLASH).cast::<u8>();
            cells.write_bytes(0xFF, FLASH_LEN);
            core::slice::from_raw_parts_mut(cells, FLASH_LEN)
        };
        // Erased above: taken as it is.
        let flash = RamFlash::from_cells(cells);
        time::start(core.SYST, CORE_HZ);
        // SAFETY: UART0 is a CMSDK UART, and only this `Serial` drives it.
        let serial = unsafe { Serial::take(CORE_HZ, BAUD) };
        // SAFETY: UART1 is a CMSDK UART, and only this `Modbus` drives it.
        let modbus = unsafe { Modbus::take(CORE_HZ, BAUD) };
        // SAFETY: their handlers clear the interrupt and wake a task under a critical
        // section of their own; no critical section relies on them being masked.
        unsafe {
            NVIC::unmask(Interrupt::Uart0Rx);
            NVIC::unmask(Interrupt::Uart1Rx);
        }
        Some(Board {
            serial,
            modbus,
            clock: Millis,
            flash,
        })
    }
}

/// UART0's receive interrupt: it wakes the task reading UART0.
unsafe extern "C" fn uart0_rx() {
    // SAFETY: UART0 is a CMSDK UART; the write clears its receive interrupt only.
    unsafe { Serial::on_rx_interrupt() };
}

/// UART1's receive interrupt: it wakes the task reading UART1.
unsafe extern "C" fn uart1_rx() {
    // SAFETY: UART1 is a CMSDK UART; the write clears its receive interrupt only.
    unsafe { Modbus::on_rx_interrupt() };
}

extern "C" {
    /// cortex-m-rt's handler of every exception and interrupt left unhandled.
    fn DefaultHandler();
}

/// The 32 interrupt vectors of the MPS2 AN386 (CMSDK UARTs, timers, GPIO, Ethernet...):
/// the receive interrupts of UART0 and UART1, every other one the default handler.
#[link_section = ".vector_table.interrupts"]
#[no_mangle]
#[used]
static __INTERRUPTS: [unsafe extern "C" fn(); 32] = {
    let mut vectors = [DefaultHandler as unsafe extern "C" fn(); 32];
    vectors[Interrupt::Uart0Rx as usize] = uart0_rx;
    vectors[Interrupt::Uart1Rx as usize] = uart1_rx;
    vectors
};
