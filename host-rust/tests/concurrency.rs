//! The concurrency harness: 16 worker processes consume and release random
//! amounts across a nested tree with tight limits on two resources, through
//! the shipped SQLite, PostgreSQL and MariaDB stores, then each database is
//! audited.
//!
//! The audit does not trust the workers:
//! - after every usage write, a trigger installed by the harness records
//!   the subtree usage of every ancestor of the written row, inside the
//!   writing transaction. Every consume that can raise U(a) claims a (a has
//!   a finite limit), so while this transaction holds a's generation no
//!   other raise of U(a) can commit: the recorded value is an upper bound
//!   of U(a) when the transaction commits. `oversubscribed` counts recorded
//!   values above the limit, plus nodes over their limit at the end;
//! - `lost_updates` counts (project, resource) whose final usage differs
//!   from the sum of what the workers saw committed, plus every
//!   (project, generation) that two commits both claimed.
//!
//! A test-only switch (`DELIMITER_HARNESS_CLAIM=project-only`) cuts each
//! claim down to the project alone before the commit; the same run must
//! then oversubscribe a parent, which shows the audit can fail.
//!
//! Prints, per database:
//! `<db>: oversubscribed=0 lost_updates=0 commits=C conflicts=K retries_exhausted=E`.
//! PostgreSQL and MariaDB run when DELIMITER_TEST_POSTGRES_URL and
//! DELIMITER_TEST_MARIADB_URL are set (CI sets both), and say they are
//! skipped otherwise.
//!
//! `galera` runs on a multi-writer MariaDB Galera cluster when
//! DELIMITER_TEST_GALERA_URLS lists its nodes (comma-separated; CI starts
//! one with tools/galera/galera.sh): worker i writes to node i mod n, the
//! audit reads node 1 with `wsrep_sync_wait=1` (a read waits until the node
//! has applied everything committed before it), and every node must hold
//! the same usage and generations. MariaDB runs also print the conflicts by
//! cause, and on Galera what the nodes themselves counted.

use delimiter::*;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

const WORKERS: usize = 16;
const OPS: usize = 30;
const RESOURCES: [&str; 2] = ["servers", "cores"];
const PG_VAR: &str = "DELIMITER_TEST_POSTGRES_URL";
const MY_VAR: &str = "DELIMITER_TEST_MARIADB_URL";
const GALERA_VAR: &str = "DELIMITER_TEST_GALERA_URLS";

/// org > eng > {web, batch}; org > ops > {db, cache}. Every node has a
/// finite limit on both resources, and children over-commit their parents.
fn projects() -> Vec<Project> {
    vec![
        Project::root("org"),
        Project::child("eng", "org"),
        Project::child("web", "eng"),
        Project::child("batch", "eng"),
        Project::child("ops", "org"),
        Project::child("db", "ops"),
        Project::child("cache", "ops"),
    ]
}

fn limits() -> Limits {
    let l = ProjectLimit::new;
    Limits {
        registered: vec![
            RegisteredLimit::new("servers", 5),
            RegisteredLimit::new("cores", 16),
        ],
        project: vec![
            l("org", "servers", 14),
            l("org", "cores", 48),
            l("eng", "servers", 9),
            l("eng", "cores", 30),
            l("ops", "servers", 8),
            l("ops", "cores", 24),
        ],
    }
}

fn limit_of(project: &str, resource: &str) -> i64 {
    limits()
        .limit_of(project, resource)
        .expect("every resource is registered")
}

/// (ancestor, descendant) for every pair, self included: lets the audit
/// trigger sum subtrees without recursion (SQLite allows no CTE in a trigger).
fn closure() -> Vec<(String, String)> {
    let projects = projects();
    let mut pairs = Vec::new();
    for p in &projects {
        let mut at = Some(p.id.clone());
        while let Some(a) = at {
            pairs.push((a.clone(), p.id.clone()));
            at = projects
                .iter()
                .find(|q| q.id == a)
                .and_then(|q| q.parent.clone());
        }
    }
    pairs
}

/// The audit tables and view (every database), then each database's
/// triggers: language-neutral files shared with the Python harness
/// (`conformance/concurrency/`).
const AUDIT_TABLES: &str = include_str!("../../conformance/concurrency/audit.sql");
const AUDIT_SQLITE: &str = include_str!("../../conformance/concurrency/audit-sqlite.sql");
const AUDIT_POSTGRES: &str = include_str!("../../conformance/concurrency/audit-postgres.sql");
const AUDIT_MARIADB: &str = include_str!("../../conformance/concurrency/audit-mariadb.sql");

