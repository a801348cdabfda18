//! The caller's Python store as the component's `consume` and
//! `consume-batch` drive it: `read`, `commit`, and optionally `backoff`,
//! `now_us`, `entropy`, `read_locked`, `unlock`, `read_batch` and
//! `commit_batch`.
//!
//! Store methods run with the GIL taken back for the Python call only. A
//! method raising `delimiter.StorageError` is a storage failure: the guest
//! is told (and stops), and the exception travels as the failure's source.
//! Any other exception (or a result of the wrong type) is stashed and the
//! guest is told of a storage failure too, so it stops at once and commits
//! nothing; `consume` then re-raises the stashed exception as it is. After
//! a stash no Python method is called again.
//!
//! Which optional methods the store has is looked up once, when the
//! driver starts; a missing `now_us` or `entropy` is embed's default (a
//! monotonic clock, fresh random bits), a missing `backoff` sleeps here
//! without the GIL.

use crate::data::{ClaimEntry, CommitOutcome, MemberFailure, Request, Snapshot};
use delimiter_embed::types as w;
use delimiter_embed::{StorageError, Store};
use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use std::sync::Arc;
use std::time::Duration;

/// The optional methods a store has.
#[derive(Debug, Clone, Copy, Default)]
struct Has {
    backoff: bool,
    now_us: bool,
    entropy: bool,
    read_locked: bool,
    unlock: bool,
    read_batch: bool,
    commit_batch: bool,
}

pub struct PyStore {
    store: Py<PyAny>,
    has: Has,
    /// What a method raised that is not a storage failure, to re-raise.
    pub stash: Option<PyErr>,
    /// The exceptions `commit_batch` gave with its member failures, by
    /// message, in the order given: the failed member's `StorageError`
    /// carries its own as `original`.
    pub member_errors: Vec<(String, PyErr)>,
}

/// embed's defaults for the clock and the entropy (a store with neither).
struct Defaults;

impl Store for Defaults {
    fn read(&mut self, _: &str, _: &[String]) -> Result<w::Snapshot, StorageError> {
        Err(StorageError::new("unused"))
    }

    fn commit(
        &mut self,
        _: &[w::ClaimEntry],
        _: &w::Request,
    ) -> Result<w::CommitOutcome, StorageError> {
        Err(StorageError::new("unused"))
    }
}

impl PyStore {
    pub fn new(py: Python<'_>, store: Py<PyAny>) -> Self {
        let has = {
            let bound = store.bind(py);
            let has = |name| bound.hasattr(name).unwrap_or(false);
            Has {
                backoff: has(intern!(py, "backoff")),
                now_us: has(intern!(py, "now_us")),
                entropy: has(intern!(py, "entropy")),
                read_locked: has(intern!(py, "read_locked")),
                unlock: has(intern!(py, "unlock")),
                read_batch: has(intern!(py, "read_batch")),
                commit_batch: has(intern!(py, "commit_batch")),
            }
        };
        PyStore {
            store,
            has,
            stash: None,
            member_errors: Vec::new(),
        }
    }

    /// Runs `method` with the GIL. A `StorageError` it raises is a storage
    /// failure (`storage`: the reads and commits) or stashed like anything
    /// else (backoff, clock and entropy, which cannot report one).
    fn call<T>(
        &mut self,
        method: &str,
        storage: bool,
        f: impl for<'py> FnOnce(Python<'py>, &Bound<'py, PyAny>) -> PyResult<T>,
    ) -> Result<T, StorageError> {
        if self.stash.is_some() {
            return Err(StorageError::new(format!(
                "store.{method} not called: an earlier store call raised"
            )));
        }
        Python::attach(|py| {
            let err = match f(py, self.store.bind(py)) {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            let failure = storage
                && crate::errors::class(py, "StorageError")
                    .is_ok_and(|class| err.value(py).is_instance(&class).unwrap_or(false));
            if failure {
                let message = err
                    .value(py)
                    .str()
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                return Err(StorageError {
                    message,
                    source: Some(Arc::new(err)),
                });
            }
            self.stash = Some(err);
            Err(StorageError::new(format!("store.{method} raised")))
        })
    }

    fn snapshot(method: &str, value: &Bound<'_, PyAny>) -> PyResult<w::Snapshot> {
        match value.cast::<Snapshot>() {
            Ok(s) => Ok(s.get().0.clone()),
            Err(_) => Err(PyTypeError::new_err(format!(
                "store.{method} must return a delimiter.Snapshot, not {}",
                value.get_type().name()?
            ))),
        }
    }

    /// A `CommitOutcome` or its name, else None.
    fn outcome(value: &Bound<'_, PyAny>) -> Option<w::CommitOutcome> {
        if let Ok(o) = value.cast::<CommitOutcome>() {
            return Some(o.get().0);
        }
        match value.extract::<String>().ok()?.as_str() {
            "committed" => Some(w::CommitOutcome::Committed),
            "conflict" => Some(w::CommitOutcome::Conflict),
            "conflict-after-wait" => Some(w::CommitOutcome::ConflictAfterWait),
            _ => None,
        }
    }

    fn claim(claim: &[w::ClaimEntry]) -> Vec<ClaimEntry> {
        claim.iter().cloned().map(ClaimEntry).collect()
    }
}

impl Store for PyStore {
    fn read(&mut self, project: &str, resources: &[String]) -> Result<w::Snapshot, StorageError> {
        self.call("read", true, |py, store| {
            let snapshot = store.call_method1(intern!(py, "read"), (project, resources))?;
            Self::snapshot("read", &snapshot)
        })
    }

