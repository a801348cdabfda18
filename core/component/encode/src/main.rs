//! Wraps the `delimiter-component` core module into a WebAssembly component.
//!
//! Usage: `delimiter-component-encode [MODULE] [OUTPUT]`, by default
//! `target/wasm32-unknown-unknown/component/delimiter_component.wasm` to
//! `target/delimiter.wasm` (under the workspace root, or `$CARGO_TARGET_DIR`).
//! `just component` runs it after building the module.
//!
//! The module is built for wasm32-unknown-unknown, so it has no WASI imports
//! and needs no adapter: wit-bindgen's embedded `component-type` section is
//! all the encoder needs. The result is validated, and its imports checked:
//! the only instances with functions it may import are `delimiter:quota`'s
//! `store` (the caller's storage); `types` carries only types.

use std::path::PathBuf;
use std::process::ExitCode;
use wit_component::ComponentEncoder;

/// What the component may import: the interfaces of our own package.
const ALLOWED_IMPORTS: &[&str] = &["delimiter:quota/types@0.1.0", "delimiter:quota/store@0.1.0"];

fn main() -> ExitCode {
    match run() {
        Ok(summary) => {
            // A status line, like cargo's: on stderr, so that recipes that
            // depend on `just component` keep their stdout to themselves.
            eprintln!("{summary}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("delimiter-component-encode: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<String, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../..");
    let root = root.canonicalize().unwrap_or(root);
    // Cargo's target directory: `target/` unless CARGO_TARGET_DIR says otherwise.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| root.join(dir))
        .unwrap_or_else(|| root.join("target"));
    let mut args = std::env::args_os().skip(1);
    let module = args.next().map(PathBuf::from).unwrap_or_else(|| {
        target.join("wasm32-unknown-unknown/component/delimiter_component.wasm")
    });
    let output = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| target.join("delimiter.wasm"));

    let bytes = std::fs::read(&module).map_err(|e| {
        format!(
            "cannot read {}: {e} (build it first: cargo build -p delimiter-component \
             --target wasm32-unknown-unknown --profile component)",
            module.display()
        )
    })?;
    let component = ComponentEncoder::default()
        .module(&bytes)
        .map_err(|e| format!("{}: not a wit-bindgen module: {e:#}", module.display()))?
        .validate(true)
        .encode()
        .map_err(|e| format!("encoding {}: {e:#}", module.display()))?;

    let imports = component_imports(&component)?;
    if let Some(bad) = imports
        .iter()
        .find(|name| !ALLOWED_IMPORTS.contains(&name.as_str()))
    {
        return Err(format!(
            "the component imports {bad:?}; only {ALLOWED_IMPORTS:?} are allowed \
             (a WASI import means it was built for the wrong target)"
        ));
    }

    // Written only when it changed: delimiter-embed's build script watches
    // this file, and a fresh mtime on the same bytes rebuilt embed and every
    // crate on it at each `just component` (minutes of CI's `just test`).
    if std::fs::read(&output).ok().as_deref() != Some(&component[..]) {
        std::fs::write(&output, &component)
            .map_err(|e| format!("cannot write {}: {e}", output.display()))?;
    }
    Ok(format!(
        "{}: {} bytes (module {} bytes), imports {}",
        output.display(),
        component.len(),
        bytes.len(),
        imports.join(", ")
    ))
}

/// The names of the component's top-level imports.
fn component_imports(component: &[u8]) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(component) {
        let payload = payload.map_err(|e| format!("re-reading the component: {e}"))?;
        match payload {
            wasmparser::Payload::ModuleSection { .. }
            | wasmparser::Payload::ComponentSection { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            wasmparser::Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let import = import.map_err(|e| format!("re-reading imports: {e}"))?;
                    names.push(import.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(names)
}
