//! The embedded component and the machinery that runs it: one compiled
//! [`Component`] and [`InstancePre`](wasmtime::component::InstancePre) per
//! process, one wasmtime store and instance per [`Enforcer`], fuel and a
//! memory limit per call, and the classification of guest faults.

use crate::convert::{self, wit};
use crate::{
    ClaimEntry, Config, Consumed, Count, Decision, Error, FaultKind, Finding, GuestFault,
    InvalidInput, Limits, Model, OsloCheck, OverLimitInfo, Project, Request, ResourceHeadroom,
    RetryPolicy, Snapshot, Store,
};
use std::ptr::NonNull;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, ResourceLimiter, Trap};

mod prepared;

pub use prepared::Prepared;

mod bindings {
    wasmtime::component::bindgen!({
        world: "delimiter",
        path: "../wit",
    });
}

pub(crate) use bindings::delimiter::quota::types as wit_types;

/// The component, `target/delimiter.wasm` as built by `just component`
/// (build.rs checks that it exists and passes its path).
static COMPONENT: &[u8] = include_bytes!(env!("DELIMITER_COMPONENT_WASM"));

/// Fuel for one call (one exported function, including every round trip of
/// a `consume` through the caller's store; time spent in the store itself
/// costs no fuel). Fuel is counted in wasm instructions, roughly, and the
/// cost grows with the snapshot: measured (`examples/measure.rs`), a
/// decision on a 100-project tree takes about 2 million, on a
/// 10,000-project tree with usage on every leaf about 280 million. 4 billion
/// leaves room for trees over ten times that size, while bounding a runaway
/// guest to a few seconds of CPU. Raise it with [`Enforcer::with_fuel`] for
/// larger trees (or send [`Usage::Path`](crate::Usage::Path) snapshots,
/// which cost one path rather than the whole tree).
pub const DEFAULT_FUEL: u64 = 4_000_000_000;

/// Linear memory an instance may grow to, in bytes. A snapshot is copied
/// into the guest and indexed there, so memory scales with the input: a
/// 10,000-project tree with usage on every leaf grew the instance to about
/// 4 MiB (measured, `examples/measure.rs`). 256 MiB leaves room for trees
/// fifty times larger while keeping a bad input from taking the host down. A growth past it fails inside the guest and
/// the call ends in [`FaultKind::MemoryLimit`]. Raise it with
/// [`Enforcer::with_memory_limit`].
pub const DEFAULT_MEMORY_LIMIT: usize = 256 << 20;

/// The engine, the compiled component and the pre-linked instance, built
/// once per process.
struct Runtime {
    engine: Engine,
    pre: bindings::DelimiterPre<HostState>,
    /// How long compiling the component took, for [`load_time`].
    load_time: Duration,
}

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

fn runtime() -> Result<&'static Runtime, Error> {
    RUNTIME
        .get_or_init(|| Runtime::new().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|message| {
            Error::GuestFault(GuestFault {
                kind: FaultKind::Load,
                message: message.clone(),
            })
        })
}

impl Runtime {
    fn new() -> wasmtime::Result<Runtime> {
        Runtime::with(COMPONENT, None)
    }

    fn with(component: &[u8], max_wasm_stack: Option<usize>) -> wasmtime::Result<Runtime> {
        let started = Instant::now();
        let mut config = wasmtime::Config::new();
        config.consume_fuel(true);
        if let Some(bytes) = max_wasm_stack {
            config.max_wasm_stack(bytes);
        }
        let engine = Engine::new(&config)?;
        let component = Component::new(&engine, component)?;
        let mut linker = Linker::new(&engine);
        bindings::Delimiter::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
        let pre = bindings::DelimiterPre::new(linker.instantiate_pre(&component)?)?;
        Ok(Runtime {
            engine,
            pre,
            load_time: started.elapsed(),
        })
    }
}

/// How long compiling the embedded component took in this process
/// (compiling it first if nothing has yet).
pub fn load_time() -> Result<Duration, Error> {
    Ok(runtime()?.load_time)
}

/// The size of the embedded component, in bytes.
pub fn component_size() -> usize {
    COMPONENT.len()
}

