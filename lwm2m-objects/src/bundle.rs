//! Object 1028, Bundle (`objects.md` object 1028 and §6.1): named groups of variables
//! sharing one access-control list.

use lwm2m_core::acl::Access::{Admin, Read};
#[cfg(feature = "joined-reads")]
use lwm2m_core::config::Domain;
use lwm2m_core::config::{
    remove_ordered, AclEntry, Bundle, Config, Rights, ADMIN, MAX_VARIABLES, NAME_LEN,
};
use lwm2m_core::object::{default_bound, Context, HandlerResult, Object, ResourceDef};
#[cfg(feature = "joined-reads")]
use lwm2m_core::target::{TargetSettings, TargetVar};
use lwm2m_core::wire::tlv::{self, Tlv, TlvKind};
use lwm2m_core::wire::{Body, Method, Request, ResultCode, ABSENT};

use crate::codec::{self, Widths};
use crate::interface;
use crate::variable::{record_len, servable_len};

/// Object id.
pub const ID: u16 = 1028;

/// Resources of object 1028. Reading a bundle needs the read right its ACL grants;
/// changing it needs the administrator.
pub const RESOURCES: &[ResourceDef] = &[
    ResourceDef::existing(0).put(Admin), // ACL entry (one per PUT)
    ResourceDef::existing(1).get(Read),  // values, OMA-TLV (bound: values_bound)
    ResourceDef::existing(2).get(Read).put(Admin).answers(4), // data-log period (s)
    ResourceDef::existing(4)
        .get(Read)
        .put(Admin)
        .answers(NAME_LEN as u16), // name
    ResourceDef::any(ABSENT).post(Admin).delete(Admin), // create / delete
];

/// Object 1028.
#[derive(Debug, Default)]
pub struct BundleObject;

impl BundleObject {
    /// Object 1028.
    pub const fn new() -> Self {
        BundleObject
    }
}

impl Object for BundleObject {
    fn id(&self) -> u16 {
        ID
    }

    fn resources(&self) -> &'static [ResourceDef] {
        RESOURCES
    }

    fn instance_exists(&self, ctx: &Context<'_>, instance: u16) -> bool {
        ctx.config().bundle(instance).is_some()
    }

    fn answer_bound(&self, config: &Config, req: &Request<'_>) -> usize {
        match (req.path.resource, req.method) {
            (1, Method::Get) => values_bound(config, Some(req.path.instance)),
            _ => default_bound(RESOURCES, req),
        }
    }

    fn bound_depends_on_config(&self, req: &Request<'_>) -> bool {
        req.method == Method::Get && req.path.resource == 1
    }

    fn owning_bundle(&self, _config: &Config, instance: u16) -> Option<u16> {
        Some(instance)
    }

    fn handle(
        &mut self,
        ctx: &mut Context<'_>,
        req: &Request<'_>,
        body: &mut Body<'_>,
    ) -> HandlerResult {
        let id = req.path.instance;
        match (req.method, req.path.resource) {
            (Method::Get, 1) => write_values(ctx, id, body)?,
            (Method::Post, ABSENT) => {
                codec::empty(req.payload)?;
                if ctx.config().bundle(id).is_none() {
                    ctx.config_mut()
                        .bundles
                        .push(Bundle::new(id))
                        .map_err(|_| ResultCode::NvmFull)?;
                }
            }
            (Method::Delete, ABSENT) => {
                codec::empty(req.payload)?;
                let config = ctx.config_mut();
                let index = config
                    .bundles
                    .iter()
                    .position(|b| b.id == id)
                    .ok_or(ResultCode::NotFound)?;
                remove_ordered(&mut config.bundles, index);
                // Its variables now belong to no bundle: administrator only.
                for var in config.variables.iter_mut().filter(|v| v.bundle == Some(id)) {
                    var.bundle = None;
                }
                interface::bundle_deleted(config, id);
            }
            // The other resources of an existing bundle (dispatch found it).
            (method, resource) => {
                let bundle = ctx
                    .config_mut()
                    .bundle_mut(id)
                    .ok_or(ResultCode::NotFound)?;
                match (method, resource) {
                    (Method::Get, 2) => body.push_u32(bundle.datalog_period)?,
                    (Method::Get, 4) => body.push(&bundle.name)?,
                    (Method::Put, 0) => set_acl_entry(bundle, parse_acl_record(req.payload)?)?,
                    (Method::Put, 2) => {
                        bundle.datalog_period = codec::uint(req.payload, Widths::WORD)?
                    }
                    (Method::Put, 4) => codec::replace(
                        bundle.name.as_mut_view(),
                        codec::ascii(req.payload, NAME_LEN)?,
                    )?,
                    _ => return Err(ResultCode::MethodNotAllowed),
                }
            }
        }
        Ok(ResultCode::Ok)
    }
}

