//! What the store and API tests share: the fixture tree, the expected
//! input errors (with the core's message), a way to look into any store,
//! and the checks whose expectations do not depend on the storage.

#![allow(dead_code)] // each test binary uses its own part

use delimiter::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// org (10 servers) > team (unlimited) > {a, b}; registered default 8.
/// Under the nested model a and b are capped by org together.
pub fn projects() -> Vec<Project> {
    vec![
        Project::root("org"),
        Project::child("team", "org"),
        Project::child("a", "team"),
        Project::child("b", "team"),
    ]
}

pub fn limits() -> Limits {
    Limits {
        registered: vec![RegisteredLimit::new("servers", 8)],
        project: vec![
            ProjectLimit::new("org", "servers", 10),
            ProjectLimit::new("team", "servers", UNLIMITED),
        ],
    }
}

pub fn servers(project: &str, n: i64) -> Request {
    Request::new(project, vec![Delta::new("servers", n)])
}

pub fn config() -> Config {
    Config::new(Model::Nested)
}

/// The error an invalid input gives: the case, with the core's message
/// (the host writes no text of its own).
pub fn invalid(input: InvalidInput, message: &str) -> Error {
    Error::Invalid(Invalid {
        input,
        message: message.into(),
    })
}

/// `unknown-project` for `project`, as the core words it.
pub fn unknown_project(project: &str) -> Error {
    invalid(
        InvalidInput::UnknownProject(ProjectRef {
            project: project.into(),
        }),
        &format!("project {project:?} is not in the tree"),
    )
}

/// Short backoffs: tests should not sleep for long.
pub fn quick() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 50,
        deadline_us: 10_000_000,
        base_delay_us: 50,
        max_delay_us: 2_000,
        seed: Some(7),
        lock_after_conflict: false,
    }
}

/// A store the tests can set up and look into.
pub trait Inspect: Store {
    fn add(&mut self, project: &Project);
    fn limit(&mut self, limits: &Limits);
    fn generation_of(&mut self, project: &str) -> Option<u64>;
    fn usage_of(&mut self, project: &str, resource: &str) -> i64;

    /// The fixture tree and limits.
    fn seed(&mut self) {
        for p in projects() {
            self.add(&p);
        }
        self.limit(&limits());
    }

    /// Generations of a, team and org: what a commit by a would move.
    fn path_generations(&mut self) -> Vec<Option<u64>> {
        ["a", "team", "org"]
            .iter()
            .map(|p| self.generation_of(p))
            .collect()
    }
}

macro_rules! inspect {
    ($store:ty) => {
        impl Inspect for $store {
            fn add(&mut self, project: &Project) {
                self.add_project(project).unwrap()
            }
            fn limit(&mut self, limits: &Limits) {
                self.set_limits(limits).unwrap()
            }
            fn generation_of(&mut self, project: &str) -> Option<u64> {
                self.generation(project).unwrap()
            }
            fn usage_of(&mut self, project: &str, resource: &str) -> i64 {
                self.usage(project, resource).unwrap()
            }
        }
    };
}

inspect!(PostgresStore);
inspect!(MariadbStore);
inspect!(SqliteStore);

