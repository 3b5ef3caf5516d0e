//! TIMER0 as the board's time base: a free-running 32-bit counter at 1 MHz, read with
//! a capture task and extended to milliseconds since boot by [`Millis`], the device
//! loop's clock (QEMU does not emulate RTC0). Its compare channel 1, moved 1 ms ahead
//! each time it fires, wakes the board from WFI.
//!
//! Registers (nRF51 Series Reference Manual, "TIMER"): `TASKS_START` (+0x000),
//! `TASKS_CAPTURE[n]` (+0x040 + 4n), `EVENTS_COMPARE[n]` (+0x140 + 4n), `INTENSET`
//! (+0x304: bit 16 + n COMPARE[n]), `MODE` (+0x504: 0 timer), `BITMODE` (+0x508: 3
//! 32 bits), `PRESCALER` (+0x510: 16 MHz / 2^n), `CC[n]` (+0x540 + 4n).

use core::cell::Cell;
use core::ptr::{read_volatile, write_volatile};

use critical_section::{CriticalSection, Mutex};
use lwm2m_core::Instant;
use transport_traits::run::Clock;

/// TIMER0.
const BASE: usize = 0x4000_8000;

const TASKS_START: usize = 0x000;
const EVENTS_COMPARE1: usize = 0x144;
const INTENSET: usize = 0x304;
const MODE: usize = 0x504;
const BITMODE: usize = 0x508;
const PRESCALER: usize = 0x510;

/// Channel 0 captures the time, channel 1 wakes the board.
const TASKS_CAPTURE0: usize = 0x040;
const CC0: usize = 0x540;
const CC1: usize = 0x544;

const BITMODE_32: u32 = 3;
/// 16 MHz / 2^4: 1 MHz.
const PRESCALER_1MHZ: u32 = 4;
const INT_COMPARE1: u32 = 1 << 17;
/// Microseconds between two wake-ups.
const WAKE_US: u32 = 1000;

fn read(offset: usize) -> u32 {
    // SAFETY: a register of TIMER0, which only this module drives.
    unsafe { read_volatile((BASE + offset) as *const u32) }
}

fn write(offset: usize, value: u32) {
    // SAFETY: a register of TIMER0, which only this module drives.
    unsafe { write_volatile((BASE + offset) as *mut u32, value) }
}

/// Milliseconds since boot, the counter's value they were computed at, and the
/// microseconds beyond the last millisecond.
struct Count {
    millis: u64,
    last: u32,
    micros: u32,
}

static COUNT: Mutex<Cell<Count>> = Mutex::new(Cell::new(Count {
    millis: 0,
    last: 0,
    micros: 0,
}));

/// The counter's value now (captured into CC[0]).
fn capture(_: CriticalSection) -> u32 {
    write(TASKS_CAPTURE0, 1);
    read(CC0)
}

/// Brings the milliseconds since boot up to now and returns them: called at least once
/// per wrap of the counter (71 minutes), which the wake-up interrupt makes sure of.
fn update(cs: CriticalSection) -> u64 {
    let cell = COUNT.borrow(cs);
    let Count {
        mut millis,
        last,
        mut micros,
    } = cell.replace(Count {
        millis: 0,
        last: 0,
        micros: 0,
    });
    let now = capture(cs);
    let elapsed = now.wrapping_sub(last);
    // 32-bit divisions only (the Cortex-M0 has no divider; a 64-bit one is costly).
    millis += u64::from(elapsed / 1000);
    micros += elapsed % 1000;
    if micros >= 1000 {
        millis += 1;
        micros -= 1000;
    }
    cell.set(Count {
        millis,
        last: now,
        micros,
    });
    millis
}

/// Starts TIMER0 at 1 MHz from 0, its wake-up compare 1 ms ahead with its interrupt
/// (which the caller unmasks in the NVIC; its handler is [`on_compare`]).
pub fn start() {
    write(MODE, 0);
    write(BITMODE, BITMODE_32);
    write(PRESCALER, PRESCALER_1MHZ);
    write(CC1, WAKE_US);
    write(EVENTS_COMPARE1, 0);
    write(INTENSET, INT_COMPARE1);
    write(TASKS_START, 1);
}

/// The work of TIMER0's interrupt: the wake-up moved 1 ms past now (not past the last
/// one: a late interrupt never leaves it behind the counter), the clock brought up to
/// date.
pub fn on_compare() {
    critical_section::with(|cs| {
        write(EVENTS_COMPARE1, 0);
        let now = capture(cs);
        write(CC1, now.wrapping_add(WAKE_US));
        update(cs);
    });
}

/// The device loop's clock: milliseconds since boot.
#[derive(Clone, Copy, Debug, Default)]
pub struct Millis;

impl Clock for Millis {
    fn now(&mut self) -> Instant {
        Instant::from_millis(critical_section::with(update))
    }
}
