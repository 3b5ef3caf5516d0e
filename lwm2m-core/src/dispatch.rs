//! Dispatch layer: routes one Tap request through the resource table and the access
//! check to its object, and runs multi-requests (`/1024//89`, spec decision 8).

use crate::acl;
use crate::object::{find_resource, Context, InstanceRule, ObjectSet};
use crate::wire::multi::{emit_response_item_len, MultiRequest};
use crate::wire::{Body, Request, ResultCode};

/// Object id of the interface object, which hosts the multi-request resource.
pub const INTERFACE_OBJECT: u16 = 1024;
/// Resource id of the multi-request.
pub const MULTI_REQUEST_RESOURCE: u16 = 89;

/// Bytes before the data of a multi-request response item: `len u16 | status u8`.
const ITEM_HEADER_LEN: usize = 3;

/// Executes `request` for the subject of `ctx`, writing response data into `body`.
/// `nested` is true inside a multi-request, where another multi-request is refused.
pub fn dispatch<O: ObjectSet + ?Sized>(
    objects: &mut O,
    ctx: &mut Context<'_>,
    request: &Request<'_>,
    body: &mut Body<'_>,
    nested: bool,
) -> ResultCode {
    let path = request.path;
    // Rights are decided before existence is revealed, except for data protected by its
    // bundle's ACL, whose bundle is only known once the instance is found.
    let (def, exists, bundle) = {
        let Some(object) = objects.find(path.object) else {
            return ResultCode::NotFound;
        };
        let Some(def) = find_resource(object.resources(), path.resource, path.instance) else {
            return ResultCode::NotFound;
        };
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
        return ResultCode::MethodNotAllowed;
    }
    let by_bundle = matches!(access, acl::Access::Read | acl::Access::Write);
    if by_bundle && !exists {
        return ResultCode::NotFound;
    }
    if let Err(code) = acl::check(ctx.config(), access, ctx.subject(), path.instance, || {
        bundle
    }) {
        return code;
    }
    if !exists {
        return ResultCode::NotFound;
    }
    if !def.implemented {
        return ResultCode::NotImplemented;
    }
    if path.object == INTERFACE_OBJECT && path.resource == MULTI_REQUEST_RESOURCE {
        if nested {
            return ResultCode::BadRequest;
        }
        return run_multi(objects, ctx, request.payload, body);
    }
    match objects.find(path.object) {
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
            Ok(inner) => dispatch(objects, ctx, &inner, &mut item_body, true),
            Err(err) => err.result_code(),
        };
        let data_len = if status.is_success() {
            item_body.len()
        } else {
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
fn answers_bound<O: ObjectSet + ?Sized>(
    objects: &mut O,
    config: &crate::config::Config,
    multi: &MultiRequest<'_>,
) -> usize {
    multi
        .items()
        .map(|item| {
            let data = match Request::parse_frame(item.frame) {
                // A nested multi-request is refused without data.
                Ok(inner)
                    if inner.path.object == INTERFACE_OBJECT
                        && inner.path.resource == MULTI_REQUEST_RESOURCE =>
                {
                    0
                }
                Ok(inner) => objects
                    .find(inner.path.object)
                    .map_or(0, |object| object.answer_bound(config, &inner)),
                Err(_) => 0,
            };
            ITEM_HEADER_LEN.saturating_add(data)
        })
        .fold(0usize, usize::saturating_add)
}
