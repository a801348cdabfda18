//! The SQL both database stores share: the schema and the recursive
//! queries over the project tree. Written in the common subset of SQLite
//! and PostgreSQL (`$1` is a positional parameter in both; BIGINT is a
//! 64-bit integer in both).

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
pub(crate) const PATH_CTE: &str = "
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
pub(crate) const SUBTREE_CTE: &str = "
subtree (anchor, project_id, depth) AS (
    SELECT project_id, project_id, 0 FROM path
    UNION ALL
    SELECT subtree.anchor, c.project_id, subtree.depth + 1
      FROM delimiter_projects c JOIN subtree ON c.parent_id = subtree.project_id
     WHERE subtree.depth < 1024
)";
