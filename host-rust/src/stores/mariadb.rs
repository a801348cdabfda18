//! A MariaDB / MySQL store (InnoDB), OpenStack's usual database, including
//! behind Galera, where compare-and-update is the recommended pattern.
//!
//! `read` is one statement, so generations and usage come from one read
//! view (one point in time) at any isolation level. `commit` runs at READ COMMITTED: InnoDB's `UPDATE ... WHERE
//! generation = ?` waits for a concurrent writer of the row and then checks
//! the newest committed version, so the loser matches no row and rolls back
//! as a conflict. A deadlock, a lock wait timeout, or a Galera certification
//! failure (reported as a deadlock) also means "somebody else won": the
//! transaction is gone and the driver retries from a fresh read.
//!
//! On Galera a one-statement read can itself be aborted (error 1213) by a
//! replicated DDL that needs its table; a read writes nothing, so `read`
//! retries it a few times before giving up with a `StorageError`. A node
//! that leaves the cluster answers 1047: not a conflict, a `StorageError`
//! (the transaction in flight rolled back; fail over to another node).
//!
//! Each conflict is counted by its cause ([`ConflictCauses`]), which only
//! the store can tell: the driver retries them all alike.
//!
//! The tables are those of the SQLite and PostgreSQL stores, spelled for
//! MariaDB: `VARCHAR(255)` keys with a binary collation (ids are
//! case-sensitive, as everywhere else) and `usage` quoted (a reserved word).
//! Connecting creates nothing: [`MariadbStore::create_schema`] is a separate
//! call (on Galera every DDL is a cluster-wide operation, and a service
//! account should not need the CREATE privilege).

use super::sql::{
    ConflictCauses, SUBTREE_CTE, batch_read_sql, batch_snapshot_from_rows, missing_row,
    snapshot_from_rows, summed_deltas,
};
use crate::{
    BatchOutcome, ClaimEntry, CommitOutcome, Limits, MemberFailure, Project, ProjectLimit,
    RegisteredLimit, Request, Snapshot, StorageError, Store,
};
use mysql::prelude::Queryable;
use mysql::{Conn, Opts, TxOpts};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// A compare that took longer than this had waited for another writer's
/// row lock: its conflict is [`CommitOutcome::ConflictAfterWait`], and the
/// driver re-reads at once.
pub const WAITED: Duration = Duration::from_millis(1);

const SCHEMA: &str = include_str!("../../storage/schema-mariadb.sql");

/// The statements of [`SCHEMA`], one per call: a statement ends with a
/// semicolon at the end of a line (the file's convention), and the file's
/// `--` comments are dropped.
fn schema_statements() -> impl Iterator<Item = String> {
    SCHEMA
        .split(";\n")
        .map(|part| {
            part.lines()
                .filter(|line| !line.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .filter(|statement| !statement.trim().is_empty())
}

/// `path`: the requesting project (the first `?`) and its ancestors, from
/// the project up; the depth bound stops a cyclic parent chain.
pub const PATH_CTE: &str = "
WITH RECURSIVE path (project_id, parent_id, depth) AS (
    SELECT project_id, parent_id, 0 FROM delimiter_projects WHERE project_id = ?
    UNION ALL
    SELECT p.project_id, p.parent_id, path.depth + 1
      FROM delimiter_projects p JOIN path ON p.project_id = path.parent_id
     WHERE path.depth < 1024
)";

/// One row of [`READ_SQL`]: (kind, depth, a, b, n).
type ReadRow = (i64, i64, Option<String>, Option<String>, Option<i64>);

/// The row kinds of [`READ_SQL`]'s answer (its first column).
/// The whole snapshot of the project's path (both `?` are the project),
/// every resource, as one statement: rows of (kind, depth, a, b, n), sorted
/// so that each part comes out in the order the separate queries gave.
/// Kind 0: the path (project, parent, generation) from the project up; 1:
/// the project's own usage (resource, usage); 2: U(a, r) for every a on the
/// path (anchor, resource, sum); 3: registered limits (resource, limit); 4:
/// project limits on the path (project, resource, limit).
pub fn read_sql() -> &'static str {
    READ_SQL.as_str()
}

static READ_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "{PATH_CTE}, {SUBTREE_CTE}
         SELECT 0 AS kind, path.depth, path.project_id AS a, path.parent_id AS b, g.generation AS n
           FROM path LEFT JOIN delimiter_generations g ON g.project_id = path.project_id
         UNION ALL
         SELECT 1, 0, NULL, u.resource, u.`usage` FROM delimiter_usage u WHERE u.project_id = ?
         UNION ALL
         SELECT 2, 0, subtree.anchor, u.resource, CAST(SUM(u.`usage`) AS SIGNED)
           FROM subtree JOIN delimiter_usage u ON u.project_id = subtree.project_id
          GROUP BY subtree.anchor, u.resource
         UNION ALL
         SELECT 3, 0, NULL, r.resource, r.limit_value FROM delimiter_registered_limits r
         UNION ALL
         SELECT 4, path.depth, l.project_id, l.resource, l.limit_value
           FROM path JOIN delimiter_project_limits l ON l.project_id = path.project_id
         ORDER BY 1, 2, 3, 4"
    )
});