/// Decodes one rights record: `41 id rights` or `61 id_hi id_lo rights`; the client's
/// configurator writes admin's entry as the malformed `61 FF rights`, accepted as admin
/// (spec decision 11). Anything else is `86`.
pub fn parse_acl_record(record: &[u8]) -> Result<AclEntry, ResultCode> {
    let entry = match *record {
        [0x61, 0xFF, rights] => AclEntry {
            profile: ADMIN,
            rights: Rights(rights),
        },
        _ => {
            let tlv = Tlv::parse_exact(record).map_err(|_| ResultCode::NotAcceptable)?;
            match (tlv.kind, tlv.value) {
                (TlvKind::ResourceInstance, &[rights]) => AclEntry {
                    profile: tlv.id,
                    rights: Rights(rights),
                },
                _ => return Err(ResultCode::NotAcceptable),
            }
        }
    };
    if !Rights::ALL.contains(entry.rights) {
        return Err(ResultCode::NotAcceptable);
    }
    Ok(entry)
}

/// Encodes a rights record for `profile` the way the client decodes it: the TLV
/// resource instance of one byte, `41 id rights`, or `61 id_hi id_lo rights` for an id
/// above 255 (what [`Tlv::emit`] writes, spelt out).
pub fn emit_acl_record(
    body: &mut Body<'_>,
    profile: u16,
    rights: Rights,
) -> Result<(), ResultCode> {
    let [high, low] = profile.to_be_bytes();
    let mut record = [0x61, high, low, rights.0];
    let record = match high {
        // `41 id rights`: the narrow form in the last three bytes.
        0 => {
            record[1] = 0x41;
            &record[1..]
        }
        _ => &record[..],
    };
    body.push(record)?;
    Ok(())
}

/// Replaces the entry of that profile; no rights at all revokes it.
pub(crate) fn set_acl_entry(bundle: &mut Bundle, entry: AclEntry) -> Result<(), ResultCode> {
    let existing = bundle.acl.iter().position(|e| e.profile == entry.profile);
    match (existing, entry.rights == Rights::NONE) {
        (Some(i), true) => {
            remove_ordered(&mut bundle.acl, i);
        }
        (Some(i), false) => bundle.acl[i] = entry,
        (None, true) => {}
        (None, false) => bundle.acl.push(entry).map_err(|_| ResultCode::NvmFull)?,
    }
    Ok(())
}

/// Writes the TLV of bundle `id`'s values: one multiple-resource record (id = bundle id)
/// holding one resource-value record per variable (id = variable id).
/// The most data a TLV list of values answers: the container (widest header) and the
/// record of every variable of `bundle` (every variable for `None`), a superset of what a
/// profile may read of them.
pub fn values_bound(config: &Config, bundle: Option<u16>) -> usize {
    config
        .variables
        .iter()
        .filter(|v| bundle.is_none() || v.bundle == bundle)
        .filter_map(|v| Some(record_len(v.id, v.value_len()?)))
        .fold(tlv::MAX_HEADER_LEN, usize::saturating_add)
}

/// Writes the values of the variables of bundle `id` as a TLV container (`GET /1028/{id}/1`).
pub fn write_values(ctx: &mut Context<'_>, id: u16, body: &mut Body<'_>) -> Result<(), ResultCode> {
    write_value_records(ctx, id, body, Some(id))
}

/// Writes a container record `container_id` holding the values of the variables of
/// `bundle`, or for `None` of every variable the subject may read, in configuration
/// order. The container's length is known before any value is read (from the variables'
/// sizes), so each value is read straight into its place: a target read the request
/// waits on lands where it belongs.
pub fn write_value_records(
    ctx: &mut Context<'_>,
    container_id: u16,
    body: &mut Body<'_>,
    bundle: Option<u16>,
) -> Result<(), ResultCode> {
    let limits = ctx.limits();
    let mut ids: heapless::Vec<(u16, usize), MAX_VARIABLES> = heapless::Vec::new();
    let mut children = 0usize;
    for var in &ctx.config().variables {
        // A value no frame can carry (an image written before sizes were checked) is
        // left out rather than failing the answer for everybody.
        let selected = match bundle {
            Some(_) => var.bundle == bundle,
            None => ctx.rights(var.bundle).contains(Rights::READ),
        };
        if !selected {
            continue;
        }
        if let Some(len) = servable_len(var, limits) {
            // Capacity equals the number of variables.
            let _ = ids.push((var.id, len));
            children = children.saturating_add(record_len(var.id, len));
        }
    }
    // The container's header, written in place: the answer fails (and its body is
    // dropped) unless every record fits after it.
    push_header(body, TlvKind::MultipleResource, container_id, children)?;
    if children > body.remaining() {
        return Err(ResultCode::InternalServerError);
    }
    // Read from the configuration once a target variable needs them.
    #[cfg(feature = "joined-reads")]
    let mut settings = None;
    let mut rest = ids.as_slice();
    while let [(var_id, len), ..] = *rest {
        // Target variables read in one transaction with those after them.
        #[cfg(feature = "joined-reads")]
        if let (Some(joined), run @ 2..) = joined_run(ctx.config(), &mut settings, rest) {
            let records = rest.get(..run).unwrap_or_default();
            let fresh = ctx.read_joined(&joined, body)?;
            lay_out(body, records, fresh)?;
            rest = rest.get(run..).unwrap_or_default();
            continue;
        }
        push_header(body, TlvKind::ResourceValue, var_id, len)?;
        ctx.read_value(var_id, body)?;
        rest = rest.get(1..).unwrap_or_default();
    }
    Ok(())
}

