//! The data of every call, as Python classes over the WIT types: the
//! records and enums (one macro line each), and the few values whose Python
//! form is not a record's: a snapshot's usage, a request's deltas (a list
//! or a dict), headroom's room and `Count` (None when unlimited), a
//! decision (whose prepared claim stays path positions until read), and a
//! validation finding (which holds its exception).

use crate::convert::{Field, OrDefault, enum_class, record, repr};
use delimiter_embed::types as w;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

enum_class! {
    /// How usage in a project tree counts against limits.
    Model(Model) {
        /// Only the project itself counts.
        FLAT = Flat,
        /// Keystone's model: at most two levels; a parent's limit caps the
        /// parent and its children together.
        STRICT_TWO_LEVEL = StrictTwoLevel,
        /// Any depth: every ancestor with a finite limit caps its subtree.
        NESTED = Nested,
    }
}

enum_class! {
    /// What a resource with neither a project nor a registered limit is worth.
    MissingLimit(MissingLimit) {
        /// Treated as 0 (oslo.limit's behaviour): it cannot be consumed.
        ZERO = Zero,
        /// Treated as unlimited.
        UNLIMITED = Unlimited,
    }
}

enum_class! {
    /// What a store's `commit` (or `commit_batch`) did. A store may also
    /// return the value as a string: `"committed"`, `"conflict"` or
    /// `"conflict-after-wait"`.
    CommitOutcome(CommitOutcome) {
        /// Every claimed generation matched and was bumped; the rows are written.
        COMMITTED = Committed,
        /// A claimed generation had moved on (or the database aborted the
        /// transaction as a deadlock or serialization failure); everything
        /// was rolled back. The driver backs off before it reads again.
        CONFLICT = Conflict,
        /// As `CONFLICT`, but the losing statement had waited for the
        /// winning writer, which has committed: the driver reads again at
        /// once, without a backoff.
        CONFLICT_AFTER_WAIT = ConflictAfterWait,
    }
}

record! {
    /// A project of the tree. `parent=None` means a root.
    Project(Project) { id: String, parent: Option<String> = None }
}

record! {
    /// The default limit of a resource for every project. -1 is unlimited.
    RegisteredLimit(RegisteredLimit) { resource: String, limit: i64 }
}

record! {
    /// An override of the registered limit for one project. -1 is unlimited.
    ProjectLimit(ProjectLimit) { project: String, resource: String, limit: i64 }
}

record! {
    /// All limits known to the caller.
    Limits(Limits) {
        registered: Vec<w::RegisteredLimit> = Vec::new(),
        project: Vec<w::ProjectLimit> = Vec::new(),
    }

    /// The limit that applies to `project`'s own usage of `resource`: its
    /// project limit, else the registered limit, else None (the config's
    /// missing_limit decides then). -1 is unlimited.
    fn limit_of(&self, project: &str, resource: &str) -> Option<i64> {
        self.0.limit_of(project, resource)
    }
}

record! {
    /// What one project itself uses of one resource.
    UsageEntry(UsageEntry) { project: String, resource: String, usage: i64 }
}

record! {
    /// What the requesting project itself uses of one resource.
    ResourceUsage(ResourceUsage) { resource: String, usage: i64 }
}

record! {
    /// Usage pre-summed by the caller for the requesting project's path: the
    /// project's own usage (`local`), and the subtree usage of the project and
    /// of each of its ancestors (`subtree`).
    PathUsage(PathUsage) {
        local: Vec<w::ResourceUsage> = Vec::new(),
        subtree: Vec<w::UsageEntry> = Vec::new(),
    }
}

record! {
    /// The generation a project was read at (monotonic, never reused).
    Generation(Generation) { project: String, generation: u64 }
}

