//! Limits: registered defaults and per-project overrides. -1 is unlimited.

use crate::runtime::w;
use pyo3::prelude::*;

/// The default limit of a resource for every project. -1 is unlimited.
#[pyclass(module = "delimiter", frozen, eq, hash, get_all, from_py_object)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RegisteredLimit {
    pub resource: String,
    pub limit: i64,
}

#[pymethods]
impl RegisteredLimit {
    #[new]
    fn new(resource: String, limit: i64) -> Self {
        RegisteredLimit { resource, limit }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        crate::repr!(
            py,
            "RegisteredLimit",
            resource = self.resource,
            limit = self.limit
        )
    }
}

/// An override of the registered limit for one project. -1 is unlimited.
#[pyclass(module = "delimiter", frozen, eq, hash, get_all, from_py_object)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProjectLimit {
    pub project: String,
    pub resource: String,
    pub limit: i64,
}

#[pymethods]
impl ProjectLimit {
    #[new]
    fn new(project: String, resource: String, limit: i64) -> Self {
        ProjectLimit {
            project,
            resource,
            limit,
        }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        crate::repr!(
            py,
            "ProjectLimit",
            project = self.project,
            resource = self.resource,
            limit = self.limit
        )
    }
}

/// All limits known to the caller.
#[pyclass(module = "delimiter", frozen, eq, hash, from_py_object)]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Limits {
    pub registered: Vec<RegisteredLimit>,
    pub project: Vec<ProjectLimit>,
}

#[pymethods]
impl Limits {
    #[new]
    #[pyo3(signature = (registered = Vec::new(), project = Vec::new()))]
    fn new(registered: Vec<RegisteredLimit>, project: Vec<ProjectLimit>) -> Self {
        Limits {
            registered,
            project,
        }
    }

    #[getter]
    fn registered(&self) -> Vec<RegisteredLimit> {
        self.registered.clone()
    }

    #[getter]
    fn project(&self) -> Vec<ProjectLimit> {
        self.project.clone()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        crate::repr!(
            py,
            "Limits",
            registered = self.registered,
            project = self.project
        )
    }
}

impl Limits {
    pub fn to_wit(&self) -> w::Limits {
        w::Limits {
            registered: self
                .registered
                .iter()
                .map(|r| w::RegisteredLimit {
                    resource_name: r.resource.clone(),
                    limit: r.limit,
                })
                .collect(),
            project: self
                .project
                .iter()
                .map(|p| w::ProjectLimit {
                    project: p.project.clone(),
                    resource_name: p.resource.clone(),
                    limit: p.limit,
                })
                .collect(),
        }
    }
}
