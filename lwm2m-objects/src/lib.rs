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
