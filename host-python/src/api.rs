//! The settings class and every function of the module: each converts its
//! arguments, makes one component call through [`call`], and wraps the
//! answer in the data classes.

use crate::call::{Limits as Bounds, call, detached};
use crate::convert::record;
use crate::data::{
    ChildLimitExceedsParent, Consumed, Count, Decision, InvalidFinding, Limits, MissingLimit,
    Model, OsloCheck, OverLimitInfo, Project, Request, ResourceHeadroom, RetryPolicy, Snapshot,
};
use crate::errors::to_pyerr;
use crate::store::PyStore;
use delimiter_embed::Error;
use delimiter_embed::types as w;
use pyo3::IntoPyObjectExt;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::Arc;

record! {
    @custom
    /// Settings for every call. `Config()` is the nested model, depth 64,
    /// missing limits treated as 0. The model and the missing-limit rule may
    /// be given by name; the component checks the names and the depth
    /// (`parse-config`).
    Config(Config) { model: w::Model, max_depth: u32, missing_limit: w::MissingLimit }

    #[new]
    #[pyo3(signature = (model = None, max_depth = w::DEFAULT_MAX_DEPTH, missing_limit = None))]
    fn new(
        py: Python<'_>,
        model: Option<&Bound<'_, PyAny>>,
        max_depth: u32,
        missing_limit: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let model = match model {
            Some(m) => match m.cast::<Model>() {
                Ok(m) => m.get().as_str().to_string(),
                Err(_) => m.extract()?,
            },
            None => "nested".to_string(),
        };
        let missing = match missing_limit {
            Some(m) => match m.cast::<MissingLimit>() {
                Ok(m) => m.get().as_str().to_string(),
                Err(_) => m.extract()?,
            },
            None => "zero".to_string(),
        };
        call(py, Bounds::new(None, None), |e| {
            e.parse_config(&model, max_depth, &missing)
        })
        .map(Config)
    }
}

/// The WIT config of an optional `Config` (the default if None).
pub fn config_of(config: Option<&Bound<'_, Config>>) -> w::Config {
    config.map(|c| c.get().0).unwrap_or_default()
}

/// A model by name: `flat`, `strict-two-level` (or Keystone's
/// `strict_two_level`) or `nested`; anything else raises
/// `InvalidInput(kind="unknown-model")`.
#[pyfunction]
#[pyo3(signature = (name, *, fuel = None, memory_limit = None))]
pub fn parse_model(
    py: Python<'_>,
    name: &str,
    fuel: Option<u64>,
    memory_limit: Option<usize>,
) -> PyResult<Model> {
    call(py, Bounds::new(fuel, memory_limit), |e| e.parse_model(name)).map(Model)
}

/// Admits or refuses `request` against `snapshot`; an admission carries the
/// claim. Only positive deltas can be refused.
#[pyfunction]
#[pyo3(signature = (snapshot, request, config = None, *, fuel = None, memory_limit = None))]
pub fn evaluate(
    py: Python<'_>,
    snapshot: &Bound<'_, Snapshot>,
    request: &Bound<'_, Request>,
    config: Option<&Bound<'_, Config>>,
    fuel: Option<u64>,
    memory_limit: Option<usize>,
) -> PyResult<Decision> {
    let (c, s, r) = (config_of(config), &snapshot.get().0, &request.get().0);
    call(py, Bounds::new(fuel, memory_limit), |e| {
        e.evaluate(&c, s, r)
    })
    .map(Decision::decided)
}

/// The headroom of `project` for each of `resources`, sorted by resource.
#[pyfunction]
#[pyo3(signature = (snapshot, project, resources, config = None, *, fuel = None, memory_limit = None))]
pub fn headroom(
    py: Python<'_>,
    snapshot: &Bound<'_, Snapshot>,
    project: &str,
    resources: Vec<String>,
    config: Option<&Bound<'_, Config>>,
    fuel: Option<u64>,
    memory_limit: Option<usize>,
) -> PyResult<Vec<ResourceHeadroom>> {
    let (c, s) = (config_of(config), &snapshot.get().0);
    let rows = call(py, Bounds::new(fuel, memory_limit), |e| {
        e.headroom(&c, s, project, &resources)
    })?;
    Ok(rows.into_iter().map(ResourceHeadroom).collect())
}

/// How many units of `request` (its deltas are per unit, zero or more)
/// fit now.
#[pyfunction]
#[pyo3(signature = (snapshot, request, config = None, *, fuel = None, memory_limit = None))]
pub fn max_count(
    py: Python<'_>,
    snapshot: &Bound<'_, Snapshot>,
    request: &Bound<'_, Request>,
    config: Option<&Bound<'_, Config>>,
    fuel: Option<u64>,
    memory_limit: Option<usize>,
) -> PyResult<Count> {
    let (c, s, r) = (config_of(config), &snapshot.get().0, &request.get().0);
    call(py, Bounds::new(fuel, memory_limit), |e| {
        e.max_count(&c, s, r)
    })
    .map(Count)
}

