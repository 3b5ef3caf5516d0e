//! Dispatch layer: routes one Tap request through the resource table and the access
//! check to its object, and unwraps envelopes (the multi-request `/1024//89`, spec
//! decision 8) in a loop.

use crate::acl;
#[cfg(doc)]
use crate::object::ResourceDef;
use crate::object::{find_resource, Context, Envelope, InstanceRule, Object, ObjectSet};
use crate::wire::multi::{emit_response_item_len, MultiRequest};
use crate::wire::{Body, Request, ResultCode};

/// Bytes before the data of a multi-request response item: `len u16 | status u8`.
const ITEM_HEADER_LEN: usize = 3;

/// Where a request stopped on an operation ([`Flow::Suspend`]), and where
/// [`dispatch`] takes it up again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Position {
    /// The request itself (no envelope).
    Request,
    /// Item `index` of a multi-request, whose answers before it take `body_len` bytes.
    Item {
        /// The item.
        index: u16,
        /// Bytes of the response body the items before it wrote.
        body_len: usize,
    },
    /// Command `index` of the single packet the request opened (its commands at the end
    /// of the response buffer, [`crate::packets::Opened`]), whose answers before it take
    /// `body_len` bytes.
    #[cfg(feature = "packets")]
    Packet {
        /// The command.
        index: u16,
        /// Bytes of the response body the commands before it wrote.
        body_len: usize,
    },
}

/// How [`dispatch`] left the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Flow {
    /// Done: the result code; the data is in the body.
    Done(ResultCode),
    /// Waiting on the operation in the context's cursor, at this position.
    Suspend(Position),
}

/// Where [`dispatch`] starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// A new request.
    Start,
    /// The operation the request waited on at `position` completed with `result` (the
    /// context's cursor counts it among the done ones if it succeeded).
    After {
        /// Where it waited.
        position: Position,
        /// What the operation gave.
        result: Result<(), ResultCode>,
    },
}

/// Executes `request` for the subject of `ctx`, writing response data into `body`, from
/// its start or from where it waited on an operation. An envelope (a resource declared
/// with [`ResourceDef::envelope`], such as the multi-request) is unwrapped here, in a
/// loop over its items: nothing recurses, and an envelope inside an envelope is refused
/// with `80`.
pub fn dispatch<O: ObjectSet + ?Sized>(
    objects: &mut O,
    ctx: &mut Context<'_>,
    request: &Request<'_>,
    body: &mut Body<'_>,
    resume: Resume,
) -> Flow {
    // Resumed: the request (or its envelope) was admitted when it started; it is not
    // checked again against a configuration it may have changed itself.
    let code = match resume {
        Resume::Start => match admit(objects, ctx, request) {
            Err(code) => Some(code),
            Ok((_, Some(Envelope::MultiRequest))) => {
                return run_multi(objects, ctx, request.payload, body, resume)
            }
            Ok((object, None)) => run_object(Some(object), ctx, request, body),
        },
        Resume::After {
            position: Position::Item { .. },
            ..
        } => return run_multi(objects, ctx, request.payload, body, resume),
        #[cfg(feature = "packets")]
        Resume::After {
            position: Position::Packet { .. },
            ..
        } => return run_packet(objects, ctx, body, resume),
        Resume::After {
            result: Err(code), ..
        } => Some(code),
        Resume::After { result: Ok(()), .. } => {
            run_object(objects.find(request.path.object), ctx, request, body)
        }
    };
    match code {
        // The handler opened a single packet: its commands run now.
        #[cfg(feature = "packets")]
        Some(code) if code.is_success() && ctx.packet.take().is_some() => {
            run_packet(objects, ctx, body, Resume::Start)
        }
        Some(code) => Flow::Done(code),
        None => Flow::Suspend(Position::Request),
    }
}