/// The schema, the tree and the limits, through each store's own calls.
macro_rules! seed {
    ($store:expr) => {{
        $store.create_schema().unwrap();
        for p in projects() {
            $store.add_project(&p).unwrap();
        }
        $store.set_limits(&limits()).unwrap();
    }};
}

#[derive(Clone)]
enum Db {
    Sqlite(String),
    Postgres {
        url: String,
        schema: String,
    },
    /// One server (`urls` has one entry) or the nodes of a Galera cluster.
    Mariadb {
        urls: Vec<String>,
        database: String,
        galera: bool,
    },
}

/// A store the harness can ask for its conflicts by cause (only the
/// MariaDB store counts them).
trait HarnessStore: Store + Send {
    fn causes(&self) -> Option<sql::ConflictCauses> {
        None
    }
}

impl HarnessStore for SqliteStore {}
impl HarnessStore for PostgresStore {}
impl HarnessStore for MariadbStore {
    fn causes(&self) -> Option<sql::ConflictCauses> {
        Some(self.conflict_causes())
    }
}

impl Db {
    fn name(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres { .. } => "postgres",
            Db::Mariadb { galera: false, .. } => "mariadb",
            Db::Mariadb { galera: true, .. } => "galera",
        }
    }

    fn my_conn(url: &str, database: Option<&str>) -> mysql::Conn {
        let opts = mysql::Opts::from_url(url).unwrap();
        let opts = mysql::OptsBuilder::from_opts(opts).db_name(database);
        mysql::Conn::new(opts).unwrap()
    }

    /// A connection for setup and audit, on the first node; on Galera it
    /// reads only after applying every write committed before the read.
    fn audit_conn(&self, database: Option<&str>) -> mysql::Conn {
        use mysql::prelude::Queryable;
        let Db::Mariadb { urls, galera, .. } = self else {
            unreachable!("MariaDB only")
        };
        let mut conn = Db::my_conn(&urls[0], database);
        if *galera {
            conn.query_drop("SET SESSION wsrep_sync_wait = 1").unwrap();
        }
        conn
    }

    /// The usage column, as this database spells it.
    fn usage_column(&self) -> &'static str {
        match self {
            Db::Mariadb { .. } => "`usage`",
            _ => "usage",
        }
    }

    fn pg_client(url: &str, schema: &str) -> postgres::Client {
        let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
        client
            .batch_execute(&format!("SET search_path TO {schema}"))
            .unwrap();
        client
    }

    /// Worker `index`'s store; on Galera, on node `index` mod n.
    fn open(&self, index: usize) -> Box<dyn HarnessStore> {
        match self {
            Db::Sqlite(path) => Box::new(SqliteStore::open(path).unwrap()),
            Db::Postgres { url, schema } => {
                Box::new(PostgresStore::from_client(Db::pg_client(url, schema)).unwrap())
            }
            Db::Mariadb { urls, database, .. } => Box::new(
                MariadbStore::from_conn(Db::my_conn(&urls[index % urls.len()], Some(database)))
                    .unwrap(),
            ),
        }
    }

    /// Fresh tables, the tree, the limits, and the audit trigger.
    fn prepare(&self) {
        let audit = match self {
            Db::Sqlite(_) => AUDIT_SQLITE,
            Db::Postgres { .. } => AUDIT_POSTGRES,
            Db::Mariadb { .. } => AUDIT_MARIADB,
        };
        let mut statements = vec![AUDIT_TABLES.to_string(), audit.to_string()];
        statements.extend(
            closure()
                .iter()
                .map(|(a, d)| format!("INSERT INTO harness_closure VALUES ('{a}', '{d}');")),
        );
        match self {
            Db::Sqlite(path) => {
                let _ = std::fs::remove_file(path);
                let mut store = SqliteStore::open(path).unwrap();
                seed!(store);
                store
                    .connection()
                    .execute_batch(&statements.join("\n"))
                    .unwrap();
            }
            Db::Postgres { url, schema } => {
                let mut admin = postgres::Client::connect(url, postgres::NoTls).unwrap();
                admin
                    .batch_execute(&format!(
                        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
                    ))
                    .unwrap();
                let mut store = PostgresStore::from_client(Db::pg_client(url, schema)).unwrap();
                seed!(store);
                store
                    .client()
                    .batch_execute(&statements.join("\n"))
                    .unwrap();
            }
            Db::Mariadb { database, .. } => {
                use mysql::prelude::Queryable;
                let mut admin = self.audit_conn(None);
                admin
                    .query_drop(format!("DROP DATABASE IF EXISTS {database}"))
                    .unwrap();
                admin
                    .query_drop(format!(
                        "CREATE DATABASE {database} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                    ))
                    .unwrap();
                let mut store = MariadbStore::from_conn(self.audit_conn(Some(database))).unwrap();
                seed!(store);
                // One statement per call, split on a semicolon that ends a
                // line (the audit files' convention: none ends a line inside
                // a statement).
                for statement in statements {
                    for part in statement
                        .split(";\n")
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                    {
                        store.conn().query_drop(part.trim_end_matches(';')).unwrap();
                    }
                }
            }
        }
    }

    /// Runs `sql` (two text columns and a number) and returns the rows.
    fn rows(&self, sql: &str) -> Vec<(String, String, i64)> {
        match self {
            Db::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).unwrap();
                let mut stmt = conn.prepare(sql).unwrap();
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap()
            }
            Db::Postgres { url, schema } => Db::pg_client(url, schema)
                .query(sql, &[])
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect(),
            Db::Mariadb { database, .. } => {
                use mysql::prelude::Queryable;
                self.audit_conn(Some(database)).query(sql).unwrap()
            }
        }
    }

    /// Galera: the nodes whose usage or generations differ from the first
    /// node's (each read after applying everything committed before).
    fn diverged_nodes(&self) -> usize {
        use mysql::prelude::Queryable;
        let Db::Mariadb {
            urls,
            database,
            galera: true,
        } = self
        else {
            return 0;
        };
        let state = |url: &String| {
            let mut conn = Db::my_conn(url, Some(database));
            conn.query_drop("SET SESSION wsrep_sync_wait = 1").unwrap();
            let usage: Vec<(String, String, i64)> = conn
                .query("SELECT project_id, resource, `usage` FROM delimiter_usage ORDER BY 1, 2")
                .unwrap();
            let generations: Vec<(String, i64)> = conn
                .query("SELECT project_id, generation FROM delimiter_generations ORDER BY 1")
                .unwrap();
            (usage, generations)
        };
        let first = state(&urls[0]);
        urls[1..].iter().filter(|url| state(url) != first).count()
    }

    /// Galera: brute-force aborts and certification failures the nodes
    /// counted (status counters, summed over the nodes), to set beside the
    /// store's own counts.
    fn node_counters(&self) -> Option<(u64, u64)> {
        use mysql::prelude::Queryable;
        let Db::Mariadb {
            urls, galera: true, ..
        } = self
        else {
            return None;
        };
        let mut total = (0, 0);
        for url in urls {
            let rows: Vec<(String, u64)> = Db::my_conn(url, None)
                .query("SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_bf_aborts', 'wsrep_local_cert_failures')")
                .unwrap();
            for (name, value) in rows {
                if name.ends_with("bf_aborts") {
                    total.0 += value;
                } else {
                    total.1 += value;
                }
            }
        }
        Some(total)
    }

    fn drop_all(&self) {
        match self {
            Db::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{path}{suffix}"));
                }
            }
            Db::Postgres { url, schema } => {
                let mut admin = postgres::Client::connect(url, postgres::NoTls).unwrap();
                admin
                    .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                    .unwrap();
            }
            Db::Mariadb { database, .. } => {
                use mysql::prelude::Queryable;
                self.audit_conn(None)
                    .query_drop(format!("DROP DATABASE {database}"))
                    .unwrap();
            }
        }
    }
}

