//! The objects' declaration tables, for the bytes per declared resource that `cargo xtask
//! footprint` reports.
//!
//! [`DECLARATIONS`] gives, for each object of the firmware, the resources it declares
//! and where the tables the firmware keeps for it are: the resource table
//! `Object::resources` returns (`LISTED`, or `RESOURCES` for an object whose resources are
//! all listed), the resources `Object::unlisted` answers (`UNLISTED`, two bytes each) and
//! the run-time lines of its settings (`SETTING_LINES`, which hold the enum value sets
//! inside their `Kind`). The numbers are the compiler's (constants); the pointers are the
//! linker's, to the tables the objects' code uses: xtask reads them from the ELF, checks
//! that each table lies in the flash sections and that code refers to it there, and counts
//! its bytes. `DECLARATIONS` itself is report data only: its section is not loaded
//! (`declarations.x`), it takes neither flash nor RAM, and no code reads it.

use core::mem::size_of_val;

use lwm2m_core::object::ResourceDef;
use lwm2m_objects::settings::Setting;
use lwm2m_objects::unlisted::Unprovided;
use lwm2m_objects::{bundle, device, firmware, interface, profile, target, variable};
use lwm2m_objects::{
    BundleObject, DeviceObject, FirmwareObject, InterfaceObject, NoHooks, ProfileObject,
    StandardObjects, TargetObject, VariableObject,
};

/// Where a table is: its first byte and its size (`size_of_val`), as xtask reads it.
#[repr(C)]
pub struct Table {
    at: *const u8,
    bytes: usize,
}

/// One object's declarations: 32 bytes, eight little-endian words (xtask's
/// `parse_declarations`).
#[repr(C)]
pub struct Declared {
    /// The object id.
    object: u32,
    /// Resources declared, listed or unlisted: distinct resource ids (a multi-instance
    /// object's resource counts once, whatever its instances; one declared by two
    /// entries, `/1029//4` without and with an instance, counts once; the create and
    /// delete entry, resource 65535, counts as one).
    resources: u32,
    /// Its resource table, its unlisted resources, its setting lines.
    tables: [Table; 3],
}

const _: () = assert!(core::mem::size_of::<Declared>() == 32);

/// The declarations of every object of the firmware.
pub struct Declarations<const N: usize>([Declared; N]);

// SAFETY: the pointers are addresses of immutable `'static` tables, never dereferenced
// through this type.
unsafe impl<const N: usize> Sync for Declarations<N> {}

const fn table<T>(entries: &'static [T]) -> Table {
    Table {
        at: entries.as_ptr().cast(),
        bytes: size_of_val(entries),
    }
}

/// The id of entry `i` of `listed` followed by `unlisted`.
const fn id_at(listed: &[ResourceDef], unlisted: &[Unprovided], i: usize) -> u16 {
    if i < listed.len() {
        listed[i].id
    } else {
        unlisted[i - listed.len()].def().id
    }
}

/// Whether `id` is a resource of `listed` or `unlisted`.
const fn declares(listed: &[ResourceDef], unlisted: &[Unprovided], id: u16) -> bool {
    let mut i = 0;
    while i < listed.len() + unlisted.len() {
        if id_at(listed, unlisted, i) == id {
            return true;
        }
        i += 1;
    }
    false
}

/// The distinct resource ids of `listed` and `unlisted`.
const fn resources(listed: &[ResourceDef], unlisted: &[Unprovided]) -> u32 {
    let mut n = 0;
    let mut i = 0;
    while i < listed.len() + unlisted.len() {
        let id = id_at(listed, unlisted, i);
        let mut j = 0;
        while j < i && id_at(listed, unlisted, j) != id {
            j += 1;
        }
        if j == i {
            n += 1;
        }
        i += 1;
    }
    n
}

/// The declarations of object `object`: the table `Object::resources` returns,
/// `Object::unlisted`'s, the lines of its settings. The build fails if a setting line
/// is not a resource of the tables, or if the tables declare other resources than the
/// object's full table, `all` (its `RESOURCES`).
const fn declared(
    object: u16,
    all: &'static [ResourceDef],
    listed: &'static [ResourceDef],
    unlisted: &'static [Unprovided],
    settings: &'static [Setting],
) -> Declared {
    let n = resources(listed, unlisted);
    assert!(
        n == resources(all, &[]),
        "the listed and unlisted tables declare the resources of the full table"
    );
    let mut i = 0;
    while i < all.len() {
        assert!(declares(listed, unlisted, all[i].id));
        i += 1;
    }
    let mut s = 0;
    while s < settings.len() {
        assert!(
            declares(listed, unlisted, settings[s].id),
            "a setting is a declared resource"
        );
        s += 1;
    }
    Declared {
        object: object as u32,
        resources: n,
        tables: [table(listed), table(unlisted), table(settings)],
    }
}

/// The objects of [`DECLARATIONS`], in order.
type Objects = (
    DeviceObject<NoHooks>,
    InterfaceObject,
    ProfileObject,
    TargetObject,
    BundleObject,
    VariableObject,
    FirmwareObject,
);

/// The build fails when the firmware's objects ([`StandardObjects`]) are not [`Objects`]
/// (an object added: add it there, and its line to [`DECLARATIONS`]).
const _: fn(StandardObjects<NoHooks>) -> Objects = |objects| objects;

/// The declarations of the firmware's objects, for xtask (not loaded: see the module).
#[no_mangle]
#[used]
#[link_section = ".declarations"]
pub static DECLARATIONS: Declarations<7> = Declarations([
    declared(device::ID, device::RESOURCES, device::RESOURCES, &[], &[]),
    declared(
        interface::ID,
        interface::RESOURCES,
        interface::LISTED,
        interface::UNLISTED,
        interface::SETTING_LINES,
    ),
    declared(
        profile::ID,
        profile::RESOURCES,
        profile::RESOURCES,
        &[],
        &[],
    ),
    declared(
        target::ID,
        target::RESOURCES,
        target::LISTED,
        target::UNLISTED,
        target::SETTING_LINES,
    ),
    declared(bundle::ID, bundle::RESOURCES, bundle::RESOURCES, &[], &[]),
    declared(
        variable::ID,
        variable::RESOURCES,
        variable::RESOURCES,
        &[],
        &[],
    ),
    declared(
        firmware::ID,
        firmware::RESOURCES,
        firmware::RESOURCES,
        &[],
        &[],
    ),
]);
