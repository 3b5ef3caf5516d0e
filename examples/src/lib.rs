//! Runnable examples: `cargo run -p examples --example sans_io` and
//! `cargo run -p examples --example custom_object`.
