//! What the device of every board is: the board crates (`ports/mps2-an386`,
//! `ports/microbit`) hold their wiring only (start-up, UART, clock, flash) and take
//! the rest from here, so that the async board and the blocking one run the same
//! device.
//!
//! - the engine ([`Engine`], built at compile time with [`engine`]: a board puts it in
//!   a static, so that neither the engine nor its configuration is ever on its
//!   stack), with the standard objects and the factory configuration;
//! - its frame sizes ([`LIMITS`], [`RX_LEN`], [`TX_LEN`]) and its one serial channel
//!   ([`LINE`], [`Host`]);
//! - with the feature `modbus-slave`, the Modbus RTU slave of a board with a second
//!   UART beside the serial line (`ModbusHost`: its channel `MODBUS_SLAVE`, its unit
//!   `MODBUS_UNIT`, its requests with the rights of `MODBUS_SLAVE_PROFILE`, the
//!   anonymous profile);
//! - the simulated target ([`Target`], [`TARGET`]): 1 KiB of memory at `0x2000_0000`;
//! - the boot policy ([`start`], [`boot`], [`boot_from`]): the configuration loaded
//!   from the store in place, a damaged one recorded in `/3//11`;
//! - the device loop ([`serve`], blocking, and `serve_async`): run the engine, act on
//!   the effects of requests (a reboot boots the engine again in place), forever;
//! - with the feature `defmt`, logs through defmt (the library crates' and the boot's),
//!   never `core::fmt`;
//! - on Cortex-M (feature `cortex-m`), the stack painted at boot ([`stack`]), so that
//!   the deepest stack the device used can be read from its RAM.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "cortex-m")]
pub mod stack;

use lwm2m_core::storage::{ConfigStore, LoadState, StoreError};
use lwm2m_core::target::{MemoryTarget, TargetIo};
use lwm2m_core::wire::APDU_HEADER_LEN;
use lwm2m_core::{Channel, ChannelKind, Config, Device, Effect, FrameLimits, ResultCode};
use lwm2m_objects::{standard_objects, DeviceInfo, NoHooks, StandardObjects};
use target_traits::RamTarget;
use transport_traits::run::{self, Clock, Stopped};
use transport_traits::serial::{encoded_len, SerialHost, CRC_LEN};

/// The frame sizes of the boards.
pub const LIMITS: FrameLimits = FrameLimits {
    max_request: 256,
    max_response: 256,
};

/// One request APDU: the advertised request and its header.
pub const RX_LEN: usize = LIMITS.max_request as usize + APDU_HEADER_LEN;
/// One response APDU.
pub const TX_LEN: usize = LIMITS.max_response as usize;

/// The one channel of the serial line.
pub const LINE: Channel = Channel::new(1, ChannelKind::Serial);

/// The serial line as the device loop's host, over the board's UART `P` and clock `C`:
/// a request and its CRC decoded, an answer encoded.
pub type Host<P, C> = SerialHost<P, C, { RX_LEN + CRC_LEN }, { encoded_len(TX_LEN) }>;

/// The Modbus RTU slave's channel: a side handler's, never the serial line's.
#[cfg(feature = "modbus-slave")]
pub const MODBUS_SLAVE: lwm2m_core::ChannelId = lwm2m_core::ChannelId(2);

/// The profile whose rights the Modbus master's requests run with: the anonymous
/// profile (what the anonymous profile and every bundle ACL granting "everyone" allow),
/// as `port-linux --modbus-slave` without `--modbus-slave-profile`.
#[cfg(feature = "modbus-slave")]
pub const MODBUS_SLAVE_PROFILE: u16 = lwm2m_core::config::ANONYMOUS;

/// The board's unit address on the Modbus line (frames for other units go unanswered,
/// unit 0 is a broadcast).
#[cfg(feature = "modbus-slave")]
pub const MODBUS_UNIT: u8 = 1;

/// The Modbus RTU slave on the board's UART `M`.
#[cfg(feature = "modbus-slave")]
pub type ModbusSlave<M> = transport_traits::modbus_slave::rtu::RtuSlave<M>;

/// The serial line ([`Host`] over the UART `P`) and the Modbus RTU slave (over the UART
/// `M`) as the async device loop's host: the slave's requests are side requests of
/// [`MODBUS_SLAVE`] with the rights of [`MODBUS_SLAVE_PROFILE`]
/// (`transport_traits::side::Beside`).
#[cfg(feature = "modbus-slave")]
pub type ModbusHost<P, C, M> = transport_traits::side::Beside<Host<P, C>, ModbusSlave<M>>;

