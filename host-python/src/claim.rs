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

/// A decision's claim: its entries, or, from a prepared decision, the path
/// positions the component answered with the path and generations they
/// index, turned into entries only when read (most callers read
/// `admitted`, then hand the claim to their store once).
#[derive(Debug, Clone)]
pub enum Claim {
    Entries(Vec<ClaimEntry>),
    Positions {
        path: Arc<[Arc<str>]>,
        /// Each below the length of `path` and of `generations` (checked
        /// when made).
        positions: Vec<u32>,
        generations: Vec<u64>,
    },
}

impl Claim {
    pub fn empty() -> Self {
        Claim::Entries(Vec::new())
    }

    /// The claim of `positions` in `path` with `generations`, or the first
    /// position off either (only a broken component answers one).
    pub fn positions(
        path: Arc<[Arc<str>]>,
        positions: Vec<u32>,
        generations: Vec<u64>,
    ) -> Result<Self, u32> {
        let len = path.len().min(generations.len());
        match positions.iter().find(|&&k| k as usize >= len) {
            Some(&off) => Err(off),
            None => Ok(Claim::Positions {
                path,
                positions,
                generations,
            }),
        }
    }

    /// (project, generation) per entry, from the project up.
    pub fn iter(&self) -> Box<dyn Iterator<Item = (&str, u64)> + '_> {
        match self {
            Claim::Entries(entries) => {
                Box::new(entries.iter().map(|e| (&*e.project, e.generation)))
            }
            Claim::Positions {
                path,
                positions,
                generations,
            } => Box::new(positions.iter().map(|&k| {
                let k = k as usize;
                (&*path[k], generations[k])
            })),
        }
    }

    pub fn to_vec(&self) -> Vec<ClaimEntry> {
        match self {
            Claim::Entries(entries) => entries.clone(),
            Claim::Positions {
                path,
                positions,
                generations,
            } => positions
                .iter()
                .map(|&k| ClaimEntry {
                    project: path[k as usize].clone(),
                    generation: generations[k as usize],
                })
                .collect(),
        }
    }
}

impl PartialEq for Claim {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Claim {}

impl std::hash::Hash for Claim {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // As a Vec<ClaimEntry> hashes: the length, then each entry.
        let mut len = 0usize;
        for (project, generation) in self.iter() {
            project.hash(state);
            generation.hash(state);
            len += 1;
        }
        len.hash(state);
    }
}
