//! The client's configurator sequence (objects.md §6.8) replayed frame by frame, then
//! bundles, variables and their rights (objects.md §6.1, §6.2).

mod common;
use common::configurator::CONFIGURATOR_FRAMES;
use common::*;
use lwm2m_core::target::{MemoryTarget, NoTarget};
use lwm2m_core::{Channel, ChannelKind, Config};
use target_traits::{MemoryAccess, RamTarget};

/// Wraps a bare Tap frame (hex) into an APDU.
fn apdu(frame_hex: &str) -> String {
    let frame = hex(frame_hex);
    let ins = if frame[0] == 1 { "ca" } else { "da" };
    format!("a2{ins}0000{:02x}{}", frame.len() % 256, to_hex(&frame))
}

type Target = MemoryTarget<RamTarget<256>>;

struct Configured {
    h: Harness<Target>,
}

impl Configured {
    fn new() -> Configured {
        let mut h = Harness::with_target(MemoryTarget(RamTarget::new(0x2000_0000)));
        assert_eq!(h.tx(LOGIN_ADMIN), "009000");
        for frame in CONFIGURATOR_FRAMES {
            assert_eq!(h.tx(&apdu(frame)), "009000", "configurator frame {frame}");
        }
        assert_eq!(h.tx(LOGOUT), "009000");
        // The target holds 23.5 at variable 5's address.
        h.device
            .target_mut()
            .0
            .write(0x2000_0010, &[0x41, 0xbc, 0, 0])
            .unwrap();
        Configured { h }
    }

    fn login(&mut self, user: &str, password: &str) {
        let mut body = [0u8; 32];
        body[..user.len()].copy_from_slice(user.as_bytes());
        body[16..16 + password.len()].copy_from_slice(password.as_bytes());
        let response = self
            .h
            .tx(&apdu(&format!("02 0400 ffff 0000 {}", to_hex(&body))));
        assert_eq!(response, "009000", "login {user}");
    }

    fn tx(&mut self, frame: &str) -> String {
        self.h.tx(&apdu(frame))
    }
}

#[test]
fn the_configurator_sequence_is_accepted_and_read_back() {
    let mut c = Configured::new();
    c.login("admin", "admin");
    assert_eq!(c.tx("01 0400 ffff 000a"), "00010200039000");
    assert_eq!(c.tx("01 0400 ffff 0009"), "0044656d6f9000");
    assert_eq!(c.tx("01 0403 ffff 0001"), "00039000");
    assert_eq!(c.tx("01 0401 0001 0000"), "0075736572319000");
    assert_eq!(c.tx("01 0401 0001 0004"), "00012c9000");
    assert_eq!(c.tx("01 0401 0002 0005"), "0000019000");
    assert_eq!(c.tx("01 0404 0001 0004"), "0073656e736f72739000");
    assert_eq!(c.tx("01 0404 0001 0002"), "000000000a9000");
    assert_eq!(c.tx("01 0400 ffff 0066"), "0000019000");
    assert_eq!(c.tx("01 0405 0005 0000"), "00200000109000");
    assert_eq!(c.tx("01 0405 0005 0001"), "00139000");
    assert_eq!(c.tx("01 0405 0005 0002"), "00019000");
    assert_eq!(c.tx("01 0405 0005 0006"), "0000019000");
    assert_eq!(c.tx("01 0405 0005 0008"), "0074656d703a439000");
    assert_eq!(c.tx("01 0405 0006 0001"), "00e29000");
    // Values: the target's float and the in-device initial value [1, 2].
    assert_eq!(c.tx("01 0405 0005 0004"), "0041bc00009000");
    assert_eq!(c.tx("01 0405 0006 0004"), "00000100029000");
    // The bundle as TLV (vectors.txt §A layout).
    assert_eq!(
        c.tx("01 0404 0001 0001"),
        "0088010cc40541bc0000c406000100029000"
    );
}

