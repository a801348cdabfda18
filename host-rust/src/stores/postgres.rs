//! A PostgreSQL store: the same tables and the same one-transaction commit
//! as [`SqliteStore`](crate::SqliteStore), for services whose workers on many
//! hosts share one database.
//!
//! No serializable isolation and no explicit row locks: `read` takes one
//! REPEATABLE READ, READ ONLY snapshot (so generations and usage come from
//! the same point in time), and `commit` runs at the default READ COMMITTED
//! level, where a concurrent `UPDATE ... WHERE generation = :g` waits for
//! the other writer and then re-checks its WHERE clause against the new row:
//! the loser matches no row and the transaction rolls back as a conflict.

use super::sql::{PATH_CTE, SCHEMA, SUBTREE_CTE};
use crate::{
    ClaimEntry, CommitOutcome, Generation, Limits, PathUsage, Project, ProjectLimit,
    RegisteredLimit, Request, ResourceUsage, Snapshot, StorageError, Store, Usage, UsageEntry,
};
use postgres::error::SqlState;
use postgres::{Client, IsolationLevel, NoTls};

/// A [`Store`] over a PostgreSQL database (the `postgres` crate, no TLS).
/// Open one per thread or worker; any number may share one database.
pub struct PostgresStore {
    client: Client,
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
    /// Connects to `url` (for example `postgresql://postgres@127.0.0.1/test`)
    /// and creates the tables if they are missing.
    pub fn connect(url: &str) -> Result<Self, StorageError> {
        Self::from_client(Client::connect(url, NoTls).map_err(storage)?)
    }

    /// Uses `client` (with its search_path as set), creating the tables if
    /// they are missing.
    pub fn from_client(mut client: Client) -> Result<Self, StorageError> {
        client.batch_execute(SCHEMA).map_err(storage)?;
        Ok(PostgresStore { client })
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
        // One snapshot for every SELECT below: generations are read no
        // later than the usage they go with.
        let mut tx = self
            .client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(storage)?;

        let mut generations = Vec::new();
        for row in tx
            .query(
                &format!(
                    "{PATH_CTE} SELECT g.project_id, g.generation
                       FROM path JOIN delimiter_generations g ON g.project_id = path.project_id
                      ORDER BY path.depth"
                ),
                &[&project],
            )
            .map_err(storage)?
        {
            generations.push(Generation::new(
                row.get::<_, String>(0),
                from_sql_generation(row.get(1))?,
            ));
        }

        let projects = tx
            .query(
                &format!("{PATH_CTE} SELECT project_id, parent_id FROM path ORDER BY depth"),
                &[&project],
            )
            .map_err(storage)?
            .iter()
            .map(|r| Project {
                id: r.get(0),
                parent: r.get(1),
            })
            .collect();

        let local = tx
            .query(
                "SELECT resource, usage FROM delimiter_usage WHERE project_id = $1 AND resource = ANY($2)",
                &[&project, &wanted],
            )
            .map_err(storage)?
            .iter()
            .map(|r| ResourceUsage { resource: r.get(0), usage: r.get(1) })
            .collect();

        // U(a, r) for every a on the path: the usage of a's whole subtree.
        let subtree = tx
            .query(
                &format!(
                    "{PATH_CTE}, {SUBTREE_CTE}
                     SELECT subtree.anchor, u.resource, CAST(SUM(u.usage) AS BIGINT)
                       FROM subtree JOIN delimiter_usage u ON u.project_id = subtree.project_id
                      WHERE u.resource = ANY($2)
                      GROUP BY subtree.anchor, u.resource
                      ORDER BY subtree.anchor, u.resource"
                ),
                &[&project, &wanted],
            )
            .map_err(storage)?
            .iter()
            .map(|r| UsageEntry {
                project: r.get(0),
                resource: r.get(1),
                usage: r.get(2),
            })
            .collect();

        let registered = tx
            .query(
                "SELECT resource, limit_value FROM delimiter_registered_limits
                  WHERE resource = ANY($1) ORDER BY resource",
                &[&wanted],
            )
            .map_err(storage)?
            .iter()
            .map(|r| RegisteredLimit {
                resource: r.get(0),
                limit: r.get(1),
            })
            .collect();

        let project_limits = tx
            .query(
                &format!(
                    "{PATH_CTE} SELECT l.project_id, l.resource, l.limit_value
                       FROM path JOIN delimiter_project_limits l ON l.project_id = path.project_id
                      WHERE l.resource = ANY($2)
                      ORDER BY path.depth, l.resource"
                ),
                &[&project, &wanted],
            )
            .map_err(storage)?
            .iter()
            .map(|r| ProjectLimit {
                project: r.get(0),
                resource: r.get(1),
                limit: r.get(2),
            })
            .collect();
        tx.commit().map_err(storage)?;

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

    fn try_commit(
        &mut self,
        claim: &[ClaimEntry],
        request: &Request,
    ) -> Result<CommitOutcome, postgres::Error> {
        let mut tx = self.client.transaction()?;
        for entry in claim {
            let generation = match to_sql_generation(entry.generation) {
                Ok(g) => g,
                // No stored generation can equal it: the claim is stale.
                Err(_) => return Ok(CommitOutcome::Conflict),
            };
            let changed = tx.execute(
                "UPDATE delimiter_generations SET generation = generation + 1
                  WHERE project_id = $1 AND generation = $2",
                &[&entry.project, &generation],
            )?;
            if changed == 0 {
                // Dropping `tx` rolls back every statement so far.
                return Ok(CommitOutcome::Conflict);
            }
        }
        let writes: Vec<_> = request.deltas.iter().filter(|d| d.delta != 0).collect();
        // Every write moves the project's generation; a pure release has an
        // empty claim, so bump it here.
        if !writes.is_empty() && !claim.iter().any(|c| c.project == request.project) {
            tx.execute(
                "UPDATE delimiter_generations SET generation = generation + 1 WHERE project_id = $1",
                &[&request.project],
            )?;
        }
        for d in writes {
            // CHECK (usage >= 0) fails a release below zero, rolling back.
            // Not an upsert: PostgreSQL checks the proposed row before it
            // resolves the conflict, so a negative delta would always fail.
            // The project's generation row, updated above, serializes writers
            // of this project, so the INSERT cannot race another.
            let updated = tx.execute(
                "UPDATE delimiter_usage SET usage = usage + $3 WHERE project_id = $1 AND resource = $2",
                &[&request.project, &d.resource, &d.delta],
            )?;
            if updated == 0 {
                tx.execute(
                    "INSERT INTO delimiter_usage (project_id, resource, usage) VALUES ($1, $2, $3)",
                    &[&request.project, &d.resource, &d.delta],
                )?;
            }
        }
        tx.commit()?;
        Ok(CommitOutcome::Committed)
    }
}

impl Store for PostgresStore {
    fn read(&mut self, project: &str, resources: &[String]) -> Result<Snapshot, StorageError> {
        self.read_path(project, resources)
    }

    fn commit(
        &mut self,
        claim: &[ClaimEntry],
        request: &Request,
    ) -> Result<CommitOutcome, StorageError> {
        match self.try_commit(claim, request) {
            Ok(outcome) => Ok(outcome),
            Err(e) if is_conflict(&e) => Ok(CommitOutcome::Conflict),
            Err(e) => Err(storage(e)),
        }
    }
}
