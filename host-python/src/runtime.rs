//! The embedded component and the machinery that runs it.
//!
//! Threads: one wasmtime [`Engine`] and one
//! [`InstancePre`](wasmtime::component::InstancePre) per process (both are
//! `Send + Sync`), and one wasmtime `Store` with its instance per OS thread,
//! kept in a thread-local and reused from call to call. No store is ever
//! shared between threads, so calls from many Python threads run in
//! parallel with no lock of ours. A call made from inside a store callback
//! of `consume` (re-entrant, same thread) gets a fresh instance of its own.
//!
//! The GIL: every exported function is called inside `Python::detach`
//! (the GIL released) with inputs already converted to plain Rust values;
//! the store callbacks of `consume` re-attach (`Python::attach`) only for
//! the duration of the Python call.
//!
//! Faults: fuel and a memory limit per call; a trap, fuel exhaustion or a
//! memory-limit hit becomes `delimiter.GuestFault` and the instance is
//! dropped. A Python exception raised by a store callback is stashed, the
//! host import traps so the guest unwinds at once (nothing further runs in
//! it, so nothing is committed), and the original exception is re-raised.

use crate::cache::{self, LoadInfo};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;
use std::cell::RefCell;
use std::sync::OnceLock;
use std::time::Duration;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Engine, ResourceLimiter, Trap};

mod bindings {
    wasmtime::component::bindgen!({
        world: "delimiter",
        path: "../wit",
        // Every import may trap: that is how a Python exception raised in a
        // store callback stops the guest.
        imports: { default: trappable },
    });
}

pub(crate) use bindings::delimiter::quota::types as w;

/// The component's exports.
pub(crate) type Quota = bindings::exports::delimiter::quota::quota::Guest;

/// The component, `target/delimiter.wasm` as built by `just component`
/// (build.rs checks that it exists and passes its path).
static COMPONENT: &[u8] = include_bytes!(env!("DELIMITER_COMPONENT_WASM"));

/// Fuel for one call, as in the Rust host: about 2 million for a decision
/// on a 100-project tree, 280 million on a 10,000-project one; 4 billion
/// bounds a runaway guest to a few seconds of CPU.
pub(crate) const DEFAULT_FUEL: u64 = 4_000_000_000;

/// Linear memory an instance may grow to, in bytes (a 10,000-project
/// snapshot needs about 4 MiB).
pub(crate) const DEFAULT_MEMORY_LIMIT: usize = 256 << 20;

/// The limits of one call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GuestLimits {
    pub fuel: u64,
    pub memory: usize,
}

impl GuestLimits {
    pub fn new(fuel: Option<u64>, memory: Option<usize>) -> Self {
        GuestLimits {
            fuel: fuel.unwrap_or(DEFAULT_FUEL),
            memory: memory.unwrap_or(DEFAULT_MEMORY_LIMIT),
        }
    }
}

/// The engine, the compiled component and the pre-linked instance, built
/// once per process on first use (not on import).
struct Runtime {
    engine: Engine,
    pre: bindings::DelimiterPre<HostState>,
    load: LoadInfo,
}

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

fn runtime() -> Result<&'static Runtime, Fault> {
    RUNTIME
        .get_or_init(|| Runtime::new().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|message| Fault {
            kind: FaultKind::Load,
            message: message.clone(),
        })
}

impl Runtime {
    fn new() -> wasmtime::Result<Runtime> {
        let mut config = wasmtime::Config::new();
        config.consume_fuel(true);
        let engine = Engine::new(&config)?;
        let (component, load) = cache::load(&engine, COMPONENT)?;
        let mut linker = Linker::new(&engine);
        bindings::Delimiter::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
        let pre = bindings::DelimiterPre::new(linker.instantiate_pre(&component)?)?;
        Ok(Runtime { engine, pre, load })
    }
}

/// Loads the component now if nothing has yet (without the GIL), and says
/// where it came from.
pub(crate) fn load_info() -> Result<LoadInfo, Fault> {
    Ok(runtime()?.load.clone())
}

pub(crate) fn component_size() -> usize {
    COMPONENT.len()
}

/// Why the component gave no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultKind {
    Trap,
    OutOfFuel,
    MemoryLimit,
    Load,
}

impl FaultKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Trap => "trap",
            FaultKind::OutOfFuel => "out-of-fuel",
            FaultKind::MemoryLimit => "memory-limit",
            FaultKind::Load => "load",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Fault {
    pub kind: FaultKind,
    pub message: String,
}

/// How a call failed to produce the component's answer.
pub(crate) enum CallError {
    /// The guest faulted.
    Fault(Fault),
    /// A store callback raised this; re-raise it as is.
    Python(PyErr),
}

impl From<Fault> for CallError {
    fn from(f: Fault) -> Self {
        CallError::Fault(f)
    }
}