/// Caps the instance's linear memory and remembers whether it had to say no.
struct Limiter {
    max_bytes: usize,
    denied: bool,
    /// The largest size granted so far, in bytes.
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
            // the guest aborts, which is a trap we then classify.
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
/// SAFETY: it is only ever set by [`Enforcer::consume`], for the duration of
/// one guest call made while the `&mut dyn Store` it came from is borrowed,
/// on the calling thread, and cleared (or dropped with the whole instance)
/// before that borrow ends. The host import functions only dereference it
/// during that call, never concurrently.
struct StorePtr(NonNull<dyn Store + 'static>);

// SAFETY: a `StorePtr` is only dereferenced on the thread that set it,
// inside the call that set it; between calls it is `None`.
unsafe impl Send for StorePtr {}

/// The data of every wasmtime store: the memory limiter, and the caller's
/// store while a `consume` runs.
pub(crate) struct HostState {
    limiter: Limiter,
    store: Option<StorePtr>,
}

impl HostState {
    fn store(&mut self) -> Option<&mut (dyn Store + 'static)> {
        // SAFETY: see `StorePtr`.
        self.store.as_mut().map(|p| unsafe { p.0.as_mut() })
    }
}

impl wit_types::Host for HostState {}

impl bindings::delimiter::quota::store::Host for HostState {
    fn read(
        &mut self,
        project: String,
        resources: Vec<String>,
    ) -> Result<wit_types::Snapshot, String> {
        let store = self
            .store()
            .ok_or("store.read called outside consume".to_string())?;
        store
            .read(&project, &resources)
            .map(|s| wit::snapshot(&s))
            .map_err(|e| e.message)
    }

    fn commit(
        &mut self,
        claim: Vec<wit_types::ClaimEntry>,
        request: wit_types::Request,
    ) -> Result<wit_types::CommitOutcome, String> {
        let store = self
            .store()
            .ok_or("store.commit called outside consume".to_string())?;
        let claim: Vec<ClaimEntry> = claim.into_iter().map(convert::claim_entry).collect();
        let request = convert::request(request);
        match store.commit(&claim, &request) {
            Ok(crate::CommitOutcome::Committed) => Ok(wit_types::CommitOutcome::Committed),
            Ok(crate::CommitOutcome::Conflict) => Ok(wit_types::CommitOutcome::Conflict),
            Err(e) => Err(e.message),
        }
    }

    fn backoff(&mut self, attempt: u32, delay_us: u64) {
        if let Some(store) = self.store() {
            store.backoff(attempt, Duration::from_micros(delay_us));
        }
    }
}

/// A live instance of the component, in its own wasmtime store.
struct Live {
    store: wasmtime::Store<HostState>,
    bindings: bindings::Delimiter,
}

/// A handle on one instance of the component: every question the quota
/// library answers, as methods. Cheap to keep; instantiating it costs a
/// fraction of a millisecond (the component itself is compiled once per
/// process, on first use). Reuse one per thread for the fastest calls; the
/// crate's free functions do exactly that.
///
/// After a [`GuestFault`] the instance is discarded and the next call
/// starts a fresh one.
pub struct Enforcer {
    /// `None`: the process-wide runtime of the embedded component.
    runtime: Option<&'static Runtime>,
    live: Option<Live>,
    fuel: u64,
    memory_limit: usize,
    last_fuel_used: Option<u64>,
}

impl Default for Enforcer {
    fn default() -> Self {
        Enforcer::new()
    }
}

impl std::fmt::Debug for Enforcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enforcer")
            .field("instantiated", &self.live.is_some())
            .field("fuel", &self.fuel)
            .field("memory_limit", &self.memory_limit)
            .finish()
    }
}

impl Enforcer {
    /// A handle with the default limits ([`DEFAULT_FUEL`],
    /// [`DEFAULT_MEMORY_LIMIT`]). The instance is created on first use.
    pub fn new() -> Self {
        Enforcer {
            runtime: None,
            live: None,
            fuel: DEFAULT_FUEL,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            last_fuel_used: None,
        }
    }

    /// Sets the fuel each call starts with (see [`DEFAULT_FUEL`]).
    pub fn with_fuel(mut self, fuel: u64) -> Self {
        self.fuel = fuel;
        self
    }

    /// Sets the linear memory the instance may grow to, in bytes (see
    /// [`DEFAULT_MEMORY_LIMIT`]). Applies from the next instantiation on, so
    /// set it before the first call.
    pub fn with_memory_limit(mut self, bytes: usize) -> Self {
        self.memory_limit = bytes;
        self.live = None;
        self
    }

    /// The fuel the last call used, to size [`with_fuel`](Self::with_fuel)
    /// for your inputs (`None` before the first call, or after a fault).
    pub fn last_fuel_used(&self) -> Option<u64> {
        self.last_fuel_used
    }

