//! Every configuration value the client can read is written back at its declared
//! maximum size, over a real socket to the desktop device, and none answers `A7`
//! (no room): each has room of its own.

mod common;
use common::*;

use lwm2m_core::acl::Access;
use lwm2m_core::wire::Method;
use lwm2m_objects::settings::{Kind, SettingDef};
use lwm2m_objects::{interface, target};

/// The largest value `kind` accepts, and what GET answers after it was written.
fn largest(kind: Kind) -> (Vec<u8>, Vec<u8>) {
    let value = match kind {
        Kind::Ascii(n) => vec![b'a'; usize::from(n)],
        Kind::Bytes(n) => vec![0x5a; usize::from(n)],
        Kind::Fixed(n) => vec![0x01; usize::from(n)],
        Kind::U8 => vec![0x7f],
        Kind::U16 => vec![0x12, 0x34],
        Kind::U32 => vec![0x12, 0x34, 0x56, 0x78],
        Kind::U16Max(max) => max.to_be_bytes().to_vec(),
        Kind::Enum(values) => vec![values.largest()],
        Kind::Flags8(bits) => vec![bits],
        Kind::Flags16(bits) => bits.to_be_bytes().to_vec(),
        Kind::MaskReadAsOne(bits) => {
            let highest = 0x80u8 >> bits.leading_zeros();
            return (vec![bits], vec![highest]);
        }
        Kind::ProfileId => vec![0xff, 0xff],
        Kind::BundleId => vec![0x00, 0x00],
        // The serial/Modbus record followed by as many USB aliases as fit.
        Kind::ProtocolConfiguration => vec![0; 8 + 5 * 24],
    };
    (value.clone(), value)
}

#[test]
fn every_setting_written_at_its_largest_fits() {
    let port = Port::start(&[], &[]);
    let mut admin = port.connect();
    assert_eq!(tx(&mut admin, &login("admin", "admin")), "009000");
    let tables: [(u16, &[SettingDef]); 2] = [
        (interface::ID, interface::SETTINGS),
        (target::ID, target::SETTINGS),
    ];
    let mut written = 0;
    for (object, table) in tables {
        for line in table {
            if line.def.access(Method::Put) == Access::Never
                || line.def.access(Method::Get) == Access::Never
            {
                continue;
            }
            let (value, read_back) = largest(line.kind);
            let path = format!("{object:04x}ffff{:04x}", line.def.id);
            let answer = tx(&mut admin, &format!("03{path}{}", to_hex(&value)));
            assert_eq!(
                answer, "009000",
                "PUT /{object}//{} ({:?})",
                line.def.id, line.kind
            );
            let answer = tx(&mut admin, &format!("01{path}"));
            assert_eq!(
                answer,
                format!("00{}9000", to_hex(&read_back)),
                "GET /{object}//{}",
                line.def.id
            );
            written += 1;
        }
    }
    assert!(written > 50, "{written} settings written");
    // All of them are still there, and the configuration saves.
    assert_eq!(tx(&mut admin, "020400ffff000a"), "009000");
}
