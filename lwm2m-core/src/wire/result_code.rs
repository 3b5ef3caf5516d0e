//! Result codes: the status byte that starts every response (`protocol.md` §3.2).
//!
//! This enum is the only error vocabulary that crosses the wire: every layer maps its
//! failures onto one of these.

macro_rules! result_codes {
    ($($(#[$doc:meta])* $name:ident = $value:literal,)*) => {
        /// A response status byte. Bit 7 clear means success.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        #[repr(u8)]
        pub enum ResultCode {
            $($(#[$doc])* $name = $value,)*
        }

        impl ResultCode {
            /// Every code the client knows, in wire order.
            pub const ALL: &'static [ResultCode] = &[$(ResultCode::$name,)*];

            /// The code for a status byte, `None` for a byte the protocol does not define.
            pub const fn from_u8(byte: u8) -> Option<ResultCode> {
                match byte {
                    $($value => Some(ResultCode::$name),)*
                    _ => None,
                }
            }
        }
    };
}

result_codes! {
    /// The request was successful.
    Ok = 0x00,
    /// 2.01: create succeeded.
    Created = 0x41,
    /// 2.02: delete succeeded.
    Deleted = 0x42,
    /// 2.04: update succeeded.
    Changed = 0x44,
    /// 2.05: content returned.
    Content = 0x45,
    /// The device is busy (counts as success: bit 7 is clear).
    Busy = 0x46,
    /// 4.00: malformed frame, wrong CLA/INS, `Lc` mismatch, unknown method.
    BadRequest = 0x80,
    /// 4.01: the current profile has no right for this request.
    Unauthorized = 0x81,
    /// 4.04: unknown object, instance or resource.
    NotFound = 0x84,
    /// 4.05: the resource does not support this method.
    MethodNotAllowed = 0x85,
    /// 4.06: body of the wrong size or value out of range; bad credentials.
    NotAcceptable = 0x86,
    /// Not available with the current configuration.
    ResourceLocked = 0x87,
    /// 5.00: internal error (e.g. the answer does not fit the response buffer).
    InternalServerError = 0xA0,
    /// 5.01: resource known but not implemented by this build.
    NotImplemented = 0xA1,
    /// 5.03: try later (login locked out after failed attempts).
    ServiceUnavailable = 0xA3,
    /// Writing non-volatile memory failed.
    NvmError = 0xA4,
    /// The target could not be reached.
    UnableToConnectToTarget = 0xA5,
    /// Target power failure.
    TargetPowerFailure = 0xA6,
    /// Non-volatile memory is full.
    NvmFull = 0xA7,
    /// Another interlocutor owns the session.
    DeviceUnavailable = 0xA8,
    /// Target protocol error.
    TargetProtocolError = 0xB0,
    /// Target protocol busy.
    TargetProtocolBusy = 0xB1,
    /// Target protocol error ("real").
    TargetProtocolReal = 0xB2,
    /// Target protocol parameters are not valid.
    TargetProtocolWrongParam = 0xB3,
    /// Target protocol is forbidden.
    TargetProtocolForbidden = 0xB4,
    /// Unexpected target data (e.g. CRC error).
    TargetProtocolData = 0xB5,
    /// Target communication error.
    TargetProtocolCom = 0xB6,
    /// Target communication lost.
    TargetProtocolLostCom = 0xB7,
    /// Target protocol invalid parameter.
    TargetProtocolParam = 0xB8,
    /// Internal error in target communication.
    TargetProtocolInt = 0xB9,
    /// A command did not return the expected result code.
    TargetProtocolAbort = 0xBA,
    /// Target protocol not implemented.
    TargetProtocolNotImplemented = 0xBB,
}

impl ResultCode {
    /// The status byte.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// Success as the client judges it: bit 7 clear.
    pub const fn is_success(self) -> bool {
        (self as u8) & 0x80 == 0
    }
}

impl From<ResultCode> for u8 {
    fn from(code: ResultCode) -> u8 {
        code as u8
    }
}

impl core::fmt::Display for ResultCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?} (0x{:02X})", self, *self as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_of_the_client_round_trips() {
        // protocol.md §3.2 lists 32 codes.
        assert_eq!(ResultCode::ALL.len(), 32);
        for &code in ResultCode::ALL {
            assert_eq!(ResultCode::from_u8(code.as_u8()), Some(code));
        }
        assert_eq!(ResultCode::from_u8(0x01), None);
        assert_eq!(ResultCode::from_u8(0xA2), None);
    }

    #[test]
    fn success_is_bit_7_clear() {
        assert!(ResultCode::Busy.is_success());
        assert!(ResultCode::Content.is_success());
        assert!(!ResultCode::BadRequest.is_success());
        assert!(!ResultCode::TargetProtocolNotImplemented.is_success());
    }
}
