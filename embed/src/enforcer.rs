//! [`Enforcer`]: one instance of the component, with every question the
//! quota library answers as a method, run with fuel and a memory cap.

use crate::error::{Error, GuestFault, StorageError};
use crate::runtime::{self, HostState, Runtime, StorePtr, fault, load_fault};
use crate::store::Store;
use crate::types::bindings::{self, exports::delimiter::quota::quota::Guest};
use crate::types::*;
use std::ptr::NonNull;

/// Fuel for one call (one exported function, including every round trip of
/// a `consume` through the caller's store; time spent in the store itself
/// costs no fuel). Fuel is counted in wasm instructions, roughly, and the
/// cost grows with the snapshot: a decision on a 10,000-project tree with
/// usage on every leaf takes a few hundred million. 4 billion leaves room
/// for trees over ten times that size while bounding a runaway guest to a
/// few seconds of CPU. Raise it with [`Enforcer::with_fuel`] for larger
/// trees (or send [`Usage::Path`] snapshots, which cost one path rather
/// than the whole tree).
pub const DEFAULT_FUEL: u64 = 4_000_000_000;

/// Linear memory an instance may grow to, in bytes. A snapshot is copied
/// into the guest and indexed there, so memory scales with the input: a
/// 10,000-project tree with usage on every leaf needs about 4 MiB. 256 MiB
/// leaves room for trees fifty times larger while keeping a bad input from
/// taking the host down; a growth past it ends the call in
/// [`FaultKind::MemoryLimit`](crate::FaultKind::MemoryLimit).
pub const DEFAULT_MEMORY_LIMIT: usize = 256 << 20;

/// A live instance of the component, in its own wasmtime store.
pub(crate) struct Live {
    pub store: wasmtime::Store<HostState>,
    pub bindings: bindings::Delimiter,
}

/// A handle on one instance of the component. Cheap to keep; instantiating
/// costs a fraction of a millisecond (the component itself is compiled
/// once per process, on first use, or read from the on-disk cache). Reuse
/// one per thread for the fastest calls.
///
/// After a [`GuestFault`] the instance is discarded and the next call
/// starts a fresh one.
pub struct Enforcer {
    /// `None`: the process-wide runtime of the embedded component.
    runtime: Option<&'static Runtime>,
    pub(crate) live: Option<Live>,
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
    /// [`DEFAULT_MEMORY_LIMIT`]), from the next call on.
    pub fn with_memory_limit(mut self, bytes: usize) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// Both limits, for the next calls (as [`with_fuel`](Self::with_fuel)
    /// and [`with_memory_limit`](Self::with_memory_limit)).
    pub fn set_limits(&mut self, fuel: u64, memory_limit: usize) {
        self.fuel = fuel;
        self.memory_limit = memory_limit;
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
        let out =
            self.call(|store, quota| quota.call_evaluate(store, *config, snapshot, request))?;
        Ok(out?)
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
        let out = self.call(|store, quota| {
            quota.call_headroom(store, *config, snapshot, project, resources)
        })?;
        Ok(out?)
    }

    /// How many units of `request` (its deltas are per unit, zero or more)
    /// its project can consume now.
    pub fn max_count(
        &mut self,
        config: &Config,
        snapshot: &Snapshot,
        request: &Request,
    ) -> Result<Count, Error> {
        let out =
            self.call(|store, quota| quota.call_max_count(store, *config, snapshot, request))?;
        Ok(out?)
    }

    /// Every finding for `projects` and `limits` under `config`; empty when
    /// valid. Only a guest fault is an error here.
    pub fn validate(
        &mut self,
        config: &Config,
        projects: &[Project],
        limits: &Limits,
    ) -> Result<Vec<Finding>, Error> {
        self.call(|store, quota| quota.call_validate(store, *config, projects, limits))
    }

    /// oslo.limit 2.12's flat `Enforcer.enforce`: an empty list means
    /// within limits, otherwise `ProjectOverLimit.over_limit_info_list`.
    pub fn oslo_check(&mut self, check: &OsloRequest) -> Result<Vec<OverLimitInfo>, Error> {
        let out = self.call(|store, quota| quota.call_oslo_check(store, check))?;
        Ok(out?)
    }

