//! Resources an object declares but this build provides no method of (the client's
//! resources this release does not implement, settings of a group the build leaves out),
//! kept out of the resource table in two bytes each instead of a six-byte
//! [`ResourceDef`]: the object answers the access of their methods through
//! [`Object::unlisted`], and a request on one gets what its table entry would give (`85`
//! for a method it does not declare, `81` to a subject without the right, `A1`
//! otherwise).
//!
//! An object declares its resources once, in one table ([`listed`] and [`unlisted`]
//! split it when the crate is built); the entries that do not fit the compact form stay
//! in the table.
//!
//! [`Object::unlisted`]: lwm2m_core::object::Object::unlisted

use lwm2m_core::acl::Access;
use lwm2m_core::object::{InstanceRule, ResourceDef};
use lwm2m_core::wire::{Method, ABSENT};

/// A resource of a single-instance object (id below 256), no method of which this build
/// provides, with the access of each method: `Never`, `Anyone`, `User` or `Admin`, two
/// bits each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unprovided {
    id: u8,
    access: u8,
}

/// Every method, in the order of their two bits of [`Unprovided::access`] (method byte
/// less one).
const METHODS: [Method; 4] = [Method::Get, Method::Post, Method::Put, Method::Delete];

impl Unprovided {
    /// `def` in the compact form, if it is such a resource.
    pub const fn of(def: &ResourceDef) -> Option<Unprovided> {
        if def.id > u8::MAX as u16 {
            return None;
        }
        let mut access = 0;
        let mut m = 0;
        while m < METHODS.len() {
            let code = match def.access(METHODS[m]) {
                Access::Never => 0,
                Access::Anyone => 1,
                Access::User => 2,
                Access::Admin => 3,
                _ => return None,
            };
            access |= code << (2 * m);
            m += 1;
        }
        let compact = Unprovided {
            id: def.id as u8,
            access,
        };
        match same(&compact.def(), def) {
            true => Some(compact),
            false => None,
        }
    }

    /// The table entry it stands for.
    pub const fn def(self) -> ResourceDef {
        ResourceDef::single(self.id as u16)
            .get(self.access(Method::Get))
            .put(self.access(Method::Put))
            .post(self.access(Method::Post))
            .delete(self.access(Method::Delete))
            .not_implemented()
    }

    /// The access of `method`.
    pub const fn access(self, method: Method) -> Access {
        match (self.access >> (2 * (method as u8 - 1))) & 3 {
            0 => Access::Never,
            1 => Access::Anyone,
            2 => Access::User,
            _ => Access::Admin,
        }
    }
}

/// Whether `a` and `b` answer every request alike: id, instance rule, envelope, answer
/// size, and each method's access and whether it is provided.
const fn same(a: &ResourceDef, b: &ResourceDef) -> bool {
    let mut m = 0;
    while m < METHODS.len() {
        let method = METHODS[m];
        if a.access(method) as u8 != b.access(method) as u8
            || a.implements(method) != b.implements(method)
        {
            return false;
        }
        m += 1;
    }
    a.id == b.id
        && a.instance_rule() as u8 == b.instance_rule() as u8
        && a.wraps().is_some() == b.wraps().is_some()
        && a.answer() == b.answer()
}

/// Whether entry `i` of `declared` leaves the table: it has the compact form, and no
/// other entry has its id (the table's first match would come before it).
const fn leaves(declared: &[ResourceDef], i: usize) -> bool {
    if Unprovided::of(&declared[i]).is_none()
        || !matches!(declared[i].instance_rule(), InstanceRule::Single)
    {
        return false;
    }
    let mut j = 0;
    while j < declared.len() {
        if j != i && declared[j].id == declared[i].id {
            return false;
        }
        j += 1;
    }
    true
}

/// How many entries of `declared` leave the table ([`unlisted`]).
pub const fn count(declared: &[ResourceDef]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < declared.len() {
        if leaves(declared, i) {
            n += 1;
        }
        i += 1;
    }
    n
}

