//! Combining concurrent consumes: one read, decisions in arrival order
//! against running usage, one commit for the batch (semantics, "Combining
//! concurrent consumes").
//!
//! Pure logic, as the lone driver in `consume.rs`: a host's combiner
//! collects the members, a [`BatchStore`] reads and commits for them.

use crate::claim::ClaimEntry;
use crate::consume::{
    Budget, CommitOutcome, ConsumeError, Consumed, RetryPolicy, StorageError, Store,
};
use crate::decide::{Decision, Request, evaluate_after};
use crate::error::Result;
use crate::model::Config;
use crate::snapshot::Snapshot;
use crate::tree::Tree;
use std::collections::BTreeMap;

/// Decides `requests` in order against one snapshot, each against the
/// snapshot plus the deltas of the requests admitted before it: the
/// decisions (and errors) the same requests would get one by one, each
/// committed before the next is read. Every admission's claim carries the
/// generations as `snapshot` has them.
pub fn evaluate_batch(
    config: &Config,
    snapshot: &Snapshot,
    requests: &[Request],
) -> Vec<Result<Decision>> {
    let mut earlier: Vec<(&str, &str, i64)> = Vec::new();
    requests
        .iter()
        .map(|request| {
            let decision = evaluate_after(config, snapshot, request, &earlier);
            if let Ok(Decision::Admitted { .. }) = decision {
                earlier.extend(
                    request
                        .deltas
                        .iter()
                        .map(|d| (request.project.as_str(), d.resource.as_str(), d.delta)),
                );
            }
            decision
        })
        .collect()
}

/// The claims of a batch's admissions as one list, each (project,
/// generation) once, in the one row order every commit path takes: root
/// first, then by depth, then by project id (semantics, "Claims").
pub fn union_claims(
    config: &Config,
    snapshot: &Snapshot,
    claims: &[&[ClaimEntry]],
) -> Vec<ClaimEntry> {
    let depth_of: BTreeMap<&str, u32> = match config
        .effective_max_depth()
        .and_then(|max| Tree::build(&snapshot.projects, max))
    {
        Ok(tree) => claims
            .iter()
            .flat_map(|c| c.iter())
            .filter_map(|e| {
                tree.lookup(&e.project)
                    .map(|n| (e.project.as_str(), tree.depth(n)))
            })
            .collect(),
        // Claims come from decisions on this snapshot, so its tree is
        // valid; were it not, id order is still one order.
        Err(_) => BTreeMap::new(),
    };
    let mut union: Vec<ClaimEntry> = claims.iter().flat_map(|c| c.iter().cloned()).collect();
    union.sort_by(|a, b| {
        let key = |e: &'_ ClaimEntry| depth_of.get(e.project.as_str()).copied();
        (key(a), &a.project, a.generation).cmp(&(key(b), &b.project, b.generation))
    });
    union.dedup();
    union
}

/// What a batch commit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Every claimed generation matched and was bumped once; every member's
    /// rows are written.
    Committed,
    /// A claimed generation had moved on: nothing was written. As
    /// [`CommitOutcome::Conflict`] and [`CommitOutcome::ConflictAfterWait`].
    Conflict(CommitOutcome),
    /// The rows of member `index` (of the members passed) failed to write:
    /// the store rolled everything back. The driver gives that member
    /// `error` and commits the others again, decided without it.
    MemberFailed { index: u32, error: StorageError },
}

/// A store that reads and commits for a whole batch. A store without it
/// runs its consumes one by one.
pub trait BatchStore: Store {
    /// Reads, in ONE read view, the limits, usage (local form, with every
    /// project of the members' paths) and generations of the paths of all
    /// `projects` for `resources`.
    fn read_batch(
        &mut self,
        projects: &[&str],
        resources: &[&str],
    ) -> std::result::Result<Snapshot, StorageError>;

    /// In ONE transaction: compares and bumps every entry of `claim` once,
    /// in the order given (the one row order), and writes the rows of
    /// every one of `members` (each request in order); any generation miss
    /// rolls everything back (`Conflict`), as does a member's failed write
    /// (`MemberFailed`).
    fn commit_batch(
        &mut self,
        claim: &[ClaimEntry],
        members: &[&Request],
    ) -> std::result::Result<BatchOutcome, StorageError>;
}

