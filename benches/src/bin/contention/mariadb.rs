//! MariaDB: a database of its own per run, the shipped `MariadbStore` for
//! generation-cas, and the two locking strategies' transactions.

use crate::Strategy;
use crate::driver::{
    Attempt, CasWorker, LockingWorker, Outcome, Profile, Transaction, Worker, decide,
};
use crate::workload::{RESOURCES, Size};
use delimiter::sql::{MARIADB_PATH_CTE, mariadb_read_sql, snapshot_from_rows};
use delimiter::{Enforcer, MariadbStore, Request, RetryPolicy};
use mysql::prelude::Queryable;
use mysql::{Conn, IsolationLevel, Opts, OptsBuilder, Statement, TxOpts};
use std::time::Instant;

/// MariaDB's "lost a race, nothing was written" codes.
const ER_LOCK_WAIT_TIMEOUT: u16 = 1205;
const ER_LOCK_DEADLOCK: u16 = 1213;

pub struct My {
    url: String,
    /// `delimiter_bench_<pid>`: beside, never on, anybody else's tables.
    database: String,
}

fn err(context: &str, e: mysql::Error) -> String {
    format!("mariadb {context}: {e}")
}

impl My {
    pub fn new(url: String) -> Self {
        My {
            url,
            database: format!("delimiter_bench_{}", crate::run_id()),
        }
    }

    fn conn(&self, database: Option<&str>) -> Result<Conn, String> {
        let opts = Opts::from_url(&self.url).map_err(|e| format!("mariadb: bad url: {e}"))?;
        Conn::new(OptsBuilder::from_opts(opts).db_name(database)).map_err(|e| err("connect", e))
    }

    /// `SELECT version()`, and how many more connections the server takes.
    pub fn server(&self) -> Result<(String, i64), String> {
        let mut c = self.conn(None)?;
        let version: Option<String> = c
            .query_first("SELECT version()")
            .map_err(|e| err("version", e))?;
        let free: Option<i64> = c
            .query_first(
                "SELECT @@max_connections - (SELECT COUNT(*) FROM information_schema.PROCESSLIST)",
            )
            .map_err(|e| err("max_connections", e))?;
        Ok((version.unwrap_or_default(), free.unwrap_or(0)))
    }

    /// A fresh database: the tree, the limits, and a zero usage row for
    /// every (project, resource), so that every strategy's write is an
    /// UPDATE of an existing row.
    pub fn reset(&self, size: &Size) -> Result<(), String> {
        let mut admin = self.conn(None)?;
        admin
            .query_drop(format!("DROP DATABASE IF EXISTS {}", self.database))
            .map_err(|e| err("reset", e))?;
        admin
            .query_drop(format!(
                "CREATE DATABASE {} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
                self.database
            ))
            .map_err(|e| err("reset", e))?;
        let mut store =
            MariadbStore::from_conn(self.conn(Some(&self.database))?).map_err(|e| e.to_string())?;
        store.create_schema().map_err(|e| e.to_string())?;
        for p in size.projects() {
            store.add_project(&p).map_err(|e| e.to_string())?;
        }
        store
            .set_limits(&size.limits())
            .map_err(|e| e.to_string())?;
        let mut values = Vec::new();
        for p in size.projects() {
            for r in RESOURCES {
                values.push(format!("('{}', '{r}', 0)", p.id));
            }
        }
        store
            .conn()
            .query_drop(format!(
                "INSERT INTO delimiter_usage (project_id, resource, `usage`) VALUES {}",
                values.join(", ")
            ))
            .map_err(|e| err("seed", e))
    }

    pub fn usage_rows(&self) -> Result<Vec<(String, String, i64)>, String> {
        self.conn(Some(&self.database))?
            .query("SELECT project_id, resource, `usage` FROM delimiter_usage")
            .map_err(|e| err("audit", e))
    }

    pub fn drop_all(&self) -> Result<(), String> {
        self.conn(None)?
            .query_drop(format!("DROP DATABASE IF EXISTS {}", self.database))
            .map_err(|e| err("drop", e))
    }

    pub fn worker(
        &self,
        strategy: Strategy,
        policy: RetryPolicy,
        combiner: Option<std::sync::Arc<delimiter::Combiner>>,
    ) -> Result<Box<dyn Worker>, String> {
        let conn = self.conn(Some(&self.database))?;
        Ok(match strategy.kind() {
            Strategy::GenerationCas => Box::new(CasWorker::new(
                MariadbStore::from_conn(conn).map_err(|e| e.to_string())?,
                policy,
                combiner,
            )),
            // For-update, serializable and unguarded (`kind()` is never a
            // patient variant): one locking worker, told which it is.
            _ => Box::new(LockingWorker::new(MyTx::new(conn, strategy)?, policy)),
        })
    }
}