/// The entries of `declared` that stay in the resource table, in order (`N` is their
/// number, `declared.len() - count(declared)`; anything else fails the build).
pub const fn listed<const N: usize>(declared: &[ResourceDef]) -> [ResourceDef; N] {
    assert!(
        declared.len() - count(declared) == N,
        "N is the number of listed entries"
    );
    let mut out = [ResourceDef::single(0); N];
    let mut n = 0;
    let mut i = 0;
    while i < declared.len() {
        if !leaves(declared, i) {
            out[n] = declared[i];
            n += 1;
        }
        i += 1;
    }
    out
}

/// The entries of `declared` that leave the table, in the compact form (`M` is their
/// number, [`count`]; anything else fails the build).
pub const fn unlisted<const M: usize>(declared: &[ResourceDef]) -> [Unprovided; M] {
    assert!(count(declared) == M, "M is the number of unlisted entries");
    let mut out = [Unprovided { id: 0, access: 0 }; M];
    let mut n = 0;
    let mut i = 0;
    while i < declared.len() {
        if leaves(declared, i) {
            out[n] = match Unprovided::of(&declared[i]) {
                Some(compact) => compact,
                None => panic!("an entry that leaves the table has the compact form"),
            };
            n += 1;
        }
        i += 1;
    }
    out
}

/// The access of `method` on the resource of `table` for `resource` on `instance`, if
/// it has one ([`Object::unlisted`]).
///
/// [`Object::unlisted`]: lwm2m_core::object::Object::unlisted
pub fn access(
    table: &[Unprovided],
    resource: u16,
    instance: u16,
    method: Method,
) -> Option<Access> {
    // Resources of a single-instance object.
    if instance != ABSENT && instance != 0 {
        return None;
    }
    let compact = table
        .iter()
        .find(|compact| u16::from(compact.id) == resource)?;
    Some(compact.access(method))
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use lwm2m_core::acl::Access::{Admin, Anyone, Never, Read, User};

    #[test]
    fn an_unprovided_resource_takes_two_bytes_and_stands_for_its_entry() {
        assert_eq!(core::mem::size_of::<Unprovided>(), 2);
        let def = ResourceDef::single(105)
            .get(User)
            .put(Admin)
            .post(Anyone)
            .not_implemented();
        let compact = Unprovided::of(&def).expect("compact");
        assert_eq!(compact.def(), def);
        let table = [compact];
        for (method, declared) in [
            (Method::Get, User),
            (Method::Put, Admin),
            (Method::Post, Anyone),
            (Method::Delete, Never),
        ] {
            assert_eq!(access(&table, 105, ABSENT, method), Some(declared));
            assert_eq!(access(&table, 105, 0, method), Some(declared));
        }
        assert_eq!(access(&table, 105, 1, Method::Get), None);
        assert_eq!(access(&table, 104, ABSENT, Method::Get), None);
    }

    #[test]
    fn what_does_not_fit_the_compact_form_stays_in_the_table() {
        const DECLARED: &[ResourceDef] = &[
            ResourceDef::single(1).get(Anyone).not_implemented(),
            // Provided.
            ResourceDef::single(2).get(Anyone),
            // Partly provided.
            ResourceDef::single(3)
                .get(Anyone)
                .put(Admin)
                .not_implemented_for(Method::Put),
            // A bundle right, an id above 255, another instance rule.
            ResourceDef::single(4).get(Read).not_implemented(),
            ResourceDef::single(256).get(Anyone).not_implemented(),
            ResourceDef::existing(5).get(Admin).not_implemented(),
            // Another entry with its id.
            ResourceDef::single(6).get(Admin).not_implemented(),
            ResourceDef::absent(6).get(Admin),
            ResourceDef::single(7).post(Admin).not_implemented(),
        ];
        const LISTED: [ResourceDef; 7] = listed::<7>(DECLARED);
        const UNLISTED: [Unprovided; 2] = unlisted::<2>(DECLARED);
        assert_eq!(count(DECLARED), 2);
        let ids: std::vec::Vec<u16> = LISTED.iter().map(|def| def.id).collect();
        assert_eq!(ids, [2, 3, 4, 256, 5, 6, 6]);
        assert_eq!(
            UNLISTED.map(|compact| compact.def()),
            [DECLARED[0], DECLARED[8]]
        );
    }
}
