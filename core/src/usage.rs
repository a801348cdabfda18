//! Usage as the caller supplies it, and the usage each model counts.
//!
//! Two equivalent forms: local usage per project (the core sums subtrees)
//! or usage pre-summed by the caller for the path only (for trees too big to
//! ship whole). Both must give identical decisions, so both reduce to the
//! same [`PathCounts`].

use crate::error::{Error, IdKind, Result};
use crate::tree::Tree;
use std::collections::{BTreeMap, BTreeSet};

/// What one project uses of one resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UsageEntry {
    pub project: String,
    pub resource: String,
    pub usage: i64,
}

/// What the requesting project itself uses of one resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceUsage {
    pub resource: String,
    pub usage: i64,
}

/// Usage, in one of two forms. A (project, resource) pair not listed uses 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Usage {
    /// Local usage u(p, r) of any project in the tree; the core sums subtrees.
    Local(Vec<UsageEntry>),
    /// Pre-summed usage for the requesting project's path only.
    Path(PathUsage),
}

impl Default for Usage {
    fn default() -> Self {
        Usage::Local(Vec::new())
    }
}

/// Usage pre-summed by the caller: the project's own local usage u(p, r)
/// and the subtree usage U(a, r) of the project and each of its ancestors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathUsage {
    pub local: Vec<ResourceUsage>,
    pub subtree: Vec<UsageEntry>,
}

/// Usage along one path, for the requested resources only.
#[derive(Debug)]
pub(crate) struct PathCounts {
    /// u(p, r) per requested resource.
    pub local: Vec<i64>,
    /// U(path[k], r) as `subtree[resource][k]`; empty under `Sums::LocalOnly`
    /// in the local form.
    pub subtree: Vec<Vec<i64>>,
}

/// Which sums a decision needs: flat counts the project's own usage only,
/// so the subtree sums of the local form, which it never reads, are not
/// made (one that would overflow cannot fail a flat decision).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sums {
    LocalOnly,
    AlongPath,
}

/// Checks all of `usage` against `tree` and counts the requested resources
/// along `path` (the project first, then each ancestor up to the root):
/// u(p, r) always, and U(a, r) for every node of `path` under
/// `Sums::AlongPath` (the path form gives them as they are).
pub(crate) fn count(
    usage: &Usage,
    tree: &Tree<'_>,
    path: &[usize],
    resources: &[&str],
    sums: Sums,
) -> Result<PathCounts> {
    match usage {
        Usage::Local(entries) => count_local(entries, tree, path, resources, sums),
        Usage::Path(path_usage) => count_path(path_usage, tree, path, resources),
    }
}

/// Checks every entry and returns them with their nodes, in (project,
/// resource) order. Entries are taken in byte order of (project id,
/// resource name) and each entry's first problem, in the order empty
/// project id, empty resource name, negative usage, unknown project, a
/// project `allowed` refuses (off the path: `inconsistent-usage`), then
/// the same pair as the entry before it, is reported: so the smallest bad
/// entry wins, whatever its problem.
fn checked_entries<'u>(
    entries: &'u [UsageEntry],
    tree: &Tree<'_>,
    allowed: impl Fn(usize) -> bool,
) -> Result<Vec<(usize, &'u UsageEntry)>> {
    // The common case, every entry well-formed and of a known project, is
    // ordered by node instead of by project id: node order is id order
    // (`Tree`), so the order is the same and ids are compared once (the
    // lookup) rather than at every step of the sort. Anything else takes
    // the general path below, which finds the first problem in order.
    let mut out: Vec<(usize, &UsageEntry)> = Vec::with_capacity(entries.len());
    for e in entries {
        let node = if e.resource.is_empty() || e.usage < 0 {
            None
        } else {
            tree.lookup(&e.project).filter(|&node| allowed(node))
        };
        match node {
            Some(node) => out.push((node, e)),
            None => return checked_entries_in_order(entries, tree, allowed),
        }
    }
    out.sort_by(|(na, a), (nb, b)| (na, &a.resource, a.usage).cmp(&(nb, &b.resource, b.usage)));
    if let Some(pair) = out
        .windows(2)
        .find(|w| w[0].0 == w[1].0 && w[0].1.resource == w[1].1.resource)
    {
        return Err(Error::DuplicateUsage {
            project: pair[1].1.project.clone(),
            resource: pair[1].1.resource.clone(),
        });
    }
    Ok(out)
}