/// The store a worker uses: the shipped one, with a pause after each read
/// (a service does work between reading and committing; the pause makes
/// the race window real) and, under the test-only switch, the claim cut
/// down to the project alone.
struct WorkerStore {
    inner: Box<dyn HarnessStore>,
    project_only: bool,
    conflicts: u32,
    /// Every (project, generation) this worker's commits claimed.
    claimed: Vec<(String, u64)>,
}

impl WorkerStore {
    fn cut(&self, claim: &[ClaimEntry]) -> Vec<ClaimEntry> {
        let keep = if self.project_only {
            claim.len().min(1)
        } else {
            claim.len()
        };
        claim[..keep].to_vec()
    }

    fn record(&mut self, claim: &[ClaimEntry], outcome: CommitOutcome) {
        match outcome {
            CommitOutcome::Committed => {
                self.claimed
                    .extend(claim.iter().map(|c| (c.project.clone(), c.generation)));
            }
            _ => self.conflicts += 1,
        }
    }
}

impl Store for WorkerStore {
    fn read(&mut self, project: &str, resources: &[String]) -> Result<Snapshot, StorageError> {
        let snapshot = self.inner.read(project, resources)?;
        std::thread::sleep(Duration::from_micros(300));
        Ok(snapshot)
    }

    fn commit(
        &mut self,
        claim: &[ClaimEntry],
        request: &Request,
    ) -> Result<CommitOutcome, StorageError> {
        let claim = self.cut(claim);
        let outcome = self.inner.commit(&claim, request)?;
        self.record(&claim, outcome);
        Ok(outcome)
    }

