//! Combining the concurrent consumes of one process (semantics,
//! "Combining concurrent consumes"), with the standard library's `Mutex`
//! and `Condvar`.
//!
//! Threads that consume through one [`Combiner`] while another consume of
//! their group is running queue up; the first to find no batch running
//! leads: it takes up to [`Combiner::max_batch`] queued requests in
//! arrival order and runs them as one batch ([`Enforcer::consume_batch`])
//! through its own enforcer and store, then hands every member its own
//! result. So under load a hot root sees one read and one commit per batch
//! instead of one per consume, and the consumes of one process never
//! conflict with each other.

use crate::{Config, Consumed, Enforcer, Error, Request, RetryPolicy, StorageError, Store};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// The default most members a batch takes.
pub const DEFAULT_MAX_BATCH: usize = 32;

/// Which requests may share a batch: requests whose keys are equal. The
/// key only groups (a batch of requests from unrelated trees is as correct,
/// just larger); the default puts every request in one group.
pub type GroupKey = Box<dyn Fn(&Request) -> String + Send + Sync>;

/// Runs the concurrent consumes of one process as batches. Share one per
/// process (e.g. in an `Arc`); each thread brings its own [`Enforcer`] and
/// store (a connection), which it uses when it leads a batch.
///
/// Four threads, each with its own connection to one SQLite file, booting
/// servers through one combiner (a store without batch calls, such as
/// [`crate::MemoryStore`], would consume alone and count in `lone`):
///
/// ```
/// use delimiter::*;
/// use std::sync::Arc;
///
/// let path = std::env::temp_dir().join(format!("combiner-doc-{}.db", std::process::id()));
/// let _ = std::fs::remove_file(&path);
/// let mut setup = SqliteStore::open(&path).unwrap();
/// setup.create_schema().unwrap();
/// setup.add_project(&Project::root("org")).unwrap();
/// setup.add_project(&Project::child("a", "org")).unwrap();
/// setup.set_limits(&Limits { registered: vec![RegisteredLimit::new("servers", 10)], project: vec![] }).unwrap();
///
/// let combiner = Arc::new(Combiner::new(Config::default(), RetryPolicy::default()));
/// let workers: Vec<_> = (0..4)
///     .map(|_| {
///         let (combiner, path) = (combiner.clone(), path.clone());
///         std::thread::spawn(move || {
///             let mut store = SqliteStore::open(&path).unwrap();
///             let mut enforcer = Enforcer::new();
///             let request = Request::new("a", vec![Delta::new("servers", 2)]);
///             combiner.consume(&mut enforcer, &mut store, &request).unwrap()
///         })
///     })
///     .collect();
/// for worker in workers {
///     assert!(worker.join().unwrap().attempts >= 1);
/// }
/// assert_eq!(setup.usage("a", "servers").unwrap(), 8);
/// // Every consume went through a batch (of one when no other was waiting).
/// let stats = combiner.stats();
/// assert_eq!((stats.members, stats.lone), (4, 0));
/// assert!(stats.batches >= 1 && stats.batches <= 4);
/// # drop(setup);
/// # let _ = std::fs::remove_file(&path);
/// ```
pub struct Combiner {
    config: Config,
    policy: RetryPolicy,
    max_batch: usize,
    key: GroupKey,
    groups: Mutex<HashMap<String, Arc<Group>>>,
    batches: AtomicU64,
    members: AtomicU64,
    lone: AtomicU64,
}

/// What a combiner has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CombinerStats {
    /// Batches run.
    pub batches: u64,
    /// Consumes those batches carried (`members / batches` is the mean
    /// batch size).
    pub members: u64,
    /// Consumes run alone: a store without batch calls, or a request
    /// that increases nothing (a release needs no claim to combine).
    pub lone: u64,
}

/// The queue of one group.
#[derive(Default)]
struct Group {
    state: Mutex<GroupState>,
    done: Condvar,
}

#[derive(Default)]
struct GroupState {
    leading: bool,
    next_ticket: u64,
    queue: VecDeque<(u64, Request)>,
    results: HashMap<u64, Result<Consumed, Error>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking leader is handled by `Leading`'s drop; the state itself
    // stays consistent.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Combiner {
    /// A combiner deciding under `config`, retrying conflicts of a batch
    /// under `policy`, with one group and batches of at most
    /// [`DEFAULT_MAX_BATCH`].
    pub fn new(config: Config, policy: RetryPolicy) -> Self {
        Combiner {
            config,
            policy,
            max_batch: DEFAULT_MAX_BATCH,
            key: Box::new(|_| String::new()),
            groups: Mutex::new(HashMap::new()),
            batches: AtomicU64::new(0),
            members: AtomicU64::new(0),
            lone: AtomicU64::new(0),
        }
    }

