//! [`Prepared`]: the component's `prepared` resource, for decisions that
//! pass only the request and the numbers of the project's path.
//!
//! A component resource lives in one wasmtime store, so a `Prepared` owns
//! its own [`Enforcer`] (store and instance) and the handle of the resource
//! in it. It keeps its inputs so that, after a guest fault drops the
//! instance, the next call prepares again on a fresh one, and forgets the
//! numbers the old instance gave. Per decision only numbers cross the
//! boundary: the component numbers a project and its resource names once
//! (`number-request`, which also checks the request in `evaluate`'s
//! order), the numbers are kept here, and the claim comes back as path
//! positions.

use crate::enforcer::Enforcer;
use crate::error::{Error, FaultKind, GuestFault};
use crate::types::*;
use rustc_hash::FxHashMap;
use std::sync::Arc;
use wasmtime::component::ResourceAny;

/// A project's node number and path (the project, then each ancestor up
/// to the root), shared with the claims that name it.
#[derive(Debug, Clone)]
pub struct Located {
    pub node: u32,
    pub path: Arc<[Arc<str>]>,
}

/// The config, project tree and limits, checked and indexed once inside
/// the component, for many decisions from path numbers (see
/// [`Prepared::evaluate`]). Use one per thread (`&mut self`); it is `Send`.
pub struct Prepared {
    enforcer: Enforcer,
    /// The resource in `enforcer`'s current instance; `None` after a fault.
    handle: Option<ResourceAny>,
    config: Config,
    projects: Vec<Project>,
    limits: Limits,
    /// What the current instance's resource answered, forgotten with it:
    /// locations (at most one per project) and the lasting numbers (at
    /// most one per resource a limit mentions; see `numbered-request.kept`).
    located: FxHashMap<String, Located>,
    numbers: FxHashMap<String, u32>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("config", &self.config)
            .field("projects", &self.projects.len())
            .field("prepared", &self.handle.is_some())
            .finish()
    }
}

impl Prepared {
    /// Checks and indexes `projects` and `limits` under `config` in a new
    /// instance of the component: the errors are those `evaluate` reports
    /// for them.
    pub fn new(config: &Config, projects: &[Project], limits: &Limits) -> Result<Self, Error> {
        Self::with_enforcer(Enforcer::new(), config, projects, limits)
    }

    /// [`new`](Self::new) on a given enforcer (its fuel and memory limits).
    pub fn with_enforcer(
        enforcer: Enforcer,
        config: &Config,
        projects: &[Project],
        limits: &Limits,
    ) -> Result<Self, Error> {
        let mut prepared = Prepared {
            enforcer,
            handle: None,
            config: *config,
            projects: projects.to_vec(),
            limits: limits.clone(),
            located: FxHashMap::default(),
            numbers: FxHashMap::default(),
        };
        prepared.handle()?;
        Ok(prepared)
    }

    /// Whether the component instance is live (no fault dropped it since
    /// the last call): a call then only decides, never prepares again.
    pub fn is_live(&self) -> bool {
        self.handle.is_some() && self.enforcer.live.is_some()
    }

    /// The live resource, prepared again on a fresh instance if a fault
    /// dropped the last one (forgetting the numbers the old one gave).
    fn handle(&mut self) -> Result<ResourceAny, Error> {
        if let Some(handle) = self.handle.filter(|_| self.enforcer.live.is_some()) {
            return Ok(handle);
        }
        self.handle = None;
        self.located.clear();
        self.numbers.clear();
        let (c, p, l) = (self.config, &self.projects, &self.limits);
        let out = self
            .enforcer
            .call(|store, quota| quota.call_prepare(store, c, p, l))?;
        let handle = out?;
        self.handle = Some(handle);
        Ok(handle)
    }

    /// The node and path of `project`, and the number of each resource of
    /// `deltas` paired with its delta: from what is kept, or asked of the
    /// component (which reports a bad request as `evaluate` does).
    pub fn numbers(
        &mut self,
        project: &str,
        deltas: &[(&str, i64)],
    ) -> Result<(Located, Vec<(u32, i64)>), Error> {
        self.numbers_of(project, deltas.iter().copied())
    }

    /// [`numbers`](Self::numbers) over any (resource name, delta) pairs,
    /// so that a caller need not collect them first.
    fn numbers_of<'a>(
        &mut self,
        project: &str,
        deltas: impl ExactSizeIterator<Item = (&'a str, i64)> + Clone,
    ) -> Result<(Located, Vec<(u32, i64)>), Error> {
        let handle = self.handle()?;
        if let Some(located) = self.located.get(project) {
            let mut numbers = Vec::with_capacity(deltas.len());
            for (name, delta) in deltas.clone() {
                match self.numbers.get(name) {
                    Some(&n) => numbers.push((n, delta)),
                    None => break,
                }
            }
            if numbers.len() == deltas.len() {
                return Ok((located.clone(), numbers));
            }
        }
        let deltas: Vec<(&str, i64)> = deltas.collect();
        let names: Vec<String> = deltas.iter().map(|&(name, _)| name.to_string()).collect();
        let out = self.enforcer.call(|store, quota| {
            quota
                .prepared()
                .call_number_request(store, handle, project, &names)
        })?;
        let numbered = out?;
        let located = Located {
            node: numbered.node,
            path: numbered.path.into_iter().map(Arc::from).collect(),
        };
        self.located.insert(project.to_string(), located.clone());
        let mut numbers = Vec::with_capacity(deltas.len());
        for ((name, number), &(_, delta)) in names.into_iter().zip(numbered.resources).zip(&deltas)
        {
            numbers.push((number, delta));
            if number < numbered.kept {
                self.numbers.insert(name, number);
            }
        }
        Ok((located, numbers))
    }

