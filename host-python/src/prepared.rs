//! `Prepared`: the component's `prepared` resource, for decisions that pass
//! only the request and the numbers of the project's path.
//!
//! A component resource lives in the wasmtime store that made it, so a
//! `Prepared` owns its own store and instance ([`runtime::Owned`]) rather
//! than using the thread's, behind a mutex (Python threads may share the
//! object; calls on one object run one at a time). It keeps its inputs to
//! prepare again on a fresh instance after a guest fault. Per decision only
//! numbers cross the boundary: it asks the component once per project for
//! its node number and path (`locate`) and once per resource name for its
//! number, and keeps them; the claim comes back as path positions.

use crate::claim::Claim;
use crate::decide::{Decision, Delta, Violation};
use crate::limits::Limits;
use crate::model::Config;
use crate::runtime::{self, Fault, FaultKind, GuestLimits, Owned, w};
use crate::tree::Project;
use pyo3::conversion::FromPyObjectOwned;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyDict, PyList};
use rustc_hash::FxHashMap;
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
    /// What the live resource answered, forgotten with it: `locate` by
    /// project, and resource numbers by name.
    located: FxHashMap<String, Located>,
    numbers: FxHashMap<String, u32>,
}

/// A project's node number and path (shared with the claims naming it).
#[derive(Clone)]
struct Located {
    node: u32,
    path: Arc<[Arc<str>]>,
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
    /// instance if there is none; a fault drops the instance.
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
            // Numbers are the old instance's: ask the new one.
            state.located.clear();
            state.numbers.clear();
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
                state.located.clear();
                state.numbers.clear();
                Err(Failure::Fault(fault))
            }
        }
    }

    /// `error`, described by the component like its own errors.
    fn invalid<R>(&self, state: &mut State, error: w::Error) -> Result<R, Failure> {
        self.with_live(state, |_, _, _| Ok(Err(error)))
    }

    fn locate(&self, state: &mut State, project: &str) -> Result<Located, Failure> {
        if let Some(located) = state.located.get(project) {
            return Ok(located.clone());
        }
        let location = self.with_live(state, |store, quota, handle| {
            quota.prepared().call_locate(store, handle, project)
        })?;
        let located = Located {
            node: location.node,
            path: location.path.into_iter().map(Arc::from).collect(),
        };
        state.located.insert(project.to_string(), located.clone());
        Ok(located)
    }

    fn resource_number(&self, state: &mut State, name: &str) -> Result<u32, Failure> {
        if let Some(&number) = state.numbers.get(name) {
            return Ok(number);
        }
        let number = self.with_live(state, |store, quota, handle| {
            quota.prepared().call_resource_number(store, handle, name)
        })?;
        state.numbers.insert(name.to_string(), number);
        Ok(number)
    }

    /// The decision, with the request's checks in `evaluate`'s order: an
    /// empty project, an empty resource (the component's, when it numbers
    /// the name), a resource twice, then an unknown project (the
    /// component's, when it locates the project).
    fn decide(
        &self,
        state: &mut State,
        project: &str,
        deltas: &[(&str, i64)],
        usage: PathNumbers,
    ) -> Result<Decision, Failure> {
        if project.is_empty() {
            return self.invalid(state, w::Error::EmptyId(w::IdKind::Project));
        }
        if state.live.is_none() {
            // A fault dropped the last instance and the numbers kept from
            // it: prepare again (which forgets them) before using any.
            self.with_live(state, |_, _, _| Ok(Ok(())))?;
        }
        let mut numbers = Vec::with_capacity(deltas.len());
        for &(name, delta) in deltas {
            numbers.push((self.resource_number(state, name)?, delta));
        }
        let located = match self.locate(state, project) {
            Ok(located) => located,
            // The component finds a resource twice when it decides, after
            // the project is located; one that is also unknown is reported
            // as the resource twice, as `evaluate` does.
            Err(e) => {
                return match duplicate(deltas, &numbers) {
                    Some(name) => self.invalid(
                        state,
                        w::Error::DuplicateResource(w::ResourceRef {
                            resource_name: name.to_string(),
                        }),
                    ),
                    None => Err(e),
                };
            }
        };
        let decision = self.with_live(state, |store, quota, handle| {
            quota.prepared().call_evaluate(
                store,
                handle,
                located.node,
                &numbers,
                &usage.local,
                &usage.subtree,
                &usage.generations,
            )
        })?;
        Ok(match decision {
            w::PathDecision::Admitted(positions) => Decision {
                admitted: true,
                claim: Claim::positions(located.path, positions, usage.generations).map_err(
                    // Only a broken component answers this.
                    |k| {
                        Failure::Fault(Fault {
                            kind: FaultKind::Trap,
                            message: format!("claim position {k} is off the path"),
                        })
                    },
                )?,
                violations: Vec::new(),
            },
            w::PathDecision::Refused(violations) => Decision {
                admitted: false,
                claim: Claim::empty(),
                violations: violations.into_iter().map(Violation::from_wit).collect(),
            },
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing panics while holding it; a poisoned state is still whole.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A decision's usage, by path position (see `Prepared.evaluate`).
struct PathNumbers {
    local: Vec<i64>,
    subtree: Vec<i64>,
    generations: Vec<u64>,
}

/// The smallest resource named twice, as `evaluate` reports it
/// (`numbers[i]` is the number of `deltas[i]`'s resource).
fn duplicate<'a>(deltas: &[(&'a str, i64)], numbers: &[(u32, i64)]) -> Option<&'a str> {
    (0..numbers.len())
        .filter(|&i| numbers[..i].iter().any(|(n, _)| *n == numbers[i].0))
        .map(|i| deltas[i].0)
        .min()
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
                located: FxHashMap::default(),
                numbers: FxHashMap::default(),
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
        py.detach(|| {
            let mut state = self.lock();
            let located = self.locate(&mut state, project)?;
            Ok(located.path.iter().map(|id| id.to_string()).collect())
        })
        .map_err(|f: Failure| f.into_pyerr(py))
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
        local: &Bound<'_, PyAny>,
        subtree: &Bound<'_, PyAny>,
        generations: &Bound<'_, PyAny>,
    ) -> PyResult<Decision> {
        let usage = PathNumbers {
            local: numbers(local, "local")?,
            subtree: numbers(subtree, "subtree")?,
            generations: numbers(generations, "generations")?,
        };
        // The names are read in place (no copy) while the GIL is held.
        let (keys, objects);
        let names: Vec<(&str, i64)> = if let Ok(dict) = deltas.cast::<PyDict>() {
            keys = dict
                .iter()
                .map(|(k, v)| Ok((k.extract::<PyBackedStr>()?, v.extract::<i64>()?)))
                .collect::<PyResult<Vec<_>>>()?;
            keys.iter().map(|(k, v)| (&**k, *v)).collect()
        } else {
            objects = deltas.extract::<Vec<Bound<'_, Delta>>>()?;
            objects
                .iter()
                .map(|d| (d.get().resource.as_str(), d.get().delta))
                .collect()
        };
        // A decision on a live instance takes microseconds: made with the
        // GIL held, which costs less than releasing it (nothing in it calls
        // back into Python). Busy (another thread's call), or preparing
        // again after a fault: without the GIL.
        let live = match self.state.try_lock() {
            Ok(state) if state.live.is_some() => Some(state),
            _ => None,
        };
        let out = match live {
            Some(mut state) => self.decide(&mut state, project, &names, usage),
            None => {
                let names: Vec<(String, i64)> =
                    names.iter().map(|&(n, d)| (n.to_string(), d)).collect();
                py.detach(|| {
                    let names: Vec<(&str, i64)> =
                        names.iter().map(|(n, d)| (n.as_str(), *d)).collect();
                    self.decide(&mut self.lock(), project, &names, usage)
                })
            }
        };
        out.map_err(|f| f.into_pyerr(py))
    }
}

