//! The decision: admit or refuse a request, and the claim that goes with
//! an admission.

use crate::claim::ClaimEntry;
use crate::error::{Error, Result};
use crate::limits::Limit;
use crate::model::Config;
use crate::snapshot::{Constraint, Snapshot, View};

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

    pub(crate) fn resources(&self) -> Vec<&str> {
        self.deltas.iter().map(|d| d.resource.as_str()).collect()
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

/// The outcome of [`evaluate`].
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

/// Decides `request` against `snapshot` under `config`.
///
/// Only positive deltas can be refused. A release that would take the
/// project's usage below zero, or any sum that overflows 64 bits, is an
/// error rather than a decision.
pub fn evaluate(config: &Config, snapshot: &Snapshot, request: &Request) -> Result<Decision> {
    let resources = request.resources();
    let view = View::build(config, snapshot, &request.project, &resources)?;
    let ids: Vec<&str> = view.path.iter().map(|&n| view.id(n)).collect();
    let generations: Vec<Option<u64>> =
        view.path.iter().map(|&n| view.generations.get(n)).collect();
    let outcome = decide(
        &request.project,
        &request.deltas,
        &view.local,
        &view.constraints,
        &ids,
        &generations,
    )?;
    Ok(match outcome {
        PathOutcome::Admitted { claim } => Decision::Admitted {
            claim: claim
                .into_iter()
                .map(|(k, generation)| ClaimEntry {
                    project: ids[k].to_string(),
                    generation,
                })
                .collect(),
        },
        PathOutcome::Refused { violations } => Decision::Refused { violations },
    })
}

/// What [`decide`] found, with claim members as positions on the checked
/// path (each with its generation), so that each caller names them its own
/// way: [`evaluate`] by project id, [`Prepared`](crate::Prepared) by position.
pub(crate) enum PathOutcome {
    Admitted { claim: Vec<(usize, u64)> },
    Refused { violations: Vec<Violation> },
}

/// The decision loop, shared by [`evaluate`] and
/// [`Prepared::evaluate`](crate::Prepared::evaluate) so that both decide by
/// construction the same way. Its inputs are already checked and counted:
/// `local[r]` is u(project, r) for `deltas[r]`, `constraints[r][k]` the
/// limit and counted usage of the checked path's node `k` (the project
/// first), `ids[k]` and `generations[k]` that node's id and generation.
pub(crate) fn decide(
    project: &str,
    deltas: &[Delta],
    local: &[i64],
    constraints: &[Vec<Constraint>],
    ids: &[&str],
    generations: &[Option<u64>],
) -> Result<PathOutcome> {
    // Visit resources by name so errors and violations come out in order.
    let mut order: Vec<usize> = (0..deltas.len()).collect();
    order.sort_by(|&a, &b| deltas[a].resource.cmp(&deltas[b].resource));

    let mut violations = Vec::new();
    let mut constraining = vec![false; ids.len()];
    for &r in &order {
        let Delta { resource, delta } = &deltas[r];
        let delta = *delta;
        if delta < 0 && local[r] + delta < 0 {
            return Err(Error::ReleaseBelowZero {
                project: project.to_string(),
                resource: resource.clone(),
                usage: local[r],
                delta,
            });
        }
        if delta <= 0 {
            continue;
        }
        for (k, c) in constraints[r].iter().enumerate() {
            let after = c.usage.checked_add(delta).ok_or_else(|| Error::Overflow {
                project: ids[k].to_string(),
                resource: resource.clone(),
            })?;
            if let Limit::Finite(limit) = c.limit {
                constraining[k] = true;
                if after > limit {
                    violations.push(Violation {
                        project: ids[k].to_string(),
                        resource: resource.clone(),
                        limit,
                        usage: c.usage,
                        delta,
                    });
                }
            }
        }
    }

    // The project is always in a claim; ancestors only when they constrain.
    // Generations are required whatever the outcome, so an input error does
    // not hide behind a refusal.
    let any_increase = deltas.iter().any(|d| d.delta > 0);
    let mut claim = Vec::new();
    if any_increase {
        for k in (0..ids.len()).filter(|&k| k == 0 || constraining[k]) {
            match generations[k] {
                Some(generation) => claim.push((k, generation)),
                None => {
                    return Err(Error::MissingGeneration {
                        project: ids[k].to_string(),
                    });
                }
            }
        }
    }

    if violations.is_empty() {
        Ok(PathOutcome::Admitted { claim })
    } else {
        Ok(PathOutcome::Refused { violations })
    }
}
