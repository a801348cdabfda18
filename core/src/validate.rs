//! Validation of a tree and its limits, as a list of findings: tree
//! well-formedness under the model, and Keystone's strict-two-level rule
//! that no child limit exceeds its parent's.

use crate::error::Error;
use crate::limits::{Limit, LimitTable, Limits};
use crate::model::{Config, Model};
use crate::tree::{Project, Tree};

/// One problem found by [`validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Something that would make every decision fail with this error.
    Invalid(Error),
    /// Strict-two-level: a child's limit is above its parent's (-1 counts as
    /// above any finite limit; a parent of -1 constrains no child).
    ChildLimitExceedsParent {
        parent: String,
        child: String,
        resource: String,
        parent_limit: i64,
        child_limit: i64,
    },
}

/// Every finding for `projects` and `limits` under `config`: tree problems
/// (empty ids, duplicates, unknown parents, cycles, depth), then limit
/// problems, then (strict-two-level only) child limits above their parent's,
/// ordered by parent, child and resource. An empty list means valid.
pub fn validate(config: &Config, projects: &[Project], limits: &Limits) -> Vec<Finding> {
    let mut problems = Vec::new();
    let max_depth = match config.effective_max_depth() {
        Ok(d) => d,
        Err(e) => return vec![Finding::Invalid(e)],
    };
    let tree = Tree::analyse(projects, max_depth, &mut problems);
    let table = LimitTable::analyse(limits, &tree, config.missing_limit, &mut problems);
    let mut findings: Vec<Finding> = problems.into_iter().map(Finding::Invalid).collect();

    if config.model == Model::StrictTwoLevel {
        let resources = table.resources();
        // Edges in (parent, child) id order; node indices follow id order.
        let mut edges: Vec<(usize, usize)> = (0..tree.len())
            .filter_map(|c| tree.parent(c).map(|p| (p, c)))
            .collect();
        edges.sort_unstable();
        for (p, c) in edges {
            for resource in &resources {
                let Limit::Finite(parent_limit) = table.resolve(p, resource) else {
                    continue;
                };
                let child_limit = match table.resolve(c, resource) {
                    Limit::Finite(l) if l <= parent_limit => continue,
                    Limit::Finite(l) => l,
                    Limit::Unlimited => crate::limits::UNLIMITED,
                };
                findings.push(Finding::ChildLimitExceedsParent {
                    parent: tree.id(p).to_string(),
                    child: tree.id(c).to_string(),
                    resource: resource.to_string(),
                    parent_limit,
                    child_limit,
                });
            }
        }
    }
    findings
}
