//! What the device is, from the library crates: the engine with the standard objects,
//! its configuration in the flash store, the simulated target, the frame sizes. The
//! board ([`crate::board`]) gives it a flash; the loop ([`crate::serve`]) runs it.

use lwm2m_core::storage::{FlashStore, LoadState};
use lwm2m_core::target::MemoryTarget;
use lwm2m_core::wire::APDU_HEADER_LEN;
use lwm2m_core::{Config, Device, FrameLimits, ResultCode};
use lwm2m_objects::{standard_objects, DeviceInfo, NoHooks, StandardObjects};
use target_traits::RamTarget;

use crate::board::RamFlash;

/// The frame sizes of this board.
pub const LIMITS: FrameLimits = FrameLimits {
    max_request: 256,
    max_response: 256,
};

/// One request APDU: the advertised request and its header.
pub const RX_LEN: usize = LIMITS.max_request as usize + APDU_HEADER_LEN;
pub const TX_LEN: usize = LIMITS.max_response as usize;

/// The serial number (`LWM2M_SERIAL` at build time).
const SERIAL: &str = match option_env!("LWM2M_SERIAL") {
    Some(serial) => serial,
    None => "MICROBIT-0000001",
};

/// The simulated target: 1 KiB of memory at 0x2000_0000, like the SRAM of the
/// microcontroller a Tap device monitors. It outlives a reboot of the device.
pub type Target = MemoryTarget<RamTarget<1024>>;
const TARGET_BASE: u32 = 0x2000_0000;

pub type Engine = Device<StandardObjects<NoHooks>, Target, FlashStore<RamFlash>>;

/// `/3//11` after a boot whose stored configuration was damaged (the factory one, or
/// the one saved before, is served): NVM_ERROR, as on the desktop.
const LAST_ERROR_CONFIG_LOST: u32 = ResultCode::NvmError.as_u8() as u32;

/// The simulated target, blank.
pub fn target() -> Target {
    MemoryTarget(RamTarget::new(TARGET_BASE))
}

/// The engine over `target` and `store`, built into `slot`: the standard objects, the
/// configuration loaded from the store in place (the factory one on first boot). A
/// damaged store is recorded in `/3//11`: a board has no operator to refuse to start
/// to. Out of line, and into its slot, so that its stack is not kept by its callers.
#[inline(never)]
pub fn boot(slot: &mut Option<Engine>, target: Target, store: FlashStore<RamFlash>) {
    let info = DeviceInfo {
        manufacturer: "IoTize",
        flavor: "microbit",
        serial: heapless::String::try_from(SERIAL).unwrap_or_default(),
        firmware_version: lwm2m_objects::device::TAP_FIRMWARE_LEVEL,
    };
    let device = slot.insert(
        Device::new(
            standard_objects(info, NoHooks),
            Config::default(),
            Config::reset,
            LIMITS,
        )
        .with_target(target)
        .with_store(store),
    );
    match device.load_config() {
        Ok(LoadState::Config | LoadState::Blank) => {}
        // The factory configuration on a flash error or damage, else the one saved
        // before the damaged one.
        Ok(LoadState::Previous | LoadState::Damaged) | Err(_) => device
            .objects_mut()
            .0
            .set_last_error(LAST_ERROR_CONFIG_LOST),
    }
}