/// The target variable of `var`, if it is one.
#[cfg(feature = "joined-reads")]
fn target_var(
    config: &Config,
    settings: &mut Option<TargetSettings>,
    id: u16,
) -> Option<TargetVar> {
    let var = config.variable(id)?;
    if var.domain() != Domain::Target {
        return None;
    }
    let settings = *settings.get_or_insert_with(|| TargetSettings::of(config));
    TargetVar::of(var, settings)
}

/// The longest run of `records`' first variables that [`TargetVar::joined`] makes one
/// target read, and how many they are (1: the first is read alone).
#[cfg(feature = "joined-reads")]
fn joined_run(
    config: &Config,
    settings: &mut Option<TargetSettings>,
    records: &[(u16, usize)],
) -> (Option<TargetVar>, usize) {
    let Some(&(first, _)) = records.first() else {
        return (None, 0);
    };
    // An in-device variable is read alone: nothing more is looked up.
    let Some(mut joined) = target_var(config, settings, first) else {
        return (None, 1);
    };
    let mut run = 1;
    for &(id, _) in records.iter().skip(1) {
        match target_var(config, settings, id).and_then(|next| joined.joined(&next)) {
            Some(longer) => joined = longer,
            None => break,
        }
        run += 1;
    }
    (Some(joined), run)
}

/// The records of `records` from the values read one after the other at the start of
/// `body`'s spare bytes ([`Context::read_joined`]): when `fresh`, each value moves to
/// its place (the last first, so none is overwritten before it moved), then every
/// header is written before its value, as on every run.
#[cfg(feature = "joined-reads")]
fn lay_out(body: &mut Body<'_>, records: &[(u16, usize)], fresh: bool) -> Result<(), ResultCode> {
    let total: usize = records.iter().map(|&(id, len)| record_len(id, len)).sum();
    let spare = body
        .spare()
        .get_mut(..total)
        .ok_or(ResultCode::InternalServerError)?;
    let values: usize = records.iter().map(|&(_, len)| len).sum();
    if fresh {
        // Where the values end now, and where their records end once laid out.
        let (mut read_end, mut end) = (values, total);
        for &(id, len) in records.iter().rev() {
            let start = read_end
                .checked_sub(len)
                .ok_or(ResultCode::InternalServerError)?;
            let to = end
                .checked_sub(len)
                .ok_or(ResultCode::InternalServerError)?;
            let moved = spare
                .get_mut(start..)
                .is_some_and(|from| lwm2m_core::wire::shift_up(from, len, to - start));
            if !moved {
                return Err(ResultCode::InternalServerError);
            }
            read_end = start;
            end = to
                .checked_sub(tlv::header_len(id, len))
                .ok_or(ResultCode::InternalServerError)?;
        }
    }
    for &(id, len) in records {
        push_header(body, TlvKind::ResourceValue, id, len)?;
        body.advance(len)?;
    }
    Ok(())
}

/// Writes the header of a TLV record of `kind`, `id` and a value of `len` bytes.
fn push_header(body: &mut Body<'_>, kind: TlvKind, id: u16, len: usize) -> Result<(), ResultCode> {
    let n = tlv::emit_header(body.spare(), kind, id, len)?;
    Ok(body.advance(n)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rights_record_is_the_tlv_the_client_decodes_and_parses_back() {
        for profile in [0, 1, 3, 0xFF, 0x100, 0x1234, 0xFFFE, 0xFFFF] {
            for rights in [Rights::NONE, Rights::READ, Rights::ALL] {
                let mut buf = [0u8; 8];
                let mut body = Body::new(&mut buf);
                emit_acl_record(&mut body, profile, rights).unwrap();
                let mut expected = [0u8; 8];
                let n = Tlv {
                    kind: TlvKind::ResourceInstance,
                    id: profile,
                    value: &[rights.0],
                }
                .emit(&mut expected)
                .unwrap();
                assert_eq!(body.as_slice(), &expected[..n], "profile {profile}");
                if profile != 0xFF {
                    let entry = parse_acl_record(body.as_slice()).unwrap();
                    assert_eq!((entry.profile, entry.rights), (profile, rights));
                }
            }
        }
        // Full: nothing written.
        let mut buf = [0u8; 2];
        let mut body = Body::new(&mut buf);
        assert!(emit_acl_record(&mut body, 1, Rights::READ).is_err());
        assert!(body.is_empty());
    }
}
