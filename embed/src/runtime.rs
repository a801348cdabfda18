//! The embedded component and what runs it: one engine, compiled component
//! and [`InstancePre`](wasmtime::component::InstancePre) per process, the
//! memory limiter, the store every instance lives in (with the caller's
//! [`Store`] while a `consume` runs), and the classification of faults.

use crate::cache::{self, LoadInfo};
use crate::error::{FaultKind, GuestFault, StorageError};
use crate::store::Store;
use crate::types::bindings::{self, delimiter::quota::store as host};
use crate::types::{BatchOutcome, ClaimEntry, CommitOutcome, Request, Snapshot};
use std::ptr::NonNull;
use std::sync::OnceLock;
use std::time::Duration;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Engine, ResourceLimiter, Trap};

/// The component, `target/delimiter.wasm` as built by `just component` (or
/// the copy a package carries; build.rs finds it and passes its path).
pub(crate) static COMPONENT: &[u8] = include_bytes!(env!("DELIMITER_COMPONENT_WASM"));

/// The engine, the compiled component and the pre-linked instance.
pub(crate) struct Runtime {
    pub engine: Engine,
    pub pre: bindings::DelimiterPre<HostState>,
    pub load: LoadInfo,
}

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// The process-wide runtime of the embedded component, built on first use
/// (from the on-disk cache of the compiled component when it can be).
pub(crate) fn runtime() -> Result<&'static Runtime, GuestFault> {
    RUNTIME
        .get_or_init(|| Runtime::new(COMPONENT, None, true).map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|message| GuestFault::new(FaultKind::Load, message.clone()))
}

impl Runtime {
    pub fn new(
        component: &[u8],
        max_wasm_stack: Option<usize>,
        cached: bool,
    ) -> wasmtime::Result<Runtime> {
        let mut config = wasmtime::Config::new();
        config.consume_fuel(true);
        if let Some(bytes) = max_wasm_stack {
            config.max_wasm_stack(bytes);
        }
        let engine = Engine::new(&config)?;
        let (component, load) = if cached {
            cache::load(&engine, component)?
        } else {
            cache::compile(&engine, component)?
        };
        let mut linker = Linker::new(&engine);
        bindings::Delimiter::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
        let pre = bindings::DelimiterPre::new(linker.instantiate_pre(&component)?)?;
        Ok(Runtime { engine, pre, load })
    }
}

/// Where the embedded component was loaded from in this process, loading
/// it now if nothing has yet.
pub fn load_info() -> Result<LoadInfo, GuestFault> {
    Ok(runtime()?.load.clone())
}

/// The size of the embedded component, in bytes.
pub fn component_size() -> usize {
    COMPONENT.len()
}

