//! The stack, painted at boot: the RAM between the static data and the stack is filled
//! with [`PAINT`], so that the deepest stack the device has used is where the paint
//! stops (the lowest word no longer painted, from a dump of the RAM: `cargo xtask
//! boards` reports it from QEMU). cortex-m-rt's layout: the static data end at
//! `_stack_end`, the stack starts at `_stack_start` and grows down.
#![allow(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

/// What the free RAM below the stack is filled with.
pub const PAINT: u32 = 0xA5A5_A5A5;

extern "C" {
    /// The end of the static data, where the stack may grow down to (cortex-m-rt).
    static _stack_end: u32;
}

/// Paints the RAM between the static data and the caller's frame (a little below it):
/// the first thing `main` does.
#[inline(always)]
pub fn paint() {
    let mut at = core::ptr::addr_of!(_stack_end) as usize;
    let end = cortex_m::register::msp::read() as usize - 64;
    while at < end {
        // SAFETY: free RAM between the static data and the stack, below every frame
        // (the caller's is above `end`), word-aligned (cortex-m-rt aligns `_stack_end`).
        unsafe { core::ptr::write_volatile(at as *mut u32, PAINT) };
        at += 4;
    }
}
