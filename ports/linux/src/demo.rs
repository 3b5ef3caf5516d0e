//! The demo the desktop device starts with (unless `--no-demo`): a bundle anonymous may
//! read, variables of several types on the simulated target and in the device, and a
//! simulated process behind the target's memory, so that a client pointed at a fresh
//! device reads live data at once.
//!
//! | id | name | type | where | value |
//! |---|---|---|---|---|
//! | 1 | `counter` | UINT32 | target `0x2000_0000` | tenths of a second since the device started |
//! | 2 | `wave` | FLOAT32 | target `0x2000_0004` | `setpoint` + 5 × sin(2π t / 10 s) |
//! | 3 | `setpoint` | INT16 | target `0x2000_0008` | 20 until written |
//! | 4 | `limit` | UINT16 | in the device, saved | 100 until written |
//! | 5 | `mode` | UINT8 | in the device, RAM only | 1 until written |
//!
//! The simulated target runs on 3.3 V (`GET /1027//7`, [`SimulatedSupply`]).
//!
//! Bundle 1 `demo` holds them all: anonymous reads, the administrator (who has every
//! right) writes. Values in the target's memory are big-endian, as the client decodes
//! them. A blank `--state` starts with the demo and saves it; a factory reset (`POST
//! /3//5`) gives the library's empty factory configuration (`Config::reset`), which the
//! client's configurator starts from, so that no demo bundle, ACL entry or variable is
//! left beside what it writes. The process runs whatever configuration is loaded, unless
//! `--no-demo`: the demo's addresses are the simulated target's, not the configuration's.

use std::time::Instant as StdInstant;

use lwm2m_core::config::{AclEntry, Bundle, CapacityError, Rights, Variable};
use lwm2m_core::Config;
use target_traits::{ErrorKind, ErrorType, MemoryAccess, RamTarget, Vcc};

use crate::TARGET_RAM_BASE;

/// Bytes of the simulated target's RAM.
pub const TARGET_RAM: usize = 64 * 1024;

/// The demo's bundle.
pub const BUNDLE: u16 = 1;
/// Where the counter is (UINT32).
pub const COUNTER: u32 = TARGET_RAM_BASE;
/// Where the waveform is (FLOAT32).
pub const WAVE: u32 = TARGET_RAM_BASE + 4;
/// Where the set-point is (INT16).
pub const SETPOINT: u32 = TARGET_RAM_BASE + 8;
/// The set-point before anything is written.
const SETPOINT_START: i16 = 20;
/// The waveform's period and amplitude.
const WAVE_PERIOD_S: f32 = 10.0;
const WAVE_AMPLITUDE: f32 = 5.0;

/// `[domain:2][data type:6]` (`objects.md` §6.2).
const fn var_type(domain: u8, data: u8) -> u8 {
    domain << 6 | data
}
const TARGET: u8 = 0;
const IN_TAP_STATIC: u8 = 2;
const IN_TAP_VOLATILE: u8 = 3;
const UINT8: u8 = 33;
const INT16: u8 = 2;
const UINT16: u8 = 34;
const UINT32: u8 = 35;
const FLOAT32: u8 = 19;

/// Adds the demo's bundle and variables to `config` (the factory configuration of a
/// blank store).
pub fn add(config: &mut Config) {
    if let Err(err) = try_add(config) {
        // The capacities of the configuration are the build's: a demo that does not
        // fit is a bug of this file, not of the device.
        log::error!("the demo does not fit the configuration: {err:?}");
    }
}

/// Id, meta (`name:unit`), type, target address, in-device value.
type DemoVariable = (u16, &'static [u8], u8, [u8; 4], &'static [u8]);

fn try_add(config: &mut Config) -> Result<(), CapacityError> {
    let mut bundle = Bundle::new(BUNDLE);
    bundle.name = heapless::Vec::from_slice(b"demo").map_err(full)?;
    bundle
        .acl
        .push(AclEntry {
            profile: 0,
            rights: Rights::READ,
        })
        .map_err(full)?;
    config.bundles.push(bundle).map_err(full)?;
    let variables: [DemoVariable; 5] = [
        (
            1,
            b"counter:0.1 s",
            var_type(TARGET, UINT32),
            COUNTER.to_be_bytes(),
            &[],
        ),
        (
            2,
            b"wave:degC",
            var_type(TARGET, FLOAT32),
            WAVE.to_be_bytes(),
            &[],
        ),
        (
            3,
            b"setpoint:degC",
            var_type(TARGET, INT16),
            SETPOINT.to_be_bytes(),
            &[],
        ),
        (
            4,
            b"limit:degC",
            var_type(IN_TAP_STATIC, UINT16),
            [0; 4],
            &[0, 100],
        ),
        (5, b"mode:", var_type(IN_TAP_VOLATILE, UINT8), [0; 4], &[1]),
    ];
    for (id, meta, var_type, address, value) in variables {
        let mut var = Variable::new(id);
        var.var_type = var_type;
        var.address = address;
        var.bundle = Some(BUNDLE);
        var.meta = heapless::Vec::from_slice(meta).map_err(full)?;
        var.value = heapless::Vec::from_slice(value).map_err(full)?;
        config.variables.push(var).map_err(full)?;
    }
    Ok(())
}

