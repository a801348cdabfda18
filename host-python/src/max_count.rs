//! How many units of a request fit now (Nova's multi-create).

use crate::decide::Request;
use crate::model::Config;
use crate::runtime::{self, GuestLimits, w};
use crate::snapshot::Snapshot;
use pyo3::prelude::*;

/// The outcome of `max_count`: `units`, the largest number of units that
/// would be admitted now, or None when no positive per-unit delta meets a
/// finite limit (`unlimited` is then True).
#[pyclass(module = "delimiter", frozen, eq, hash, get_all, from_py_object)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Count {
    pub units: Option<i64>,
}

#[pymethods]
impl Count {
    #[new]
    fn new(units: Option<i64>) -> Self {
        Count { units }
    }

    /// True when no finite limit applies.
    #[getter]
    fn unlimited(&self) -> bool {
        self.units.is_none()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        crate::repr!(py, "Count", units = self.units)
    }
}

/// How many units of `request` (its deltas are per unit, zero or more)
/// fit now.
#[pyfunction]
#[pyo3(signature = (snapshot, request, config = None, *, fuel = None, memory_limit = None))]
pub fn max_count(
    py: Python<'_>,
    snapshot: &Bound<'_, Snapshot>,
    request: &Bound<'_, Request>,
    config: Option<&Bound<'_, Config>>,
    fuel: Option<u64>,
    memory_limit: Option<usize>,
) -> PyResult<Count> {
    let (c, s, r) = (
        Config::wit_of(config),
        snapshot.get().to_wit(),
        request.get().to_wit(),
    );
    let out = py
        .detach(|| {
            runtime::call(
                GuestLimits::new(fuel, memory_limit),
                None,
                |store, quota| {
                    Ok(match quota.call_max_count(&mut *store, c, &s, &r)? {
                        Ok(n) => Ok(n),
                        Err(e) => Err(runtime::describe(store, quota, e)?),
                    })
                },
            )
        })
        .map_err(|e| e.into_pyerr(py))?;
    match out {
        Ok(w::Count::Unlimited) => Ok(Count { units: None }),
        Ok(w::Count::Units(n)) => Ok(Count { units: Some(n) }),
        Err((e, message)) => Err(crate::error::invalid_input(py, &e, message)),
    }
}