/// MariaDB error codes that mean "lost a race; nothing was written".
const ER_LOCK_WAIT_TIMEOUT: u16 = 1205;
const ER_LOCK_DEADLOCK: u16 = 1213;

/// How many times `read` runs its statement when a conflict (on Galera, a
/// replicated DDL) aborts it. The DDL holds its table until it is done, so
/// the next try waits for it rather than being aborted again.
const READ_ATTEMPTS: u32 = 4;

/// A [`Store`] over a MariaDB or MySQL database (the `mysql` crate).
/// Open one per thread or worker; any number may share one database.
pub struct MariadbStore {
    conn: Conn,
    causes: ConflictCauses,
    round_trips: u64,
    /// A `read_locked` transaction is open.
    locked: bool,
}

/// Why a commit failed, for counting conflicts by cause.
struct Failed {
    /// The database's error, or none when `no_row` says what failed.
    error: Option<mysql::Error>,
    /// Raised by COMMIT itself (on Galera: certification), not by a
    /// statement before it.
    at_commit: bool,
    /// A decrease found no usage row to take from.
    no_row: Option<String>,
}

impl Failed {
    fn before(error: mysql::Error) -> Self {
        Failed {
            error: Some(error),
            at_commit: false,
            no_row: None,
        }
    }

    fn no_row(message: String) -> Self {
        Failed {
            error: None,
            at_commit: false,
            no_row: Some(message),
        }
    }

    fn storage(self) -> StorageError {
        match (self.error, self.no_row) {
            (Some(e), _) => storage(e),
            (None, message) => StorageError::new(message.unwrap_or_default()),
        }
    }

    fn is_conflict(&self) -> bool {
        self.error.as_ref().is_some_and(is_conflict)
    }
}

impl std::fmt::Debug for MariadbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MariadbStore").finish_non_exhaustive()
    }
}

fn storage(e: mysql::Error) -> StorageError {
    StorageError::new(format!("mariadb: {e}"))
}

fn from_sql_generation(g: i64) -> Result<u64, StorageError> {
    u64::try_from(g).map_err(|_| StorageError::new(format!("negative generation {g}")))
}

fn is_conflict(e: &mysql::Error) -> bool {
    matches!(e, mysql::Error::MySqlError(m) if m.code == ER_LOCK_DEADLOCK || m.code == ER_LOCK_WAIT_TIMEOUT)
}

impl MariadbStore {
    /// Connects to `url` (for example `mysql://root@127.0.0.1:3306/test`).
    /// Creates nothing: see [`MariadbStore::create_schema`].
    pub fn connect(url: &str) -> Result<Self, StorageError> {
        let opts =
            Opts::from_url(url).map_err(|e| StorageError::new(format!("mariadb: bad url: {e}")))?;
        Self::from_conn(Conn::new(opts).map_err(storage)?)
    }

