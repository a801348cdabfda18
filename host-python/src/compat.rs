//! oslo.limit 2.12's flat check, as the component reproduces it. The
//! drop-in `Enforcer` is Python (`delimiter.compat.oslo_limit`); this is
//! the one rule it calls.

use crate::decide::Delta;
use crate::runtime::{self, GuestLimits, w};
use crate::usage::ResourceUsage;
use pyo3::prelude::*;

/// A limit of one resource, as oslo.limit passes them.
#[pyclass(module = "delimiter", frozen, eq, hash, get_all, from_py_object)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceLimit {
    pub resource: String,
    pub limit: i64,
}

#[pymethods]
impl ResourceLimit {
    #[new]
    fn new(resource: String, limit: i64) -> Self {
        ResourceLimit { resource, limit }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        crate::repr!(
            py,
            "ResourceLimit",
            resource = self.resource,
            limit = self.limit
        )
    }
}

impl ResourceLimit {
    fn to_wit(&self) -> w::ResourceLimit {
        w::ResourceLimit {
            resource_name: self.resource.clone(),
            limit: self.limit,
        }
    }
}

/// One oslo.limit 2.12 flat `Enforcer.enforce(project_id, deltas)` call,
/// with its limits and usage already fetched. `project_id=None` checks
/// against registered limits only (`project` is then ignored).
#[pyclass(module = "delimiter", frozen, eq, hash, from_py_object)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OsloCheck {
    pub project_id: Option<String>,
    pub deltas: Vec<Delta>,
    pub registered: Vec<ResourceLimit>,
    pub project: Vec<ResourceLimit>,
    pub usage: Vec<ResourceUsage>,
}

#[pymethods]
impl OsloCheck {
    #[new]
    #[pyo3(signature = (project_id, deltas, registered = Vec::new(), project = Vec::new(), usage = Vec::new()))]
    fn new(
        project_id: Option<String>,
        deltas: &Bound<'_, PyAny>,
        registered: Vec<ResourceLimit>,
        project: Vec<ResourceLimit>,
        usage: Vec<ResourceUsage>,
    ) -> PyResult<Self> {
        Ok(OsloCheck {
            project_id,
            deltas: Delta::list_from_python(deltas)?,
            registered,
            project,
            usage,
        })
    }

    #[getter]
    fn project_id(&self) -> Option<String> {
        self.project_id.clone()
    }

    #[getter]
    fn deltas(&self) -> Vec<Delta> {
        self.deltas.clone()
    }

    #[getter]
    fn registered(&self) -> Vec<ResourceLimit> {
        self.registered.clone()
    }

    #[getter]
    fn project(&self) -> Vec<ResourceLimit> {
        self.project.clone()
    }

    #[getter]
    fn usage(&self) -> Vec<ResourceUsage> {
        self.usage.clone()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        crate::repr!(
            py,
            "OsloCheck",
            project_id = self.project_id,
            deltas = self.deltas,
            registered = self.registered,
            project = self.project,
            usage = self.usage
        )
    }
}

/// oslo.limit's `OverLimitInfo`, as data.
#[pyclass(module = "delimiter", frozen, eq, hash, get_all, from_py_object)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OverLimitInfo {
    pub resource_name: String,
    pub limit: i64,
    pub current_usage: i64,
    pub delta: i64,
}

#[pymethods]
impl OverLimitInfo {
    #[new]
    fn new(resource_name: String, limit: i64, current_usage: i64, delta: i64) -> Self {
        OverLimitInfo {
            resource_name,
            limit,
            current_usage,
            delta,
        }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        crate::repr!(
            py,
            "OverLimitInfo",
            resource_name = self.resource_name,
            limit = self.limit,
            current_usage = self.current_usage,
            delta = self.delta
        )
    }
}

/// oslo.limit 2.12's flat check: an empty list when within limits,
/// otherwise `ProjectOverLimit.over_limit_info_list` (by resource name).
/// Missing usage raises `InvalidInput(kind="missing-usage")`.
#[pyfunction]
#[pyo3(signature = (check, *, fuel = None, memory_limit = None))]
pub fn oslo_check(
    py: Python<'_>,
    check: &Bound<'_, OsloCheck>,
    fuel: Option<u64>,
    memory_limit: Option<usize>,
) -> PyResult<Vec<OverLimitInfo>> {
    let c = check.get();
    let o = w::OsloRequest {
        project_id: c.project_id.clone(),
        deltas: c.deltas.iter().map(Delta::to_wit).collect(),
        registered: c.registered.iter().map(ResourceLimit::to_wit).collect(),
        project: c.project.iter().map(ResourceLimit::to_wit).collect(),
        usage: c.usage.iter().map(ResourceUsage::to_wit).collect(),
    };
    let out = py
        .detach(|| {
            runtime::call(
                GuestLimits::new(fuel, memory_limit),
                None,
                |store, quota| {
                    Ok(match quota.call_oslo_check(&mut *store, &o)? {
                        Ok(list) => Ok(list),
                        Err(e) => Err(runtime::describe(store, quota, e)?),
                    })
                },
            )
        })
        .map_err(|e| e.into_pyerr(py))?;
    match out {
        Ok(list) => Ok(list
            .into_iter()
            .map(|o| OverLimitInfo {
                resource_name: o.resource_name,
                limit: o.limit,
                current_usage: o.current_usage,
                delta: o.delta,
            })
            .collect()),
        Err((e, message)) => Err(crate::error::invalid_input(py, &e, message)),
    }
}