#[test]
fn anonymous_reads_the_bundle_through_its_anonymous_entry_only() {
    let mut c = Configured::new();
    assert_eq!(
        c.tx("01 0404 0001 0001"),
        "0088010cc40541bc0000c406000100029000"
    );
    assert_eq!(c.tx("01 0405 0005 0004"), "0041bc00009000");
    // Read only: writing needs the write right.
    assert_eq!(c.tx("03 0405 0005 0004 42000000"), "819000");
    // Revoke the anonymous entry (41 00 00) as admin: anonymous is refused.
    c.login("admin", "admin");
    assert_eq!(c.tx("03 0404 0001 0000 41 00 00"), "009000");
    assert_eq!(c.tx("02 0400 ffff 0001"), "009000");
    assert_eq!(c.tx("01 0404 0001 0001"), "819000");
    assert_eq!(c.tx("01 0405 0005 0004"), "819000");
    // user1 keeps its own entry.
    c.login("user1", "pwd");
    assert_eq!(
        c.tx("01 0404 0001 0001"),
        "0088010cc40541bc0000c406000100029000"
    );
}

#[test]
fn users_write_only_where_their_acl_says() {
    let mut c = Configured::new();
    // bob (alias of user1) has user1's rights: read+write on bundle 1.
    c.login("bob", "b");
    assert_eq!(c.tx("03 0405 0006 0004 0007 0008"), "009000");
    assert_eq!(c.tx("01 0405 0006 0004"), "00000700089000");
    assert_eq!(c.tx("02 0405 0005 0005 42280000"), "009000");
    let mut value = [0u8; 4];
    c.h.device
        .target_mut()
        .0
        .read(0x2000_0010, &mut value)
        .unwrap();
    assert_eq!(value, [0x42, 0x28, 0, 0], "the write reached the target");
    // Wrong size for a UINT16[2]: not acceptable, nothing written.
    assert_eq!(c.tx("03 0405 0006 0004 0001"), "869000");
    // Configuration stays admin-only.
    assert_eq!(c.tx("03 0405 0006 0002 03"), "819000");
    assert_eq!(c.tx("03 0404 0001 0000 41 02 03"), "819000");
    // Rights record of the current profile on a variable: 41 02 03 (bob, read+write).
    assert_eq!(c.tx("01 0405 0006 0003"), "004102039000");
}

#[test]
fn read_profile_returns_exactly_what_the_profile_may_read() {
    let mut c = Configured::new();
    // Admin: a variable outside any bundle is visible to admin only.
    c.login("admin", "admin");
    assert_eq!(c.tx("02 0405 0007 ffff"), "009000");
    // An in-device UINT8 (0xA1), never written: reads as zero.
    assert_eq!(c.tx("03 0405 0007 0001 a1"), "009000");
    assert_eq!(
        c.tx("01 0405 ffff 0004"),
        "0088000fc40541bc0000c40600010002c107009000"
    );
    assert_eq!(c.tx("02 0400 ffff 0001"), "009000");
    // Anonymous: bundle 1 through its anonymous entry, not variable 7.
    assert_eq!(
        c.tx("01 0405 ffff 0004"),
        "0088000cc40541bc0000c406000100029000"
    );
    // bob sees the same through user1's entry; a profile without entries only what
    // anonymous may read.
    c.login("bob", "b");
    assert_eq!(
        c.tx("01 0405 ffff 0004"),
        "0088000cc40541bc0000c406000100029000"
    );
    c.login("admin", "admin");
    assert_eq!(c.tx("03 0404 0001 0000 41 00 00"), "009000");
    c.login("bob", "b");
    assert_eq!(
        c.tx("01 0405 ffff 0004"),
        "0088000cc40541bc0000c406000100029000"
    );
    assert_eq!(c.tx("02 0400 ffff 0001"), "009000");
    assert_eq!(c.tx("01 0405 ffff 0004"), "008000".to_owned() + "9000");
}

#[test]
fn acl_records_are_checked() {
    let mut c = Configured::new();
    c.login("admin", "admin");
    for bad in [
        "",
        "41",
        "41 01",
        "41 01 04",
        "c1 01 03",
        "41 01 03 00",
        "62 00 01 03",
    ] {
        assert_eq!(
            c.tx(&format!("03 0404 0001 0000 {bad}")),
            "869000",
            "record {bad:?}"
        );
    }
    // The correct 2-byte-id form is accepted too.
    assert_eq!(c.tx("03 0404 0001 0000 61 01 2c 01"), "009000");
    // Unknown bundle and variable instances.
    assert_eq!(c.tx("01 0404 0009 0004"), "849000");
    assert_eq!(c.tx("01 0405 0009 0004"), "849000");
    // A variable cannot join a bundle that does not exist.
    assert_eq!(c.tx("03 0405 0005 0006 0009"), "869000");
}