/// Caps the instance's linear memory and remembers whether it had to say no.
pub(crate) struct Limiter {
    pub max_bytes: usize,
    pub denied: bool,
    /// The largest size granted so far, in bytes.
    pub high_water: usize,
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
            // the guest aborts, a trap then classified as a memory-limit fault.
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

/// The caller's [`Store`] while a `consume` runs, as a raw pointer because
/// wasmtime's store data must be `'static`.
///
/// SAFETY: it is only ever set by [`Enforcer::consume`](crate::Enforcer::consume),
/// for the duration of one guest call made while the `&mut dyn Store` it
/// came from is borrowed, on the calling thread, and cleared (or dropped
/// with the whole instance) before that borrow ends. The host import
/// functions only dereference it during that call, never concurrently.
pub(crate) struct StorePtr(pub NonNull<dyn Store + 'static>);

// SAFETY: a `StorePtr` is only dereferenced on the thread that set it,
// inside the call that set it; between calls it is `None`.
unsafe impl Send for StorePtr {}

/// The data of every wasmtime store: the memory limiter, and the caller's
/// store while a `consume` runs, with the last storage error it returned
/// (to hand back, source and all, with the consume's error).
pub(crate) struct HostState {
    pub limiter: Limiter,
    pub store: Option<StorePtr>,
    pub storage_error: Option<StorageError>,
}

impl HostState {
    pub fn new(max_bytes: usize) -> Self {
        HostState {
            limiter: Limiter {
                max_bytes,
                denied: false,
                high_water: 0,
            },
            store: None,
            storage_error: None,
        }
    }

    fn store(&mut self) -> Option<&mut (dyn Store + 'static)> {
        // SAFETY: see `StorePtr`.
        self.store.as_mut().map(|p| unsafe { p.0.as_mut() })
    }

    /// The message the guest is told, keeping the error itself.
    fn failed(&mut self, error: StorageError) -> String {
        let message = error.message.clone();
        self.storage_error = Some(error);
        message
    }
}

impl bindings::delimiter::quota::types::Host for HostState {}

impl host::Host for HostState {
    fn read(&mut self, project: String, resources: Vec<String>) -> Result<Snapshot, String> {
        let Some(store) = self.store() else {
            return Err("store.read called outside consume".to_string());
        };
        match store.read(&project, &resources) {
            Ok(snapshot) => Ok(snapshot),
            Err(e) => Err(self.failed(e)),
        }
    }

    fn commit(
        &mut self,
        claim: Vec<ClaimEntry>,
        request: Request,
    ) -> Result<CommitOutcome, String> {
        let Some(store) = self.store() else {
            return Err("store.commit called outside consume".to_string());
        };
        match store.commit(&claim, &request) {
            Ok(outcome) => Ok(outcome),
            Err(e) => Err(self.failed(e)),
        }
    }

    fn backoff(&mut self, attempt: u32, delay_us: u64) {
        if let Some(store) = self.store() {
            store.backoff(attempt, Duration::from_micros(delay_us));
        }
    }

    fn now_us(&mut self) -> u64 {
        match self.store() {
            Some(store) => store.now_us(),
            None => crate::store::monotonic_us(),
        }
    }

    fn entropy(&mut self) -> u64 {
        match self.store() {
            Some(store) => store.entropy(),
            None => crate::store::random_u64(),
        }
    }

    fn read_locked(
        &mut self,
        project: String,
        resources: Vec<String>,
    ) -> Result<Option<Snapshot>, String> {
        let Some(store) = self.store() else {
            return Err("store.read-locked called outside consume".to_string());
        };
        match store.read_locked(&project, &resources) {
            Ok(locked) => Ok(locked),
            Err(e) => Err(self.failed(e)),
        }
    }

    fn unlock(&mut self) {
        if let Some(store) = self.store() {
            store.unlock();
        }
    }

    fn read_batch(
        &mut self,
        projects: Vec<String>,
        resources: Vec<String>,
    ) -> Result<Snapshot, String> {
        let Some(store) = self.store() else {
            return Err("store.read-batch called outside consume-batch".to_string());
        };
        match store.read_batch(&projects, &resources) {
            Ok(snapshot) => Ok(snapshot),
            Err(e) => Err(self.failed(e)),
        }
    }

    fn commit_batch(
        &mut self,
        claim: Vec<ClaimEntry>,
        members: Vec<Request>,
    ) -> Result<BatchOutcome, String> {
        let Some(store) = self.store() else {
            return Err("store.commit-batch called outside consume-batch".to_string());
        };
        match store.commit_batch(&claim, &members) {
            Ok(outcome) => Ok(outcome),
            Err(e) => Err(self.failed(e)),
        }
    }
}

/// A fault while loading or instantiating.
pub(crate) fn load_fault(error: &wasmtime::Error) -> GuestFault {
    GuestFault::new(FaultKind::Load, format!("{error:#}"))
}

/// Classifies a wasmtime error from a call.
pub(crate) fn fault(error: &wasmtime::Error, memory_denied: bool) -> GuestFault {
    let kind = if error.downcast_ref::<Trap>() == Some(&Trap::OutOfFuel) {
        FaultKind::OutOfFuel
    } else if memory_denied {
        FaultKind::MemoryLimit
    } else {
        FaultKind::Trap
    };
    // `{:#}`: the cause chain, with the guest's backtrace.
    GuestFault::new(kind, format!("{error:#}"))
}