/// [`ModbusHost`] over `host` and the UART `modbus`.
#[cfg(feature = "modbus-slave")]
pub fn modbus_host<P, C, M>(host: Host<P, C>, modbus: M) -> ModbusHost<P, C, M> {
    transport_traits::side::Beside::new(
        host,
        ModbusSlave::new(modbus, MODBUS_UNIT),
        MODBUS_SLAVE,
        MODBUS_SLAVE_PROFILE,
    )
}

/// The simulated target: 1 KiB of memory at `0x2000_0000`, like the SRAM of the
/// microcontroller a Tap device monitors. It outlives a reboot of the device.
pub type Target = MemoryTarget<RamTarget<1024>>;

/// The simulated target, blank.
pub const TARGET: Target = MemoryTarget(RamTarget::new(0x2000_0000));

/// The engine of a board: the standard objects, the target `T` and the store `S`
/// (none for a board that performs the operations itself, as the async one does).
pub type Engine<T = lwm2m_core::target::NoTarget, S = lwm2m_core::storage::NoStore> =
    Device<StandardObjects<NoHooks>, T, S>;

/// The serial number: `LWM2M_SERIAL` at build time, else `default`.
pub const fn serial(default: &'static str) -> &'static str {
    match option_env!("LWM2M_SERIAL") {
        Some(serial) => serial,
        None => default,
    }
}

/// The engine of the board `flavor` (`/3//1`), over `target` and `store`, not booted
/// yet ([`Device::unbooted`]): `const`, for a static. [`start`] it before serving.
pub const fn engine<T: TargetIo, S: ConfigStore>(
    flavor: &'static str,
    target: T,
    store: S,
) -> Engine<T, S> {
    let info = DeviceInfo {
        manufacturer: "IoTize",
        flavor,
        // Set by `start`: a `String` cannot be filled in a constant.
        serial: heapless::String::new(),
        firmware_version: lwm2m_objects::device::TAP_FIRMWARE_LEVEL,
    };
    Device::unbooted(
        standard_objects(info, NoHooks),
        target,
        store,
        Config::reset,
        LIMITS,
    )
}

/// `/3//11` after a boot whose stored configuration was damaged or could not be read
/// (the factory one, or the one saved before, is served): NVM_ERROR, as on the desktop.
pub const LAST_ERROR_CONFIG_LOST: u32 = ResultCode::NvmError.as_u8() as u32;

/// The first boot of `engine`: its serial number set, then [`boot`].
pub fn start<T: TargetIo, S: ConfigStore>(engine: &mut Engine<T, S>, serial: &str) {
    set_serial(engine, serial);
    boot(engine);
}

/// [`start`] with the configuration in `store`, kept beside the engine.
pub fn start_from<T: TargetIo, S: ConfigStore, S2: ConfigStore>(
    engine: &mut Engine<T, S>,
    store: &mut S2,
    serial: &str,
) {
    set_serial(engine, serial);
    boot_from(engine, store);
}

fn set_serial<T: TargetIo, S: ConfigStore>(engine: &mut Engine<T, S>, serial: &str) {
    engine.objects_mut().0.info_mut().serial =
        heapless::String::try_from(serial).unwrap_or_default();
}

/// Boots `engine` in place from its store ([`Device::boot`]): at power-up and on a
/// reboot request. A damaged store is recorded in `/3//11` (else it is cleared): a
/// board has no operator to refuse to start to.
pub fn boot<T: TargetIo, S: ConfigStore>(engine: &mut Engine<T, S>) {
    let loaded = engine.boot();
    record(engine, loaded);
}

/// [`boot`] from `store`, kept beside the engine ([`Device::boot_from`]).
pub fn boot_from<T: TargetIo, S: ConfigStore, S2: ConfigStore>(
    engine: &mut Engine<T, S>,
    store: &mut S2,
) {
    let loaded = engine.boot_from(store);
    record(engine, loaded);
}

/// What the boot found, in `/3//11`.
fn record<T: TargetIo, S: ConfigStore>(
    engine: &mut Engine<T, S>,
    loaded: Result<LoadState, StoreError>,
) {
    #[cfg(feature = "defmt")]
    match loaded {
        Ok(state) => defmt::info!("booted, configuration: {}", state),
        Err(err) => defmt::warn!("booted, configuration unreadable: {}", err),
    }
    let last_error = match loaded {
        Ok(LoadState::Config | LoadState::Blank) => 0,
        // The factory configuration on a flash error or damage, else the one saved
        // before the damaged one.
        Ok(LoadState::Previous | LoadState::Damaged) | Err(_) => LAST_ERROR_CONFIG_LOST,
    };
    engine.objects_mut().0.set_last_error(last_error);
}

/// The blocking device loop: runs `engine` ([`run::run`]) until a request has an
/// effect, acts on it, and runs it again, forever. A reboot boots the engine again in
/// place from its store ([`boot`]), the target kept, as a reset would; a factory reset
/// was done and saved by the engine (a board has no peripheral to reset). An error of
/// the host only starts the loop again: a serial line has no end.
pub fn serve<T, S, H, C>(
    engine: &mut Engine<T, S>,
    host: &mut H,
    clock: &mut C,
    rx: &mut [u8],
    tx: &mut [u8],
) -> !
where
    T: TargetIo,
    S: ConfigStore,
    H: run::Host,
    C: Clock,
{
    loop {
        if let Ok(Stopped::Effect(Effect::Reboot)) = run::run(engine, host, clock, rx, tx) {
            boot(engine);
        }
    }
}

/// [`serve`] over an async host: the operations requests wait on are performed on the
/// target and the store of `io`, kept beside the engine, which a reboot boots from.
#[cfg(feature = "async")]
pub async fn serve_async<T, S, H, C>(
    engine: &mut Engine,
    host: &mut H,
    io: &mut run::asynch::BlockingIo<T, S>,
    clock: &mut C,
    rx: &mut [u8],
    tx: &mut [u8],
) -> !
where
    T: TargetIo,
    S: ConfigStore,
    H: run::asynch::Host,
    C: Clock,
{
    loop {
        if let Ok(Stopped::Effect(Effect::Reboot)) =
            run::asynch::run(engine, host, io, clock, rx, tx).await
        {
            boot_from(engine, &mut io.store);
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec;

    use super::*;
    use lwm2m_core::storage::{flash_size_needed, FlashStore, RamFlash};
    use lwm2m_core::time::Instant;

    type Flash<'a> = RamFlash<'a, 1024>;

    /// `GET /3//11` (the last error) answered by `engine` to admin: its value.
    fn last_error<T: TargetIo, S: ConfigStore>(engine: &mut Engine<T, S>) -> u32 {
        let mut out = [0u8; 64];
        // Login admin/admin, then the request.
        let mut login = vec![
            0xa2, 0xda, 0, 0, 0x27, 0x02, 0x04, 0x00, 0xff, 0xff, 0x00, 0x00,
        ];
        for field in [b"admin", b"admin"] {
            let mut padded = [0u8; 16];
            padded[..field.len()].copy_from_slice(field);
            login.extend_from_slice(&padded);
        }
        let outcome = engine.handle(LINE, &login, Instant::ZERO, &mut out);
        assert_eq!(out[..outcome.len], [0x00, 0x90, 0x00], "login");
        let request = [
            0xa2, 0xca, 0, 0, 7, 0x01, 0x00, 0x03, 0xff, 0xff, 0x00, 0x0b,
        ];
        let outcome = engine.handle(LINE, &request, Instant::ZERO, &mut out);
        let answer = &out[..outcome.len];
        assert_eq!(answer[0], 0x00, "{answer:02x?}");
        answer[1..answer.len() - 2]
            .iter()
            .fold(0, |value, &byte| value << 8 | u32::from(byte))
    }

    #[test]
    fn a_board_boots_blank_then_records_a_damaged_store_in_the_last_error() {
        let mut cells = vec![0xFF; flash_size_needed::<Flash>() as usize];
        let len = cells.len() as u32;
        {
            let store = FlashStore::new(Flash::new(&mut cells), 0..len).unwrap();
            let mut engine = engine("test", TARGET, store);
            start(&mut engine, "SN1");
            assert_eq!(engine.objects().0.info().serial.as_str(), "SN1");
            assert_eq!(engine.config(), &Config::default());
            assert_eq!(last_error(&mut engine), 0);
            let config = Config {
                inactivity_secs: 7,
                ..Config::default()
            };
            lwm2m_core::storage::ConfigStore::save(engine.store_mut(), &config).unwrap();
            boot(&mut engine);
            assert_eq!(engine.config().inactivity_secs, 7);
            assert_eq!(last_error(&mut engine), 0);
        }
        // A byte in the middle of the saved image changed: the factory configuration is
        // served, and `/3//11` says why, across a reboot that keeps the serial number.
        let first = cells.iter().position(|c| *c != 0xFF).unwrap();
        let last = cells.iter().rposition(|c| *c != 0xFF).unwrap();
        cells[(first + last) / 2] ^= 0x5A;
        let store = FlashStore::new(Flash::from_cells(&mut cells), 0..len).unwrap();
        let mut engine = engine("test", TARGET, store);
        start(&mut engine, "SN1");
        assert_eq!(engine.config(), &Config::default());
        assert_eq!(last_error(&mut engine), LAST_ERROR_CONFIG_LOST);
        boot(&mut engine);
        assert_eq!(engine.objects().0.info().serial.as_str(), "SN1");
        assert_eq!(last_error(&mut engine), LAST_ERROR_CONFIG_LOST);
    }
}