/// Every problem of the tree and limits, in order (tree problems, limit
/// problems, then child limits by parent, child and resource); empty when
/// valid. Each is an `InvalidFinding` or a `ChildLimitExceedsParent`.
#[pyfunction]
#[pyo3(signature = (projects, limits = None, config = None, *, fuel = None, memory_limit = None))]
pub fn validate(
    py: Python<'_>,
    projects: Vec<Project>,
    limits: Option<Limits>,
    config: Option<&Bound<'_, Config>>,
    fuel: Option<u64>,
    memory_limit: Option<usize>,
) -> PyResult<Vec<Py<PyAny>>> {
    let c = config_of(config);
    let p: Vec<w::Project> = projects.into_iter().map(|p| p.0).collect();
    let l = limits.map(|l| l.0).unwrap_or_default();
    let findings = call(py, Bounds::new(fuel, memory_limit), |e| {
        e.validate(&c, &p, &l)
    })?;
    findings
        .into_iter()
        .map(|finding| match finding {
            w::Finding::Invalid(invalid) => {
                let error = crate::errors::invalid_input(py, &invalid)?;
                let field =
                    |name: &str| -> PyResult<Option<String>> { error.getattr(name)?.extract() };
                InvalidFinding {
                    kind: invalid.kind().to_string(),
                    project: field("project")?,
                    resource: field("resource")?,
                    error: error.unbind(),
                }
                .into_py_any(py)
            }
            w::Finding::ChildLimitExceedsParent(x) => ChildLimitExceedsParent(x).into_py_any(py),
        })
        .collect()
}

/// oslo.limit 2.12's flat check: an empty list when within limits,
/// otherwise `ProjectOverLimit.over_limit_info_list` (by resource name).
/// Missing usage raises `InvalidInput(kind="missing-usage")`.
#[pyfunction]
#[pyo3(signature = (check, *, fuel = None, memory_limit = None))]
pub fn oslo_check(
    py: Python<'_>,
    check: &Bound<'_, OsloCheck>,
    fuel: Option<u64>,
    memory_limit: Option<usize>,
) -> PyResult<Vec<OverLimitInfo>> {
    let o = &check.get().0;
    let over = call(py, Bounds::new(fuel, memory_limit), |e| e.oslo_check(o))?;
    Ok(over.into_iter().map(OverLimitInfo).collect())
}

/// Consumes `request` through `store`: read, decide, commit; on a conflict,
/// read again (at once after a conflict-after-wait, else after a jittered
/// backoff), until `policy.deadline_us` or `policy.max_attempts`.
///
/// `store` has `read(project, resources) -> Snapshot`, `commit(claim,
/// request) -> CommitOutcome` (one transaction: write the rows and
/// compare-and-update every claimed generation, root first, rolling back on
/// a miss) and optionally `backoff(attempt, delay_us)` (else the driver
/// sleeps), `now_us()` (a monotonic clock in microseconds, else embed's)
/// and `entropy()` (64 random bits, else fresh ones per call). A store
/// method signals a storage failure by raising `StorageError`; any other
/// exception stops the driver at once and propagates as itself.
///
/// Raises `OverLimit` (final, never retried), `RetriesExhausted`,
/// `StorageError` (with the storage's own exception as `original` and
/// `__cause__`), `InvalidInput` or `GuestFault`; nothing is committed in
/// any of those cases.
#[pyfunction]
#[pyo3(signature = (store, request, config = None, policy = None, *, fuel = None, memory_limit = None))]
pub fn consume(
    py: Python<'_>,
    store: Py<PyAny>,
    request: &Bound<'_, Request>,
    config: Option<&Bound<'_, Config>>,
    policy: Option<RetryPolicy>,
    fuel: Option<u64>,
    memory_limit: Option<usize>,
) -> PyResult<Consumed> {
    let (c, r) = (config_of(config), &request.get().0);
    let p = policy.map(|p| p.0).unwrap_or_default();
    let mut store = PyStore::new(py, store);
    let out = call(py, Bounds::new(fuel, memory_limit), |e| {
        e.consume(&c, &p, &mut store, r)
    });
    // What a store method raised, as it is, before anything the guest said.
    match store.stash.take() {
        Some(err) => Err(err),
        None => out.map(Consumed),
    }
}

