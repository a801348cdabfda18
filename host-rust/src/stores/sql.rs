//! The SQL the database stores share: the schema, the recursive queries
//! over the project tree, the one-statement path reads of PostgreSQL and
//! MariaDB, and the snapshot their rows make. Public so that a service (or
//! a benchmark) that reads inside a transaction of its own, for example
//! one holding row locks, reads exactly what the stores read. The CTEs are
//! written in the common subset of SQLite and PostgreSQL (`$1` is a
//! positional parameter in both; BIGINT is a 64-bit integer in both).

use crate::*;

pub use super::mariadb::{PATH_CTE as MARIADB_PATH_CTE, read_sql as mariadb_read_sql};
pub use super::postgres::read_sql as postgres_read_sql;

/// Conflicts a store's commits reported, by cause (every one is retried
/// alike by the driver; the causes tell an operator what contends), and the
/// reads it ran again because a conflict aborted them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConflictCauses {
    /// A claimed generation had moved: another commit won the race.
    pub generation_miss: u64,
    /// Aborted by another transaction before COMMIT: on Galera a brute-force
    /// abort by a replicated write or DDL; on one server a deadlock or a
    /// lock wait timeout.
    pub brute_force_abort: u64,
    /// Failed at COMMIT: on Galera, certification (a rival node's
    /// transaction on the same rows was ordered first).
    pub certification_failure: u64,
    /// Reads run again after a conflict aborted them (on Galera, a
    /// replicated DDL); not conflicts of a commit.
    pub read_retries: u64,
    /// Galera: commits whose COMMIT answer the commit marker contradicted
    /// (an OK for a transaction a brute-force abort had rolled back, or an
    /// error for one that took effect). Each is reported as what happened.
    pub misreported_commits: u64,
    /// Galera: transactions rolled back while their statements ran, with
    /// no error; the marker's guard made the statements after it write
    /// nothing (counted in `brute_force_abort` too).
    pub silent_rollbacks: u64,
}

/// The tables (created if missing), from `conformance/storage/schema.sql`,
/// the schema every host's reference stores share. `delimiter_generations` is the
/// generations table keyed by project; `delimiter_usage` holds the usage
/// rows a commit writes. Limits live beside them. (NOT NULL on the text
/// keys because SQLite, unlike PostgreSQL, lets a non-integer primary key
/// be NULL.)
pub(crate) const SCHEMA: &str = include_str!("../../storage/schema.sql");

/// `path`: the requesting project ($1) and its ancestors, from the project
/// up. The depth bound stops a cyclic parent chain; the component then
/// reports it.
pub const PATH_CTE: &str = "
WITH RECURSIVE path (project_id, parent_id, depth) AS (
    SELECT project_id, parent_id, 0 FROM delimiter_projects WHERE project_id = $1
    UNION ALL
    SELECT p.project_id, p.parent_id, path.depth + 1
      FROM delimiter_projects p JOIN path ON p.project_id = path.parent_id
     WHERE path.depth < 1024
)";

/// Follows [`PATH_CTE`] (after a comma): `subtree` pairs every node of the
/// path (`anchor`) with every project of its subtree, so that grouping by
/// anchor sums U(a, r).
pub const SUBTREE_CTE: &str = "
subtree (anchor, project_id, depth) AS (
    SELECT project_id, project_id, 0 FROM path
    UNION ALL
    SELECT subtree.anchor, c.project_id, subtree.depth + 1
      FROM delimiter_projects c JOIN subtree ON c.parent_id = subtree.project_id
     WHERE subtree.depth < 1024
)";

/// The snapshot from the rows of a one-statement path read
/// ([`postgres_read_sql`], [`mariadb_read_sql`]): rows of (kind, a, b, n),
/// kind 0 the path (project, parent, generation) from the project up, 1 the
/// project's own usage (resource, usage), 2 U(a, r) for each a on the path
/// (anchor, resource, sum), 3 registered limits (resource, limit), 4
/// project limits on the path (project, resource, limit). Rows of resources
/// not `wanted` are dropped.
pub fn snapshot_from_rows(
    rows: impl IntoIterator<Item = ReadRow>,
    wanted: impl Fn(&str) -> bool,
) -> Result<Snapshot, StorageError> {
    let (mut s, parts) = fold_rows(rows, wanted)?;
    s.usage = Usage::Path(PathUsage {
        local: parts.local,
        subtree: parts.subtree,
    });
    Ok(s)
}

/// The usage rows of a read, by form.
#[derive(Default)]
struct UsageParts {
    /// Kind 1: the requesting project's own usage.
    local: Vec<ResourceUsage>,
    /// Kind 2: U(a, r) along the path.
    subtree: Vec<UsageEntry>,
    /// Kind 5: any project's own usage (the local form).
    entries: Vec<UsageEntry>,
}

