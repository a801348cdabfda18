//! [`Prepared`]: the component's `prepared` resource, for decisions that
//! pass only the request and the numbers of the project's path.
//!
//! A component resource lives in one wasmtime store, so a `Prepared` owns
//! its own [`Enforcer`] (store and instance) and the handle of the resource
//! in it. It keeps its inputs so that, after a guest fault drops the
//! instance, the next call prepares again on a fresh one. Per decision only
//! numbers cross the boundary: it asks the component once per project for
//! its node number and path (`locate`) and once per resource name for its
//! number, and keeps them; the claim comes back as path positions.

use super::Enforcer;
use crate::convert::{self, wit};
use crate::{
    ClaimEntry, Config, Decision, Error, FaultKind, GuestFault, IdKind, InvalidInput, Limits,
    Project, Request,
};
use rustc_hash::FxHashMap;
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
    /// What the current instance's resource answered, forgotten with it:
    /// `locate(project)` by project, and resource numbers by name.
    located: FxHashMap<String, Located>,
    numbers: FxHashMap<String, u32>,
}

/// A project's node number and path.
struct Located {
    node: u32,
    path: Vec<String>,
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
            located: FxHashMap::default(),
            numbers: FxHashMap::default(),
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
        // Numbers are the old instance's: ask the new one.
        self.located.clear();
        self.numbers.clear();
        self.handle = Some(handle);
        Ok(handle)
    }

    fn locate(&mut self, project: &str) -> Result<&Located, Error> {
        let handle = self.handle()?;
        if !self.located.contains_key(project) {
            let out = self
                .enforcer
                .call(|store, quota| quota.prepared().call_locate(store, handle, project))?;
            let location = out.map_err(convert::invalid)?;
            self.located.insert(
                project.to_string(),
                Located {
                    node: location.node,
                    path: location.path,
                },
            );
        }
        self.located.get(project).ok_or_else(|| lost(project))
    }

    fn resource_number(&mut self, name: &str) -> Result<u32, Error> {
        if let Some(&number) = self.numbers.get(name) {
            return Ok(number);
        }
        let handle = self.handle()?;
        let out = self
            .enforcer
            .call(|store, quota| quota.prepared().call_resource_number(store, handle, name))?;
        let number = out.map_err(convert::invalid)?;
        self.numbers.insert(name.to_string(), number);
        Ok(number)
    }

    /// The nodes whose usage and generation a decision for `project`
    /// needs, in the order [`evaluate`](Self::evaluate) takes them: the
    /// project, then each ancestor up to the root.
    pub fn path(&mut self, project: &str) -> Result<&[String], Error> {
        Ok(&self.locate(project)?.path)
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
        // The request's checks, in `evaluate`'s order: an empty project,
        // an empty resource (the component's, when it numbers the name),
        // a resource twice, then an unknown project (the component's,
        // when it locates the project). Numbers are asked for once, then
        // kept.
        if request.project.is_empty() {
            return Err(Error::Invalid(InvalidInput::EmptyId {
                what: IdKind::Project,
            }));
        }
        // Live first: a fault dropped the last instance and the numbers
        // kept from it, and preparing again forgets them.
        self.handle()?;
        let mut deltas = Vec::with_capacity(request.deltas.len());
        for d in &request.deltas {
            deltas.push((self.resource_number(&d.resource)?, d.delta));
        }
        let node = match self.locate(&request.project) {
            Ok(located) => located.node,
            // The component finds a resource twice when it decides, after
            // the project is located; one that is also unknown is reported
            // as the resource twice, as `evaluate` does.
            Err(e) => return Err(duplicate(request, &deltas).unwrap_or(e)),
        };
        let handle = self.handle()?;
        let out = self.enforcer.call(|store, quota| {
            quota.prepared().call_evaluate(
                store,
                handle,
                node,
                &deltas,
                local,
                subtree,
                generations,
            )
        })?;
        let path = self
            .located
            .get(&request.project)
            .map_or(&[][..], |l| l.path.as_slice());
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

/// A location asked for and then missing: only a bug here answers this.
fn lost(project: &str) -> Error {
    Error::GuestFault(GuestFault {
        kind: FaultKind::Trap,
        message: format!("the location of {project:?} was not kept"),
    })
}

/// The smallest resource `request` names twice, as `evaluate` reports it
/// (`numbers[i]` is the number of `request.deltas[i]`'s resource).
fn duplicate(request: &Request, numbers: &[(u32, i64)]) -> Option<Error> {
    let twice = (0..numbers.len())
        .filter(|&i| numbers[..i].iter().any(|(n, _)| *n == numbers[i].0))
        .map(|i| request.deltas[i].resource.as_str())
        .min()?;
    Some(Error::Invalid(InvalidInput::DuplicateResource {
        resource: twice.to_string(),
    }))
}
