//! The compiled component, cached on disk so that a process compiles it at
//! most once per machine rather than once per import.
//!
//! The file is `component-<key>.cwasm` in the cache directory, where `<key>`
//! is a SHA-256 of the component's bytes and of wasmtime's
//! [`Engine::precompile_compatibility_hash`] (the compiler, its flags, the
//! engine's tunables and features, and wasmtime's version): any change to
//! either gives a new file name, so a stale artifact is never even opened.
//! Anything unusable (no directory, unreadable or rejected file, a directory
//! others can write to) falls back to compiling in memory; the cache is an
//! optimization, never a requirement.
//!
//! Directory: `$DELIMITER_CACHE_DIR`, else `$XDG_CACHE_HOME/delimiter`, else
//! `~/.cache/delimiter`. `DELIMITER_CACHE=0` (or `off`) turns the cache off.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Instant;
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where the component came from in this process ([`load_info`](crate::load_info)).
#[derive(Debug, Clone)]
pub struct LoadInfo {
    /// `cache` (deserialized), `compiled` (and stored in the cache), or
    /// `compiled-uncached` (the cache was off or unusable; see `note`).
    pub source: &'static str,
    pub path: Option<PathBuf>,
    /// Why the cache was not used or not written, if it was not.
    pub note: Option<String>,
    /// Wall time of loading (deserializing or compiling), in seconds.
    pub seconds: f64,
}

/// Compiles `wasm` for `engine` in memory, bypassing the cache (for
/// components other than the embedded one).
pub(crate) fn compile(engine: &Engine, wasm: &[u8]) -> wasmtime::Result<(Component, LoadInfo)> {
    let started = Instant::now();
    let component = Component::new(engine, wasm)?;
    Ok((component, info("compiled-uncached", None, None, started)))
}

/// Loads `wasm` for `engine`: from the cache if a usable artifact is there,
/// else by compiling it (and storing the artifact for the next process).
pub(crate) fn load(engine: &Engine, wasm: &[u8]) -> wasmtime::Result<(Component, LoadInfo)> {
    let started = Instant::now();
    let dir = match cache_dir() {
        Ok(dir) => dir,
        Err(note) => {
            let component = Component::new(engine, wasm)?;
            return Ok((
                component,
                info("compiled-uncached", None, Some(note), started),
            ));
        }
    };
    let path = dir.join(format!("component-{}.cwasm", key(engine, wasm)));

    let mut note = None;
    if path.is_file() {
        match trusted(&path) {
            // SAFETY: `deserialize_file` runs the file as native code, so it
            // must be an artifact wasmtime wrote. This one is: only this
            // module writes `component-<key>.cwasm` files (atomically, by
            // rename, mode 0600), into a directory of the user's own that no
            // one else may write to (`trusted`), the same trust Python gives
            // its own `__pycache__`. wasmtime also checks the artifact's
            // header and its engine compatibility, and the file name already
            // binds both the component's bytes and the engine's settings.
            Ok(()) => match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => {
                    return Ok((component, info("cache", Some(path), None, started)));
                }
                Err(e) => note = Some(format!("cached artifact rejected, recompiled: {e:#}")),
            },
            Err(why) => {
                let component = Component::new(engine, wasm)?;
                return Ok((
                    component,
                    info("compiled-uncached", None, Some(why), started),
                ));
            }
        }
    }

    let component = Component::new(engine, wasm)?;
    match store(&dir, &path, &component) {
        Ok(()) => Ok((component, info("compiled", Some(path), note, started))),
        Err(e) => Ok((
            component,
            info(
                "compiled-uncached",
                None,
                Some(format!("cache not written: {e}")),
                started,
            ),
        )),
    }
}

fn info(
    source: &'static str,
    path: Option<PathBuf>,
    note: Option<String>,
    started: Instant,
) -> LoadInfo {
    LoadInfo {
        source,
        path,
        note,
        seconds: started.elapsed().as_secs_f64(),
    }
}

fn cache_dir() -> Result<PathBuf, String> {
    let off = std::env::var("DELIMITER_CACHE").is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "0" | "off" | "false" | "no"
        )
    });
    if off {
        return Err("DELIMITER_CACHE is off".into());
    }
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = non_empty("DELIMITER_CACHE_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = non_empty("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(dir).join("delimiter"));
    }
    if let Some(home) = non_empty("HOME") {
        return Ok(PathBuf::from(home).join(".cache").join("delimiter"));
    }
    Err("no cache directory (set DELIMITER_CACHE_DIR, XDG_CACHE_HOME or HOME)".into())
}

/// Feeds `Hash` output into SHA-256, so the key is stable across processes
/// and Rust versions (unlike `DefaultHasher`).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        unreachable!("only the digest is read")
    }
}

fn key(engine: &Engine, wasm: &[u8]) -> String {
    let mut hasher = Sha256Hasher(Sha256::new());
    hasher.write(b"delimiter-python component cache v1\0");
    hasher.write(&(wasm.len() as u64).to_le_bytes());
    hasher.write(wasm);
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let digest = hasher.0.finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// The artifact and its directory may be used only if no one but their
/// owner can write them.
fn trusted(path: &Path) -> Result<(), String> {
    private(path.parent().unwrap_or(path))?;
    private(path)
}

#[cfg(unix)]
fn private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| format!("cache not used: {}: {e}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o022 != 0 {
        return Err(format!(
            "cache not used: {} is writable by others (mode {:o})",
            path.display(),
            mode & 0o777
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn private(_path: &Path) -> Result<(), String> {
    Ok(())
}

/// Writes the artifact atomically: a temporary file in the same directory,
/// then a rename, so that a concurrent reader sees all of it or nothing.
fn store(dir: &Path, path: &Path, component: &Component) -> Result<(), String> {
    let bytes = component.serialize().map_err(|e| format!("{e:#}"))?;
    create_private_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    private(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.{:?}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("component"),
        std::process::id(),
        std::thread::current().id(),
    ));
    let written = write_private(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("{}: {e}", path.display()));
    }
    Ok(())
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