/// The statements of one locking strategy, prepared once per connection.
struct Statements {
    /// for-update only: locks the generation rows of the whole path
    /// (InnoDB locks them as the join reaches them: the same order in
    /// every transaction; a deadlock would still be counted and retried).
    lock: Option<Statement>,
    /// The store's one-statement path read (host-rust/src/stores/mariadb.rs).
    read: Statement,
    add_usage: Statement,
}

/// A row of the one-statement read: (kind, depth, a, b, n), as in the store.
type ReadRow = (i64, i64, Option<String>, Option<String>, Option<i64>);

struct MyTx {
    conn: Conn,
    strategy: Strategy,
    stmts: Statements,
}

enum Fail {
    Db(mysql::Error),
    Other(String),
}

impl From<mysql::Error> for Fail {
    fn from(e: mysql::Error) -> Self {
        Fail::Db(e)
    }
}

impl MyTx {
    fn new(mut conn: Conn, strategy: Strategy) -> Result<Self, String> {
        let mut prep = |sql: String| conn.prep(sql).map_err(|e| err("prepare", e));
        let lock = match strategy {
            Strategy::ForUpdate => Some(prep(format!(
                "{MARIADB_PATH_CTE} SELECT g.project_id
                   FROM path JOIN delimiter_generations g ON g.project_id = path.project_id
                  ORDER BY g.project_id FOR UPDATE"
            ))?),
            _ => None,
        };
        let stmts = Statements {
            lock,
            read: prep(mariadb_read_sql().to_string())?,
            add_usage: prep(
                "UPDATE delimiter_usage SET `usage` = `usage` + ? WHERE project_id = ? AND resource = ?"
                    .into(),
            )?,
        };
        Ok(MyTx {
            conn,
            strategy,
            stmts,
        })
    }

    fn try_attempt(
        &mut self,
        request: &Request,
        enforcer: &mut Enforcer,
        profile: &mut Profile,
    ) -> Result<Outcome, Fail> {
        let s = &self.stmts;
        let t = Instant::now();
        let level = match self.strategy {
            Strategy::Serializable => IsolationLevel::Serializable,
            // Each statement after the locks sees every commit of the
            // transactions that held them before.
            _ => IsolationLevel::ReadCommitted,
        };
        let mut tx = self
            .conn
            .start_transaction(TxOpts::default().set_isolation_level(Some(level)))?;
        let project = request.project.as_str();
        if let Some(lock) = &s.lock {
            tx.exec_drop(lock, (project,))?;
        }
        let rows: Vec<ReadRow> = tx.exec(&s.read, (project, project))?;
        let snapshot = snapshot_from_rows(
            rows.into_iter().map(|(kind, _, a, b, n)| (kind, a, b, n)),
            |r| request.deltas.iter().any(|d| d.resource == r),
        )
        .map_err(|e| Fail::Other(e.to_string()))?;
        profile.read += t.elapsed();

        let refused = decide(enforcer, &snapshot, request, profile).map_err(Fail::Other)?;
        let t = Instant::now();
        if let Some(outcome) = refused {
            tx.rollback()?;
            profile.commit += t.elapsed();
            return Ok(outcome);
        }
        for d in request.deltas.iter().filter(|d| d.delta != 0) {
            tx.exec_drop(&s.add_usage, (d.delta, project, &d.resource))?;
            if tx.affected_rows() != 1 {
                return Err(Fail::Other(format!(
                    "no usage row for {project} {}",
                    d.resource
                )));
            }
        }
        tx.commit()?;
        profile.commit += t.elapsed();
        Ok(Outcome::Admitted)
    }
}

impl Transaction for MyTx {
    fn attempt(
        &mut self,
        request: &Request,
        enforcer: &mut Enforcer,
        profile: &mut Profile,
    ) -> Result<Attempt, String> {
        match self.try_attempt(request, enforcer, profile) {
            Ok(outcome) => Ok(Attempt::Done(outcome)),
            Err(Fail::Db(mysql::Error::MySqlError(e)))
                if e.code == ER_LOCK_DEADLOCK || e.code == ER_LOCK_WAIT_TIMEOUT =>
            {
                Ok(Attempt::Retry)
            }
            Err(Fail::Db(e)) => Err(err(self.strategy.name(), e)),
            Err(Fail::Other(message)) => Err(message),
        }
    }
}