fn full<E>(_: E) -> CapacityError {
    CapacityError
}

/// The simulated target: its RAM, and with the demo the process that moves the counter
/// and the waveform, which are brought up to date before every read (a process that
/// runs when someone looks at it, so nothing runs between requests).
pub struct SimulatedTarget {
    ram: RamTarget<TARGET_RAM>,
    /// When the process started, with the demo.
    process: Option<StdInstant>,
}

impl SimulatedTarget {
    /// Zeroed RAM at the Cortex-M SRAM's address; with `demo`, the process runs and the
    /// set-point starts at 20.
    pub fn new(demo: bool) -> SimulatedTarget {
        let mut ram = RamTarget::new(TARGET_RAM_BASE);
        if demo {
            let _ = ram.write(SETPOINT, &SETPOINT_START.to_be_bytes());
        }
        SimulatedTarget {
            ram,
            process: demo.then(StdInstant::now),
        }
    }

    /// The process's outputs at this instant.
    fn step(&mut self) -> Result<(), ErrorKind> {
        let Some(start) = self.process else {
            return Ok(());
        };
        let elapsed = start.elapsed();
        let tenths = u32::try_from(elapsed.as_millis() / 100).unwrap_or(u32::MAX);
        self.ram.write(COUNTER, &tenths.to_be_bytes())?;
        let mut setpoint = [0u8; 2];
        self.ram.read(SETPOINT, &mut setpoint)?;
        let phase = elapsed.as_secs_f32() / WAVE_PERIOD_S * std::f32::consts::TAU;
        let wave = f32::from(i16::from_be_bytes(setpoint)) + WAVE_AMPLITUDE * phase.sin();
        self.ram.write(WAVE, &wave.to_be_bytes())
    }
}

impl ErrorType for SimulatedTarget {
    type Error = ErrorKind;
}

impl MemoryAccess for SimulatedTarget {
    fn read(&mut self, address: u32, buf: &mut [u8]) -> Result<(), ErrorKind> {
        self.step()?;
        self.ram.read(address, buf)
    }

    fn write(&mut self, address: u32, data: &[u8]) -> Result<(), ErrorKind> {
        self.ram.write(address, data)
    }
}

/// The simulated target's supply, with the demo (`GET /1027//7`): 3.3 V.
pub struct SimulatedSupply;

impl SimulatedSupply {
    /// The supply the simulated target runs on, in millivolts.
    pub const MILLIVOLTS: u16 = 3300;
}

impl ErrorType for SimulatedSupply {
    type Error = ErrorKind;
}

impl Vcc for SimulatedSupply {
    fn millivolts(&mut self) -> Result<u16, ErrorKind> {
        Ok(SimulatedSupply::MILLIVOLTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_fits_and_names_what_the_target_serves() {
        let mut config = Config::default();
        add(&mut config);
        assert_eq!(config.bundles.len(), 1);
        assert_eq!(config.variables.len(), 5);
        assert!(config.profile(0xFFFF).is_some(), "the factory admin stays");
        for var in &config.variables {
            assert_eq!(var.bundle, Some(BUNDLE));
            let len = var.value_len().unwrap();
            match var.domain() {
                lwm2m_core::config::Domain::Target => {
                    let address = var.address_u32() as usize - TARGET_RAM_BASE as usize;
                    assert!(address + len <= TARGET_RAM);
                }
                _ => assert_eq!(var.value.len(), len, "variable {}", var.id),
            }
        }
    }

    #[test]
    fn the_process_moves_the_counter_and_the_wave_around_the_setpoint() {
        let mut target = SimulatedTarget::new(true);
        target.process = Some(StdInstant::now() - std::time::Duration::from_millis(2_500));
        let mut counter = [0u8; 4];
        target.read(COUNTER, &mut counter).unwrap();
        assert!(u32::from_be_bytes(counter) >= 25);
        target.write(SETPOINT, &100i16.to_be_bytes()).unwrap();
        let mut wave = [0u8; 4];
        target.read(WAVE, &mut wave).unwrap();
        let wave = f32::from_be_bytes(wave);
        assert!((95.0..=105.0).contains(&wave), "{wave}");
        // Without the demo: plain memory.
        let mut plain = SimulatedTarget::new(false);
        plain.read(COUNTER, &mut counter).unwrap();
        assert_eq!(counter, [0; 4]);
        plain.read(SETPOINT, &mut counter[..2]).unwrap();
        assert_eq!(&counter[..2], &[0, 0]);
    }
}
