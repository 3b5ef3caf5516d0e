//! The objects of an IoTize Tap lwM2M device, for [`lwm2m_core`]: one module per object,
//! each implementing [`lwm2m_core::Object`] from a declarative resource table.
//!
//! | object | module | this release |
//! |---|---|---|
//! | 3 Device | [`device`] | every resource of the client |
//! | 1024 Interface | [`interface`] | login, session, options, frame sizes, keep-alive, multi-request; the rest answers `A1` |
//! | 1025 Profile | [`profile`] | name, password, session lifetime, alias, create, delete |
//! | 1027 Target | [`target`] | target configuration values; access to the target answers `A1` |
//! | 1028 Bundle | [`bundle`] | ACL entries, values as TLV, data-log period, name, create, delete |
//! | 1029 Variable | [`variable`] | description, rights, values (target or in-device), "read everything", create, delete |
#![no_std]
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod bundle;
pub mod codec;
pub mod device;
pub mod interface;
pub mod profile;
pub mod settings;
pub mod target;
pub mod variable;

pub use bundle::BundleObject;
pub use device::{DeviceHooks, DeviceInfo, DeviceObject, NoHooks};
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
);

/// The objects of this release for a device described by `info`.
pub fn standard_objects<H: DeviceHooks>(info: DeviceInfo, hooks: H) -> StandardObjects<H> {
    (
        DeviceObject::new(info, hooks),
        InterfaceObject::new(),
        ProfileObject::new(),
        TargetObject::new(),
        BundleObject::new(),
        VariableObject::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::settings::{group_room, Group};
    use super::*;

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
