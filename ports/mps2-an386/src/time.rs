//! SysTick as the board's time base: an interrupt every millisecond counts the
//! milliseconds since boot, read by [`Millis`], the device loop's clock.

use core::cell::Cell;

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::exception;
use critical_section::Mutex;
use lwm2m_core::Instant;
use transport_traits::run::Clock;

/// Milliseconds since [`start`], counted by the SysTick interrupt.
static MILLIS: Mutex<Cell<u64>> = Mutex::new(Cell::new(0));

/// Starts the millisecond tick of a core clocked at `core_hz`.
pub fn start(mut syst: SYST, core_hz: u32) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(core_hz / 1000 - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

#[exception]
fn SysTick() {
    critical_section::with(|cs| {
        let millis = MILLIS.borrow(cs);
        millis.set(millis.get().wrapping_add(1));
    });
}

/// The device loop's clock: milliseconds since boot.
#[derive(Clone, Copy, Debug, Default)]
pub struct Millis;

impl Clock for Millis {
    fn now(&mut self) -> Instant {
        Instant::from_millis(critical_section::with(|cs| MILLIS.borrow(cs).get()))
    }
}
