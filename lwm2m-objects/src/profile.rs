//! Object 1025, Profile ("group" in the client; `objects.md` object 1025 and §6.1).

use lwm2m_core::acl::Access::{Admin, SelfOrAdmin};
use lwm2m_core::auth::{Credential, ScramRecord, Secret16, FIELD_LEN};
use lwm2m_core::config::{
    remove_ordered, retain_ordered, Profile, SecurityOptions, ADMIN, ANONYMOUS, NAME_LEN,
    SUPERVISOR,
};
use lwm2m_core::object::{Context, HandlerResult, Object, ResourceDef};
use lwm2m_core::wire::{Body, Method, Request, ResultCode, ABSENT};

use crate::{codec, interface};

/// Object id.
pub const ID: u16 = 1025;

/// Resources of object 1025: a profile reads its own entry, the administrator
/// everything; every change needs the administrator.
pub const RESOURCES: &[ResourceDef] = &[
    ResourceDef::existing(0)
        .get(SelfOrAdmin)
        .put(Admin)
        .answers(NAME_LEN as u16), // name
    ResourceDef::existing(2).post(Admin), // change password
    ResourceDef::existing(4)
        .get(SelfOrAdmin)
        .put(Admin)
        .answers(2), // session lifetime (s)
    ResourceDef::existing(5)
        .get(SelfOrAdmin)
        .put(Admin)
        .answers(2), // alias
    ResourceDef::any(ABSENT).post(Admin).delete(Admin), // create / delete
];

/// Object 1025.
#[derive(Debug, Default)]
pub struct ProfileObject;

impl ProfileObject {
    /// Object 1025.
    pub const fn new() -> Self {
        ProfileObject
    }
}

/// Ids that always exist and can be neither created nor deleted.
const fn is_builtin(id: u16) -> bool {
    matches!(id, ANONYMOUS | ADMIN | SUPERVISOR)
}

impl Object for ProfileObject {
    fn id(&self) -> u16 {
        ID
    }

    fn resources(&self) -> &'static [ResourceDef] {
        RESOURCES
    }

    fn instance_exists(&self, ctx: &Context<'_>, instance: u16) -> bool {
        ctx.config().profile(instance).is_some()
    }

    fn handle(
        &mut self,
        ctx: &mut Context<'_>,
        req: &Request<'_>,
        body: &mut Body<'_>,
    ) -> HandlerResult {
        let id = req.path.instance;
        match (req.method, req.path.resource) {
            // Neither takes a body (objects.md object 1025, decision 2).
            (Method::Post, ABSENT) => {
                codec::empty(req.payload)?;
                create(ctx, id)?
            }
            (Method::Delete, ABSENT) => {
                codec::empty(req.payload)?;
                delete(ctx, id)?
            }
            (Method::Get, resource) => {
                let profile = ctx.config().profile(id).ok_or(ResultCode::NotFound)?;
                match resource {
                    0 => body.push(&profile.name)?,
                    4 => body.push_u16(profile.lifetime_secs)?,
                    5 => body.push_u16(profile.alias)?,
                    _ => return Err(ResultCode::MethodNotAllowed),
                }
            }
            (Method::Put, 0) => rename(ctx, id, req.payload)?,
            (Method::Post, 2) => change_password(ctx, id, req.payload)?,
            (Method::Put, 4) => {
                let secs = codec::u16_liberal(req.payload)?;
                profile_mut(ctx, id)?.lifetime_secs = secs;
            }
            (Method::Put, 5) => {
                let alias = codec::u16_liberal(req.payload)?;
                // The built-in profiles keep their own rights: anonymous aliased to the
                // administrator would give every connection admin rights.
                if ctx.config().profile(alias).is_none() || (is_builtin(id) && alias != id) {
                    return Err(ResultCode::NotAcceptable);
                }
                profile_mut(ctx, id)?.alias = alias;
            }
            _ => return Err(ResultCode::MethodNotAllowed),
        }
        Ok(ResultCode::Ok)
    }
}

// Inlined: a call returning the `Result` through memory costs more than the lookup.
#[inline(always)]
fn profile_mut<'c>(ctx: &'c mut Context<'_>, id: u16) -> Result<&'c mut Profile, ResultCode> {
    ctx.config_mut().profile_mut(id).ok_or(ResultCode::NotFound)
}

fn create(ctx: &mut Context<'_>, id: u16) -> Result<(), ResultCode> {
    // Re-running the configurator on a configured device creates existing profiles.
    if ctx.config().profile(id).is_some() {
        return Ok(());
    }
    if is_builtin(id) {
        return Err(ResultCode::NotAcceptable);
    }
    // An unnamed profile cannot log in until it gets a name and a password.
    ctx.config_mut()
        .profiles
        .push(Profile::new(id, b""))
        .map_err(|_| ResultCode::NvmFull)
}

fn delete(ctx: &mut Context<'_>, id: u16) -> Result<(), ResultCode> {
    if is_builtin(id) {
        return Err(ResultCode::NotAcceptable);
    }
    let profiles = &mut ctx.config_mut().profiles;
    let index = profiles
        .iter()
        .position(|p| p.id == id)
        .ok_or(ResultCode::NotFound)?;
    remove_ordered(profiles, index);
    // Users of the deleted profile fall back to their own rights.
    for profile in profiles.iter_mut().filter(|p| p.alias == id) {
        profile.alias = profile.id;
    }
    // Nothing it was granted passes to a profile created later with the same id (the
    // configurator numbers profiles 1, 2, 3...): every entry naming it goes, also from a
    // configuration a firmware built with two (`Device::new` does not validate).
    for bundle in ctx.config_mut().bundles.iter_mut() {
        retain_ordered(&mut bundle.acl, |entry| entry.profile != id);
    }
    interface::profile_deleted(ctx.config_mut(), id);
    Ok(())
}

fn rename(ctx: &mut Context<'_>, id: u16, payload: &[u8]) -> Result<(), ResultCode> {
    let name = codec::ascii(payload, NAME_LEN)?;
    if name.is_empty() {
        return Err(ResultCode::NotAcceptable);
    }
    // Login finds profiles by name: two profiles may not share one.
    if ctx
        .config()
        .profiles
        .iter()
        .any(|p| p.id != id && p.name == name)
    {
        return Err(ResultCode::NotAcceptable);
    }
    codec::replace(profile_mut(ctx, id)?.name.as_mut_view(), name)?;
    Ok(())
}

/// The body follows the security options in force (spec decision 5): the SCRAM record
/// under SCRAM, the 16-byte hash under hashPassword, else ASCII.
fn change_password(ctx: &mut Context<'_>, id: u16, payload: &[u8]) -> Result<(), ResultCode> {
    if id == ANONYMOUS {
        return Err(ResultCode::NotAcceptable);
    }
    let options = ctx.config().security_options;
    let profile = profile_mut(ctx, id)?;
    profile.credential = if options.contains(SecurityOptions::SCRAM) {
        Credential::Scram(ScramRecord::from_bytes(payload).ok_or(ResultCode::NotAcceptable)?)
    } else if options.contains(SecurityOptions::HASH_PASSWORD) {
        let hash: [u8; FIELD_LEN] = payload.try_into().map_err(|_| ResultCode::NotAcceptable)?;
        Credential::Hashed(Secret16(hash))
    } else {
        // At most the 16 bytes of the login field: a longer password could not log in
        // the same way in clear (the field cuts it) and hashed (the client hashes it
        // whole), so it is refused rather than kept in a form one of them fails.
        Credential::from_password(codec::ascii(payload, FIELD_LEN)?)
    };
    Ok(())
}
