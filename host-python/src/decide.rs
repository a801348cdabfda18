//! Deciding: requests, refusals and `evaluate`.

use crate::claim::{Claim, ClaimEntry};
use crate::model::Config;
use crate::runtime::{self, GuestLimits, w};
use crate::snapshot::Snapshot;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// A requested change of one resource: > 0 consumes, < 0 releases, 0
/// re-checks.
#[pyclass(module = "delimiter", frozen, eq, hash, get_all, from_py_object)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Delta {
    pub resource: String,
    pub delta: i64,
}

#[pymethods]
impl Delta {
    #[new]
    fn new(resource: String, delta: i64) -> Self {
        Delta { resource, delta }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        crate::repr!(py, "Delta", resource = self.resource, delta = self.delta)
    }
}

impl Delta {
    pub fn to_wit(&self) -> w::Delta {
        w::Delta {
            resource_name: self.resource.clone(),
            delta: self.delta,
        }
    }

    /// A list of `Delta`, or a dict `{resource: delta}` (in its order).
    pub fn list_from_python(value: &Bound<'_, PyAny>) -> PyResult<Vec<Delta>> {
        if let Ok(dict) = value.cast::<PyDict>() {
            return dict
                .iter()
                .map(|(k, v)| Ok(Delta::new(k.extract()?, v.extract()?)))
                .collect();
        }
        value.extract()
    }
}

/// A request by one project. `deltas` is a list of `Delta` or a dict
/// `{resource: delta}`.
#[pyclass(module = "delimiter", frozen, eq, hash, from_py_object)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Request {
    pub project: String,
    pub deltas: Vec<Delta>,
}

#[pymethods]
impl Request {
    #[new]
    fn new(project: String, deltas: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Request {
            project,
            deltas: Delta::list_from_python(deltas)?,
        })
    }

    #[getter]
    fn project(&self) -> &str {
        &self.project
    }

    #[getter]
    fn deltas(&self) -> Vec<Delta> {
        self.deltas.clone()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        crate::repr!(py, "Request", project = self.project, deltas = self.deltas)
    }
}

impl Request {
    pub fn to_wit(&self) -> w::Request {
        w::Request {
            project: self.project.clone(),
            deltas: self.deltas.iter().map(Delta::to_wit).collect(),
        }
    }
}

/// A WIT request as the Python object a store's `commit` receives.
pub fn request_to_python(r: w::Request) -> Request {
    Request {
        project: r.project,
        deltas: r
            .deltas
            .into_iter()
            .map(|d| Delta {
                resource: d.resource_name,
                delta: d.delta,
            })
            .collect(),
    }
}

/// One violated constraint of a refusal: the constraining project, the
/// resource, its limit, the usage at that project (local for flat, subtree
/// otherwise) and the requested delta.
#[pyclass(module = "delimiter", frozen, eq, hash, get_all, from_py_object)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Violation {
    pub project: String,
    pub resource: String,
    pub limit: i64,
    pub usage: i64,
    pub delta: i64,
}

#[pymethods]
impl Violation {
    #[new]
    fn new(project: String, resource: String, limit: i64, usage: i64, delta: i64) -> Self {
        Violation {
            project,
            resource,
            limit,
            usage,
            delta,
        }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        crate::repr!(
            py,
            "Violation",
            project = self.project,
            resource = self.resource,
            limit = self.limit,
            usage = self.usage,
            delta = self.delta
        )
    }
}

impl Violation {
    pub fn from_wit(v: w::Violation) -> Self {
        Violation {
            project: v.project,
            resource: v.resource_name,
            limit: v.limit,
            usage: v.usage,
            delta: v.delta,
        }
    }
}

/// The outcome of `evaluate`: admitted with the claim to compare-and-update
/// (from the project up; empty when no delta is positive), or refused with
/// every violated constraint (by resource, then from the project up).
#[pyclass(module = "delimiter", frozen, eq, hash, from_py_object)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Decision {
    pub admitted: bool,
    pub claim: Claim,
    pub violations: Vec<Violation>,
}

#[pymethods]
impl Decision {
    #[new]
    #[pyo3(signature = (admitted, claim = Vec::new(), violations = Vec::new()))]
    fn new(admitted: bool, claim: Vec<ClaimEntry>, violations: Vec<Violation>) -> Self {
        Decision {
            admitted,
            claim: Claim::Entries(claim),
            violations,
        }
    }

    #[getter]
    fn admitted(&self) -> bool {
        self.admitted
    }

    #[getter]
    fn claim(&self) -> Vec<ClaimEntry> {
        self.claim.to_vec()
    }

    #[getter]
    fn violations(&self) -> Vec<Violation> {
        self.violations.clone()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        if self.admitted {
            crate::repr!(
                py,
                "Decision",
                admitted = self.admitted,
                claim = self.claim.to_vec()
            )
        } else {
            crate::repr!(
                py,
                "Decision",
                admitted = self.admitted,
                violations = self.violations
            )
        }
    }
}

impl Decision {
    fn from_wit(d: w::Decision) -> Self {
        match d {
            w::Decision::Admitted(claim) => Decision {
                admitted: true,
                claim: Claim::Entries(claim.into_iter().map(ClaimEntry::from_wit).collect()),
                violations: Vec::new(),
            },
            w::Decision::Refused(violations) => Decision {
                admitted: false,
                claim: Claim::empty(),
                violations: violations.into_iter().map(Violation::from_wit).collect(),
            },
        }
    }
}

/// Admits or refuses `request` against `snapshot`; an admission carries the
/// claim. Only positive deltas can be refused.
#[pyfunction]
#[pyo3(signature = (snapshot, request, config = None, *, fuel = None, memory_limit = None))]
pub fn evaluate(
    py: Python<'_>,
    snapshot: &Bound<'_, Snapshot>,
    request: &Bound<'_, Request>,
    config: Option<&Bound<'_, Config>>,
    fuel: Option<u64>,
    memory_limit: Option<usize>,
) -> PyResult<Decision> {
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
                    Ok(match quota.call_evaluate(&mut *store, c, &s, &r)? {
                        Ok(d) => Ok(d),
                        Err(e) => Err(runtime::describe(store, quota, e)?),
                    })
                },
            )
        })
        .map_err(|e| e.into_pyerr(py))?;
    match out {
        Ok(d) => Ok(Decision::from_wit(d)),
        Err((e, message)) => Err(crate::error::invalid_input(py, &e, message)),
    }
}