    fn backoff(&mut self, _attempt: u32, delay: Duration) {
        std::thread::sleep(delay);
    }

    fn batches(&self) -> bool {
        self.inner.batches()
    }

    fn read_batch(
        &mut self,
        projects: &[String],
        resources: &[String],
    ) -> Result<Snapshot, StorageError> {
        let snapshot = self.inner.read_batch(projects, resources)?;
        std::thread::sleep(Duration::from_micros(300));
        Ok(snapshot)
    }

    /// A batch bumps each claimed generation once, so its union is what
    /// the lost-update check records (members share entries of it).
    fn commit_batch(
        &mut self,
        claim: &[ClaimEntry],
        members: &[Request],
    ) -> Result<BatchOutcome, StorageError> {
        let outcome = self.inner.commit_batch(claim, members)?;
        match &outcome {
            BatchOutcome::Committed => self.record(claim, CommitOutcome::Committed),
            BatchOutcome::Conflict(lost) => self.record(claim, *lost),
            BatchOutcome::MemberFailed(_) => {}
        }
        Ok(outcome)
    }
}

/// One worker (a process, or a thread of the harness sharing `combiner`):
/// consumes and releases, then returns one line per committed request
/// (`commit <project> <resource>=<delta>...`), one per claimed generation
/// (`claimed <project> <generation>`) and a summary.
fn worker(db: &Db, index: u64, project_only: bool, combiner: Option<&Combiner>) -> String {
    let mut store = WorkerStore {
        inner: db.open(index as usize),
        project_only,
        conflicts: 0,
        claimed: Vec::new(),
    };
    let config = Config::new(Model::Nested);
    // The default policy, as a service would use it: a 2 s deadline,
    // jitter drawn per call.
    let policy = RetryPolicy::default();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(index + 1);
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let targets = ["web", "batch", "db", "cache", "eng", "ops"];
    // What this worker itself holds, so that it only releases its own.
    let mut held: BTreeMap<&str, [i64; 2]> = BTreeMap::new();
    let mut out = String::new();
    let (mut refused, mut exhausted, mut trigger_faults) = (0, 0, 0);
    let mut enforcer = Enforcer::new();
    for _ in 0..OPS {
        let project = targets[next(targets.len() as u64) as usize];
        let mine = held.entry(project).or_default();
        let deltas = if next(2) == 0 && mine[0] > 0 {
            let servers = 1 + next(mine[0] as u64) as i64;
            let cores = mine[1] * servers / mine[0];
            [-servers, -cores]
        } else {
            [1 + next(2) as i64, 2 + next(5) as i64]
        };
        let request = Request::new(
            project,
            RESOURCES
                .iter()
                .zip(deltas)
                .map(|(r, d)| Delta::new(*r, d))
                .collect(),
        );
        let result = match combiner {
            Some(combiner) => combiner.consume(&mut enforcer, &mut store, &request),
            None => enforcer.consume(&config, &policy, &mut store, &request),
        };
        match result {
            Ok(_) => {
                let mine = held.get_mut(project).unwrap();
                mine[0] += deltas[0];
                mine[1] += deltas[1];
                out += &format!(
                    "commit {project} servers={} cores={}\n",
                    deltas[0], deltas[1]
                );
            }
            Err(Error::OverLimit { .. }) => refused += 1,
            Err(Error::RetriesExhausted { .. }) => exhausted += 1,
            // MariaDB Galera 10.11 sometimes fails a statement that fires the
            // harness's own audit trigger with a parse error in the trigger's
            // stored body (error 1064, "... has an error in its body"; about
            // 1 run in 40; services have no such trigger). The statement
            // failed inside the transaction, which the store rolls back:
            // nothing was written, as for a refusal. Counted and printed.
            Err(Error::Storage { error, .. })
                if error.message.contains("has an error in its body") =>
            {
                trigger_faults += 1
            }
            Err(other) => panic!("worker {index}: {other}"),
        }
    }
    for (p, g) in &store.claimed {
        out += &format!("claimed {p} {g}\n");
    }
    if let Some(c) = store.inner.causes() {
        out += &format!(
            "causes {} {} {} {} {} {}\n",
            c.generation_miss,
            c.brute_force_abort,
            c.certification_failure,
            c.read_retries,
            c.misreported_commits,
            c.silent_rollbacks
        );
    }
    out += &format!(
        "summary conflicts={} refused={refused} exhausted={exhausted} trigger_faults={trigger_faults}\n",
        store.conflicts
    );
    out
}

