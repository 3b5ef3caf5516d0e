//! Object 1029, Variable (`objects.md` object 1029 and §6.2): typed values in the target
//! or in the device, each belonging to one bundle whose ACL protects it.

use lwm2m_core::acl::Access::{Admin, Anyone, Read, Write};
use lwm2m_core::config::{Config, Rights, Variable, META_LEN, UNIT_LEN};
use lwm2m_core::object::{Context, HandlerResult, Object, ResourceDef};
use lwm2m_core::wire::{Body, Method, Request, ResultCode, ABSENT};

use crate::bundle::{emit_acl_record, write_value_records, write_values};
use crate::codec;

/// Object id.
pub const ID: u16 = 1029;

/// Record id of the container answered to `GET /1029//4` (the client ignores it).
pub const READ_PROFILE_CONTAINER: u16 = 0;

/// Resources of object 1029. Values follow the owning bundle's ACL; the description of a
/// variable is readable with the read right and written by the administrator.
pub const RESOURCES: &[ResourceDef] = &[
    ResourceDef::absent(4).get(Anyone), // every value the profile may read
    ResourceDef::existing(0).get(Read).put(Admin), // address
    ResourceDef::existing(1).get(Read).put(Admin), // type
    ResourceDef::existing(2).get(Read).put(Admin), // number of elements
    ResourceDef::existing(3).get(Anyone), // current profile's rights
    ResourceDef::existing(4).get(Read).put(Write), // value
    ResourceDef::existing(5).post(Write), // set value
    ResourceDef::existing(6).get(Read).put(Admin), // bundle id
    ResourceDef::existing(7).get(Read), // values of its bundle
    ResourceDef::existing(8).get(Read).put(Admin), // meta "name:unit"
    ResourceDef::existing(9).get(Read).put(Admin), // unit
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
        if req.path.resource == 4 && id == ABSENT && req.method == Method::Get {
            write_value_records(ctx, READ_PROFILE_CONTAINER, body, |ctx, var| {
                ctx.rights(var.bundle).contains(Rights::READ)
            })?;
            return Ok(ResultCode::Ok);
        }
        match (req.path.resource, req.method) {
            (ABSENT, Method::Post) => create(ctx, id, req.payload)?,
            (ABSENT, Method::Delete) => {
                let config = ctx.config_mut();
                let index = config
                    .variables
                    .iter()
                    .position(|v| v.id == id)
                    .ok_or(ResultCode::NotFound)?;
                config.variables.remove(index);
            }
            (4, Method::Get) => {
                let n = ctx.read_value(id, body.spare())?;
                body.advance(n)?;
            }
            (4, Method::Put) | (5, Method::Post) => ctx.write_value(id, req.payload)?,
            (3, Method::Get) => {
                let bundle = variable(ctx, id)?.bundle;
                let rights = ctx.rights(bundle);
                emit_acl_record(body, ctx.subject().user, rights)?;
            }
            (7, Method::Get) => match variable(ctx, id)?.bundle {
                Some(bundle) => write_values(ctx, bundle, body)?,
                None => return Err(ResultCode::NotFound),
            },
            (resource, Method::Get) => {
                let var = variable(ctx, id)?;
                match resource {
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
            (resource, Method::Put) => configure(ctx, id, resource, req.payload)?,
            _ => return Err(ResultCode::MethodNotAllowed),
        }
        Ok(ResultCode::Ok)
    }
}

fn variable<'c>(ctx: &'c Context<'_>, id: u16) -> Result<&'c Variable, ResultCode> {
    ctx.config().variable(id).ok_or(ResultCode::NotFound)
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
    let var = ctx
        .config_mut()
        .variable_mut(id)
        .ok_or(ResultCode::NotFound)?;
    match resource {
        // A u32 memory address, or the 4-byte Modbus address; same width.
        0 => var.address = payload.try_into().map_err(|_| ResultCode::NotAcceptable)?,
        1 => {
            let var_type = codec::uint(payload, &[1])? as u8;
            let mut probe = var.clone();
            probe.var_type = var_type;
            probe.item_size().ok_or(ResultCode::NotAcceptable)?;
            var.var_type = var_type;
            // A value kept in the device no longer matches the new layout.
            var.value.clear();
        }
        2 => {
            let quantity = codec::u16_liberal(payload)?;
            if !(1..=255).contains(&quantity) {
                return Err(ResultCode::NotAcceptable);
            }
            var.quantity = quantity;
            var.value.clear();
        }
        8 => {
            var.meta = heapless::Vec::from_slice(bounded(payload, META_LEN)?)
                .map_err(|_| ResultCode::NotAcceptable)?
        }
        9 => {
            let unit = codec::ascii(payload, UNIT_LEN)?;
            var.unit = heapless::Vec::from_slice(unit).map_err(|_| ResultCode::NotAcceptable)?;
        }
        _ => return Err(ResultCode::MethodNotAllowed),
    }
    Ok(())
}

fn bounded(payload: &[u8], max: usize) -> Result<&[u8], ResultCode> {
    if payload.len() <= max {
        Ok(payload)
    } else {
        Err(ResultCode::NotAcceptable)
    }
}