/// Consumes `requests` as one batch through `store`: one read for all,
/// decisions in arrival order ([`evaluate_batch`]), one commit of the
/// admitted members with their claims' union ([`union_claims`]). A
/// conflict re-runs the whole batch from a fresh read within the policy's
/// budget; no outcome is final before the commit that made it. One result
/// per request, in order.
pub fn consume_batch<S: BatchStore + ?Sized>(
    config: &Config,
    policy: &RetryPolicy,
    store: &mut S,
    requests: &[Request],
) -> Vec<std::result::Result<Consumed, ConsumeError>> {
    if let Err(e) = policy.check() {
        return requests
            .iter()
            .map(|_| Err(ConsumeError::Invalid(e.clone())))
            .collect();
    }
    let mut results: Vec<Option<std::result::Result<Consumed, ConsumeError>>> =
        requests.iter().map(|_| None).collect();
    if requests.is_empty() {
        return Vec::new();
    }
    let budget = Budget::start(policy, store);
    let mut projects: Vec<&str> = Vec::new();
    let mut resources: Vec<&str> = Vec::new();
    for request in requests {
        if !projects.contains(&request.project.as_str()) {
            projects.push(&request.project);
        }
        for d in &request.deltas {
            if !resources.contains(&d.resource.as_str()) {
                resources.push(&d.resource);
            }
        }
    }
    let mut attempt = 0;
    'attempts: loop {
        attempt += 1;
        let snapshot = match store.read_batch(&projects, &resources) {
            Ok(s) => s,
            Err(error) => return fail_pending(results, &error, attempt),
        };
        // Decided again after a member's rows failed, without that member.
        loop {
            let pending: Vec<usize> = (0..requests.len())
                .filter(|&i| results[i].is_none())
                .collect();
            let members: Vec<Request> = pending.iter().map(|&i| requests[i].clone()).collect();
            let decisions = evaluate_batch(config, &snapshot, &members);
            let admitted: Vec<(usize, &[ClaimEntry])> = decisions
                .iter()
                .enumerate()
                .filter_map(|(m, d)| match d {
                    Ok(Decision::Admitted { claim }) => Some((m, claim.as_slice())),
                    _ => None,
                })
                .collect();
            let outcome = if admitted.is_empty() {
                BatchOutcome::Committed
            } else {
                let claims: Vec<&[ClaimEntry]> = admitted.iter().map(|&(_, c)| c).collect();
                let union = union_claims(config, &snapshot, &claims);
                let written: Vec<&Request> = admitted.iter().map(|&(m, _)| &members[m]).collect();
                match store.commit_batch(&union, &written) {
                    Ok(outcome) => outcome,
                    Err(error) => return fail_pending(results, &error, attempt),
                }
            };
            match outcome {
                BatchOutcome::Committed => {
                    for (m, decision) in decisions.into_iter().enumerate() {
                        results[pending[m]] = Some(match decision {
                            Ok(Decision::Admitted { claim }) => Ok(Consumed {
                                claim,
                                attempts: attempt,
                            }),
                            Ok(Decision::Refused { violations }) => Err(ConsumeError::OverLimit {
                                violations,
                                attempts: attempt,
                            }),
                            Err(e) => Err(ConsumeError::Invalid(e)),
                        });
                    }
                    return results
                        .into_iter()
                        .map(|r| r.expect("every member decided"))
                        .collect();
                }
                BatchOutcome::MemberFailed { index, error } => {
                    let Some(&(m, _)) = admitted.get(index as usize) else {
                        let error = StorageError::new(format!(
                            "commit_batch named member {index} of {}",
                            admitted.len()
                        ));
                        return fail_pending(results, &error, attempt);
                    };
                    results[pending[m]] = Some(Err(ConsumeError::Storage {
                        error,
                        attempts: attempt,
                    }));
                    if results.iter().all(Option::is_some) {
                        return results.into_iter().flatten().collect();
                    }
                }
                BatchOutcome::Conflict(lost) => {
                    if budget.retry(store, attempt, lost) {
                        continue 'attempts;
                    }
                    for r in results.iter_mut().filter(|r| r.is_none()) {
                        *r = Some(Err(ConsumeError::RetriesExhausted { attempts: attempt }));
                    }
                    return results.into_iter().flatten().collect();
                }
            }
        }
    }
}

/// Every member without an outcome gets `error` (the store rolled back).
fn fail_pending(
    results: Vec<Option<std::result::Result<Consumed, ConsumeError>>>,
    error: &StorageError,
    attempt: u32,
) -> Vec<std::result::Result<Consumed, ConsumeError>> {
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(ConsumeError::Storage {
                    error: error.clone(),
                    attempts: attempt,
                })
            })
        })
        .collect()
}
