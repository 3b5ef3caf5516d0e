//! Dispatch layer: routes one Tap request through the resource table and the access
//! check to its object, and unwraps envelopes (the multi-request `/1024//89`, spec
//! decision 8) in a loop.

use crate::acl;
#[cfg(doc)]
use crate::object::ResourceDef;
use crate::object::{find_resource, Context, Envelope, InstanceRule, ObjectSet};
use crate::wire::multi::{emit_response_item_len, MultiRequest};
use crate::wire::{Body, Request, ResultCode};

/// Bytes before the data of a multi-request response item: `len u16 | status u8`.
const ITEM_HEADER_LEN: usize = 3;

/// Executes `request` for the subject of `ctx`, writing response data into `body`. An
/// envelope (a resource declared with [`ResourceDef::envelope`], such as the
/// multi-request) is unwrapped here, in a loop over its items: nothing recurses, and an
/// envelope inside an envelope is refused with `80`.
pub fn dispatch<O: ObjectSet + ?Sized>(
    objects: &mut O,
    ctx: &mut Context<'_>,
    request: &Request<'_>,
    body: &mut Body<'_>,
) -> ResultCode {
    match admit(objects, ctx, request) {
        Err(code) => code,
        Ok(Some(Envelope::MultiRequest)) => run_multi(objects, ctx, request.payload, body),
        Ok(None) => run_object(objects, ctx, request, body),
    }
}

/// Looks `request` up in its object's table and checks the subject's rights: the
/// envelope the resource is, if any, or the result code that answers it.
///
/// Rights are decided before existence is revealed, except for data protected by its
/// bundle's ACL, whose bundle is only known once the instance is found.
fn admit<O: ObjectSet + ?Sized>(
    objects: &mut O,
    ctx: &Context<'_>,
    request: &Request<'_>,
) -> Result<Option<Envelope>, ResultCode> {
    let path = request.path;
    let (def, exists, bundle) = {
        let object = objects.find(path.object).ok_or(ResultCode::NotFound)?;
        let def = find_resource(object.resources(), path.resource, path.instance)
            .ok_or(ResultCode::NotFound)?;
        let exists =
            def.instance != InstanceRule::Existing || object.instance_exists(ctx, path.instance);
        let bundle = match def.access(request.method) {
            acl::Access::Read | acl::Access::Write if exists => {
                object.owning_bundle(ctx.config(), path.instance)
            }
            _ => None,
        };
        (*def, exists, bundle)
    };
    let access = def.access(request.method);
    if access == acl::Access::Never {
        return Err(ResultCode::MethodNotAllowed);
    }
    let by_bundle = matches!(access, acl::Access::Read | acl::Access::Write);
    if by_bundle && !exists {
        return Err(ResultCode::NotFound);
    }
    acl::check(ctx.config(), access, ctx.subject(), path.instance, || {
        bundle
    })?;
    if !exists {
        return Err(ResultCode::NotFound);
    }
    if !def.implements(request.method) {
        return Err(ResultCode::NotImplemented);
    }
    Ok(def.envelope)
}

/// Hands an admitted request to its object.
fn run_object<O: ObjectSet + ?Sized>(
    objects: &mut O,
    ctx: &mut Context<'_>,
    request: &Request<'_>,
    body: &mut Body<'_>,
) -> ResultCode {
    match objects.find(request.path.object) {
        Some(object) => match object.handle(ctx, request, body) {
            Ok(code) | Err(code) => code,
        },
        None => ResultCode::NotFound,
    }
}

/// Runs every item of a multi-request body in order; the body is checked for framing
/// before anything runs.
fn run_multi<O: ObjectSet + ?Sized>(
    objects: &mut O,
    ctx: &mut Context<'_>,
    payload: &[u8],
    body: &mut Body<'_>,
) -> ResultCode {
    let multi = match MultiRequest::parse(payload) {
        Ok(multi) => multi,
        Err(err) => return err.result_code(),
    };
    // No item runs unless every answer is sure to fit: a multi-request is never half
    // executed (its writes done, its answer lost). Too large: A0, like an answer that
    // does not fit, but before anything ran.
    if answers_bound(objects, ctx.config(), &multi) > body.spare().len() {
        return ResultCode::InternalServerError;
    }
    for item in multi.items() {
        let spare = body.spare();
        let Some((header, data)) = spare.split_at_mut_checked(ITEM_HEADER_LEN) else {
            return ResultCode::InternalServerError;
        };
        let mut item_body = Body::new(data);
        let status = match Request::parse_frame(item.frame) {
            Ok(inner) => match admit(objects, ctx, &inner) {
                Err(code) => code,
                // One level of envelope.
                Ok(Some(_)) => ResultCode::BadRequest,
                Ok(None) => run_object(objects, ctx, &inner, &mut item_body),
            },
            Err(err) => err.result_code(),
        };
        let data_len = if status.is_success() {
            item_body.len()
        } else {
            // Wiped, not just left out: it may be a secret read before the item failed.
            item_body.wipe();
            0
        };
        header[2] = status.as_u8();
        let Ok(item_len) = emit_response_item_len(header, 1 + data_len) else {
            return ResultCode::InternalServerError;
        };
        if body.advance(item_len).is_err() {
            return ResultCode::InternalServerError;
        }
        if item.stops_after(status.as_u8()) {
            break;
        }
    }
    ResultCode::Ok
}

/// The most bytes the answers of the items of `multi` can take (item envelopes included).
///
/// The bounds are those of the configuration before anything runs; once an item may
/// change what a later bound depends on (a variable made larger, say), that later bound
/// is unknown and the request is refused.
fn answers_bound<O: ObjectSet + ?Sized>(
    objects: &mut O,
    config: &crate::config::Config,
    multi: &MultiRequest<'_>,
) -> usize {
    let mut changed = false;
    multi
        .items()
        .map(|item| {
            let data = match Request::parse_frame(item.frame) {
                Ok(inner) => objects.find(inner.path.object).map_or(0, |object| {
                    let path = inner.path;
                    let def = find_resource(object.resources(), path.resource, path.instance);
                    let bound = if def.is_some_and(|def| def.envelope.is_some()) {
                        // A nested envelope is refused without data.
                        0
                    } else if changed && object.bound_depends_on_config(&inner) {
                        usize::MAX
                    } else {
                        object.answer_bound(config, &inner)
                    };
                    changed |= object.changes_bounds(&inner);
                    bound
                }),
                Err(_) => 0,
            };
            ITEM_HEADER_LEN.saturating_add(data)
        })
        .fold(0usize, usize::saturating_add)
}
