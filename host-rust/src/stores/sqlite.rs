//! A SQLite store: the generations table and usage rows of a service, with
//! the commit done exactly as the spec says, in one transaction.

use super::sql::{PATH_CTE, SCHEMA, SUBTREE_CTE, batch_read_sql, batch_snapshot_from_rows};
use crate::{
    BatchOutcome, ClaimEntry, CommitOutcome, Generation, Limits, MemberFailure, PathUsage, Project,
    ProjectLimit, RegisteredLimit, Request, ResourceUsage, Snapshot, StorageError, Store, Usage,
    UsageEntry,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

/// A commit that waited this long for SQLite's write lock had waited for
/// another writer: its conflict is [`CommitOutcome::ConflictAfterWait`].
pub const WAITED: Duration = Duration::from_millis(1);

/// A [`Store`] over a SQLite database (bundled SQLite, WAL mode).
///
/// `read` sends the component only the requesting project's path, with
/// usage pre-summed per subtree by a recursive query ([`Usage::Path`]), so
/// trees of any size cost one path's worth of data. `commit` runs, in one
/// `BEGIN IMMEDIATE` transaction, `UPDATE delimiter_generations SET
/// generation = generation + 1 WHERE project_id = ? AND generation = ?` for
/// every claim entry together with the usage upserts, and rolls everything
/// back on the first statement that matches no row. Open one per thread
/// (a connection is not `Sync`); several may share one database file.
///
/// A locked attempt ([`RetryPolicy::lock_after_conflict`](crate::RetryPolicy))
/// takes SQLite's write lock with `BEGIN IMMEDIATE` and reads, decides and
/// commits inside it (SQLite locks the whole database, so the row order is
/// moot).
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    /// A `read_locked` transaction is open.
    locked: bool,
}

fn storage(e: rusqlite::Error) -> StorageError {
    StorageError::new(format!("sqlite: {e}"))
}

fn to_sql_generation(g: u64) -> Result<i64, StorageError> {
    i64::try_from(g).map_err(|_| StorageError::new(format!("generation {g} does not fit SQLite")))
}

fn from_sql_generation(g: i64) -> Result<u64, StorageError> {
    u64::try_from(g).map_err(|_| StorageError::new(format!("negative generation {g}")))
}

