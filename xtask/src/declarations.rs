//! The flash the objects' declaration tables take in the footprint firmware, per declared
//! resource (`cargo xtask footprint`), read from its ELF.
//!
//! Counted, for each object of the firmware (`xtask/footprint-firmware/src/
//! declarations.rs` lists them; that build fails if they are not the firmware's objects):
//! - its resource table, the one `Object::resources` returns (`LISTED`, or `RESOURCES`
//!   when every resource is listed): 6 bytes an entry;
//! - its unlisted resources, those `Object::unlisted` answers (`UNLISTED`): 2 bytes each;
//! - the run-time lines of its settings (`SETTING_LINES`), which the settings handlers
//!   search: 6 bytes each, the value's encoding and legal values (enum value sets, bit
//!   masks, maximums) inside each line's `Kind`.
//!
//! Each table is taken where the linker placed it: at the address the firmware's
//! `DECLARATIONS` gives (pointers the linker resolved, in a section that is not loaded:
//! neither flash nor RAM), for as many bytes as its `size_of_val`. It must lie in the
//! flash sections, and the firmware's code must refer to it there (a literal of its
//! address or of an entry's). Its bytes are counted once per copy of them code refers to
//! (a table the compiler duplicated costs twice), and a table two objects share, once.
//! That the tables are in the image for the objects and not for this report, `footprint`
//! checks too: the firmware built without its `DECLARATIONS` has the same flash.
//!
//! Not counted: code (the handlers' `match`es on resource ids, `answer_bound`, dispatch,
//! the settings' checks), the full `RESOURCES` and `SETTINGS` tables (constants the
//! compiler builds the others from; they are not in the firmware), the blobs' table
//! (`BLOBS`, in a build with a settings group only), padding between tables.
//!
//! Resources declared: the distinct resource ids of an object's resource table and
//! unlisted resources (computed by the compiler, `Declared::resources` in the firmware):
//! a multi-instance object's resource counts once whatever its instances, and a resource
//! two entries declare (`/1029//4` without and with an instance) once; the create and
//! delete entry (resource 65535) counts as one.

use std::collections::HashSet;
use std::path::Path;

use crate::Result;

/// The tables of each [`Declared`], in order: the firmware's `Declared::tables`.
pub const TABLE_NAMES: [&str; 3] = ["resource table", "unlisted", "setting lines"];

/// The goal: bytes of declaration tables per declared resource, at most.
pub const GOAL: f64 = 24.0;

/// Bytes of one firmware `Declared`: eight little-endian 32-bit words (object id,
/// resources, then the address and the size of each table).
const DECLARED_LEN: usize = 32;

/// One object's declarations as the firmware gives them.
#[derive(Debug, PartialEq)]
pub struct Declared {
    pub object: u32,
    pub resources: u32,
    /// The address and the size in bytes of each of [`TABLE_NAMES`].
    pub tables: [(u64, u64); 3],
}

/// The firmware's `DECLARATIONS` (the contents of its section `.declarations`).
pub fn parse_declarations(data: &[u8]) -> Result<Vec<Declared>> {
    if data.is_empty() || !data.len().is_multiple_of(DECLARED_LEN) {
        return Err(format!(
            "the firmware's declarations are {} bytes: not records of {DECLARED_LEN}",
            data.len()
        ));
    }
    Ok(data
        .chunks_exact(DECLARED_LEN)
        .map(|record| {
            let word = |i: usize| {
                let bytes: [u8; 4] = record[4 * i..4 * i + 4].try_into().unwrap();
                u32::from_le_bytes(bytes)
            };
            let table = |i: usize| (u64::from(word(i)), u64::from(word(i + 1)));
            Declared {
                object: word(0),
                resources: word(1),
                tables: [table(2), table(4), table(6)],
            }
        })
        .collect())
}

