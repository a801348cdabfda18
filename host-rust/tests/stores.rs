//! Consuming through the ready-made stores: admission, refusal, releases,
//! a conflict that is retried, and concurrent writers that never overrun a
//! shared parent limit.

use delimiter::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// org (limit 10 servers) > team (no own limit) > {a, b}; registered
/// default 8. Under the nested model a and b are capped by org together.
fn projects() -> Vec<Project> {
    vec![
        Project::root("org"),
        Project::child("team", "org"),
        Project::child("a", "team"),
        Project::child("b", "team"),
    ]
}

fn limits() -> Limits {
    Limits {
        registered: vec![RegisteredLimit::new("servers", 8)],
        project: vec![
            ProjectLimit::new("org", "servers", 10),
            ProjectLimit::new("team", "servers", UNLIMITED),
        ],
    }
}

fn servers(project: &str, n: i64) -> Request {
    Request::new(project, vec![Delta::new("servers", n)])
}

fn config() -> Config {
    Config::new(Model::Nested)
}

/// Backoffs are real sleeps by default; keep tests quick.
fn quick() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 50,
        base_delay_us: 50,
        max_delay_us: 2_000,
        seed: 7,
    }
}

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

fn sqlite(path: &PathBuf) -> SqliteStore {
    let mut store = SqliteStore::open(path).unwrap();
    for p in projects() {
        store.add_project(&p).unwrap();
    }
    store.set_limits(&limits()).unwrap();
    store
}

/// Wraps a store; on the first read, lets `rival` commit a consume of one
/// server by `rival_project` after our read, so our first commit conflicts.
struct Interleaved<S: Store, R: Store> {
    inner: S,
    rival: R,
    rival_project: &'static str,
    reads: u32,
    backoffs: u32,
}

impl<S: Store, R: Store> Store for Interleaved<S, R> {
    fn read(&mut self, project: &str, resources: &[String]) -> Result<Snapshot, StorageError> {
        let snapshot = self.inner.read(project, resources)?;
        self.reads += 1;
        if self.reads == 1 {
            // A concurrent service instance, with its own component instance.
            let done = Enforcer::new()
                .consume(
                    &config(),
                    &quick(),
                    &mut self.rival,
                    &servers(self.rival_project, 1),
                )
                .expect("the rival commits");
            assert_eq!(done.attempts, 1);
        }
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
        assert!(delay <= Duration::from_millis(2));
    }
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
    let Error::OverLimit {
        violations,
        attempts,
    } = err
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
    assert!(
        matches!(err, Error::Invalid(InvalidInput::ReleaseBelowZero { .. })),
        "{err:?}"
    );
}

#[test]
fn memory_store_conflict_is_retried_on_a_fresh_read() {
    let store = MemoryStore::new(projects(), limits());
    let mut racing = Interleaved {
        inner: store.clone(),
        rival: store.clone(),
        rival_project: "b",
        reads: 0,
        backoffs: 0,
    };
    let done = consume(&config(), &quick(), &mut racing, &servers("a", 1)).unwrap();
    assert_eq!(done.attempts, 2, "the first commit lost to the rival");
    assert_eq!((racing.reads, racing.backoffs), (2, 1));
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
                let mut enforcer = Enforcer::new();
                for _ in 0..8 {
                    match enforcer.consume(&config(), &quick(), &mut mine, &servers(project, 1)) {
                        Ok(_) => {
                            admitted.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(Error::OverLimit { .. }) | Err(Error::RetriesExhausted { .. }) => {}
                        Err(other) => panic!("{other:?}"),
                    }
                }
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
    let mut store = sqlite(&path);
    store.set_usage("a", "servers", 6).unwrap();

    // The read sends only b's path, with usage summed per subtree.
    let snapshot = store.read("b", &["servers".to_string()]).unwrap();
    assert_eq!(snapshot.projects.len(), 3, "b, team, org: not a");
    let Usage::Path(path_usage) = &snapshot.usage else {
        panic!("{:?}", snapshot.usage)
    };
    assert!(
        path_usage
            .subtree
            .contains(&UsageEntry::new("org", "servers", 6))
    );

    let g_org = store.generation("org").unwrap().unwrap();
    let done = consume(&config(), &quick(), &mut store, &servers("b", 3)).unwrap();
    assert_eq!(done.attempts, 1);
    assert_eq!(store.usage("b", "servers").unwrap(), 3);
    assert_eq!(
        store.generation("org").unwrap(),
        Some(g_org + 1),
        "the claim bumped org"
    );

    let err = consume(&config(), &quick(), &mut store, &servers("b", 2)).unwrap_err();
    assert!(
        matches!(&err, Error::OverLimit { violations, .. } if violations[0].project == "org"),
        "{err:?}"
    );
    assert_eq!(store.usage("b", "servers").unwrap(), 3);

    consume(&config(), &quick(), &mut store, &servers("b", -3)).unwrap();
    assert_eq!(store.usage("b", "servers").unwrap(), 0);

    let err = consume(&config(), &quick(), &mut store, &servers("nobody", 1)).unwrap_err();
    assert_eq!(
        err,
        Error::Invalid(InvalidInput::UnknownProject {
            project: "nobody".into()
        })
    );
}

#[test]
fn sqlite_store_conflict_rolls_back_and_is_retried() {
    let path = db_path("conflict");
    let store = sqlite(&path);
    let rival = SqliteStore::open(&path).unwrap();
    let mut racing = Interleaved {
        inner: store,
        rival,
        rival_project: "b",
        reads: 0,
        backoffs: 0,
    };
    let done = consume(&config(), &quick(), &mut racing, &servers("a", 2)).unwrap();
    assert_eq!(
        done.attempts, 2,
        "the first commit lost to the rival connection"
    );
    assert_eq!((racing.reads, racing.backoffs), (2, 1));
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
    let path = db_path("stale");
    let mut store = sqlite(&path);
    let g_a = store.generation("a").unwrap().unwrap();
    let g_org = store.generation("org").unwrap().unwrap();
    // org moved on: the whole transaction, a's bump included, rolls back.
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
    assert_eq!(
        store.commit(&stale, &servers("a", 1)).unwrap(),
        CommitOutcome::Conflict
    );
    assert_eq!(store.generation("a").unwrap(), Some(g_a));
    assert_eq!(store.usage("a", "servers").unwrap(), 0);
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
                for _ in 0..8 {
                    match consume(&config(), &quick(), &mut mine, &servers(project, 1)) {
                        Ok(_) => {
                            admitted.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(Error::OverLimit { .. }) | Err(Error::RetriesExhausted { .. }) => {}
                        Err(other) => panic!("{other:?}"),
                    }
                }
            });
        }
    });
    let store = SqliteStore::open(&path).unwrap();
    let used = store.usage("a", "servers").unwrap() + store.usage("b", "servers").unwrap();
    assert_eq!(used as usize, admitted.load(Ordering::Relaxed));
    assert_eq!(used, 10, "org's limit is reached exactly, never passed");
}
