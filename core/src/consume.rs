//! The consume driver: read, decide, compare-and-update, back off, retry.
//!
//! Pure logic over an abstract [`Store`]: the caller's storage does the
//! reading and the one-transaction commit; the driver owns the loop, so the
//! retry policy exists once for every host. The core has no clock and no
//! randomness of its own: the store supplies both (`now_us`, `entropy`).

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
    /// A claimed generation had moved on (or the database aborted the
    /// transaction as a deadlock or serialization failure); everything was
    /// rolled back. The driver backs off before it reads again.
    Conflict,
    /// As `Conflict`, but the losing statement had waited for the winning
    /// writer, which has now committed: a read made at once sees its write,
    /// so the driver re-reads without backing off (semantics, "Consuming
    /// with retries").
    ConflictAfterWait,
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
    /// whole transaction back and returns `Conflict` (or `ConflictAfterWait`).
    fn commit(
        &mut self,
        claim: &[ClaimEntry],
        request: &Request,
    ) -> Result<CommitOutcome, StorageError>;

    /// Waits `delay_us` microseconds before attempt `attempt + 1`.
    fn backoff(&mut self, attempt: u32, delay_us: u64);

    /// A monotonic clock in microseconds (any origin): the deadline of
    /// [`RetryPolicy::deadline_us`] is measured on it.
    fn now_us(&mut self) -> u64;

    /// Fresh random bits, asked once per call whose policy has no seed, so
    /// that callers on the default policy back off by different delays.
    fn entropy(&mut self) -> u64;

    /// A locked attempt's read ([`RetryPolicy::lock_after_conflict`]):
    /// starts a transaction, locks the generation rows of `project`'s path
    /// in the one row order (root first, then by depth), and reads the
    /// snapshot inside it. The transaction stays open: the next
    /// [`commit`](Store::commit) writes and commits in it (its compares
    /// cannot miss), or [`unlock`](Store::unlock) rolls it back. `None`: the
    /// store takes no locks, and the attempt runs as an optimistic one. The
    /// default: `None`.
    fn read_locked(
        &mut self,
        project: &str,
        resources: &[&str],
    ) -> Result<Option<Snapshot>, StorageError> {
        let _ = (project, resources);
        Ok(None)
    }

    /// Ends the transaction a [`read_locked`](Store::read_locked) began,
    /// writing nothing: called when that attempt's decision is a refusal or
    /// an invalid input. The default does nothing.
    fn unlock(&mut self) {}
}

/// How hard the driver tries: until a deadline, with an attempt cap as a
/// guard, backing off with "equal jitter" after a conflict that did not
/// wait (semantics, "Consuming with retries").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (reads followed by a commit), at least 1. A guard
    /// behind the deadline. Default 100.
    pub max_attempts: u32,
    /// The time budget of one call, in microseconds from its start, at
    /// least 1: no attempt starts once the next backoff would end past it.
    /// Default 2,000,000 (2 s).
    pub deadline_us: u64,
    /// Cap of the first backoff; each later one doubles, up to
    /// `max_delay_us`. At most `max_delay_us`. Default 1,000.
    pub base_delay_us: u64,
    /// Largest backoff, at most `deadline_us`. Default 50,000.
    pub max_delay_us: u64,
    /// Seeds the jitter, for reproducible tests only: callers that share a
    /// seed back off in lockstep. `None` (the default): drawn afresh for
    /// every call from [`Store::entropy`].
    pub seed: Option<u64>,
    /// Opt-in: every attempt after the first conflict is a locked one. It
    /// locks the claimed generation rows through [`Store::read_locked`]
    /// and reads, decides and commits in that one transaction, so it
    /// cannot conflict; no backoff precedes it (the lock is the queue).
    /// The only place the library takes row locks. Default false. A store
    /// that takes no locks runs those attempts optimistically. Lone
    /// consumes only: a combined batch's conflict re-runs the batch
    /// optimistically ([`consume_batch`](crate::consume_batch)).
    pub lock_after_conflict: bool,
}

impl Default for RetryPolicy {
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

impl RetryPolicy {
    /// Checks the fields, in declaration order: `max-attempts` at least 1,
    /// `deadline-us` at least 1, `base-delay-us` at most `max-delay-us`,
    /// `max-delay-us` at most `deadline-us`.
    pub fn check(&self) -> Result<(), Error> {
        let field = if self.max_attempts == 0 {
            "max-attempts"
        } else if self.deadline_us == 0 {
            "deadline-us"
        } else if self.base_delay_us > self.max_delay_us {
            "base-delay-us"
        } else if self.max_delay_us > self.deadline_us {
            "max-delay-us"
        } else {
            return Ok(());
        };
        Err(Error::InvalidConfig { field })
    }

