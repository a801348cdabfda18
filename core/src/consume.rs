//! The consume driver: read, decide, compare-and-update, back off, retry.
//!
//! Pure logic over an abstract [`Store`]: the caller's storage does the
//! reading and the one-transaction commit; the driver owns the loop, so the
//! retry policy exists once for every host.

use crate::claim::ClaimEntry;
use crate::decide::{Decision, Request, Violation, evaluate};
use crate::error::Error;
use crate::model::Config;
use crate::snapshot::Snapshot;
use std::fmt;

/// What a commit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Every claimed generation matched and was bumped; the caller's rows are
    /// written.
    Committed,
    /// A claimed generation had moved on; the transaction was rolled back.
    Conflict,
}

/// A failure of the caller's storage. The storage must have rolled back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageError {
    pub message: String,
}

impl StorageError {
    pub fn new(message: impl Into<String>) -> Self {
        StorageError {
            message: message.into(),
        }
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "storage error: {}", self.message)
    }
}

/// The caller's storage, as the consume driver sees it.
pub trait Store {
    /// Reads the limits, usage and generations of `project`'s path for
    /// `resources`, generations no later than usage.
    fn read(&mut self, project: &str, resources: &[&str]) -> Result<Snapshot, StorageError>;

    /// Writes the request's rows and bumps every claimed generation with
    /// compare-and-update, all in one transaction; on any miss it rolls the
    /// whole transaction back and returns `Conflict`.
    fn commit(
        &mut self,
        claim: &[ClaimEntry],
        request: &Request,
    ) -> Result<CommitOutcome, StorageError>;

    /// Waits `delay_us` microseconds before attempt `attempt + 1`.
    fn backoff(&mut self, attempt: u32, delay_us: u64);
}

/// How hard the driver tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (reads followed by a commit), at least 1.
    pub max_attempts: u32,
    /// Cap of the first backoff; each later one doubles, up to `max_delay_us`.
    pub base_delay_us: u64,
    pub max_delay_us: u64,
    /// Seeds the jitter, so that a run is reproducible.
    pub seed: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay_us: 1_000,
            max_delay_us: 100_000,
            seed: 0,
        }
    }
}

impl RetryPolicy {
    /// The backoff after the `attempt`-th conflict (1-based): "equal jitter",
    /// uniform in [cap / 2, cap] where cap = min(max, base * 2^(attempt-1)).
    /// Growing, so contending workers spread out; jittered, so they do not
    /// retry in lockstep.
    pub fn delay_us(&self, attempt: u32) -> u64 {
        let shift = attempt.saturating_sub(1).min(63);
        let cap = self
            .base_delay_us
            .saturating_mul(1u64 << shift)
            .min(self.max_delay_us);
        let half = cap / 2;
        let span = cap - half;
        half + if span == 0 {
            0
        } else {
            splitmix64(self.seed ^ u64::from(attempt)) % (span + 1)
        }
    }
}

/// A small, well-mixed deterministic hash (no global RNG in the core).
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A successful consume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    /// The claim that was committed.
    pub claim: Vec<ClaimEntry>,
    /// Attempts used, 1 when the first commit went through.
    pub attempts: u32,
}

/// Why a consume did not commit. Nothing was written in any of these cases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumeError {
    /// Refused on the snapshot of attempt `attempts`: final, never retried.
    OverLimit {
        violations: Vec<Violation>,
        attempts: u32,
    },
    /// Every attempt met a conflict.
    RetriesExhausted { attempts: u32 },
    /// The storage failed on attempt `attempts` (and rolled back).
    Storage { error: StorageError, attempts: u32 },
    /// The request or a snapshot was invalid.
    Invalid(Error),
}

impl ConsumeError {
    /// Stable kebab-case name, as in the conformance vectors.
    pub fn kind(&self) -> &'static str {
        match self {
            ConsumeError::OverLimit { .. } => "over-limit",
            ConsumeError::RetriesExhausted { .. } => "retries-exhausted",
            ConsumeError::Storage { .. } => "storage",
            ConsumeError::Invalid(e) => e.kind(),
        }
    }
}

impl fmt::Display for ConsumeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConsumeError::OverLimit { violations, .. } => {
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
            ConsumeError::RetriesExhausted { attempts } => {
                write!(
                    f,
                    "gave up after {attempts} attempts, each lost to a concurrent writer"
                )
            }
            ConsumeError::Storage { error, attempts } => write!(f, "{error} (attempt {attempts})"),
            ConsumeError::Invalid(e) => write!(f, "invalid input: {e}"),
        }
    }
}

impl std::error::Error for ConsumeError {}

/// Consumes `request` through `store`: read, decide, commit; on conflict
/// back off and start again from a fresh read.
pub fn consume<S: Store + ?Sized>(
    config: &Config,
    policy: &RetryPolicy,
    store: &mut S,
    request: &Request,
) -> Result<Consumed, ConsumeError> {
    if policy.max_attempts == 0 {
        return Err(ConsumeError::Invalid(Error::InvalidConfig {
            field: "max-attempts",
        }));
    }
    let resources = request.resources();
    for attempt in 1..=policy.max_attempts {
        let snapshot =
            store
                .read(&request.project, &resources)
                .map_err(|error| ConsumeError::Storage {
                    error,
                    attempts: attempt,
                })?;
        let claim = match evaluate(config, &snapshot, request).map_err(ConsumeError::Invalid)? {
            Decision::Refused { violations } => {
                return Err(ConsumeError::OverLimit {
                    violations,
                    attempts: attempt,
                });
            }
            Decision::Admitted { claim } => claim,
        };
        match store.commit(&claim, request) {
            Ok(CommitOutcome::Committed) => {
                return Ok(Consumed {
                    claim,
                    attempts: attempt,
                });
            }
            Ok(CommitOutcome::Conflict) if attempt < policy.max_attempts => {
                store.backoff(attempt, policy.delay_us(attempt));
            }
            Ok(CommitOutcome::Conflict) => {}
            Err(error) => {
                return Err(ConsumeError::Storage {
                    error,
                    attempts: attempt,
                });
            }
        }
    }
    Err(ConsumeError::RetriesExhausted {
        attempts: policy.max_attempts,
    })
}
