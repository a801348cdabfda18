//! Consuming with retries: the caller's storage as a [`Store`], driven by
//! the component's own read, decide, compare-and-update, back-off loop.

use crate::{ClaimEntry, Request, Snapshot};
use std::fmt;
use std::time::Duration;

/// What a commit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommitOutcome {
    /// Every claimed generation matched and was bumped; the caller's rows are
    /// written.
    Committed,
    /// A claimed generation had moved on; the transaction was rolled back.
    Conflict,
}

/// A failure of the caller's storage. The storage must have rolled back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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

impl std::error::Error for StorageError {}

/// The caller's storage, as [`consume`](crate::consume) drives it. A service
/// implements this over its own tables; [`MemoryStore`](crate::MemoryStore)
/// and [`SqliteStore`](crate::SqliteStore) are ready-made ones.
pub trait Store {
    /// Reads the limits, usage and generations of `project`'s path for
    /// `resources`. Read each generation no later than the usage it counts
    /// (same snapshot, or generations first).
    fn read(&mut self, project: &str, resources: &[String]) -> Result<Snapshot, StorageError>;

    /// In ONE transaction: writes the request's rows and bumps every claimed
    /// generation with `UPDATE ... SET generation = generation + 1 WHERE
    /// project_id = :p AND generation = :g`; if any of those matches no row,
    /// rolls the whole transaction back and returns
    /// [`CommitOutcome::Conflict`].
    fn commit(
        &mut self,
        claim: &[ClaimEntry],
        request: &Request,
    ) -> Result<CommitOutcome, StorageError>;

    /// Waits before attempt `attempt + 1`. The default sleeps for `delay`.
    fn backoff(&mut self, attempt: u32, delay: Duration) {
        let _ = attempt;
        std::thread::sleep(delay);
    }
}

impl<S: Store + ?Sized> Store for &mut S {
    fn read(&mut self, project: &str, resources: &[String]) -> Result<Snapshot, StorageError> {
        (**self).read(project, resources)
    }

    fn commit(
        &mut self,
        claim: &[ClaimEntry],
        request: &Request,
    ) -> Result<CommitOutcome, StorageError> {
        (**self).commit(claim, request)
    }

    fn backoff(&mut self, attempt: u32, delay: Duration) {
        (**self).backoff(attempt, delay)
    }
}

/// How hard [`consume`](crate::consume) tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RetryPolicy {
    /// Attempts in all (reads followed by a commit), at least 1.
    pub max_attempts: u32,
    /// Cap of the first backoff; each later one doubles, up to `max_delay_us`.
    /// Each backoff is jittered within [cap / 2, cap].
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

/// A successful consume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    /// The claim that was committed.
    pub claim: Vec<ClaimEntry>,
    /// Attempts used, 1 when the first commit went through.
    pub attempts: u32,
}
