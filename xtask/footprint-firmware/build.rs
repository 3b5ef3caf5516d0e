use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    std::fs::copy("memory.x", out.join("memory.x")).unwrap();
    std::fs::copy("device.x", out.join("device.x")).unwrap();
    std::fs::copy("declarations.x", out.join("declarations.x")).unwrap();
    // The report data of `src/declarations.rs`, out of the image.
    println!("cargo:rustc-link-arg=-Tdeclarations.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=device.x");
    println!("cargo:rerun-if-changed=declarations.x");
}