    /// The largest linear memory the current instance has grown to, in
    /// bytes, to size [`with_memory_limit`](Self::with_memory_limit).
    pub fn memory_high_water(&self) -> usize {
        self.live
            .as_ref()
            .map_or(0, |live| live.store.data().limiter.high_water)
    }

    /// Decides `request` against `snapshot` under `config`. Only positive
    /// deltas can be refused; a release that would go below zero, or any
    /// sum that overflows 64 bits, is an error rather than a decision.
    pub fn evaluate(
        &mut self,
        config: &Config,
        snapshot: &Snapshot,
        request: &Request,
    ) -> Result<Decision, Error> {
        let (c, s, r) = (
            wit::config(config),
            wit::snapshot(snapshot),
            wit::request(request),
        );
        let out = self.call(|store, quota| quota.call_evaluate(store, c, &s, &r))?;
        out.map(convert::decision).map_err(convert::invalid)
    }

    /// The headroom of `project` for each of `resources`, sorted by
    /// resource name.
    pub fn headroom(
        &mut self,
        config: &Config,
        snapshot: &Snapshot,
        project: &str,
        resources: &[String],
    ) -> Result<Vec<ResourceHeadroom>, Error> {
        let (c, s) = (wit::config(config), wit::snapshot(snapshot));
        let out =
            self.call(|store, quota| quota.call_headroom(store, c, &s, project, resources))?;
        out.map(|rows| rows.into_iter().map(convert::headroom).collect())
            .map_err(convert::invalid)
    }

    /// How many units of `per_unit` (deltas of zero or more) `project`
    /// can consume now.
    pub fn max_count(
        &mut self,
        config: &Config,
        snapshot: &Snapshot,
        project: &str,
        per_unit: &[crate::Delta],
    ) -> Result<Count, Error> {
        let (c, s) = (wit::config(config), wit::snapshot(snapshot));
        let r = wit::request(&Request::new(project, per_unit.to_vec()));
        let out = self.call(|store, quota| quota.call_max_count(store, c, &s, &r))?;
        out.map(convert::count).map_err(convert::invalid)
    }

    /// Every finding for `projects` and `limits` under `config`; empty when
    /// valid. Only a guest fault is an error here.
    pub fn validate(
        &mut self,
        config: &Config,
        projects: &[Project],
        limits: &Limits,
    ) -> Result<Vec<Finding>, Error> {
        let c = wit::config(config);
        let p: Vec<_> = projects.iter().map(wit::project).collect();
        let l = wit::limits(limits);
        let out = self.call(|store, quota| quota.call_validate(store, c, &p, &l))?;
        Ok(out.into_iter().map(convert::finding).collect())
    }

    /// oslo.limit 2.12's flat `Enforcer.enforce`: an empty list means
    /// within limits, otherwise `ProjectOverLimit.over_limit_info_list`.
    pub fn oslo_check(&mut self, check: &OsloCheck) -> Result<Vec<OverLimitInfo>, Error> {
        let o = wit::oslo(check);
        let out = self.call(|store, quota| quota.call_oslo_check(store, &o))?;
        out.map(|list| list.into_iter().map(convert::over_limit_info).collect())
            .map_err(convert::invalid)
    }

    /// A model by name (see [`Model::parse`]).
    pub fn parse_model(&mut self, name: &str) -> Result<Model, Error> {
        let out = self.call(|store, quota| quota.call_parse_model(store, name))?;
        out.map(convert::model).map_err(convert::invalid)
    }

    /// The core's own English description of `error`.
    pub fn describe(&mut self, error: &InvalidInput) -> Result<String, Error> {
        let e = wit::error(error);
        self.call(|store, quota| quota.call_describe(store, &e))
    }