#[test]
fn deleting_instances() {
    let mut c = Configured::new();
    c.login("admin", "admin");
    assert_eq!(c.tx("04 0405 0006 ffff"), "009000");
    assert_eq!(c.tx("01 0405 0006 0004"), "849000");
    assert_eq!(c.tx("04 0404 0001 ffff"), "009000");
    // Variable 5 lost its bundle.
    assert_eq!(c.tx("01 0405 0005 0006"), "00ffff9000");
    assert_eq!(c.tx("04 0401 0002 ffff"), "009000");
    assert_eq!(c.tx("01 0401 0002 0000"), "849000");
    // Built-in profiles cannot go.
    assert_eq!(c.tx("04 0401 ffff ffff"), "869000");
}

#[test]
fn side_handlers_use_their_own_profile_and_leave_the_session_alone() {
    let mut c = Configured::new();
    // The owner of the session is logged in as admin.
    c.login("admin", "admin");
    let side = Channel::new(9, ChannelKind::Side);
    let mut out = [0u8; 256];
    // Profile 1 may read bundle 1 but not log anybody out or in.
    let read = hex(&apdu("01 0404 0001 0001"));
    let n =
        c.h.device
            .handle_side(side, 1, &read, c.h.now, &mut out)
            .len;
    assert_eq!(to_hex(&out[..n]), "0088010cc40541bc0000c406000100029000");
    let n =
        c.h.device
            .handle_side(side, 1, &hex(LOGOUT), c.h.now, &mut out)
            .len;
    assert_eq!(to_hex(&out[..n]), "819000");
    let n =
        c.h.device
            .handle_side(
                side,
                0,
                &hex(&apdu("03 0405 0006 0004 00000000")),
                c.h.now,
                &mut out,
            )
            .len;
    assert_eq!(to_hex(&out[..n]), "819000");
    // The session is still admin's, on its own channel.
    assert_eq!(c.h.tx(GET_GROUP), "00ffff9000");
    assert_eq!(c.h.device.session().owner().map(|o| o.id), Some(WS1.id));
}

#[test]
fn nfc_takes_the_session_over_only_when_configured() {
    let mut c = Configured::new();
    c.login("admin", "admin");
    let nfc = Channel::new(5, ChannelKind::Nfc);
    let group = hex(GET_GROUP);
    assert_eq!(c.h.send_on(nfc, &group), hex("a89000"));
    // PUT /1024//24 = NFC_PRIORITY (0).
    assert_eq!(c.tx("03 0400 ffff 0018 00"), "009000");
    assert_eq!(
        c.h.send_on(nfc, &group),
        hex("0000009000"),
        "NFC owns a new anonymous session"
    );
    assert_eq!(c.h.tx(GET_GROUP), "a89000");
}

#[test]
fn factory_default_has_no_bundle_or_variable() {
    let config = Config::default();
    assert!(config.bundles.is_empty() && config.variables.is_empty());
}

/// A store keeping the last saved configuration in memory, or failing on demand.
#[derive(Default)]
struct MemStore {
    saved: Option<Config>,
    saves: usize,
    fail: bool,
}

impl lwm2m_core::storage::ConfigStore for MemStore {
    fn load(&mut self) -> Result<lwm2m_core::storage::Loaded, lwm2m_core::storage::StoreError> {
        Ok(self.saved.clone().map_or(
            lwm2m_core::storage::Loaded::Blank,
            lwm2m_core::storage::Loaded::Config,
        ))
    }

    fn save(&mut self, config: &Config) -> Result<(), lwm2m_core::storage::StoreError> {
        if self.fail {
            return Err(lwm2m_core::storage::StoreErrorKind::Flash.into());
        }
        self.saves += 1;
        self.saved = Some(config.clone());
        Ok(())
    }
}

fn device_with_store(config: Config, store: MemStore) -> Harness<NoTarget, MemStore> {
    Harness::from_device(
        lwm2m_core::Device::new(
            lwm2m_objects::standard_objects(device_info(), lwm2m_objects::NoHooks),
            config,
            Config::reset,
            LIMITS,
        )
        .with_store(store),
    )
}