#[derive(Debug, Default)]
struct Audit {
    oversubscribed: usize,
    lost_updates: usize,
    commits: usize,
    conflicts: usize,
    retries_exhausted: usize,
    /// Conflicts by cause (MariaDB): generation miss, brute-force abort,
    /// certification failure, reads run again, COMMIT answers the Galera
    /// commit marker corrected, and silent rollbacks it caught.
    causes: Option<[u64; 6]>,
    /// Galera: nodes whose data differ from the first node's.
    diverged: usize,
    /// Galera: (brute-force aborts, certification failures) the nodes
    /// counted during the run.
    node_counted: Option<(u64, u64)>,
    /// Requests a MariaDB Galera node failed in the audit trigger (see
    /// `worker`): written by nobody, printed when there are any.
    trigger_faults: usize,
    /// What each failure found, printed with the report (so a red CI run
    /// says which rows and generations went wrong).
    findings: Vec<String>,
}

/// How the workers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workers {
    /// Processes of this same binary (no combining across them).
    Processes,
    /// Threads of this process sharing one combiner.
    Threads,
}

/// Runs the workers, waits, audits.
fn run(db: &Db, project_only: bool, workers: Workers) -> Audit {
    db.prepare();
    let counters_before = db.node_counters();
    let outputs = match workers {
        Workers::Processes => run_processes(db, project_only),
        Workers::Threads => {
            let combiner = Combiner::new(Config::new(Model::Nested), RetryPolicy::default());
            let outputs = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..WORKERS as u64)
                    .map(|i| {
                        let combiner = &combiner;
                        scope.spawn(move || worker(db, i, project_only, Some(combiner)))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("a worker thread failed"))
                    .collect()
            });
            let stats = combiner.stats();
            println!(
                "{}: threads: {} batches carried {} consumes (mean batch {:.1}), {} alone",
                db.name(),
                stats.batches,
                stats.members,
                stats.members as f64 / stats.batches.max(1) as f64,
                stats.lone
            );
            outputs
        }
    };
    audit(db, outputs, counters_before)
}

/// Starts the workers as processes of this same binary and collects what
/// each printed.
fn run_processes(db: &Db, project_only: bool) -> Vec<String> {
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..WORKERS)
        .map(|i| {
            let mut cmd = Command::new(&exe);
            cmd.env("HARNESS_WORKER", i.to_string())
                .stdout(Stdio::piped());
            match db {
                Db::Sqlite(path) => cmd.env("HARNESS_SQLITE", path),
                Db::Postgres { url, schema } => cmd
                    .env("HARNESS_PG_URL", url)
                    .env("HARNESS_PG_SCHEMA", schema),
                Db::Mariadb {
                    urls,
                    database,
                    galera,
                } => cmd
                    .env("HARNESS_MY_URLS", urls.join(","))
                    .env("HARNESS_MY_DATABASE", database)
                    .env("HARNESS_MY_GALERA", galera.to_string()),
            };
            if project_only {
                cmd.env("DELIMITER_HARNESS_CLAIM", "project-only");
            }
            cmd.spawn().expect("worker starts")
        })
        .collect();

    children
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().unwrap();
            assert!(
                output.status.success(),
                "a worker failed: {}",
                output.status
            );
            String::from_utf8(output.stdout).unwrap()
        })
        .collect()
}

