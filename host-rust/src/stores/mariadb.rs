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
//! On Galera (`@@wsrep_on`), a brute-force abort can roll a transaction
//! back and the server still answer OK to its COMMIT, or answer an error to
//! a COMMIT that took effect (measured here on MariaDB 10.11.19: the
//! concurrency harness found such commits in 3 runs of 12;
//! `tools/galera/commit_probe.py` ties it to this store's way of sending: a
//! connection in autocommit with `START TRANSACTION` in the packet). So on
//! Galera each connection owns a marker row (`delimiter_commit_markers`,
//! keyed by a server-made UUID): a commit first sets its `seq` to a number
//! the connection never used, every later statement of it writes only while
//! that number is visible to it (so statements the server runs after a
//! silent rollback write nothing), and after COMMIT, whatever COMMIT
//! answered, reading `seq` back says whether the transaction took effect.
//! That costs one round trip per commit and no write set of its own, and
//! needs no privilege beyond INSERT and UPDATE. Reads on Galera are causal
//! (`wsrep_sync_wait = 1`, set on connect): a read waits until its node
//! applied what the cluster committed before it, so a caller whose last
//! consume went through another node sees it (without it, a release of it
//! could be refused as taking usage below zero). Locked attempts are not
//! taken on Galera: `SELECT ... FOR UPDATE` locks rows on one node only,
//! and certification decides between nodes anyway.
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

/// One row of `READ_SQL`: (kind, depth, a, b, n).
type ReadRow = (i64, i64, Option<String>, Option<String>, Option<i64>);

/// The row kinds of `READ_SQL`'s answer (its first column).
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
const ER_UNKNOWN_SYSTEM_VARIABLE: u16 = 1193;

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
    /// Galera (`@@wsrep_on`): this connection's marker (see the module
    /// docs), as a quoted literal, and the last `seq` it used.
    marker: Option<(String, u64)>,
}

/// Why a commit failed, for counting conflicts by cause.
struct Failed {
    /// The database's error, or none when `message` says what failed.
    error: Option<mysql::Error>,
    /// Raised by COMMIT itself (on Galera: certification), not by a
    /// statement before it.
    at_commit: bool,
    /// What failed when no database error says it: a decrease found no
    /// usage row to take from, or the commit's outcome could not be told.
    message: Option<String>,
    /// Galera: the transaction was rolled back and no error said so (its
    /// marker was gone). Nothing was written: a conflict.
    silent: bool,
}

impl Failed {
    fn before(error: mysql::Error) -> Self {
        Failed {
            error: Some(error),
            at_commit: false,
            message: None,
            silent: false,
        }
    }

    fn message(message: String) -> Self {
        Failed {
            error: None,
            at_commit: false,
            message: Some(message),
            silent: false,
        }
    }

    fn silent() -> Self {
        Failed {
            error: None,
            at_commit: false,
            message: None,
            silent: true,
        }
    }

    fn storage(self) -> StorageError {
        match (self.error, self.message) {
            (Some(e), _) => storage(e),
            (None, message) => StorageError::new(message.unwrap_or_default()),
        }
    }

    fn is_conflict(&self) -> bool {
        self.silent || self.error.as_ref().is_some_and(is_conflict)
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
        let galera = match conn.query_first::<i64, _>("SELECT @@wsrep_on") {
            Ok(on) => on == Some(1),
            // MySQL and MariaDB builds without Galera have no such variable.
            Err(mysql::Error::MySqlError(e)) if e.code == ER_UNKNOWN_SYSTEM_VARIABLE => false,
            Err(e) => return Err(storage(e)),
        };
        let marker = if galera {
            // Causal reads: a read waits until this node applied every
            // write the cluster committed before it, so a caller whose
            // consume committed through another node reads it back (a
            // release of it is not refused as below zero).
            conn.query_drop("SET SESSION wsrep_sync_wait = 1")
                .map_err(storage)?;
            let token: Option<String> = conn.query_first("SELECT UUID()").map_err(storage)?;
            let token =
                token.ok_or_else(|| StorageError::new("mariadb: UUID() answered no row"))?;
            let literal = mysql::Value::from(token).as_sql(conn.no_backslash_escape());
            Some((literal, 0))
        } else {
            None
        };
        Ok(MariadbStore {
            conn,
            causes: ConflictCauses::default(),
            round_trips: 0,
            locked: false,
            marker,
        })
    }