impl SqliteStore {
    /// Opens (creating the file if needed) the database at `path`. Creates
    /// no table: see [`SqliteStore::create_schema`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StorageError> {
        Self::from_connection(Connection::open(path).map_err(storage)?)
    }

    /// A private in-memory database (empty: call
    /// [`SqliteStore::create_schema`]).
    pub fn open_in_memory() -> Result<Self, StorageError> {
        Self::from_connection(Connection::open_in_memory().map_err(storage)?)
    }

    /// Uses `conn`. Creates no table: schema changes are a deployment's
    /// decision, made once (see [`SqliteStore::create_schema`]), not a side
    /// effect of every connection.
    pub fn from_connection(conn: Connection) -> Result<Self, StorageError> {
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(storage)?;
        // WAL: readers do not block the writer. An in-memory database
        // answers "memory", which is fine.
        let _mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(storage)?;
        conn.execute_batch("PRAGMA foreign_keys = ON;")
            .map_err(storage)?;
        Ok(SqliteStore {
            conn,
            locked: false,
        })
    }

    /// Creates the Delimiter tables that are missing (`CREATE TABLE IF NOT
    /// EXISTS`: existing tables are left as they are). Run it once, when
    /// the database is set up.
    pub fn create_schema(&mut self) -> Result<(), StorageError> {
        self.conn.execute_batch(SCHEMA).map_err(storage)
    }

    /// The underlying connection, for a service's own tables and queries.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Adds a project (generation 1), under `parent` or as a root.
    pub fn add_project(&mut self, project: &Project) -> Result<(), StorageError> {
        let tx = self.conn.transaction().map_err(storage)?;
        tx.execute(
            "INSERT INTO delimiter_projects (project_id, parent_id) VALUES (?1, ?2)",
            params![project.id, project.parent],
        )
        .map_err(storage)?;
        tx.execute(
            "INSERT INTO delimiter_generations (project_id, generation) VALUES (?1, 1)",
            params![project.id],
        )
        .map_err(storage)?;
        tx.commit().map_err(storage)
    }

    /// Sets (or replaces) the registered and project limits given.
    pub fn set_limits(&mut self, limits: &Limits) -> Result<(), StorageError> {
        let tx = self.conn.transaction().map_err(storage)?;
        for RegisteredLimit { resource, limit } in &limits.registered {
            tx.execute(
                "INSERT INTO delimiter_registered_limits (resource, limit_value) VALUES (?1, ?2)
                 ON CONFLICT (resource) DO UPDATE SET limit_value = excluded.limit_value",
                params![resource, limit],
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
                "INSERT INTO delimiter_project_limits (project_id, resource, limit_value)
                 VALUES (?1, ?2, ?3)
                 ON CONFLICT (project_id, resource) DO UPDATE SET limit_value = excluded.limit_value",
                params![project, resource, limit],
            )
            .map_err(storage)?;
        }
        tx.commit().map_err(storage)
    }

    /// Sets what `project` uses of `resource`, bumping its generation in the
    /// same transaction.
    pub fn set_usage(
        &mut self,
        project: &str,
        resource: &str,
        usage: i64,
    ) -> Result<(), StorageError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(storage)?;
        tx.execute(
            "INSERT INTO delimiter_usage (project_id, resource, usage) VALUES (?1, ?2, ?3)
             ON CONFLICT (project_id, resource) DO UPDATE SET usage = excluded.usage",
            params![project, resource, usage],
        )
        .map_err(storage)?;
        tx.execute(
            "UPDATE delimiter_generations SET generation = generation + 1 WHERE project_id = ?1",
            params![project],
        )
        .map_err(storage)?;
        tx.commit().map_err(storage)
    }

    /// What `project` uses of `resource`.
    pub fn usage(&self, project: &str, resource: &str) -> Result<i64, StorageError> {
        let usage: Option<i64> = self
            .conn
            .query_row(
                "SELECT usage FROM delimiter_usage WHERE project_id = ?1 AND resource = ?2",
                params![project, resource],
                |r| r.get(0),
            )
            .optional()
            .map_err(storage)?;
        Ok(usage.unwrap_or(0))
    }

    /// The current generation of `project`, if it has one.
    pub fn generation(&self, project: &str) -> Result<Option<u64>, StorageError> {
        let g: Option<i64> = self
            .conn
            .query_row(
                "SELECT generation FROM delimiter_generations WHERE project_id = ?1",
                params![project],
                |r| r.get(0),
            )
            .optional()
            .map_err(storage)?;
        g.map(from_sql_generation).transpose()
    }

    fn read_path(&mut self, project: &str, resources: &[String]) -> Result<Snapshot, StorageError> {
        let wanted: BTreeSet<&str> = resources.iter().map(String::as_str).collect();
        // One read transaction: every SELECT below sees the same snapshot,
        // so the generations are read no later than the usage. (Inside a
        // locked attempt's transaction, that one.)
        let own = if self.locked {
            None
        } else {
            Some(self.conn.unchecked_transaction().map_err(storage)?)
        };
        let tx = &self.conn;

        let generations = rows(
            tx,
            &format!(
                "{PATH_CTE} SELECT g.project_id, g.generation
                   FROM path JOIN delimiter_generations g ON g.project_id = path.project_id
                  ORDER BY path.depth"
            ),
            params![project],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
        )?
        .into_iter()
        .map(|(p, g)| Ok(Generation::new(p, from_sql_generation(g)?)))
        .collect::<Result<Vec<_>, StorageError>>()?;

        let projects = rows(
            tx,
            &format!("{PATH_CTE} SELECT project_id, parent_id FROM path ORDER BY depth"),
            params![project],
            |r| {
                Ok(Project {
                    id: r.get(0)?,
                    parent: r.get(1)?,
                })
            },
        )?;

        let mut local = rows(
            tx,
            "SELECT resource, usage FROM delimiter_usage WHERE project_id = ?1",
            params![project],
            |r| {
                Ok(ResourceUsage {
                    resource: r.get(0)?,
                    usage: r.get(1)?,
                })
            },
        )?;
        local.retain(|u| wanted.contains(u.resource.as_str()));

        // U(a, r) for every a on the path: the usage of a's whole subtree.
        let mut subtree = rows(
            tx,
            &format!(
                "{PATH_CTE}, {SUBTREE_CTE}
                 SELECT subtree.anchor, u.resource, CAST(SUM(u.usage) AS BIGINT)
                   FROM subtree JOIN delimiter_usage u ON u.project_id = subtree.project_id
                  GROUP BY subtree.anchor, u.resource
                  ORDER BY subtree.anchor, u.resource"
            ),
            params![project],
            |r| {
                Ok(UsageEntry {
                    project: r.get(0)?,
                    resource: r.get(1)?,
                    usage: r.get(2)?,
                })
            },
        )?;
        subtree.retain(|u| wanted.contains(u.resource.as_str()));

        let mut registered = rows(
            tx,
            "SELECT resource, limit_value FROM delimiter_registered_limits ORDER BY resource",
            [],
            |r| {
                Ok(RegisteredLimit {
                    resource: r.get(0)?,
                    limit: r.get(1)?,
                })
            },
        )?;
        registered.retain(|l| wanted.contains(l.resource.as_str()));

        let mut project_limits = rows(
            tx,
            &format!(
                "{PATH_CTE} SELECT l.project_id, l.resource, l.limit_value
                   FROM path JOIN delimiter_project_limits l ON l.project_id = path.project_id
                  ORDER BY path.depth, l.resource"
            ),
            params![project],
            |r| {
                Ok(ProjectLimit {
                    project: r.get(0)?,
                    resource: r.get(1)?,
                    limit: r.get(2)?,
                })
            },
        )?;
        project_limits.retain(|l| wanted.contains(l.resource.as_str()));
        if let Some(own) = own {
            own.finish().map_err(storage)?;
        }

        Ok(Snapshot {
            projects,
            limits: Limits {
                registered,
                project: project_limits,
            },
            usage: Usage::Path(PathUsage { local, subtree }),
            generations,
        })
    }
}