#[test]
fn the_final_config_version_saves_and_a_restart_loads_it() {
    let mut h = device_with_store(Config::default(), MemStore::default());
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    // Configuration in progress: nothing saved yet.
    assert_eq!(h.tx(&apdu(CONFIGURATOR_FRAMES[0])), "009000");
    for frame in &CONFIGURATOR_FRAMES[1..CONFIGURATOR_FRAMES.len() - 1] {
        assert_eq!(h.tx(&apdu(frame)), "009000", "{frame}");
    }
    assert_eq!(h.device.store().saves, 0);
    assert_eq!(
        h.tx(&apdu(CONFIGURATOR_FRAMES[CONFIGURATOR_FRAMES.len() - 1])),
        "009000"
    );
    assert_eq!(h.device.store().saves, 1);
    let saved = h.device.store().saved.clone().unwrap();
    assert_eq!(&saved, h.device.config());
    // "Reboot": a new device booting from what the store holds.
    let (_, mut store) = h.device.into_parts();
    let loaded = lwm2m_core::storage::ConfigStore::load(&mut store)
        .unwrap()
        .config()
        .unwrap();
    let mut h = device_with_store(loaded, store);
    // The passwords written by the configurator are in force.
    assert_eq!(
        h.tx(&apdu(&format!(
            "02 0400 ffff 0000 {}",
            to_hex(b"user1\0\0\0\0\0\0\0\0\0\0\0pwd\0\0\0\0\0\0\0\0\0\0\0\0\0")
        ))),
        "009000"
    );
    assert_eq!(h.tx(&apdu("01 0400 ffff 0009")), "0044656d6f9000");
    assert_eq!(h.tx(LOGOUT), "009000");
    // The in-device value and the rights survived: anonymous reads variable 6.
    assert_eq!(h.tx(&apdu("01 0405 0006 0004")), "00000100029000");
    assert_eq!(h.tx(&apdu("03 0405 0006 0004 00000000")), "819000");
}

#[test]
fn a_failed_save_answers_nvm_error() {
    let store = MemStore {
        fail: true,
        ..MemStore::default()
    };
    let mut h = device_with_store(Config::default(), store);
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    assert_eq!(h.tx(&apdu("02 0400 ffff 000a")), "a49000");
    assert_eq!(h.tx(&apdu("03 0400 ffff 000a 01020003")), "a49000");
    // Factory reset needs the save too.
    assert_eq!(h.tx("a2da000007020003ffff0005"), "a49000");
}

#[test]
fn factory_reset_saves_the_default() {
    let mut h = device_with_store(Config::default(), MemStore::default());
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    assert_eq!(h.tx(&apdu("03 0400 ffff 0009 41 42")), "009000");
    assert_eq!(h.tx("a2da000007020003ffff0005"), "009000");
    assert_eq!(h.device.store().saved.as_ref(), Some(&Config::default()));
    assert_eq!(h.device.config(), &Config::default());
}

/// Found by the `session` fuzz target once saves became operations: a user with the
/// administrator's rights through its alias resets the device; the reset removes the
/// alias, and the request, taken up again after its save, must not be checked again under
/// the configuration it just replaced (it answered `81` after resetting and saving).
#[test]
fn a_factory_reset_by_an_alias_of_the_administrator_completes() {
    let mut c = Configured::new();
    c.login("admin", "admin");
    // bob (profile 2) gets the administrator's rights.
    assert_eq!(c.tx("03 0401 0002 0005 ffff"), "009000");
    c.login("bob", "b");
    assert_eq!(
        c.tx("01 0400 ffff 0002"),
        "00ffff9000",
        "bob's rights are admin's"
    );
    assert_eq!(c.tx("02 0003 ffff 0005"), "009000");
    assert_eq!(c.h.last.effect, Some(lwm2m_core::Effect::FactoryReset));
    assert_eq!(c.h.device.config(), &Config::default());
}

/// Builds a device of `objects` over `config` and deletes profile 5 in it (`DELETE
/// /1025/5/65535` from a side handler running as the administrator), which succeeds.
fn delete_profile_5<O: lwm2m_core::object::ObjectSet>(
    objects: O,
    config: Config,
) -> lwm2m_core::Device<O> {
    use lwm2m_core::{Device, FrameLimits, Instant};
    let limits = FrameLimits {
        max_request: 256,
        max_response: 256,
    };
    let mut device = Device::new(objects, config, Config::reset, limits);
    let delete = [
        0xA2, 0xDA, 0, 0, 7, 0x04, 0x04, 0x01, 0x00, 0x05, 0xFF, 0xFF,
    ];
    let mut out = [0u8; 256];
    let side = Channel::new(9, ChannelKind::WebSocket);
    let outcome = device.handle_side(side, 0xFFFF, &delete, Instant::ZERO, &mut out);
    assert_eq!(&out[..outcome.len], &[0x00, 0x90, 0x00]);
    assert!(device.config().profile(5).is_none());
    device
}