record! {
    /// The tree, limits, usage and generations read at one point in time.
    /// `usage` is a list of `UsageEntry` (local usage of any project) or a
    /// `PathUsage`; unlisted usage is 0.
    Snapshot(Snapshot) {
        projects: Vec<w::Project> = Vec::new(),
        limits: OrDefault<w::Limits> = None,
        usage: OrDefault<w::Usage> = None,
        generations: Vec<w::Generation> = Vec::new(),
    }
}

record! {
    /// A requested change of one resource: > 0 consumes, < 0 releases, 0
    /// re-checks.
    Delta(Delta) { resource: String, delta: i64 }
}

record! {
    /// A request by one project. `deltas` is a list of `Delta` or a dict
    /// `{resource: delta}`.
    Request(Request) { project: String, deltas: Deltas }
}

record! {
    /// One member of `Prepared.evaluate_batch`: a request and the numbers
    /// `Prepared.evaluate` takes for it, in the same shapes (n =
    /// `len(request.deltas)`, path = `Prepared.path(request.project)`):
    /// `local[r]` the project's own usage of the r-th delta's resource,
    /// `subtree[k * n + r]` the subtree usage of `path[k]` for it,
    /// `generations[k]` the generation read for `path[k]`.
    PreparedMember(PreparedMember) {
        request: w::Request,
        local: Vec<i64>,
        subtree: Vec<i64>,
        generations: Vec<u64>,
    }
}

record! {
    /// One violated constraint of a refusal: the constraining project, the
    /// resource, its limit, the usage at that project (local for flat,
    /// subtree otherwise) and the requested delta.
    Violation(Violation) { project: String, resource: String, limit: i64, usage: i64, delta: i64 }
}

record! {
    /// One row the caller's commit must compare-and-update:
    /// `UPDATE ... SET generation = generation + 1 WHERE project_id = :project
    /// AND generation = :generation`.
    ClaimEntry(ClaimEntry) { project: String, generation: u64 }
}

record! {
    /// The room left for one resource: `room` is the minimum of limit minus
    /// usage over the constraining path (never below zero), or None when no
    /// finite limit applies (`unlimited` is then True).
    ResourceHeadroom(ResourceHeadroom) { resource: String, room: w::Room }

    /// True when no finite limit applies.
    #[getter]
    fn unlimited(&self) -> bool {
        self.0.room == w::Room::Unlimited
    }
}

record! {
    /// Strict-two-level: a child's limit is above its parent's (`child_limit`
    /// -1 when the child is unlimited).
    ChildLimitExceedsParent(ChildLimitExcess) {
        parent: String,
        child: String,
        resource: String,
        parent_limit: i64,
        child_limit: i64,
    }

    /// Always `child-limit-exceeds-parent`.
    #[getter]
    fn kind(&self) -> &'static str {
        "child-limit-exceeds-parent"
    }
}

record! {
    /// A limit of one resource, as oslo.limit passes them.
    ResourceLimit(ResourceLimit) { resource: String, limit: i64 }
}

record! {
    /// One oslo.limit 2.12 flat `Enforcer.enforce(project_id, deltas)` call,
    /// with its limits and usage already fetched. `project_id=None` checks
    /// against registered limits only (`project` is then ignored).
    OsloCheck(OsloRequest) {
        project_id: Option<String>,
        deltas: Deltas,
        registered: Vec<w::ResourceLimit> = Vec::new(),
        project: Vec<w::ResourceLimit> = Vec::new(),
        usage: Vec<w::ResourceUsage> = Vec::new(),
    }
}

record! {
    /// oslo.limit's `OverLimitInfo`, as data.
    OverLimitInfo(OverLimitInfo) { resource_name: String, limit: i64, current_usage: i64, delta: i64 }
}

