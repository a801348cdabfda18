//! `Prepared`: the component's `prepared` resource, for decisions that pass
//! only the request and the numbers of the project's path.
//!
//! A component resource lives in the wasmtime store that made it, so a
//! `Prepared` owns its own store and instance ([`runtime::Owned`]) rather
//! than using the thread's, behind a mutex (Python threads may share the
//! object; calls on one object run one at a time, with the GIL released).
//! It keeps its inputs to prepare again on a fresh instance after a guest
//! fault, and the path ids it has asked for, to turn the claim's path
//! positions back into ids without strings crossing the boundary.

use crate::claim::ClaimEntry;
use crate::decide::{Decision, Delta, Violation};
use crate::limits::Limits;
use crate::model::Config;
use crate::runtime::{self, Fault, FaultKind, GuestLimits, Owned, w};
use crate::tree::Project;
use pyo3::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use wasmtime::component::ResourceAny;

/// An invalid input with the core's description of it.
type Described = (w::Error, String);

/// Why a call gave no answer: a fault, or invalid input.
enum Failure {
    Fault(Fault),
    Invalid(Described),
}

impl Failure {
    fn into_pyerr(self, py: Python<'_>) -> PyErr {
        match self {
            Failure::Fault(f) => crate::error::guest_fault(py, &f),
            Failure::Invalid((e, message)) => crate::error::invalid_input(py, &e, message),
        }
    }
}

struct State {
    /// The instance and the resource in it; `None` after a fault.
    live: Option<(Owned, ResourceAny)>,
    /// `path(project)` as the component answered it, by project.
    paths: HashMap<String, Arc<[String]>>,
}

/// The config, project tree and limits, checked and indexed once inside
/// the component, for many decisions from the path's numbers.
#[pyclass(module = "delimiter", frozen)]
pub struct Prepared {
    config: w::Config,
    projects: Vec<w::Project>,
    limits: w::Limits,
    guest: GuestLimits,
    state: Mutex<State>,
}

impl Prepared {
    /// Runs `f` on the live resource, preparing it first on a fresh
    /// instance if there is none; a fault drops the instance. Call it
    /// without the GIL.
    fn with_live<R>(
        &self,
        state: &mut State,
        f: impl FnOnce(
            &mut wasmtime::Store<runtime::HostState>,
            &runtime::Quota,
            ResourceAny,
        ) -> wasmtime::Result<Result<R, w::Error>>,
    ) -> Result<R, Failure> {
        if state.live.is_none() {
            let mut owned = Owned::new(self.guest.memory).map_err(Failure::Fault)?;
            let (c, p, l) = (self.config, &self.projects, &self.limits);
            let prepared = owned
                .call(self.guest, |store, quota| {
                    Ok(match quota.call_prepare(&mut *store, c, p, l)? {
                        Ok(handle) => Ok(handle),
                        Err(e) => Err(runtime::describe(store, quota, e)?),
                    })
                })
                .map_err(Failure::Fault)?;
            let handle = prepared.map_err(Failure::Invalid)?;
            state.live = Some((owned, handle));
        }
        let Some((owned, handle)) = state.live.as_mut() else {
            // Set just above; answered as a fault rather than a panic.
            return Err(Failure::Fault(Fault {
                kind: FaultKind::Load,
                message: "no prepared instance".to_string(),
            }));
        };
        let handle = *handle;
        match owned.call(self.guest, |store, quota| {
            Ok(match f(&mut *store, quota, handle)? {
                Ok(value) => Ok(value),
                Err(e) => Err(runtime::describe(store, quota, e)?),
            })
        }) {
            Ok(out) => out.map_err(Failure::Invalid),
            Err(fault) => {
                state.live = None;
                Err(Failure::Fault(fault))
            }
        }
    }

