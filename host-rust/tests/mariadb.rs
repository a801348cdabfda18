//! MariadbStore against a real MariaDB server, at the address in
//! DELIMITER_TEST_MARIADB_URL (CI sets it). Without it the checks are
//! skipped, and the output says so (a plain test binary, harness = false).
//! The concurrency harness (tests/concurrency.rs) covers MariaDB under load;
//! these are the rollback cases.

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
    let checks: [Check; 4] = [
        (
            "admits, commits, refuses and releases on path usage",
            admits_commits_refuses,
        ),
        (
            "a stale generation rolls the whole commit back",
            stale_generation_writes_nothing,
        ),
        (
            "a connection killed between read and commit leaves no charge",
            killed_connection_leaves_no_charge,
        ),
        (
            "a storage error at the last claim entry leaves no charge",
            failure_at_last_claim_entry_leaves_no_charge,
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

    /// A fresh database with org (10 servers) > team (unlimited) > {a, b}.
    fn reset(&self) {
        let mut admin = self.conn(None);
        admin
            .query_drop(format!("DROP DATABASE IF EXISTS {}", self.database))
            .unwrap();
        admin
            .query_drop(format!("CREATE DATABASE {}", self.database))
            .unwrap();
        let mut store = self.store();
        for p in [
            Project::root("org"),
            Project::child("team", "org"),
            Project::child("a", "team"),
            Project::child("b", "team"),
        ] {
            store.add_project(&p).unwrap();
        }
        store
            .set_limits(&Limits {
                registered: vec![RegisteredLimit::new("servers", 8)],
                project: vec![
                    ProjectLimit::new("org", "servers", 10),
                    ProjectLimit::new("team", "servers", UNLIMITED),
                ],
            })
            .unwrap();
    }
}

fn servers(project: &str, n: i64) -> Request {
    Request::new(project, vec![Delta::new("servers", n)])
}

fn config() -> Config {
    Config::new(Model::Nested)
}

fn quick() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 50,
        base_delay_us: 50,
        max_delay_us: 2_000,
        seed: 7,
    }
}

fn generations(store: &mut MariadbStore) -> Vec<Option<u64>> {
    ["a", "team", "org"]
        .iter()
        .map(|p| store.generation(p).unwrap())
        .collect()
}

fn admits_commits_refuses(db: &Db) {
    let mut store = db.store();
    consume(&config(), &quick(), &mut store, &servers("a", 6)).unwrap();
    let done = consume(&config(), &quick(), &mut store, &servers("b", 3)).unwrap();
    assert_eq!(
        done.claim
            .iter()
            .map(|c| c.project.as_str())
            .collect::<Vec<_>>(),
        ["b", "org"]
    );
    let err = consume(&config(), &quick(), &mut store, &servers("b", 2)).unwrap_err();
    assert!(
        matches!(&err, Error::OverLimit { violations, .. } if violations[0].project == "org"),
        "{err:?}"
    );
    consume(&config(), &quick(), &mut store, &servers("b", -3)).unwrap();
    assert_eq!(
        (
            store.usage("a", "servers").unwrap(),
            store.usage("b", "servers").unwrap()
        ),
        (6, 0)
    );
    // Ids are case-sensitive, as everywhere else (binary collation).
    let err = consume(&config(), &quick(), &mut store, &servers("A", 1)).unwrap_err();
    assert_eq!(
        err,
        Error::Invalid(InvalidInput::UnknownProject {
            project: "A".into()
        })
    );
}

fn stale_generation_writes_nothing(db: &Db) {
    let mut store = db.store();
    let g_a = store.generation("a").unwrap().unwrap();
    let g_org = store.generation("org").unwrap().unwrap();
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
    assert_eq!(
        store.generation("a").unwrap(),
        Some(g_a),
        "a's bump rolled back with the rest"
    );
    assert_eq!(store.usage("a", "servers").unwrap(), 0);
}

/// Reads, then has its own server connection killed before the commit.
struct KilledAfterRead {
    inner: MariadbStore,
    killer: Conn,
}

impl Store for KilledAfterRead {
    fn read(&mut self, project: &str, resources: &[String]) -> Result<Snapshot, StorageError> {
        let snapshot = self.inner.read(project, resources)?;
        let id = self.inner.conn().connection_id();
        // KILL returns once the connection is marked; its next statement fails.
        self.killer
            .query_drop(format!("KILL CONNECTION {id}"))
            .unwrap();
        Ok(snapshot)
    }

    fn commit(
        &mut self,
        claim: &[ClaimEntry],
        request: &Request,
    ) -> Result<CommitOutcome, StorageError> {
        self.inner.commit(claim, request)
    }
}

fn killed_connection_leaves_no_charge(db: &Db) {
    let mut check = db.store();
    let before = generations(&mut check);
    let mut store = KilledAfterRead {
        inner: db.store(),
        killer: db.conn(None),
    };
    let err = consume(&config(), &quick(), &mut store, &servers("a", 2)).unwrap_err();
    assert!(matches!(err, Error::Storage { attempts: 1, .. }), "{err:?}");
    assert_eq!(before, generations(&mut check), "no generation moved");
    assert_eq!(check.usage("a", "servers").unwrap(), 0, "no usage written");
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
    let before = generations(&mut check);
    let err = consume(&config(), &quick(), &mut db.store(), &servers("a", 2)).unwrap_err();
    assert!(
        matches!(&err, Error::Storage { message, .. } if message.contains("org is read-only")),
        "{err:?}"
    );
    assert_eq!(
        before,
        generations(&mut check),
        "a's bump rolled back with the failed one"
    );
    assert_eq!(check.usage("a", "servers").unwrap(), 0, "no usage written");
}
