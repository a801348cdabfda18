//! PostgreSQL: a schema of its own per run, the shipped `PostgresStore` for
//! generation-cas, and the two locking strategies' transactions.

use crate::Strategy;
use crate::driver::{
    Attempt, CasWorker, LockingWorker, Outcome, Profile, Transaction, Worker, decide,
};
use crate::workload::{RESOURCES, Size};
use delimiter::sql::{PATH_CTE, postgres_read_sql, snapshot_from_rows};
use delimiter::{Enforcer, PostgresStore, Request, RetryPolicy};
use postgres::error::SqlState;
use postgres::{Client, IsolationLevel, NoTls, Statement};
use std::time::Instant;

pub struct Pg {
    url: String,
    /// `delimiter_bench_<pid>`: beside, never on, anybody else's tables.
    schema: String,
}

fn err(context: &str, e: postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!(
            "postgres {context}: {} ({})",
            db.message(),
            db.code().code()
        ),
        None => format!("postgres {context}: {e}"),
    }
}

impl Pg {
    pub fn new(url: String) -> Self {
        Pg {
            url,
            schema: format!("delimiter_bench_{}", crate::run_id()),
        }
    }

    fn admin(&self) -> Result<Client, String> {
        Client::connect(&self.url, NoTls).map_err(|e| err("connect", e))
    }

    fn client(&self) -> Result<Client, String> {
        let mut client = self.admin()?;
        client
            .batch_execute(&format!("SET search_path TO {}", self.schema))
            .map_err(|e| err("search_path", e))?;
        Ok(client)
    }

    /// `SELECT version()`, and how many more connections the server takes.
    pub fn server(&self) -> Result<(String, i64), String> {
        let mut c = self.admin()?;
        let version: String = c
            .query_one("SELECT version()", &[])
            .map_err(|e| err("version", e))?
            .get(0);
        let free: i64 = c
            .query_one(
                "SELECT current_setting('max_connections')::bigint
                      - (SELECT count(*) FROM pg_stat_activity)",
                &[],
            )
            .map_err(|e| err("max_connections", e))?
            .get(0);
        Ok((version, free))
    }

    /// Fresh tables in a fresh schema: the tree, the limits, and a zero
    /// usage row for every (project, resource), so that every strategy's
    /// write is an UPDATE of an existing row.
    pub fn reset(&self, size: &Size) -> Result<(), String> {
        self.admin()?
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {s} CASCADE; CREATE SCHEMA {s}",
                s = self.schema
            ))
            .map_err(|e| err("reset", e))?;
        let mut store = PostgresStore::from_client(self.client()?).map_err(|e| e.to_string())?;
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
            .client()
            .batch_execute(&format!(
                "INSERT INTO delimiter_usage (project_id, resource, usage) VALUES {}; ANALYZE",
                values.join(", ")
            ))
            .map_err(|e| err("seed", e))
    }

    pub fn usage_rows(&self) -> Result<Vec<(String, String, i64)>, String> {
        Ok(self
            .client()?
            .query(
                "SELECT project_id, resource, usage FROM delimiter_usage",
                &[],
            )
            .map_err(|e| err("audit", e))?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    pub fn drop_all(&self) -> Result<(), String> {
        self.admin()?
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
            .map_err(|e| err("drop", e))
    }

    pub fn worker(
        &self,
        strategy: Strategy,
        policy: RetryPolicy,
        combiner: Option<std::sync::Arc<delimiter::Combiner>>,
    ) -> Result<Box<dyn Worker>, String> {
        let client = self.client()?;
        Ok(match strategy.kind() {
            Strategy::GenerationCas => Box::new(CasWorker::new(
                PostgresStore::from_client(client).map_err(|e| e.to_string())?,
                policy,
                combiner,
            )),
            // For-update, serializable and unguarded (`kind()` is never a
            // patient variant): one locking worker, told which it is.
            _ => Box::new(LockingWorker::new(PgTx::new(client, strategy)?, policy)),
        })
    }
}

/// The statements of one locking strategy, prepared once per connection.
struct Statements {
    /// for-update only: locks the generation rows of the whole path, in
    /// project id order (PostgreSQL locks the rows as the sort emits them;
    /// one order for every transaction, so no deadlock).
    lock: Option<Statement>,
    /// The store's one-statement path read (host-rust/src/stores/postgres.rs).
    read: Statement,
    add_usage: Statement,
}

struct PgTx {
    client: Client,
    strategy: Strategy,
    stmts: Statements,
}

/// A failed attempt: a lost race the database detected, or anything else.
enum Fail {
    Db(postgres::Error),
    Other(String),
}

impl From<postgres::Error> for Fail {
    fn from(e: postgres::Error) -> Self {
        Fail::Db(e)
    }
}

impl PgTx {
    fn new(mut client: Client, strategy: Strategy) -> Result<Self, String> {
        let mut prepare = |sql: &str| client.prepare(sql).map_err(|e| err("prepare", e));
        let lock = match strategy {
            Strategy::ForUpdate => Some(prepare(&format!(
                "{PATH_CTE} SELECT g.project_id
                   FROM path JOIN delimiter_generations g ON g.project_id = path.project_id
                  ORDER BY g.project_id FOR UPDATE OF g"
            ))?),
            _ => None,
        };
        let stmts = Statements {
            lock,
            read: prepare(&postgres_read_sql())?,
            add_usage: prepare(
                "UPDATE delimiter_usage SET usage = usage + $3 WHERE project_id = $1 AND resource = $2",
            )?,
        };
        Ok(PgTx {
            client,
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
            .client
            .build_transaction()
            .isolation_level(level)
            .start()?;
        let project = &request.project;
        let wanted: Vec<&str> = request.deltas.iter().map(|d| d.resource.as_str()).collect();
        if let Some(lock) = &s.lock {
            tx.query(lock, &[project])?;
        }
        let rows = tx.query(&s.read, &[project, &wanted])?;
        let snapshot = snapshot_from_rows(
            rows.iter()
                .map(|r| (i64::from(r.get::<_, i32>(0)), r.get(2), r.get(3), r.get(4))),
            |r| wanted.contains(&r),
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
            if tx.execute(&s.add_usage, &[project, &d.resource, &d.delta])? != 1 {
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

impl Transaction for PgTx {
    fn attempt(
        &mut self,
        request: &Request,
        enforcer: &mut Enforcer,
        profile: &mut Profile,
    ) -> Result<Attempt, String> {
        match self.try_attempt(request, enforcer, profile) {
            Ok(outcome) => Ok(Attempt::Done(outcome)),
            Err(Fail::Db(e))
                if matches!(e.code(), Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
                    || *c == SqlState::T_R_DEADLOCK_DETECTED) =>
            {
                Ok(Attempt::Retry)
            }
            Err(Fail::Db(e)) => Err(err(self.strategy.name(), e)),
            Err(Fail::Other(message)) => Err(message),
        }
    }
}