/// Admission with a claim, refusal by the parent, release, and an unknown
/// project, on a freshly seeded store.
pub fn admits_commits_refuses(store: &mut impl Inspect) {
    consume(&config(), &quick(), store, &servers("a", 6)).unwrap();
    let snapshot = store.read("b", &["servers".to_string()]).unwrap();
    assert_eq!(snapshot.projects.len(), 3, "b, team, org: not a");
    let Usage::Path(path) = &snapshot.usage else {
        panic!("{:?}", snapshot.usage)
    };
    assert!(
        path.subtree.contains(&UsageEntry::new("org", "servers", 6)),
        "{path:?}"
    );

    let g_org = store.generation_of("org").unwrap();
    let done = consume(&config(), &quick(), store, &servers("b", 3)).unwrap();
    assert_eq!(done.attempts, 1);
    assert_eq!(store.usage_of("b", "servers"), 3);
    assert_eq!(
        done.claim
            .iter()
            .map(|c| c.project.as_str())
            .collect::<Vec<_>>(),
        ["b", "org"]
    );
    assert_eq!(
        store.generation_of("org"),
        Some(g_org + 1),
        "the claim bumped org"
    );

    let err = consume(&config(), &quick(), store, &servers("b", 2)).unwrap_err();
    assert!(
        matches!(&err, Error::OverLimit(OverLimit { violations, attempts: 1 }) if violations[0].project == "org"),
        "{err:?}"
    );
    assert_eq!(
        store.usage_of("b", "servers"),
        3,
        "a refusal writes nothing"
    );

    let g_b = store.generation_of("b").unwrap();
    consume(&config(), &quick(), store, &servers("b", -3)).unwrap();
    assert_eq!(store.usage_of("b", "servers"), 0);
    assert_eq!(
        store.generation_of("b"),
        Some(g_b + 1),
        "a release moves the generation too"
    );

    // Ids are case-sensitive everywhere.
    let err = consume(&config(), &quick(), store, &servers("A", 1)).unwrap_err();
    assert_eq!(err, unknown_project("A"));
}

/// A claim whose last entry is stale rolls back the bumps before it.
pub fn stale_generation_writes_nothing(store: &mut impl Inspect) {
    let g_a = store.generation_of("a").unwrap();
    let g_org = store.generation_of("org").unwrap();
    let stale = [
        ClaimEntry {
            project: "a".into(),
            generation: g_a,
        },
        ClaimEntry {
            project: "org".into(),
            generation: g_org - 1,
        },
    ];
    // Conflict, or ConflictAfterWait when the statement was slow enough
    // to look like a wait (stores tell them apart by time; nothing else
    // writes here, but a loaded machine can be slow).
    let outcome = store.commit(&stale, &servers("a", 1)).unwrap();
    assert_ne!(outcome, CommitOutcome::Committed);
    assert_eq!(
        store.generation_of("a"),
        Some(g_a),
        "a's bump rolled back with the rest"
    );
    assert_eq!(store.usage_of("a", "servers"), 0);
}

/// A stale claim whose write would fail too (a release below zero,
/// refused by the CHECK) is a conflict, not a storage error: the stores
/// send the compares and the writes in one round trip, and a write that
/// failed on a stale snapshot must not turn a conflict into a failure.
pub fn stale_claim_with_a_failing_write_is_a_conflict(store: &mut impl Inspect) {
    consume(&config(), &quick(), store, &servers("a", 1)).unwrap();
    let g_a = store.generation_of("a").unwrap();
    let g_org = store.generation_of("org").unwrap();
    let stale = [
        ClaimEntry {
            project: "a".into(),
            generation: g_a,
        },
        ClaimEntry {
            project: "org".into(),
            generation: g_org - 1,
        },
    ];
    let outcome = store.commit(&stale, &servers("a", -5));
    assert!(
        matches!(
            outcome,
            Ok(CommitOutcome::Conflict | CommitOutcome::ConflictAfterWait)
        ),
        "{outcome:?}"
    );
    assert_eq!(store.generation_of("a"), Some(g_a), "nothing written");
    assert_eq!(store.usage_of("a", "servers"), 1);
}

/// Consumes through `store`, which must fail with a storage error on the
/// first attempt (`message` in its text), and checks with `check` that no
/// generation moved and no usage was written.
pub fn storage_error_leaves_no_charge(
    check: &mut impl Inspect,
    store: &mut impl Store,
    message: &str,
) {
    let before = check.path_generations();
    let err = consume(&config(), &quick(), store, &servers("a", 2)).unwrap_err();
    assert!(
        matches!(&err, Error::Storage { error, attempts: 1 } if error.message.contains(message)),
        "{err:?}"
    );
    assert_eq!(before, check.path_generations(), "no generation moved");
    assert_eq!(check.usage_of("a", "servers"), 0, "no usage written");
}