    /// Uses `conn`, setting its session's isolation level to READ
    /// COMMITTED once (so a commit needs no statement for it). Creates
    /// nothing: see [`MariadbStore::create_schema`].
    pub fn from_conn(mut conn: Conn) -> Result<Self, StorageError> {
        conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
            .map_err(storage)?;
        Ok(MariadbStore {
            conn,
            causes: ConflictCauses::default(),
            round_trips: 0,
            locked: false,
        })
    }

    /// Round trips to the server that `read`, `commit`, `read_batch` and
    /// `commit_batch` made on this connection so far. An uncontended
    /// consume is 3: the read, `START TRANSACTION` with the compares and
    /// the writes, `COMMIT`.
    pub fn round_trips(&self) -> u64 {
        self.round_trips
    }

    /// Creates the Delimiter tables that are missing (`CREATE TABLE IF NOT
    /// EXISTS`, so existing tables are left as they are). Run it once, at
    /// deployment or from a migration, with an account that may create
    /// tables: on Galera each statement is a cluster-wide DDL.
    pub fn create_schema(&mut self) -> Result<(), StorageError> {
        for statement in schema_statements() {
            self.conn.query_drop(statement).map_err(storage)?;
        }
        Ok(())
    }

    /// The conflicts this store's commits reported so far, by cause, and
    /// the reads it ran again.
    pub fn conflict_causes(&self) -> ConflictCauses {
        self.causes
    }

    /// The underlying connection, for a service's own tables and queries.
    pub fn conn(&mut self) -> &mut Conn {
        &mut self.conn
    }

    /// Adds a project (generation 1), under its parent or as a root.
    pub fn add_project(&mut self, project: &Project) -> Result<(), StorageError> {
        let mut tx = self
            .conn
            .start_transaction(TxOpts::default())
            .map_err(storage)?;
        tx.exec_drop(
            "INSERT INTO delimiter_projects (project_id, parent_id) VALUES (?, ?)",
            (&project.id, &project.parent),
        )
        .map_err(storage)?;
        tx.exec_drop(
            "INSERT INTO delimiter_generations (project_id, generation) VALUES (?, 1)",
            (&project.id,),
        )
        .map_err(storage)?;
        tx.commit().map_err(storage)
    }

    /// Sets (or replaces) the registered and project limits given.
    pub fn set_limits(&mut self, limits: &Limits) -> Result<(), StorageError> {
        let mut tx = self
            .conn
            .start_transaction(TxOpts::default())
            .map_err(storage)?;
        for RegisteredLimit { resource, limit } in &limits.registered {
            tx.exec_drop(
                "INSERT INTO delimiter_registered_limits (resource, limit_value) VALUES (?, ?)
                 ON DUPLICATE KEY UPDATE limit_value = VALUES(limit_value)",
                (resource, limit),
            )
            .map_err(storage)?;
        }
        for ProjectLimit {
            project,
            resource,
            limit,
        } in &limits.project
        {
            tx.exec_drop(
                "INSERT INTO delimiter_project_limits (project_id, resource, limit_value) VALUES (?, ?, ?)
                 ON DUPLICATE KEY UPDATE limit_value = VALUES(limit_value)",
                (project, resource, limit),
            )
            .map_err(storage)?;
        }
        tx.commit().map_err(storage)
    }

    /// What `project` uses of `resource`.
    pub fn usage(&mut self, project: &str, resource: &str) -> Result<i64, StorageError> {
        let usage: Option<i64> = self
            .conn
            .exec_first(
                "SELECT `usage` FROM delimiter_usage WHERE project_id = ? AND resource = ?",
                (project, resource),
            )
            .map_err(storage)?;
        Ok(usage.unwrap_or(0))
    }