/// Audits the workers' `outputs` against the database.
fn audit(db: &Db, outputs: Vec<String>, counters_before: Option<(u64, u64)>) -> Audit {
    let mut audit = Audit::default();
    let mut committed: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut claimed: BTreeSet<(String, u64)> = BTreeSet::new();
    for output in outputs {
        for line in output.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["commit", project, deltas @ ..] => {
                    audit.commits += 1;
                    for d in deltas {
                        let (r, v) = d.split_once('=').unwrap();
                        *committed
                            .entry((project.to_string(), r.to_string()))
                            .or_default() += v.parse::<i64>().unwrap();
                    }
                }
                ["claimed", project, generation] => {
                    if !claimed.insert((project.to_string(), generation.parse().unwrap())) {
                        audit.lost_updates += 1;
                        audit.findings.push(format!(
                            "generation {generation} of {project} claimed twice"
                        ));
                    }
                }
                ["causes", counts @ ..] => {
                    let sum = audit.causes.get_or_insert([0; 6]);
                    for (total, n) in sum.iter_mut().zip(counts) {
                        *total += n.parse::<u64>().unwrap();
                    }
                }
                ["summary", conflicts, _refused, exhausted, trigger_faults] => {
                    audit.trigger_faults += trigger_faults
                        .trim_start_matches("trigger_faults=")
                        .parse::<usize>()
                        .unwrap();
                    audit.conflicts += conflicts
                        .trim_start_matches("conflicts=")
                        .parse::<usize>()
                        .unwrap();
                    audit.retries_exhausted += exhausted
                        .trim_start_matches("exhausted=")
                        .parse::<usize>()
                        .unwrap();
                }
                _ => panic!("unexpected worker output: {line}"),
            }
        }
    }

    // Every recorded subtree usage, and the final subtree usage of every node.
    let recorded = db.rows("SELECT anchor, resource, total FROM harness_audit");
    // Each commit writes at least one usage row, and each row write records
    // one row per ancestor: an audit that saw nothing is no audit.
    assert!(
        recorded.len() >= audit.commits,
        "the audit trigger recorded {} rows",
        recorded.len()
    );
    for (anchor, resource, usage) in recorded {
        if usage > limit_of(&anchor, &resource) {
            audit.oversubscribed += 1;
            audit.findings.push(format!(
                "a write saw {resource} of {anchor}'s subtree at {usage} (limit {})",
                limit_of(&anchor, &resource)
            ));
        }
    }
    let finals = db.rows(&format!(
        "SELECT project_id, resource, {} FROM delimiter_usage",
        db.usage_column()
    ));
    for anchor in projects().into_iter().map(|p| p.id) {
        for r in RESOURCES {
            let subtree: i64 = closure()
                .iter()
                .filter(|(a, _)| *a == anchor)
                .map(|(_, d)| {
                    finals
                        .iter()
                        .filter(|(p, res, _)| p == d && res == r)
                        .map(|f| f.2)
                        .sum::<i64>()
                })
                .sum();
            if subtree > limit_of(&anchor, r) {
                audit.oversubscribed += 1;
                audit.findings.push(format!(
                    "{r} of {anchor}'s subtree ends at {subtree} (limit {})",
                    limit_of(&anchor, r)
                ));
            }
        }
    }
    let stored: BTreeMap<(String, String), i64> = finals
        .into_iter()
        .filter(|f| f.2 != 0)
        .map(|(p, r, u)| ((p, r), u))
        .collect();
    committed.retain(|_, v| *v != 0);
    for key in stored
        .keys()
        .chain(committed.keys())
        .collect::<BTreeSet<_>>()
    {
        let (s, c) = (stored.get(key), committed.get(key));
        if s != c {
            audit.lost_updates += 1;
            audit.findings.push(format!(
                "{} of {} stored {} but the workers committed {}",
                key.1,
                key.0,
                s.copied().unwrap_or(0),
                c.copied().unwrap_or(0)
            ));
        }
    }
    audit.diverged = db.diverged_nodes();
    if let (Some(before), Some(after)) = (counters_before, db.node_counters()) {
        audit.node_counted = Some((after.0 - before.0, after.1 - before.1));
    }
    db.drop_all();
    audit
}

