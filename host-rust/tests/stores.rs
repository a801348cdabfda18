//! Consuming through the ready-made stores: admission, refusal, releases,
//! a conflict that is retried, and concurrent writers that never overrun a
//! shared parent limit.

mod common;

use common::*;
use delimiter::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A database file of its own for each test, in a directory removed when
/// the test ends.
struct TempDb(PathBuf);

impl std::ops::Deref for TempDb {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl AsRef<std::path::Path> for TempDb {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn db_path(name: &str) -> TempDb {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "delimiter-test-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    TempDb(dir.join("quota.sqlite"))
}

/// A SQLite store at `path`, seeded with the fixture tree and limits.
fn sqlite(path: &PathBuf) -> SqliteStore {
    let mut store = SqliteStore::open(path).unwrap();
    store.create_schema().unwrap();
    store.seed();
    store
}

// ---- MemoryStore --------------------------------------------------------------

#[test]
fn memory_store_admits_commits_and_refuses() {
    let mut store = MemoryStore::new(projects(), limits());
    store.set_usage("a", "servers", 6);

    let done = consume(&config(), &quick(), &mut store, &servers("b", 3)).unwrap();
    assert_eq!(done.attempts, 1);
    assert_eq!(
        done.claim
            .iter()
            .map(|c| c.project.as_str())
            .collect::<Vec<_>>(),
        ["b", "org"],
        "b itself and org (the finite ancestor); team is unlimited"
    );
    assert_eq!(store.usage("b", "servers"), 3);

    // org: 9 used of 10, so 2 more is refused, with the constraint named.
    let err = consume(&config(), &quick(), &mut store, &servers("b", 2)).unwrap_err();
    let Error::OverLimit(OverLimit {
        violations,
        attempts,
    }) = err
    else {
        panic!("{err:?}")
    };
    assert_eq!(attempts, 1);
    assert_eq!(violations.len(), 1);
    assert_eq!(
        (
            violations[0].project.as_str(),
            violations[0].limit,
            violations[0].usage
        ),
        ("org", 10, 9)
    );
    assert_eq!(store.usage("b", "servers"), 3, "a refusal writes nothing");

    // A release is always admitted; one below zero is invalid input.
    consume(&config(), &quick(), &mut store, &servers("b", -3)).unwrap();
    assert_eq!(store.usage("b", "servers"), 0);
    let err = consume(&config(), &quick(), &mut store, &servers("b", -1)).unwrap_err();
    assert_eq!(
        err,
        invalid(
            InvalidInput::ReleaseBelowZero(ReleaseInfo {
                project: "b".into(),
                resource: "servers".into(),
                usage: 0,
                delta: -1,
            }),
            r#"releasing 1 of "servers" from project "b" would take usage 0 below zero"#,
        )
    );
}

#[test]
fn memory_store_conflict_is_retried_on_a_fresh_read() {
    let store = MemoryStore::new(projects(), limits());
    let mut racing = interleaved(store.clone(), store.clone(), "b");
    let done = consume(&config(), &quick(), &mut racing, &servers("a", 1)).unwrap();
    assert_eq!(done.attempts, 2, "the first commit lost to the rival");
    // One backoff, or none when the lost compare was slow enough to count
    // as having waited for the rival (then the driver re-reads at once).
    assert_eq!(racing.reads, 2);
    assert!(racing.backoffs <= 1);
    assert_eq!(store.conflicts(), 1);
    assert_eq!(
        (store.usage("a", "servers"), store.usage("b", "servers")),
        (1, 1)
    );
}

#[test]
fn memory_store_retries_exhausted_is_an_error_not_an_admission() {
    /// Every commit meets a conflict.
    struct AlwaysConflict(MemoryStore);
    impl Store for AlwaysConflict {
        fn read(&mut self, p: &str, r: &[String]) -> Result<Snapshot, StorageError> {
            self.0.read(p, r)
        }
        fn commit(&mut self, _: &[ClaimEntry], _: &Request) -> Result<CommitOutcome, StorageError> {
            Ok(CommitOutcome::Conflict)
        }
        fn backoff(&mut self, _: u32, _: Duration) {}
    }
    let mut store = AlwaysConflict(MemoryStore::new(projects(), limits()));
    let policy = RetryPolicy {
        max_attempts: 3,
        ..quick()
    };
    let err = consume(&config(), &policy, &mut store, &servers("a", 1)).unwrap_err();
    assert_eq!(err, Error::RetriesExhausted { attempts: 3 });
    assert_eq!(store.0.usage("a", "servers"), 0);
}

#[test]
fn memory_store_concurrent_workers_never_overrun_the_parent() {
    let store = MemoryStore::new(projects(), limits());
    let admitted = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for worker in 0..4 {
            let mut mine = store.clone();
            let admitted = &admitted;
            scope.spawn(move || {
                let project = if worker % 2 == 0 { "a" } else { "b" };
                consume_servers(&mut mine, project, 8, admitted);
            });
        }
    });
    let used = store.usage("a", "servers") + store.usage("b", "servers");
    assert_eq!(used as usize, admitted.load(Ordering::Relaxed));
    assert_eq!(used, 10, "org's limit is reached exactly, never passed");
    assert!(store.usage("a", "servers") <= 8 && store.usage("b", "servers") <= 8);
}