    /// The current generation of `project`, if it has one.
    pub fn generation(&mut self, project: &str) -> Result<Option<u64>, StorageError> {
        let g: Option<i64> = self
            .conn
            .exec_first(
                "SELECT generation FROM delimiter_generations WHERE project_id = ?",
                (project,),
            )
            .map_err(storage)?;
        g.map(from_sql_generation).transpose()
    }

    fn read_path(&mut self, project: &str, resources: &[String]) -> Result<Snapshot, StorageError> {
        let wanted = |r: &str| resources.iter().any(|x| x == r);
        // One statement, so one consistent read (one read view) at any
        // isolation level: generations are read no later than the usage
        // they go with, in one round trip (the connection keeps the
        // statement prepared).
        let mut attempt = 1;
        let rows: Vec<ReadRow> = loop {
            self.round_trips += 1;
            match self.conn.exec(READ_SQL.as_str(), (project, project)) {
                Ok(rows) => break rows,
                // A read writes nothing: run it again (not inside a locked
                // attempt's transaction, which the abort ended).
                Err(e) if is_conflict(&e) && attempt < READ_ATTEMPTS && !self.locked => {
                    attempt += 1;
                    self.causes.read_retries += 1;
                }
                Err(e) => return Err(storage(e)),
            }
        };
        snapshot_from_rows(
            rows.into_iter()
                .map(|(kind, _depth, a, b, n)| (kind, a, b, n)),
            wanted,
        )
    }

    /// `s` as a string literal for this connection's SQL mode.
    fn literal(&self, s: &str) -> String {
        mysql::Value::from(s).as_sql(self.conn.no_backslash_escape())
    }

    /// Runs `sql` (several statements, one round trip) and returns each
    /// statement's affected rows, up to the first error (with it).
    fn multi(&mut self, sql: &str) -> (Vec<u64>, Option<mysql::Error>) {
        self.round_trips += 1;
        let mut counts = Vec::new();
        let mut result = match self.conn.query_iter(sql) {
            Ok(result) => result,
            Err(e) => return (counts, Some(e)),
        };
        while let Some(mut set) = result.iter() {
            // Read before the rows: draining a set moves on to the next.
            let affected = set.affected_rows();
            for row in set.by_ref() {
                if let Err(e) = row {
                    return (counts, Some(e));
                }
            }
            counts.push(affected);
        }
        (counts, None)
    }

    fn rollback(&mut self) {
        self.round_trips += 1;
        let _ = self.conn.query_drop("ROLLBACK");
    }

    /// One round trip: `START TRANSACTION`, one compare-and-update per
    /// claimed row in the order given (so rows are locked in exactly that
    /// order), `prefix` and the writes of `deltas`; then, when every
    /// compare matched and every decrease found its row (the counts say),
    /// `COMMIT` (a second). A miss rolls back and is a conflict, also when
    /// a write after it failed (its snapshot was stale; the server answers
    /// the counts up to the error). Inside a locked attempt's transaction
    /// (ended here either way) no `START TRANSACTION` is sent: in MariaDB
    /// it would commit the open one.
    fn compare_then(
        &mut self,
        claim: &[ClaimEntry],
        prefix: &str,
        deltas: &[(String, String, i64)],
    ) -> Result<CommitOutcome, Failed> {
        let begin = !std::mem::take(&mut self.locked);
        let mut sql = String::from(if begin { "START TRANSACTION;" } else { "" });
        for entry in claim {
            let Ok(generation) = i64::try_from(entry.generation) else {
                // No stored generation can equal it: the claim is stale.
                if !begin {
                    self.rollback();
                }
                return Ok(CommitOutcome::Conflict);
            };
            let _ = write!(
                sql,
                " UPDATE delimiter_generations SET generation = generation + 1 WHERE project_id = {} AND generation = {generation};",
                self.literal(&entry.project)
            );
        }
        sql.push_str(prefix);
        sql.push_str(&self.writes(deltas));
        let started = Instant::now();
        let (counts, error) = if sql.is_empty() {
            (Vec::new(), None)
        } else {
            self.multi(&sql)
        };
        let compared = usize::from(begin);
        let compares = counts
            .get(compared..)
            .unwrap_or(&[])
            .iter()
            .take(claim.len());
        if compares.clone().any(|&n| n != 1) || (error.is_none() && compares.count() < claim.len())
        {
            let waited = started.elapsed() >= WAITED;
            self.rollback();
            return Ok(if waited {
                CommitOutcome::ConflictAfterWait
            } else {
                CommitOutcome::Conflict
            });
        }
        if let Some(error) = error {
            self.rollback();
            return Err(Failed::before(error));
        }
        let written = compared + claim.len() + usize::from(!prefix.is_empty());
        if let Some(message) = missing_row(deltas, counts.get(written..).unwrap_or(&[])) {
            self.rollback();
            return Err(Failed::no_row(message));
        }
        self.round_trips += 1;
        if let Err(error) = self.conn.query_drop("COMMIT") {
            self.rollback();
            return Err(Failed {
                error: Some(error),
                at_commit: true,
                no_row: None,
            });
        }
        Ok(CommitOutcome::Committed)
    }