/// Deleting a profile forgets the settings that named it and nothing else: a value no
/// setting line serves stays (here the object set has no object 1024, whose
/// `config_loaded` would have forgotten it at load).
#[test]
fn deleting_a_profile_drops_only_the_references_to_it() {
    use lwm2m_core::config::Profile;
    use lwm2m_objects::ProfileObject;

    let mut config = Config::default();
    config.profiles.push(Profile::new(5, b"five")).unwrap();
    // A value no setting line serves (another build's, say).
    config.settings.set(1024, 200, b"kept").unwrap();
    let device = delete_profile_5((ProfileObject::new(),), config);
    assert_eq!(
        device.config().settings.get(1024, 200),
        Some(&b"kept"[..]),
        "a value that named no profile was dropped"
    );
}

/// Deleting a profile revokes every ACL entry naming it, even from a configuration a
/// firmware built with two for it in one ACL (`Config::validate` refuses that in an
/// image, but `Device::new` takes a configuration as given): none of its rights pass to a
/// profile created later with the same id.
#[test]
fn deleting_a_profile_revokes_every_acl_entry_naming_it() {
    use lwm2m_core::config::{AclEntry, Bundle, Profile, Rights};
    use lwm2m_objects::{BundleObject, ProfileObject};

    let mut config = Config::default();
    config.profiles.push(Profile::new(5, b"five")).unwrap();
    let mut bundle = Bundle::new(1);
    for rights in [Rights::READ, Rights::ALL] {
        bundle.acl.push(AclEntry { profile: 5, rights }).unwrap();
    }
    config.bundles.push(bundle).unwrap();
    assert!(config.validate().is_err());
    let device = delete_profile_5((ProfileObject::new(), BundleObject::new()), config);
    let acl = &device.config().bundle(1).unwrap().acl;
    assert!(
        acl.iter().all(|e| e.profile != 5),
        "the deleted profile keeps {acl:?}"
    );
}

/// The device of the tests, built at compile time (`Device::unbooted` is `const`):
/// what a board puts into a static.
const UNBOOTED: lwm2m_core::Device<
    lwm2m_objects::StandardObjects<lwm2m_objects::NoHooks>,
    NoTarget,
    MemStore,
> = lwm2m_core::Device::unbooted(
    lwm2m_objects::standard_objects(
        lwm2m_objects::DeviceInfo {
            manufacturer: "IoTize",
            flavor: "test",
            serial: heapless::String::new(),
            firmware_version: "1.99.0",
        },
        lwm2m_objects::NoHooks,
    ),
    NoTarget,
    MemStore {
        saved: None,
        saves: 0,
        fail: false,
    },
    Config::reset,
    LIMITS,
);

/// The configurator's frames, run as admin on `h`: its configuration, saved.
fn configure(h: &mut Harness<NoTarget, MemStore>) -> Config {
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    for frame in CONFIGURATOR_FRAMES {
        assert_eq!(h.tx(&apdu(frame)), "009000", "{frame}");
    }
    assert_eq!(h.device.store().saves, 1);
    h.device.store().saved.clone().unwrap()
}

#[test]
fn an_unbooted_device_lets_no_one_log_in_until_it_boots_with_the_factory_configuration() {
    let mut h = Harness::from_device(UNBOOTED);
    // No profile at all: no login, and only what anyone may read.
    assert_eq!(h.tx(LOGIN_ADMIN), "819000");
    assert_eq!(h.tx("a2ca000007010003ffff0002"), "009000");
    assert_eq!(h.device.boot(), Ok(lwm2m_core::storage::LoadState::Blank));
    assert_eq!(h.device.config(), &Config::default());
    h.device.objects_mut().0.info_mut().serial = heapless::String::try_from("SN1").unwrap();
    assert_eq!(
        h.tx("a2ca000007010003ffff0002"),
        format!("00{}9000", to_hex(b"SN1"))
    );
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
}