record! {
    /// How hard `consume` tries: until `deadline_us` (on the store's clock)
    /// is spent, with `max_attempts` attempts (read, decide, commit) as a
    /// guard. After a plain conflict the driver backs off, jittered under a
    /// cap that starts at `base_delay_us` and doubles up to `max_delay_us`;
    /// after a conflict-after-wait it reads again at once. The jitter is
    /// drawn per call from the store's `entropy`, unless `seed` is set (for
    /// reproducible tests: callers sharing a seed back off in lockstep).
    /// `lock_after_conflict` (opt-in) makes every attempt after the first
    /// conflict a locked one: the store's `read_locked` locks the path's
    /// generation rows and the attempt reads, decides and commits in that
    /// transaction (no backoff before it; lone consumes only).
    /// The component checks the fields when a consume starts
    /// (`InvalidInput(kind="invalid-config")` naming the field).
    RetryPolicy(RetryPolicy) {
        max_attempts: u32 = 100,
        deadline_us: u64 = 2_000_000,
        base_delay_us: u64 = 1000,
        max_delay_us: u64 = 50_000,
        seed: Option<u64> = None,
        lock_after_conflict: bool = false,
    }
}

record! {
    /// A successful `consume`: the claim that was committed, and the attempts
    /// used (1 when the first commit went through).
    Consumed(Consumed) { claim: Vec<w::ClaimEntry>, attempts: u32 }
}

/// A snapshot's usage as Python gives and sees it.
#[derive(IntoPyObject)]
pub enum UsageForm {
    Path(PathUsage),
    Local(Vec<UsageEntry>),
}

impl<'a, 'py> FromPyObject<'a, 'py> for UsageForm {
    type Error = PyErr;

    /// A `PathUsage`, else a sequence of `UsageEntry` (no error is made
    /// for the form it is not).
    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        match obj.cast::<PathUsage>() {
            Ok(path) => Ok(UsageForm::Path(path.get().clone())),
            Err(_) => Ok(UsageForm::Local(obj.extract()?)),
        }
    }
}

impl Field for w::Usage {
    type Wit = w::Usage;
    type Arg = UsageForm;
    type Py = UsageForm;
    fn from_arg(arg: UsageForm) -> w::Usage {
        match arg {
            UsageForm::Path(path) => w::Usage::Path(path.0),
            UsageForm::Local(rows) => w::Usage::Local(rows.into_iter().map(|u| u.0).collect()),
        }
    }
    fn to_py(value: &w::Usage) -> UsageForm {
        match value {
            w::Usage::Path(path) => UsageForm::Path(PathUsage(path.clone())),
            w::Usage::Local(rows) => {
                UsageForm::Local(rows.iter().cloned().map(UsageEntry).collect())
            }
        }
    }
}

/// The form of a request's deltas: a list of `Delta`, or a dict
/// `{resource: delta}` (in its order).
pub struct Deltas;

pub struct DeltasArg(pub Vec<w::Delta>);

impl<'a, 'py> FromPyObject<'a, 'py> for DeltasArg {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(dict) = obj.cast::<PyDict>() {
            let mut deltas = Vec::with_capacity(dict.len());
            for (resource, delta) in dict.iter() {
                deltas.push(w::Delta::new(
                    resource.extract::<String>()?,
                    delta.extract()?,
                ));
            }
            return Ok(DeltasArg(deltas));
        }
        Ok(DeltasArg(
            obj.extract::<Vec<Delta>>()?
                .into_iter()
                .map(|d| d.0)
                .collect(),
        ))
    }
}

impl Field for Deltas {
    type Wit = Vec<w::Delta>;
    type Arg = DeltasArg;
    type Py = Vec<Delta>;
    fn from_arg(arg: DeltasArg) -> Vec<w::Delta> {
        arg.0
    }
    fn to_py(value: &Vec<w::Delta>) -> Vec<Delta> {
        value.iter().cloned().map(Delta).collect()
    }
}

/// Room is None when unlimited.
impl Field for w::Room {
    type Wit = w::Room;
    type Arg = Option<i64>;
    type Py = Option<i64>;
    fn from_arg(arg: Option<i64>) -> w::Room {
        arg.map_or(w::Room::Unlimited, w::Room::Limited)
    }
    fn to_py(value: &w::Room) -> Option<i64> {
        match *value {
            w::Room::Unlimited => None,
            w::Room::Limited(n) => Some(n),
        }
    }
}

