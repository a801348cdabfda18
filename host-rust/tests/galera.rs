//! MariadbStore on a three-node MariaDB Galera cluster, at the addresses in
//! DELIMITER_TEST_GALERA_URLS (comma-separated; `tools/galera/galera.sh up`
//! starts one and `env` prints the variable). Without it the checks are
//! skipped, and the output says so (a plain test binary, harness = false).
//! The concurrency harness (tests/concurrency.rs) covers the cluster under
//! load; these are the faults only a cluster shows.

mod common;

use common::*;
use delimiter::*;
use mysql::prelude::Queryable;
use mysql::{Conn, Opts, OptsBuilder};
use std::time::{Duration, Instant};

const URLS_VAR: &str = "DELIMITER_TEST_GALERA_URLS";

/// One named check, run on a fresh database.
type Check = (&'static str, fn(&Cluster));

fn main() {
    let urls: Vec<String> = std::env::var(URLS_VAR)
        .unwrap_or_default()
        .split(',')
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .collect();
    if urls.len() < 3 {
        println!("galera store: skipped ({URLS_VAR} not set to three nodes)");
        return;
    }
    let cluster = Cluster {
        urls,
        database: format!("delimiter_galera_{}", std::process::id()),
    };
    let checks: [Check; 5] = [
        (
            "connecting runs no DDL and needs no CREATE privilege",
            connect_runs_no_ddl,
        ),
        (
            "a node cut off between read and commit: a storage error, nothing written",
            isolated_node_writes_nothing,
        ),
        (
            "a read aborted by a DDL run on another node is run again",
            read_survives_online_ddl,
        ),
        (
            "a commit's marker holds the seq of the connection's last commit that took effect",
            commit_marker_follows_commits,
        ),
        (
            "a batch member whose rows fail is found under the marker and nothing is written",
            batch_member_failure_writes_nothing,
        ),
    ];
    for (name, check) in checks {
        cluster.reset();
        check(&cluster);
        println!("galera store: ok: {name}");
    }
    cluster
        .conn(0, None)
        .query_drop(format!("DROP DATABASE {}", cluster.database))
        .unwrap();
    println!("galera store: {} checks passed", checks.len());
}

struct Cluster {
    urls: Vec<String>,
    database: String,
}

impl Cluster {
    fn opts(&self, node: usize, database: Option<&str>) -> OptsBuilder {
        OptsBuilder::from_opts(Opts::from_url(&self.urls[node]).unwrap()).db_name(database)
    }

    fn conn(&self, node: usize, database: Option<&str>) -> Conn {
        Conn::new(self.opts(node, database)).unwrap()
    }

    /// A store on `node` whose reads first wait until the node applied
    /// every write committed anywhere before them (for checking).
    fn synced_store(&self, node: usize) -> MariadbStore {
        let mut conn = self.conn(node, None);
        conn.query_drop("SET SESSION wsrep_sync_wait = 1").unwrap();
        conn.query_drop("SELECT 1").unwrap(); // waits: the database arrives
        conn.query_drop(format!("USE {}", self.database)).unwrap();
        MariadbStore::from_conn(conn).unwrap()
    }

    /// A fresh database with the fixture tree and limits, on node 1.
    fn reset(&self) {
        let mut admin = self.conn(0, None);
        admin
            .query_drop(format!("DROP DATABASE IF EXISTS {}", self.database))
            .unwrap();
        admin
            .query_drop(format!(
                "CREATE DATABASE {} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
                self.database
            ))
            .unwrap();
        let mut store = MariadbStore::from_conn(self.conn(0, Some(&self.database))).unwrap();
        store.create_schema().unwrap();
        store.seed();
    }
}

fn last_committed(conn: &mut Conn) -> u64 {
    let row: Option<(String, u64)> = conn
        .query_first("SHOW STATUS LIKE 'wsrep_last_committed'")
        .unwrap();
    row.unwrap().1
}

/// Every DDL on Galera is a cluster-wide operation that moves the cluster's
/// sequence number; a service account connects (on every node) and
/// consumes with no more than SELECT, INSERT and UPDATE.
fn connect_runs_no_ddl(cluster: &Cluster) {
    let user = format!("delimiter_svc_{}", std::process::id());
    let mut admin = cluster.conn(0, None);
    admin
        .query_drop(format!("DROP USER IF EXISTS '{user}'@'127.0.0.1'"))
        .unwrap();
    admin
        .query_drop(format!("CREATE USER '{user}'@'127.0.0.1'"))
        .unwrap();
    admin
        .query_drop(format!(
            "GRANT SELECT, INSERT, UPDATE ON {}.* TO '{user}'@'127.0.0.1'",
            cluster.database
        ))
        .unwrap();
    let _ = cluster.synced_store(2); // the grant has reached every node
    let before = last_committed(&mut admin);
    let mut admitted = 0;
    for node in 0..3 {
        let opts = cluster
            .opts(node, Some(&cluster.database))
            .user(Some(user.clone()))
            .pass(None::<String>);
        let mut store = MariadbStore::from_conn(Conn::new(opts).unwrap())
            .unwrap_or_else(|e| panic!("node {}: {e}", node + 1));
        consume(&config(), &quick(), &mut store, &servers("a", 1))
            .unwrap_or_else(|e| panic!("node {}: {e:?}", node + 1));
        admitted += 1;
    }
    let _ = cluster.synced_store(0).usage_of("a", "servers");
    let after = last_committed(&mut admin);
    // One write set per commit; connecting replicated nothing.
    assert_eq!(after - before, admitted, "sequence numbers used");
    assert_eq!(cluster.synced_store(0).usage_of("a", "servers"), 3);
    admin
        .query_drop(format!("DROP USER '{user}'@'127.0.0.1'"))
        .unwrap();
}

/// Cuts `conn`'s node off the cluster (`gmcast.isolate`), or lets it back,
/// and waits until the node sees itself outside the primary component, or
/// Synced in a cluster of three. `conn` must be open before: a node outside
/// the primary component refuses the queries a new connection runs.
fn isolate(conn: &mut Conn, on: bool) {
    conn.query_drop(format!(
        "SET GLOBAL wsrep_provider_options = 'gmcast.isolate={}'",
        u8::from(on)
    ))
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut status = Vec::new();
    while Instant::now() < deadline {
        status = conn
            .query::<(String, String), _>(
                "SHOW STATUS WHERE Variable_name IN
                 ('wsrep_cluster_status', 'wsrep_cluster_size', 'wsrep_local_state_comment')",
            )
            .unwrap();
        let get = |name: &str| {
            status
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let done = if on {
            get("wsrep_cluster_status") != Some("Primary")
        } else {
            get("wsrep_cluster_size") == Some("3")
                && get("wsrep_local_state_comment") == Some("Synced")
        };
        if done {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("node did not change membership in 60 s: {status:?}");
}

/// A consume on node 3, which leaves the cluster between the read and the
/// commit: the commit fails with 1047 (a storage error, not a conflict to
/// retry), the rest of the cluster holds nothing of it, and neither does
/// node 3 once it is back.
fn isolated_node_writes_nothing(cluster: &Cluster) {
    let mut check = cluster.synced_store(0);
    let on_node3 = cluster.synced_store(2);
    // Opened now: an isolated node refuses a new connection's setup queries.
    let control = std::rc::Rc::new(std::cell::RefCell::new(cluster.conn(2, None)));
    let cut = control.clone();
    let mut store = AfterRead::new(on_node3, move |_: &mut MariadbStore, reads| {
        if reads == 1 {
            isolate(&mut cut.borrow_mut(), true);
        }
    });
    storage_error_leaves_no_charge(&mut check, &mut store, "WSREP");
    isolate(&mut control.borrow_mut(), false);
    let mut node3 = cluster.synced_store(2);
    assert_eq!(node3.path_generations(), check.path_generations());
    assert_eq!(node3.usage_of("a", "servers"), 0);
}

/// A replicated DDL aborts a statement running on a table it alters (1213)
/// where one server would make the DDL wait. The read is one statement, so
/// it must be running when the DDL arrives: a wide tree (org has thousands
/// of children) makes it take long enough, and the DDL is sent a third of
/// the way into it, a few times until one overlaps.
fn read_survives_online_ddl(cluster: &Cluster) {
    const CHILDREN: u32 = 30_000;
    let mut admin = cluster.conn(0, Some(&cluster.database));
    for sql in [
        format!(
            "INSERT INTO delimiter_projects SELECT CONCAT('p', seq), 'org' FROM seq_1_to_{CHILDREN}"
        ),
        format!(
            "INSERT INTO delimiter_generations SELECT CONCAT('p', seq), 1 FROM seq_1_to_{CHILDREN}"
        ),
        format!(
            "INSERT INTO delimiter_usage SELECT CONCAT('p', seq), 'servers', 0 FROM seq_1_to_{CHILDREN}"
        ),
    ] {
        admin.query_drop(sql).unwrap();
    }
    let mut store = MariadbStore::from_conn(cluster.conn(0, Some(&cluster.database))).unwrap();
    let mut resources = ["servers".to_string()];
    let began = Instant::now();
    store.read("a", &resources).unwrap();
    let took = began.elapsed();
    let mut ddl = cluster.conn(1, Some(&cluster.database));
    for attempt in 0..10 {
        let reader = std::thread::spawn(move || {
            let snapshot = store.read("a", &resources);
            (store, resources, snapshot)
        });
        std::thread::sleep(took / 3);
        ddl.query_drop(format!(
            "ALTER TABLE delimiter_generations COMMENT = 'migration {attempt}'"
        ))
        .unwrap();
        let snapshot;
        (store, resources, snapshot) = reader.join().unwrap();
        let snapshot = snapshot.unwrap_or_else(|e| panic!("read {attempt}: {e}"));
        assert_eq!(snapshot.projects.len(), 3, "a, team, org");
        if store.conflict_causes().read_retries > 0 {
            return;
        }
    }
    panic!("no DDL overlapped a read in 10 tries (a read takes {took:?}): nothing was tested");
}

/// The store knows it is on Galera; each commit sets its connection's
/// marker row to a new `seq` inside the transaction, so the row holds the
/// seq of the last commit that took effect (a conflict's rolls back), which
/// is what the store reads back after COMMIT. No locked attempt is taken:
/// FOR UPDATE would lock one node only.
fn commit_marker_follows_commits(cluster: &Cluster) {
    let mut store = cluster.synced_store(0);
    assert!(store.is_galera());
    let marker_seqs = |store: &mut MariadbStore| -> Vec<u64> {
        store
            .conn()
            .query("SELECT seq FROM delimiter_commit_markers")
            .unwrap()
    };
    assert_eq!(marker_seqs(&mut store), Vec::<u64>::new());
    let done = consume(&config(), &quick(), &mut store, &servers("a", 1)).unwrap();
    assert_eq!(done.attempts, 1);
    assert_eq!(marker_seqs(&mut store), vec![1]);
    // A stale claim: rolled back, marker and all.
    let g_a = store.generation("a").unwrap().unwrap();
    let stale = [ClaimEntry {
        project: "a".into(),
        generation: g_a - 1,
    }];
    let outcome = store.commit(&stale, &servers("a", 1)).unwrap();
    assert_ne!(outcome, CommitOutcome::Committed);
    assert_eq!(marker_seqs(&mut store), vec![1]);
    consume(&config(), &quick(), &mut store, &servers("a", 1)).unwrap();
    assert_eq!(marker_seqs(&mut store), vec![3], "seq 2 was the conflict's");
    assert_eq!(store.usage_of("a", "servers"), 2);
    assert!(
        store
            .read_locked("a", &["servers".to_string()])
            .unwrap()
            .is_none(),
        "no locked attempt on Galera"
    );
    // A second connection has a marker of its own.
    let mut other = cluster.synced_store(1);
    consume(&config(), &quick(), &mut other, &servers("a", 1)).unwrap();
    let mut seqs = marker_seqs(&mut cluster.synced_store(0));
    seqs.sort();
    assert_eq!(seqs, vec![1, 3]);
    // The read, START TRANSACTION with the statements, COMMIT, the check.
    let n = common::uncontended_round_trips(&mut store, MariadbStore::round_trips);
    assert_eq!(n, 4, "round trips of an uncontended consume on Galera");
}

/// The search for a batch's failing member runs marked as a commit (its
/// writes guarded): the member is named and nothing is written.
fn batch_member_failure_writes_nothing(cluster: &Cluster) {
    common::batch_member_failure_writes_nothing(&mut cluster.synced_store(0));
}