// ---- SqliteStore --------------------------------------------------------------

#[test]
fn sqlite_store_admits_commits_and_refuses_with_path_usage() {
    let path = db_path("basic");
    common::admits_commits_refuses(&mut sqlite(&path));
}

#[test]
fn sqlite_store_conflict_rolls_back_and_is_retried() {
    let path = db_path("conflict");
    let store = sqlite(&path);
    let rival = SqliteStore::open(&path).unwrap();
    let mut racing = interleaved(store, rival, "b");
    let done = consume(&config(), &quick(), &mut racing, &servers("a", 2)).unwrap();
    assert_eq!(
        done.attempts, 2,
        "the first commit lost to the rival connection"
    );
    // One backoff, or none when the lost compare was slow enough to count
    // as having waited for the rival (then the driver re-reads at once).
    assert_eq!(racing.reads, 2);
    assert!(racing.backoffs <= 1);
    let store = racing.inner;
    assert_eq!(
        store.usage("a", "servers").unwrap(),
        2,
        "written once, by the retry"
    );
    assert_eq!(store.usage("b", "servers").unwrap(), 1);
}

#[test]
fn sqlite_store_commit_misses_on_a_stale_generation_and_writes_nothing() {
    // org moved on: the whole transaction, a's bump included, rolls back.
    let path = db_path("stale");
    common::stale_generation_writes_nothing(&mut sqlite(&path));
}

#[test]
fn sqlite_store_concurrent_connections_never_overrun_the_parent() {
    let path = db_path("threads");
    drop(sqlite(&path));
    let admitted = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for worker in 0..4 {
            let path: &PathBuf = &path;
            let admitted = &admitted;
            scope.spawn(move || {
                let mut mine = SqliteStore::open(path).unwrap();
                let project = if worker % 2 == 0 { "a" } else { "b" };
                consume_servers(&mut mine, project, 8, admitted);
            });
        }
    });
    let store = SqliteStore::open(&path).unwrap();
    let used = store.usage("a", "servers").unwrap() + store.usage("b", "servers").unwrap();
    assert_eq!(used as usize, admitted.load(Ordering::Relaxed));
    assert_eq!(used, 10, "org's limit is reached exactly, never passed");
}

