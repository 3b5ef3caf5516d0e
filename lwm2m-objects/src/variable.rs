//! Object 1029, Variable (`objects.md` object 1029 and §6.2): typed values in the target
//! or in the device, each belonging to one bundle whose ACL protects it.
//!
//! # Sizes
//!
//! A variable's value (quantity × item size) must always be readable and writable, so
//! a type or quantity that breaks one of these rules is refused with `86`:
//!
//! 1. an in-device value fits the device's value store ([`VALUE_LEN`]);
//! 2. a `PUT /1029/{id}/4` of the whole value fits one request frame
//!    ([`FrameLimits::max_request`]);
//! 3. its value, as the one record of a TLV container (widest header), fits one
//!    response ([`FrameLimits::max_response`]).
//!
//! The values of *several* variables together may exceed one response (four FLOAT32
//! arrays of 64 already do with 1 KiB frames): a list that does not fit
//! (`GET /1029//4`, `/1028/{id}/1`, `/1029/{id}/7`) answers `A0` without data, and each
//! value stays readable on its own.
//!
//! A variable that breaks the rules on its own can only come from an image written
//! before they were checked; multi-value answers leave it out instead of failing for
//! everybody.

use lwm2m_core::acl::Access::{Admin, Anyone, Read, Write};
use lwm2m_core::config::{remove_ordered, Config, Domain, Variable, META_LEN, UNIT_LEN, VALUE_LEN};
use lwm2m_core::object::{default_bound, Context, FrameLimits, HandlerResult, Object, ResourceDef};
use lwm2m_core::wire::{tlv, Body, Method, Request, ResultCode, ABSENT};

use crate::bundle::{emit_acl_record, values_bound, write_value_records, write_values};
use crate::codec::{self, Widths};

/// Object id.
pub const ID: u16 = 1029;

/// Record id of the container answered to `GET /1029//4` (the client ignores it).
pub const READ_PROFILE_CONTAINER: u16 = 0;

/// Resources of object 1029. Values follow the owning bundle's ACL; the description of a
/// variable is readable with the read right and written by the administrator.
pub const RESOURCES: &[ResourceDef] = &[
    ResourceDef::absent(4).get(Anyone), // every value the profile may read
    ResourceDef::existing(0).get(Read).put(Admin).answers(4), // address
    ResourceDef::existing(1).get(Read).put(Admin).answers(1), // type
    ResourceDef::existing(2).get(Read).put(Admin).answers(1), // number of elements
    ResourceDef::existing(3).get(Anyone).answers(4), // current profile's rights (ACL record)
    ResourceDef::existing(4).get(Read).put(Write), // value
    ResourceDef::existing(5).post(Write), // set value
    ResourceDef::existing(6).get(Read).put(Admin).answers(2), // bundle id
    ResourceDef::existing(7).get(Read), // values of its bundle
    ResourceDef::existing(8)
        .get(Read)
        .put(Admin)
        .answers(META_LEN as u16), // meta "name:unit"
    ResourceDef::existing(9)
        .get(Read)
        .put(Admin)
        .answers(UNIT_LEN as u16), // unit
    ResourceDef::any(ABSENT).post(Admin).delete(Admin), // create / delete
];

/// Object 1029.
#[derive(Debug, Default)]
pub struct VariableObject;

impl VariableObject {
    /// Object 1029.
    pub const fn new() -> Self {
        VariableObject
    }
}

impl Object for VariableObject {
    fn id(&self) -> u16 {
        ID
    }

    fn resources(&self) -> &'static [ResourceDef] {
        RESOURCES
    }

    fn instance_exists(&self, ctx: &Context<'_>, instance: u16) -> bool {
        ctx.config().variable(instance).is_some()
    }

    /// Values: the variable's own length; lists of values: [`values_bound`].
    fn answer_bound(&self, config: &Config, req: &Request<'_>) -> usize {
        let id = req.path.instance;
        match (req.path.resource, req.method) {
            (4, Method::Get) if id == ABSENT => values_bound(config, None),
            (7, Method::Get) => match config.variable(id).and_then(|v| v.bundle) {
                Some(bundle) => values_bound(config, Some(bundle)),
                None => 0,
            },
            (4, Method::Get) => config
                .variable(id)
                .and_then(Variable::value_len)
                .unwrap_or(0),
            _ => default_bound(RESOURCES, req),
        }
    }

    fn bound_depends_on_config(&self, req: &Request<'_>) -> bool {
        req.method == Method::Get && matches!(req.path.resource, 4 | 7)
    }

    /// Its type (1), quantity (2) or bundle (6), a creation or a deletion.
    fn changes_bounds(&self, req: &Request<'_>) -> bool {
        match req.method {
            Method::Get => false,
            Method::Put => matches!(req.path.resource, 1 | 2 | 6),
            Method::Post | Method::Delete => req.path.resource == ABSENT,
        }
    }

    fn owning_bundle(&self, config: &Config, instance: u16) -> Option<u16> {
        config.variable(instance)?.bundle
    }

    fn handle(
        &mut self,
        ctx: &mut Context<'_>,
        req: &Request<'_>,
        body: &mut Body<'_>,
    ) -> HandlerResult {
        let id = req.path.instance;
        let resource = req.path.resource;
        match req.method {
            Method::Get => match resource {
                4 if id == ABSENT => write_value_records(ctx, READ_PROFILE_CONTAINER, body, None)?,
                4 => {
                    ctx.read_value(id, body)?;
                }
                _ => {
                    let var = variable(ctx, id)?;
                    match resource {
                        3 => {
                            let rights = ctx.rights(var.bundle);
                            emit_acl_record(body, ctx.subject().user, rights)?;
                        }
                        7 => match var.bundle {
                            Some(bundle) => write_values(ctx, bundle, body)?,
                            None => return Err(ResultCode::NotFound),
                        },
                        0 => body.push(&var.address)?,
                        1 => body.push_u8(var.var_type)?,
                        // The client reads the quantity as a u8; PUT keeps it below 256.
                        2 => body.push_u8(var.quantity as u8)?,
                        6 => body.push_u16(var.bundle.unwrap_or(ABSENT))?,
                        8 => body.push(&var.meta)?,
                        9 => body.push(&var.unit)?,
                        _ => return Err(ResultCode::MethodNotAllowed),
                    }
                }
            },
            Method::Put if resource == 4 => ctx.write_value(id, req.payload)?,
            Method::Put => configure(ctx, id, resource, req.payload)?,
            Method::Post if resource == 5 => ctx.write_value(id, req.payload)?,
            Method::Post if resource == ABSENT => create(ctx, id, req.payload)?,
            Method::Delete if resource == ABSENT => {
                codec::empty(req.payload)?;
                let config = ctx.config_mut();
                let index = config
                    .variables
                    .iter()
                    .position(|v| v.id == id)
                    .ok_or(ResultCode::NotFound)?;
                remove_ordered(&mut config.variables, index);
            }
            _ => return Err(ResultCode::MethodNotAllowed),
        }
        Ok(ResultCode::Ok)
    }
}