/// Decides `requests` in order against one `snapshot`, each against the
/// snapshot plus the deltas of the requests admitted before it: what the
/// same requests get one by one, each committed before the next is read.
/// One element per request, in order: its `Decision`, or the
/// `InvalidInput` it would raise (returned, not raised). Raises only
/// `GuestFault`.
#[pyfunction]
#[pyo3(signature = (snapshot, requests, config = None, *, fuel = None, memory_limit = None))]
pub fn evaluate_batch(
    py: Python<'_>,
    snapshot: &Bound<'_, Snapshot>,
    requests: Vec<Request>,
    config: Option<&Bound<'_, Config>>,
    fuel: Option<u64>,
    memory_limit: Option<usize>,
) -> PyResult<Vec<Py<PyAny>>> {
    let (c, s) = (config_of(config), &snapshot.get().0);
    let r: Vec<w::Request> = requests.into_iter().map(|r| r.0).collect();
    let decided = call(py, Bounds::new(fuel, memory_limit), |e| {
        e.evaluate_batch(&c, s, &r)
    })?;
    batch_results(py, decided)
}

/// A batch's results as Python gives them, one per member in order: its
/// `Decision`, or its `InvalidInput` (returned, not raised). Shared by
/// `evaluate_batch` and `Prepared.evaluate_batch`.
pub fn batch_results(
    py: Python<'_>,
    decided: Vec<Result<w::Decision, w::Invalid>>,
) -> PyResult<Vec<Py<PyAny>>> {
    decided
        .into_iter()
        .map(|d| match d {
            Ok(decision) => Decision::decided(decision).into_py_any(py),
            Err(invalid) => Ok(crate::errors::invalid_input(py, &invalid)?.unbind()),
        })
        .collect()
}

/// Consumes `requests` as one batch through `store`: one
/// `store.read_batch(projects, resources)` for all (one read view of the
/// members' trees), decisions in arrival order (`evaluate_batch`), one
/// `store.commit_batch(claim, members)` of the admitted members with their
/// claims' union (each project once, root first, then by depth, then id).
/// A conflict re-runs the whole batch within `policy`'s budget; a member
/// whose rows fail (`commit_batch` returned a `MemberFailure`) gets its
/// `StorageError` and the others are decided again without it.
///
/// `commit_batch` returns a `CommitOutcome` (or its name) or a
/// `MemberFailure`; `store` also takes `backoff`, `now_us` and `entropy` as
/// `consume` does. Most callers want `delimiter.Combiner`, which collects
/// concurrent consumes into batches.
///
/// One element per request, in order: its `Consumed`, or the exception
/// `consume` would raise for it, returned (`OverLimit`, `RetriesExhausted`,
/// `StorageError`, `InvalidInput`). Raises `GuestFault`, or what a store
/// method raised other than `StorageError`, as itself (nothing committed
/// for anyone).
#[pyfunction]
#[pyo3(signature = (store, requests, config = None, policy = None, *, fuel = None, memory_limit = None))]
pub fn consume_batch(
    py: Python<'_>,
    store: Py<PyAny>,
    requests: Vec<Request>,
    config: Option<&Bound<'_, Config>>,
    policy: Option<RetryPolicy>,
    fuel: Option<u64>,
    memory_limit: Option<usize>,
) -> PyResult<Vec<Py<PyAny>>> {
    let c = config_of(config);
    let r: Vec<w::Request> = requests.into_iter().map(|r| r.0).collect();
    let p = policy.map(|p| p.0).unwrap_or_default();
    let mut store = PyStore::new(py, store);
    let out = call(py, Bounds::new(fuel, memory_limit), |e| {
        e.consume_batch(&c, &p, &mut store, &r)
    });
    if let Some(err) = store.stash.take() {
        return Err(err);
    }
    let mut member_errors = std::mem::take(&mut store.member_errors);
    out?.into_iter()
        .map(|result| match result {
            Ok(done) => Consumed(done).into_py_any(py),
            Err(Error::Storage {
                mut error,
                attempts,
            }) => {
                // A member failure: the exception commit_batch gave with it.
                if error.source.is_none()
                    && let Some(k) = member_errors.iter().position(|(m, _)| *m == error.message)
                {
                    let (_, original) = member_errors.remove(k);
                    error.source = Some(Arc::new(original));
                }
                Ok(to_pyerr(py, Error::Storage { error, attempts })
                    .into_value(py)
                    .into_any())
            }
            Err(e) => Ok(to_pyerr(py, e).into_value(py).into_any()),
        })
        .collect()
}

/// Where the component was loaded from in this process (loading it now if
/// nothing has yet): `source` is `cache`, `compiled` (and cached) or
/// `compiled-uncached`; `path` the cache file; `note` why the cache was not
/// used; `seconds` the load time; `component_size` in bytes.
#[pyfunction]
pub fn load_info<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
    let info = detached(py, || Ok(delimiter_embed::load_info()?))?;
    let d = PyDict::new(py);
    d.set_item("source", info.source)?;
    d.set_item("path", info.path.map(|p| p.display().to_string()))?;
    d.set_item("note", info.note)?;
    d.set_item("seconds", info.seconds)?;
    d.set_item("component_size", delimiter_embed::component_size())?;
    Ok(d)
}