    /// Whether the server replicates with Galera, so that commits carry a
    /// marker and no locked attempts are taken (see the module docs).
    pub fn is_galera(&self) -> bool {
        self.marker.is_some()
    }

    /// Round trips to the server that `read`, `commit`, `read_batch` and
    /// `commit_batch` made on this connection so far. An uncontended
    /// consume is 3: the read, `START TRANSACTION` with the compares and
    /// the writes, `COMMIT`; on Galera 4 (the marker's check).
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
    /// statement's count (the rows it changed, or for a SELECT the rows it
    /// returned), up to the first error (with it).
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
            let mut rows = 0;
            for row in set.by_ref() {
                if let Err(e) = row {
                    return (counts, Some(e));
                }
                rows += 1;
            }
            counts.push(affected + rows);
        }
        (counts, None)
    }

    fn rollback(&mut self) {
        self.round_trips += 1;
        let _ = self.conn.query_drop("ROLLBACK");
    }

    /// One round trip: `START TRANSACTION`, one compare-and-update per
    /// claimed row in the order given (so rows are locked in exactly that
    /// order), the bump of `bump`'s generation (a pure release) and the
    /// writes of `deltas`; then, when every compare matched and every
    /// decrease found its row (the counts say), `COMMIT` (a second). A miss
    /// rolls back and is a conflict, also when a write after it failed (its
    /// snapshot was stale; the server answers the counts up to the error).
    /// Inside a locked attempt's transaction (ended here either way) no
    /// `START TRANSACTION` is sent: in MariaDB it would commit the open one.
    ///
    /// On Galera the transaction first sets its marker's `seq`, every
    /// statement after it is guarded by [`MariadbStore::visible`], the
    /// round trip ends by selecting the marker (not visible: the
    /// transaction was rolled back under it), and after COMMIT the marker
    /// decides the outcome (a third round trip).
    fn compare_then(
        &mut self,
        claim: &[ClaimEntry],
        bump: Option<&str>,
        deltas: &[(String, String, i64)],
    ) -> Result<CommitOutcome, Failed> {
        let begin = !std::mem::take(&mut self.locked);
        let mut sql = String::from(if begin { "START TRANSACTION;" } else { "" });
        let (marked, guard) = self.mark(&mut sql);
        let galera = marked.is_some();
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
                " UPDATE delimiter_generations SET generation = generation + 1 WHERE project_id = {} AND generation = {generation}{guard};",
                self.literal(&entry.project)
            );
        }
        if let Some(project) = bump {
            let _ = write!(
                sql,
                " UPDATE delimiter_generations SET generation = generation + 1 WHERE project_id = {}{guard};",
                self.literal(project)
            );
        }
        sql.push_str(&self.writes(deltas, &guard));
        if let Some((token, seq)) = &marked {
            let _ = write!(
                sql,
                " SELECT 1 FROM DUAL WHERE {};",
                Self::visible(token, *seq)
            );
        }
        let started = Instant::now();
        let (counts, error) = if sql.is_empty() {
            (Vec::new(), None)
        } else {
            self.multi(&sql)
        };
        // A statement guarded by the marker after a silent rollback changed
        // nothing, like a miss: the marker's own SELECT tells them apart.
        if galera && error.is_none() && counts.last() != Some(&1) {
            self.causes.silent_rollbacks += 1;
            self.rollback();
            return Err(Failed::silent());
        }
        let compared = usize::from(begin) + usize::from(galera);
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
        let written = compared + claim.len() + usize::from(bump.is_some());
        if let Some(message) = missing_row(deltas, counts.get(written..).unwrap_or(&[])) {
            self.rollback();
            return Err(Failed::message(message));
        }
        self.round_trips += 1;
        let committed = self.conn.query_drop("COMMIT");
        if let Some((token, seq)) = marked {
            return self.marked_outcome(committed, &token, seq);
        }
        if let Err(error) = committed {
            self.rollback();
            return Err(Failed {
                error: Some(error),
                at_commit: true,
                message: None,
                silent: false,
            });
        }
        Ok(CommitOutcome::Committed)
    }

    /// Galera: appends to `sql` (the transaction's first statements) the
    /// setting of this connection's marker to a new `seq`, and returns the
    /// marker and the guard (`" AND ..."`) every later statement carries;
    /// off Galera, nothing and an empty guard.
    fn mark(&mut self, sql: &mut String) -> (Option<(String, u64)>, String) {
        let Some((token, seq)) = self.next_marker() else {
            return (None, String::new());
        };
        let _ = write!(
            sql,
            " INSERT INTO delimiter_commit_markers (token, seq) VALUES ({token}, {seq})
              ON DUPLICATE KEY UPDATE seq = VALUES(seq);"
        );
        let guard = format!(" AND {}", Self::visible(&token, seq));
        (Some((token, seq)), guard)
    }

    /// Galera: this connection's marker and a `seq` it never used (none
    /// off Galera).
    fn next_marker(&mut self) -> Option<(String, u64)> {
        let (token, seq) = self.marker.as_mut()?;
        *seq += 1;
        Some((token.clone(), *seq))
    }

    /// SQL that is true while the marker row holds `seq`: inside the
    /// transaction that set it, or after that transaction committed.
    fn visible(token: &str, seq: u64) -> String {
        format!(
            "EXISTS (SELECT 1 FROM delimiter_commit_markers WHERE token = {token} AND seq = {seq})"
        )
    }

    /// Galera, after COMMIT answered `answer`: the transaction took effect
    /// exactly when the marker holds `seq` (read on this node, which
    /// applied its own commit before answering), whatever COMMIT said. A
    /// read the cluster aborts (a stale abort can reach the next statement)
    /// runs again; when it cannot be read, the outcome is unknown, and that
    /// is a storage error, never a conflict (a retry could write twice).
    fn marked_outcome(
        &mut self,
        answer: mysql::Result<()>,
        token: &str,
        seq: u64,
    ) -> Result<CommitOutcome, Failed> {
        if answer.is_err() {
            self.rollback();
        }
        let check = format!("SELECT seq FROM delimiter_commit_markers WHERE token = {token}");
        let mut attempt = 1;
        let stored = loop {
            self.round_trips += 1;
            match self.conn.query_first::<u64, _>(&check) {
                Ok(stored) => break stored,
                Err(e) if is_conflict(&e) && attempt < READ_ATTEMPTS => {
                    attempt += 1;
                    self.causes.read_retries += 1;
                }
                Err(e) => {
                    return Err(Failed::message(format!(
                        "mariadb: COMMIT answered {}, and whether it took effect could not be read: {e}",
                        match &answer {
                            Ok(()) => "OK".to_string(),
                            Err(e) => e.to_string(),
                        },
                    )));
                }
            }
        };
        match (answer, stored == Some(seq)) {
            (Ok(()), true) => Ok(CommitOutcome::Committed),
            (Err(_), true) => {
                self.causes.misreported_commits += 1;
                Ok(CommitOutcome::Committed)
            }
            (Ok(()), false) => {
                self.causes.misreported_commits += 1;
                Err(Failed::silent())
            }
            (Err(error), false) => Err(Failed {
                error: Some(error),
                at_commit: true,
                message: None,
                silent: false,
            }),
        }
    }

    /// The writes of `deltas` in the open transaction, one round trip; a
    /// decrease that found no row is a failure.
    fn write(
        &mut self,
        deltas: &[(String, String, i64)],
        marked: Option<&(String, u64)>,
    ) -> Result<(), Failed> {
        let guard = marked.map_or_else(String::new, |(token, seq)| {
            format!(" AND {}", Self::visible(token, *seq))
        });
        let mut sql = self.writes(deltas, &guard);
        if sql.is_empty() {
            return Ok(());
        }
        if let Some((token, seq)) = marked {
            let _ = write!(
                sql,
                " SELECT 1 FROM DUAL WHERE {};",
                Self::visible(token, *seq)
            );
        }
        let (counts, error) = self.multi(&sql);
        if let Some(error) = error {
            return Err(Failed::before(error));
        }
        if marked.is_some() && counts.last() != Some(&1) {
            return Err(Failed::silent());
        }
        match missing_row(deltas, &counts) {
            Some(message) => Err(Failed::message(message)),
            None => Ok(()),
        }
    }

    /// The usage writes of `deltas` (project, resource, change): an
    /// increase is an upsert, a decrease an update whose CHECK (usage >= 0)
    /// fails a release below zero (and whose count catches a missing row).
    /// `guard` (`" AND ..."`, or empty) conditions each write (Galera's
    /// marker, see [`MariadbStore::visible`]).
    fn writes(&self, deltas: &[(String, String, i64)], guard: &str) -> String {
        let mut sql = String::new();
        for (project, resource, delta) in deltas {
            let (p, r) = (self.literal(project), self.literal(resource));
            if *delta > 0 && guard.is_empty() {
                let _ = write!(
                    sql,
                    "INSERT INTO delimiter_usage (project_id, resource, `usage`) VALUES ({p}, {r}, {delta})
                     ON DUPLICATE KEY UPDATE `usage` = `usage` + VALUES(`usage`);"
                );
            } else if *delta > 0 {
                // INSERT ... SELECT, so that the guard can apply to it.
                let _ = write!(
                    sql,
                    "INSERT INTO delimiter_usage (project_id, resource, `usage`)
                     SELECT {p}, {r}, {delta} FROM DUAL WHERE TRUE{guard}
                     ON DUPLICATE KEY UPDATE `usage` = `usage` + VALUES(`usage`);"
                );
            } else {
                let _ = write!(
                    sql,
                    "UPDATE delimiter_usage SET `usage` = `usage` + ({delta}) WHERE project_id = {p} AND resource = {r}{guard};"
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
                // A silent rollback (Galera, seen by the marker) is a
                // brute-force abort whose error the server did not report.
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
        // On Galera marked as a commit is (see `compare_then`): writes the
        // server ran after a silent rollback would not be rolled back here.
        let mut sql = String::from("START TRANSACTION;");
        let (marked, guard) = self.mark(&mut sql);
        for entry in claim {
            let _ = write!(
                sql,
                " UPDATE delimiter_generations SET generation = generation + 1 WHERE project_id = {} AND generation = {}{guard};",
                self.literal(&entry.project),
                entry.generation
            );
        }
        if self.multi(&sql).1.is_some() {
            self.rollback();
            return Err(error);
        }
        for (index, member) in members.iter().enumerate() {
            match self.write(
                &summed_deltas(std::slice::from_ref(member)),
                marked.as_ref(),
            ) {
                Ok(()) => {}
                // Rolled back under the search: which member fails is unknown.
                Err(failed) if failed.silent => {
                    self.rollback();
                    return Err(error);
                }
                Err(failed) => {
                    self.rollback();
                    return Ok(BatchOutcome::MemberFailed(MemberFailure {
                        index: index as u32,
                        message: failed.storage().message,
                    }));
                }
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
        let bump = (rows.is_empty() && !deltas.is_empty()).then_some(request.project.as_str());
        let result = self.compare_then(&rows, bump, &deltas);
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
        if self.marker.is_some() {
            // FOR UPDATE locks rows on this node only; certification decides
            // between nodes whatever was locked here.
            return Ok(None);
        }
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
        let result = self.compare_then(claim, None, &summed_deltas(members));
        match self.outcome(result) {
            Ok(CommitOutcome::Committed) => Ok(BatchOutcome::Committed),
            Ok(lost) => Ok(BatchOutcome::Conflict(lost)),
            Err(failed) => self.find_failed_member(claim, members, failed.storage()),
        }
    }
}