/// Every row kind of the one-statement reads: the snapshot without its
/// usage, and the usage rows by form.
fn fold_rows(
    rows: impl IntoIterator<Item = ReadRow>,
    wanted: impl Fn(&str) -> bool,
) -> Result<(Snapshot, UsageParts), StorageError> {
    fn present<T>(v: Option<T>, column: &str) -> Result<T, StorageError> {
        v.ok_or_else(|| StorageError::new(format!("unexpected NULL {column}")))
    }
    let mut s = Snapshot::default();
    let mut parts = UsageParts::default();
    for (kind, a, b, n) in rows {
        if kind != 0 && !b.as_deref().is_some_and(&wanted) {
            continue;
        }
        match kind {
            0 => {
                let id = present(a, "project_id")?;
                if let Some(g) = n {
                    let g = u64::try_from(g)
                        .map_err(|_| StorageError::new(format!("negative generation {g}")))?;
                    s.generations.push(Generation::new(id.clone(), g));
                }
                s.projects.push(Project { id, parent: b });
            }
            1 => parts.local.push(ResourceUsage::new(
                present(b, "resource")?,
                present(n, "usage")?,
            )),
            2 => parts.subtree.push(UsageEntry::new(
                present(a, "anchor")?,
                present(b, "resource")?,
                present(n, "usage")?,
            )),
            3 => s.limits.registered.push(RegisteredLimit::new(
                present(b, "resource")?,
                present(n, "limit_value")?,
            )),
            5 => parts.entries.push(UsageEntry::new(
                present(a, "project_id")?,
                present(b, "resource")?,
                present(n, "usage")?,
            )),
            _ => s.limits.project.push(ProjectLimit::new(
                present(a, "project_id")?,
                present(b, "resource")?,
                present(n, "limit_value")?,
            )),
        }
    }
    Ok((s, parts))
}

/// The one-statement batch read of PostgreSQL and MariaDB, as a template:
/// `{projects}` and `{resources}` are the dialect's "is one of" tests
/// (`= ANY($1)` or `IN (?, ...)`), `usage` the usage column's name as
/// the dialect quotes it. It reads whole trees: every project
/// under the roots of the members' projects, each with its generation (kind
/// 0: project, parent, generation), their local usage of the resources
/// (kind 5: project, resource, usage), the registered limits (kind 3) and
/// the trees' project limits (kind 4), so that the snapshot's local usage
/// sums every subtree a member's path needs. The depth bounds stop cyclic
/// parent chains (a cycle has no root, so its projects are unknown).
pub fn batch_read_sql(
    usage: &str,
    projects: &str,
    resources_1: &str,
    resources_2: &str,
    resources_3: &str,
) -> String {
    format!(
        "WITH RECURSIVE up (project_id, parent_id, depth) AS (
             SELECT project_id, parent_id, 0 FROM delimiter_projects WHERE project_id {projects}
             UNION ALL
             SELECT p.project_id, p.parent_id, up.depth + 1
               FROM delimiter_projects p JOIN up ON p.project_id = up.parent_id
              WHERE up.depth < 1024
         ), tree (project_id, parent_id, depth) AS (
             SELECT DISTINCT project_id, parent_id, 0 FROM up WHERE parent_id IS NULL
             UNION ALL
             SELECT c.project_id, c.parent_id, tree.depth + 1
               FROM delimiter_projects c JOIN tree ON c.parent_id = tree.project_id
              WHERE tree.depth < 1024
         )
         SELECT 0 AS kind, t.project_id AS a, t.parent_id AS b, g.generation AS n
           FROM tree t LEFT JOIN delimiter_generations g ON g.project_id = t.project_id
         UNION ALL
         SELECT 5, u.project_id, u.resource, u.{usage}
           FROM delimiter_usage u JOIN tree t ON t.project_id = u.project_id
          WHERE u.resource {resources_1}
         UNION ALL
         SELECT 3, NULL, r.resource, r.limit_value
           FROM delimiter_registered_limits r WHERE r.resource {resources_2}
         UNION ALL
         SELECT 4, l.project_id, l.resource, l.limit_value
           FROM delimiter_project_limits l JOIN tree t ON t.project_id = l.project_id
          WHERE l.resource {resources_3}"
    )
}

/// One row of a one-statement read: (kind, a, b, n).
pub type ReadRow = (i64, Option<String>, Option<String>, Option<i64>);

/// The snapshot from the rows of [`batch_read_sql`]: the trees, their
/// generations and local usage, and the limits (the SQL already keeps only
/// the resources asked for).
pub fn batch_snapshot_from_rows(
    rows: impl IntoIterator<Item = ReadRow>,
) -> Result<Snapshot, StorageError> {
    let (mut s, parts) = fold_rows(rows, |_| true)?;
    s.usage = Usage::Local(parts.entries);
    Ok(s)
}

/// The usage changes of `members`, summed per (project, resource) and
/// sorted that way (zero sums dropped): a batch writes its usage rows in
/// this one order, so two batches never take them in opposite orders.
pub fn summed_deltas(members: &[Request]) -> Vec<(String, String, i64)> {
    let mut sums: std::collections::BTreeMap<(&str, &str), i64> = Default::default();
    for m in members {
        for d in &m.deltas {
            let sum = sums.entry((&m.project, &d.resource)).or_insert(0);
            *sum = sum.saturating_add(d.delta);
        }
    }
    sums.into_iter()
        .filter(|&(_, d)| d != 0)
        .map(|((p, r), d)| (p.to_string(), r.to_string(), d))
        .collect()
}

/// A decrease of `deltas` whose statement (by its count in `counts`)
/// changed no row.
pub(crate) fn missing_row(deltas: &[(String, String, i64)], counts: &[u64]) -> Option<String> {
    deltas
        .iter()
        .zip(counts)
        .find(|((_, _, d), n)| *d < 0 && **n == 0)
        .map(|((p, r, d), _)| {
            format!(
                "no usage row of {r:?} for project {p:?} to release {} from",
                -d
            )
        })
}