/// The outcome of `max_count`: `units`, the largest number of units that
/// would be admitted now, or None when no positive per-unit delta meets a
/// finite limit (`unlimited` is then True).
#[pyclass(module = "delimiter", frozen, eq, hash, from_py_object)]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Count(pub w::Count);

#[pymethods]
impl Count {
    #[new]
    fn new(units: Option<i64>) -> Self {
        Count(units.map_or(w::Count::Unlimited, w::Count::Units))
    }

    #[getter]
    fn units(&self) -> Option<i64> {
        match self.0 {
            w::Count::Unlimited => None,
            w::Count::Units(n) => Some(n),
        }
    }

    /// True when no finite limit applies.
    #[getter]
    fn unlimited(&self) -> bool {
        self.0 == w::Count::Unlimited
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("Count(units={})", repr(py, self.units())?))
    }
}

/// The outcome of `evaluate`: admitted with the claim to compare-and-update
/// (from the project up; empty when no delta is positive), or refused with
/// every violated constraint (by resource, then from the project up).
#[pyclass(module = "delimiter", frozen, eq, hash, from_py_object)]
#[derive(Clone)]
pub struct Decision(Outcome);

#[derive(Clone)]
enum Outcome {
    Decided(w::Decision),
    /// A prepared admission: the claim as positions in `path`, with the
    /// generations passed (each position below both lengths), turned into
    /// entries only when read (most callers read `admitted`, then hand the
    /// claim to their store once).
    Positions {
        path: Arc<[Arc<str>]>,
        positions: Vec<u32>,
        generations: Vec<u64>,
    },
}

impl Decision {
    pub fn decided(decision: w::Decision) -> Self {
        Decision(Outcome::Decided(decision))
    }

    /// An admission claiming `positions` of `path` with `generations`, or
    /// the first position off either (only a broken component answers one).
    pub fn positions(
        path: Arc<[Arc<str>]>,
        positions: Vec<u32>,
        generations: Vec<u64>,
    ) -> Result<Self, u32> {
        let len = path.len().min(generations.len());
        match positions.iter().find(|&&k| k as usize >= len) {
            Some(&off) => Err(off),
            None => Ok(Decision(Outcome::Positions {
                path,
                positions,
                generations,
            })),
        }
    }

    /// (project, generation) per claim entry, from the project up.
    fn entries(&self) -> Box<dyn Iterator<Item = (&str, u64)> + '_> {
        match &self.0 {
            Outcome::Decided(w::Decision::Admitted(claim)) => {
                Box::new(claim.iter().map(|c| (c.project.as_str(), c.generation)))
            }
            Outcome::Decided(w::Decision::Refused(_)) => Box::new(std::iter::empty()),
            Outcome::Positions {
                path,
                positions,
                generations,
            } => Box::new(
                positions
                    .iter()
                    .map(|&k| (&*path[k as usize], generations[k as usize])),
            ),
        }
    }

    fn refused(&self) -> &[w::Violation] {
        match &self.0 {
            Outcome::Decided(w::Decision::Refused(violations)) => violations,
            _ => &[],
        }
    }
}

impl PartialEq for Decision {
    fn eq(&self, other: &Self) -> bool {
        self.admitted() == other.admitted()
            && self.entries().eq(other.entries())
            && self.refused() == other.refused()
    }
}

impl Eq for Decision {}

impl Hash for Decision {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.admitted().hash(state);
        let mut len = 0usize;
        for entry in self.entries() {
            entry.hash(state);
            len += 1;
        }
        len.hash(state);
        self.refused().hash(state);
    }
}