/// A flash section of the firmware: its name, address and contents.
#[derive(Clone, Copy)]
pub struct Section<'a> {
    pub name: &'a str,
    pub addr: u64,
    pub data: &'a [u8],
}

impl Section<'_> {
    fn end(&self) -> u64 {
        self.addr + self.data.len() as u64
    }
}

/// What one object's tables take in flash.
#[derive(Debug, PartialEq)]
pub struct ObjectTables {
    pub object: u32,
    pub resources: u64,
    /// The bytes counted of each of [`TABLE_NAMES`].
    pub bytes: [u64; 3],
}

/// Bytes per resource (0 without resources).
pub fn per_resource(bytes: u64, resources: u64) -> f64 {
    match resources {
        0 => 0.0,
        n => bytes as f64 / n as f64,
    }
}

/// The 4-byte-aligned words of the code (`.text`: its literal pools): (value, address),
/// sorted by value.
fn code_words(sections: &[Section]) -> Vec<(u64, u64)> {
    let mut words = Vec::new();
    for section in sections.iter().filter(|s| s.name == ".text") {
        let skip = (4 - section.addr % 4) % 4;
        let data = section.data.get(skip as usize..).unwrap_or(&[]);
        for (i, word) in data.chunks_exact(4).enumerate() {
            let value = u32::from_le_bytes(word.try_into().unwrap());
            words.push((u64::from(value), section.addr + skip + 4 * i as u64));
        }
    }
    words.sort_unstable();
    words
}

/// Whether one of the code's `words` is an address of `at..at + len`: the table's start
/// or an entry's. (Not its end: that is where the next data starts.)
fn referred_to(words: &[(u64, u64)], at: u64, len: u64) -> bool {
    let first = words.partition_point(|&(value, _)| value < at);
    words.get(first).is_some_and(|&(value, _)| value < at + len)
}

/// The addresses in `sections` of `bytes` (every copy of a table).
fn copies(sections: &[Section], bytes: &[u8]) -> Vec<u64> {
    let mut found = Vec::new();
    for section in sections {
        for (i, window) in section.data.windows(bytes.len()).enumerate() {
            if window == bytes {
                found.push(section.addr + i as u64);
            }
        }
    }
    found
}

/// Tables shorter than this are not searched for copies: their bytes may occur in other
/// data by chance.
const COPY_SEARCH_MIN: u64 = 16;

/// What the tables of `declared` take in the flash `sections` (see the module).
pub fn measure(declared: &[Declared], sections: &[Section]) -> Result<Vec<ObjectTables>> {
    let words = code_words(sections);
    let mut counted = HashSet::new();
    let mut objects = Vec::new();
    for object in declared {
        let mut bytes = [0; 3];
        for (i, &(at, len)) in object.tables.iter().enumerate() {
            if len == 0 {
                continue;
            }
            let what = || {
                format!(
                    "object {}: its {} ({len} bytes at {at:#x})",
                    object.object, TABLE_NAMES[i]
                )
            };
            let section = sections
                .iter()
                .find(|s| s.addr <= at && at + len <= s.end())
                .ok_or_else(|| format!("{} is not in the flash sections", what()))?;
            if !referred_to(&words, at, len) {
                return Err(format!(
                    "{} in {}: no code refers to it (it is in the firmware for the report only?)",
                    what(),
                    section.name
                ));
            }
            let start = (at - section.addr) as usize;
            let table = &section.data[start..start + len as usize];
            let found = match len >= COPY_SEARCH_MIN {
                true => copies(sections, table),
                false => vec![at],
            };
            for copy in found {
                if referred_to(&words, copy, len) && counted.insert(copy) {
                    bytes[i] += len;
                }
            }
        }
        objects.push(ObjectTables {
            object: object.object,
            resources: u64::from(object.resources),
            bytes,
        });
    }
    Ok(objects)
}

