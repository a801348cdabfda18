//! Usage: local per project (subtrees summed by the component), or
//! pre-summed for the requesting project's path.

use crate::runtime::w;
use pyo3::prelude::*;

/// What one project itself uses of one resource.
#[pyclass(module = "delimiter", frozen, eq, hash, get_all, from_py_object)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UsageEntry {
    pub project: String,
    pub resource: String,
    pub usage: i64,
}

#[pymethods]
impl UsageEntry {
    #[new]
    fn new(project: String, resource: String, usage: i64) -> Self {
        UsageEntry {
            project,
            resource,
            usage,
        }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        crate::repr!(
            py,
            "UsageEntry",
            project = self.project,
            resource = self.resource,
            usage = self.usage
        )
    }
}

impl UsageEntry {
    pub fn to_wit(&self) -> w::UsageEntry {
        w::UsageEntry {
            project: self.project.clone(),
            resource_name: self.resource.clone(),
            usage: self.usage,
        }
    }
}

/// What the requesting project itself uses of one resource.
#[pyclass(module = "delimiter", frozen, eq, hash, get_all, from_py_object)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceUsage {
    pub resource: String,
    pub usage: i64,
}

#[pymethods]
impl ResourceUsage {
    #[new]
    fn new(resource: String, usage: i64) -> Self {
        ResourceUsage { resource, usage }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        crate::repr!(
            py,
            "ResourceUsage",
            resource = self.resource,
            usage = self.usage
        )
    }
}

impl ResourceUsage {
    pub fn to_wit(&self) -> w::ResourceUsage {
        w::ResourceUsage {
            resource_name: self.resource.clone(),
            usage: self.usage,
        }
    }
}

/// Usage pre-summed by the caller for the requesting project's path: the
/// project's own usage (`local`), and the subtree usage of the project and
/// of each of its ancestors (`subtree`).
#[pyclass(module = "delimiter", frozen, eq, hash, from_py_object)]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct PathUsage {
    pub local: Vec<ResourceUsage>,
    pub subtree: Vec<UsageEntry>,
}

#[pymethods]
impl PathUsage {
    #[new]
    #[pyo3(signature = (local = Vec::new(), subtree = Vec::new()))]
    fn new(local: Vec<ResourceUsage>, subtree: Vec<UsageEntry>) -> Self {
        PathUsage { local, subtree }
    }

    #[getter]
    fn local(&self) -> Vec<ResourceUsage> {
        self.local.clone()
    }

    #[getter]
    fn subtree(&self) -> Vec<UsageEntry> {
        self.subtree.clone()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        crate::repr!(py, "PathUsage", local = self.local, subtree = self.subtree)
    }
}

/// A snapshot's usage, in either form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Usage {
    Local(Vec<UsageEntry>),
    Path(PathUsage),
}

impl Default for Usage {
    fn default() -> Self {
        Usage::Local(Vec::new())
    }
}

impl Usage {
    /// A `PathUsage`, or a sequence of `UsageEntry` (local usage), or None.
    pub fn from_python(value: Option<&Bound<'_, PyAny>>) -> PyResult<Usage> {
        let Some(value) = value.filter(|v| !v.is_none()) else {
            return Ok(Usage::default());
        };
        if let Ok(path) = value.cast::<PathUsage>() {
            return Ok(Usage::Path(path.get().clone()));
        }
        Ok(Usage::Local(value.extract()?))
    }

    pub fn to_python<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        use pyo3::IntoPyObjectExt;
        match self {
            Usage::Local(entries) => entries.clone().into_bound_py_any(py),
            Usage::Path(path) => path.clone().into_bound_py_any(py),
        }
    }

    pub fn to_wit(&self) -> w::Usage {
        match self {
            Usage::Local(entries) => {
                w::Usage::Local(entries.iter().map(UsageEntry::to_wit).collect())
            }
            Usage::Path(path) => w::Usage::Path(w::PathUsage {
                local: path.local.iter().map(ResourceUsage::to_wit).collect(),
                subtree: path.subtree.iter().map(UsageEntry::to_wit).collect(),
            }),
        }
    }
}