fn report(db: &Db, workers: Workers, audit: &Audit) {
    println!(
        "{}{}: oversubscribed={} lost_updates={} commits={} conflicts={} retries_exhausted={}",
        db.name(),
        if workers == Workers::Threads {
            " threads"
        } else {
            ""
        },
        audit.oversubscribed,
        audit.lost_updates,
        audit.commits,
        audit.conflicts,
        audit.retries_exhausted
    );
    if audit.trigger_faults > 0 {
        println!(
            "{}: {} requests failed in the harness's audit trigger and wrote nothing",
            db.name(),
            audit.trigger_faults
        );
    }
    for finding in audit.findings.iter().take(20) {
        println!("{}: FOUND: {finding}", db.name());
    }
    if let Some([miss, abort, certification, reads, misreported, silent]) = audit.causes {
        print!(
            "{}: conflicts by cause: generation_miss={miss} brute_force_abort={abort} \
             certification_failure={certification} (reads run again: {reads}; \
             silent rollbacks the marker caught: {silent}; COMMIT answers it corrected: {misreported})",
            db.name()
        );
        match audit.node_counted {
            Some((bf, cert)) => println!(
                "; the nodes counted wsrep_local_bf_aborts={bf} wsrep_local_cert_failures={cert}"
            ),
            None => println!(),
        }
    }
    if let Db::Mariadb { galera: true, .. } = db {
        println!(
            "{}: usage and generations identical on all nodes: {}",
            db.name(),
            audit.diverged == 0
        );
    }
}

fn main() {
    if let Ok(index) = std::env::var("HARNESS_WORKER") {
        let var = |name: &str| std::env::var(name).ok();
        let db = if let Some(path) = var("HARNESS_SQLITE") {
            Db::Sqlite(path)
        } else if let Some(url) = var("HARNESS_PG_URL") {
            Db::Postgres {
                url,
                schema: var("HARNESS_PG_SCHEMA").unwrap(),
            }
        } else if let Some(urls) = var("HARNESS_MY_URLS") {
            Db::Mariadb {
                urls: urls.split(',').map(str::to_string).collect(),
                database: var("HARNESS_MY_DATABASE").unwrap(),
                galera: var("HARNESS_MY_GALERA").as_deref() == Some("true"),
            }
        } else {
            panic!("worker without a database")
        };
        let project_only =
            std::env::var("DELIMITER_HARNESS_CLAIM").as_deref() == Ok("project-only");
        let out = worker(&db, index.parse().unwrap(), project_only, None);
        std::io::stdout().write_all(out.as_bytes()).unwrap();
        return;
    }

    let mut dbs = vec![Db::Sqlite(
        std::env::temp_dir()
            .join(format!("delimiter-harness-{}.sqlite", std::process::id()))
            .display()
            .to_string(),
    )];
    match std::env::var(PG_VAR) {
        Ok(url) => dbs.push(Db::Postgres {
            url,
            schema: format!("delimiter_harness_{}", std::process::id()),
        }),
        Err(_) => println!("postgres: skipped ({PG_VAR} not set)"),
    }
    match std::env::var(MY_VAR) {
        Ok(url) => dbs.push(Db::Mariadb {
            urls: vec![url],
            database: format!("delimiter_harness_{}", std::process::id()),
            galera: false,
        }),
        Err(_) => println!("mariadb: skipped ({MY_VAR} not set)"),
    }
    match std::env::var(GALERA_VAR) {
        Ok(urls) => dbs.push(Db::Mariadb {
            urls: urls.split(',').map(|u| u.trim().to_string()).collect(),
            database: format!("delimiter_harness_{}", std::process::id()),
            galera: true,
        }),
        Err(_) => println!("galera: skipped ({GALERA_VAR} not set)"),
    }
    let mut failed = false;
    for db in &dbs {
        for workers in [Workers::Processes, Workers::Threads] {
            let audit = run(db, false, workers);
            report(db, workers, &audit);
            failed |= audit.oversubscribed > 0
                || audit.lost_updates > 0
                || audit.commits == 0
                || audit.diverged > 0;
        }

        // The same run with the claim cut down to the project must be caught
        // oversubscribing; a few tries, since a race may by chance not happen.
        let caught = (0..5).any(|_| run(db, true, Workers::Processes).oversubscribed > 0);
        println!(
            "{}: with the claim cut down to the project alone, oversubscription caught: {caught}",
            db.name()
        );
        failed |= !caught;
    }
    if failed {
        std::process::exit(1);
    }
}
