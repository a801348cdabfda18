//! Validation: tree well-formedness and Keystone's strict-two-level rule.

use crate::limits::Limits;
use crate::model::Config;
use crate::runtime::{self, GuestLimits, w};
use crate::tree::Project;
use pyo3::prelude::*;

/// A problem that would make every decision fail: `error` is the
/// `InvalidInput` a decision would raise (not raised here); `kind`,
/// `project` and `resource` are copied from it.
#[pyclass(module = "delimiter", frozen)]
pub struct InvalidFinding {
    #[pyo3(get)]
    pub kind: String,
    #[pyo3(get)]
    pub project: Option<String>,
    #[pyo3(get)]
    pub resource: Option<String>,
    #[pyo3(get)]
    pub error: Py<PyAny>,
}

#[pymethods]
impl InvalidFinding {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        crate::repr!(py, "InvalidFinding", error = self.error.bind(py))
    }

    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        let Ok(other) = other.cast::<InvalidFinding>() else {
            return Ok(false);
        };
        let other = other.get();
        let (a, b) = (self.error.bind(py), other.error.bind(py));
        Ok(self.kind == other.kind
            && a.getattr("fields")?.eq(b.getattr("fields")?)?
            && a.str()?.to_string() == b.str()?.to_string())
    }
}

/// Strict-two-level: a child's limit is above its parent's (`child_limit`
/// -1 when the child is unlimited).
#[pyclass(module = "delimiter", frozen, eq, hash, get_all, from_py_object)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChildLimitExceedsParent {
    pub parent: String,
    pub child: String,
    pub resource: String,
    pub parent_limit: i64,
    pub child_limit: i64,
}

#[pymethods]
impl ChildLimitExceedsParent {
    #[new]
    fn new(
        parent: String,
        child: String,
        resource: String,
        parent_limit: i64,
        child_limit: i64,
    ) -> Self {
        ChildLimitExceedsParent {
            parent,
            child,
            resource,
            parent_limit,
            child_limit,
        }
    }

    /// Always `child-limit-exceeds-parent`.
    #[getter]
    fn kind(&self) -> &'static str {
        "child-limit-exceeds-parent"
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        crate::repr!(
            py,
            "ChildLimitExceedsParent",
            parent = self.parent,
            child = self.child,
            resource = self.resource,
            parent_limit = self.parent_limit,
            child_limit = self.child_limit
        )
    }
}

/// Every problem of the tree and limits, in order (tree problems, limit
/// problems, then child limits by parent, child and resource); empty when
/// valid. Each is an `InvalidFinding` or a `ChildLimitExceedsParent`.
#[pyfunction]
#[pyo3(signature = (projects, limits = None, config = None, *, fuel = None, memory_limit = None))]
pub fn validate(
    py: Python<'_>,
    projects: Vec<Project>,
    limits: Option<Limits>,
    config: Option<&Bound<'_, Config>>,
    fuel: Option<u64>,
    memory_limit: Option<usize>,
) -> PyResult<Vec<Py<PyAny>>> {
    let c = Config::wit_of(config);
    let p: Vec<w::Project> = projects.iter().map(Project::to_wit).collect();
    let l = limits.unwrap_or_default().to_wit();
    let findings = py
        .detach(|| {
            runtime::call(
                GuestLimits::new(fuel, memory_limit),
                None,
                |store, quota| {
                    let findings = quota.call_validate(&mut *store, c, &p, &l)?;
                    findings
                        .into_iter()
                        .map(|f| match f {
                            w::Finding::Invalid(e) => {
                                runtime::describe(store, quota, e).map(Found::Invalid)
                            }
                            w::Finding::ChildLimitExceedsParent(x) => Ok(Found::Child(x)),
                        })
                        .collect::<wasmtime::Result<Vec<_>>>()
                },
            )
        })
        .map_err(|e| e.into_pyerr(py))?;
    findings
        .into_iter()
        .map(|f| {
            use pyo3::IntoPyObjectExt;
            match f {
                Found::Invalid((e, message)) => {
                    let (kind, project, resource) = crate::error::names(&e);
                    let error = crate::error::invalid_input_value(py, &e, message)?;
                    InvalidFinding {
                        kind: kind.to_string(),
                        project,
                        resource,
                        error: error.unbind(),
                    }
                    .into_py_any(py)
                }
                Found::Child(x) => ChildLimitExceedsParent {
                    parent: x.parent,
                    child: x.child,
                    resource: x.resource_name,
                    parent_limit: x.parent_limit,
                    child_limit: x.child_limit,
                }
                .into_py_any(py),
            }
        })
        .collect()
}

enum Found {
    Invalid((w::Error, String)),
    Child(w::ChildLimitExcess),
}