    /// `prefix` and the writes of `deltas` in the open transaction, one
    /// round trip; a decrease that found no row is a failure.
    fn write(&mut self, prefix: &str, deltas: &[(String, String, i64)]) -> Result<(), Failed> {
        let sql = format!("{prefix}{}", self.writes(deltas));
        if sql.is_empty() {
            return Ok(());
        }
        let (counts, error) = self.multi(&sql);
        if let Some(error) = error {
            return Err(Failed::before(error));
        }
        let skip = usize::from(!prefix.is_empty());
        match missing_row(deltas, counts.get(skip..).unwrap_or(&[])) {
            Some(message) => Err(Failed::no_row(message)),
            None => Ok(()),
        }
    }

    /// The usage writes of `deltas` (project, resource, change): an
    /// increase is an upsert, a decrease an update whose CHECK (usage >= 0)
    /// fails a release below zero (and whose count catches a missing row).
    fn writes(&self, deltas: &[(String, String, i64)]) -> String {
        let mut sql = String::new();
        for (project, resource, delta) in deltas {
            let (p, r) = (self.literal(project), self.literal(resource));
            if *delta > 0 {
                let _ = write!(
                    sql,
                    "INSERT INTO delimiter_usage (project_id, resource, `usage`) VALUES ({p}, {r}, {delta})
                     ON DUPLICATE KEY UPDATE `usage` = `usage` + VALUES(`usage`);"
                );
            } else {
                let _ = write!(
                    sql,
                    "UPDATE delimiter_usage SET `usage` = `usage` + ({delta}) WHERE project_id = {p} AND resource = {r};"
                );
            }
        }
        sql
    }

    /// The outcome of a commit, counting conflicts by cause.
    fn outcome(&mut self, result: Result<CommitOutcome, Failed>) -> Result<CommitOutcome, Failed> {
        match result {
            Ok(CommitOutcome::Committed) => Ok(CommitOutcome::Committed),
            Ok(lost) => {
                self.causes.generation_miss += 1;
                Ok(lost)
            }
            Err(failed) if failed.is_conflict() => {
                let at_commit = failed.at_commit;
                // Galera certifies a transaction at COMMIT, and a replicated
                // write or DDL that needs its rows aborts it at the
                // statement running or next (one server: a deadlock or lock
                // wait timeout). A transaction aborted in the moment between
                // its last write and COMMIT is counted as certification.
                if at_commit {
                    self.causes.certification_failure += 1;
                } else {
                    self.causes.brute_force_abort += 1;
                }
                Ok(CommitOutcome::Conflict)
            }
            Err(failed) => Err(failed),
        }
    }

