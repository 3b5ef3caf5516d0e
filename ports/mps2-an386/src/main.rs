//! The lwM2M device on an MPS2 AN386 board (Cortex-M4; QEMU's `mps2-an386`), async.
//!
//! Wiring only: the board ([`board`]: start-up, UART0, SysTick, a flash emulated in RAM)
//! and, from the library crates, everything the device does: the engine and its
//! configuration store (`lwm2m-core`), the standard objects (`lwm2m-objects`), a
//! simulated target memory (`target-traits`), the serial framing and the async device
//! loop (`transport-traits`: [`SerialHost`] over UART0, [`run`]). Built with the small
//! capacity preset and 256-byte frames.
//!
//! The board's wiring is in [`board`] (and the drivers [`uart`] and [`time`]; the emulated flash is `lwm2m_core::storage::RamFlash`),
//! what the device is in [`device`], and the device loop in this file: one
//! `embassy-executor` task ([`serve`]) on an executor that sleeps with `wfi` between
//! wake-ups ([`sleep`]); the engine is built at boot, and again from the same flash and
//! target on a reboot request.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

mod board;
mod device;
mod time;
mod uart;

use core::sync::atomic::{AtomicBool, Ordering};

use cortex_m::singleton;
use cortex_m_rt::entry;
use embassy_executor::raw::Executor;
use lwm2m_core::storage::FlashStore;
use lwm2m_core::{Channel, ChannelKind, Effect};
use transport_traits::run::asynch::run;
use transport_traits::run::Stopped;
use transport_traits::serial::{encoded_len, SerialHost, CRC_LEN};

use board::{Board, Serial};
use device::{boot, Engine, Io, RX_LEN, TX_LEN};
use time::Millis;

/// UART0 as the device loop's host: a request and its CRC decoded, an answer encoded.
type Host = SerialHost<Serial, Millis, { RX_LEN + CRC_LEN }, { encoded_len(TX_LEN) }>;

/// The one channel of the serial line.
const LINE: Channel = Channel::new(1, ChannelKind::Serial);

#[entry]
fn main() -> ! {
    let Some(board) = Board::take() else { halt() };
    let Ok(mut store) = FlashStore::new(board.flash, 0..board::FLASH_LEN as u32) else {
        halt()
    };
    let engine = boot(&mut store);
    let io = Io {
        target: device::target(),
        store,
    };
    let host = SerialHost::new(board.serial, board.clock, LINE);
    // In static RAM: the executor, the engine (rebuilt in place on a reboot), the target
    // and store, the host and its buffers, the loop's buffers (the task's future holds
    // only its references). `main` runs once: every `singleton!` gives its value.
    let (Some(executor), Some(engine), Some(io), Some(host), Some(rx), Some(tx)) = (
        singleton!(EXECUTOR: Executor = Executor::new(core::ptr::null_mut())),
        singleton!(ENGINE: Engine = engine),
        singleton!(IO: Io = io),
        singleton!(HOST: Host = host),
        singleton!(RX: [u8; RX_LEN] = [0; RX_LEN]),
        singleton!(TX: [u8; TX_LEN] = [0; TX_LEN]),
    ) else {
        halt()
    };
    let executor: &'static Executor = executor;
    let Ok(task) = serve(engine, io, host, rx, tx) else {
        halt()
    };
    executor.spawner().spawn(task);
    loop {
        // SAFETY: polled from this loop only, never from the pender.
        unsafe { executor.poll() };
        sleep();
    }
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

/// The device task: runs the engine until a request has an effect, acts on it, and
/// runs it again, forever.
#[embassy_executor::task]
async fn serve(
    engine: &'static mut Engine,
    io: &'static mut Io,
    host: &'static mut Host,
    rx: &'static mut [u8; RX_LEN],
    tx: &'static mut [u8; TX_LEN],
) -> ! {
    loop {
        match run(engine, host, io, &mut Millis, rx, tx).await {
            // A reboot: the engine is built again from the flash (the configuration
            // saved last), the target kept, as a reset would.
            Ok(Stopped::Effect(Effect::Reboot)) => *engine = boot(&mut io.store),
            // A factory reset (done and saved by the engine): no peripheral to reset.
            Ok(Stopped::Effect(_)) => {}
            // The host never asks to stop, and UART0 neither fails nor ends.
            Ok(Stopped::Asked) | Err(_) => {}
        }
    }
}

/// Stops here: what the board does on a fault of its own set-up, and on a panic.
fn halt() -> ! {
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    halt()
}
