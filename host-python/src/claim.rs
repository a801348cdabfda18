//! Generations (what the caller read) and claims (what its commit must
//! compare-and-update).

use crate::runtime::w;
use pyo3::prelude::*;
use std::sync::Arc;

/// The generation a project was read at (monotonic, never reused).
#[pyclass(module = "delimiter", frozen, eq, hash, get_all, from_py_object)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Generation {
    pub project: String,
    pub generation: u64,
}

#[pymethods]
impl Generation {
    #[new]
    fn new(project: String, generation: u64) -> Self {
        Generation {
            project,
            generation,
        }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        crate::repr!(
            py,
            "Generation",
            project = &*self.project,
            generation = self.generation
        )
    }
}

impl Generation {
    pub fn to_wit(&self) -> w::Generation {
        w::Generation {
            project: self.project.clone(),
            generation: self.generation,
        }
    }
}

/// One row the caller's commit must compare-and-update:
/// `UPDATE ... SET generation = generation + 1 WHERE project_id = :project
/// AND generation = :generation`.
#[pyclass(module = "delimiter", frozen, eq, hash, from_py_object)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClaimEntry {
    /// Shared, not copied: a prepared decision's claim names ids of a path
    /// it keeps, one entry per node (a string copy each was a tenth of a
    /// depth-10 decision).
    pub project: Arc<str>,
    pub generation: u64,
}

#[pymethods]
impl ClaimEntry {
    #[new]
    fn new(project: String, generation: u64) -> Self {
        ClaimEntry {
            project: project.into(),
            generation,
        }
    }

    #[getter]
    fn project(&self) -> &str {
        &self.project
    }

    #[getter]
    fn generation(&self) -> u64 {
        self.generation
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        crate::repr!(
            py,
            "ClaimEntry",
            project = &*self.project,
            generation = self.generation
        )
    }
}

impl ClaimEntry {
    pub fn from_wit(c: w::ClaimEntry) -> Self {
        ClaimEntry {
            project: c.project.into(),
            generation: c.generation,
        }
    }
}

/// A WIT claim as the Python list a store's `commit` receives.
pub fn to_python(claim: Vec<w::ClaimEntry>) -> Vec<ClaimEntry> {
    claim.into_iter().map(ClaimEntry::from_wit).collect()
}
