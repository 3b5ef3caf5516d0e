//! What the device is, from the library crates: the engine with the standard objects,
//! its configuration in the flash store, the simulated target, the frame sizes. The
//! board ([`crate::board`]) gives it a flash; the async loop ([`crate::serve`]) runs it,
//! the target and the store beside the engine ([`Io`]: the operations requests wait on
//! are performed there, blocking).

use lwm2m_core::storage::{ConfigStore, FlashStore, LoadState};
use lwm2m_core::target::MemoryTarget;
use lwm2m_core::wire::APDU_HEADER_LEN;
use lwm2m_core::{Config, Device, FrameLimits, ResultCode};
use lwm2m_objects::{standard_objects, DeviceInfo, NoHooks, StandardObjects};
use target_traits::RamTarget;
use transport_traits::run::asynch::BlockingIo;

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
    None => "MPS2AN386-0000001",
};

/// The simulated target: 1 KiB of memory at 0x2000_0000, like the SRAM of the
/// microcontroller a Tap device monitors. It outlives a reboot of the device.
pub type Target = MemoryTarget<RamTarget<1024>>;
const TARGET_BASE: u32 = 0x2000_0000;

/// The engine: the objects and the configuration; its target and store are [`Io`].
pub type Engine = Device<StandardObjects<NoHooks>>;

/// The target and the configuration store, which the async loop performs operations on.
pub type Io = BlockingIo<Target, FlashStore<RamFlash>>;

/// `/3//11` after a boot whose stored configuration was damaged (the factory one, or
/// the one saved before, is served): NVM_ERROR, as on the desktop.
const LAST_ERROR_CONFIG_LOST: u32 = ResultCode::NvmError.as_u8() as u32;

/// The simulated target, blank.
pub fn target() -> Target {
    MemoryTarget(RamTarget::new(TARGET_BASE))
}

/// The engine with the configuration loaded from `store` (the factory one on first
/// boot), with the standard objects. A damaged store is recorded in `/3//11`: a board
/// has no operator to refuse to start to.
pub fn boot(store: &mut FlashStore<RamFlash>) -> Engine {
    let info = DeviceInfo {
        manufacturer: "IoTize",
        flavor: "mps2-an386",
        serial: heapless::String::try_from(SERIAL).unwrap_or_default(),
        firmware_version: lwm2m_objects::device::TAP_FIRMWARE_LEVEL,
    };
    let mut config = Config::default();
    let loaded = store.load_into(&mut config);
    // `new` hands the objects the configuration loaded, as `Device::load_config` does.
    let mut device = Device::new(
        standard_objects(info, NoHooks),
        config,
        Config::reset,
        LIMITS,
    );
    match loaded {
        Ok(LoadState::Config | LoadState::Blank) => {}
        // The factory configuration on a flash error or damage, else the one saved
        // before the damaged one.
        Ok(LoadState::Previous | LoadState::Damaged) | Err(_) => device
            .objects_mut()
            .0
            .set_last_error(LAST_ERROR_CONFIG_LOST),
    }
    device
}
