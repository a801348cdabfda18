//! `Prepared`: the component's `prepared` resource
//! ([`delimiter_embed::Prepared`]), for decisions that pass only the
//! request and the numbers of the project's path.
//!
//! Python threads may share one object: calls on it run one at a time
//! behind a mutex. The hot path (`evaluate`) is written out by hand: the
//! resource names are read in place while the GIL is held, and a decision
//! on a live instance (microseconds, nothing in it calls back into Python)
//! is made with the GIL held, which costs less than releasing it; the claim
//! stays path positions until read. A batch (`evaluate_batch`) is longer
//! and runs without the GIL, as the module's functions do.

use crate::api::{Config, batch_results, config_of};
use crate::call::{Limits as Bounds, detached};
use crate::data::{Decision, Delta, Limits, PreparedMember, Project};
use crate::errors::to_pyerr;
use delimiter_embed::types::{self as w, PathDecision};
use delimiter_embed::{Error, FaultKind, GuestFault};
use pyo3::conversion::FromPyObjectOwned;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyDict, PyList};
use std::sync::{Mutex, MutexGuard};

/// The config, project tree and limits, checked and indexed once inside
/// the component, for many decisions from the path's numbers.
#[pyclass(module = "delimiter", frozen)]
pub struct Prepared(Mutex<delimiter_embed::Prepared>);

impl Prepared {
    fn lock(&self) -> MutexGuard<'_, delimiter_embed::Prepared> {
        // Nothing panics while holding it; a poisoned state is still whole.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The decision for `deltas` of `project`, its claim as path positions.
fn decide(
    prepared: &mut delimiter_embed::Prepared,
    project: &str,
    deltas: &[(&str, i64)],
    local: Vec<i64>,
    subtree: Vec<i64>,
    generations: Vec<u64>,
) -> Result<Decision, Error> {
    let (located, decision) = prepared.decide(project, deltas, &local, &subtree, &generations)?;
    match decision {
        PathDecision::Admitted(positions) => {
            Decision::positions(located.path, positions, generations).map_err(|k| {
                // Only a broken component answers this.
                Error::GuestFault(GuestFault {
                    kind: FaultKind::Trap,
                    message: format!("claim position {k} is off the path"),
                })
            })
        }
        PathDecision::Refused(violations) => Ok(Decision::decided(
            delimiter_embed::types::Decision::Refused(violations),
        )),
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
        let c = config_of(config);
        let p: Vec<_> = projects.into_iter().map(|p| p.0).collect();
        let l = limits.map(|l| l.0).unwrap_or_default();
        let enforcer = Bounds::new(fuel, memory_limit).enforcer();
        detached(py, || {
            delimiter_embed::Prepared::with_enforcer(enforcer, &c, &p, &l)
        })
        .map(|prepared| Prepared(Mutex::new(prepared)))
    }

    /// The nodes whose usage and generation a decision for `project` needs,
    /// in the order `evaluate` takes them: the project, then each ancestor
    /// up to the root.
    fn path(&self, py: Python<'_>, project: &str) -> PyResult<Vec<String>> {
        let path = detached(py, || self.lock().path(project))?;
        Ok(path.iter().map(|id| id.to_string()).collect())
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
        let local = numbers(local, "local")?;
        let subtree = numbers(subtree, "subtree")?;
        let generations = numbers(generations, "generations")?;
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
                .map(|d| (d.get().0.resource.as_str(), d.get().0.delta))
                .collect()
        };
        // Live and free: decide with the GIL held. Busy (another thread's
        // call), or preparing again after a fault: without it.
        let live = self.0.try_lock().ok().filter(|p| p.is_live());
        let out = match live {
            Some(mut prepared) => {
                decide(&mut prepared, project, &names, local, subtree, generations)
            }
            None => {
                let owned: Vec<(String, i64)> =
                    names.iter().map(|&(n, d)| (n.to_string(), d)).collect();
                py.detach(|| {
                    let names: Vec<(&str, i64)> =
                        owned.iter().map(|(n, d)| (n.as_str(), *d)).collect();
                    decide(
                        &mut self.lock(),
                        project,
                        &names,
                        local,
                        subtree,
                        generations,
                    )
                })
            }
        };
        out.map_err(|e| to_pyerr(py, e))
    }

    /// Decides `members` (a sequence of `PreparedMember`) in order, each
    /// against its own numbers (as `evaluate` takes them) plus the deltas
    /// of the members admitted before it (semantics, "Combining concurrent
    /// consumes"): on numbers read in one read view, what `evaluate_batch`
    /// decides on that snapshot. One element per member, in order: its
    /// `Decision` (the claim named, with the generations the member
    /// passed), or the `InvalidInput` it gets (returned, not raised; the
    /// others are decided as if it were not there). Raises `TypeError` for
    /// anything but a sequence of `PreparedMember`, and `GuestFault`.
    fn evaluate_batch(
        &self,
        py: Python<'_>,
        members: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<Py<PyAny>>> {
        let members = prepared_members(members)?;
        let decided = detached(py, || self.lock().evaluate_batch(&members))?;
        batch_results(py, decided)
    }
}

/// The WIT records of `members`, a sequence of `PreparedMember` (copied
/// while the GIL is held, for a call made without it). Anything else is a
/// `TypeError` naming the argument (and the item).
fn prepared_members(members: &Bound<'_, PyAny>) -> PyResult<Vec<w::PreparedMember>> {
    let items: Vec<Bound<'_, PyAny>> = match members.extract() {
        Ok(items) => items,
        Err(_) => {
            return Err(PyTypeError::new_err(format!(
                "argument 'members': a sequence of PreparedMember, not {}",
                members.get_type().name()?
            )));
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item.cast::<PreparedMember>() {
            Ok(member) => Ok(member.get().0.clone()),
            Err(_) => Err(PyTypeError::new_err(format!(
                "argument 'members': item {i} is a {}, not a PreparedMember",
                item.get_type().name()?
            ))),
        })
        .collect()
}

/// The integers of `value`, argument `name`: a list read item by item (the
/// usual case, and cheaper than the sequence protocol), any other sequence
/// as pyo3 extracts it. A wrong type is a `TypeError` naming the argument.
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