    fn path_of(&self, state: &mut State, project: &str) -> Result<Arc<[String]>, Failure> {
        if let Some(path) = state.paths.get(project) {
            return Ok(path.clone());
        }
        let path: Arc<[String]> = self
            .with_live(state, |store, quota, handle| {
                quota.prepared().call_path(store, handle, project)
            })?
            .into();
        state.paths.insert(project.to_string(), path.clone());
        Ok(path)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing panics while holding it; a poisoned state is still whole.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[pymethods]
impl Prepared {
    /// Checks and indexes `projects` and `limits` under `config` (the
    /// errors `evaluate` reports for them), in an instance of its own.
    #[new]
    #[pyo3(signature = (projects, limits = None, config = None, *, fuel = None, memory_limit = None))]
    fn new(
        py: Python<'_>,
        projects: Vec<Project>,
        limits: Option<Limits>,
        config: Option<&Bound<'_, Config>>,
        fuel: Option<u64>,
        memory_limit: Option<usize>,
    ) -> PyResult<Self> {
        let prepared = Prepared {
            config: Config::wit_of(config),
            projects: projects.iter().map(Project::to_wit).collect(),
            limits: limits.unwrap_or_default().to_wit(),
            guest: GuestLimits::new(fuel, memory_limit),
            state: Mutex::new(State {
                live: None,
                paths: HashMap::new(),
            }),
        };
        py.detach(|| {
            let mut state = prepared.lock();
            prepared.with_live(&mut state, |_, _, _| Ok(Ok(())))
        })
        .map_err(|f| f.into_pyerr(py))?;
        Ok(prepared)
    }

    /// The nodes whose usage and generation a decision for `project` needs,
    /// in the order `evaluate` takes them: the project, then each ancestor
    /// up to the root.
    fn path(&self, py: Python<'_>, project: &str) -> PyResult<Vec<String>> {
        let path = py
            .detach(|| self.path_of(&mut self.lock(), project))
            .map_err(|f| f.into_pyerr(py))?;
        Ok(path.to_vec())
    }

    /// Decides `deltas` for `project` from the numbers of its path, n being
    /// `len(deltas)`: `local[r]` its own usage of the r-th resource,
    /// `subtree[k * n + r]` the subtree usage of `path[k]`, `generations[k]`
    /// the generation read for `path[k]`. The decision and errors are
    /// `evaluate`'s for the same usage as a `PathUsage`; a list of the
    /// wrong length is `InvalidInput(kind="shape-mismatch")`.
    fn evaluate(
        &self,
        py: Python<'_>,
        project: &str,
        deltas: &Bound<'_, PyAny>,
        local: Vec<i64>,
        subtree: Vec<i64>,
        generations: Vec<u64>,
    ) -> PyResult<Decision> {
        let deltas: Vec<w::Delta> = Delta::list_from_python(deltas)?
            .iter()
            .map(Delta::to_wit)
            .collect();
        py.detach(|| {
            let mut state = self.lock();
            // The path first: the claim comes back as positions in it.
            let path = self.path_of(&mut state, project)?;
            let decision = self.with_live(&mut state, |store, quota, handle| {
                quota.prepared().call_evaluate(
                    store,
                    handle,
                    project,
                    &deltas,
                    &local,
                    &subtree,
                    &generations,
                )
            })?;
            Ok(match decision {
                w::PathDecision::Admitted(positions) => Decision {
                    admitted: true,
                    claim: positions
                        .into_iter()
                        .map(|k| claim_entry(&path, &generations, k))
                        .collect::<Result<_, _>>()?,
                    violations: Vec::new(),
                },
                w::PathDecision::Refused(violations) => Decision {
                    admitted: false,
                    claim: Vec::new(),
                    violations: violations.into_iter().map(Violation::from_wit).collect(),
                },
            })
        })
        .map_err(|f: Failure| f.into_pyerr(py))
    }
}

fn claim_entry(path: &[String], generations: &[u64], k: u32) -> Result<ClaimEntry, Failure> {
    let k = k as usize;
    match (path.get(k), generations.get(k)) {
        (Some(project), Some(&generation)) => Ok(ClaimEntry {
            project: project.clone(),
            generation,
        }),
        // Only a broken component answers this.
        _ => Err(Failure::Fault(Fault {
            kind: FaultKind::Trap,
            message: format!("claim position {k} is off the path"),
        })),
    }
}
