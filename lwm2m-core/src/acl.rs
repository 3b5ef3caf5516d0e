//! Access-control layer: one function, [`check`], decides whether a subject may apply a
//! method to a resource, from the resource's declared [`Access`] (see
//! `object::ResourceDef`) and, for data, the ACL of the bundle that owns it. Rights are
//! checked before any object sees the request.
//!
//! Bundle rights ([`rights`]): the administrator (and supervisor) has every right; any
//! other profile has the rights its bundle ACL entry grants to the profile whose rights it
//! uses (its alias), plus whatever the entry of the anonymous profile grants to everybody.
//! Data in no bundle is the administrator's only.

use crate::config::{Config, Rights, ADMIN, ANONYMOUS, SUPERVISOR};
use crate::wire::ResultCode;

/// Who may use one method of one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Access {
    /// The resource does not support the method (`85`).
    Never,
    /// Everybody, anonymous included.
    Anyone,
    /// Any logged-in profile.
    User,
    /// The administrator (or supervisor) only.
    Admin,
    /// The profile whose id is the request's instance id, or the administrator
    /// (object 1025: a profile reads its own entry).
    SelfOrAdmin,
    /// The read right on the bundle that owns the instance.
    Read,
    /// The write right on the bundle that owns the instance.
    Write,
}

impl Access {
    /// The access whose discriminant is `bits` (a [`crate::object::ResourceDef`] keeps
    /// it on three bits); out of range reads as [`Access::Write`], never produced.
    pub(crate) const fn from_bits(bits: u16) -> Access {
        match bits {
            0 => Access::Never,
            1 => Access::Anyone,
            2 => Access::User,
            3 => Access::Admin,
            4 => Access::SelfOrAdmin,
            5 => Access::Read,
            _ => Access::Write,
        }
    }
}

/// On whose behalf, and how protected, a request runs: computed once when the engine
/// admits the request, and read by every access check of it and of its items. A login
/// or a logout inside a multi-request changes it for the items after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Security {
    /// The subject: the session's logged-in user, or the side handler's profile, with the
    /// profile whose rights it uses — as they were when the request was admitted, so what
    /// the request itself changes (a factory reset, an alias) does not change whose
    /// rights apply to the rest of it.
    pub subject: Subject,
    /// Where the request came from.
    pub origin: Origin,
}

/// Where a request came from ([`Security::origin`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Origin {
    /// The channel that owns the session, in clear.
    Session,
    /// A local side handler (script engine, Modbus slave), outside the session: it
    /// cannot log in, log out or end the session.
    Side,
    /// A command of a single packet (`/1024//80`, `/83`; decision 7), with the rights
    /// of the packet's sender; like a side handler, it cannot log in, log out or end
    /// the session.
    Packet,
}

/// The profile on whose behalf a request runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Subject {
    /// The logged-in profile (or the side handler's profile).
    pub user: u16,
    /// The profile whose rights apply (the user's alias).
    pub rights: u16,
}

impl Subject {
    /// The subject for profile `user` under `config`.
    pub fn new(config: &Config, user: u16) -> Subject {
        Subject {
            user,
            rights: config.rights_profile(user),
        }
    }

    /// The anonymous subject.
    pub const ANONYMOUS: Subject = Subject {
        user: ANONYMOUS,
        rights: ANONYMOUS,
    };

    /// Whether this subject has every right.
    pub const fn is_admin(&self) -> bool {
        matches!(self.rights, ADMIN | SUPERVISOR)
    }
}

/// The rights `subject` has on the data of bundle `bundle` (`None`: data in no bundle).
pub fn rights(config: &Config, subject: Subject, bundle: Option<u16>) -> Rights {
    if subject.is_admin() {
        return Rights::ALL;
    }
    match bundle.and_then(|id| config.bundle(id)) {
        Some(bundle) => bundle
            .granted(ANONYMOUS)
            .union(bundle.granted(subject.rights)),
        None => Rights::NONE,
    }
}

