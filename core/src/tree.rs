//! The project tree: well-formedness, depth and paths to the root.
//!
//! Checks run in a fixed order (empty ids, duplicates, unknown parents,
//! cycles, depth) and, within one check, in byte order of project id, so
//! the reported problem never depends on the order the caller listed
//! projects in.

use crate::error::{Error, IdKind, Result};
use std::collections::BTreeMap;

/// One project: a non-empty id and an optional parent id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Project {
    pub id: String,
    pub parent: Option<String>,
}

impl Project {
    /// A root project.
    pub fn root(id: impl Into<String>) -> Self {
        Project {
            id: id.into(),
            parent: None,
        }
    }

    /// A project under `parent`.
    pub fn child(id: impl Into<String>, parent: impl Into<String>) -> Self {
        Project {
            id: id.into(),
            parent: Some(parent.into()),
        }
    }
}

/// A checked tree, indexed for the decision code.
#[derive(Debug)]
pub(crate) struct Tree<'a> {
    ids: Vec<&'a str>,
    index: BTreeMap<&'a str, usize>,
    parent: Vec<Option<usize>>,
    /// Depth of each node, root = 1; 0 while unknown (only during analysis,
    /// or for nodes in or under a cycle when analysing for findings).
    depth: Vec<u32>,
}

impl<'a> Tree<'a> {
    /// Builds the tree, failing on the first problem in check order.
    pub(crate) fn build(projects: &'a [Project], max_depth: u32) -> Result<Self> {
        let mut problems = Vec::new();
        let tree = Self::analyse(projects, max_depth, &mut problems);
        match problems.into_iter().next() {
            Some(problem) => Err(problem),
            None => Ok(tree),
        }
    }

    /// Builds as much of the tree as is well-formed, and pushes every
    /// problem found to `problems` in check order. A node with an empty or
    /// unknown parent is treated as a root, a repeated id keeps its entry
    /// with the smallest parent (a root first), whatever the order it was
    /// listed in, and nodes in or under a cycle are left without a depth.
    pub(crate) fn analyse(
        projects: &'a [Project],
        max_depth: u32,
        problems: &mut Vec<Error>,
    ) -> Self {
        let mut sorted: Vec<&'a Project> = projects.iter().collect();
        // By id, then parent: which entry of a repeated id is kept (and so
        // which later findings `validate` reports) does not depend on the
        // order the caller listed them in.
        sorted.sort_by(|a, b| (&a.id, &a.parent).cmp(&(&b.id, &b.parent)));

        if sorted.iter().any(|p| p.id.is_empty()) {
            problems.push(Error::EmptyId {
                what: IdKind::Project,
            });
        }
        if sorted.iter().any(|p| p.parent.as_deref() == Some("")) {
            problems.push(Error::EmptyId {
                what: IdKind::Parent,
            });
        }

        let mut ids: Vec<&'a str> = Vec::with_capacity(sorted.len());
        let mut parents: Vec<Option<&'a str>> = Vec::with_capacity(sorted.len());
        for p in &sorted {
            if p.id.is_empty() {
                continue;
            }
            if ids.last() == Some(&p.id.as_str()) {
                if problems.last()
                    != Some(&Error::DuplicateProject {
                        project: p.id.clone(),
                    })
                {
                    problems.push(Error::DuplicateProject {
                        project: p.id.clone(),
                    });
                }
                continue;
            }
            ids.push(&p.id);
            parents.push(p.parent.as_deref().filter(|s| !s.is_empty()));
        }
        let index: BTreeMap<&'a str, usize> =
            ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();

        let mut parent = Vec::with_capacity(ids.len());
        for (i, p) in parents.iter().enumerate() {
            parent.push(match p {
                None => None,
                Some(name) => match index.get(name) {
                    Some(&j) => Some(j),
                    None => {
                        problems.push(Error::UnknownParent {
                            project: ids[i].to_string(),
                            parent: name.to_string(),
                        });
                        None
                    }
                },
            });
        }

        let mut tree = Tree {
            ids,
            index,
            parent,
            depth: Vec::new(),
        };
        tree.compute_depths(max_depth, problems);
        tree
    }

    /// Fills `depth`, reporting each cycle once (by its smallest member id)
    /// and then every node deeper than `max_depth`.
    fn compute_depths(&mut self, max_depth: u32, problems: &mut Vec<Error>) {
        const UNSEEN: u8 = 0;
        const ON_WALK: u8 = 1;
        const DONE: u8 = 2;
        let n = self.ids.len();
        let mut state = vec![UNSEEN; n];
        let mut depth = vec![0u32; n];
        let mut cycles: Vec<usize> = Vec::new();
        let mut walk: Vec<usize> = Vec::new();
        for start in 0..n {
            if state[start] == DONE {
                continue;
            }
            walk.clear();
            let mut node = start;
            // Walk up until a node whose depth is settled, a root, or a node
            // already on this walk (a cycle).
            let base = loop {
                match state[node] {
                    DONE => break Some(depth[node]),
                    ON_WALK => {
                        let at = walk.iter().position(|&w| w == node).unwrap_or(0);
                        let smallest = walk[at..].iter().copied().min().unwrap_or(node);
                        cycles.push(smallest);
                        break None;
                    }
                    _ => {
                        state[node] = ON_WALK;
                        walk.push(node);
                        match self.parent[node] {
                            Some(p) => node = p,
                            None => break Some(0),
                        }
                    }
                }
            };
            // Settle the walk from the top down; depth 0 marks "in or under
            // a cycle" (such nodes never reach a root).
            let mut d = base;
            for &w in walk.iter().rev() {
                d = d.and_then(|d| {
                    if d == 0 && self.parent[w].is_some() {
                        None
                    } else {
                        Some(d + 1)
                    }
                });
                depth[w] = d.unwrap_or(0);
                state[w] = DONE;
            }
        }
        cycles.sort_unstable();
        for c in cycles {
            problems.push(Error::Cycle {
                project: self.ids[c].to_string(),
            });
        }
        for (i, &d) in depth.iter().enumerate() {
            if d > max_depth {
                problems.push(Error::TooDeep {
                    project: self.ids[i].to_string(),
                    depth: d,
                    max_depth,
                });
            }
        }
        self.depth = depth;
    }

    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    pub(crate) fn lookup(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// Looks `id` up, or fails with `unknown-project`.
    pub(crate) fn require(&self, id: &str) -> Result<usize> {
        self.lookup(id).ok_or_else(|| Error::UnknownProject {
            project: id.to_string(),
        })
    }

    pub(crate) fn id(&self, node: usize) -> &'a str {
        self.ids[node]
    }

    pub(crate) fn parent(&self, node: usize) -> Option<usize> {
        self.parent[node]
    }

    pub(crate) fn depth(&self, node: usize) -> u32 {
        self.depth[node]
    }

    /// `node` and its ancestors, from `node` up to the root.
    pub(crate) fn path(&self, node: usize) -> Vec<usize> {
        let mut path = Vec::with_capacity(self.depth[node] as usize);
        let mut at = Some(node);
        while let Some(n) = at {
            path.push(n);
            at = self.parent[n];
        }
        path
    }
}
