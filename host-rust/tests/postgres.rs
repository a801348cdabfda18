//! PostgresStore against a real PostgreSQL server, at the address in
//! DELIMITER_TEST_POSTGRES_URL (CI sets it). Without it the checks are
//! skipped, and the output says so.
//!
//! A plain test binary (harness = false) so that a skip is printed, not
//! hidden: `cargo test` shows `postgres store: skipped (...)` or
//! `postgres store: N checks passed`.

mod common;

use common::*;
use delimiter::*;
use postgres::{Client, NoTls};
use std::sync::atomic::{AtomicUsize, Ordering};

const URL_VAR: &str = "DELIMITER_TEST_POSTGRES_URL";

fn main() {
    let Ok(url) = std::env::var(URL_VAR) else {
        println!("postgres store: skipped ({URL_VAR} not set)");
        return;
    };
    let schema = format!("delimiter_test_{}", std::process::id());
    let mut admin =
        Client::connect(&url, NoTls).unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
    admin
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ))
        .unwrap();
    let db = Db {
        url,
        schema: schema.clone(),
    };

    let checks: [Check; 11] = [
        (
            "admits, commits, refuses and releases on path usage",
            admits_commits_refuses,
        ),
        (
            "a stale generation rolls the whole commit back",
            stale_generation_writes_nothing,
        ),
        (
            "a stale claim whose write fails too is a conflict",
            stale_claim_with_a_failing_write_is_a_conflict,
        ),
        (
            "a conflict with a rival connection is retried on a fresh read",
            conflict_is_retried,
        ),
        (
            "eight concurrent connections never overrun the parent",
            concurrent_connections_never_overrun,
        ),
        (
            "a connection killed between read and commit leaves no charge",
            killed_connection_leaves_no_charge,
        ),
        (
            "a storage error at the last claim entry leaves no charge",
            failure_at_last_claim_entry_leaves_no_charge,
        ),
        (
            "a batch member whose rows fail is reported and nothing is written",
            batch_member_failure_writes_nothing,
        ),
        (
            "eight threads through one combiner never overrun the parent",
            combined_threads_never_overrun,
        ),
        (
            "lock_after_conflict: a locked attempt commits, and a refused one releases its locks",
            locked_attempt_after_a_conflict,
        ),
        (
            "an uncontended consume takes at most 6 round trips",
            uncontended_consume_round_trips,
        ),
    ];
    for (name, check) in checks {
        reset(&db);
        check(&db);
        println!("postgres store: ok: {name}");
    }
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .unwrap();
    println!("postgres store: {} checks passed", checks.len());
}

/// One named check, run on freshly reset tables.
type Check = (&'static str, fn(&Db));

struct Db {
    url: String,
    schema: String,
}

impl Db {
    fn client(&self) -> Client {
        let mut client = Client::connect(&self.url, NoTls).unwrap();
        client
            .batch_execute(&format!("SET search_path TO {}", self.schema))
            .unwrap();
        client
    }

    fn store(&self) -> PostgresStore {
        PostgresStore::from_client(self.client()).unwrap()
    }
}

/// Empty tables, then the fixture tree and limits.
fn reset(db: &Db) {
    let mut store = db.store();
    store.create_schema().unwrap();
    store
        .client()
        .batch_execute(
            "TRUNCATE delimiter_usage, delimiter_project_limits, delimiter_registered_limits,
                      delimiter_generations, delimiter_projects",
        )
        .unwrap();
    store.seed();
}

fn admits_commits_refuses(db: &Db) {
    common::admits_commits_refuses(&mut db.store());
}

fn stale_generation_writes_nothing(db: &Db) {
    common::stale_generation_writes_nothing(&mut db.store());
}

fn stale_claim_with_a_failing_write_is_a_conflict(db: &Db) {
    common::stale_claim_with_a_failing_write_is_a_conflict(&mut db.store());
}

fn conflict_is_retried(db: &Db) {
    let mut racing = interleaved(db.store(), db.store(), "b");
    let done = consume(&config(), &quick(), &mut racing, &servers("a", 2)).unwrap();
    assert_eq!(done.attempts, 2, "the first commit lost to the rival");
    // One backoff, or none when the lost compare was slow enough to count
    // as having waited for the rival (then the driver re-reads at once).
    assert_eq!(racing.reads, 2);
    assert!(racing.backoffs <= 1);
    assert_eq!(
        racing.inner.usage("a", "servers").unwrap(),
        2,
        "written once, by the retry"
    );
    assert_eq!(racing.inner.usage("b", "servers").unwrap(), 1);
}

fn concurrent_connections_never_overrun(db: &Db) {
    let admitted = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for worker in 0..8 {
            let admitted = &admitted;
            let mut store = db.store();
            scope.spawn(move || {
                let project = if worker % 2 == 0 { "a" } else { "b" };
                consume_servers(&mut store, project, 6, admitted);
            });
        }
    });
    let mut store = db.store();
    let (a, b) = (
        store.usage("a", "servers").unwrap(),
        store.usage("b", "servers").unwrap(),
    );
    assert_eq!(
        (a + b) as usize,
        admitted.load(Ordering::Relaxed),
        "every admission written once"
    );
    assert_eq!(a + b, 10, "org's limit is reached exactly, never passed");
    assert!(a <= 8 && b <= 8);
}

fn killed_connection_leaves_no_charge(db: &Db) {
    let mut killer = db.client();
    let mut store = AfterRead::new(db.store(), move |s: &mut PostgresStore, _| {
        let pid: i32 = s
            .client()
            .query_one("SELECT pg_backend_pid()", &[])
            .unwrap()
            .get(0);
        // With a timeout, the call waits until the backend is gone (PostgreSQL 14+).
        killer
            .execute("SELECT pg_terminate_backend($1, 5000)", &[&pid])
            .unwrap();
    });
    storage_error_leaves_no_charge(&mut db.store(), &mut store, "postgres");
}

/// The root's generation row refuses updates (a trigger raises), so the
/// commit fails at the last claim entry, after the others were bumped.
fn failure_at_last_claim_entry_leaves_no_charge(db: &Db) {
    let mut check = db.store();
    check
        .client()
        .batch_execute(
            "CREATE FUNCTION refuse_org() RETURNS trigger AS $$
             BEGIN RAISE EXCEPTION 'org is read-only'; END $$ LANGUAGE plpgsql;
             CREATE TRIGGER refuse_org BEFORE UPDATE ON delimiter_generations
             FOR EACH ROW WHEN (OLD.project_id = 'org') EXECUTE FUNCTION refuse_org();",
        )
        .unwrap();
    storage_error_leaves_no_charge(&mut check, &mut db.store(), "org is read-only");
    check
        .client()
        .batch_execute(
            "DROP TRIGGER refuse_org ON delimiter_generations; DROP FUNCTION refuse_org();",
        )
        .unwrap();
}

fn batch_member_failure_writes_nothing(db: &Db) {
    common::batch_member_failure_writes_nothing(&mut db.store());
}

fn combined_threads_never_overrun(db: &Db) {
    common::combined_threads_never_overrun(|| db.store());
}

fn locked_attempt_after_a_conflict(db: &Db) {
    common::locked_attempt_after_a_conflict(db.store(), db.store());
}

fn uncontended_consume_round_trips(db: &Db) {
    let n = common::uncontended_round_trips(&mut db.store(), PostgresStore::round_trips);
    println!("postgres store: an uncontended consume took {n} round trips");
    assert!(n <= 6, "{n} round trips");
}
