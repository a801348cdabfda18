//! The data of every call: the types `bindgen!` generates from
//! `wit/delimiter.wit` (the one definition of the data outside the core),
//! with the derives a Rust API needs, and small constructors.
//!
//! Field names are the WIT's (`%resource` is `resource`, as in the core);
//! a WIT `variant` is a Rust enum whose payload is its record, e.g.
//! `InvalidInput::UnknownProject(ProjectRef { project })`.

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        world: "delimiter",
        // `wit` is a link to the repository's wit/ (a package copies the files).
        path: "wit",
        additional_derives: [
            PartialEq,
            Eq,
            Hash,
            serde::Serialize,
            serde::Deserialize,
        ],
    });
}

pub use bindings::delimiter::quota::types::*;

/// A limit of -1: no limit.
pub const UNLIMITED: i64 = -1;

/// The default maximum depth of a project tree.
pub const DEFAULT_MAX_DEPTH: u32 = 64;

impl Project {
    /// A root project.
    pub fn root(id: impl Into<String>) -> Self {
        Project {
            id: id.into(),
            parent: None,
        }
    }

    /// A project under `parent`.
    pub fn child(id: impl Into<String>, parent: impl Into<String>) -> Self {
        Project {
            id: id.into(),
            parent: Some(parent.into()),
        }
    }
}

impl RegisteredLimit {
    pub fn new(resource: impl Into<String>, limit: i64) -> Self {
        RegisteredLimit {
            resource: resource.into(),
            limit,
        }
    }
}

impl ProjectLimit {
    pub fn new(project: impl Into<String>, resource: impl Into<String>, limit: i64) -> Self {
        ProjectLimit {
            project: project.into(),
            resource: resource.into(),
            limit,
        }
    }
}

// Written out: `Default` cannot be added to every generated type (enums
// have no default case), so these are not derivable through `bindgen!`.
#[allow(clippy::derivable_impls)]
impl Default for Limits {
    fn default() -> Self {
        Limits {
            registered: Vec::new(),
            project: Vec::new(),
        }
    }
}

impl UsageEntry {
    pub fn new(project: impl Into<String>, resource: impl Into<String>, usage: i64) -> Self {
        UsageEntry {
            project: project.into(),
            resource: resource.into(),
            usage,
        }
    }
}

impl ResourceUsage {
    pub fn new(resource: impl Into<String>, usage: i64) -> Self {
        ResourceUsage {
            resource: resource.into(),
            usage,
        }
    }
}

impl Default for Usage {
    /// No usage at all (local form).
    fn default() -> Self {
        Usage::Local(Vec::new())
    }
}

#[allow(clippy::derivable_impls)]
impl Default for PathUsage {
    fn default() -> Self {
        PathUsage {
            local: Vec::new(),
            subtree: Vec::new(),
        }
    }
}

impl Default for Snapshot {
    /// No projects, limits, usage or generations.
    fn default() -> Self {
        Snapshot {
            projects: Vec::new(),
            limits: Limits::default(),
            usage: Usage::default(),
            generations: Vec::new(),
        }
    }
}

impl Generation {
    pub fn new(project: impl Into<String>, generation: u64) -> Self {
        Generation {
            project: project.into(),
            generation,
        }
    }
}

impl ClaimEntry {
    pub fn new(project: impl Into<String>, generation: u64) -> Self {
        ClaimEntry {
            project: project.into(),
            generation,
        }
    }
}

impl Delta {
    pub fn new(resource: impl Into<String>, delta: i64) -> Self {
        Delta {
            resource: resource.into(),
            delta,
        }
    }
}

impl Request {
    pub fn new(project: impl Into<String>, deltas: Vec<Delta>) -> Self {
        Request {
            project: project.into(),
            deltas,
        }
    }
}

impl ResourceLimit {
    pub fn new(resource: impl Into<String>, limit: i64) -> Self {
        ResourceLimit {
            resource: resource.into(),
            limit,
        }
    }
}

impl Model {
    /// The canonical (kebab-case) name, as the WIT spells the case.
    pub fn as_str(self) -> &'static str {
        match self {
            Model::Flat => "flat",
            Model::StrictTwoLevel => "strict-two-level",
            Model::Nested => "nested",
        }
    }
}

impl std::fmt::Display for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl MissingLimit {
    /// The WIT case name: `zero` or `unlimited`.
    pub fn as_str(self) -> &'static str {
        match self {
            MissingLimit::Zero => "zero",
            MissingLimit::Unlimited => "unlimited",
        }
    }
}

impl Default for Config {
    /// The nested model, a maximum depth of 64, missing limits as zero.
    fn default() -> Self {
        Config {
            model: Model::Nested,
            max_depth: DEFAULT_MAX_DEPTH,
            missing_limit: MissingLimit::Zero,
        }
    }
}

impl Config {
    /// A config for `model` with the other settings at their defaults.
    pub fn new(model: Model) -> Self {
        Config {
            model,
            ..Config::default()
        }
    }
}

impl Default for RetryPolicy {
    /// 5 attempts, backoff caps from 1 ms doubling to 100 ms, seed 0.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay_us: 1_000,
            max_delay_us: 100_000,
            seed: 0,
        }
    }
}

impl Decision {
    /// Whether the request was admitted.
    pub fn is_admitted(&self) -> bool {
        matches!(self, Decision::Admitted(_))
    }
}

impl IdKind {
    /// The WIT case name: `project`, `parent` or `resource`.
    pub fn as_str(self) -> &'static str {
        match self {
            IdKind::Project => "project",
            IdKind::Parent => "parent",
            IdKind::Resource => "resource",
        }
    }
}

impl InvalidInput {
    /// The stable kebab-case name of the case, as the WIT spells it and the
    /// conformance vectors' `want_error` names it.
    pub fn kind(&self) -> &'static str {
        use InvalidInput::*;
        match self {
            EmptyId(_) => "empty-id",
            DuplicateProject(_) => "duplicate-project",
            UnknownParent(_) => "unknown-parent",
            Cycle(_) => "cycle",
            TooDeep(_) => "too-deep",
            UnknownProject(_) => "unknown-project",
            InvalidLimit(_) => "invalid-limit",
            DuplicateLimit(_) => "duplicate-limit",
            NegativeUsage(_) => "negative-usage",
            DuplicateUsage(_) => "duplicate-usage",
            InconsistentUsage(_) => "inconsistent-usage",
            DuplicateGeneration(_) => "duplicate-generation",
            MissingGeneration(_) => "missing-generation",
            DuplicateResource(_) => "duplicate-resource",
            ReleaseBelowZero(_) => "release-below-zero",
            NegativeDelta(_) => "negative-delta",
            Overflow(_) => "overflow",
            UnknownModel(_) => "unknown-model",
            InvalidConfig(_) => "invalid-config",
            MissingUsage(_) => "missing-usage",
            ShapeMismatch(_) => "shape-mismatch",
        }
    }
}

impl Invalid {
    /// The kind of the input error (see [`InvalidInput::kind`]).
    pub fn kind(&self) -> &'static str {
        self.input.kind()
    }
}
