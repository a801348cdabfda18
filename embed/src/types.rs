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

impl Limits {
    /// The limit that applies to `project`'s own usage of `resource`: its
    /// project limit, else the registered limit, else `None` (what happens
    /// then is the config's `missing-limit`). -1 is unlimited. The first
    /// match wins; `validate` reports duplicates.
    pub fn limit_of(&self, project: &str, resource: &str) -> Option<i64> {
        let own = self
            .project
            .iter()
            .find(|l| l.project == project && l.resource == resource);
        own.map(|l| l.limit).or_else(|| {
            let registered = self.registered.iter().find(|l| l.resource == resource);
            registered.map(|l| l.limit)
        })
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

/// `Type::new(field, ...)`: every field in the WIT's order, strings as
/// anything that converts into a `String`.
macro_rules! constructors {
    ($($ty:ident($($field:ident: $arg:ident),*);)*) => {$(
        impl $ty {
            #[doc = concat!("A `", stringify!($ty), "` from its fields, in the WIT's order.")]
            pub fn new($($field: constructors!(@arg $arg)),*) -> Self {
                $ty { $($field: $field.into()),* }
            }
        }
    )*};
    (@arg text) => { impl Into<String> };
    (@arg deltas) => { Vec<Delta> };
    (@arg $t:ident) => { $t };
}

constructors! {
    RegisteredLimit(resource: text, limit: i64);
    ProjectLimit(project: text, resource: text, limit: i64);
    UsageEntry(project: text, resource: text, usage: i64);
    ResourceUsage(resource: text, usage: i64);
    Generation(project: text, generation: u64);
    ClaimEntry(project: text, generation: u64);
    Delta(resource: text, delta: i64);
    Request(project: text, deltas: deltas);
    ResourceLimit(resource: text, limit: i64);
}

/// `as_str` (the WIT's case name) and `Display` of a generated enum.
macro_rules! case_names {
    ($($ty:ident { $($case:ident => $name:literal),* })*) => {$(
        impl $ty {
            /// The WIT's name of the case.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$case => $name),* }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}

case_names! {
    Model { Flat => "flat", StrictTwoLevel => "strict-two-level", Nested => "nested" }
    MissingLimit { Zero => "zero", Unlimited => "unlimited" }
    IdKind { Project => "project", Parent => "parent", Resource => "resource" }
    CommitOutcome { Committed => "committed", Conflict => "conflict", ConflictAfterWait => "conflict-after-wait" }
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
    /// A 2 s deadline with a guard of 100 attempts, backoff caps from 1 ms
    /// doubling to 50 ms, jitter drawn afresh per call (no seed), no
    /// locked attempts.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 100,
            deadline_us: 2_000_000,
            base_delay_us: 1_000,
            max_delay_us: 50_000,
            seed: None,
            lock_after_conflict: false,
        }
    }
}

impl Decision {
    /// Whether the request was admitted.
    pub fn is_admitted(&self) -> bool {
        matches!(self, Decision::Admitted(_))
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