/// Decides whether `subject` may use a resource declared with `access` on `instance`,
/// whose data belongs to `bundle` (asked only for [`Access::Read`] and [`Access::Write`]).
/// `Never` is answered `85` by the dispatcher before this is asked.
pub fn check(
    config: &Config,
    access: Access,
    subject: Subject,
    instance: u16,
    bundle: impl FnOnce() -> Option<u16>,
) -> Result<(), ResultCode> {
    let allowed = match access {
        Access::Never => false,
        Access::Anyone => true,
        Access::User => subject.user != ANONYMOUS,
        Access::Admin => subject.is_admin(),
        Access::SelfOrAdmin => subject.is_admin() || subject.user == instance,
        Access::Read => rights(config, subject, bundle()).contains(Rights::READ),
        Access::Write => rights(config, subject, bundle()).contains(Rights::WRITE),
    };
    if allowed {
        Ok(())
    } else {
        Err(ResultCode::Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AclEntry, Bundle};

    fn chk(access: Access, subject: Subject, instance: u16) -> Result<(), ResultCode> {
        check(&Config::default(), access, subject, instance, || None)
    }

    const USER: Subject = Subject { user: 1, rights: 1 };
    const ADMIN_SUBJECT: Subject = Subject {
        user: ADMIN,
        rights: ADMIN,
    };

    #[test]
    fn anonymous_gets_only_public_resources() {
        assert!(chk(Access::Anyone, Subject::ANONYMOUS, 0).is_ok());
        for access in [Access::User, Access::Admin, Access::Never] {
            assert_eq!(
                chk(access, Subject::ANONYMOUS, 0),
                Err(ResultCode::Unauthorized)
            );
        }
        // Anonymous may read its own entry (instance 0 of 1025), nobody else's.
        assert!(chk(Access::SelfOrAdmin, Subject::ANONYMOUS, 0).is_ok());
        assert!(chk(Access::SelfOrAdmin, Subject::ANONYMOUS, 1).is_err());
    }

    #[test]
    fn users_reach_their_own_profile_only() {
        assert!(chk(Access::User, USER, 0).is_ok());
        assert!(chk(Access::SelfOrAdmin, USER, 1).is_ok());
        assert!(chk(Access::SelfOrAdmin, USER, 2).is_err());
        assert!(chk(Access::Admin, USER, 1).is_err());
    }

    #[test]
    fn admin_has_every_right_but_unsupported_methods() {
        for access in [
            Access::Anyone,
            Access::User,
            Access::Admin,
            Access::SelfOrAdmin,
        ] {
            assert!(chk(access, ADMIN_SUBJECT, 7).is_ok());
        }
        assert!(chk(Access::Never, ADMIN_SUBJECT, 7).is_err());
        let supervisor = Subject {
            user: SUPERVISOR,
            rights: SUPERVISOR,
        };
        assert!(chk(Access::Admin, supervisor, 0).is_ok());
        let user_of_admin = Subject {
            user: 5,
            rights: ADMIN,
        };
        assert!(chk(Access::Admin, user_of_admin, 0).is_ok());
    }

    fn config_with_bundle(entries: &[(u16, Rights)]) -> Config {
        let mut config = Config::default();
        let mut bundle = Bundle::new(7);
        for &(profile, rights) in entries {
            bundle.acl.push(AclEntry { profile, rights }).unwrap();
        }
        config.bundles.push(bundle).unwrap();
        config
    }

    #[test]
    fn bundle_rights_come_from_the_acl() {
        let config = config_with_bundle(&[(1, Rights::ALL)]);
        let read = |subject| check(&config, Access::Read, subject, 3, || Some(7));
        let write = |subject| check(&config, Access::Write, subject, 3, || Some(7));
        assert!(read(USER).is_ok() && write(USER).is_ok());
        assert_eq!(read(Subject::ANONYMOUS), Err(ResultCode::Unauthorized));
        assert_eq!(
            read(Subject { user: 2, rights: 2 }),
            Err(ResultCode::Unauthorized)
        );
        // A user of profile 1 (alias) has profile 1's rights.
        assert!(write(Subject { user: 2, rights: 1 }).is_ok());
        assert!(read(ADMIN_SUBJECT).is_ok());
        // Data in no bundle, or in a bundle that does not exist: admin only.
        assert!(check(&config, Access::Read, USER, 3, || None).is_err());
        assert!(check(&config, Access::Read, USER, 3, || Some(8)).is_err());
        assert!(check(&config, Access::Write, ADMIN_SUBJECT, 3, || None).is_ok());
    }

    #[test]
    fn an_anonymous_entry_counts_for_everybody() {
        let config = config_with_bundle(&[(ANONYMOUS, Rights::READ), (1, Rights::WRITE)]);
        assert_eq!(rights(&config, Subject::ANONYMOUS, Some(7)), Rights::READ);
        assert_eq!(rights(&config, USER, Some(7)), Rights::ALL);
        assert_eq!(
            rights(&config, Subject { user: 9, rights: 9 }, Some(7)),
            Rights::READ
        );
    }
}