/// Runs the commands of the single packet the request opened (decision 7): a
/// multi-request list kept at the end of the response buffer by
/// [`crate::packets::open`], run with the rights of the packet's sender, its answers
/// written before it; the list is wiped once done.
#[cfg(feature = "packets")]
fn run_packet<O: ObjectSet + ?Sized>(
    objects: &mut O,
    ctx: &mut Context<'_>,
    body: &mut Body<'_>,
    resume: Resume,
) -> Flow {
    use crate::acl::{Origin, Security, Subject};
    use crate::packets::{Opened, TRAILER_LEN};
    // The area the packet was opened into: the body's room, as `Context::open_packet`
    // took it.
    let spare = body.remaining();
    let room = spare.min(usize::from(u16::MAX));
    let Some(opened) = body.spare().get(..room).and_then(Opened::read) else {
        return Flow::Done(ResultCode::InternalServerError);
    };
    let Some(from_end) = (spare - room)
        .checked_add(TRAILER_LEN)
        .and_then(|n| n.checked_add(opened.len))
    else {
        return Flow::Done(ResultCode::InternalServerError);
    };
    let resume = match resume {
        Resume::Start => {
            ctx.security = Security {
                subject: Subject::new(ctx.config(), opened.profile),
                origin: Origin::Packet,
            };
            ctx.io.done = 0;
            Resume::Start
        }
        Resume::After {
            position: Position::Packet { index, body_len },
            result,
        } => Resume::After {
            position: Position::Item { index, body_len },
            result,
        },
        Resume::After { .. } => return Flow::Done(ResultCode::InternalServerError),
    };
    let Some((mut head, tail)) = body.split_end(from_end) else {
        return Flow::Done(ResultCode::InternalServerError);
    };
    let Some(commands) = tail.get(..opened.len) else {
        return Flow::Done(ResultCode::InternalServerError);
    };
    // Where the commands are in the output buffer: an operation of theirs finds its
    // bytes there.
    let Some(offset) = head
        .response_offset()
        .and_then(|at| at.checked_add(spare.checked_sub(from_end)?))
    else {
        return Flow::Done(ResultCode::InternalServerError);
    };
    ctx.packet_area = Some((commands.as_ptr() as usize, commands.len(), offset));
    let flow = run_multi(objects, ctx, commands, &mut head, resume);
    ctx.packet_area = None;
    let flow = match flow {
        Flow::Suspend(Position::Item { index, body_len }) => {
            return Flow::Suspend(Position::Packet { index, body_len })
        }
        Flow::Suspend(_) => Flow::Done(ResultCode::InternalServerError),
        done => done,
    };
    let written = head.len();
    // The commands may hold secrets (a password being set).
    tail.fill(0);
    match body.advance(written) {
        Ok(()) => flow,
        Err(_) => Flow::Done(ResultCode::InternalServerError),
    }
}

/// Looks `request` up in its object's table and checks the subject's rights: the object
/// and the envelope the resource is, if any, or the result code that answers it.
///
/// Rights are decided before existence is revealed, except for data protected by its
/// bundle's ACL, whose bundle is only known once the instance is found.
fn admit<'o, O: ObjectSet + ?Sized>(
    objects: &'o mut O,
    ctx: &Context<'_>,
    request: &Request<'_>,
) -> Result<(&'o mut dyn Object, Option<Envelope>), ResultCode> {
    let path = request.path;
    let object = objects.find(path.object).ok_or(ResultCode::NotFound)?;
    let Some(def) = find_resource(object.resources(), path.resource, path.instance) else {
        return Err(refuse_unlisted(object, ctx, request));
    };
    let access = def.access(request.method);
    if access == acl::Access::Never {
        return Err(ResultCode::MethodNotAllowed);
    }
    let exists =
        def.instance_rule() != InstanceRule::Existing || object.instance_exists(ctx, path.instance);
    let by_bundle = matches!(access, acl::Access::Read | acl::Access::Write);
    if by_bundle && !exists {
        return Err(ResultCode::NotFound);
    }
    let bundle = match by_bundle {
        true => object.owning_bundle(ctx.config(), path.instance),
        false => None,
    };
    acl::check(ctx.config(), access, ctx.subject(), path.instance, || {
        bundle
    })?;
    if !exists {
        return Err(ResultCode::NotFound);
    }
    if !def.provides(request.method) {
        return Err(ResultCode::NotImplemented);
    }
    Ok((object, def.wraps()))
}

