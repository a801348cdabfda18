//! A PostgreSQL store: the same tables and the same one-transaction commit
//! as [`SqliteStore`](crate::SqliteStore), for services whose workers on many
//! hosts share one database.
//!
//! No serializable isolation and no explicit row locks: `read` is one
//! statement, so generations and usage come from one snapshot at any
//! isolation level (and one round trip), and `commit` runs at the default READ COMMITTED
//! level, where a concurrent `UPDATE ... WHERE generation = :g` waits for
//! the other writer and then re-checks its WHERE clause against the new row:
//! the loser matches no row and the transaction rolls back as a conflict.
//!
//! A commit is two round trips when nothing contends (three with the
//! read): `BEGIN`, one `UPDATE` per claimed row, root first (the one row
//! order), and the usage writes, sent as one simple query; then, when every
//! compare matched and every release found its row (the counts say), `COMMIT`. A batch commit ([`Store::commit_batch`]) is the same with the
//! claims' union and every member's usage, summed per (project, resource)
//! and written in that order.

use super::sql::{
    PATH_CTE, SCHEMA, SUBTREE_CTE, batch_read_sql, batch_snapshot_from_rows, missing_row,
    snapshot_from_rows, summed_deltas,
};
use crate::{
    BatchOutcome, ClaimEntry, CommitOutcome, Limits, MemberFailure, Project, ProjectLimit,
    RegisteredLimit, Request, Snapshot, StorageError, Store,
};
use postgres::error::SqlState;
use postgres::{Client, NoTls, SimpleQueryMessage, Statement};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// A compare that took longer than this had waited for another writer's
/// row lock (an uncontended statement is a round trip, ~0.1-0.3 ms here):
/// its conflict is [`CommitOutcome::ConflictAfterWait`], and the driver
/// re-reads at once.
pub const WAITED: Duration = Duration::from_millis(1);

/// A [`Store`] over a PostgreSQL database (the `postgres` crate, no TLS).
/// Open one per thread or worker; any number may share one database.
pub struct PostgresStore {
    client: Client,
    /// Prepared on first use, dropped after any error (a statement may
    /// outlive a schema change), so that the next call prepares afresh.
    statements: Option<Statements>,
    /// Round trips to the server made by `read`, `commit` and the batch
    /// calls (see [`PostgresStore::round_trips`]).
    round_trips: u64,
    /// A `read_locked` transaction is open.
    locked: bool,
}

/// The statements `read` and `commit` run. Prepared once per connection:
/// a statement given as text costs two round trips (prepare, execute), a
/// prepared one costs one.
struct Statements {
    read: Statement,
    read_batch: Statement,
}

impl Statements {
    fn prepare(client: &mut Client) -> Result<Self, postgres::Error> {
        Ok(Statements {
            read: client.prepare(&read_sql())?,
            read_batch: client.prepare(&batch_read_sql(
                "usage",
                "= ANY($1)",
                "= ANY($2)",
                "= ANY($2)",
                "= ANY($2)",
            ))?,
        })
    }
}

/// `s` as an SQL string literal (standard_conforming_strings, on by
/// default since PostgreSQL 9.1: only the quote is special). An id with a
/// NUL byte cannot be stored in a TEXT column, so it matches no row.
fn literal(s: &str) -> Result<String, StorageError> {
    if s.contains('\0') {
        return Err(StorageError::new("an id with a NUL byte"));
    }
    Ok(format!("'{}'", s.replace('\'', "''")))
}

/// `BEGIN` (unless a locked attempt's transaction is open) and the
/// compare-and-update of each claimed row in the order given, as one simple
/// query (one round trip, one statement per row, so rows are locked in
/// exactly this order).
fn begin_and_compare(claim: &[ClaimEntry], begin: bool) -> Result<Option<String>, StorageError> {
    let mut sql = String::from(if begin { "BEGIN;" } else { "" });
    for entry in claim {
        // No stored generation can equal one past BIGINT: the claim is stale.
        let Ok(generation) = i64::try_from(entry.generation) else {
            return Ok(None);
        };
        let _ = write!(
            sql,
            " UPDATE delimiter_generations SET generation = generation + 1 WHERE project_id = {} AND generation = {generation};",
            literal(&entry.project)?
        );
    }
    Ok(Some(sql))
}