#[test]
fn booting_again_in_place_ends_the_session_and_loads_the_saved_configuration() {
    let mut h = Harness::from_device(UNBOOTED);
    h.device.boot().unwrap();
    let saved = configure(&mut h);
    // Changed after the save: a reboot forgets it.
    assert_eq!(h.tx("a2da000008030400ffff00220a"), "009000");
    assert_ne!(h.device.config(), &saved);
    assert_eq!(h.device.session().user(), lwm2m_core::config::ADMIN);
    assert_eq!(h.device.boot(), Ok(lwm2m_core::storage::LoadState::Config));
    assert_eq!(h.device.config(), &saved);
    assert_eq!(h.device.session().owner(), None);
    assert_eq!(h.device.session().user(), lwm2m_core::config::ANONYMOUS);
    // The configurator's passwords are in force.
    assert_eq!(
        h.tx(&apdu(&format!(
            "02 0400 ffff 0000 {}",
            to_hex(b"user1\0\0\0\0\0\0\0\0\0\0\0pwd\0\0\0\0\0\0\0\0\0\0\0\0\0")
        ))),
        "009000"
    );
}

#[test]
fn a_reboot_in_place_keeps_the_login_lock_out() {
    let mut h = Harness::from_device(UNBOOTED);
    h.device.boot().unwrap();
    for _ in 0..3 {
        assert_eq!(h.tx(LOGIN_ADMIN_WRONG), "819000");
    }
    h.device.boot().unwrap();
    assert_eq!(h.tx(LOGIN_ADMIN), "a39000");
    h.advance_secs(60);
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
}

/// A factory configuration of a firmware's own: a 5 s inactivity period.
fn short_inactivity(config: &mut Config) {
    config.reset();
    config.inactivity_secs = 5;
}

#[test]
fn booting_without_a_stored_configuration_gives_the_device_factory_one() {
    let short = || {
        let mut config = Config::default();
        short_inactivity(&mut config);
        config
    };
    // A blank store.
    let mut device = lwm2m_core::Device::unbooted(
        lwm2m_objects::standard_objects(device_info(), lwm2m_objects::NoHooks),
        NoTarget,
        MemStore::default(),
        short_inactivity,
        LIMITS,
    );
    assert_eq!(device.boot(), Ok(lwm2m_core::storage::LoadState::Blank));
    assert_eq!(device.config(), &short());
    // No store at all (`None`): an error to report, and the factory configuration.
    let mut device = lwm2m_core::Device::unbooted(
        lwm2m_objects::standard_objects(device_info(), lwm2m_objects::NoHooks),
        NoTarget,
        None::<MemStore>,
        short_inactivity,
        LIMITS,
    );
    let failed = device.boot().unwrap_err();
    assert_eq!(failed.kind(), lwm2m_core::storage::StoreErrorKind::Flash);
    assert_eq!(device.config(), &short());
    // A save fails too, and says so.
    let mut h = Harness::from_device(device);
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    let mut failed = h.tx("a2da000007020400ffff0005");
    failed.truncate(2);
    assert_ne!(failed, "00");
    // The store put in place: booting again loads from it.
    *h.device.store_mut() = Some(MemStore {
        saved: Some(Config::default()),
        ..MemStore::default()
    });
    assert_eq!(h.device.boot(), Ok(lwm2m_core::storage::LoadState::Config));
    assert_eq!(h.device.config(), &Config::default());
}

#[test]
fn boot_from_loads_from_a_store_kept_beside_the_device() {
    let mut h = Harness::from_device(UNBOOTED);
    h.device.boot().unwrap();
    let saved = configure(&mut h);
    let (_, mut store) = h.device.into_parts();
    let mut device = lwm2m_core::Device::unbooted(
        lwm2m_objects::standard_objects(device_info(), lwm2m_objects::NoHooks),
        NoTarget,
        lwm2m_core::storage::NoStore,
        Config::reset,
        LIMITS,
    );
    assert_eq!(
        device.boot_from(&mut store),
        Ok(lwm2m_core::storage::LoadState::Config)
    );
    assert_eq!(device.config(), &saved);
}

#[test]
fn writing_a_variable_s_layout_again_keeps_its_value() {
    let mut c = Configured::new();
    c.login("admin", "admin");
    assert_eq!(c.tx("01 0405 0006 0004"), "00000100029000");
    // The same type and the same count, as a client writing back what it read.
    assert_eq!(c.tx("03 0405 0006 0001 e2"), "009000");
    assert_eq!(c.tx("03 0405 0006 0002 02"), "009000");
    assert_eq!(c.tx("01 0405 0006 0004"), "00000100029000", "value kept");
    // Another count: the value no longer fits the layout and is dropped.
    assert_eq!(c.tx("03 0405 0006 0002 01"), "009000");
    assert_eq!(c.tx("01 0405 0006 0004"), "0000009000", "value dropped");
}
