//! The caller's Python store (`read`, `commit`, optional `backoff`) as the
//! component's `consume` drives it.
//!
//! Store methods run with the GIL taken back for the Python call only. A
//! method raising `delimiter.StorageError` is a storage failure: the guest
//! is told (and stops), and the exception travels as the failure's source.
//! Any other exception (or a result of the wrong type) is stashed and the
//! guest is told of a storage failure too, so it stops at once and commits
//! nothing; `consume` then re-raises the stashed exception as it is. After
//! a stash no Python method is called again.

use crate::data::{ClaimEntry, CommitOutcome, Request, Snapshot};
use delimiter_embed::types as w;
use delimiter_embed::{StorageError, Store};
use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use std::sync::Arc;
use std::time::Duration;

pub struct PyStore {
    store: Py<PyAny>,
    /// What a method raised that is not a storage failure, to re-raise.
    pub stash: Option<PyErr>,
}

impl PyStore {
    pub fn new(store: Py<PyAny>) -> Self {
        PyStore { store, stash: None }
    }

    /// Runs `method` with the GIL. A `StorageError` it raises is a storage
    /// failure (`storage`: read and commit) or stashed like anything else
    /// (backoff, which cannot report one).
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
}

impl Store for PyStore {
    fn read(&mut self, project: &str, resources: &[String]) -> Result<w::Snapshot, StorageError> {
        self.call("read", true, |py, store| {
            let snapshot = store.call_method1(intern!(py, "read"), (project, resources))?;
            match snapshot.cast::<Snapshot>() {
                Ok(s) => Ok(s.get().0.clone()),
                Err(_) => Err(PyTypeError::new_err(format!(
                    "store.read must return a delimiter.Snapshot, not {}",
                    snapshot.get_type().name()?
                ))),
            }
        })
    }

    fn commit(
        &mut self,
        claim: &[w::ClaimEntry],
        request: &w::Request,
    ) -> Result<w::CommitOutcome, StorageError> {
        self.call("commit", true, |py, store| {
            let claim: Vec<ClaimEntry> = claim.iter().cloned().map(ClaimEntry).collect();
            let request = Request(request.clone());
            let outcome = store.call_method1(intern!(py, "commit"), (claim, request))?;
            if let Ok(o) = outcome.cast::<CommitOutcome>() {
                return Ok(o.get().0);
            }
            match outcome.extract::<String>().as_deref() {
                Ok("committed") => Ok(w::CommitOutcome::Committed),
                Ok("conflict") => Ok(w::CommitOutcome::Conflict),
                _ => Err(PyTypeError::new_err(format!(
                    "store.commit must return a delimiter.CommitOutcome (or \"committed\" or \
                     \"conflict\"), not {}",
                    outcome.repr()?
                ))),
            }
        })
    }

    fn backoff(&mut self, attempt: u32, delay: Duration) {
        if self.stash.is_some() {
            return;
        }
        let has_backoff = Python::attach(|py| {
            self.store
                .bind(py)
                .hasattr(intern!(py, "backoff"))
                .unwrap_or(false)
        });
        if !has_backoff {
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
}
