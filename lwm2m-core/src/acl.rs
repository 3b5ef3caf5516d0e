//! Access-control layer: one function decides whether a subject may apply a method to a
//! resource, from the resource's declared [`Access`] (see `object::ResourceDef`).
//! Rights are checked before any object sees the request.

use crate::config::{Config, ADMIN, ANONYMOUS, SUPERVISOR};
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

/// Decides whether `subject` may use a resource declared with `access` on `instance`.
/// `Never` is answered `85` by the dispatcher before this is asked.
pub fn check(access: Access, subject: Subject, instance: u16) -> Result<(), ResultCode> {
    let allowed = match access {
        Access::Never => false,
        Access::Anyone => true,
        Access::User => subject.user != ANONYMOUS,
        Access::Admin => subject.is_admin(),
        Access::SelfOrAdmin => subject.is_admin() || subject.user == instance,
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

    const USER: Subject = Subject { user: 1, rights: 1 };
    const ADMIN_SUBJECT: Subject = Subject {
        user: ADMIN,
        rights: ADMIN,
    };

    #[test]
    fn anonymous_gets_only_public_resources() {
        assert!(check(Access::Anyone, Subject::ANONYMOUS, 0).is_ok());
        for access in [Access::User, Access::Admin, Access::Never] {
            assert_eq!(
                check(access, Subject::ANONYMOUS, 0),
                Err(ResultCode::Unauthorized)
            );
        }
        // Anonymous may read its own entry (instance 0 of 1025), nobody else's.
        assert!(check(Access::SelfOrAdmin, Subject::ANONYMOUS, 0).is_ok());
        assert!(check(Access::SelfOrAdmin, Subject::ANONYMOUS, 1).is_err());
    }

    #[test]
    fn users_reach_their_own_profile_only() {
        assert!(check(Access::User, USER, 0).is_ok());
        assert!(check(Access::SelfOrAdmin, USER, 1).is_ok());
        assert!(check(Access::SelfOrAdmin, USER, 2).is_err());
        assert!(check(Access::Admin, USER, 1).is_err());
    }

    #[test]
    fn admin_has_every_right_but_unsupported_methods() {
        for access in [
            Access::Anyone,
            Access::User,
            Access::Admin,
            Access::SelfOrAdmin,
        ] {
            assert!(check(access, ADMIN_SUBJECT, 7).is_ok());
        }
        assert!(check(Access::Never, ADMIN_SUBJECT, 7).is_err());
        let supervisor = Subject {
            user: SUPERVISOR,
            rights: SUPERVISOR,
        };
        assert!(check(Access::Admin, supervisor, 0).is_ok());
        let user_of_admin = Subject {
            user: 5,
            rights: ADMIN,
        };
        assert!(check(Access::Admin, user_of_admin, 0).is_ok());
    }
}