    fn commit(
        &mut self,
        claim: &[w::ClaimEntry],
        request: &w::Request,
    ) -> Result<w::CommitOutcome, StorageError> {
        self.call("commit", true, |py, store| {
            let request = Request(request.clone());
            let outcome =
                store.call_method1(intern!(py, "commit"), (Self::claim(claim), request))?;
            Self::outcome(&outcome).ok_or_else(|| {
                let shown = outcome.repr().map(|r| r.to_string()).unwrap_or_default();
                PyTypeError::new_err(format!(
                    "store.commit must return a delimiter.CommitOutcome (or \"committed\", \
                     \"conflict\" or \"conflict-after-wait\"), not {shown}"
                ))
            })
        })
    }

    fn backoff(&mut self, attempt: u32, delay: Duration) {
        if self.stash.is_some() {
            return;
        }
        if !self.has.backoff {
            // No method of its own: sleep here, without the GIL.
            std::thread::sleep(delay);
            return;
        }
        let delay_us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        // What it raises is stashed: the next read fails without a call.
        let _ = self.call("backoff", false, |py, store| {
            store.call_method1(intern!(py, "backoff"), (attempt, delay_us))?;
            Ok(())
        });
    }

    fn now_us(&mut self) -> u64 {
        if !self.has.now_us || self.stash.is_some() {
            return Defaults.now_us();
        }
        // What it raises (or a value that is no u64) is stashed: the
        // driver's next store call fails without a call.
        self.call("now_us", false, |py, store| {
            store.call_method0(intern!(py, "now_us"))?.extract::<u64>()
        })
        .unwrap_or(0)
    }

    fn entropy(&mut self) -> u64 {
        if !self.has.entropy || self.stash.is_some() {
            return Defaults.entropy();
        }
        self.call("entropy", false, |py, store| {
            store.call_method0(intern!(py, "entropy"))?.extract::<u64>()
        })
        .unwrap_or(0)
    }

    /// `read_locked(project, resources)`: a Snapshot, or None when the
    /// store takes no locks (also when it has no such method).
    fn read_locked(
        &mut self,
        project: &str,
        resources: &[String],
    ) -> Result<Option<w::Snapshot>, StorageError> {
        if !self.has.read_locked {
            return Ok(None);
        }
        self.call("read_locked", true, |py, store| {
            let snapshot = store.call_method1(intern!(py, "read_locked"), (project, resources))?;
            if snapshot.is_none() {
                return Ok(None);
            }
            Self::snapshot("read_locked", &snapshot).map(Some)
        })
    }

    fn unlock(&mut self) {
        if !self.has.unlock || self.stash.is_some() {
            return;
        }
        // What it raises is stashed and re-raised by `consume`.
        let _ = self.call("unlock", false, |py, store| {
            store.call_method0(intern!(py, "unlock"))?;
            Ok(())
        });
    }

    fn batches(&self) -> bool {
        self.has.read_batch && self.has.commit_batch
    }

    fn read_batch(
        &mut self,
        projects: &[String],
        resources: &[String],
    ) -> Result<w::Snapshot, StorageError> {
        if !self.batches() {
            return Err(StorageError::new(
                "the store has no read_batch and commit_batch",
            ));
        }
        self.call("read_batch", true, |py, store| {
            let snapshot = store.call_method1(intern!(py, "read_batch"), (projects, resources))?;
            Self::snapshot("read_batch", &snapshot)
        })
    }

    fn commit_batch(
        &mut self,
        claim: &[w::ClaimEntry],
        members: &[w::Request],
    ) -> Result<w::BatchOutcome, StorageError> {
        if !self.batches() {
            return Err(StorageError::new(
                "the store has no read_batch and commit_batch",
            ));
        }
        let mut failed: Option<(String, PyErr)> = None;
        let outcome = self.call("commit_batch", true, |py, store| {
            let members: Vec<Request> = members.iter().cloned().map(Request).collect();
            let outcome =
                store.call_method1(intern!(py, "commit_batch"), (Self::claim(claim), members))?;
            if let Ok(failure) = outcome.cast::<MemberFailure>() {
                let failure = failure.get();
                if let Some(original) = &failure.original {
                    let err = PyErr::from_value(original.bind(py).clone());
                    failed = Some((failure.message.clone(), err));
                }
                return Ok(w::BatchOutcome::MemberFailed(w::MemberFailure {
                    index: failure.index,
                    message: failure.message.clone(),
                }));
            }
            match Self::outcome(&outcome) {
                Some(w::CommitOutcome::Committed) => Ok(w::BatchOutcome::Committed),
                Some(lost) => Ok(w::BatchOutcome::Conflict(lost)),
                None => Err(PyTypeError::new_err(format!(
                    "store.commit_batch must return a delimiter.CommitOutcome (or \"committed\", \
                     \"conflict\" or \"conflict-after-wait\") or a delimiter.MemberFailure, not {}",
                    outcome.repr()?
                ))),
            }
        })?;
        self.member_errors.extend(failed);
        Ok(outcome)
    }
}