    /// Consumes `request` through `store`: read, decide, commit; on a
    /// conflict, back off and start again from a fresh read, up to
    /// `policy.max_attempts` attempts. A refusal is final
    /// ([`Error::OverLimit`]); running out of attempts is
    /// [`Error::RetriesExhausted`]; a store failure is [`Error::Storage`].
    pub fn consume(
        &mut self,
        config: &Config,
        policy: &RetryPolicy,
        store: &mut dyn Store,
        request: &Request,
    ) -> Result<Consumed, Error> {
        let (c, p, r) = (
            wit::config(config),
            wit::policy(policy),
            wit::request(request),
        );
        // SAFETY: the lifetime is erased only for the call below; see
        // `StorePtr`. `call` clears the pointer (or drops the instance
        // holding it) before returning or unwinding.
        let ptr: NonNull<dyn Store + 'static> = unsafe {
            std::mem::transmute::<NonNull<dyn Store + '_>, NonNull<dyn Store + 'static>>(
                NonNull::from(store),
            )
        };
        let out = self.call_with_store(Some(StorePtr(ptr)), |store, quota| {
            quota.call_consume(store, c, p, &r)
        })?;
        out.map(convert::consumed).map_err(convert::consume_error)
    }

    fn call<R>(
        &mut self,
        f: impl FnOnce(
            &mut wasmtime::Store<HostState>,
            &bindings::exports::delimiter::quota::quota::Guest,
        ) -> wasmtime::Result<R>,
    ) -> Result<R, Error> {
        self.call_with_store(None, f)
    }

    /// Runs one exported function with fresh fuel, turning every wasmtime
    /// error into a [`GuestFault`].
    fn call_with_store<R>(
        &mut self,
        store_ptr: Option<StorePtr>,
        f: impl FnOnce(
            &mut wasmtime::Store<HostState>,
            &bindings::exports::delimiter::quota::quota::Guest,
        ) -> wasmtime::Result<R>,
    ) -> Result<R, Error> {
        // Taken out for the call: if `f` unwinds (a panic in the caller's
        // store), the instance and the pointer in it are dropped with it.
        let mut live = match self.live.take() {
            Some(live) => live,
            None => self.instantiate()?,
        };
        let data = live.store.data_mut();
        data.limiter.denied = false;
        data.store = store_ptr;
        let result = live
            .store
            .set_fuel(self.fuel)
            .and_then(|()| f(&mut live.store, live.bindings.delimiter_quota_quota()));
        live.store.data_mut().store = None;
        self.last_fuel_used = None;
        match result {
            Ok(value) => {
                self.last_fuel_used = live.store.get_fuel().ok().map(|left| self.fuel - left);
                self.live = Some(live);
                Ok(value)
            }
            // A trapped instance must not be entered again: drop it.
            Err(error) => Err(Error::GuestFault(fault(
                &error,
                live.store.data().limiter.denied,
            ))),
        }
    }

    /// For tests of guest faults only: an enforcer running `component`
    /// (for example a corrupted copy of the real one) on its own engine,
    /// optionally with a smaller wasm stack. Leaks the compiled runtime.
    #[doc(hidden)]
    pub fn __with_runtime(
        component: Option<&[u8]>,
        max_wasm_stack: Option<usize>,
    ) -> Result<Enforcer, Error> {
        let runtime = Runtime::with(component.unwrap_or(COMPONENT), max_wasm_stack)
            .map_err(|e| Error::GuestFault(load_fault(&e)))?;
        Ok(Enforcer {
            runtime: Some(Box::leak(Box::new(runtime))),
            ..Enforcer::new()
        })
    }

    /// The embedded component's bytes, for tests that corrupt a copy.
    #[doc(hidden)]
    pub fn __component() -> &'static [u8] {
        COMPONENT
    }

    fn instantiate(&self) -> Result<Live, Error> {
        let runtime = match self.runtime {
            Some(runtime) => runtime,
            None => runtime()?,
        };
        let mut store = wasmtime::Store::new(
            &runtime.engine,
            HostState {
                limiter: Limiter {
                    max_bytes: self.memory_limit,
                    denied: false,
                    high_water: 0,
                },
                store: None,
            },
        );
        store.limiter(|s| &mut s.limiter);
        store.set_fuel(self.fuel).map_err(|e| load_fault(&e))?;
        let bindings = runtime.pre.instantiate(&mut store).map_err(|e| {
            let denied = store.data().limiter.denied;
            match fault(&e, denied) {
                GuestFault {
                    kind: FaultKind::Trap,
                    message,
                } => GuestFault {
                    kind: FaultKind::Load,
                    message,
                },
                other => other,
            }
        })?;
        Ok(Live { store, bindings })
    }
}

fn load_fault(error: &wasmtime::Error) -> GuestFault {
    GuestFault {
        kind: FaultKind::Load,
        message: format!("{error:#}"),
    }
}

/// Classifies a wasmtime error from a call.
fn fault(error: &wasmtime::Error, memory_denied: bool) -> GuestFault {
    let kind = if error.downcast_ref::<Trap>() == Some(&Trap::OutOfFuel) {
        FaultKind::OutOfFuel
    } else if memory_denied {
        FaultKind::MemoryLimit
    } else {
        FaultKind::Trap
    };
    GuestFault {
        kind,
        // `{:#}`: the cause chain, with the guest's backtrace.
        message: format!("{error:#}"),
    }
}