#[test]
fn sqlite_store_opens_without_ddl_and_creates_its_schema_when_asked() {
    let db = db_path("no-ddl");
    let tables = |store: &SqliteStore| -> i64 {
        store
            .connection()
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name LIKE 'delimiter_%'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    let mut store = SqliteStore::open(&db.0).unwrap();
    assert_eq!(tables(&store), 0, "opening created tables");
    store.create_schema().unwrap();
    assert_eq!(tables(&store), 5);
    store.create_schema().unwrap(); // leaves existing tables as they are
    assert_eq!(tables(&store), 5);
}

#[test]
fn sqlite_batch_member_failure_writes_nothing() {
    let path = db_path("batch-member-failure");
    batch_member_failure_writes_nothing(&mut sqlite(&path));
}

#[test]
fn sqlite_stale_claim_with_a_failing_write_is_a_conflict() {
    let path = db_path("stale-failing-write");
    stale_claim_with_a_failing_write_is_a_conflict(&mut sqlite(&path));
}

#[test]
fn sqlite_locked_attempt_after_a_conflict() {
    let path = db_path("locked");
    locked_attempt_after_a_conflict(sqlite(&path), SqliteStore::open(&*path).unwrap());
}

#[test]
fn sqlite_combined_threads_never_overrun_the_parent() {
    let path = db_path("combined");
    drop(sqlite(&path));
    combined_threads_never_overrun(|| SqliteStore::open(&*path).unwrap());
}

#[test]
fn sqlite_batch_read_holds_the_whole_tree_in_local_form() {
    let path = db_path("batch-read");
    let mut store = sqlite(&path);
    let mut enforcer = Enforcer::new();
    enforcer
        .consume(&config(), &quick(), &mut store, &servers("b", 3))
        .unwrap();
    let snapshot = store
        .read_batch(&["a".to_string()], &["servers".to_string()])
        .unwrap();
    let mut ids: Vec<&str> = snapshot.projects.iter().map(|p| p.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["a", "b", "org", "team"], "a's whole tree, b included");
    assert_eq!(snapshot.generations.len(), 4);
    assert_eq!(
        snapshot.usage,
        Usage::Local(vec![UsageEntry::new("b", "servers", 3)])
    );
    // a batch of two decides the second against the first's deltas
    let requests = [servers("a", 6), servers("a", 2)];
    let decided = enforcer
        .evaluate_batch(&config(), &snapshot, &requests)
        .unwrap();
    assert!(decided[0].as_ref().unwrap().is_admitted(), "6 + 3 <= 10");
    assert!(
        !decided[1].as_ref().unwrap().is_admitted(),
        "3 + 6 + 2 > 10"
    );
}

#[test]
fn two_default_policies_back_off_differently() {
    /// Conflicts forever on a virtual clock, recording each backoff.
    struct Losing {
        inner: MemoryStore,
        clock: u64,
        delays: Vec<u64>,
    }
    impl Store for Losing {
        fn read(&mut self, project: &str, resources: &[String]) -> Result<Snapshot, StorageError> {
            self.inner.read(project, resources)
        }
        fn commit(&mut self, _: &[ClaimEntry], _: &Request) -> Result<CommitOutcome, StorageError> {
            Ok(CommitOutcome::Conflict)
        }
        fn backoff(&mut self, _attempt: u32, delay: Duration) {
            self.clock += delay.as_micros() as u64;
            self.delays.push(delay.as_micros() as u64);
        }
        fn now_us(&mut self) -> u64 {
            self.clock
        }
    }
    let run = |policy: &RetryPolicy| {
        let mut store = Losing {
            inner: MemoryStore::new(projects(), limits()),
            clock: 0,
            delays: Vec::new(),
        };
        let err = Enforcer::new()
            .consume(&config(), policy, &mut store, &servers("a", 1))
            .unwrap_err();
        assert!(matches!(err, Error::RetriesExhausted { .. }), "{err:?}");
        store.delays
    };
    let default = RetryPolicy::default();
    let (one, two) = (run(&default), run(&default));
    assert!(one.len() > 5 && two.len() > 5);
    assert!(
        one.iter().sum::<u64>() < default.deadline_us,
        "stopped by the 2 s deadline"
    );
    assert_ne!(one, two, "the default policy draws its jitter per call");
    let seeded = RetryPolicy {
        seed: Some(42),
        ..default
    };
    assert_eq!(
        run(&seeded),
        run(&seeded),
        "a fixed seed backs off in lockstep"
    );
}
