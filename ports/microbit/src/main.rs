//! The lwM2M device on a BBC micro:bit (nRF51822, Cortex-M0; QEMU's `microbit`),
//! blocking.
//!
//! Wiring only: the board ([`board`]: start-up, UART0, TIMER0, a flash emulated in RAM)
//! and, from the library crates, everything the device does: the engine and its
//! configuration store (`lwm2m-core`), the standard objects (`lwm2m-objects`), a
//! simulated target memory (`target-traits`), the serial framing and the device loop
//! (`transport-traits`: [`SerialHost`] over UART0, [`run`]). Built with the small
//! capacity preset and 256-byte frames; the critical sections mask interrupts (the
//! Cortex-M0 has no compare-and-swap).
//!
//! The board's wiring is in [`board`] (and the drivers [`uart`] and [`time`]; the emulated flash is `lwm2m_core::storage::RamFlash`),
//! what the device is in [`device`], and the blocking device loop in this file
//! ([`serve`]): the engine is built at boot, and again from the same flash and target on
//! a reboot request. The same as `ports/mps2-an386` but for the board.
//!
//! **It does not run in 16 KiB yet.** The static data take 5.5 KiB (the engine 4.4 KiB
//! of it, its configuration 3.2 KiB), the emulated flash 6 KiB (two slots of 1 KiB
//! pages, `flash_size_needed`), which leaves 4.5 KiB of stack; building the engine
//! takes more than 10 KiB (frames of `main` 2.5 KiB, `device::boot` 7.6 KiB: the
//! `Config` and the `Device` built by value, then moved into their slot), so the stack
//! runs out of RAM at boot (a HardFault under QEMU). With `NoStore` and no emulated
//! flash it still does (10.7 KiB left). The engine has to be built in place first.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

mod board;
mod device;
mod time;
mod uart;

use cortex_m::singleton;
use cortex_m_rt::entry;
use lwm2m_core::storage::FlashStore;
use lwm2m_core::{Channel, ChannelKind, Effect};
use transport_traits::run::{run, Stopped};
use transport_traits::serial::{encoded_len, SerialHost, CRC_LEN};

use board::{Board, Serial};
use device::{boot, Engine, RX_LEN, TX_LEN};
use time::Millis;

/// UART0 as the device loop's host: a request and its CRC decoded, an answer encoded.
type Host = SerialHost<Serial, Millis, { RX_LEN + CRC_LEN }, { encoded_len(TX_LEN) }>;

/// The one channel of the serial line.
const LINE: Channel = Channel::new(1, ChannelKind::Serial);

#[entry]
fn main() -> ! {
    board::paint_stack();
    let Some(board) = Board::take() else { halt() };
    let Ok(store) = FlashStore::new(board.flash, 0..board::FLASH_LEN as u32) else {
        halt()
    };
    let target = device::target();
    let host = SerialHost::new(board.serial, board.clock, LINE).with_idle(board::idle);
    // In static RAM: the engine (rebuilt in place on a reboot), the host and its
    // buffers, the loop's buffers. `main` runs once: every `singleton!` gives its value.
    let (Some(engine), Some(host), Some(rx), Some(tx)) = (
        singleton!(ENGINE: Option<Engine> = None),
        singleton!(HOST: Host = host),
        singleton!(RX: [u8; RX_LEN] = [0; RX_LEN]),
        singleton!(TX: [u8; TX_LEN] = [0; TX_LEN]),
    ) else {
        halt()
    };
    boot(engine, target, store);
    serve(engine, host, rx, tx)
}

/// The device loop: runs the engine until a request has an effect, acts on it, and
/// runs it again, forever.
fn serve(engine: &mut Option<Engine>, host: &mut Host, rx: &mut [u8], tx: &mut [u8]) -> ! {
    loop {
        let Some(device) = engine.as_mut() else {
            halt()
        };
        match run(device, host, &mut Millis, rx, tx) {
            // A reboot: the engine is built again from the flash (the configuration
            // saved last) and the same target, as a reset would.
            Ok(Stopped::Effect(Effect::Reboot)) => {
                if let Some(old) = engine.take() {
                    let (target, store) = old.into_parts();
                    boot(engine, target, store);
                }
            }
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
