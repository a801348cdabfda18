//! A snapshot: everything read from the caller's storage at one point in
//! time.

use crate::claim::Generation;
use crate::limits::Limits;
use crate::runtime::w;
use crate::tree::Project;
use crate::usage::Usage;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

/// The tree, limits, usage and generations read at one point in time.
/// `usage` is a list of `UsageEntry` (local usage of any project) or a
/// `PathUsage`; unlisted usage is 0.
#[pyclass(module = "delimiter", frozen, eq, hash, from_py_object)]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Snapshot {
    pub projects: Vec<Project>,
    pub limits: Limits,
    pub usage: Usage,
    pub generations: Vec<Generation>,
}

#[pymethods]
impl Snapshot {
    #[new]
    #[pyo3(signature = (projects = Vec::new(), limits = None, usage = None, generations = Vec::new()))]
    fn new(
        projects: Vec<Project>,
        limits: Option<Limits>,
        usage: Option<&Bound<'_, PyAny>>,
        generations: Vec<Generation>,
    ) -> PyResult<Self> {
        Ok(Snapshot {
            projects,
            limits: limits.unwrap_or_default(),
            usage: Usage::from_python(usage)?,
            generations,
        })
    }

    #[getter]
    fn projects(&self) -> Vec<Project> {
        self.projects.clone()
    }

    #[getter]
    fn limits(&self) -> Limits {
        self.limits.clone()
    }

    #[getter]
    fn usage<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.usage.to_python(py)
    }

    #[getter]
    fn generations(&self) -> Vec<Generation> {
        self.generations.clone()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        crate::repr!(
            py,
            "Snapshot",
            projects = self.projects,
            limits = self.limits.clone(),
            usage = self.usage.to_python(py)?,
            generations = self.generations
        )
    }
}

impl Snapshot {
    pub fn to_wit(&self) -> w::Snapshot {
        w::Snapshot {
            projects: self.projects.iter().map(Project::to_wit).collect(),
            limits: self.limits.to_wit(),
            usage: self.usage.to_wit(),
            generations: self.generations.iter().map(Generation::to_wit).collect(),
        }
    }
}

/// What a store's `read` returned, as the WIT snapshot.
pub fn from_store(value: &Bound<'_, PyAny>) -> PyResult<w::Snapshot> {
    match value.cast::<Snapshot>() {
        Ok(snapshot) => Ok(snapshot.get().to_wit()),
        Err(_) => Err(PyTypeError::new_err(format!(
            "store.read must return a delimiter.Snapshot, not {}",
            value.get_type().name()?
        ))),
    }
}