#[pymethods]
impl Decision {
    /// An admitted decision has no violations, a refused one no claim.
    #[new]
    #[pyo3(signature = (admitted, claim = Vec::new(), violations = Vec::new()))]
    fn new(admitted: bool, claim: Vec<ClaimEntry>, violations: Vec<Violation>) -> PyResult<Self> {
        if (admitted && !violations.is_empty()) || (!admitted && !claim.is_empty()) {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "an admitted Decision has no violations, a refused one no claim",
            ));
        }
        Ok(Decision::decided(if admitted {
            w::Decision::Admitted(claim.into_iter().map(|c| c.0).collect())
        } else {
            w::Decision::Refused(violations.into_iter().map(|v| v.0).collect())
        }))
    }

    #[getter]
    fn admitted(&self) -> bool {
        !matches!(self.0, Outcome::Decided(w::Decision::Refused(_)))
    }

    #[getter]
    fn claim(&self) -> Vec<ClaimEntry> {
        self.entries()
            .map(|(project, generation)| ClaimEntry(w::ClaimEntry::new(project, generation)))
            .collect()
    }

    #[getter]
    fn violations(&self) -> Vec<Violation> {
        self.refused().iter().cloned().map(Violation).collect()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(if self.admitted() {
            format!("Decision(admitted=True, claim={})", repr(py, self.claim())?)
        } else {
            format!(
                "Decision(admitted=False, violations={})",
                repr(py, self.violations())?
            )
        })
    }
}

/// A problem that would make every decision fail: `error` is the
/// `InvalidInput` a decision would raise (not raised here); `kind`,
/// `project` and `resource` are copied from it.
#[pyclass(module = "delimiter", frozen)]
pub struct InvalidFinding {
    #[pyo3(get)]
    pub kind: String,
    #[pyo3(get)]
    pub project: Option<String>,
    #[pyo3(get)]
    pub resource: Option<String>,
    #[pyo3(get)]
    pub error: Py<PyAny>,
}

#[pymethods]
impl InvalidFinding {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "InvalidFinding(error={})",
            repr(py, self.error.bind(py))?
        ))
    }

    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        let Ok(other) = other.cast::<InvalidFinding>() else {
            return Ok(false);
        };
        let (a, b) = (self.error.bind(py), other.get().error.bind(py));
        Ok(self.kind == other.get().kind
            && a.getattr("fields")?.eq(b.getattr("fields")?)?
            && a.str()?.to_string() == b.str()?.to_string())
    }
}

/// What a store's `commit_batch` returns when the rows of one member failed
/// to write (after rolling everything back): `index` is the member's place
/// in the `members` it was passed (from 0). `message` may be given as the
/// failure's text or as the exception itself, kept as `original` (and its
/// `str()` is then the message), so that the member's `StorageError`
/// carries it as `consume` would.
#[pyclass(module = "delimiter", frozen)]
pub struct MemberFailure {
    #[pyo3(get)]
    pub index: u32,
    #[pyo3(get)]
    pub message: String,
    #[pyo3(get)]
    pub original: Option<Py<PyAny>>,
}

#[pymethods]
impl MemberFailure {
    #[new]
    fn new(index: u32, message: &Bound<'_, PyAny>) -> PyResult<Self> {
        if let Ok(text) = message.extract::<String>() {
            return Ok(MemberFailure {
                index,
                message: text,
                original: None,
            });
        }
        if message.is_instance_of::<pyo3::exceptions::PyBaseException>() {
            return Ok(MemberFailure {
                index,
                message: message.str()?.to_string(),
                original: Some(message.clone().unbind()),
            });
        }
        Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "MemberFailure's message is a str or an exception, not {}",
            message.get_type().name()?
        )))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(match &self.original {
            Some(original) => format!(
                "MemberFailure(index={}, message={})",
                self.index,
                repr(py, original.bind(py))?
            ),
            None => format!(
                "MemberFailure(index={}, message={})",
                self.index,
                repr(py, self.message.as_str())?
            ),
        })
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        let Ok(other) = other.cast::<MemberFailure>() else {
            return false;
        };
        let other = other.get();
        self.index == other.index && self.message == other.message
    }
}