    /// After a batch's writes failed with `error`: each member's writes in
    /// turn (in one transaction, rolled back at the end) until one fails.
    fn find_failed_member(
        &mut self,
        claim: &[ClaimEntry],
        members: &[Request],
        error: StorageError,
    ) -> Result<BatchOutcome, StorageError> {
        let mut sql = String::from("START TRANSACTION;");
        for entry in claim {
            let _ = write!(
                sql,
                " UPDATE delimiter_generations SET generation = generation + 1 WHERE project_id = {} AND generation = {};",
                self.literal(&entry.project),
                entry.generation
            );
        }
        if self.multi(&sql).1.is_some() {
            self.rollback();
            return Err(error);
        }
        for (index, member) in members.iter().enumerate() {
            if let Err(failed) = self.write("", &summed_deltas(std::slice::from_ref(member))) {
                self.rollback();
                return Ok(BatchOutcome::MemberFailed(MemberFailure {
                    index: index as u32,
                    message: failed.storage().message,
                }));
            }
        }
        self.rollback();
        Err(error)
    }
}

impl Store for MariadbStore {
    fn read(&mut self, project: &str, resources: &[String]) -> Result<Snapshot, StorageError> {
        self.read_path(project, resources)
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
                self.literal(&request.project)
            )
        } else {
            String::new()
        };
        let result = self.compare_then(&rows, &prefix, &deltas);
        self.outcome(result).map_err(Failed::storage)
    }

    /// The path (an ordinary read), then `START TRANSACTION` and `SELECT
    /// ... FOR UPDATE` of each of its generation rows, root first, one
    /// statement per row (one round trip: InnoDB locks a multi-row read in
    /// its scan order, not its ORDER BY), then the read again inside the
    /// transaction (READ COMMITTED: a fresh read view, after the locks). A
    /// lock wait lost to a deadlock or timeout (on Galera, a brute-force
    /// abort) is tried again, as a read is.
    fn read_locked(
        &mut self,
        project: &str,
        resources: &[String],
    ) -> Result<Option<Snapshot>, StorageError> {
        self.unlock();
        let path = self.read_path(project, resources)?;
        let mut sql = String::from("START TRANSACTION;");
        for p in path.projects.iter().rev() {
            let _ = write!(
                sql,
                " SELECT generation FROM delimiter_generations WHERE project_id = {} FOR UPDATE;",
                self.literal(&p.id)
            );
        }
        let mut attempt = 1;
        loop {
            match self.multi(&sql).1 {
                None => break,
                Some(e) => {
                    self.rollback();
                    if !(is_conflict(&e) && attempt < READ_ATTEMPTS) {
                        return Err(storage(e));
                    }
                    attempt += 1;
                    self.causes.read_retries += 1;
                }
            }
        }
        self.locked = true;
        match self.read_path(project, resources) {
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
        let list = |n: usize| format!("IN ({})", vec!["?"; n.max(1)].join(", "));
        let sql = batch_read_sql(
            "`usage`",
            &list(projects.len()),
            &list(resources.len()),
            &list(resources.len()),
            &list(resources.len()),
        );
        let mut params: Vec<mysql::Value> = Vec::new();
        let mut push = |names: &[String]| {
            if names.is_empty() {
                params.push(mysql::Value::NULL);
            }
            params.extend(names.iter().map(|n| mysql::Value::from(n.as_str())));
        };
        push(projects);
        push(resources);
        push(resources);
        push(resources);
        let mut attempt = 1;
        let rows: Vec<super::sql::ReadRow> = loop {
            self.round_trips += 1;
            match self
                .conn
                .exec(&sql, mysql::Params::Positional(params.clone()))
            {
                Ok(rows) => break rows,
                // A read writes nothing: run it again.
                Err(e) if is_conflict(&e) && attempt < READ_ATTEMPTS => {
                    attempt += 1;
                    self.causes.read_retries += 1;
                }
                Err(e) => return Err(storage(e)),
            }
        };
        batch_snapshot_from_rows(rows)
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
        match self.outcome(result) {
            Ok(CommitOutcome::Committed) => Ok(BatchOutcome::Committed),
            Ok(lost) => Ok(BatchOutcome::Conflict(lost)),
            Err(failed) => self.find_failed_member(claim, members, failed.storage()),
        }
    }
}
