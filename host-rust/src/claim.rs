//! Generations and claims: what the caller's write must compare-and-update.

/// The generation a project was read at. Owned by the caller's storage:
/// monotonic, never reused, never reset (not even when a row is re-created).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Generation {
    pub project: String,
    pub generation: u64,
}

impl Generation {
    pub fn new(project: impl Into<String>, generation: u64) -> Self {
        Generation {
            project: project.into(),
            generation,
        }
    }
}

/// One row the caller's commit must compare-and-update:
/// `UPDATE ... SET generation = generation + 1 WHERE project_id = :project
/// AND generation = :generation`, all entries in one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClaimEntry {
    pub project: String,
    pub generation: u64,
}