    /// The nodes whose usage and generation a decision for `project`
    /// needs, in the order [`evaluate`](Self::evaluate) takes them: the
    /// project, then each ancestor up to the root.
    pub fn path(&mut self, project: &str) -> Result<Arc<[Arc<str>]>, Error> {
        Ok(self.numbers(project, &[])?.0.path)
    }

    /// The component's decision for numbers from [`numbers`](Self::numbers):
    /// the claim as positions in the project's path.
    pub fn evaluate_numbers(
        &mut self,
        node: u32,
        deltas: &[(u32, i64)],
        local: &[i64],
        subtree: &[i64],
        generations: &[u64],
    ) -> Result<PathDecision, Error> {
        let handle = self.handle()?;
        let out = self.enforcer.call(|store, quota| {
            quota
                .prepared()
                .call_evaluate(store, handle, node, deltas, local, subtree, generations)
        })?;
        Ok(out?)
    }

    /// Decides `deltas` (resource name, delta) for `project` from the
    /// numbers of its path, with the claim as path positions (see
    /// [`evaluate`](Self::evaluate) for the lists).
    pub fn decide(
        &mut self,
        project: &str,
        deltas: &[(&str, i64)],
        local: &[i64],
        subtree: &[i64],
        generations: &[u64],
    ) -> Result<(Located, PathDecision), Error> {
        let (located, numbers) = self.numbers(project, deltas)?;
        let decision =
            self.evaluate_numbers(located.node, &numbers, local, subtree, generations)?;
        Ok((located, decision))
    }

    /// Decides `request` from the numbers of its project's
    /// [`path`](Self::path), `n` being `request.deltas.len()`:
    /// `local[r]` = the project's own usage of `deltas[r]`;
    /// `subtree[k * n + r]` = the subtree usage of `path[k]` for `deltas[r]`;
    /// `generations[k]` = the generation read for `path[k]`.
    ///
    /// The decision and errors are `evaluate`'s for the same usage as
    /// [`Usage::Path`]; a list of the wrong length is
    /// [`InvalidInput::ShapeMismatch`].
    pub fn evaluate(
        &mut self,
        request: &Request,
        local: &[i64],
        subtree: &[i64],
        generations: &[u64],
    ) -> Result<Decision, Error> {
        let (located, numbers) = self.numbers_of(
            &request.project,
            request
                .deltas
                .iter()
                .map(|d| (d.resource.as_str(), d.delta)),
        )?;
        let decision =
            self.evaluate_numbers(located.node, &numbers, local, subtree, generations)?;
        Ok(match decision {
            PathDecision::Admitted(positions) => {
                Decision::Admitted(claim(&located.path, &positions, generations)?)
            }
            PathDecision::Refused(violations) => Decision::Refused(violations),
        })
    }
}

impl Prepared {
    /// Decides `members` in order, each against its own numbers (as
    /// [`evaluate`](Self::evaluate) takes them) plus the deltas of the
    /// members admitted before it: what
    /// [`Enforcer::evaluate_batch`] decides for the same requests on the
    /// snapshot the numbers were read from (semantics, "Combining
    /// concurrent consumes"). Members are given by name. One result per
    /// member, claims named; the outer error is a guest fault only.
    pub fn evaluate_batch(
        &mut self,
        members: &[PreparedMember],
    ) -> Result<Vec<Result<Decision, Invalid>>, Error> {
        let handle = self.handle()?;
        self.enforcer
            .call(|store, quota| quota.prepared().call_evaluate_batch(store, handle, members))
    }
}

/// The claim named by `positions` in `path`, with the generations passed.
pub fn claim(
    path: &[Arc<str>],
    positions: &[u32],
    generations: &[u64],
) -> Result<Vec<ClaimEntry>, GuestFault> {
    positions
        .iter()
        .map(
            |&k| match (path.get(k as usize), generations.get(k as usize)) {
                (Some(project), Some(&generation)) => Ok(ClaimEntry {
                    project: project.to_string(),
                    generation,
                }),
                // Only a broken component answers this.
                _ => Err(GuestFault::new(
                    FaultKind::Trap,
                    format!("claim position {k} is off the path"),
                )),
            },
        )
        .collect()
}
