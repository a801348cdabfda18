//! MariadbStore against a real MariaDB server, at the address in
//! DELIMITER_TEST_MARIADB_URL (CI sets it). Without it the checks are
//! skipped, and the output says so (a plain test binary, harness = false).
//! The concurrency harness (tests/concurrency.rs) covers MariaDB under load;
//! these are the rollback cases.

mod common;

use common::*;
use delimiter::*;
use mysql::prelude::Queryable;
use mysql::{Conn, Opts, OptsBuilder};

const URL_VAR: &str = "DELIMITER_TEST_MARIADB_URL";

/// One named check, run on a fresh database.
type Check = (&'static str, fn(&Db));

fn main() {
    let Ok(url) = std::env::var(URL_VAR) else {
        println!("mariadb store: skipped ({URL_VAR} not set)");
        return;
    };
    let db = Db {
        url,
        database: format!("delimiter_test_{}", std::process::id()),
    };
    let checks: [Check; 9] = [
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
        db.reset();
        check(&db);
        println!("mariadb store: ok: {name}");
    }
    db.conn(None)
        .query_drop(format!("DROP DATABASE {}", db.database))
        .unwrap();
    println!("mariadb store: {} checks passed", checks.len());
}

struct Db {
    url: String,
    database: String,
}

impl Db {
    fn conn(&self, database: Option<&str>) -> Conn {
        let opts = OptsBuilder::from_opts(Opts::from_url(&self.url).unwrap()).db_name(database);
        Conn::new(opts).unwrap()
    }

    fn store(&self) -> MariadbStore {
        MariadbStore::from_conn(self.conn(Some(&self.database))).unwrap()
    }

    /// A fresh database with the fixture tree and limits.
    fn reset(&self) {
        let mut admin = self.conn(None);
        admin
            .query_drop(format!("DROP DATABASE IF EXISTS {}", self.database))
            .unwrap();
        admin
            .query_drop(format!("CREATE DATABASE {}", self.database))
            .unwrap();
        let mut store = self.store();
        store.create_schema().unwrap();
        store.seed();
    }
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

fn killed_connection_leaves_no_charge(db: &Db) {
    let mut killer = db.conn(None);
    let mut store = AfterRead::new(db.store(), move |s: &mut MariadbStore, _| {
        let id = s.conn().connection_id();
        killer.query_drop(format!("KILL CONNECTION {id}")).unwrap();
    });
    storage_error_leaves_no_charge(&mut db.store(), &mut store, "mariadb");
}

/// The root's generation row refuses updates (a trigger signals an error),
/// so the commit fails at the last claim entry, after the others were bumped.
fn failure_at_last_claim_entry_leaves_no_charge(db: &Db) {
    let mut check = db.store();
    check
        .conn()
        .query_drop(
            "CREATE TRIGGER refuse_org BEFORE UPDATE ON delimiter_generations FOR EACH ROW
             IF OLD.project_id = 'org' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'org is read-only'; END IF",
        )
        .unwrap();
    storage_error_leaves_no_charge(&mut check, &mut db.store(), "org is read-only");
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
    let mut store = db.store();
    // One server: no Galera commit marker (its check is a round trip more).
    assert!(!store.is_galera());
    let n = common::uncontended_round_trips(&mut store, MariadbStore::round_trips);
    println!("mariadb store: an uncontended consume took {n} round trips");
    assert!(n <= 6, "{n} round trips");
}