/// The declaration tables of the footprint firmware `elf`: its `.declarations` and its
/// flash sections (vector table, code, read-only data).
pub fn read(elf: &Path) -> Result<Vec<ObjectTables>> {
    use object::{Object, ObjectSection};
    let data = std::fs::read(elf).map_err(|e| format!("{}: {e}", elf.display()))?;
    let file = object::File::parse(&*data).map_err(|e| format!("{}: {e}", elf.display()))?;
    let contents = |name: &str| -> Result<(u64, &[u8])> {
        let section = file
            .section_by_name(name)
            .ok_or_else(|| format!("{}: no section {name}", elf.display()))?;
        let bytes = section
            .data()
            .map_err(|e| format!("{}: {name}: {e}", elf.display()))?;
        Ok((section.address(), bytes))
    };
    let declared = parse_declarations(contents(".declarations")?.1)?;
    let mut sections = Vec::new();
    for name in [".vector_table", ".text", ".rodata"] {
        let (addr, data) = contents(name)?;
        sections.push(Section { name, addr, data });
    }
    measure(&declared, &sections)
}

/// The report's table of `objects` (markdown), its total line and whether the goal is met;
/// the bytes per resource of the whole.
pub fn report(objects: &[ObjectTables]) -> (String, f64) {
    let name = |object: u32| match object {
        3 => " Device",
        5 => " Firmware",
        1024 => " Interface",
        1025 => " Profile",
        1027 => " Target",
        1028 => " Bundle",
        1029 => " Variable",
        _ => "",
    };
    let mut text = String::from(
        "| object | resources declared | resource table | unlisted | setting lines | table bytes | bytes per resource |\n|---|---|---|---|---|---|---|\n",
    );
    let row = |what: &str, resources: u64, bytes: [u64; 3]| {
        let total: u64 = bytes.iter().sum();
        format!(
            "| {what} | {resources} | {} | {} | {} | {total} | {:.1} |\n",
            bytes[0],
            bytes[1],
            bytes[2],
            per_resource(total, resources)
        )
    };
    let mut sum = [0; 3];
    for object in objects {
        text += &row(
            &format!("{}{}", object.object, name(object.object)),
            object.resources,
            object.bytes,
        );
        for (total, bytes) in sum.iter_mut().zip(object.bytes) {
            *total += bytes;
        }
    }
    let resources = objects.iter().map(|o| o.resources).sum();
    text += &row("total", resources, sum);
    let whole = per_resource(sum.iter().sum(), resources);
    let met = match whole <= GOAL {
        true => "met",
        false => "NOT met",
    };
    text += &format!("\n{whole:.1} bytes per declared resource: goal ≤ {GOAL} {met}\n");
    (text, whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(words: [u32; 8]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    #[test]
    fn declarations_are_records_of_eight_words() {
        let mut data = record([1024, 84, 0x5f28, 174, 0x6784, 110, 0x6608, 102]);
        data.extend(record([3, 12, 0x5ee0, 72, 1, 0, 2, 0]));
        assert_eq!(
            parse_declarations(&data),
            Ok(vec![
                Declared {
                    object: 1024,
                    resources: 84,
                    tables: [(0x5f28, 174), (0x6784, 110), (0x6608, 102)],
                },
                Declared {
                    object: 3,
                    resources: 12,
                    tables: [(0x5ee0, 72), (1, 0), (2, 0)],
                },
            ])
        );
        assert!(parse_declarations(&data[..40]).is_err());
        assert!(parse_declarations(&[]).is_err());
    }

    /// A firmware: code at 0x100 whose literal pool holds `literals`, read-only data at
    /// 0x200.
    fn measured(
        literals: &[u32],
        rodata: &[u8],
        declared: &[Declared],
    ) -> Result<Vec<ObjectTables>> {
        let mut text = vec![0x00, 0xbf, 0x70, 0x47]; // nop; bx lr
        text.extend(literals.iter().flat_map(|w| w.to_le_bytes()));
        let sections = [
            Section {
                name: ".text",
                addr: 0x100,
                data: &text,
            },
            Section {
                name: ".rodata",
                addr: 0x200,
                data: rodata,
            },
        ];
        measure(declared, &sections)
    }

    fn object(tables: [(u64, u64); 3]) -> Declared {
        Declared {
            object: 1027,
            resources: 10,
            tables,
        }
    }

    /// 18 distinct bytes, then 18 others, then the first 18 again.
    fn rodata() -> Vec<u8> {
        let table: Vec<u8> = (1..=18).collect();
        let other: Vec<u8> = (101..=118).collect();
        [table.clone(), other, table].concat()
    }

    #[test]
    fn a_table_counts_once_per_copy_something_refers_to() {
        let tables = [(0x200, 18), (0x212, 18), (1, 0)];
        // The first table's second copy (0x224) is referred to by nothing: not counted.
        let found = measured(&[0x200, 0x212], &rodata(), &[object(tables)]).unwrap();
        assert_eq!(found[0].bytes, [18, 18, 0]);
        // Code refers to both copies (an entry of the second one): both counted.
        let found = measured(&[0x200, 0x212, 0x22a], &rodata(), &[object(tables)]).unwrap();
        assert_eq!(found[0].bytes, [36, 18, 0]);
    }

    #[test]
    fn a_table_no_code_refers_to_or_out_of_flash_is_refused() {
        let tables = [(0x200, 18), (0x212, 18), (1, 0)];
        let err = measured(&[0x200], &rodata(), &[object(tables)]).unwrap_err();
        assert!(err.contains("unlisted") && err.contains("no code"), "{err}");
        // The second table's end (where the copy starts) is not the second table.
        assert!(measured(&[0x200, 0x224], &rodata(), &[object(tables)]).is_err());
        // Nor is a pointer in the read-only data code.
        let mut pointer = rodata();
        pointer[0x24..0x28].copy_from_slice(&0x212u32.to_le_bytes());
        assert!(measured(&[0x200], &pointer, &[object(tables)]).is_err());
        assert!(measured(&[0x200, 0x223], &rodata(), &[object(tables)]).is_ok());
        let outside = [(0x200, 18), (0x230, 18), (1, 0)];
        let err = measured(&[0x200, 0x230], &rodata(), &[object(outside)]).unwrap_err();
        assert!(err.contains("not in the flash"), "{err}");
    }

    #[test]
    fn a_table_two_objects_share_counts_once() {
        let tables = [(0x212, 18), (1, 0), (2, 0)];
        let found = measured(&[0x212], &rodata(), &[object(tables), object(tables)]).unwrap();
        assert_eq!((found[0].bytes, found[1].bytes), ([18, 0, 0], [0; 3]));
    }

    #[test]
    fn the_report_gives_each_object_the_total_and_the_goal() {
        let objects = [
            ObjectTables {
                object: 3,
                resources: 12,
                bytes: [72, 0, 0],
            },
            ObjectTables {
                object: 1024,
                resources: 84,
                bytes: [174, 110, 102],
            },
        ];
        let (text, whole) = report(&objects);
        assert!(
            text.contains("| 3 Device | 12 | 72 | 0 | 0 | 72 | 6.0 |"),
            "{text}"
        );
        assert!(text.contains("| 1024 Interface | 84 | 174 | 110 | 102 | 386 | 4.6 |"));
        assert!(text.contains("| total | 96 | 246 | 110 | 102 | 458 | 4.8 |"));
        assert!(text.contains("goal ≤ 24 met"), "{text}");
        assert!((whole - 458.0 / 96.0).abs() < 1e-9);
        let heavy = [ObjectTables {
            object: 9,
            resources: 1,
            bytes: [25, 0, 0],
        }];
        assert!(report(&heavy).0.contains("| 9 | 1 |"));
        assert!(report(&heavy).0.contains("NOT met"));
    }
}
