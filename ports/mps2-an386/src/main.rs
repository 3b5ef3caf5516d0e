//! The lwM2M device on an MPS2 AN386 board (Cortex-M4; QEMU's `mps2-an386`), async.
//!
//! Wiring only: the board ([`board`]: start-up, UART0, UART1, SysTick, a flash emulated
//! in RAM, since the board has none the store can use; the drivers [`uart`] and
//! [`time`]) and, from the library crates, everything the device does: the engine with
//! the standard objects, its boot policy and the async device loop (`port-common`, which
//! `ports/microbit` runs too, blocking), over the serial framing of `transport-traits`
//! ([`SerialHost`] over UART0) and, beside it, a Modbus RTU slave over UART1
//! (`port_common::ModbusHost`: unit 1, any line rate, the master's reads and writes of
//! variables side requests with the rights of the anonymous profile, outside the
//! session; the register map is `transport_traits::modbus_slave`'s). Built with the
//! small capacity preset and 256-byte frames.
//!
//! The engine is built at compile time into a static ([`ENGINE`]) and booted there, its
//! configuration loaded from the flash in place, by [`setup`]; the device loop runs as
//! one `embassy-executor` task ([`serve`]) on an executor that sleeps with `wfi` between
//! wake-ups ([`sleep`]).
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

mod board;
mod time;
mod uart;

use core::sync::atomic::{AtomicBool, Ordering};

use cortex_m::singleton;
use cortex_m_rt::entry;
use embassy_executor::raw::Executor;
use lwm2m_core::storage::FlashStore;
use port_common::{Engine, Target, LINE, RX_LEN, TX_LEN};
use static_cell::ConstStaticCell;
use transport_traits::run::asynch::BlockingIo;
use transport_traits::serial::SerialHost;

use board::{Board, Modbus, RamFlash, Serial};
use time::Millis;

/// UART0 and, beside it, the Modbus RTU slave on UART1 as the device loop's host.
type Host = port_common::ModbusHost<Serial, Millis, Modbus>;

/// The target and the configuration store, which the async loop performs the
/// operations of requests on.
type Io = BlockingIo<Target, FlashStore<RamFlash>>;

/// The engine: the objects and the configuration (its target and store are [`Io`]).
static ENGINE: ConstStaticCell<Engine> = ConstStaticCell::new(port_common::engine(
    "mps2-an386",
    lwm2m_core::target::NoTarget,
    lwm2m_core::storage::NoStore,
));

#[entry]
fn main() -> ! {
    port_common::stack::paint();
    let Some(executor) = setup() else { halt() };
    loop {
        // SAFETY: polled from this loop only, never from the pender.
        unsafe { executor.poll() };
        sleep();
    }
}

/// The board set up, the device booted and its task spawned, in static RAM: the
/// executor, the engine, the target and store, the host and its buffers, the loop's
/// buffers (the task's future holds only its references). Out of line, so that the
/// stack it takes (the host and the target are built here and moved into their
/// statics) is given back before the device runs. Runs once: `None` after the first
/// call.
#[inline(never)]
fn setup() -> Option<&'static Executor> {
    let board = Board::take()?;
    let store = FlashStore::new(board.flash, 0..board::FLASH_LEN as u32).ok()?;
    let io = Io {
        target: port_common::TARGET,
        store,
    };
    let host = port_common::modbus_host(
        SerialHost::new(board.serial, board.clock, LINE),
        board.modbus,
    );
    let executor: &'static Executor =
        singleton!(EXECUTOR: Executor = Executor::new(core::ptr::null_mut()))?;
    let io = singleton!(IO: Io = io)?;
    let host = singleton!(HOST: Host = host)?;
    let rx = singleton!(RX: [u8; RX_LEN] = [0; RX_LEN])?;
    let tx = singleton!(TX: [u8; TX_LEN] = [0; TX_LEN])?;
    let engine = ENGINE.try_take()?;
    port_common::start_from(
        engine,
        &mut io.store,
        port_common::serial("MPS2AN386-0000001"),
    );
    executor
        .spawner()
        .spawn(serve(engine, io, host, rx, tx).ok()?);
    Some(executor)
}

/// Set by the pender: a task was woken since the executor last ran.
static WOKEN: AtomicBool = AtomicBool::new(false);

/// The executor's pender (`raw::Executor` calls it when a task is woken, from the
/// interrupt that woke it or from the executor): the executor runs again.
#[export_name = "__pender"]
fn pender(_context: *mut ()) {
    WOKEN.store(true, Ordering::Release);
}

/// Sleeps with `wfi` until an interrupt unless a task was woken meanwhile. The stock
/// thread executor sleeps with `wfe`, which QEMU does not honour (a host core spins);
/// masked while checking, an interrupt after the check still ends `wfi`, and its handler
/// runs (and wakes its task) when unmasked.
fn sleep() {
    cortex_m::interrupt::free(|_| {
        if !WOKEN.swap(false, Ordering::Acquire) {
            cortex_m::asm::wfi();
        }
    });
}

/// The device task: the device loop of every board (`port_common::serve_async`).
#[embassy_executor::task]
async fn serve(
    engine: &'static mut Engine,
    io: &'static mut Io,
    host: &'static mut Host,
    rx: &'static mut [u8; RX_LEN],
    tx: &'static mut [u8; TX_LEN],
) -> ! {
    port_common::serve_async(engine, host, io, &mut Millis, rx, tx).await
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
