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

use super::sql::{PATH_CTE, SCHEMA, SUBTREE_CTE, snapshot_from_rows};
use crate::{
    ClaimEntry, CommitOutcome, Limits, Project, ProjectLimit, RegisteredLimit, Request, Snapshot,
    StorageError, Store,
};
use postgres::error::SqlState;
use postgres::{Client, NoTls, Statement};

/// A [`Store`] over a PostgreSQL database (the `postgres` crate, no TLS).
/// Open one per thread or worker; any number may share one database.
pub struct PostgresStore {
    client: Client,
    /// Prepared on first use, dropped after any error (a statement may
    /// outlive a schema change), so that the next call prepares afresh.
    statements: Option<Statements>,
}

/// The statements `read` and `commit` run. Prepared once per connection:
/// a statement given as text costs two round trips (prepare, execute), a
/// prepared one costs one.
struct Statements {
    read: Statement,
    bump: Statement,
    bump_project: Statement,
    add_usage: Statement,
    insert_usage: Statement,
}

impl Statements {
    fn prepare(client: &mut Client) -> Result<Self, postgres::Error> {
        Ok(Statements {
            read: client.prepare(&read_sql())?,
            bump: client.prepare(
                "UPDATE delimiter_generations SET generation = generation + 1
                  WHERE project_id = $1 AND generation = $2",
            )?,
            bump_project: client.prepare(
                "UPDATE delimiter_generations SET generation = generation + 1 WHERE project_id = $1",
            )?,
            add_usage: client.prepare(
                "UPDATE delimiter_usage SET usage = usage + $3 WHERE project_id = $1 AND resource = $2",
            )?,
            insert_usage: client.prepare(
                "INSERT INTO delimiter_usage (project_id, resource, usage) VALUES ($1, $2, $3)",
            )?,
        })
    }
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

fn to_sql_generation(g: u64) -> Result<i64, StorageError> {
    i64::try_from(g).map_err(|_| StorageError::new(format!("generation {g} does not fit BIGINT")))
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
        })
    }

    /// Creates the Delimiter tables that are missing (`CREATE TABLE IF NOT
    /// EXISTS`: existing tables are left as they are). Run it once, at
    /// deployment or from a migration.
    pub fn create_schema(&mut self) -> Result<(), StorageError> {
        self.client.batch_execute(SCHEMA).map_err(storage)
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
        let statements = prepared(&mut self.client, &mut self.statements).map_err(storage)?;
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

    fn try_commit(
        &mut self,
        claim: &[ClaimEntry],
        request: &Request,
    ) -> Result<CommitOutcome, postgres::Error> {
        let s = prepared(&mut self.client, &mut self.statements)?;
        let mut tx = self.client.transaction()?;
        // Root first: every claim in every transaction takes its rows in
        // one order (so no deadlock), and the row every consume of a
        // subtree claims, its root, is tried before any other is locked: a
        // loser waits there holding nothing, and leaves at once.
        for entry in claim.iter().rev() {
            let generation = match to_sql_generation(entry.generation) {
                Ok(g) => g,
                // No stored generation can equal it: the claim is stale.
                Err(_) => return Ok(CommitOutcome::Conflict),
            };
            let changed = tx.execute(&s.bump, &[&entry.project, &generation])?;
            if changed == 0 {
                // Dropping `tx` rolls back every statement so far.
                return Ok(CommitOutcome::Conflict);
            }
        }
        let writes: Vec<_> = request.deltas.iter().filter(|d| d.delta != 0).collect();
        // Every write moves the project's generation; a pure release has an
        // empty claim, so bump it here.
        if !writes.is_empty() && !claim.iter().any(|c| c.project == request.project) {
            tx.execute(&s.bump_project, &[&request.project])?;
        }
        for d in writes {
            // CHECK (usage >= 0) fails a release below zero, rolling back.
            // Not an upsert: PostgreSQL checks the proposed row before it
            // resolves the conflict, so a negative delta would always fail.
            // The project's generation row, updated above, serializes writers
            // of this project, so the INSERT cannot race another.
            let updated = tx.execute(&s.add_usage, &[&request.project, &d.resource, &d.delta])?;
            if updated == 0 {
                tx.execute(&s.insert_usage, &[&request.project, &d.resource, &d.delta])?;
            }
        }
        tx.commit()?;
        Ok(CommitOutcome::Committed)
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

    fn commit(
        &mut self,
        claim: &[ClaimEntry],
        request: &Request,
    ) -> Result<CommitOutcome, StorageError> {
        match self.try_commit(claim, request) {
            Ok(outcome) => Ok(outcome),
            Err(e) if is_conflict(&e) => Ok(CommitOutcome::Conflict),
            Err(e) => {
                self.statements = None;
                Err(storage(e))
            }
        }
    }
}
