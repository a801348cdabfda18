//! A snapshot of what the caller read, and the checked view of one
//! project's path through it that every question is answered from.

use crate::buf::Buf;
use crate::claim::{Generation, GenerationTable};
use crate::error::{Error, IdKind, Result};
use crate::limits::{Limit, LimitTable, Limits};
use crate::model::{Config, Model};
use crate::tree::{Project, Tree};
use crate::usage::{self, Sums, Usage};

/// Everything read from the caller's storage at one point in time: the
/// project tree, the limits, the usage and the generations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub projects: Vec<Project>,
    pub limits: Limits,
    pub usage: Usage,
    pub generations: Vec<Generation>,
}

/// One node of the constraining path, for one resource. Which node is
/// given by its position in the path (the project first).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Constraint {
    pub limit: Limit,
    /// The usage the model counts here: u for flat, U otherwise.
    pub usage: i64,
}

/// The checked snapshot seen from one project, for a set of resources.
pub(crate) struct View<'a> {
    pub tree: Tree<'a>,
    pub generations: GenerationTable,
    /// The nodes the model checks: the project alone for flat, the project
    /// and every ancestor otherwise.
    pub path: Vec<usize>,
    /// Per requested resource: u(p, r).
    pub local: Vec<i64>,
    /// Per requested resource, one constraint per node of `path`.
    pub constraints: Vec<Vec<Constraint>>,
}

/// Request-side checks shared by every question: non-empty ids and no
/// resource named twice (the smallest repeated name is reported).
pub(crate) fn check_request(project: &str, resources: &[&str]) -> Result<()> {
    if project.is_empty() {
        return Err(Error::EmptyId {
            what: IdKind::Project,
        });
    }
    if resources.iter().any(|r| r.is_empty()) {
        return Err(Error::EmptyId {
            what: IdKind::Resource,
        });
    }
    match smallest_duplicate(resources) {
        Some(resource) => Err(Error::DuplicateResource {
            resource: resource.to_string(),
        }),
        None => Ok(()),
    }
}

/// The smallest name `names` holds twice, if any (sorted on the stack for
/// the few names a request usually has).
pub(crate) fn smallest_duplicate<'a>(names: &[&'a str]) -> Option<&'a str> {
    let mut sorted: Buf<&str, 16> = Buf::new(names.len(), "");
    sorted.copy_from_slice(names);
    sorted.sort_unstable();
    sorted.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
}

impl<'a> View<'a> {
    /// Checks the whole snapshot, then resolves limits and counts usage
    /// along `project`'s path for `resources`. Checks run in the order:
    /// config, request, tree, limits, requesting project, usage, generations.
    pub(crate) fn build(
        config: &Config,
        snapshot: &'a Snapshot,
        project: &str,
        resources: &[&str],
    ) -> Result<Self> {
        let max_depth = config.effective_max_depth()?;
        check_request(project, resources)?;
        let tree = Tree::build(&snapshot.projects, max_depth)?;
        let limits = LimitTable::build(&snapshot.limits, &tree, config.missing_limit)?;
        // Usage names projects too: an unknown requesting project is found
        // first so that it is reported as such.
        let node = tree.require(project)?;
        let full_path = tree.path(node);
        let sums = match config.model {
            Model::Flat => Sums::LocalOnly,
            Model::StrictTwoLevel | Model::Nested => Sums::AlongPath,
        };
        let counts = usage::count(&snapshot.usage, &tree, &full_path, resources, sums)?;
        let generations = GenerationTable::build(&snapshot.generations, &tree)?;

        let path: Vec<usize> = match config.model {
            Model::Flat => vec![node],
            Model::StrictTwoLevel | Model::Nested => full_path,
        };
        let constraints = resources
            .iter()
            .enumerate()
            .map(|(r, resource)| {
                path.iter()
                    .enumerate()
                    .map(|(k, &n)| Constraint {
                        limit: limits.resolve(n, resource),
                        usage: match config.model {
                            Model::Flat => counts.local[r],
                            _ => counts.subtree[r][k],
                        },
                    })
                    .collect()
            })
            .collect();
        Ok(View {
            tree,
            generations,
            path,
            local: counts.local,
            constraints,
        })
    }

    pub(crate) fn id(&self, node: usize) -> &'a str {
        self.tree.id(node)
    }

    /// Counts `earlier`, the (project, resource, delta) changes of the
    /// requests admitted before this one in a batch, into the usage this
    /// view decides on: u of the requesting project for its own changes,
    /// and the counted usage of every path node that is the changed
    /// project or one of its ancestors (under flat, only the project
    /// itself counts). Checked: an overflow is reported at the node, as a
    /// decision reports it.
    pub(crate) fn add_earlier(
        &mut self,
        config: &Config,
        resources: &[&str],
        earlier: &[(&str, &str, i64)],
    ) -> Result<()> {
        for &(project, resource, delta) in earlier {
            let Some(r) = resources.iter().position(|&x| x == resource) else {
                continue;
            };
            let node = self.tree.require(project)?;
            let mut above = self.tree.path(node);
            if config.model == Model::Flat {
                above.truncate(1);
            }
            let overflow = |n: usize| Error::Overflow {
                project: self.tree.id(n).to_string(),
                resource: resource.to_string(),
            };
            if node == self.path[0] {
                self.local[r] = self.local[r]
                    .checked_add(delta)
                    .ok_or_else(|| overflow(node))?;
            }
            for (k, &n) in self.path.iter().enumerate() {
                if above.contains(&n) {
                    let c = &mut self.constraints[r][k];
                    c.usage = c.usage.checked_add(delta).ok_or_else(|| overflow(n))?;
                }
            }
        }
        Ok(())
    }
}
