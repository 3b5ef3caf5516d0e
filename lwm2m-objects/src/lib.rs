//! The objects of an IoTize Tap lwM2M device, for [`lwm2m_core`]: one module per object,
//! each implementing [`lwm2m_core::Object`] from a declarative resource table.
//!
//! | object | module | this release |
//! |---|---|---|
//! | 3 Device | [`device`] | every resource of the client |
//! | 5 Firmware | [`firmware`] | update state, the CRC check of the running image (the update itself: single packets of 1024) |
//! | 1024 Interface | [`interface`] | login (plain, hashed, SCRAM), session, options, frame sizes, keep-alive, multi-request, configuration version and save, about 50 configuration values in settings groups, the blobs (certificates, JVM code), the encrypted session (feature `crypto`), single packets (feature `packets`), the board's facts (UID, host protocols, BLE address, hostname, product key), the local time; the rest answers `A1` |
//! | 1025 Profile | [`profile`] | name, password, session lifetime, alias, create, delete |
//! | 1027 Target | [`target`] | target configuration values; connect, disconnect, reset, Modbus and memory access, a raw serial line, Vcc, through the board's target multiplexer |
//! | 1028 Bundle | [`bundle`] | ACL entries, values as TLV, data-log period, name, create, delete |
//! | 1029 Variable | [`variable`] | description, rights, values (target or in-device), "read everything", create, delete |
#![no_std]
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod bundle;
pub mod codec;
pub mod device;
pub mod firmware;
pub mod interface;
pub mod profile;
pub mod settings;
pub mod target;
pub mod unlisted;
pub mod variable;

pub use bundle::BundleObject;
pub use device::{DeviceHooks, DeviceInfo, DeviceObject, NoHooks};
pub use firmware::FirmwareObject;
pub use interface::InterfaceObject;
pub use profile::ProfileObject;
pub use target::TargetObject;
pub use variable::VariableObject;

/// The settings tables of the objects of this crate (objects 1024 and 1027).
pub const SETTINGS_TABLES: [&[settings::SettingDef]; 2] = [interface::SETTINGS, target::SETTINGS];

/// The room the settings this build carries need at their largest: what
/// `LWM2M_SETTINGS_BYTES` must hold at least (checked when this crate is built), so a
/// write that fits its declared size never answers `A7`.
pub const SETTINGS_ROOM: usize = settings::room(&SETTINGS_TABLES);

const _: () = assert!(
    SETTINGS_ROOM <= lwm2m_core::config::SETTINGS_BYTES,
    "the settings groups of this build need more room than LWM2M_SETTINGS_BYTES gives \
     (see lwm2m_objects::SETTINGS_ROOM)"
);

/// The objects of this release, in the order the dispatcher searches them.
pub type StandardObjects<H> = (
    DeviceObject<H>,
    InterfaceObject,
    ProfileObject,
    TargetObject,
    BundleObject,
    VariableObject,
    FirmwareObject,
);

/// The objects of this release for a device described by `info` (`const`: see
/// [`DeviceObject::new`]).
pub const fn standard_objects<H: DeviceHooks>(info: DeviceInfo, hooks: H) -> StandardObjects<H> {
    (
        DeviceObject::new(info, hooks),
        InterfaceObject::new(),
        ProfileObject::new(),
        TargetObject::new(),
        BundleObject::new(),
        VariableObject::new(),
        FirmwareObject::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::settings::{group_room, Group};
    use super::*;

    /// Regression (the bug this test caught): a setting of a group left out "takes no room", but nothing drops the
    /// values of such a group from a loaded image (one saved by a build that carried the
    /// group, before a firmware update left it out): `Config::decode` keeps them (the
    /// Wi-Fi key among them, unreachable since the resources answer A1, and saved again
    /// with every save), they take the room `SETTINGS_ROOM` sized for the carried groups,
    /// and a carried setting written at its declared size answers A7. Fails in the small
    /// preset without groups (`cargo xtask test`'s configuration:
    /// `LWM2M_PRESET=small cargo test -p lwm2m-objects --no-default-features --lib`).
    #[test]
    fn values_of_a_left_out_group_in_a_loaded_image_take_no_room() {
        extern crate std;
        use lwm2m_core::config::image::MAX_IMAGE_LEN;
        use lwm2m_core::config::{Config, SETTING_LEN};
        use std::vec;
        let objects = [(1024u16, interface::SETTINGS), (1027, target::SETTINGS)];
        // The image of a build carrying every group, its settings at their largest (as
        // many as this build's room holds).
        let mut saved = Config::default();
        for (object, table) in objects {
            for line in table.iter().filter(|line| !line.group.included()) {
                let len = line.kind.max_len().min(SETTING_LEN);
                let _ = saved.set_setting(object, line.def.id, &vec![b'k'; len]);
            }
        }
        let mut buf = vec![0u8; MAX_IMAGE_LEN];
        let n = saved.encode(&mut buf).unwrap();
        // What this build loads, handed to its objects as `Device::new` and
        // `Device::load_config` do.
        let mut loaded = Config::decode(&buf[..n]).expect("the image loads");
        let info = DeviceInfo {
            manufacturer: "IoTize",
            flavor: "test",
            serial: heapless::String::new(),
            firmware_version: "1.0",
        };
        lwm2m_core::ObjectSet::config_loaded(&mut standard_objects(info, NoHooks), &mut loaded);
        // Every setting this build carries, written at its declared size, fits.
        for (object, table) in objects {
            for line in table.iter().filter(|line| line.group.included()) {
                let len = line.kind.max_len().min(SETTING_LEN);
                assert!(
                    loaded
                        .set_setting(object, line.def.id, &vec![1; len])
                        .is_ok(),
                    "/{object}//{} ({len} bytes) answers A7: {} of {} bytes taken by \
                     values of groups left out",
                    line.def.id,
                    saved.settings.used(),
                    lwm2m_core::config::SETTINGS_BYTES
                );
            }
        }
    }

    #[test]
    fn the_run_time_lines_are_the_settings_the_build_carries() {
        extern crate std;
        use std::vec::Vec;
        for (table, lines) in [
            (interface::SETTINGS, interface::SETTING_LINES),
            (target::SETTINGS, target::SETTING_LINES),
        ] {
            let carried: Vec<_> = table
                .iter()
                .filter(|line| line.group.included())
                .map(|line| (line.def.id, line.kind))
                .collect();
            let run_time: Vec<_> = lines.iter().map(|line| (line.id, line.kind)).collect();
            assert_eq!(run_time, carried);
        }
    }

    #[test]
    fn the_room_of_a_build_is_that_of_the_groups_it_carries() {
        let carried: usize = Group::ALL
            .iter()
            .filter(|g| g.included())
            .map(|&g| group_room(&SETTINGS_TABLES, g))
            .sum();
        assert_eq!(SETTINGS_ROOM, carried);
        assert!(group_room(&SETTINGS_TABLES, Group::Core) > 0);
        assert!(group_room(&SETTINGS_TABLES, Group::Wifi) > 0);
        assert_eq!(
            SETTINGS_TABLES
                .iter()
                .flat_map(|t| t.iter())
                .filter(|line| !line.group.included())
                .filter(|line| line.def.implements(lwm2m_core::wire::Method::Get))
                .count(),
            0,
            "a setting of a group left out answers A1"
        );
    }
}
