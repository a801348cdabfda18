//! The caller's storage, as the component's `consume` drives it through
//! the imported `store` interface.

use crate::error::StorageError;
use crate::types::{ClaimEntry, CommitOutcome, Request, Snapshot};
use std::time::Duration;

/// The caller's storage, as [`Enforcer::consume`](crate::Enforcer::consume)
/// drives it. A service implements this over its own tables.
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
