//! The lwM2M device on a BBC micro:bit (nRF51822, Cortex-M0; QEMU's `microbit`),
//! blocking.
//!
//! Wiring only: the board ([`board`]: start-up, UART0, TIMER0, the interrupt vectors;
//! the drivers [`uart`], [`time`] and [`nvmc`], the flash pages of the configuration
//! store) and, from the library crates, everything the device does: the engine with the
//! standard objects, its boot policy and the blocking device loop (`port-common`, which
//! `ports/mps2-an386` runs too), over the serial framing of `transport-traits`
//! ([`SerialHost`] over UART0). Built with the small capacity preset and 256-byte
//! frames; the critical sections mask interrupts (the Cortex-M0 has no
//! compare-and-swap).
//!
//! No Modbus RTU slave (`port-common`'s feature `modbus-slave`, which `ports/mps2-an386`
//! serves on its UART1): the nRF51 has one UART, the serial host link's.
//!
//! The engine is built at compile time into a static ([`ENGINE`]) and booted there, its
//! configuration loaded from the flash in place, so that neither is ever on the stack:
//! the 16 KiB of RAM hold the static data (the engine, the host and the frame buffers)
//! and the stack.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

mod board;
mod nvmc;
mod time;
mod uart;

use cortex_m::singleton;
use cortex_m_rt::entry;
use lwm2m_core::storage::FlashStore;
use port_common::{Engine, Target, LINE, RX_LEN, TX_LEN};
use static_cell::ConstStaticCell;
use transport_traits::serial::SerialHost;

use board::{Board, Serial};
use nvmc::Nvmc;
use time::Millis;

/// UART0 as the device loop's host.
type Host = port_common::Host<Serial, Millis>;

/// The engine over the simulated target and the store in the NVMC's pages (put in
/// place at boot: the driver exists once the board is set up).
static ENGINE: ConstStaticCell<Device> =
    ConstStaticCell::new(port_common::engine("microbit", port_common::TARGET, None));

/// The engine's type.
type Device = Engine<Target, Option<FlashStore<Nvmc>>>;

#[entry]
fn main() -> ! {
    port_common::stack::paint();
    let Some((engine, host, rx, tx)) = setup() else {
        halt()
    };
    port_common::serve(engine, host, &mut Millis, rx, tx)
}

/// The board set up and the device booted, in static RAM: the engine, the host and its
/// buffers, the loop's buffers. Out of line, so that the stack it takes (the host is
/// built here and moved into its static) is given back before the device runs. Runs
/// once: `None` after the first call.
#[inline(never)]
fn setup() -> Option<(
    &'static mut Device,
    &'static mut Host,
    &'static mut [u8; RX_LEN],
    &'static mut [u8; TX_LEN],
)> {
    let board = Board::take()?;
    let engine = ENGINE.try_take()?;
    *engine.store_mut() = FlashStore::new(board.flash, 0..nvmc::LEN as u32).ok();
    port_common::start(engine, port_common::serial("MICROBIT-0000001"));
    let host = SerialHost::new(board.serial, board.clock, LINE).with_idle(board::idle);
    Some((
        engine,
        singleton!(HOST: Host = host)?,
        singleton!(RX: [u8; RX_LEN] = [0; RX_LEN])?,
        singleton!(TX: [u8; TX_LEN] = [0; TX_LEN])?,
    ))
}

/// Stops here: what the board does on a fault of its own set-up, and on a panic.
fn halt() -> ! {
    loop {
        cortex_m::asm::wfi();
    }
}

#[cfg(feature = "defmt")]
use defmt_rtt as _;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    #[cfg(feature = "defmt")]
    defmt::error!("panic");
    halt()
}
