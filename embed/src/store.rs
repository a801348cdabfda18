//! The caller's storage, as the component's `consume` and `consume-batch`
//! drive it through the imported `store` interface.

use crate::error::StorageError;
use crate::types::{BatchOutcome, ClaimEntry, CommitOutcome, Request, Snapshot};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The caller's storage, as [`Enforcer::consume`](crate::Enforcer::consume)
/// drives it. A service implements this over its own tables.
pub trait Store {
    /// Reads the limits, usage and generations of `project`'s path for
    /// `resources`. Read each generation no later than the usage it counts
    /// (same snapshot, or generations first).
    fn read(&mut self, project: &str, resources: &[String]) -> Result<Snapshot, StorageError>;

    /// In ONE transaction: writes the request's rows and bumps every claimed
    /// generation with `UPDATE ... SET generation = generation + 1 WHERE
    /// project_id = :p AND generation = :g`, root first (the one row order);
    /// if any of those matches no row, rolls the whole transaction back and
    /// returns [`CommitOutcome::Conflict`], or
    /// [`CommitOutcome::ConflictAfterWait`] when the losing statement had
    /// waited for the winning writer (the driver then re-reads at once).
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

    /// A monotonic clock in microseconds, the policy's deadline is measured
    /// on. The default: [`Instant`] since the first call in the process.
    fn now_us(&mut self) -> u64 {
        monotonic_us()
    }

    /// Fresh random bits, asked once per consume whose policy has no seed.
    /// The default: the standard library's per-process random hasher keys.
    fn entropy(&mut self) -> u64 {
        random_u64()
    }

    /// A locked attempt's read ([`RetryPolicy::lock_after_conflict`]):
    /// starts a transaction, locks the generation rows of `project`'s path
    /// in the one row order (root first, then by depth), and reads the
    /// snapshot inside it, leaving the transaction open: the next
    /// [`commit`](Self::commit) writes and commits in it (its compares
    /// cannot miss), or [`unlock`](Self::unlock) rolls it back. `Ok(None)`:
    /// this store takes no locks, and the attempt runs optimistically. The
    /// default: `Ok(None)`. On an error, roll back before returning.
    ///
    /// [`RetryPolicy::lock_after_conflict`]: crate::types::RetryPolicy::lock_after_conflict
    fn read_locked(
        &mut self,
        project: &str,
        resources: &[String],
    ) -> Result<Option<Snapshot>, StorageError> {
        let _ = (project, resources);
        Ok(None)
    }

    /// Rolls back the transaction [`read_locked`](Self::read_locked)
    /// began, writing nothing. The default does nothing.
    fn unlock(&mut self) {}

    /// Whether [`read_batch`](Self::read_batch) and
    /// [`commit_batch`](Self::commit_batch) work: a combiner runs the
    /// consumes of a store without them one by one. Default false.
    fn batches(&self) -> bool {
        false
    }

    /// `consume_batch`'s read: in ONE read view, the limits, usage (local
    /// form, every project of the members' paths) and generations of the
    /// paths of all `projects` for `resources`.
    fn read_batch(
        &mut self,
        projects: &[String],
        resources: &[String],
    ) -> Result<Snapshot, StorageError> {
        let _ = (projects, resources);
        Err(StorageError::new("this store reads no batches"))
    }

    /// `consume_batch`'s commit, in ONE transaction: compares and bumps
    /// each entry of `claim` once, in the order given (root first, then by
    /// depth, then project id: the one row order), then writes each of
    /// `members`' rows in order. A generation miss rolls everything back
    /// ([`BatchOutcome::Conflict`]); so does a member whose rows fail to
    /// write ([`BatchOutcome::MemberFailed`] with its position).
    fn commit_batch(
        &mut self,
        claim: &[ClaimEntry],
        members: &[Request],
    ) -> Result<BatchOutcome, StorageError> {
        let _ = (claim, members);
        Err(StorageError::new("this store commits no batches"))
    }
}

/// Microseconds since the first call in this process, on [`Instant`].
pub fn monotonic_us() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// 64 random bits from the standard library's randomly keyed hasher (a
/// new key per `RandomState`), mixed with a counter: no extra dependency
/// for what only spreads backoffs.
pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
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

    fn now_us(&mut self) -> u64 {
        (**self).now_us()
    }

    fn entropy(&mut self) -> u64 {
        (**self).entropy()
    }

    fn read_locked(
        &mut self,
        project: &str,
        resources: &[String],
    ) -> Result<Option<Snapshot>, StorageError> {
        (**self).read_locked(project, resources)
    }

    fn unlock(&mut self) {
        (**self).unlock()
    }

    fn batches(&self) -> bool {
        (**self).batches()
    }

    fn read_batch(
        &mut self,
        projects: &[String],
        resources: &[String],
    ) -> Result<Snapshot, StorageError> {
        (**self).read_batch(projects, resources)
    }

    fn commit_batch(
        &mut self,
        claim: &[ClaimEntry],
        members: &[Request],
    ) -> Result<BatchOutcome, StorageError> {
        (**self).commit_batch(claim, members)
    }
}