impl CallError {
    /// The Python exception to raise (needs the GIL).
    pub fn into_pyerr(self, py: Python<'_>) -> PyErr {
        match self {
            CallError::Python(err) => err,
            CallError::Fault(fault) => crate::error::guest_fault(py, &fault),
        }
    }
}

/// Caps the instance's linear memory and remembers whether it had to say no.
struct Limiter {
    max_bytes: usize,
    denied: bool,
    high_water: usize,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            // memory.grow returns -1 in the guest: its allocator fails and
            // the guest aborts, a trap classified as a memory-limit fault.
            self.denied = true;
            return Ok(false);
        }
        self.high_water = self.high_water.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 10_000)
    }
}

/// The data of every wasmtime store: the memory limiter and, while a
/// `consume` runs, the caller's Python store object and any exception one
/// of its methods raised.
pub(crate) struct HostState {
    limiter: Limiter,
    store: Option<Py<PyAny>>,
    stash: Option<PyErr>,
    storage_cause: Option<PyErr>,
}

static STORAGE_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

impl HostState {
    /// Runs one store method with the GIL. `Ok(Err(message))`: the method
    /// raised `delimiter.StorageError` (a storage failure the guest reports
    /// as such); `Err`: anything else was raised (or the result could not be
    /// converted), now stashed, and the guest must trap.
    fn call_store<T>(
        &mut self,
        method: &str,
        f: impl for<'py> FnOnce(Python<'py>, &Bound<'py, PyAny>) -> PyResult<T>,
    ) -> wasmtime::Result<Result<T, String>> {
        let Some(store) = self.store.as_ref() else {
            return Ok(Err(format!("store.{method} called outside consume")));
        };
        Python::attach(|py| match f(py, store.bind(py)) {
            Ok(value) => Ok(Ok(value)),
            Err(err) => {
                let storage = STORAGE_ERROR
                    .import(py, "delimiter._errors", "StorageError")
                    .map(|cls| err.is_instance(py, cls))
                    .unwrap_or(false);
                if storage {
                    let message = err
                        .value(py)
                        .str()
                        .map(|s| s.to_string())
                        .unwrap_or_default();
                    self.storage_cause = Some(err);
                    Ok(Err(message))
                } else {
                    self.stash = Some(err);
                    Err(wasmtime::Error::msg(format!(
                        "store.{method} raised a Python exception"
                    )))
                }
            }
        })
    }

    /// The last `StorageError` the store raised during this call (to chain
    /// as the cause of the one `consume` raises).
    pub(crate) fn take_storage_cause(&mut self) -> Option<PyErr> {
        self.storage_cause.take()
    }
}

impl w::Host for HostState {}

impl bindings::delimiter::quota::store::Host for HostState {
    fn read(
        &mut self,
        project: String,
        resources: Vec<String>,
    ) -> wasmtime::Result<Result<w::Snapshot, String>> {
        self.call_store("read", |py, store| {
            let snapshot = store.call_method1(pyo3::intern!(py, "read"), (project, resources))?;
            crate::snapshot::from_store(&snapshot)
        })
    }

    fn commit(
        &mut self,
        claim: Vec<w::ClaimEntry>,
        request: w::Request,
    ) -> wasmtime::Result<Result<w::CommitOutcome, String>> {
        self.call_store("commit", |py, store| {
            let claim = crate::claim::to_python(claim);
            let request = crate::decide::request_to_python(request);
            let outcome = store.call_method1(pyo3::intern!(py, "commit"), (claim, request))?;
            crate::consume::commit_outcome(&outcome)
        })
    }

    fn backoff(&mut self, attempt: u32, delay_us: u64) -> wasmtime::Result<()> {
        let has_backoff = match self.store.as_ref() {
            None => return Ok(()),
            Some(store) => Python::attach(|py| {
                store
                    .bind(py)
                    .hasattr(pyo3::intern!(py, "backoff"))
                    .unwrap_or(false)
            }),
        };
        if !has_backoff {
            // No method of its own: sleep here, without the GIL.
            std::thread::sleep(Duration::from_micros(delay_us));
            return Ok(());
        }
        match self.call_store("backoff", |py, store| {
            store.call_method1(pyo3::intern!(py, "backoff"), (attempt, delay_us))?;
            Ok(())
        })? {
            Ok(()) => Ok(()),
            // backoff cannot report a storage failure to the guest: stop it.
            Err(message) => Err(wasmtime::Error::msg(format!(
                "store.backoff raised StorageError: {message}"
            ))),
        }
    }
}

/// A live instance of the component in its own wasmtime store.
struct Live {
    store: wasmtime::Store<HostState>,
    bindings: bindings::Delimiter,
}

thread_local! {
    /// This thread's instance, reused from call to call.
    static LIVE: RefCell<Option<Live>> = const { RefCell::new(None) };
}

