//! Invalid input, as a typed value.
//!
//! Every check in the core returns one of these instead of panicking, so a
//! host can hand the caller a precise reason across any boundary. The
//! [`Error::kind`] string is the stable, language-neutral name used by the
//! conformance vectors and the WIT interface.

use std::fmt;

/// Why an input was rejected. Nothing is decided when one of these is returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A project id, parent id or resource name is the empty string.
    EmptyId { what: IdKind },
    /// The same project id appears twice in the tree.
    DuplicateProject { project: String },
    /// A project names a parent that is not in the tree.
    UnknownParent { project: String, parent: String },
    /// Following parents from `project` comes back to it.
    Cycle { project: String },
    /// `project` sits deeper than the model allows (root is depth 1).
    TooDeep {
        project: String,
        depth: u32,
        max_depth: u32,
    },
    /// A request, limit, usage or generation names a project not in the tree.
    UnknownProject { project: String },
    /// A limit below -1.
    InvalidLimit {
        project: Option<String>,
        resource: String,
        limit: i64,
    },
    /// The same (project, resource) limit is given twice.
    DuplicateLimit {
        project: Option<String>,
        resource: String,
    },
    /// A usage value below zero.
    NegativeUsage {
        project: String,
        resource: String,
        usage: i64,
    },
    /// The same (project, resource) usage is given twice.
    DuplicateUsage { project: String, resource: String },
    /// Pre-summed path usage that cannot be true: a subtree smaller than the
    /// subtree (or local usage) it contains, or an entry off the path.
    InconsistentUsage { project: String, resource: String },
    /// The same project's generation is given twice.
    DuplicateGeneration { project: String },
    /// A project that the claim must include has no generation.
    MissingGeneration { project: String },
    /// The same resource appears twice in one request.
    DuplicateResource { resource: String },
    /// A release that would take a usage below zero.
    ReleaseBelowZero {
        project: String,
        resource: String,
        usage: i64,
        delta: i64,
    },
    /// A per-unit delta below zero (max-count only).
    NegativeDelta { resource: String, delta: i64 },
    /// A sum or a usage-plus-delta does not fit in 64 bits.
    Overflow { project: String, resource: String },
    /// An enforcement-model name that is not known.
    UnknownModel { name: String },
    /// A configuration value out of range (for example a maximum depth of 0).
    InvalidConfig { field: &'static str },
    /// oslo.limit compatibility: no usage was given for a checked resource
    /// (oslo.limit raises ValueError).
    MissingUsage { resource: String },
    /// A prepared decision's list of path numbers (`local`, `subtree` or
    /// `generations`) whose length does not fit the request and the path.
    ShapeMismatch {
        field: &'static str,
        expected: u64,
        actual: u64,
    },
}

/// Which kind of identifier was empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Project,
    Parent,
    Resource,
}

impl IdKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IdKind::Project => "project",
            IdKind::Parent => "parent",
            IdKind::Resource => "resource",
        }
    }
}

impl Error {
    /// The stable kebab-case name of this error, as used by the conformance
    /// vectors (`want_error`) and the WIT `error` variant.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::EmptyId { .. } => "empty-id",
            Error::DuplicateProject { .. } => "duplicate-project",
            Error::UnknownParent { .. } => "unknown-parent",
            Error::Cycle { .. } => "cycle",
            Error::TooDeep { .. } => "too-deep",
            Error::UnknownProject { .. } => "unknown-project",
            Error::InvalidLimit { .. } => "invalid-limit",
            Error::DuplicateLimit { .. } => "duplicate-limit",
            Error::NegativeUsage { .. } => "negative-usage",
            Error::DuplicateUsage { .. } => "duplicate-usage",
            Error::InconsistentUsage { .. } => "inconsistent-usage",
            Error::DuplicateGeneration { .. } => "duplicate-generation",
            Error::MissingGeneration { .. } => "missing-generation",
            Error::DuplicateResource { .. } => "duplicate-resource",
            Error::ReleaseBelowZero { .. } => "release-below-zero",
            Error::NegativeDelta { .. } => "negative-delta",
            Error::Overflow { .. } => "overflow",
            Error::UnknownModel { .. } => "unknown-model",
            Error::InvalidConfig { .. } => "invalid-config",
            Error::MissingUsage { .. } => "missing-usage",
            Error::ShapeMismatch { .. } => "shape-mismatch",
        }
    }
}

