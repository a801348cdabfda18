//! Errors: invalid input (one variant per WIT `error` case), the outcomes
//! of a consume that did not commit, and guest faults.
//!
//! A [`GuestFault`] (a trap, fuel exhaustion, a memory-limit hit, a
//! component that failed to load) is kept apart from everything else all the
//! way to the caller: it is never reported as over-limit or invalid input.

use crate::Violation;
use std::fmt;

/// Everything a call can fail with. [`Error::kind`] is the stable name used
/// by the conformance vectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The input was rejected; nothing was decided (WIT `error`).
    Invalid(InvalidInput),
    /// `consume` only: refused on the snapshot of attempt `attempts`. Final,
    /// never retried.
    OverLimit {
        violations: Vec<Violation>,
        attempts: u32,
    },
    /// `consume` only: every attempt met a conflict.
    RetriesExhausted { attempts: u32 },
    /// `consume` only: the store failed on attempt `attempts` (and rolled back).
    Storage { message: String, attempts: u32 },
    /// The component itself failed: no answer was computed.
    GuestFault(GuestFault),
}

impl Error {
    /// The stable kebab-case name: a WIT `error` case name for invalid
    /// input, `over-limit`, `retries-exhausted`, `storage`, or `guest-fault`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Invalid(e) => e.kind(),
            Error::OverLimit { .. } => "over-limit",
            Error::RetriesExhausted { .. } => "retries-exhausted",
            Error::Storage { .. } => "storage",
            Error::GuestFault(_) => "guest-fault",
        }
    }

    /// The guest fault, if this is one.
    pub fn guest_fault(&self) -> Option<&GuestFault> {
        match self {
            Error::GuestFault(fault) => Some(fault),
            _ => None,
        }
    }
}

impl From<InvalidInput> for Error {
    fn from(e: InvalidInput) -> Self {
        Error::Invalid(e)
    }
}

impl From<GuestFault> for Error {
    fn from(f: GuestFault) -> Self {
        Error::GuestFault(f)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid(e) => write!(f, "invalid input: {e}"),
            Error::OverLimit { violations, .. } => {
                write!(f, "over limit:")?;
                for v in violations {
                    write!(
                        f,
                        " {} of project {:?} (limit {}, usage {}, delta {});",
                        v.resource, v.project, v.limit, v.usage, v.delta
                    )?;
                }
                Ok(())
            }
            Error::RetriesExhausted { attempts } => write!(
                f,
                "gave up after {attempts} attempts, each lost to a concurrent writer"
            ),
            Error::Storage { message, attempts } => {
                write!(f, "storage error: {message} (attempt {attempts})")
            }
            Error::GuestFault(fault) => fault.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Invalid(e) => Some(e),
            Error::GuestFault(fault) => Some(fault),
            _ => None,
        }
    }
}

/// Why the component failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// The guest trapped (a bug in the component, or a host callback that
    /// failed in a way the guest cannot be told about).
    Trap,
    /// The call used up its fuel ([`Enforcer::with_fuel`](crate::Enforcer::with_fuel)).
    OutOfFuel,
    /// The guest needed more linear memory than the limit
    /// ([`Enforcer::with_memory_limit`](crate::Enforcer::with_memory_limit)).
    MemoryLimit,
    /// The embedded component could not be compiled or instantiated.
    Load,
}

impl FaultKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Trap => "trap",
            FaultKind::OutOfFuel => "out-of-fuel",
            FaultKind::MemoryLimit => "memory-limit",
            FaultKind::Load => "load",
        }
    }
}

/// The component failed: a trap, fuel exhaustion, a memory-limit hit or a
/// load failure. The instance it happened in is discarded; the next call
/// gets a fresh one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GuestFault {
    pub kind: FaultKind,
    /// wasmtime's description, with the guest backtrace when there is one.
    pub message: String,
}

impl fmt::Display for GuestFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "guest fault ({}): {}", self.kind.as_str(), self.message)
    }
}

impl std::error::Error for GuestFault {}

/// Which kind of identifier was empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

/// Why an input was rejected: one variant per case of the WIT `error`
/// variant, with its fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InvalidInput {
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
    /// A limit below -1 (`project` is `None` for a registered limit).
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
    /// Pre-summed path usage that cannot be true.
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
    /// A configuration value out of range (`field` is its kebab-case name,
    /// for example `max-depth`).
    InvalidConfig { field: String },
    /// oslo.limit compatibility: no usage was given for a checked resource
    /// (oslo.limit raises ValueError).
    MissingUsage { resource: String },
    /// A prepared decision's list of path numbers (`field`: `local`,
    /// `subtree` or `generations`) has `actual` entries instead of `expected`.
    ShapeMismatch {
        field: String,
        expected: u64,
        actual: u64,
    },
}

