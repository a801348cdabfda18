//! What every strategy's worker looks like to the cell runner, the
//! generation-cas worker (the shipped store and `consume`, timed), and the
//! retry loop the two locking strategies share.

use crate::workload::ROOT;
use delimiter::{
    BatchOutcome, ClaimEntry, Combiner, CommitOutcome, Config, Decision, Enforcer, Error, Model,
    Request, RetryPolicy, Snapshot, StorageError, Store, Violation,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How one consume call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Admitted,
    /// Refused; `at_root` when the root was among the violated limits
    /// (the tree is full: the worker stops).
    Refused {
        at_root: bool,
    },
    /// Every attempt lost a race.
    Exhausted,
}

/// Where a worker's time went, summed over its calls.
#[derive(Debug, Clone, Copy, Default)]
pub struct Profile {
    /// Reading the snapshot (for for-update: taking the locks and reading).
    pub read: Duration,
    /// The decision, through the component (and, for generation-cas, the
    /// driver's own work between the store callbacks).
    pub evaluate: Duration,
    /// Writing and committing (or rolling back).
    pub commit: Duration,
    pub backoff: Duration,
}

impl Profile {
    pub fn add(&mut self, other: &Profile) {
        self.read += other.read;
        self.evaluate += other.evaluate;
        self.commit += other.commit;
        self.backoff += other.backoff;
    }
}

/// One worker: its own connection and its own component instance.
pub trait Worker: Send {
    /// One consume, including its retries. `Err` is an unexpected failure
    /// (a storage error, a guest fault): the run fails.
    fn consume(&mut self, request: &Request) -> Result<Outcome, String>;
    /// Attempts that lost a race and were retried (or exhausted).
    fn conflicts(&self) -> u64;
    fn profile(&self) -> Profile;
    /// Instantiates the worker's component before the clock starts.
    fn warm(&mut self) -> Result<(), String>;
}

pub fn config() -> Config {
    Config::new(Model::Nested)
}

fn refused(violations: &[Violation]) -> Outcome {
    Outcome::Refused {
        at_root: violations.iter().any(|v| v.project == ROOT),
    }
}

/// The shipped store, with its callbacks timed and its conflicts counted.
/// Adds two clock reads per callback, nothing else.
pub struct Timed<S> {
    inner: S,
    profile: Profile,
    conflicts: u64,
}

impl<S: Store> Store for Timed<S> {
    fn read(&mut self, project: &str, resources: &[String]) -> Result<Snapshot, StorageError> {
        let t = Instant::now();
        let out = self.inner.read(project, resources);
        self.profile.read += t.elapsed();
        out
    }

    fn commit(
        &mut self,
        claim: &[ClaimEntry],
        request: &Request,
    ) -> Result<CommitOutcome, StorageError> {
        let t = Instant::now();
        let out = self.inner.commit(claim, request);
        self.profile.commit += t.elapsed();
        if matches!(
            out,
            Ok(CommitOutcome::Conflict | CommitOutcome::ConflictAfterWait)
        ) {
            self.conflicts += 1;
        }
        out
    }

    fn batches(&self) -> bool {
        self.inner.batches()
    }

    fn read_batch(
        &mut self,
        projects: &[String],
        resources: &[String],
    ) -> Result<Snapshot, StorageError> {
        let t = Instant::now();
        let out = self.inner.read_batch(projects, resources);
        self.profile.read += t.elapsed();
        out
    }

    fn commit_batch(
        &mut self,
        claim: &[ClaimEntry],
        members: &[Request],
    ) -> Result<BatchOutcome, StorageError> {
        let t = Instant::now();
        let out = self.inner.commit_batch(claim, members);
        self.profile.commit += t.elapsed();
        if matches!(out, Ok(BatchOutcome::Conflict(_))) {
            self.conflicts += 1;
        }
        out
    }

    fn backoff(&mut self, attempt: u32, delay: Duration) {
        let t = Instant::now();
        self.inner.backoff(attempt, delay);
        self.profile.backoff += t.elapsed();
    }
}

/// generation-cas: Delimiter's own path over the shipped store, through a
/// [`Combiner`] shared by the cell's (or the process's) workers, or with
/// `Enforcer::consume` alone.
pub struct CasWorker<S> {
    store: Timed<S>,
    enforcer: Enforcer,
    config: Config,
    policy: RetryPolicy,
    combiner: Option<Arc<Combiner>>,
    /// The whole of the consume calls; `evaluate` is what the callbacks
    /// do not account for.
    total: Duration,
}

impl<S: Store + Send> CasWorker<S> {
    pub fn new(store: S, policy: RetryPolicy, combiner: Option<Arc<Combiner>>) -> Self {
        CasWorker {
            store: Timed {
                inner: store,
                profile: Profile::default(),
                conflicts: 0,
            },
            enforcer: Enforcer::new(),
            config: config(),
            policy,
            combiner,
            total: Duration::ZERO,
        }
    }
}

