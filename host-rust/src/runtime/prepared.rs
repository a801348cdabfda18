//! [`Prepared`]: the component's `prepared` resource, for decisions that
//! pass only the request and the numbers of the project's path.
//!
//! A component resource lives in one wasmtime store, so a `Prepared` owns
//! its own [`Enforcer`] (store and instance) and the handle of the resource
//! in it. It keeps its inputs so that, after a guest fault drops the
//! instance, the next call prepares again on a fresh one, and it keeps the
//! path ids it has asked for so that the guest can answer claims with path
//! positions (no string crosses back on an admission).

use super::Enforcer;
use crate::convert::{self, wit};
use crate::{ClaimEntry, Config, Decision, Error, FaultKind, GuestFault, Limits, Project, Request};
use std::collections::HashMap;
use wasmtime::component::ResourceAny;

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
    /// `path(project)` as answered by the component, by project.
    paths: HashMap<String, Vec<String>>,
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
    /// instance of the component: the errors are those
    /// [`evaluate`](crate::evaluate) reports for them.
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
            paths: HashMap::new(),
        };
        prepared.handle()?;
        Ok(prepared)
    }

    /// The live resource, prepared again on a fresh instance if a fault
    /// dropped the last one.
    fn handle(&mut self) -> Result<ResourceAny, Error> {
        if let Some(handle) = self.handle.filter(|_| self.enforcer.live.is_some()) {
            return Ok(handle);
        }
        let c = wit::config(&self.config);
        let p: Vec<_> = self.projects.iter().map(wit::project).collect();
        let l = wit::limits(&self.limits);
        let out = self
            .enforcer
            .call(|store, quota| quota.call_prepare(store, c, &p, &l))?;
        let handle = out.map_err(convert::invalid)?;
        self.handle = Some(handle);
        Ok(handle)
    }

    /// The nodes whose usage and generation a decision for `project`
    /// needs, in the order [`evaluate`](Self::evaluate) takes them: the
    /// project, then each ancestor up to the root.
    pub fn path(&mut self, project: &str) -> Result<&[String], Error> {
        if !self.paths.contains_key(project) {
            let handle = self.handle()?;
            let out = self
                .enforcer
                .call(|store, quota| quota.prepared().call_path(store, handle, project))?;
            let path = out.map_err(convert::invalid)?;
            self.paths.insert(project.to_string(), path);
        }
        Ok(self.paths.get(project).map_or(&[], Vec::as_slice))
    }

    /// Decides `request` from the numbers of its project's
    /// [`path`](Self::path), `n` being `request.deltas.len()`:
    /// `local[r]` = the project's own usage of `deltas[r]`;
    /// `subtree[k * n + r]` = the subtree usage of `path[k]` for `deltas[r]`;
    /// `generations[k]` = the generation read for `path[k]`.
    ///
    /// The decision and errors are [`evaluate`](crate::evaluate)'s for the
    /// same usage as [`Usage::Path`](crate::Usage::Path); a list of the
    /// wrong length is [`InvalidInput::ShapeMismatch`](crate::InvalidInput::ShapeMismatch).
    pub fn evaluate(
        &mut self,
        request: &Request,
        local: &[i64],
        subtree: &[i64],
        generations: &[u64],
    ) -> Result<Decision, Error> {
        // The path first: the claim comes back as positions in it.
        self.path(&request.project)?;
        let handle = self.handle()?;
        let deltas: Vec<_> = request.deltas.iter().map(wit::delta).collect();
        let out = self.enforcer.call(|store, quota| {
            quota.prepared().call_evaluate(
                store,
                handle,
                &request.project,
                &deltas,
                local,
                subtree,
                generations,
            )
        })?;
        let path = self
            .paths
            .get(&request.project)
            .map_or(&[][..], Vec::as_slice);
        match out.map_err(convert::invalid)? {
            convert::PathDecision::Admitted(positions) => {
                let claim = positions
                    .into_iter()
                    .map(|k| {
                        let k = k as usize;
                        match (path.get(k), generations.get(k)) {
                            (Some(project), Some(&generation)) => Ok(ClaimEntry {
                                project: project.clone(),
                                generation,
                            }),
                            // Only a broken component answers this.
                            _ => Err(Error::GuestFault(GuestFault {
                                kind: FaultKind::Trap,
                                message: format!("claim position {k} is off the path"),
                            })),
                        }
                    })
                    .collect::<Result<_, _>>()?;
                Ok(Decision::Admitted { claim })
            }
            convert::PathDecision::Refused(violations) => Ok(Decision::Refused {
                violations: violations.into_iter().map(convert::violation).collect(),
            }),
        }
    }
}