/// The usage writes of `deltas` (project, resource, change), as one
/// simple query, one statement each. An increase is an upsert; a decrease
/// updates the row, whose CHECK (usage >= 0) fails a release below zero
/// (PostgreSQL checks an upsert's proposed row first, so a decrease cannot
/// be one); a decrease that finds no row is caught by its count.
fn writes_sql(deltas: &[(String, String, i64)]) -> Result<String, StorageError> {
    let mut sql = String::new();
    for (project, resource, delta) in deltas {
        let (p, r) = (literal(project)?, literal(resource)?);
        if *delta > 0 {
            let _ = write!(
                sql,
                "INSERT INTO delimiter_usage (project_id, resource, usage) VALUES ({p}, {r}, {delta})
                 ON CONFLICT (project_id, resource) DO UPDATE SET usage = delimiter_usage.usage + excluded.usage;"
            );
        } else {
            let _ = write!(
                sql,
                "UPDATE delimiter_usage SET usage = usage + ({delta}) WHERE project_id = {p} AND resource = {r};"
            );
        }
    }
    Ok(sql)
}

/// Why a commit's statements failed.
enum Failure {
    /// The database refused a statement.
    Db(postgres::Error),
    /// A decrease found no usage row to take from.
    NoRow(String),
}

impl From<postgres::Error> for Failure {
    fn from(e: postgres::Error) -> Self {
        Failure::Db(e)
    }
}

impl Failure {
    fn storage(self) -> StorageError {
        match self {
            Failure::Db(e) => storage(e),
            Failure::NoRow(message) => StorageError::new(message),
        }
    }
}

/// The row counts of a simple query's statements, in order.
fn counts(messages: &[SimpleQueryMessage]) -> Vec<u64> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::CommandComplete(n) => Some(*n),
            _ => None,
        })
        .collect()
}

/// The prepared statements, preparing them on first use.
fn prepared<'a>(
    client: &mut Client,
    slot: &'a mut Option<Statements>,
) -> Result<&'a Statements, postgres::Error> {
    if slot.is_none() {
        *slot = Some(Statements::prepare(client)?);
    }
    Ok(slot.as_ref().expect("prepared just above"))
}