// Inlined: a call returning the `Result` through memory costs more than the lookup.
#[inline(always)]
fn variable<'c>(ctx: &'c Context<'_>, id: u16) -> Result<&'c Variable, ResultCode> {
    ctx.config().variable(id).ok_or(ResultCode::NotFound)
}

/// Bytes of a Tap request frame before its payload: method, object, instance, resource.
const REQUEST_HEADER_LEN: usize = 7;
/// Bytes of a response besides its data: the status byte and `90 00`.
const RESPONSE_OVERHEAD: usize = 3;

/// The length of `var`'s value if frames of `limits` can carry it on its own (size
/// rules 1 to 3 of the [module](self) for the variable alone); `None` if they cannot.
pub fn servable_len(var: &Variable, limits: FrameLimits) -> Option<usize> {
    let len = var.value_len()?;
    let in_device = matches!(var.domain(), Domain::InTapStatic | Domain::InTapVolatile);
    let fits = (!in_device || len <= VALUE_LEN)
        && REQUEST_HEADER_LEN + len <= usize::from(limits.max_request)
        && values_response_len(record_len(var.id, len)) <= usize::from(limits.max_response);
    fits.then_some(len)
}

/// Length of the TLV record of a value of `len` bytes of variable `id`.
pub(crate) const fn record_len(id: u16, len: usize) -> usize {
    tlv::header_len(id, len) + len
}

/// Length of a response carrying a container of `children` bytes of records. The
/// container is built with room for the widest header ([`tlv::MAX_HEADER_LEN`]).
const fn values_response_len(children: usize) -> usize {
    RESPONSE_OVERHEAD + tlv::MAX_HEADER_LEN + children
}

/// `POST /1029/{id}/65535` with an optional u8 extra size (the raw meta length).
fn create(ctx: &mut Context<'_>, id: u16, payload: &[u8]) -> Result<(), ResultCode> {
    let extra_size = match payload {
        [] => 0,
        [size] => *size,
        _ => return Err(ResultCode::NotAcceptable),
    };
    let config = ctx.config_mut();
    match config.variable_mut(id) {
        // Re-running the configurator: keep the variable, take the new extra size.
        Some(var) => var.extra_size = extra_size,
        None => {
            let mut var = Variable::new(id);
            var.extra_size = extra_size;
            // A new variable is one UINT8: it fits any frame.
            config
                .variables
                .push(var)
                .map_err(|_| ResultCode::NvmFull)?;
        }
    }
    Ok(())
}

fn configure(
    ctx: &mut Context<'_>,
    id: u16,
    resource: u16,
    payload: &[u8],
) -> Result<(), ResultCode> {
    if resource == 6 {
        let bundle = codec::u16_liberal(payload)?;
        if ctx.config().bundle(bundle).is_none() {
            return Err(ResultCode::NotAcceptable);
        }
        ctx.config_mut()
            .variable_mut(id)
            .ok_or(ResultCode::NotFound)?
            .bundle = Some(bundle);
        return Ok(());
    }
    let limits = ctx.limits();
    let var = ctx
        .config_mut()
        .variable_mut(id)
        .ok_or(ResultCode::NotFound)?;
    if resource == 1 || resource == 2 {
        let layout = (var.var_type, var.quantity);
        if resource == 1 {
            var.var_type = codec::uint(payload, Widths::BYTE)? as u8;
        } else {
            let quantity = codec::u16_liberal(payload)?;
            if !(1..=255).contains(&quantity) {
                return Err(ResultCode::NotAcceptable);
            }
            var.quantity = quantity;
        }
        // An unknown type, or a value the frames cannot carry: the layout stays.
        if servable_len(var, limits).is_none() {
            (var.var_type, var.quantity) = layout;
            return Err(ResultCode::NotAcceptable);
        }
        // A value kept in the device no longer matches a new layout (the same layout
        // written again, as a client writing back what it read, keeps it).
        if (var.var_type, var.quantity) != layout {
            var.value.clear();
        }
        return Ok(());
    }
    match resource {
        // A u32 memory address, or the 4-byte Modbus address; same width.
        0 => var.address = payload.try_into().map_err(|_| ResultCode::NotAcceptable)?,
        8 => codec::replace(var.meta.as_mut_view(), payload)?,
        9 => codec::replace(var.unit.as_mut_view(), codec::ascii(payload, UNIT_LEN)?)?,
        _ => return Err(ResultCode::MethodNotAllowed),
    }
    Ok(())
}
