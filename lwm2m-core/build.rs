//! The capacities of the configuration, chosen by the firmware at build time.
//!
//! `LWM2M_PRESET` picks a preset (`large`, the default, or `small`); each capacity can be
//! set on its own with `LWM2M_<NAME>` (for example `LWM2M_MAX_VARIABLES=48`). A firmware
//! sets them in its `.cargo/config.toml`:
//!
//! ```toml
//! [env]
//! LWM2M_PRESET = "small"
//! LWM2M_MAX_VARIABLES = "48"
//! ```
//!
//! The values are written to `$OUT_DIR/capacity.rs`, included by `src/config/mod.rs`.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

/// A capacity: its name, what it bounds, its small and large values, and its range.
struct Capacity {
    name: &'static str,
    doc: &'static str,
    small: usize,
    large: usize,
    min: usize,
    max: usize,
}

const CAPACITIES: &[Capacity] = &[
    Capacity {
        name: "MAX_PROFILES",
        doc: "Largest number of profiles (anonymous, admin and supervisor included).",
        small: 8,
        large: 16,
        min: 3,
        max: 255,
    },
    Capacity {
        name: "MAX_BUNDLES",
        doc: "Largest number of bundles.",
        small: 8,
        large: 16,
        min: 1,
        max: 255,
    },
    Capacity {
        name: "MAX_ACL_ENTRIES",
        doc: "Largest number of ACL entries of one bundle.",
        small: 8,
        large: 8,
        min: 1,
        max: 255,
    },
    Capacity {
        name: "MAX_VARIABLES",
        doc: "Largest number of variables.",
        small: 32,
        large: 64,
        min: 1,
        max: 255,
    },
    Capacity {
        name: "NAME_LEN",
        doc: "Longest profile or bundle name (the client's login field is 16 bytes).",
        small: 16,
        large: 16,
        // The factory profiles' names ("supervisor") must fit.
        min: 10,
        max: 16,
    },
    Capacity {
        name: "META_LEN",
        doc: "Longest variable meta data (`\"name:unit\"`).",
        small: 16,
        large: 32,
        min: 1,
        max: 255,
    },
    Capacity {
        name: "UNIT_LEN",
        doc: "Longest variable unit (`/1029/{id}/9`).",
        small: 8,
        large: 8,
        min: 1,
        max: 255,
    },
    Capacity {
        name: "VALUE_LEN",
        doc: "Largest value of a variable stored in the device itself (in-Tap domains).",
        small: 8,
        large: 64,
        min: 1,
        max: 255,
    },
    Capacity {
        name: "SETTINGS_BYTES",
        doc: "Bytes of room for the configuration settings (`config::settings`): every \
              setting the objects of the build declare must fit, at its largest \
              (`lwm2m-objects` checks it when it is built).",
        small: 680,
        large: 2048,
        min: 64,
        max: 65535,
    },
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=LWM2M_PRESET");
    let preset = env::var("LWM2M_PRESET").unwrap_or_else(|_| "large".into());
    let small = match preset.as_str() {
        "small" => true,
        "large" => false,
        other => panic!("LWM2M_PRESET={other}: expected `small` or `large`"),
    };
    let mut out = String::new();
    writeln!(out, "/// The capacity preset this build started from.").unwrap();
    writeln!(out, "pub const PRESET: &str = {preset:?};").unwrap();
    for c in CAPACITIES {
        let var = format!("LWM2M_{}", c.name);
        println!("cargo:rerun-if-env-changed={var}");
        let value = match env::var(&var) {
            Ok(text) => text
                .trim()
                .parse::<usize>()
                .unwrap_or_else(|_| panic!("{var}={text}: not a number")),
            Err(_) if small => c.small,
            Err(_) => c.large,
        };
        assert!(
            (c.min..=c.max).contains(&value),
            "{var}={value}: must be within {}..={}",
            c.min,
            c.max
        );
        writeln!(
            out,
            "#[doc = {:?}]\n#[doc = \"\"]\n#[doc = \"Set by `{var}` at build time (small preset {}, large {}).\"]\npub const {}: usize = {value};",
            c.doc, c.small, c.large, c.name
        )
        .unwrap();
    }
    let path = PathBuf::from(env::var("OUT_DIR").unwrap()).join("capacity.rs");
    fs::write(path, out).unwrap();
}