/// The whole snapshot of `$1`'s path for the resources in `$2`, as one
/// statement: rows of (kind, depth, a, b, n), sorted so that each part
/// comes out in the order the separate queries gave. Kind 0: the path
/// (project, parent, generation) from the project up; 1: the project's
/// own usage (resource, usage); 2: U(a, r) for every a on the path
/// (anchor, resource, sum); 3: registered limits (resource, limit); 4:
/// project limits on the path (project, resource, limit).
pub fn read_sql() -> String {
    format!(
        "{PATH_CTE}, {SUBTREE_CTE}
         SELECT 0 AS kind, path.depth, path.project_id AS a, path.parent_id AS b, g.generation AS n
           FROM path LEFT JOIN delimiter_generations g ON g.project_id = path.project_id
         UNION ALL
         SELECT 1, 0, NULL, u.resource, u.usage
           FROM delimiter_usage u WHERE u.project_id = $1 AND u.resource = ANY($2)
         UNION ALL
         SELECT 2, 0, subtree.anchor, u.resource, CAST(SUM(u.usage) AS BIGINT)
           FROM subtree JOIN delimiter_usage u ON u.project_id = subtree.project_id
          WHERE u.resource = ANY($2)
          GROUP BY subtree.anchor, u.resource
         UNION ALL
         SELECT 3, 0, NULL, r.resource, r.limit_value
           FROM delimiter_registered_limits r WHERE r.resource = ANY($2)
         UNION ALL
         SELECT 4, path.depth, l.project_id, l.resource, l.limit_value
           FROM path JOIN delimiter_project_limits l ON l.project_id = path.project_id
          WHERE l.resource = ANY($2)
         ORDER BY 1, 2, 3, 4"
    )
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

fn storage(e: postgres::Error) -> StorageError {
    // The error's own Display says only "db error"; the server's words are
    // what an operator needs.
    match e.as_db_error() {
        Some(db) => StorageError::new(format!("postgres: {} ({})", db.message(), db.code().code())),
        None => StorageError::new(format!("postgres: {e}")),
    }
}

fn from_sql_generation(g: i64) -> Result<u64, StorageError> {
    u64::try_from(g).map_err(|_| StorageError::new(format!("negative generation {g}")))
}

/// Lost a race the database itself detected (deadlock, serialization):
/// the transaction is gone, nothing was written; retrying is right.
fn is_conflict(e: &postgres::Error) -> bool {
    matches!(e.code(), Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE)
}

impl PostgresStore {
    /// Connects to `url` (for example `postgresql://postgres@127.0.0.1/test`).
    /// Creates no table: see [`PostgresStore::create_schema`].
    pub fn connect(url: &str) -> Result<Self, StorageError> {
        Self::from_client(Client::connect(url, NoTls).map_err(storage)?)
    }

    /// Uses `client` (with its search_path as set). Creates no table:
    /// schema changes are a deployment's decision, made once with an
    /// account that may make them, not a side effect of every connection.
    pub fn from_client(client: Client) -> Result<Self, StorageError> {
        Ok(PostgresStore {
            client,
            statements: None,
            round_trips: 0,
            locked: false,
        })
    }

    /// Creates the Delimiter tables that are missing (`CREATE TABLE IF NOT
    /// EXISTS`: existing tables are left as they are). Run it once, at
    /// deployment or from a migration.
    pub fn create_schema(&mut self) -> Result<(), StorageError> {
        self.client.batch_execute(SCHEMA).map_err(storage)
    }

    /// Round trips to the server that `read`, `commit`, `read_batch` and
    /// `commit_batch` made on this connection so far (statements prepared
    /// on first use count one each). An uncontended consume is 3: the
    /// read, `BEGIN` with the compares and the writes, `COMMIT`.
    pub fn round_trips(&self) -> u64 {
        self.round_trips
    }

    /// The underlying client, for a service's own tables and queries.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Adds a project (generation 1), under its parent or as a root.
    pub fn add_project(&mut self, project: &Project) -> Result<(), StorageError> {
        let mut tx = self.client.transaction().map_err(storage)?;
        tx.execute(
            "INSERT INTO delimiter_projects (project_id, parent_id) VALUES ($1, $2)",
            &[&project.id, &project.parent],
        )
        .map_err(storage)?;
        tx.execute(
            "INSERT INTO delimiter_generations (project_id, generation) VALUES ($1, 1)",
            &[&project.id],
        )
        .map_err(storage)?;
        tx.commit().map_err(storage)
    }

    /// Sets (or replaces) the registered and project limits given.
    pub fn set_limits(&mut self, limits: &Limits) -> Result<(), StorageError> {
        let mut tx = self.client.transaction().map_err(storage)?;
        for RegisteredLimit { resource, limit } in &limits.registered {
            tx.execute(
                "INSERT INTO delimiter_registered_limits (resource, limit_value) VALUES ($1, $2)
                 ON CONFLICT (resource) DO UPDATE SET limit_value = excluded.limit_value",
                &[resource, limit],
            )
            .map_err(storage)?;
        }
        for ProjectLimit {
            project,
            resource,
            limit,
        } in &limits.project
        {
            tx.execute(
                "INSERT INTO delimiter_project_limits (project_id, resource, limit_value) VALUES ($1, $2, $3)
                 ON CONFLICT (project_id, resource) DO UPDATE SET limit_value = excluded.limit_value",
                &[project, resource, limit],
            )
            .map_err(storage)?;
        }
        tx.commit().map_err(storage)
    }

    /// What `project` uses of `resource`.
    pub fn usage(&mut self, project: &str, resource: &str) -> Result<i64, StorageError> {
        let row = self
            .client
            .query_opt(
                "SELECT usage FROM delimiter_usage WHERE project_id = $1 AND resource = $2",
                &[&project, &resource],
            )
            .map_err(storage)?;
        Ok(row.map_or(0, |r| r.get(0)))
    }

    /// The current generation of `project`, if it has one.
    pub fn generation(&mut self, project: &str) -> Result<Option<u64>, StorageError> {
        let row = self
            .client
            .query_opt(
                "SELECT generation FROM delimiter_generations WHERE project_id = $1",
                &[&project],
            )
            .map_err(storage)?;
        row.map(|r| from_sql_generation(r.get(0))).transpose()
    }

    fn read_path(&mut self, project: &str, resources: &[String]) -> Result<Snapshot, StorageError> {
        let wanted: Vec<&str> = resources.iter().map(String::as_str).collect();
        if self.statements.is_none() {
            self.round_trips += 2;
        }
        let statements = prepared(&mut self.client, &mut self.statements).map_err(storage)?;
        self.round_trips += 1;
        // One statement, so one snapshot at any isolation level: generations
        // are read no later than the usage they go with, in one round trip.
        let rows = self
            .client
            .query(&statements.read, &[&project, &wanted])
            .map_err(storage)?;
        snapshot_from_rows(
            rows.iter()
                .map(|r| (i64::from(r.get::<_, i32>(0)), r.get(2), r.get(3), r.get(4))),
            |_| true,
        )
    }

    /// One round trip: `BEGIN`, the compares in the order given, `prefix`
    /// and the writes of `deltas`; then, when every compare matched and
    /// every decrease found its row, `COMMIT` (a second). A miss rolls
    /// back and is a conflict (the writes sent after it are rolled back
    /// with it); a failure rolls back and is returned. PostgreSQL answers
    /// an error without the counts before it, so an error that is not a
    /// conflict is checked against the compares alone: a write that failed
    /// only because its snapshot was stale is a conflict, not a failure.
    /// Inside a locked attempt's transaction (ended here either way) no
    /// `BEGIN` is sent, and its compares cannot miss.
    fn compare_then(
        &mut self,
        claim: &[ClaimEntry],
        prefix: &str,
        deltas: &[(String, String, i64)],
    ) -> Result<CommitOutcome, Failure> {
        let begin = !std::mem::take(&mut self.locked);
        let sql = match (begin_and_compare(claim, begin), writes_sql(deltas)) {
            (Ok(Some(compare)), Ok(writes)) => format!("{compare}{prefix}{writes}"),
            // A generation past BIGINT, or an id no row can have: stale.
            (Ok(None) | Err(_), _) => {
                if !begin {
                    self.rollback();
                }
                return Ok(CommitOutcome::Conflict);
            }
            (_, Err(e)) => {
                if !begin {
                    self.rollback();
                }
                return Err(Failure::NoRow(e.message));
            }
        };
        let started = Instant::now();
        let counts = if sql.is_empty() {
            Vec::new()
        } else {
            self.round_trips += 1;
            match self.client.simple_query(&sql) {
                Ok(messages) => counts(&messages),
                Err(e) => {
                    self.rollback();
                    if !is_conflict(&e) && self.compares_miss(claim) {
                        return Ok(CommitOutcome::Conflict);
                    }
                    return Err(e.into());
                }
            }
        };
        let compared = usize::from(begin);
        let written = compared + claim.len() + usize::from(!prefix.is_empty());
        let matched = counts
            .get(compared..compared + claim.len())
            .is_some_and(|c| c.iter().all(|&n| n == 1));
        if !matched {
            let waited = started.elapsed() >= WAITED;
            self.rollback();
            return Ok(if waited {
                CommitOutcome::ConflictAfterWait
            } else {
                CommitOutcome::Conflict
            });
        }
        if let Some(message) = missing_row(deltas, counts.get(written..).unwrap_or(&[])) {
            self.rollback();
            return Err(Failure::NoRow(message));
        }
        self.round_trips += 1;
        if let Err(e) = self.client.simple_query("COMMIT") {
            self.rollback();
            return Err(e.into());
        }
        Ok(CommitOutcome::Committed)
    }

    /// Whether a compare of `claim` misses now (in a transaction of its
    /// own, rolled back): after a write failed, tells a stale snapshot
    /// from a real failure. False when it cannot tell.
    fn compares_miss(&mut self, claim: &[ClaimEntry]) -> bool {
        let Ok(Some(compare)) = begin_and_compare(claim, true) else {
            return false;
        };
        if claim.is_empty() {
            return false;
        }
        self.round_trips += 1;
        let missed = self
            .client
            .simple_query(&compare)
            .is_ok_and(|m| counts(&m).iter().skip(1).any(|&n| n != 1));
        self.rollback();
        missed
    }

    /// `prefix` and the writes of `deltas` in the open transaction, one
    /// round trip; a decrease that found no row is a failure.
    fn write(&mut self, prefix: &str, deltas: &[(String, String, i64)]) -> Result<(), Failure> {
        let sql = format!(
            "{prefix}{}",
            writes_sql(deltas).map_err(|e| Failure::NoRow(e.message))?
        );
        if sql.is_empty() {
            return Ok(());
        }
        self.round_trips += 1;
        let counts = counts(&self.client.simple_query(&sql)?);
        let skip = usize::from(!prefix.is_empty());
        match missing_row(deltas, counts.get(skip..).unwrap_or(&[])) {
            Some(message) => Err(Failure::NoRow(message)),
            None => Ok(()),
        }
    }

    /// Ends a failed or abandoned transaction (an error here means the
    /// connection is gone, and the server rolls back on its own).
    fn rollback(&mut self) {
        self.round_trips += 1;
        let _ = self.client.simple_query("ROLLBACK");
    }

    /// The outcome of a commit that returned `result`: conflicts the
    /// database detected (deadlock, serialization) are conflicts; anything
    /// else is a storage error, and the prepared statements are dropped.
    fn outcome(
        &mut self,
        result: Result<CommitOutcome, Failure>,
    ) -> Result<CommitOutcome, StorageError> {
        match result {
            Ok(outcome) => Ok(outcome),
            Err(Failure::Db(e)) if is_conflict(&e) => Ok(CommitOutcome::Conflict),
            Err(failure) => {
                self.statements = None;
                Err(failure.storage())
            }
        }
    }
}

impl Store for PostgresStore {
    fn read(&mut self, project: &str, resources: &[String]) -> Result<Snapshot, StorageError> {
        let out = self.read_path(project, resources);
        if out.is_err() {
            self.statements = None;
        }
        out
    }

    /// Root first: the claim comes from the project up, so it is compared
    /// from its end. A pure release (empty claim) bumps the project's own
    /// generation, so every write moves it.
    fn commit(
        &mut self,
        claim: &[ClaimEntry],
        request: &Request,
    ) -> Result<CommitOutcome, StorageError> {
        let rows: Vec<ClaimEntry> = claim.iter().rev().cloned().collect();
        let deltas = summed_deltas(std::slice::from_ref(request));
        let prefix = if rows.is_empty() && !deltas.is_empty() {
            format!(
                "UPDATE delimiter_generations SET generation = generation + 1 WHERE project_id = {};",
                literal(&request.project)?
            )
        } else {
            String::new()
        };
        let result = self.compare_then(&rows, &prefix, &deltas);
        self.outcome(result)
    }

    /// The path (an ordinary read), then `BEGIN` and `SELECT ... FOR
    /// UPDATE` of each of its generation rows, root first, one statement
    /// per row (one round trip), then the read again inside the
    /// transaction (READ COMMITTED: it sees every commit made before the
    /// locks were granted). A project whose path changed in between is
    /// still compared by `commit`.
    fn read_locked(
        &mut self,
        project: &str,
        resources: &[String],
    ) -> Result<Option<Snapshot>, StorageError> {
        self.unlock();
        let path = self.read(project, resources)?;
        let mut sql = String::from("BEGIN;");
        for p in path.projects.iter().rev() {
            let _ = write!(
                sql,
                " SELECT generation FROM delimiter_generations WHERE project_id = {} FOR UPDATE;",
                literal(&p.id)?
            );
        }
        self.round_trips += 1;
        if let Err(e) = self.client.simple_query(&sql) {
            self.rollback();
            self.statements = None;
            return Err(storage(e));
        }
        self.locked = true;
        match self.read(project, resources) {
            Ok(snapshot) => Ok(Some(snapshot)),
            Err(e) => {
                self.unlock();
                Err(e)
            }
        }
    }

    fn unlock(&mut self) {
        if std::mem::take(&mut self.locked) {
            self.rollback();
        }
    }

    fn batches(&self) -> bool {
        true
    }

    fn read_batch(
        &mut self,
        projects: &[String],
        resources: &[String],
    ) -> Result<Snapshot, StorageError> {
        if self.statements.is_none() {
            self.round_trips += 2;
        }
        let out = prepared(&mut self.client, &mut self.statements)
            .and_then(|s| {
                let s = s.read_batch.clone();
                self.round_trips += 1;
                self.client.query(&s, &[&projects, &resources])
            })
            .map_err(storage)
            .and_then(|rows| {
                batch_snapshot_from_rows(
                    rows.iter()
                        .map(|r| (i64::from(r.get::<_, i32>(0)), r.get(1), r.get(2), r.get(3))),
                )
            });
        if out.is_err() {
            self.statements = None;
        }
        out
    }

    /// The claims' union in the order given, then the members' usage
    /// summed per (project, resource), then `COMMIT`. When the writes fail,
    /// the members are written one by one in a new transaction to find the
    /// one that fails: it is reported and nothing is written.
    fn commit_batch(
        &mut self,
        claim: &[ClaimEntry],
        members: &[Request],
    ) -> Result<BatchOutcome, StorageError> {
        let result = self.compare_then(claim, "", &summed_deltas(members));
        match result {
            Ok(CommitOutcome::Committed) => Ok(BatchOutcome::Committed),
            Ok(lost) => Ok(BatchOutcome::Conflict(lost)),
            Err(Failure::Db(e)) if is_conflict(&e) => {
                Ok(BatchOutcome::Conflict(CommitOutcome::Conflict))
            }
            Err(failure) => self.find_failed_member(claim, members, failure.storage()),
        }
    }
}

impl PostgresStore {
    /// After a batch's writes failed with `error`: each member's writes in
    /// turn (in one transaction, rolled back at the end) until one fails.
    fn find_failed_member(
        &mut self,
        claim: &[ClaimEntry],
        members: &[Request],
        error: StorageError,
    ) -> Result<BatchOutcome, StorageError> {
        let compare = match begin_and_compare(claim, true) {
            Ok(Some(sql)) => sql,
            _ => return Err(error),
        };
        self.round_trips += 1;
        if self.client.simple_query(&compare).is_err() {
            self.rollback();
            return Err(error);
        }
        for (index, member) in members.iter().enumerate() {
            if let Err(failure) = self.write("", &summed_deltas(std::slice::from_ref(member))) {
                self.rollback();
                return Ok(BatchOutcome::MemberFailed(MemberFailure {
                    index: index as u32,
                    message: failure.storage().message,
                }));
            }
        }
        self.rollback();
        Err(error)
    }
}