/// The integers of `value`, argument `name`: a list read item by item (the
/// usual case, and cheaper than the sequence protocol), any other sequence
/// as pyo3 extracts it. A wrong type is pyo3's `TypeError` for the argument.
fn numbers<'py, T>(value: &Bound<'py, PyAny>, name: &str) -> PyResult<Vec<T>>
where
    T: FromPyObjectOwned<'py>,
    Vec<T>: FromPyObjectOwned<'py>,
{
    let extracted: PyResult<Vec<T>> = match value.cast::<PyList>() {
        Ok(list) => {
            // Sized once (collecting a fallible map would grow it).
            let mut out = Vec::with_capacity(list.len());
            let mut failed = None;
            for item in list.iter() {
                match item.extract::<T>() {
                    Ok(v) => out.push(v),
                    Err(e) => {
                        failed = Some(e.into());
                        break;
                    }
                }
            }
            match failed {
                Some(e) => Err(e),
                None => Ok(out),
            }
        }
        Err(_) => value.extract::<Vec<T>>().map_err(Into::into),
    };
    extracted.map_err(|err| {
        let py = value.py();
        if err.is_instance_of::<PyTypeError>(py) {
            let wrapped = PyTypeError::new_err(format!("argument '{name}': {}", err.value(py)));
            wrapped.set_cause(py, err.cause(py));
            wrapped
        } else {
            err
        }
    })
}