    /// The backoff after the `attempt`-th conflict (1-based) of a call whose
    /// jitter is seeded by `seed`: "equal jitter", uniform in [cap / 2, cap]
    /// where cap = min(max, base * 2^(attempt-1)). Growing, so contending
    /// workers spread out; jittered, so they do not retry in lockstep.
    pub fn delay_us(&self, seed: u64, attempt: u32) -> u64 {
        // base * 2^(attempt-1), saturating: past 2^63 the factor itself
        // no longer fits (found by the consume fuzz target).
        let scaled = match 1u64.checked_shl(attempt.saturating_sub(1)) {
            Some(factor) => self.base_delay_us.saturating_mul(factor),
            None if self.base_delay_us == 0 => 0,
            None => u64::MAX,
        };
        let cap = scaled.min(self.max_delay_us);
        let half = cap / 2;
        let span = cap - half;
        half + if span == 0 {
            0
        } else {
            splitmix64(seed ^ u64::from(attempt)) % (span + 1)
        }
    }

    /// The seed of one call: the policy's, or fresh entropy from `store`.
    pub(crate) fn call_seed<S: Store + ?Sized>(&self, store: &mut S) -> u64 {
        self.seed.unwrap_or_else(|| store.entropy())
    }
}

/// A small, well-mixed deterministic hash (no global RNG in the core).
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The retry budget of one call: the attempt cap and the deadline.
pub(crate) struct Budget {
    policy: RetryPolicy,
    seed: u64,
    start_us: u64,
}

impl Budget {
    pub(crate) fn start<S: Store + ?Sized>(policy: &RetryPolicy, store: &mut S) -> Self {
        Budget {
            policy: *policy,
            seed: policy.call_seed(store),
            start_us: store.now_us(),
        }
    }

    /// After the `attempt`-th attempt lost with `outcome` (a conflict):
    /// waits as the policy says and returns true when another attempt may
    /// start, false when the budget is spent.
    pub(crate) fn retry<S: Store + ?Sized>(
        &self,
        store: &mut S,
        attempt: u32,
        outcome: CommitOutcome,
    ) -> bool {
        if attempt >= self.policy.max_attempts {
            return false;
        }
        let delay = match outcome {
            CommitOutcome::ConflictAfterWait => 0,
            _ => self.policy.delay_us(self.seed, attempt),
        };
        let elapsed = store.now_us().saturating_sub(self.start_us);
        if elapsed.saturating_add(delay) >= self.policy.deadline_us {
            return false;
        }
        if delay > 0 {
            store.backoff(attempt, delay);
        }
        true
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

/// Why a consume did not commit. Nothing was written in any of these cases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumeError {
    /// Refused on the snapshot of attempt `attempts`: final, never retried.
    OverLimit {
        violations: Vec<Violation>,
        attempts: u32,
    },
    /// Every attempt met a conflict, until the deadline or the attempt cap.
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
/// re-read at once (after a wait) or back off, and start again, until the
/// policy's deadline or attempt cap.
pub fn consume<S: Store + ?Sized>(
    config: &Config,
    policy: &RetryPolicy,
    store: &mut S,
    request: &Request,
) -> Result<Consumed, ConsumeError> {
    policy.check().map_err(ConsumeError::Invalid)?;
    let budget = Budget::start(policy, store);
    let resources = request.resources();
    let mut attempt = 0;
    let mut lock_next = false;
    // Whether the store takes locks, once a locked read has told.
    let mut store_locks: Option<bool> = None;
    loop {
        attempt += 1;
        let storage = |error| ConsumeError::Storage {
            error,
            attempts: attempt,
        };
        let locked_read = if lock_next && store_locks != Some(false) {
            store
                .read_locked(&request.project, &resources)
                .map_err(storage)?
        } else {
            None
        };
        let locked = locked_read.is_some();
        if lock_next && store_locks.is_none() {
            store_locks = Some(locked);
        }
        let snapshot = match locked_read {
            Some(snapshot) => snapshot,
            None => store.read(&request.project, &resources).map_err(storage)?,
        };
        // A locked transaction that will not commit is ended before the
        // call returns, so no lock outlives it.
        let decided = match evaluate(config, &snapshot, request) {
            Ok(Decision::Admitted { claim }) => Ok(claim),
            Ok(Decision::Refused { violations }) => Err(ConsumeError::OverLimit {
                violations,
                attempts: attempt,
            }),
            Err(invalid) => Err(ConsumeError::Invalid(invalid)),
        };
        let claim = match decided {
            Ok(claim) => claim,
            Err(final_error) => {
                if locked {
                    store.unlock();
                }
                return Err(final_error);
            }
        };
        match store.commit(&claim, request).map_err(storage)? {
            CommitOutcome::Committed => {
                return Ok(Consumed {
                    claim,
                    attempts: attempt,
                });
            }
            lost => {
                // A locked attempt queues on the rows themselves: like a
                // re-read after a wait, it needs no backoff.
                lock_next = policy.lock_after_conflict;
                let lost = if lock_next && store_locks != Some(false) {
                    CommitOutcome::ConflictAfterWait
                } else {
                    lost
                };
                if !budget.retry(store, attempt, lost) {
                    return Err(ConsumeError::RetriesExhausted { attempts: attempt });
                }
            }
        }
    }
}