/// Runs one query on `tx` and maps every row.
fn rows<T>(
    tx: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StorageError> {
    let mut stmt = tx.prepare(sql).map_err(storage)?;
    let mapped = stmt.query_map(params, map).map_err(storage)?;
    mapped.collect::<Result<Vec<_>, _>>().map_err(storage)
}

impl SqliteStore {
    /// Compares and bumps each of `rows` in the order given; false on a miss.
    fn compare(tx: &Connection, rows: &[ClaimEntry]) -> Result<bool, StorageError> {
        for entry in rows {
            let changed = tx
                .execute(
                    "UPDATE delimiter_generations SET generation = generation + 1
                      WHERE project_id = ?1 AND generation = ?2",
                    params![entry.project, to_sql_generation(entry.generation)?],
                )
                .map_err(storage)?;
            if changed == 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The compares (root first) and, when every one matched, the
    /// request's writes, in the transaction open on `tx`; false on a miss.
    /// Every write moves the project's generation: a pure release has an
    /// empty claim, so it is bumped here.
    fn apply(
        tx: &Connection,
        claim: &[ClaimEntry],
        request: &Request,
    ) -> Result<bool, StorageError> {
        let rows: Vec<ClaimEntry> = claim.iter().rev().cloned().collect();
        if !Self::compare(tx, &rows)? {
            return Ok(false);
        }
        let writes = request.deltas.iter().any(|d| d.delta != 0);
        if writes && !claim.iter().any(|c| c.project == request.project) {
            tx.execute(
                "UPDATE delimiter_generations SET generation = generation + 1 WHERE project_id = ?1",
                params![request.project],
            )
            .map_err(storage)?;
        }
        Self::write_usage(tx, request).map_err(storage)?;
        Ok(true)
    }

    /// Writes `request`'s usage rows. The CHECK (usage >= 0) fails a
    /// release below zero. (Not an upsert: SQLite checks the candidate row
    /// before it resolves the conflict, so a negative delta would always
    /// fail.)
    fn write_usage(tx: &Connection, request: &Request) -> rusqlite::Result<()> {
        for d in request.deltas.iter().filter(|d| d.delta != 0) {
            let updated = tx.execute(
                "UPDATE delimiter_usage SET usage = usage + ?3
                  WHERE project_id = ?1 AND resource = ?2",
                params![request.project, d.resource, d.delta],
            )?;
            if updated == 0 {
                tx.execute(
                    "INSERT INTO delimiter_usage (project_id, resource, usage) VALUES (?1, ?2, ?3)",
                    params![request.project, d.resource, d.delta],
                )?;
            }
        }
        Ok(())
    }
}

impl Store for SqliteStore {
    fn read(&mut self, project: &str, resources: &[String]) -> Result<Snapshot, StorageError> {
        self.read_path(project, resources)
    }

    /// Root first (the one row order): the claim comes from the project up.
    fn commit(
        &mut self,
        claim: &[ClaimEntry],
        request: &Request,
    ) -> Result<CommitOutcome, StorageError> {
        if std::mem::take(&mut self.locked) {
            // In the locked attempt's transaction, ended here either way.
            let ended = match Self::apply(&self.conn, claim, request) {
                Ok(true) => self
                    .conn
                    .execute_batch("COMMIT")
                    .map(|()| CommitOutcome::Committed)
                    .map_err(storage),
                Ok(false) => Ok(CommitOutcome::Conflict),
                Err(e) => Err(e),
            };
            if ended != Ok(CommitOutcome::Committed) {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
            return ended;
        }
        let started = Instant::now();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(storage)?;
        if !Self::apply(&tx, claim, request)? {
            // Dropping `tx` rolls back every statement so far. Waiting for
            // the write lock means the writer that moved the generation
            // has committed: a read made at once sees its write.
            return Ok(if started.elapsed() >= WAITED {
                CommitOutcome::ConflictAfterWait
            } else {
                CommitOutcome::Conflict
            });
        }
        tx.commit().map_err(storage)?;
        Ok(CommitOutcome::Committed)
    }

    /// `BEGIN IMMEDIATE` (SQLite's one write lock), then the read inside
    /// it; the transaction stays open for `commit` or `unlock`.
    fn read_locked(
        &mut self,
        project: &str,
        resources: &[String],
    ) -> Result<Option<Snapshot>, StorageError> {
        self.unlock();
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(storage)?;
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
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    fn batches(&self) -> bool {
        true
    }

    /// One read transaction: the whole trees of the members' roots (see
    /// [`sql::batch_read_sql`](super::sql::batch_read_sql)).
    fn read_batch(
        &mut self,
        projects: &[String],
        resources: &[String],
    ) -> Result<Snapshot, StorageError> {
        let list = |n: usize| format!("IN ({})", vec!["?"; n.max(1)].join(", "));
        let sql = batch_read_sql(
            "usage",
            &list(projects.len()),
            &list(resources.len()),
            &list(resources.len()),
            &list(resources.len()),
        );
        let mut values: Vec<Option<&str>> = Vec::new();
        for names in [projects, resources, resources, resources] {
            if names.is_empty() {
                values.push(None);
            }
            values.extend(names.iter().map(|n| Some(n.as_str())));
        }
        let tx = self.conn.transaction().map_err(storage)?;
        let found = rows(&tx, &sql, rusqlite::params_from_iter(values), |r| {
            Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        tx.finish().map_err(storage)?;
        batch_snapshot_from_rows(found)
    }

    /// One IMMEDIATE transaction: the claims' union in the order given,
    /// then each member's rows; a member whose rows fail rolls everything
    /// back and is reported.
    fn commit_batch(
        &mut self,
        claim: &[ClaimEntry],
        members: &[Request],
    ) -> Result<BatchOutcome, StorageError> {
        let started = Instant::now();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(storage)?;
        if !Self::compare(&tx, claim)? {
            return Ok(BatchOutcome::Conflict(if started.elapsed() >= WAITED {
                CommitOutcome::ConflictAfterWait
            } else {
                CommitOutcome::Conflict
            }));
        }
        for (index, member) in members.iter().enumerate() {
            if let Err(e) = Self::write_usage(&tx, member) {
                return Ok(BatchOutcome::MemberFailed(MemberFailure {
                    index: index as u32,
                    message: storage(e).message,
                }));
            }
        }
        tx.commit().map_err(storage)?;
        Ok(BatchOutcome::Committed)
    }
}