/// The answer to `request` on a resource its object has no table entry for: `84`, or
/// if the object declares the resource outside its table ([`Object::unlisted`]), the
/// refusal a table entry that provides no method gives, after the same access check.
#[cold]
#[inline(never)]
fn refuse_unlisted(object: &dyn Object, ctx: &Context<'_>, request: &Request<'_>) -> ResultCode {
    let path = request.path;
    match object.unlisted(path.resource, path.instance, request.method) {
        None => ResultCode::NotFound,
        Some(acl::Access::Never) => ResultCode::MethodNotAllowed,
        Some(access) => {
            match acl::check(ctx.config(), access, ctx.subject(), path.instance, || None) {
                Ok(()) => ResultCode::NotImplemented,
                Err(code) => code,
            }
        }
    }
}

/// Hands an admitted request to its object: its result code, or `None` if it stopped on
/// an operation (whatever it returned).
fn run_object(
    object: Option<&mut dyn Object>,
    ctx: &mut Context<'_>,
    request: &Request<'_>,
    body: &mut Body<'_>,
) -> Option<ResultCode> {
    ctx.io.next = 0;
    let code = match object {
        Some(object) => match object.handle(ctx, request, body) {
            Ok(code) | Err(code) => code,
        },
        None => ResultCode::NotFound,
    };
    ctx.io.pending.is_none().then_some(code)
}

/// Runs every item of a multi-request body in order, from the first one or from the
/// item that waited on an operation; the body is checked for framing before anything
/// runs.
fn run_multi<O: ObjectSet + ?Sized>(
    objects: &mut O,
    ctx: &mut Context<'_>,
    payload: &[u8],
    body: &mut Body<'_>,
    resume: Resume,
) -> Flow {
    let multi = match MultiRequest::parse(payload) {
        Ok(multi) => multi,
        Err(err) => return Flow::Done(err.result_code()),
    };
    let (first, mut result) = match resume {
        Resume::Start => {
            // No item runs unless every answer is sure to fit: a multi-request is never
            // half executed (its writes done, its answer lost). Too large: A0, like an
            // answer that does not fit, but before anything ran.
            if answers_bound(objects, ctx.config(), &multi) > body.spare().len() {
                return Flow::Done(ResultCode::InternalServerError);
            }
            (0, None)
        }
        Resume::After {
            position: Position::Item { index, body_len },
            result,
        } => {
            // The answers of the items before it are in the buffer already.
            if body.advance(body_len).is_err() {
                return Flow::Done(ResultCode::InternalServerError);
            }
            (usize::from(index), Some(result))
        }
        Resume::After { .. } => return Flow::Done(ResultCode::InternalServerError),
    };
    for (index, item) in multi.items().enumerate() {
        // The items before the one that waited ran before it.
        if index < first {
            continue;
        }
        let body_len = body.len();
        let Some((header, mut item_body)) = body.nested_after(ITEM_HEADER_LEN) else {
            return Flow::Done(ResultCode::InternalServerError);
        };
        let resumed = result.take();
        #[cfg(feature = "packets")]
        {
            ctx.in_item = true;
        }
        let status = match (resumed, Request::parse_frame(item.frame)) {
            (Some(Err(code)), _) => code,
            // Admitted when it started.
            (Some(Ok(())), Ok(inner)) => {
                let object = objects.find(inner.path.object);
                match run_object(object, ctx, &inner, &mut item_body) {
                    Some(code) => code,
                    None => return suspend(index, body_len),
                }
            }
            (None, Ok(inner)) => match admit(objects, ctx, &inner) {
                Err(code) => code,
                // One level of envelope.
                Ok((_, Some(_))) => ResultCode::BadRequest,
                Ok((object, None)) => match run_object(Some(object), ctx, &inner, &mut item_body) {
                    Some(code) => code,
                    None => return suspend(index, body_len),
                },
            },
            (_, Err(err)) => err.result_code(),
        };
        #[cfg(feature = "packets")]
        {
            ctx.in_item = false;
        }
        // The next item starts with no operation done.
        ctx.io.done = 0;
        let data_len = if status.is_success() {
            item_body.len()
        } else {
            // Wiped, not just left out: it may be a secret read before the item failed.
            item_body.wipe();
            0
        };
        header[2] = status.as_u8();
        let Ok(item_len) = emit_response_item_len(header, 1 + data_len) else {
            return Flow::Done(ResultCode::InternalServerError);
        };
        if body.advance(item_len).is_err() {
            return Flow::Done(ResultCode::InternalServerError);
        }
        if item.stops_after(status.as_u8()) {
            break;
        }
    }
    Flow::Done(ResultCode::Ok)
}