impl InvalidInput {
    /// The stable kebab-case name, as in the WIT `error` variant.
    pub fn kind(&self) -> &'static str {
        match self {
            InvalidInput::EmptyId { .. } => "empty-id",
            InvalidInput::DuplicateProject { .. } => "duplicate-project",
            InvalidInput::UnknownParent { .. } => "unknown-parent",
            InvalidInput::Cycle { .. } => "cycle",
            InvalidInput::TooDeep { .. } => "too-deep",
            InvalidInput::UnknownProject { .. } => "unknown-project",
            InvalidInput::InvalidLimit { .. } => "invalid-limit",
            InvalidInput::DuplicateLimit { .. } => "duplicate-limit",
            InvalidInput::NegativeUsage { .. } => "negative-usage",
            InvalidInput::DuplicateUsage { .. } => "duplicate-usage",
            InvalidInput::InconsistentUsage { .. } => "inconsistent-usage",
            InvalidInput::DuplicateGeneration { .. } => "duplicate-generation",
            InvalidInput::MissingGeneration { .. } => "missing-generation",
            InvalidInput::DuplicateResource { .. } => "duplicate-resource",
            InvalidInput::ReleaseBelowZero { .. } => "release-below-zero",
            InvalidInput::NegativeDelta { .. } => "negative-delta",
            InvalidInput::Overflow { .. } => "overflow",
            InvalidInput::UnknownModel { .. } => "unknown-model",
            InvalidInput::InvalidConfig { .. } => "invalid-config",
            InvalidInput::MissingUsage { .. } => "missing-usage",
            InvalidInput::ShapeMismatch { .. } => "shape-mismatch",
        }
    }

    /// The project the error names, if any (the child for `unknown-parent`).
    pub fn project(&self) -> Option<&str> {
        use InvalidInput::*;
        match self {
            DuplicateProject { project }
            | UnknownParent { project, .. }
            | Cycle { project }
            | TooDeep { project, .. }
            | UnknownProject { project }
            | DuplicateGeneration { project }
            | MissingGeneration { project }
            | NegativeUsage { project, .. }
            | DuplicateUsage { project, .. }
            | InconsistentUsage { project, .. }
            | ReleaseBelowZero { project, .. }
            | Overflow { project, .. } => Some(project),
            InvalidLimit { project, .. } | DuplicateLimit { project, .. } => project.as_deref(),
            EmptyId { .. }
            | DuplicateResource { .. }
            | NegativeDelta { .. }
            | UnknownModel { .. }
            | InvalidConfig { .. }
            | MissingUsage { .. }
            | ShapeMismatch { .. } => None,
        }
    }

    /// The resource the error names, if any.
    pub fn resource(&self) -> Option<&str> {
        use InvalidInput::*;
        match self {
            InvalidLimit { resource, .. }
            | DuplicateLimit { resource, .. }
            | NegativeUsage { resource, .. }
            | DuplicateUsage { resource, .. }
            | InconsistentUsage { resource, .. }
            | ReleaseBelowZero { resource, .. }
            | Overflow { resource, .. }
            | DuplicateResource { resource }
            | NegativeDelta { resource, .. }
            | MissingUsage { resource } => Some(resource),
            _ => None,
        }
    }
}

fn owner(project: &Option<String>) -> String {
    match project {
        Some(p) => format!("project {p:?}"),
        None => "the registered default".to_string(),
    }
}

impl fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use InvalidInput::*;
        match self {
            EmptyId { what } => write!(f, "empty {} id", what.as_str()),
            DuplicateProject { project } => {
                write!(f, "project {project:?} appears more than once in the tree")
            }
            UnknownParent { project, parent } => write!(
                f,
                "project {project:?} names parent {parent:?}, which is not in the tree"
            ),
            Cycle { project } => write!(f, "project {project:?} is its own ancestor"),
            TooDeep {
                project,
                depth,
                max_depth,
            } => write!(
                f,
                "project {project:?} is at depth {depth}, deeper than the maximum of {max_depth}"
            ),
            UnknownProject { project } => write!(f, "project {project:?} is not in the tree"),
            InvalidLimit {
                project,
                resource,
                limit,
            } => write!(
                f,
                "limit {limit} for {resource:?} of {} is below -1",
                owner(project)
            ),
            DuplicateLimit { project, resource } => write!(
                f,
                "limit for {resource:?} of {} is given more than once",
                owner(project)
            ),
            NegativeUsage {
                project,
                resource,
                usage,
            } => write!(
                f,
                "usage {usage} of {resource:?} by project {project:?} is negative"
            ),
            DuplicateUsage { project, resource } => write!(
                f,
                "usage of {resource:?} by project {project:?} is given more than once"
            ),
            InconsistentUsage { project, resource } => write!(
                f,
                "path usage of {resource:?} at project {project:?} is inconsistent with the rest of the path"
            ),
            DuplicateGeneration { project } => write!(
                f,
                "generation of project {project:?} is given more than once"
            ),
            MissingGeneration { project } => write!(
                f,
                "project {project:?} must be in the claim but no generation was read for it"
            ),
            DuplicateResource { resource } => write!(
                f,
                "resource {resource:?} appears more than once in the request"
            ),
            ReleaseBelowZero {
                project,
                resource,
                usage,
                delta,
            } => write!(
                f,
                "releasing {} of {resource:?} from project {project:?} would take usage {usage} below zero",
                delta.unsigned_abs()
            ),
            NegativeDelta { resource, delta } => {
                write!(f, "per-unit delta {delta} for {resource:?} is negative")
            }
            Overflow { project, resource } => write!(
                f,
                "usage of {resource:?} at project {project:?} does not fit in 64 bits"
            ),
            UnknownModel { name } => write!(
                f,
                "unknown enforcement model {name:?} (expected flat, strict-two-level or nested)"
            ),
            InvalidConfig { field } => write!(f, "configuration value {field} is out of range"),
            MissingUsage { resource } => write!(f, "unable to get current usage for {resource}"),
            ShapeMismatch {
                field,
                expected,
                actual,
            } => match field.as_str() {
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

impl std::error::Error for InvalidInput {}
