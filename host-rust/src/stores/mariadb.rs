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

use super::sql::{ConflictCauses, SUBTREE_CTE, snapshot_from_rows};
use crate::{
    ClaimEntry, CommitOutcome, Limits, Project, ProjectLimit, RegisteredLimit, Request, Snapshot,
    StorageError, Store,
};
use mysql::prelude::Queryable;
use mysql::{Conn, IsolationLevel, Opts, TxOpts};

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
}

/// Why a commit failed, for counting conflicts by cause.
struct Failed {
    error: mysql::Error,
    /// Raised by COMMIT itself (on Galera: certification), not by a
    /// statement before it.
    at_commit: bool,
}

impl Failed {
    fn before(error: mysql::Error) -> Self {
        Failed {
            error,
            at_commit: false,
        }
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

    /// Uses `conn`. Creates nothing: see [`MariadbStore::create_schema`].
    pub fn from_conn(conn: Conn) -> Result<Self, StorageError> {
        Ok(MariadbStore {
            conn,
            causes: ConflictCauses::default(),
        })
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
            match self.conn.exec(READ_SQL.as_str(), (project, project)) {
                Ok(rows) => break rows,
                // A read writes nothing: run it again.
                Err(e) if is_conflict(&e) && attempt < READ_ATTEMPTS => {
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

    fn try_commit(
        &mut self,
        claim: &[ClaimEntry],
        request: &Request,
    ) -> Result<CommitOutcome, Failed> {
        let opts = TxOpts::default().set_isolation_level(Some(IsolationLevel::ReadCommitted));
        let mut tx = self.conn.start_transaction(opts).map_err(Failed::before)?;
        // Root first: every claim in every transaction takes its rows in
        // one order (so no deadlock), and the row every consume of a
        // subtree claims, its root, is tried before any other is locked: a
        // loser waits there holding nothing, and leaves at once.
        for entry in claim.iter().rev() {
            let Ok(generation) = i64::try_from(entry.generation) else {
                // No stored generation can equal it: the claim is stale.
                return Ok(CommitOutcome::Conflict);
            };
            tx.exec_drop(
                "UPDATE delimiter_generations SET generation = generation + 1
                  WHERE project_id = ? AND generation = ?",
                (&entry.project, generation),
            )
            .map_err(Failed::before)?;
            if tx.affected_rows() == 0 {
                // Dropping `tx` rolls back every statement so far.
                return Ok(CommitOutcome::Conflict);
            }
        }
        let writes: Vec<_> = request.deltas.iter().filter(|d| d.delta != 0).collect();
        // Every write moves the project's generation; a pure release has an
        // empty claim, so bump it here.
        if !writes.is_empty() && !claim.iter().any(|c| c.project == request.project) {
            tx.exec_drop(
                "UPDATE delimiter_generations SET generation = generation + 1 WHERE project_id = ?",
                (&request.project,),
            )
            .map_err(Failed::before)?;
        }
        for d in writes {
            // CHECK (usage >= 0) fails a release below zero, rolling back.
            // The project's generation row, updated above, serializes writers
            // of this project, so the INSERT cannot race another.
            tx.exec_drop(
                "UPDATE delimiter_usage SET `usage` = `usage` + ? WHERE project_id = ? AND resource = ?",
                (d.delta, &request.project, &d.resource),
            )
            .map_err(Failed::before)?;
            if tx.affected_rows() == 0 {
                tx.exec_drop(
                    "INSERT INTO delimiter_usage (project_id, resource, `usage`) VALUES (?, ?, ?)",
                    (&request.project, &d.resource, d.delta),
                )
                .map_err(Failed::before)?;
            }
        }
        tx.commit().map_err(|error| Failed {
            error,
            at_commit: true,
        })?;
        Ok(CommitOutcome::Committed)
    }
}

impl Store for MariadbStore {
    fn read(&mut self, project: &str, resources: &[String]) -> Result<Snapshot, StorageError> {
        self.read_path(project, resources)
    }

    fn commit(
        &mut self,
        claim: &[ClaimEntry],
        request: &Request,
    ) -> Result<CommitOutcome, StorageError> {
        match self.try_commit(claim, request) {
            Ok(CommitOutcome::Conflict) => {
                self.causes.generation_miss += 1;
                Ok(CommitOutcome::Conflict)
            }
            Ok(outcome) => Ok(outcome),
            Err(Failed { error, at_commit }) if is_conflict(&error) => {
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
            Err(Failed { error, .. }) => Err(storage(error)),
        }
    }
}
