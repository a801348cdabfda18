//! The decision: admit or refuse a request, and the claim that goes with
//! an admission.

use crate::ClaimEntry;

/// A requested change of one resource: > 0 consumes, < 0 releases, 0
/// re-checks.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Delta {
    pub resource: String,
    pub delta: i64,
}

impl Delta {
    pub fn new(resource: impl Into<String>, delta: i64) -> Self {
        Delta {
            resource: resource.into(),
            delta,
        }
    }
}

/// A request by one project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub project: String,
    pub deltas: Vec<Delta>,
}

impl Request {
    pub fn new(project: impl Into<String>, deltas: Vec<Delta>) -> Self {
        Request {
            project: project.into(),
            deltas,
        }
    }
}

/// One violated constraint of a refusal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Violation {
    /// The project whose limit would be exceeded (the requester or an ancestor).
    pub project: String,
    pub resource: String,
    pub limit: i64,
    /// Current usage at that project: u for flat, U (subtree) otherwise.
    pub usage: i64,
    pub delta: i64,
}

/// The outcome of [`evaluate`](crate::evaluate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Admitted. `claim` lists the rows to compare-and-update, from the
    /// project up; it is empty when no delta is positive.
    Admitted { claim: Vec<ClaimEntry> },
    /// Refused, with every violated constraint, by resource name and then
    /// from the project up to the root.
    Refused { violations: Vec<Violation> },
}

impl Decision {
    pub fn is_admitted(&self) -> bool {
        matches!(self, Decision::Admitted { .. })
    }
}
