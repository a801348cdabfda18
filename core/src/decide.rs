//! The decision: admit or refuse a request, and the claim that goes with
//! an admission.

use crate::buf::Buf;
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
    evaluate_after(config, snapshot, request, &[])
}

/// [`evaluate`] against `snapshot` plus `earlier`, the (project, resource,
/// delta) changes of the requests admitted before this one in a batch:
/// each changes u of its own project and U of that project and its
/// ancestors.
pub(crate) fn evaluate_after(
    config: &Config,
    snapshot: &Snapshot,
    request: &Request,
    earlier: &[(&str, &str, i64)],
) -> Result<Decision> {
    let resources = request.resources();
    let mut view = View::build(config, snapshot, &request.project, &resources)?;
    view.add_earlier(config, &resources, earlier)?;
    let ids: Vec<&str> = view.path.iter().map(|&n| view.id(n)).collect();
    let generations: Vec<Option<u64>> =
        view.path.iter().map(|&n| view.generations.get(n)).collect();
    let amounts: Vec<i64> = request.deltas.iter().map(|d| d.delta).collect();
    let outcome = decide(
        &Inputs {
            project: &request.project,
            resources: &resources,
            deltas: &amounts,
            local: &view.local,
            path_len: ids.len(),
        },
        |r, k| view.constraints[r][k],
        |k| ids[k],
        |k| generations[k],
    )?;
    Ok(match outcome {
        PathOutcome::Admitted { claim } => Decision::Admitted {
            claim: claim
                .into_iter()
                .map(|k| {
                    let k = k as usize;
                    ClaimEntry {
                        project: ids[k].to_string(),
                        // `decide` claims only nodes with a generation.
                        generation: generations[k].unwrap_or_default(),
                    }
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
    /// Positions: a path is at most the maximum depth long, a u32 (and
    /// u32 is what the component returns them as, so no copy is made).
    Admitted {
        claim: Vec<u32>,
    },
    Refused {
        violations: Vec<Violation>,
    },
}

/// What [`decide`] decides on, already checked and counted: `deltas[r]`
/// of resource `resources[r]` for `project`, whose own usage of it is
/// `local[r]`, on a checked path of `path_len` nodes (the project first).
pub(crate) struct Inputs<'a> {
    pub project: &'a str,
    pub resources: &'a [&'a str],
    pub deltas: &'a [i64],
    pub local: &'a [i64],
    pub path_len: usize,
}

/// The decision loop, shared by [`evaluate`] and
/// [`Prepared::evaluate`](crate::Prepared::evaluate) so that both decide by
/// construction the same way. `constraint(r, k)` is the limit and counted
/// usage of resource `r` at the checked path's node `k`, `id(k)` and
/// `generation(k)` that node's id and generation. (Functions rather than
/// tables so that a prepared decision need not build them per call.)
pub(crate) fn decide<'a>(
    inputs: &Inputs<'a>,
    constraint: impl Fn(usize, usize) -> Constraint,
    id: impl Fn(usize) -> &'a str,
    generation: impl Fn(usize) -> Option<u64>,
) -> Result<PathOutcome> {
    let Inputs {
        project,
        resources,
        deltas,
        local,
        path_len,
    } = *inputs;
    // Visit resources by name so errors and violations come out in order.
    let mut order: Buf<usize, 16> = Buf::new(deltas.len(), 0);
    for (r, slot) in order.iter_mut().enumerate() {
        *slot = r;
    }
    order.sort_by_key(|&r| resources[r]);

    let mut violations = Vec::new();
    // Which path nodes have a finite limit on an increased resource.
    let mut constraining: Buf<bool, 64> = Buf::new(path_len, false);
    for &r in order.iter() {
        let delta = deltas[r];
        if delta < 0 && local[r] + delta < 0 {
            return Err(Error::ReleaseBelowZero {
                project: project.to_string(),
                resource: resources[r].to_string(),
                usage: local[r],
                delta,
            });
        }
        if delta <= 0 {
            continue;
        }
        for k in 0..path_len {
            let c = constraint(r, k);
            let after = c.usage.checked_add(delta).ok_or_else(|| Error::Overflow {
                project: id(k).to_string(),
                resource: resources[r].to_string(),
            })?;
            if let Limit::Finite(limit) = c.limit {
                constraining[k] = true;
                if after > limit {
                    violations.push(Violation {
                        project: id(k).to_string(),
                        resource: resources[r].to_string(),
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
    let any_increase = deltas.iter().any(|&d| d > 0);
    let mut claim = Vec::with_capacity(if any_increase { path_len } else { 0 });
    if any_increase {
        for k in (0..path_len).filter(|&k| k == 0 || constraining[k]) {
            match generation(k) {
                Some(_) => claim.push(k as u32),
                None => {
                    return Err(Error::MissingGeneration {
                        project: id(k).to_string(),
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
