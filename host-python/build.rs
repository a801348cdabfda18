//! Points `include_bytes!` at the component (`target/delimiter.wasm`, under
//! `$CARGO_TARGET_DIR` if set, or `$DELIMITER_COMPONENT_WASM`), and fails
//! with a clear message when it has not been built yet.

use std::path::PathBuf;

fn main() {
    println!("cargo::rerun-if-env-changed=DELIMITER_COMPONENT_WASM");
    println!("cargo::rerun-if-env-changed=CARGO_TARGET_DIR");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = match std::env::var_os("DELIMITER_COMPONENT_WASM") {
        Some(path) => PathBuf::from(path),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(|dir| root.join(dir))
            .unwrap_or_else(|| root.join("target"))
            .join("delimiter.wasm"),
    };
    println!("cargo::rerun-if-changed={}", path.display());
    if !path.is_file() {
        eprintln!(
            "error: the Delimiter component {} is missing: run `just component` first \
             (it builds delimiter-component for wasm32-unknown-unknown and encodes it)",
            path.display()
        );
        std::process::exit(1);
    }
    let path = path.canonicalize().expect("canonical component path");
    println!(
        "cargo::rustc-env=DELIMITER_COMPONENT_WASM={}",
        path.display()
    );
}