/// [`checked_entries`] for input with a problem: sorted by (project,
/// resource, usage) and checked in that order, so the first problem is the
/// one reported.
fn checked_entries_in_order<'u>(
    entries: &'u [UsageEntry],
    tree: &Tree<'_>,
    allowed: impl Fn(usize) -> bool,
) -> Result<Vec<(usize, &'u UsageEntry)>> {
    let mut sorted: Vec<&UsageEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| {
        (&a.project, &a.resource, a.usage).cmp(&(&b.project, &b.resource, b.usage))
    });
    let mut out: Vec<(usize, &UsageEntry)> = Vec::with_capacity(sorted.len());
    for e in sorted {
        if e.project.is_empty() {
            return Err(Error::EmptyId {
                what: IdKind::Project,
            });
        }
        if e.resource.is_empty() {
            return Err(Error::EmptyId {
                what: IdKind::Resource,
            });
        }
        if e.usage < 0 {
            return Err(Error::NegativeUsage {
                project: e.project.clone(),
                resource: e.resource.clone(),
                usage: e.usage,
            });
        }
        let node = tree.require(&e.project)?;
        if !allowed(node) {
            return Err(Error::InconsistentUsage {
                project: e.project.clone(),
                resource: e.resource.clone(),
            });
        }
        if out
            .last()
            .is_some_and(|(_, last)| last.project == e.project && last.resource == e.resource)
        {
            return Err(Error::DuplicateUsage {
                project: e.project.clone(),
                resource: e.resource.clone(),
            });
        }
        out.push((node, e));
    }
    Ok(out)
}

fn count_local(
    entries: &[UsageEntry],
    tree: &Tree<'_>,
    path: &[usize],
    resources: &[&str],
    sums: Sums,
) -> Result<PathCounts> {
    let entries = checked_entries(entries, tree, |_| true)?;
    let wanted: BTreeMap<&str, usize> =
        resources.iter().enumerate().map(|(i, r)| (*r, i)).collect();
    let mut local = vec![0i64; resources.len()];
    for (node, e) in &entries {
        if *node == path[0]
            && let Some(&r) = wanted.get(e.resource.as_str())
        {
            local[r] = e.usage;
        }
    }
    if sums == Sums::LocalOnly {
        return Ok(PathCounts {
            local,
            subtree: Vec::new(),
        });
    }
    let len = path.len();
    // `hits[r][k]`: usage of descendants whose walk up first meets the path
    // at path[k]; a suffix sum then gives U. i128 cannot overflow here
    // (at most 2^64 entries of at most 2^63).
    let mut hits = vec![vec![0i128; len]; resources.len()];
    let mut meets = Meets::new(tree, path);
    for (node, e) in entries {
        let Some(&r) = wanted.get(e.resource.as_str()) else {
            continue;
        };
        if let Some(k) = meets.of(node) {
            hits[r][k] += e.usage as i128;
        }
    }
    // A too-large U is reported for the smallest resource name, at the
    // lowest path node it occurs at, whatever the input order.
    let mut by_name: Vec<usize> = (0..resources.len()).collect();
    by_name.sort_unstable_by_key(|&r| resources[r]);
    let mut subtree = vec![Vec::new(); resources.len()];
    for r in by_name {
        let mut acc: i128 = 0;
        let mut row = Vec::with_capacity(len);
        for (k, h) in hits[r].iter().enumerate() {
            acc += h;
            let value = i64::try_from(acc).map_err(|_| Error::Overflow {
                project: tree.id(path[k]).to_string(),
                resource: resources[r].to_string(),
            })?;
            row.push(value);
        }
        subtree[r] = row;
    }
    Ok(PathCounts { local, subtree })
}