/// Wraps a store and runs `after` on it right after each read, in the
/// window between a consume's read and its commit (`reads` counts the
/// reads so far). Backoffs are counted, not slept: every test policy
/// (`quick`) caps a delay at 2 ms, which is asserted.
pub struct AfterRead<S, F> {
    pub inner: S,
    pub after: F,
    pub reads: u32,
    pub backoffs: u32,
}

impl<S: Store, F: FnMut(&mut S, u32)> AfterRead<S, F> {
    pub fn new(inner: S, after: F) -> Self {
        AfterRead {
            inner,
            after,
            reads: 0,
            backoffs: 0,
        }
    }
}

impl<S: Store, F: FnMut(&mut S, u32)> Store for AfterRead<S, F> {
    fn read(&mut self, project: &str, resources: &[String]) -> Result<Snapshot, StorageError> {
        let snapshot = self.inner.read(project, resources)?;
        self.reads += 1;
        (self.after)(&mut self.inner, self.reads);
        Ok(snapshot)
    }

    fn commit(
        &mut self,
        claim: &[ClaimEntry],
        request: &Request,
    ) -> Result<CommitOutcome, StorageError> {
        self.inner.commit(claim, request)
    }

    fn backoff(&mut self, _attempt: u32, delay: Duration) {
        self.backoffs += 1;
        assert!(delay <= Duration::from_millis(2), "{delay:?}");
    }

    /// A locked read, not counted in `reads` and not followed by `after`.
    fn read_locked(
        &mut self,
        project: &str,
        resources: &[String],
    ) -> Result<Option<Snapshot>, StorageError> {
        self.inner.read_locked(project, resources)
    }

    fn unlock(&mut self) {
        self.inner.unlock()
    }
}

/// `lock_after_conflict` on a real store, with a rival connection:
/// - a rival's write between the first read and its commit makes that
///   commit conflict; the next attempt is a locked one (no plain read, no
///   backoff) and commits;
/// - a locked attempt that is refused (the rival used the room meanwhile)
///   writes nothing and releases its locks: the rival writes the same rows
///   at once (within 10 s, or the check fails instead of hanging).
pub fn locked_attempt_after_a_conflict<S>(store: S, rival: S)
where
    S: Inspect + Send + 'static,
{
    let policy = RetryPolicy {
        lock_after_conflict: true,
        ..quick()
    };
    let mut rival = rival;
    let mut racing = AfterRead::new(store, |_: &mut S, n: u32| {
        if n == 1 {
            consume(&config(), &quick(), &mut rival, &servers("b", 1)).unwrap();
        }
    });
    let done = consume(&config(), &policy, &mut racing, &servers("a", 2)).unwrap();
    assert_eq!(done.attempts, 2, "the first commit lost to the rival");
    assert_eq!(
        (racing.reads, racing.backoffs),
        (1, 0),
        "the second attempt read locked, with no backoff before it"
    );
    let mut store = racing.inner;
    assert_eq!(store.usage_of("a", "servers"), 2);

    // org: a 2 + b 1 = 3 of 10. a +5 fits on the first read; the rival's
    // b +4 then leaves 3, so the locked attempt refuses at org.
    let mut racing = AfterRead::new(store, |_: &mut S, n: u32| {
        if n == 1 {
            consume(&config(), &quick(), &mut rival, &servers("b", 4)).unwrap();
        }
    });
    let err = consume(&config(), &policy, &mut racing, &servers("a", 5)).unwrap_err();
    assert!(
        matches!(&err, Error::OverLimit(OverLimit { violations, attempts: 2 }) if violations[0].project == "org"),
        "{err:?}"
    );
    let mut store = racing.inner;
    assert_eq!(
        store.usage_of("a", "servers"),
        2,
        "the refusal wrote nothing"
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let released = consume(&config(), &quick(), &mut rival, &servers("b", -4));
        let _ = tx.send(released.map(|d| d.attempts));
    });
    let released = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the rival still waits on a lock the refused attempt kept");
    assert!(released.is_ok(), "{released:?}");
    assert_eq!(store.usage_of("b", "servers"), 1);
}