    /// Batches of at most `max_batch` members (at least 1).
    pub fn with_max_batch(mut self, max_batch: usize) -> Self {
        self.max_batch = max_batch.max(1);
        self
    }

    /// Groups requests by `key` (e.g. the root of the request's project),
    /// so that only requests of one group share a batch.
    pub fn with_group_key(
        mut self,
        key: impl Fn(&Request) -> String + Send + Sync + 'static,
    ) -> Self {
        self.key = Box::new(key);
        self
    }

    /// The most members a batch takes.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// Batches and members so far.
    pub fn stats(&self) -> CombinerStats {
        CombinerStats {
            batches: self.batches.load(Ordering::Relaxed),
            members: self.members.load(Ordering::Relaxed),
            lone: self.lone.load(Ordering::Relaxed),
        }
    }

    /// Consumes `request` as [`Enforcer::consume`] would, combined with the
    /// consumes of other threads of its group: the same outcome and errors
    /// (a batch's decisions are those of its members one by one in arrival
    /// order). `enforcer` and `store` are used only if this call leads a
    /// batch; a store whose [`Store::batches`] is false, and a request that
    /// increases nothing, are consumed alone.
    pub fn consume(
        &self,
        enforcer: &mut Enforcer,
        store: &mut dyn Store,
        request: &Request,
    ) -> Result<Consumed, Error> {
        if !store.batches() || !request.deltas.iter().any(|d| d.delta > 0) {
            self.lone.fetch_add(1, Ordering::Relaxed);
            return enforcer.consume(&self.config, &self.policy, store, request);
        }
        let group = {
            let mut groups = lock(&self.groups);
            groups.entry((self.key)(request)).or_default().clone()
        };
        let mut state = lock(&group.state);
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.queue.push_back((ticket, request.clone()));
        loop {
            if let Some(result) = state.results.remove(&ticket) {
                return result;
            }
            if state.leading {
                state = group
                    .done
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            // Lead one batch (it may not hold this call's request when more
            // than a batch is queued ahead of it; then lead the next).
            state.leading = true;
            let take = state.queue.len().min(self.max_batch);
            let batch: Vec<(u64, Request)> = state.queue.drain(..take).collect();
            drop(state);
            let leading = Leading {
                group: &group,
                tickets: batch.iter().map(|(t, _)| *t).collect(),
            };
            let requests: Vec<Request> = batch.into_iter().map(|(_, r)| r).collect();
            // A batch of one is a lone consume: the same outcome, and the
            // store's path read is cheaper than a batch read of the tree.
            let results = match requests.as_slice() {
                [only] => Ok(vec![enforcer.consume(
                    &self.config,
                    &self.policy,
                    store,
                    only,
                )]),
                _ => enforcer.consume_batch(&self.config, &self.policy, store, &requests),
            };
            self.batches.fetch_add(1, Ordering::Relaxed);
            self.members
                .fetch_add(requests.len() as u64, Ordering::Relaxed);
            state = leading.finish(results);
        }
    }
}

/// The batch a thread leads; if the thread unwinds (a panicking store),
/// its members get a storage error and another thread may lead.
struct Leading<'a> {
    group: &'a Group,
    tickets: Vec<u64>,
}

impl<'a> Leading<'a> {
    /// Hands out `results` (one per member, or the guest fault for all),
    /// ends the lead and wakes the waiters.
    fn finish(
        mut self,
        results: Result<Vec<Result<Consumed, Error>>, Error>,
    ) -> MutexGuard<'a, GroupState> {
        let tickets = std::mem::take(&mut self.tickets);
        let mut state = lock(&self.group.state);
        match results {
            Ok(results) if results.len() == tickets.len() => {
                state.results.extend(tickets.into_iter().zip(results));
            }
            Ok(results) => {
                let error = Error::Storage {
                    error: StorageError::new(format!(
                        "consume_batch gave {} results for {} requests",
                        results.len(),
                        tickets.len()
                    )),
                    attempts: 0,
                };
                state
                    .results
                    .extend(tickets.into_iter().map(|t| (t, Err(error.clone()))));
            }
            Err(fault) => {
                state
                    .results
                    .extend(tickets.into_iter().map(|t| (t, Err(fault.clone()))));
            }
        }
        state.leading = false;
        self.group.done.notify_all();
        state
    }
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        if self.tickets.is_empty() {
            return;
        }
        let mut state = lock(&self.group.state);
        let error = Error::Storage {
            error: StorageError::new("the thread leading this batch panicked"),
            attempts: 0,
        };
        for t in self.tickets.drain(..) {
            state.results.insert(t, Err(error.clone()));
        }
        state.leading = false;
        self.group.done.notify_all();
    }
}
