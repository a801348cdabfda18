//! Consuming with retries: the caller's storage as a Python object with
//! `read`, `commit` and (optionally) `backoff` methods, driven by the
//! component's own read, decide, compare-and-update, back-off loop.

use crate::claim::ClaimEntry;
use crate::decide::{Request, Violation};
use crate::model::Config;
use crate::runtime::{self, GuestLimits, w};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

/// How hard `consume` tries: `max_attempts` attempts in all (read, decide,
/// commit); backoffs jittered (reproducibly, from `seed`) under a cap that
/// starts at `base_delay_us` and doubles up to `max_delay_us`.
#[pyclass(module = "delimiter", frozen, eq, hash, get_all, from_py_object)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay_us: u64,
    pub max_delay_us: u64,
    pub seed: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay_us: 1000,
            max_delay_us: 100_000,
            seed: 0,
        }
    }
}

#[pymethods]
impl RetryPolicy {
    #[new]
    #[pyo3(signature = (max_attempts = 5, base_delay_us = 1000, max_delay_us = 100_000, seed = 0))]
    fn new(max_attempts: u32, base_delay_us: u64, max_delay_us: u64, seed: u64) -> Self {
        RetryPolicy {
            max_attempts,
            base_delay_us,
            max_delay_us,
            seed,
        }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        crate::repr!(
            py,
            "RetryPolicy",
            max_attempts = self.max_attempts,
            base_delay_us = self.base_delay_us,
            max_delay_us = self.max_delay_us,
            seed = self.seed
        )
    }
}

/// What a store's `commit` did (it may also return the strings
/// `"committed"` and `"conflict"`).
#[pyclass(module = "delimiter", eq, eq_int, frozen, hash, from_py_object)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommitOutcome {
    /// Every claimed generation matched and was bumped; the rows are written.
    #[pyo3(name = "COMMITTED")]
    Committed,
    /// A claimed generation had moved on; everything was rolled back.
    #[pyo3(name = "CONFLICT")]
    Conflict,
}

#[pymethods]
impl CommitOutcome {
    /// `committed` or `conflict`.
    #[getter]
    fn value(&self) -> &'static str {
        match self {
            CommitOutcome::Committed => "committed",
            CommitOutcome::Conflict => "conflict",
        }
    }

    fn __str__(&self) -> &'static str {
        self.value()
    }
}

/// What a store's `commit` returned, as the WIT outcome.
pub fn commit_outcome(value: &Bound<'_, PyAny>) -> PyResult<w::CommitOutcome> {
    let outcome = if let Ok(o) = value.cast::<CommitOutcome>() {
        Some(*o.get())
    } else {
        match value.extract::<String>().as_deref() {
            Ok("committed") => Some(CommitOutcome::Committed),
            Ok("conflict") => Some(CommitOutcome::Conflict),
            _ => None,
        }
    };
    match outcome {
        Some(CommitOutcome::Committed) => Ok(w::CommitOutcome::Committed),
        Some(CommitOutcome::Conflict) => Ok(w::CommitOutcome::Conflict),
        None => Err(PyTypeError::new_err(format!(
            "store.commit must return a delimiter.CommitOutcome (or \"committed\" or \
             \"conflict\"), not {}",
            value.repr()?
        ))),
    }
}

/// A successful `consume`: the claim that was committed, and the attempts
/// used (1 when the first commit went through).
#[pyclass(module = "delimiter", frozen, eq, hash, from_py_object)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Consumed {
    pub claim: Vec<ClaimEntry>,
    pub attempts: u32,
}

#[pymethods]
impl Consumed {
    #[new]
    fn new(claim: Vec<ClaimEntry>, attempts: u32) -> Self {
        Consumed { claim, attempts }
    }

    #[getter]
    fn claim(&self) -> Vec<ClaimEntry> {
        self.claim.clone()
    }

    #[getter]
    fn attempts(&self) -> u32 {
        self.attempts
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        crate::repr!(py, "Consumed", claim = self.claim, attempts = self.attempts)
    }
}

enum Failed {
    Invalid((w::Error, String)),
    Other(w::ConsumeError, Option<PyErr>),
}

/// Consumes `request` through `store`: read, decide, commit; on a conflict,
/// back off and start again from a fresh read, up to `policy.max_attempts`.
///
/// `store` has `read(project, resources) -> Snapshot`, `commit(claim,
/// request) -> CommitOutcome` (one transaction: write the rows and
/// compare-and-update every claimed generation, rolling back on a miss) and
/// optionally `backoff(attempt, delay_us)` (else the driver sleeps). A
/// store method signals a storage failure by raising `StorageError`; any
/// other exception stops the driver at once and propagates as itself.
///
/// Raises `OverLimit` (final, never retried), `RetriesExhausted`,
/// `StorageError`, `InvalidInput` or `GuestFault`; nothing is committed in
/// any of those cases.
#[pyfunction]
#[pyo3(signature = (store, request, config = None, policy = None, *, fuel = None, memory_limit = None))]
pub fn consume(
    py: Python<'_>,
    store: Py<PyAny>,
    request: &Bound<'_, Request>,
    config: Option<&Bound<'_, Config>>,
    policy: Option<RetryPolicy>,
    fuel: Option<u64>,
    memory_limit: Option<usize>,
) -> PyResult<Consumed> {
    let c = Config::wit_of(config);
    let p = policy.unwrap_or_default();
    let p = w::RetryPolicy {
        max_attempts: p.max_attempts,
        base_delay_us: p.base_delay_us,
        max_delay_us: p.max_delay_us,
        seed: p.seed,
    };
    let r = request.get().to_wit();
    let out = py
        .detach(|| {
            runtime::call(
                GuestLimits::new(fuel, memory_limit),
                Some(store),
                |store, quota| {
                    let result = quota.call_consume(&mut *store, c, p, &r)?;
                    let cause = store.data_mut().take_storage_cause();
                    Ok(match result {
                        Ok(done) => Ok(done),
                        Err(w::ConsumeError::Invalid(e)) => {
                            Err(Failed::Invalid(runtime::describe(store, quota, e)?))
                        }
                        Err(other) => Err(Failed::Other(other, cause)),
                    })
                },
            )
        })
        .map_err(|e| e.into_pyerr(py))?;
    match out {
        Ok(done) => Ok(Consumed {
            claim: done.claim.into_iter().map(ClaimEntry::from_wit).collect(),
            attempts: done.attempts,
        }),
        Err(Failed::Invalid((e, message))) => Err(crate::error::invalid_input(py, &e, message)),
        Err(Failed::Other(w::ConsumeError::OverLimit(o), _)) => Err(crate::error::over_limit(
            py,
            o.violations.into_iter().map(Violation::from_wit).collect(),
            o.attempts,
        )),
        Err(Failed::Other(w::ConsumeError::RetriesExhausted(attempts), _)) => {
            Err(crate::error::retries_exhausted(py, attempts))
        }
        Err(Failed::Other(w::ConsumeError::Storage(s), cause)) => {
            Err(crate::error::storage(py, s.message, s.attempts, cause))
        }
        Err(Failed::Other(w::ConsumeError::Invalid(_), _)) => unreachable!("handled above"),
    }
}