impl<S: Store + Send> Worker for CasWorker<S> {
    fn consume(&mut self, request: &Request) -> Result<Outcome, String> {
        let t = Instant::now();
        let out = match &self.combiner {
            Some(combiner) => combiner.consume(&mut self.enforcer, &mut self.store, request),
            None => self
                .enforcer
                .consume(&self.config, &self.policy, &mut self.store, request),
        };
        self.total += t.elapsed();
        match out {
            Ok(_) => Ok(Outcome::Admitted),
            Err(Error::OverLimit(over)) => Ok(refused(&over.violations)),
            Err(Error::RetriesExhausted { .. }) => Ok(Outcome::Exhausted),
            Err(other) => Err(format!("generation-cas: {other}")),
        }
    }

    fn conflicts(&self) -> u64 {
        self.store.conflicts
    }

    fn warm(&mut self) -> Result<(), String> {
        crate::warm(&mut self.enforcer)
    }

    fn profile(&self) -> Profile {
        let p = self.store.profile;
        Profile {
            evaluate: self.total.saturating_sub(p.read + p.commit + p.backoff),
            ..p
        }
    }
}

/// One attempt of a locking strategy, in one transaction.
pub enum Attempt {
    Done(Outcome),
    /// The database reported a lost race (deadlock, serialization
    /// failure, lock wait timeout); the transaction is rolled back.
    Retry,
}

/// A database's implementation of one locking strategy's transaction.
pub trait Transaction: Send {
    /// Reads the snapshot (timed into `profile.read`), decides with
    /// [`decide`], writes and commits (timed into `profile.commit`).
    fn attempt(
        &mut self,
        request: &Request,
        enforcer: &mut Enforcer,
        profile: &mut Profile,
    ) -> Result<Attempt, String>;
}

/// The decision on `snapshot`, through the same component and crate as
/// generation-cas: `Ok(None)` when admitted, the outcome when refused.
pub fn decide(
    enforcer: &mut Enforcer,
    snapshot: &Snapshot,
    request: &Request,
    profile: &mut Profile,
) -> Result<Option<Outcome>, String> {
    let t = Instant::now();
    let decision = enforcer.evaluate(&config(), snapshot, request);
    profile.evaluate += t.elapsed();
    match decision.map_err(|e| format!("evaluate: {e}"))? {
        Decision::Admitted(_) => Ok(None),
        Decision::Refused(violations) => Ok(Some(refused(&violations))),
    }
}

/// for-update and serializable: the same attempts and the same backoff
/// schedule as the consume driver (delimiter-core's `RetryPolicy`).
pub struct LockingWorker<T> {
    tx: T,
    enforcer: Enforcer,
    policy: delimiter_core::RetryPolicy,
    profile: Profile,
    conflicts: u64,
}

impl<T: Transaction> LockingWorker<T> {
    pub fn new(tx: T, policy: RetryPolicy) -> Self {
        LockingWorker {
            tx,
            enforcer: Enforcer::new(),
            policy: delimiter_core::RetryPolicy {
                max_attempts: policy.max_attempts,
                deadline_us: policy.deadline_us,
                base_delay_us: policy.base_delay_us,
                max_delay_us: policy.max_delay_us,
                seed: policy.seed,
                lock_after_conflict: policy.lock_after_conflict,
            },
            profile: Profile::default(),
            conflicts: 0,
        }
    }
}

impl<T: Transaction> Worker for LockingWorker<T> {
    /// The driver's budget (a deadline and an attempt cap) and backoff
    /// schedule, seeded per worker.
    fn consume(&mut self, request: &Request) -> Result<Outcome, String> {
        let started = Instant::now();
        let seed = self.policy.seed.unwrap_or(0);
        for attempt in 1..=self.policy.max_attempts {
            match self
                .tx
                .attempt(request, &mut self.enforcer, &mut self.profile)?
            {
                Attempt::Done(outcome) => return Ok(outcome),
                Attempt::Retry => {
                    self.conflicts += 1;
                    let delay = self.policy.delay_us(seed, attempt);
                    let spent = started.elapsed().as_micros() as u64;
                    if attempt == self.policy.max_attempts
                        || spent + delay >= self.policy.deadline_us
                    {
                        break;
                    }
                    let t = Instant::now();
                    std::thread::sleep(Duration::from_micros(delay));
                    self.profile.backoff += t.elapsed();
                }
            }
        }
        Ok(Outcome::Exhausted)
    }

    fn conflicts(&self) -> u64 {
        self.conflicts
    }

    fn warm(&mut self) -> Result<(), String> {
        crate::warm(&mut self.enforcer)
    }

    fn profile(&self) -> Profile {
        self.profile
    }
}
