//! Booting and loading agree: `Device::boot` and `Device::load_config` give the device's
//! own factory configuration when the store holds none, on an error too, and a boot
//! drops a request that waits on an operation.

mod common;
use common::*;
use lwm2m_core::storage::{ConfigStore, LoadState, Loaded, StoreError, StoreErrorKind};
use lwm2m_core::target::NoTarget;
use lwm2m_core::Config;

/// A firmware's own factory configuration: a 5 s inactivity period (stands for a
/// per-device admin password, the reason `factory` is a function at all).
fn own_factory(config: &mut Config) {
    config.reset();
    config.inactivity_secs = 5;
}

fn factory_config() -> Config {
    let mut config = Config::default();
    own_factory(&mut config);
    config
}

/// Blank, or failing with a flash error; `load_into` is the trait's default.
#[derive(Default)]
struct Store {
    fail: bool,
}

impl ConfigStore for Store {
    fn load(&mut self) -> Result<Loaded, StoreError> {
        if self.fail {
            Err(StoreError::new(StoreErrorKind::Flash))
        } else {
            Ok(Loaded::Blank)
        }
    }

    fn save(&mut self, _: &Config) -> Result<(), StoreError> {
        Ok(())
    }
}

fn unbooted(
    store: Store,
) -> lwm2m_core::Device<lwm2m_objects::StandardObjects<lwm2m_objects::NoHooks>, NoTarget, Store> {
    lwm2m_core::Device::unbooted(
        lwm2m_objects::standard_objects(device_info(), lwm2m_objects::NoHooks),
        NoTarget,
        store,
        own_factory,
        LIMITS,
    )
}

/// `boot` applies the device's factory function on a blank store.
#[test]
fn boot_on_a_blank_store_gives_the_device_factory_configuration() {
    let mut device = unbooted(Store::default());
    assert_eq!(device.boot(), Ok(LoadState::Blank));
    assert_eq!(device.config(), &factory_config());
}

/// So does `load_config`, as a factory reset does (it gave `Config::reset`).
#[test]
fn load_config_on_a_blank_store_gives_the_device_factory_configuration() {
    let mut device = unbooted(Store::default());
    assert_eq!(device.load_config(), Ok(LoadState::Blank));
    assert_eq!(
        device.config().inactivity_secs,
        factory_config().inactivity_secs,
        "load_config served Config::reset"
    );
}

/// On a store error, `load_config` (with the trait's default `load_into`) gives the
/// factory configuration too: it left the configuration as it was (on an unbooted device
/// `Config::EMPTY`, with no profile: nobody could ever log in, not even to factory-reset).
#[test]
fn load_config_on_a_store_error_gives_the_device_factory_configuration() {
    let mut device = unbooted(Store { fail: true });
    assert!(device.load_config().is_err());
    assert_eq!(
        device.config(),
        &factory_config(),
        "load_config left Config::EMPTY in place"
    );
}

/// The same store error through `boot` gives the factory configuration.
#[test]
fn boot_on_a_store_error_gives_the_device_factory_configuration() {
    let mut device = unbooted(Store { fail: true });
    assert!(device.boot().is_err());
    assert_eq!(device.config(), &factory_config());
}

/// A request left waiting on an operation is dropped by `boot`; resuming it afterwards
/// answers nothing and the device serves again.
#[test]
fn boot_drops_a_waiting_save_and_a_late_resume_answers_nothing() {
    let mut device = unbooted(Store::default());
    device.boot().unwrap();
    let ch = lwm2m_core::Channel::new(1, lwm2m_core::ChannelKind::WebSocket);
    let mut out = [0u8; 300];
    let login = hex(LOGIN_ADMIN);
    let now = lwm2m_core::Instant::ZERO;
    assert!(matches!(
        device.start(ch, &login, now, &mut out),
        lwm2m_core::Step::Done(_)
    ));
    // POST /3//5, factory reset: the factory configuration saved, which waits.
    let save = hex("a2da000007020003ffff0005");
    let step = device.start(ch, &save, now, &mut out);
    assert!(
        matches!(step, lwm2m_core::Step::Pending(_)),
        "the save waits: {step:?}"
    );
    device.boot().unwrap();
    assert_eq!(device.pending(), None);
    assert_eq!(device.session().owner(), None);
    match device.resume(Ok(()), &save, now, &mut out) {
        lwm2m_core::Step::Done(outcome) => assert_eq!(outcome.len, 0),
        step => panic!("{step:?}"),
    }
}