/// Item `index` of a multi-request waits on an operation.
fn suspend(index: usize, body_len: usize) -> Flow {
    match u16::try_from(index) {
        Ok(index) => Flow::Suspend(Position::Item { index, body_len }),
        // More items than a frame can hold: unreachable, and refused rather than wrapped.
        Err(_) => Flow::Done(ResultCode::InternalServerError),
    }
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
                    let bound = if def.is_some_and(|def| def.wraps().is_some()) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::Access;
    use crate::config::Config;
    use crate::object::{FrameLimits, HandlerResult, ResourceDef};
    use crate::session::{Channel, ChannelKind};
    use crate::time::Instant;
    use crate::wire::{Method, ABSENT};
    use crate::Device;

    /// Resource 0 in the table; 1 (GET by a user) and 2 (GET by anyone) kept out of it.
    struct Sparse;

    impl Object for Sparse {
        fn id(&self) -> u16 {
            32770
        }

        fn resources(&self) -> &'static [ResourceDef] {
            const T: &[ResourceDef] = &[ResourceDef::single(0).get(Access::Anyone)];
            T
        }

        fn unlisted(&self, resource: u16, instance: u16, method: Method) -> Option<Access> {
            match (resource, instance, method) {
                (1 | 2, 1..=0xFFFE, _) => None,
                (1, _, Method::Get) => Some(Access::User),
                (2, _, Method::Get) => Some(Access::Anyone),
                (1 | 2, _, _) => Some(Access::Never),
                _ => None,
            }
        }

        fn handle(
            &mut self,
            _ctx: &mut Context<'_>,
            _req: &Request<'_>,
            _body: &mut Body<'_>,
        ) -> HandlerResult {
            Ok(ResultCode::Ok)
        }
    }

    #[test]
    fn a_resource_kept_out_of_the_table_is_refused_like_an_entry_that_provides_nothing() {
        let limits = FrameLimits {
            max_request: 64,
            max_response: 64,
        };
        let mut device = Device::new((Sparse,), Config::default(), Config::reset, limits);
        let channel = Channel::new(1, ChannelKind::WebSocket);
        let mut status = |method: Method, instance: u16, resource: u16| {
            let [i0, i1] = instance.to_be_bytes();
            let frame = [method as u8, 0x80, 0x02, i0, i1, 0, resource as u8];
            let ins = if method == Method::Get { 0xCA } else { 0xDA };
            let mut request = [0xA2, ins, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0];
            request[5..].copy_from_slice(&frame);
            let mut out = [0u8; 64];
            let outcome = device.handle(channel, &request, Instant::ZERO, &mut out);
            assert!(outcome.len > 0);
            out[0]
        };
        assert_eq!(status(Method::Get, ABSENT, 0), 0x00, "in the table");
        assert_eq!(
            status(Method::Get, ABSENT, 1),
            0x81,
            "anonymous, user right"
        );
        assert_eq!(status(Method::Get, 0, 2), 0xA1, "anyone, not provided");
        assert_eq!(status(Method::Put, ABSENT, 1), 0x85, "not declared");
        assert_eq!(status(Method::Get, 1, 2), 0x84, "no such instance");
        assert_eq!(status(Method::Get, ABSENT, 3), 0x84, "no such resource");
    }
}
