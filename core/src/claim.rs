//! Generations and claims: what the caller's write must compare-and-update.
//!
//! A claim lists the requesting project and every ancestor that constrained
//! the decision, each with the generation it was read at. The caller bumps
//! each of them with `UPDATE ... WHERE generation = :g` in the same
//! transaction as its own rows; one miss rolls everything back.

use crate::error::{Error, IdKind, Result};
use crate::tree::Tree;
use std::collections::BTreeMap;

/// The generation a project was read at. Owned by the caller's storage:
/// monotonic, never reused, never reset (not even when a row is re-created).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Generation {
    pub project: String,
    pub generation: u64,
}

/// One row the caller's commit must compare-and-update.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClaimEntry {
    pub project: String,
    pub generation: u64,
}

/// Generations checked and indexed by node.
#[derive(Debug)]
pub(crate) struct GenerationTable {
    by_node: BTreeMap<usize, u64>,
}

impl GenerationTable {
    /// Checks every generation: non-empty, known and unique project ids,
    /// reported in project order.
    pub(crate) fn build(generations: &[Generation], tree: &Tree<'_>) -> Result<Self> {
        // The common case, every project known, needs no sort by id: the
        // first duplicate in id order is the one at the smallest node (node
        // order is id order). Anything else takes the general path.
        let mut by_node = BTreeMap::new();
        let mut duplicate: Option<usize> = None;
        for g in generations {
            let Some(node) = tree.lookup(&g.project) else {
                return Self::build_in_order(generations, tree);
            };
            if by_node.insert(node, g.generation).is_some() {
                duplicate = Some(duplicate.map_or(node, |d| d.min(node)));
            }
        }
        match duplicate {
            Some(node) => Err(Error::DuplicateGeneration {
                project: tree.id(node).to_string(),
            }),
            None => Ok(GenerationTable { by_node }),
        }
    }

    /// [`build`](Self::build) for input with a problem: checked in
    /// (project, generation) order, so the first problem is the one
    /// reported.
    fn build_in_order(generations: &[Generation], tree: &Tree<'_>) -> Result<Self> {
        let mut sorted: Vec<&Generation> = generations.iter().collect();
        sorted.sort_by(|a, b| (&a.project, a.generation).cmp(&(&b.project, b.generation)));
        let mut by_node = BTreeMap::new();
        for g in sorted {
            if g.project.is_empty() {
                return Err(Error::EmptyId {
                    what: IdKind::Project,
                });
            }
            let node = tree.require(&g.project)?;
            if by_node.insert(node, g.generation).is_some() {
                return Err(Error::DuplicateGeneration {
                    project: g.project.clone(),
                });
            }
        }
        Ok(GenerationTable { by_node })
    }

    /// The generation read for `node`, if any.
    pub(crate) fn get(&self, node: usize) -> Option<u64> {
        self.by_node.get(&node).copied()
    }
}