/// Where each node's walk up first meets a path, remembered for every node
/// a walk passes, so that placing every entry costs time linear in the
/// tree rather than entries x depth.
struct Meets<'t, 'a> {
    tree: &'t Tree<'a>,
    path: &'t [usize],
    /// Per node: `UNSEEN`, `NEVER` (another root's tree) or a path position.
    at: Vec<u32>,
    /// The nodes of the walk in progress (kept to reuse its allocation).
    walked: Vec<usize>,
}

impl<'t, 'a> Meets<'t, 'a> {
    const UNSEEN: u32 = u32::MAX;
    const NEVER: u32 = u32::MAX - 1;

    fn new(tree: &'t Tree<'a>, path: &'t [usize]) -> Self {
        Meets {
            tree,
            path,
            at: vec![Self::UNSEEN; tree.len()],
            walked: Vec::new(),
        }
    }

    /// The position in the path where `node`'s walk up meets it, if it does.
    fn of(&mut self, node: usize) -> Option<usize> {
        let len = self.path.len();
        let mut at = Some(node);
        let found = loop {
            let Some(n) = at else { break Self::NEVER };
            if self.at[n] != Self::UNSEEN {
                break self.at[n];
            }
            let depth = self.tree.depth(n) as usize;
            if depth <= len && self.path[len - depth] == n {
                break (len - depth) as u32;
            }
            self.walked.push(n);
            at = self.tree.parent(n);
        };
        for n in self.walked.drain(..) {
            self.at[n] = found;
        }
        (found != Self::NEVER).then_some(found as usize)
    }
}

fn count_path(
    usage: &PathUsage,
    tree: &Tree<'_>,
    path: &[usize],
    resources: &[&str],
) -> Result<PathCounts> {
    let project = tree.id(path[0]);
    let local_entries: Vec<UsageEntry> = usage
        .local
        .iter()
        .map(|u| UsageEntry {
            project: project.to_string(),
            resource: u.resource.clone(),
            usage: u.usage,
        })
        .collect();
    // Position of each path node, to place (and reject off-path) entries.
    let position: BTreeMap<usize, usize> = path.iter().enumerate().map(|(k, n)| (*n, k)).collect();
    // The local list, then the subtree list; an off-path subtree entry is
    // a problem of that entry, found in entry order (see `checked_entries`).
    let local_checked = checked_entries(&local_entries, tree, |_| true)?;
    let subtree_checked =
        checked_entries(&usage.subtree, tree, |node| position.contains_key(&node))?;
    let mut local_of: BTreeMap<&str, i64> = BTreeMap::new();
    for (_, e) in &local_checked {
        local_of.insert(&e.resource, e.usage);
    }
    let mut subtree_of: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for (node, e) in &subtree_checked {
        let Some(&k) = position.get(node) else {
            // Not reached: `checked_entries` rejected off-path entries.
            return Err(Error::InconsistentUsage {
                project: e.project.clone(),
                resource: e.resource.clone(),
            });
        };
        subtree_of
            .entry(&e.resource)
            .or_insert_with(|| vec![0; path.len()])[k] = e.usage;
    }
    // Every resource mentioned must be consistent: u(p) <= U(p) <= U(parent) ...
    let mentioned: BTreeSet<&str> = local_of.keys().chain(subtree_of.keys()).copied().collect();
    for resource in mentioned {
        let zeros = vec![0; path.len()];
        let sums = subtree_of.get(resource).unwrap_or(&zeros);
        let mut below = local_of.get(resource).copied().unwrap_or(0);
        for (k, &value) in sums.iter().enumerate() {
            if value < below {
                return Err(Error::InconsistentUsage {
                    project: tree.id(path[k]).to_string(),
                    resource: resource.to_string(),
                });
            }
            below = value;
        }
    }
    let local = resources
        .iter()
        .map(|r| local_of.get(r).copied().unwrap_or(0))
        .collect();
    let subtree = resources
        .iter()
        .map(|r| {
            subtree_of
                .get(r)
                .cloned()
                .unwrap_or_else(|| vec![0; path.len()])
        })
        .collect();
    Ok(PathCounts { local, subtree })
}