/// `inner`, with `rival` (another connection, with its own component
/// instance) committing one server for `rival_project` right after the
/// first read, so that the first commit through `inner` conflicts.
pub fn interleaved<S: Store, R: Store>(
    inner: S,
    mut rival: R,
    rival_project: &'static str,
) -> AfterRead<S, impl FnMut(&mut S, u32)> {
    AfterRead::new(inner, move |_: &mut S, reads: u32| {
        if reads == 1 {
            let done = Enforcer::new()
                .consume(&config(), &quick(), &mut rival, &servers(rival_project, 1))
                .expect("the rival commits");
            assert_eq!(done.attempts, 1);
        }
    })
}

/// A worker: `times` consumes of one server by `project` through `store`,
/// on an enforcer of its own; each admission is counted in `admitted`. A
/// refusal or running out of retries is an answer; anything else fails.
pub fn consume_servers(
    store: &mut impl Store,
    project: &str,
    times: usize,
    admitted: &AtomicUsize,
) {
    let mut enforcer = Enforcer::new();
    for _ in 0..times {
        match enforcer.consume(&config(), &quick(), store, &servers(project, 1)) {
            Ok(_) => {
                admitted.fetch_add(1, Ordering::Relaxed);
            }
            Err(Error::OverLimit(_)) | Err(Error::RetriesExhausted { .. }) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
}

/// A batch commit whose second member's rows fail (a release below zero)
/// reports that member and writes nothing, not even the first member's rows.
pub fn batch_member_failure_writes_nothing(store: &mut impl Inspect) {
    let before = store.path_generations();
    let outcome = store
        .commit_batch(&[], &[servers("a", 1), servers("b", -5)])
        .unwrap();
    let BatchOutcome::MemberFailed(failure) = outcome else {
        panic!("want member-failed, got {outcome:?}");
    };
    assert_eq!(failure.index, 1, "{}", failure.message);
    assert_eq!(store.usage_of("a", "servers"), 0, "nothing written");
    assert_eq!(store.path_generations(), before, "no generation moved");
}

/// Eight threads, each with its own connection, consume one server at a
/// time through one combiner: org's limit of 10 is reached exactly, every
/// admission is written once, and the consumes ran in batches.
pub fn combined_threads_never_overrun<S: Inspect + Send>(open: impl Fn() -> S + Sync) {
    let combiner = Combiner::new(config(), RetryPolicy::default());
    let admitted = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for worker in 0..8 {
            let (admitted, combiner, open) = (&admitted, &combiner, &open);
            scope.spawn(move || {
                let mut store = open();
                let mut enforcer = Enforcer::new();
                let project = if worker % 2 == 0 { "a" } else { "b" };
                for _ in 0..6 {
                    match combiner.consume(&mut enforcer, &mut store, &servers(project, 1)) {
                        Ok(_) => {
                            admitted.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(Error::OverLimit(_)) => {}
                        Err(other) => panic!("{other:?}"),
                    }
                }
            });
        }
    });
    let mut store = open();
    let (a, b) = (
        store.usage_of("a", "servers"),
        store.usage_of("b", "servers"),
    );
    assert_eq!(
        (a + b) as usize,
        admitted.load(Ordering::Relaxed),
        "every admission written once"
    );
    assert_eq!(a + b, 10, "org's limit is reached exactly, never passed");
    assert!(a <= 8 && b <= 8);
    let stats = combiner.stats();
    assert_eq!(
        stats.members, 48,
        "every consume went through a batch: {stats:?}"
    );
    assert!(
        stats.batches < stats.members,
        "some batch combined consumes: {stats:?}"
    );
}

/// One consume through `store` when nothing contends: how many round
/// trips `round_trips` counted for it (`round_trips` reads the store's
/// counter). Statements prepared on first use are prepared before.
pub fn uncontended_round_trips<S: Store>(store: &mut S, round_trips: impl Fn(&S) -> u64) -> u64 {
    let mut enforcer = Enforcer::new();
    enforcer
        .consume(&config(), &quick(), store, &servers("a", 1))
        .unwrap();
    let before = round_trips(store);
    enforcer
        .consume(&config(), &quick(), store, &servers("a", 1))
        .unwrap();
    round_trips(store) - before
}
