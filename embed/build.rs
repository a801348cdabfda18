//! Points `include_bytes!` at the component: `$DELIMITER_COMPONENT_WASM` if
//! set, else `delimiter.wasm` beside this file (where a packaged crate or an
//! sdist carries it), else the workspace's `target/delimiter.wasm` (under
//! `$CARGO_TARGET_DIR` if set), as `just component` builds it. Fails with a
//! clear message when there is none.

use std::path::PathBuf;

fn main() {
    println!("cargo::rerun-if-env-changed=DELIMITER_COMPONENT_WASM");
    println!("cargo::rerun-if-env-changed=CARGO_TARGET_DIR");
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let workspace = here.join("..");
    let candidates: Vec<PathBuf> = match std::env::var_os("DELIMITER_COMPONENT_WASM") {
        Some(path) => vec![PathBuf::from(path)],
        None => vec![
            std::env::var_os("CARGO_TARGET_DIR")
                .map(|dir| workspace.join(dir))
                .unwrap_or_else(|| workspace.join("target"))
                .join("delimiter.wasm"),
            here.join("delimiter.wasm"),
        ],
    };
    for path in &candidates {
        println!("cargo::rerun-if-changed={}", path.display());
    }
    let Some(path) = candidates.iter().find(|p| p.is_file()) else {
        eprintln!(
            "error: the Delimiter component is missing (looked at {}): run `just component` \
             first (it builds delimiter-component for wasm32-unknown-unknown and encodes it)",
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        std::process::exit(1);
    };
    let path = path.canonicalize().expect("canonical component path");
    println!(
        "cargo::rustc-env=DELIMITER_COMPONENT_WASM={}",
        path.display()
    );
}
