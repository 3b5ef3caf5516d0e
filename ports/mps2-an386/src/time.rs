//! SysTick as the board's time base: an interrupt every millisecond counts the
//! milliseconds since boot, read by [`Millis`] (the device loop's clock) and by
//! embassy's time driver, whose timers it also fires: its timer queue (the executor's
//! own, `embassy-time-queue-utils`) is checked at every tick that reaches the earliest
//! alarm.

use core::cell::{Cell, RefCell};
use core::task::Waker;

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::exception;
use critical_section::{CriticalSection, Mutex};
use embassy_time_driver::Driver;
use embassy_time_queue_utils::Queue;
use lwm2m_core::Instant;
use transport_traits::run::asynch::Alarm;
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
        let now = millis.get().wrapping_add(1);
        millis.set(now);
        if now >= DRIVER.alarm.borrow(cs).get() {
            DRIVER.expire(cs, now);
        }
    });
}

/// embassy's time driver over the millisecond tick (`embassy-time` with
/// `tick-hz-1_000`).
struct Ticks {
    /// The timers of the executor's tasks.
    queue: Mutex<RefCell<Queue>>,
    /// The earliest of them (`u64::MAX`: none).
    alarm: Mutex<Cell<u64>>,
}

impl Ticks {
    /// Wakes the tasks whose timers expired by `now`, and notes the next alarm.
    fn expire(&self, cs: CriticalSection<'_>, now: u64) {
        let next = self.queue.borrow_ref_mut(cs).next_expiration(now);
        self.alarm.borrow(cs).set(next);
    }
}

impl Driver for Ticks {
    fn now(&self) -> u64 {
        critical_section::with(|cs| MILLIS.borrow(cs).get())
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        critical_section::with(|cs| {
            if self.queue.borrow_ref_mut(cs).schedule_wake(at, waker) {
                // An alarm already due wakes its task at once.
                self.expire(cs, MILLIS.borrow(cs).get());
            }
        });
    }
}

embassy_time_driver::time_driver_impl!(static DRIVER: Ticks = Ticks {
    queue: Mutex::new(RefCell::new(Queue::new())),
    alarm: Mutex::new(Cell::new(u64::MAX)),
});

/// The device loop's clock: milliseconds since boot.
#[derive(Clone, Copy, Debug, Default)]
pub struct Millis;

impl Clock for Millis {
    fn now(&mut self) -> Instant {
        Instant::from_millis(critical_section::with(|cs| MILLIS.borrow(cs).get()))
    }
}

impl Alarm for Millis {
    /// An embassy timer at `deadline` (the same milliseconds).
    async fn at(&mut self, deadline: Instant) {
        embassy_time::Timer::at(embassy_time::Instant::from_millis(deadline.as_millis())).await
    }
}
