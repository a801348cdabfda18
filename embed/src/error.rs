//! Every way a call can fail, in one enum: invalid input (the WIT
//! `invalid-input` catalogue, with the core's message), the outcomes of a
//! consume that did not commit, and guest faults, kept apart from the rest
//! all the way to the caller (a trap is never an over-limit).

use crate::types::{Invalid, InvalidInput, OverLimit};
use std::fmt;
use std::sync::Arc;

/// Everything a call can fail with. [`Error::kind`] is the stable name the
/// conformance vectors use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The input was rejected; nothing was decided. `.message` is the
    /// core's description, the same text on every host.
    Invalid(Invalid),
    /// `consume` only: refused on the snapshot of attempt `attempts`.
    /// Final, never retried.
    OverLimit(OverLimit),
    /// `consume` only: every attempt met a conflict.
    RetriesExhausted { attempts: u32 },
    /// `consume` only: the store failed on attempt `attempts` (and must
    /// have rolled back); `error` is what the store returned, with its own
    /// error as `source`.
    Storage { error: StorageError, attempts: u32 },
    /// The component itself failed: no answer was computed.
    GuestFault(GuestFault),
}

impl Error {
    /// The stable kebab-case name: an `invalid-input` case name,
    /// `over-limit`, `retries-exhausted`, `storage`, or `guest-fault`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Invalid(e) => e.input.kind(),
            Error::OverLimit(_) => "over-limit",
            Error::RetriesExhausted { .. } => "retries-exhausted",
            Error::Storage { .. } => "storage",
            Error::GuestFault(_) => "guest-fault",
        }
    }

    /// The input error, if this is one.
    pub fn invalid_input(&self) -> Option<&InvalidInput> {
        match self {
            Error::Invalid(e) => Some(&e.input),
            _ => None,
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

impl From<Invalid> for Error {
    fn from(e: Invalid) -> Self {
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
            Error::Invalid(e) => write!(f, "invalid input: {}", e.message),
            Error::OverLimit(over) => {
                write!(f, "over limit:")?;
                for v in &over.violations {
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
            Error::Storage { error, attempts } => {
                write!(f, "{error} (attempt {attempts})")
            }
            Error::GuestFault(fault) => fault.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Storage { error, .. } => Some(error),
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
    /// `trap`, `out-of-fuel`, `memory-limit` or `load`.
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

impl GuestFault {
    pub(crate) fn new(kind: FaultKind, message: impl Into<String>) -> Self {
        GuestFault {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for GuestFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "guest fault ({}): {}", self.kind.as_str(), self.message)
    }
}

impl std::error::Error for GuestFault {}

/// A failure of the caller's storage (the storage must have rolled back):
/// a message for the component, and the storage's own error as `source`,
/// so that a service can tell a duplicate key from a lost connection
/// without parsing text.
#[derive(Debug, Clone)]
pub struct StorageError {
    pub message: String,
    pub source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl StorageError {
    /// A storage failure described by `message` alone.
    pub fn new(message: impl Into<String>) -> Self {
        StorageError {
            message: message.into(),
            source: None,
        }
    }

    /// A storage failure caused by `source` (its text is the message).
    pub fn from_source(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        StorageError {
            message: source.to_string(),
            source: Some(Arc::new(source)),
        }
    }
}

/// Equal when the messages are (the sources are compared by identity).
impl PartialEq for StorageError {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message
            && match (&self.source, &other.source) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
    }
}

impl Eq for StorageError {}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "storage error: {}", self.message)
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