fn instantiate(memory: usize) -> Result<Live, Fault> {
    let runtime = runtime()?;
    let mut store = wasmtime::Store::new(
        &runtime.engine,
        HostState {
            limiter: Limiter {
                max_bytes: memory,
                denied: false,
                high_water: 0,
            },
            store: None,
            stash: None,
            storage_cause: None,
        },
    );
    store.limiter(|s| &mut s.limiter);
    store.set_fuel(DEFAULT_FUEL).map_err(|e| Fault {
        kind: FaultKind::Load,
        message: format!("{e:#}"),
    })?;
    let bindings = runtime.pre.instantiate(&mut store).map_err(|e| {
        let fault = classify(&e, store.data().limiter.denied);
        Fault {
            kind: match fault.kind {
                FaultKind::Trap => FaultKind::Load,
                other => other,
            },
            message: fault.message,
        }
    })?;
    Ok(Live { store, bindings })
}

/// Runs one exported function on this thread's instance (or a fresh one
/// when that one is busy, or was grown past `limits.memory`), with
/// `py_store` available to the store imports. Call it without the GIL.
pub(crate) fn call<R>(
    limits: GuestLimits,
    py_store: Option<Py<PyAny>>,
    f: impl FnOnce(&mut wasmtime::Store<HostState>, &Quota) -> wasmtime::Result<R>,
) -> Result<R, CallError> {
    // Taken out of the slot for the call, so that a re-entrant call (from a
    // store callback) finds the slot empty and makes its own.
    let cached = LIVE.with(|slot| slot.try_borrow_mut().ok().and_then(|mut s| s.take()));
    let mut live = match cached {
        Some(live) if live.store.data().limiter.high_water <= limits.memory => live,
        _ => instantiate(limits.memory)?,
    };

    let data = live.store.data_mut();
    data.limiter.denied = false;
    data.limiter.max_bytes = limits.memory;
    data.store = py_store;
    data.stash = None;
    data.storage_cause = None;
    let result = live
        .store
        .set_fuel(limits.fuel)
        .and_then(|()| f(&mut live.store, live.bindings.delimiter_quota_quota()));
    let data = live.store.data_mut();
    // Dropped without the GIL: pyo3 defers the decref until it is held.
    drop(data.store.take());
    drop(data.storage_cause.take());
    let stash = data.stash.take();
    let denied = data.limiter.denied;

    if let Some(err) = stash {
        // The guest trapped on our own error: the instance is dropped.
        return Err(CallError::Python(err));
    }
    match result {
        Ok(value) => {
            LIVE.with(|slot| {
                if let Ok(mut slot) = slot.try_borrow_mut()
                    && slot.is_none()
                {
                    *slot = Some(live);
                }
            });
            Ok(value)
        }
        // A trapped instance must not be entered again: dropped here.
        Err(error) => Err(CallError::Fault(classify(&error, denied))),
    }
}

/// An instance owned by one object rather than by the thread: a component
/// resource (`prepared`) lives in the store that made it, so its owner
/// keeps that store. No store callbacks run in it (no `consume`).
pub(crate) struct Owned(Live);

impl Owned {
    /// A fresh instance limited to `memory` bytes (compiling the component
    /// the first time): call it without the GIL.
    pub fn new(memory: usize) -> Result<Owned, Fault> {
        instantiate(memory).map(Owned)
    }

    /// Runs one exported function with `limits`. On a fault the instance
    /// must not be entered again: the caller drops it (and every resource
    /// in it). Nothing in it calls back into Python, so a short call may
    /// hold the GIL; a long one should release it.
    pub fn call<R>(
        &mut self,
        limits: GuestLimits,
        f: impl FnOnce(&mut wasmtime::Store<HostState>, &Quota) -> wasmtime::Result<R>,
    ) -> Result<R, Fault> {
        let live = &mut self.0;
        let data = live.store.data_mut();
        data.limiter.denied = false;
        data.limiter.max_bytes = limits.memory;
        let result = live
            .store
            .set_fuel(limits.fuel)
            .and_then(|()| f(&mut live.store, live.bindings.delimiter_quota_quota()));
        result.map_err(|error| classify(&error, live.store.data().limiter.denied))
    }
}

/// Pairs an invalid-input error with the core's English description of it
/// (the component's `describe`), in the same instance.
pub(crate) fn describe(
    store: &mut wasmtime::Store<HostState>,
    quota: &Quota,
    error: w::Error,
) -> wasmtime::Result<(w::Error, String)> {
    let message = quota.call_describe(&mut *store, &error)?;
    Ok((error, message))
}

fn classify(error: &wasmtime::Error, memory_denied: bool) -> Fault {
    let kind = if error.downcast_ref::<Trap>() == Some(&Trap::OutOfFuel) {
        FaultKind::OutOfFuel
    } else if memory_denied {
        FaultKind::MemoryLimit
    } else {
        FaultKind::Trap
    };
    Fault {
        kind,
        message: format!("{error:#}"),
    }
}