fn project_label(project: &Option<String>) -> String {
    match project {
        Some(p) => format!("project {p:?}"),
        None => "the registered default".to_string(),
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::EmptyId { what } => write!(f, "empty {} id", what.as_str()),
            Error::DuplicateProject { project } => {
                write!(f, "project {project:?} appears more than once in the tree")
            }
            Error::UnknownParent { project, parent } => {
                write!(
                    f,
                    "project {project:?} names parent {parent:?}, which is not in the tree"
                )
            }
            Error::Cycle { project } => write!(f, "project {project:?} is its own ancestor"),
            Error::TooDeep {
                project,
                depth,
                max_depth,
            } => write!(
                f,
                "project {project:?} is at depth {depth}, deeper than the maximum of {max_depth}"
            ),
            Error::UnknownProject { project } => {
                write!(f, "project {project:?} is not in the tree")
            }
            Error::InvalidLimit {
                project,
                resource,
                limit,
            } => write!(
                f,
                "limit {limit} for {resource:?} of {} is below -1",
                project_label(project)
            ),
            Error::DuplicateLimit { project, resource } => write!(
                f,
                "limit for {resource:?} of {} is given more than once",
                project_label(project)
            ),
            Error::NegativeUsage {
                project,
                resource,
                usage,
            } => {
                write!(
                    f,
                    "usage {usage} of {resource:?} by project {project:?} is negative"
                )
            }
            Error::DuplicateUsage { project, resource } => write!(
                f,
                "usage of {resource:?} by project {project:?} is given more than once"
            ),
            Error::InconsistentUsage { project, resource } => write!(
                f,
                "path usage of {resource:?} at project {project:?} is inconsistent with the rest of the path"
            ),
            Error::DuplicateGeneration { project } => {
                write!(
                    f,
                    "generation of project {project:?} is given more than once"
                )
            }
            Error::MissingGeneration { project } => write!(
                f,
                "project {project:?} must be in the claim but no generation was read for it"
            ),
            Error::DuplicateResource { resource } => {
                write!(
                    f,
                    "resource {resource:?} appears more than once in the request"
                )
            }
            Error::ReleaseBelowZero {
                project,
                resource,
                usage,
                delta,
            } => write!(
                f,
                "releasing {} of {resource:?} from project {project:?} would take usage {usage} below zero",
                delta.unsigned_abs()
            ),
            Error::NegativeDelta { resource, delta } => {
                write!(f, "per-unit delta {delta} for {resource:?} is negative")
            }
            Error::Overflow { project, resource } => write!(
                f,
                "usage of {resource:?} at project {project:?} does not fit in 64 bits"
            ),
            Error::UnknownModel { name } => write!(
                f,
                "unknown enforcement model {name:?} (expected flat, strict-two-level or nested)"
            ),
            Error::InvalidConfig { field } => {
                write!(f, "configuration value {field} is out of range")
            }
            Error::MissingUsage { resource } => {
                write!(f, "unable to get current usage for {resource}")
            }
            Error::ShapeMismatch {
                field,
                expected,
                actual,
            } => match &**field {
                // A number the prepared never gave (it gave 0..expected).
                "node" | "resource" => write!(
                    f,
                    "{field} number {actual} was never given by this prepared (it gave {expected})"
                ),
                _ => write!(
                    f,
                    "{field} has {actual} entries where the request and its path need {expected}"
                ),
            },
        }
    }
}

impl std::error::Error for Error {}

/// Shorthand used throughout the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;
