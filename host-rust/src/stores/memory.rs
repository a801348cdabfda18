//! An in-memory store: usage rows and generations behind one mutex, so
//! one lock plays the part of one transaction.

use crate::{
    ClaimEntry, CommitOutcome, Generation, Limits, Project, Request, Snapshot, StorageError, Store,
    Usage, UsageEntry,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug, Default)]
struct State {
    projects: Vec<Project>,
    limits: Limits,
    usage: BTreeMap<(String, String), i64>,
    generations: BTreeMap<String, u64>,
    conflicts: u64,
}

/// A [`Store`] in memory: the project tree, the limits, usage per
/// (project, resource) and a generation per project. Clones share the same
/// data, so each thread can consume through its own clone.
///
/// `read` returns the whole tree with local usage; `commit` compares every
/// claimed generation and, only if all match, bumps them and applies the
/// deltas, all under one lock.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

impl MemoryStore {
    /// A store for `projects` and `limits`, with no usage and every
    /// generation at 1.
    pub fn new(projects: Vec<Project>, limits: Limits) -> Self {
        let generations = projects.iter().map(|p| (p.id.clone(), 1)).collect();
        MemoryStore {
            state: Arc::new(Mutex::new(State {
                projects,
                limits,
                generations,
                ..State::default()
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data behind (every
        // change is made after all checks), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets what `project` uses of `resource`, bumping its generation.
    pub fn set_usage(&self, project: &str, resource: &str, usage: i64) {
        let mut state = self.lock();
        state
            .usage
            .insert((project.to_string(), resource.to_string()), usage);
        *state.generations.entry(project.to_string()).or_insert(0) += 1;
    }

    /// Replaces the limits.
    pub fn set_limits(&self, limits: Limits) {
        self.lock().limits = limits;
    }

    /// What `project` uses of `resource`.
    pub fn usage(&self, project: &str, resource: &str) -> i64 {
        self.lock()
            .usage
            .get(&(project.to_string(), resource.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// The current generation of `project` (0 if unknown).
    pub fn generation(&self, project: &str) -> u64 {
        self.lock().generations.get(project).copied().unwrap_or(0)
    }

    /// How many commits met a conflict so far.
    pub fn conflicts(&self) -> u64 {
        self.lock().conflicts
    }
}

impl Store for MemoryStore {
    fn read(&mut self, _project: &str, resources: &[String]) -> Result<Snapshot, StorageError> {
        let state = self.lock();
        let wanted: BTreeSet<&str> = resources.iter().map(String::as_str).collect();
        Ok(Snapshot {
            projects: state.projects.clone(),
            limits: state.limits.clone(),
            usage: Usage::Local(
                state
                    .usage
                    .iter()
                    .filter(|((_, r), _)| wanted.contains(r.as_str()))
                    .map(|((p, r), u)| UsageEntry::new(p.as_str(), r.as_str(), *u))
                    .collect(),
            ),
            generations: state
                .generations
                .iter()
                .map(|(p, g)| Generation::new(p.as_str(), *g))
                .collect(),
        })
    }

    fn commit(
        &mut self,
        claim: &[ClaimEntry],
        request: &Request,
    ) -> Result<CommitOutcome, StorageError> {
        let mut state = self.lock();
        // UPDATE generations SET generation = generation + 1
        //  WHERE project_id = ? AND generation = ?   -- for every entry
        if claim
            .iter()
            .any(|c| state.generations.get(&c.project) != Some(&c.generation))
        {
            state.conflicts += 1;
            return Ok(CommitOutcome::Conflict);
        }
        // Compute every new row before changing any, so a failure leaves
        // nothing half-written (the rollback).
        let mut rows = Vec::new();
        for d in request.deltas.iter().filter(|d| d.delta != 0) {
            let key = (request.project.clone(), d.resource.clone());
            let now = state.usage.get(&key).copied().unwrap_or(0);
            let next = now
                .checked_add(d.delta)
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    StorageError::new(format!(
                        "usage of {:?} by {:?} would become {} {:+}",
                        d.resource, request.project, now, d.delta
                    ))
                })?;
            rows.push((key, next));
        }
        for c in claim {
            *state.generations.entry(c.project.clone()).or_insert(0) += 1;
        }
        // Every write moves the project's generation, claimed or not (a pure
        // release has an empty claim).
        if !rows.is_empty() && !claim.iter().any(|c| c.project == request.project) {
            *state
                .generations
                .entry(request.project.clone())
                .or_insert(0) += 1;
        }
        state.usage.extend(rows);
        Ok(CommitOutcome::Committed)
    }
}