    /// A model by name: `flat`, `strict-two-level` (or Keystone's
    /// `strict_two_level`) or `nested`; anything else is `unknown-model`.
    pub fn parse_model(&mut self, name: &str) -> Result<Model, Error> {
        let out = self.call(|store, quota| quota.call_parse_model(store, name))?;
        Ok(out?)
    }

    /// A config from names (model, maximum depth, missing-limit rule),
    /// checked by the core in that order.
    pub fn parse_config(
        &mut self,
        model: &str,
        max_depth: u32,
        missing_limit: &str,
    ) -> Result<Config, Error> {
        let out = self
            .call(|store, quota| quota.call_parse_config(store, model, max_depth, missing_limit))?;
        Ok(out?)
    }

    /// Consumes `request` through `store`: read, decide, commit; on a
    /// conflict, back off and start again from a fresh read, up to
    /// `policy.max_attempts` attempts. A refusal is final
    /// ([`Error::OverLimit`]); running out of attempts is
    /// [`Error::RetriesExhausted`]; a store failure is [`Error::Storage`],
    /// carrying the store's own [`StorageError`].
    pub fn consume(
        &mut self,
        config: &Config,
        policy: &RetryPolicy,
        store: &mut dyn Store,
        request: &Request,
    ) -> Result<Consumed, Error> {
        // SAFETY: the lifetime is erased only for the call below; see
        // `StorePtr`. `call_with_store` clears the pointer (or drops the
        // instance holding it) before returning or unwinding.
        let ptr: NonNull<dyn Store + 'static> = unsafe {
            std::mem::transmute::<NonNull<dyn Store + '_>, NonNull<dyn Store + 'static>>(
                NonNull::from(store),
            )
        };
        let (out, kept) = self.call_with_store(Some(StorePtr(ptr)), |store, quota| {
            quota.call_consume(store, *config, *policy, request)
        })?;
        out.map_err(|e| consume_error(e, kept.as_ref()))
    }

    /// Decides `requests` in order against one snapshot, each against the
    /// snapshot plus the deltas of the requests admitted before it: what
    /// the same requests would get one by one (semantics, "Combining
    /// concurrent consumes"). One result per request; the outer error is
    /// a guest fault only.
    pub fn evaluate_batch(
        &mut self,
        config: &Config,
        snapshot: &Snapshot,
        requests: &[Request],
    ) -> Result<Vec<Result<Decision, Invalid>>, Error> {
        self.call(|store, quota| quota.call_evaluate_batch(store, *config, snapshot, requests))
    }

    /// Consumes `requests` as one batch through `store`'s
    /// [`read_batch`](Store::read_batch) and
    /// [`commit_batch`](Store::commit_batch): one read, decisions in
    /// arrival order ([`evaluate_batch`](Self::evaluate_batch)), one commit
    /// of the admitted members with their claims' union. A conflict re-runs
    /// the batch within `policy`'s budget. One result per request, each
    /// what [`consume`](Self::consume) gives; the outer error is a guest
    /// fault only. A host's combiner calls this; most callers want
    /// `delimiter::Combiner`.
    pub fn consume_batch(
        &mut self,
        config: &Config,
        policy: &RetryPolicy,
        store: &mut dyn Store,
        requests: &[Request],
    ) -> Result<Vec<Result<Consumed, Error>>, Error> {
        // SAFETY: as in `consume`.
        let ptr: NonNull<dyn Store + 'static> = unsafe {
            std::mem::transmute::<NonNull<dyn Store + '_>, NonNull<dyn Store + 'static>>(
                NonNull::from(store),
            )
        };
        let (out, kept) = self.call_with_store(Some(StorePtr(ptr)), |store, quota| {
            quota.call_consume_batch(store, *config, *policy, requests)
        })?;
        Ok(out
            .into_iter()
            .map(|r| r.map_err(|e| consume_error(e, kept.as_ref())))
            .collect())
    }

    /// Runs one exported function (no store callbacks) with fresh fuel, in
    /// place: nothing it calls can unwind through the instance, so unlike
    /// [`call_with_store`](Self::call_with_store) it need not move the
    /// instance out of its slot (a decision is a few microseconds, and the
    /// move showed in them).
    pub(crate) fn call<R>(
        &mut self,
        f: impl FnOnce(&mut wasmtime::Store<HostState>, &Guest) -> wasmtime::Result<R>,
    ) -> Result<R, Error> {
        if self.live.is_none() {
            self.live = Some(self.instantiate()?);
        }
        let Some(live) = self.live.as_mut() else {
            // Set just above; answered as a fault rather than a panic.
            return Err(Error::GuestFault(GuestFault::new(
                crate::FaultKind::Load,
                "no live instance",
            )));
        };
        let data = live.store.data_mut();
        data.limiter.denied = false;
        data.limiter.max_bytes = self.memory_limit;
        let result = live
            .store
            .set_fuel(self.fuel)
            .and_then(|()| f(&mut live.store, live.bindings.delimiter_quota_quota()));
        match result {
            Ok(value) => {
                self.last_fuel_used = live.store.get_fuel().ok().map(|left| self.fuel - left);
                Ok(value)
            }
            Err(error) => {
                let fault = fault(&error, live.store.data().limiter.denied);
                // A trapped instance must not be entered again: drop it.
                self.live = None;
                self.last_fuel_used = None;
                Err(Error::GuestFault(fault))
            }
        }
    }

    /// Runs one exported function with fresh fuel, turning every wasmtime
    /// error into a [`GuestFault`]; also hands back the last storage error
    /// the caller's store returned during the call.
    fn call_with_store<R>(
        &mut self,
        store_ptr: Option<StorePtr>,
        f: impl FnOnce(&mut wasmtime::Store<HostState>, &Guest) -> wasmtime::Result<R>,
    ) -> Result<(R, Option<StorageError>), GuestFault> {
        // Taken out for the call: if `f` unwinds (a panic in the caller's
        // store), the instance and the pointer in it are dropped with it.
        let mut live = match self.live.take() {
            Some(live) => live,
            None => self.instantiate()?,
        };
        let data = live.store.data_mut();
        data.limiter.denied = false;
        data.limiter.max_bytes = self.memory_limit;
        data.store = store_ptr;
        data.storage_error = None;
        let result = live
            .store
            .set_fuel(self.fuel)
            .and_then(|()| f(&mut live.store, live.bindings.delimiter_quota_quota()));
        let data = live.store.data_mut();
        data.store = None;
        let kept = data.storage_error.take();
        self.last_fuel_used = None;
        match result {
            Ok(value) => {
                self.last_fuel_used = live.store.get_fuel().ok().map(|left| self.fuel - left);
                self.live = Some(live);
                Ok((value, kept))
            }
            // A trapped instance must not be entered again: drop it.
            Err(error) => Err(fault(&error, live.store.data().limiter.denied)),
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
        let runtime = Runtime::new(
            component.unwrap_or(runtime::COMPONENT),
            max_wasm_stack,
            false,
        )
        .map_err(|e| Error::GuestFault(load_fault(&e)))?;
        Ok(Enforcer {
            runtime: Some(Box::leak(Box::new(runtime))),
            ..Enforcer::new()
        })
    }

    /// The embedded component's bytes, for tests that corrupt a copy.
    #[doc(hidden)]
    pub fn __component() -> &'static [u8] {
        runtime::COMPONENT
    }

    fn instantiate(&self) -> Result<Live, GuestFault> {
        let runtime = match self.runtime {
            Some(runtime) => runtime,
            None => runtime::runtime()?,
        };
        let mut store = wasmtime::Store::new(&runtime.engine, HostState::new(self.memory_limit));
        store.limiter(|s| &mut s.limiter);
        store.set_fuel(self.fuel).map_err(|e| load_fault(&e))?;
        let bindings = runtime.pre.instantiate(&mut store).map_err(|e| {
            let denied = store.data().limiter.denied;
            let mut fault = fault(&e, denied);
            if fault.kind == crate::FaultKind::Trap {
                fault.kind = crate::FaultKind::Load;
            }
            fault
        })?;
        Ok(Live { store, bindings })
    }
}

/// A consume's error from the component's, with the store's own error
/// (source and all) when it is the one the guest reported.
fn consume_error(e: ConsumeError, kept: Option<&StorageError>) -> Error {
    match e {
        ConsumeError::OverLimit(over) => Error::OverLimit(over),
        ConsumeError::RetriesExhausted(attempts) => Error::RetriesExhausted { attempts },
        ConsumeError::Storage(failure) => Error::Storage {
            error: kept
                .filter(|e| e.message == failure.message)
                .cloned()
                .unwrap_or_else(|| StorageError::new(failure.message)),
            attempts: failure.attempts,
        },
        ConsumeError::Invalid(invalid) => Error::Invalid(invalid),
    }
}
