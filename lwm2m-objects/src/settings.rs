//! Plain configuration values served from declarative tables: one line per resource,
//! giving its encoding. Values are kept in the configuration image as written (ints at
//! their canonical width) and read back in the form the client's decoder expects.

use lwm2m_core::object::{Context, HandlerResult};
use lwm2m_core::wire::{Body, Method, Request, ResultCode};

use crate::codec;

/// How a value is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// ASCII text of at most this many bytes.
    Ascii(u8),
    /// Raw bytes, at most this many.
    Bytes(u8),
    /// Exactly this many raw bytes (IPv4 addresses, versions).
    Fixed(u8),
    /// One byte.
    U8,
    /// A u16, also accepted on one byte (the client writes some on one byte).
    U16,
    /// A u32, also accepted on fewer bytes.
    U32,
}

impl Kind {
    /// The value a resource has before anything was written.
    fn default_len(self) -> usize {
        match self {
            Kind::Ascii(_) | Kind::Bytes(_) => 0,
            Kind::Fixed(n) => usize::from(n),
            Kind::U8 => 1,
            Kind::U16 => 2,
            Kind::U32 => 4,
        }
    }
}

/// One configuration value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SettingDef {
    /// Resource id.
    pub resource: u16,
    /// Encoding.
    pub kind: Kind,
}

impl SettingDef {
    /// A table line.
    pub const fn new(resource: u16, kind: Kind) -> SettingDef {
        SettingDef { resource, kind }
    }
}

/// The line of `table` for `resource`.
pub fn find(table: &[SettingDef], resource: u16) -> Option<&SettingDef> {
    table.iter().find(|def| def.resource == resource)
}

/// Handles a request on a resource of `table` (object `object`); a resource that is not
/// in the table is not provided by this build (`A1`).
pub fn handle_in(
    table: &[SettingDef],
    ctx: &mut Context<'_>,
    object: u16,
    req: &Request<'_>,
    body: &mut Body<'_>,
) -> HandlerResult {
    match find(table, req.path.resource) {
        Some(def) => handle(ctx, object, def, req, body),
        None => Err(ResultCode::NotImplemented),
    }
}

/// Checks a written value against its kind and returns it in canonical form.
fn canonical(kind: Kind, payload: &[u8], scratch: &mut [u8; 4]) -> Result<usize, ResultCode> {
    let (value, width) = match kind {
        Kind::Ascii(max) => {
            let text = codec::ascii(payload, usize::from(max))?;
            return Ok(text.len());
        }
        Kind::Bytes(max) if payload.len() <= usize::from(max) => return Ok(payload.len()),
        Kind::Fixed(n) if payload.len() == usize::from(n) => return Ok(payload.len()),
        Kind::Bytes(_) | Kind::Fixed(_) => return Err(ResultCode::NotAcceptable),
        Kind::U8 => (codec::uint(payload, &[1])?, 1),
        Kind::U16 => (codec::uint(payload, &[1, 2])?, 2),
        Kind::U32 => (codec::uint(payload, &[1, 2, 4])?, 4),
    };
    scratch.copy_from_slice(&value.to_be_bytes());
    scratch.copy_within(4 - width.., 0);
    Ok(width)
}

/// GET, PUT and POST (POST writes like PUT: the client's "set") of a table value of
/// object `object`; the access check already passed.
pub fn handle(
    ctx: &mut Context<'_>,
    object: u16,
    def: &SettingDef,
    req: &Request<'_>,
    body: &mut Body<'_>,
) -> HandlerResult {
    match req.method {
        Method::Get => match ctx.config().setting(object, def.resource) {
            Some(value) => body.push(value)?,
            None => {
                for _ in 0..def.kind.default_len() {
                    body.push_u8(0)?;
                }
            }
        },
        Method::Put | Method::Post => {
            let mut scratch = [0u8; 4];
            let len = canonical(def.kind, req.payload, &mut scratch)?;
            let value = match def.kind {
                Kind::U8 | Kind::U16 | Kind::U32 => &scratch[..len],
                Kind::Ascii(_) => &req.payload[..len],
                Kind::Bytes(_) | Kind::Fixed(_) => req.payload,
            };
            ctx.config_mut().set_setting(object, def.resource, value)?;
        }
        Method::Delete => return Err(ResultCode::MethodNotAllowed),
    }
    Ok(ResultCode::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_stored_at_their_canonical_width() {
        let mut scratch = [0u8; 4];
        assert_eq!(canonical(Kind::U16, &[0x0a], &mut scratch), Ok(2));
        assert_eq!(&scratch[..2], &[0, 0x0a]);
        assert_eq!(canonical(Kind::U32, &[0x13, 0x88], &mut scratch), Ok(4));
        assert_eq!(scratch, [0, 0, 0x13, 0x88]);
        assert_eq!(
            canonical(Kind::U8, &[1, 2], &mut scratch),
            Err(ResultCode::NotAcceptable)
        );
    }

    #[test]
    fn text_and_bytes_are_bounded() {
        let mut scratch = [0u8; 4];
        assert_eq!(canonical(Kind::Ascii(4), b"Demo", &mut scratch), Ok(4));
        assert_eq!(
            canonical(Kind::Ascii(3), b"Demo", &mut scratch),
            Err(ResultCode::NotAcceptable)
        );
        assert_eq!(
            canonical(Kind::Fixed(4), &[192, 168, 1], &mut scratch),
            Err(ResultCode::NotAcceptable)
        );
        assert_eq!(canonical(Kind::Bytes(2), &[1, 2], &mut scratch), Ok(2));
    }
}
