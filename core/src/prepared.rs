//! A prepared enforcer: the config, project tree and limits checked and
//! indexed once, then many decisions that pass only the request and the
//! numbers of the project's path.
//!
//! [`evaluate`](crate::evaluate) re-checks and re-indexes the whole
//! snapshot on every call, which is what a caller that holds its tree and
//! limits for a while pays for needlessly (and, across the WebAssembly
//! boundary, pays again for copying every string of it). [`Prepared`]
//! splits the work: [`Prepared::new`] reports exactly the config, tree and
//! limit errors `evaluate` would, and [`Prepared::evaluate`] takes the
//! path's usage and generations as plain numbers in path order. The
//! decision itself is the one `evaluate` runs (`decide::decide`), and the
//! usage checks report what `evaluate` reports for the same numbers given
//! as [`Usage::Path`](crate::Usage::Path) (the property tests hold them to
//! that).

use crate::buf::Buf;
use crate::decide::{Delta, Inputs, PathOutcome, Violation, decide};
use crate::error::{Error, IdKind, Result};
use crate::limits::{Limit, LimitTable, Limits, resolve};
use crate::model::{Config, MissingLimit, Model};
use crate::snapshot::{Constraint, check_request, smallest_duplicate};
use crate::tree::{Project, Tree};
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

mod batch;
pub use batch::PreparedMember;

/// Per-decision scratch kept on the stack up to these sizes (see [`Buf`]):
/// resources per request, and path length. Larger decisions use the heap.
const MAX_INLINE_RESOURCES: usize = 16;
const MAX_INLINE_PATH: usize = 16;

/// Limits of one resource, indexed by node.
#[derive(Debug, Clone, Default)]
struct ResourceLimits {
    registered: Option<i64>,
    /// A decision looks up every node of its path for every resource: a
    /// multiplicative hash of the node number costs a few instructions,
    /// where SipHash showed as ~12% of a prepared decision in the guest
    /// and a binary search over a deep path's limits as a third of one.
    project: HashMap<usize, i64, BuildHasherDefault<NodeHasher>>,
}

impl ResourceLimits {
    fn of(&self, node: usize) -> Option<i64> {
        if self.project.is_empty() {
            return self.registered;
        }
        self.project.get(&node).copied().or(self.registered)
    }
}

/// Hashes a node number (a dense index, not attacker-chosen: the service
/// names its own projects) by Fibonacci multiplication, as FxHash does.
#[derive(Debug, Default, Clone, Copy)]
struct NodeHasher(u64);

impl Hasher for NodeHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The config, tree and limits, checked once and owned, ready for many
/// decisions.
///
/// Two ways to decide: by name ([`evaluate`](Self::evaluate)), or by the
/// numbers the prepared gives for a request
/// ([`number_request`](Self::number_request): the project's node and path,
/// and a number per resource name, with `evaluate`'s request errors in
/// `evaluate`'s order), which is what a host across the WebAssembly
/// boundary uses ([`evaluate_numbers`](Self::evaluate_numbers)): no string
/// is copied or looked up per decision. [`locate`](Self::locate) gives the
/// node alone, without the request's checks.
#[derive(Debug, Clone)]
pub struct Prepared {
    model: Model,
    missing: MissingLimit,
    ids: Vec<String>,
    index: HashMap<String, usize>,
    parent: Vec<Option<usize>>,
    /// The names of the resources some limit mentions, by number; these
    /// numbers stand for the life of the prepared.
    names: Vec<String>,
    numbers: HashMap<String, u32>,
    /// By resource number, then node.
    limits: Vec<ResourceLimits>,
    /// The names no limit mentions that the latest
    /// [`number_request`](Self::number_request) numbered, from
    /// `names.len()` on. Only the latest request's are kept, so that a
    /// service asked for ever new names keeps no more than one request's.
    passing: Vec<String>,
}

/// The outcome of [`Prepared::evaluate`]: a [`Decision`](crate::Decision)
/// whose claim names path positions rather than project ids (the caller
/// already holds the ids and the generations it passed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathDecision {
    /// Admitted. `claim` lists positions in [`Prepared::path`], from the
    /// project up; the caller compare-and-updates each with the generation
    /// it passed for it. Empty when no delta is positive.
    Admitted { claim: Vec<u32> },
    /// Refused, with every violated constraint, by resource name and then
    /// from the project up to the root.
    Refused { violations: Vec<Violation> },
}

impl PathDecision {
    pub fn is_admitted(&self) -> bool {
        matches!(self, PathDecision::Admitted { .. })
    }

    /// The [`Decision`](crate::Decision) `evaluate` gives: the claim's path
    /// positions named by `path` (as [`NumberedRequest::path`] gives it)
    /// and the `generations` the caller passed for them.
    pub fn named(self, path: &[impl AsRef<str>], generations: &[u64]) -> crate::Decision {
        match self {
            PathDecision::Admitted { claim } => crate::Decision::Admitted {
                claim: claim
                    .into_iter()
                    .map(|k| crate::ClaimEntry {
                        project: path[k as usize].as_ref().to_string(),
                        generation: generations[k as usize],
                    })
                    .collect(),
            },
            PathDecision::Refused { violations } => crate::Decision::Refused { violations },
        }
    }
}

/// Where a project is: its node number for
/// [`evaluate_numbers`](Prepared::evaluate_numbers) and its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location<'a> {
    pub node: u32,
    pub path: Vec<&'a str>,
}

/// A request numbered by [`Prepared::number_request`]: what
/// [`evaluate_numbers`](Prepared::evaluate_numbers) takes for it, and the
/// path its `subtree` and `generations` lists follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberedRequest {
    /// The project's node number (as [`Prepared::locate`] gives it).
    pub node: u32,
    /// The project, then each ancestor up to the root (as
    /// [`Prepared::path`] gives it).
    pub path: Vec<String>,
    /// One number per resource name, in the order the names were given.
    pub resources: Vec<u32>,
    /// Numbers below `kept` are the resources some limit mentions and
    /// stand for the life of the prepared; a number at or above it names a
    /// resource no limit mentions and stands only until the next
    /// `number_request`, so a caller keeps only numbers below it.
    pub kept: u32,
}

impl NumberedRequest {
    /// `deltas` (the request's, in the order its names were numbered) as
    /// the (resource number, delta) pairs
    /// [`evaluate_numbers`](Prepared::evaluate_numbers) takes.
    pub fn numbered_deltas(&self, deltas: &[Delta]) -> Vec<(u32, i64)> {
        self.resources
            .iter()
            .zip(deltas)
            .map(|(&r, d)| (r, d.delta))
            .collect()
    }
}

/// The resources of one decision, each with its name (for order and
/// errors) and its limits (`None`: no limit anywhere).
struct Resources<'p, 'a> {
    names: &'a [&'p str],
    limits: &'a [Option<&'p ResourceLimits>],
}

impl Prepared {
    /// Checks `config`, `projects` and `limits` in the order and with the
    /// errors [`evaluate`](crate::evaluate) uses for them (config, tree,
    /// limits), and indexes them.
    pub fn new(config: &Config, projects: &[Project], limits: &Limits) -> Result<Self> {
        let max_depth = config.effective_max_depth()?;
        let tree = Tree::build(projects, max_depth)?;
        // Built for its checks only: it borrows `limits`, and the index
        // below is owned.
        LimitTable::build(limits, &tree, config.missing_limit)?;

        let ids: Vec<String> = (0..tree.len()).map(|n| tree.id(n).to_string()).collect();
        let parent = (0..tree.len()).map(|n| tree.parent(n)).collect();
        let index = ids
            .iter()
            .enumerate()
            .map(|(n, id)| (id.clone(), n))
            .collect();
        let mut by_resource: BTreeMap<&str, ResourceLimits> = BTreeMap::new();
        for r in &limits.registered {
            by_resource.entry(&r.resource).or_default().registered = Some(r.limit);
        }
        for p in &limits.project {
            // Checked above: every project limit names a known project.
            if let Some(node) = tree.lookup(&p.project) {
                by_resource
                    .entry(&p.resource)
                    .or_default()
                    .project
                    .insert(node, p.limit);
            }
        }
        let mut prepared = Prepared {
            model: config.model,
            missing: config.missing_limit,
            ids,
            index,
            parent,
            names: Vec::new(),
            numbers: HashMap::new(),
            limits: Vec::new(),
            passing: Vec::new(),
        };
        for (name, limits) in by_resource {
            prepared.intern(name, limits);
        }
        Ok(prepared)
    }

    fn intern(&mut self, name: &str, limits: ResourceLimits) -> u32 {
        let number = self.kept();
        self.names.push(name.to_string());
        self.numbers.insert(name.to_string(), number);
        self.limits.push(limits);
        number
    }

    fn require(&self, project: &str) -> Result<usize> {
        if project.is_empty() {
            return Err(Error::EmptyId {
                what: IdKind::Project,
            });
        }
        self.index
            .get(project)
            .copied()
            .ok_or_else(|| Error::UnknownProject {
                project: project.to_string(),
            })
    }

    /// The project `node`, then each ancestor up to the root.
    fn nodes(&self, node: usize) -> Buf<usize, MAX_INLINE_PATH> {
        // Counted first so that the path is sized once.
        let mut len = 0;
        let mut at = Some(node);
        while let Some(n) = at {
            len += 1;
            at = self.parent[n];
        }
        let mut path = Buf::new(len, node);
        let mut at = Some(node);
        for slot in path.iter_mut() {
            if let Some(n) = at {
                *slot = n;
                at = self.parent[n];
            }
        }
        path
    }

    /// The nodes whose usage and generation a decision for `project`
    /// needs: the project, then each ancestor up to the root, under every
    /// model (flat decides on the project alone, but the subtree usage of
    /// the whole path is checked for consistency as `evaluate` checks
    /// [`Usage::Path`](crate::Usage::Path)).
    pub fn path(&self, project: &str) -> Result<Vec<&str>> {
        Ok(self.locate(project)?.path)
    }

    /// [`path`](Self::path), and the node number
    /// [`evaluate_numbers`](Self::evaluate_numbers) takes for `project`.
    pub fn locate(&self, project: &str) -> Result<Location<'_>> {
        let node = self.require(project)?;
        Ok(Location {
            // Below the number of nodes, which came from a Vec in a guest
            // whose memory is 32-bit: the cast cannot truncate there, and
            // natively trees that large do not fit in memory either.
            node: node as u32,
            path: self
                .nodes(node)
                .iter()
                .map(|&n| self.ids[n].as_str())
                .collect(),
        })
    }

    /// Numbers a request of `project` for `resources` (the resource
    /// names of its deltas, in order), or reports exactly the error
    /// [`evaluate`](crate::evaluate) reports for a request with that
    /// project and those names, whatever its deltas, once the config, tree
    /// and limits are known good: the request's own checks (an empty
    /// project, an empty resource name, the smallest name given twice),
    /// then an unknown project. So a resource named twice is reported even
    /// when the project is unknown too.
    ///
    /// A resource some limit mentions has the same number for the life of
    /// the prepared; one no limit mentions is numbered for this request
    /// only, after them (see [`NumberedRequest::kept`]), and decided by the
    /// missing-limit rule as `evaluate` does. The node and path are the
    /// ones [`locate`](Self::locate) gives.
    pub fn number_request(&mut self, project: &str, resources: &[&str]) -> Result<NumberedRequest> {
        // evaluate's order: the request (`check_request`), then the tree
        // and limits (checked by `new`), then the requesting project.
        check_request(project, resources)?;
        let node = self.require(project)?;
        let kept = self.kept();
        self.passing.clear();
        let mut numbers = Vec::with_capacity(resources.len());
        for name in resources {
            numbers.push(match self.numbers.get(*name) {
                Some(&number) => number,
                // Distinct (checked above), so each is numbered once.
                None => {
                    self.passing.push(name.to_string());
                    kept.saturating_add(self.passing.len() as u32 - 1)
                }
            });
        }
        Ok(NumberedRequest {
            // As in `locate`: below the number of nodes.
            node: node as u32,
            path: self
                .nodes(node)
                .iter()
                .map(|&n| self.ids[n].clone())
                .collect(),
            resources: numbers,
            kept,
        })
    }

    /// How many resources some limit mentions: their numbers, below this,
    /// stand for the life of the prepared.
    pub fn kept(&self) -> u32 {
        // A resource count past u32 would need more memory than a wasm32
        // guest has; saturating keeps the cast honest regardless.
        u32::try_from(self.names.len()).unwrap_or(u32::MAX)
    }

    /// The limit of `node` given its resource's limits (`None`: the
    /// resource has no limit anywhere).
    fn limit(&self, table: Option<&ResourceLimits>, node: usize) -> Limit {
        let raw = table.and_then(|l| l.of(node));
        resolve(raw, self.missing)
    }

    /// Decides `deltas` for `project` from the numbers of its
    /// [`path`](Self::path), `n` being `deltas.len()`:
    /// `local[r]` = u(project, r) for `deltas[r]`;
    /// `subtree[k * n + r]` = U(path[k], r), pre-summed;
    /// `generations[k]` = the generation read for path[k].
    ///
    /// Errors, in order: the request's own (as `evaluate`), an unknown
    /// project, `shape-mismatch` for a list of the wrong length, then the
    /// usage errors `evaluate` reports for the same numbers as
    /// [`Usage::Path`](crate::Usage::Path) (negative, inconsistent), then
    /// the decision's (release below zero, overflow).
    pub fn evaluate(
        &self,
        project: &str,
        deltas: &[Delta],
        local: &[i64],
        subtree: &[i64],
        generations: &[u64],
    ) -> Result<PathDecision> {
        let names: Vec<&str> = deltas.iter().map(|d| d.resource.as_str()).collect();
        check_request(project, &names)?;
        let node = self.require(project)?;
        let limits = self.limits_of(&names);
        let amounts: Vec<i64> = deltas.iter().map(|d| d.delta).collect();
        let resources = Resources {
            names: &names,
            limits: &limits,
        };
        self.decide_at(node, &resources, &amounts, local, subtree, generations)
    }

    /// [`evaluate`](Self::evaluate) by numbers: `node` and per delta a
    /// resource number (with its amount) from
    /// [`number_request`](Self::number_request) (or the node from
    /// [`locate`](Self::locate)). The same decision and errors as
    /// `evaluate` for the project and names the numbers stand for; a number
    /// that stands for nothing now is `shape-mismatch` (field `node` or
    /// `resource`, `expected` being how many stand).
    pub fn evaluate_numbers(
        &self,
        node: u32,
        deltas: &[(u32, i64)],
        local: &[i64],
        subtree: &[i64],
        generations: &[u64],
    ) -> Result<PathDecision> {
        let node = check_number("node", node, self.ids.len())?;
        let n = deltas.len();
        let mut names: Buf<&str, MAX_INLINE_RESOURCES> = Buf::new(n, "");
        let mut limits: Buf<Option<&ResourceLimits>, MAX_INLINE_RESOURCES> = Buf::new(n, None);
        let mut amounts: Buf<i64, MAX_INLINE_RESOURCES> = Buf::new(n, 0);
        let kept = self.names.len();
        for (i, &(number, amount)) in deltas.iter().enumerate() {
            let r = check_number("resource", number, kept + self.passing.len())?;
            if r < kept {
                names[i] = self.names[r].as_str();
                limits[i] = Some(&self.limits[r]);
            } else {
                names[i] = self.passing[r - kept].as_str();
            }
            amounts[i] = amount;
        }
        // What `check_request` reports, by name; the names of numbers are
        // never empty, and the same name has one number.
        if let Some(name) = smallest_duplicate(&names) {
            return Err(Error::DuplicateResource {
                resource: name.to_string(),
            });
        }
        let resources = Resources {
            names: &names,
            limits: &limits,
        };
        self.decide_at(node, &resources, &amounts, local, subtree, generations)
    }

    /// The limits of each of `names` (`None`: a resource no limit mentions).
    fn limits_of(&self, names: &[&str]) -> Vec<Option<&ResourceLimits>> {
        names
            .iter()
            .map(|name| self.numbers.get(*name).map(|&i| &self.limits[i as usize]))
            .collect()
    }

    /// The decision once the request is checked and `node` found.
    fn decide_at(
        &self,
        node: usize,
        resources: &Resources<'_, '_>,
        amounts: &[i64],
        local: &[i64],
        subtree: &[i64],
        generations: &[u64],
    ) -> Result<PathDecision> {
        let path = self.nodes(node);
        self.check_numbers(&path, resources.names, local, subtree, generations)?;
        self.decide_checked(&path, resources, amounts, local, subtree, generations)
    }

    /// The shape and usage checks of a decision on `path` (the lists'
    /// lengths, then the usage errors `evaluate` reports for the same
    /// numbers as path usage).
    fn check_numbers(
        &self,
        path: &[usize],
        names: &[&str],
        local: &[i64],
        subtree: &[i64],
        generations: &[u64],
    ) -> Result<()> {
        let n = names.len();
        check_len("local", n, local.len())?;
        check_len("subtree", path.len().saturating_mul(n), subtree.len())?;
        check_len("generations", path.len(), generations.len())?;
        let id = |k: usize| self.ids[path[k]].as_str();
        check_usage(path.len(), id, names, local, subtree)
    }

    /// The decision on `path` once [`check_numbers`](Self::check_numbers)
    /// passed.
    fn decide_checked(
        &self,
        path: &[usize],
        resources: &Resources<'_, '_>,
        amounts: &[i64],
        local: &[i64],
        subtree: &[i64],
        generations: &[u64],
    ) -> Result<PathDecision> {
        let n = amounts.len();
        let id = |k: usize| self.ids[path[k]].as_str();

        // The nodes the model checks: the project alone for flat, the
        // whole path otherwise (as `View::build`).
        let checked = match self.model {
            Model::Flat => 1,
            Model::StrictTwoLevel | Model::Nested => path.len(),
        };
        // Resource r at path node k, computed as `decide` visits it (each
        // once) rather than tabled first.
        let constraint = |r: usize, k: usize| Constraint {
            limit: self.limit(resources.limits[r], path[k]),
            usage: match self.model {
                Model::Flat => local[r],
                _ => subtree[k * n + r],
            },
        };
        let outcome = decide(
            &Inputs {
                project: id(0),
                resources: resources.names,
                deltas: amounts,
                local,
                path_len: checked,
            },
            constraint,
            id,
            |k| Some(generations[k]),
        )?;
        Ok(match outcome {
            PathOutcome::Admitted { claim } => PathDecision::Admitted { claim },
            PathOutcome::Refused { violations } => PathDecision::Refused { violations },
        })
    }
}

/// `number` as an index below `given`, or the `shape-mismatch` a number
/// this prepared never gave is.
fn check_number(field: &'static str, number: u32, given: usize) -> Result<usize> {
    let index = number as usize;
    if index < given {
        Ok(index)
    } else {
        Err(Error::ShapeMismatch {
            field,
            expected: given as u64,
            actual: u64::from(number),
        })
    }
}

fn check_len(field: &'static str, expected: usize, actual: usize) -> Result<()> {
    if expected == actual {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            field,
            expected: expected as u64,
            actual: actual as u64,
        })
    }
}

/// The usage checks `usage::count` makes of a [`Usage::Path`](crate::Usage::Path)
/// listing every (node, resource) of the path, in its order: a negative
/// local usage (by resource), a negative subtree usage (by project id, then
/// resource), then per resource by name, from the project up, a subtree
/// smaller than what it contains.
fn check_usage<'a>(
    path_len: usize,
    id: impl Fn(usize) -> &'a str,
    resources: &[&str],
    local: &[i64],
    subtree: &[i64],
) -> Result<()> {
    let n = resources.len();
    let negative_local = (0..n)
        .filter(|&r| local[r] < 0)
        .min_by_key(|&r| resources[r]);
    if let Some(r) = negative_local {
        return Err(Error::NegativeUsage {
            project: id(0).to_string(),
            resource: resources[r].to_string(),
            usage: local[r],
        });
    }
    let negative_subtree = (0..subtree.len())
        .filter(|&i| subtree[i] < 0)
        .min_by_key(|&i| (id(i / n), resources[i % n], subtree[i]));
    if let Some(i) = negative_subtree {
        return Err(Error::NegativeUsage {
            project: id(i / n).to_string(),
            resource: resources[i % n].to_string(),
            usage: subtree[i],
        });
    }
    // The first inconsistency by resource name (names are distinct), then
    // from the project up; no sorting on the way to finding none.
    let mut first: Option<(&str, usize)> = None;
    for r in 0..n {
        if first.is_some_and(|(name, _)| name < resources[r]) {
            continue;
        }
        let mut below = local[r];
        for k in 0..path_len {
            let value = subtree[k * n + r];
            if value < below {
                first = Some((resources[r], k));
                break;
            }
            below = value;
        }
    }
    match first {
        Some((resource, k)) => Err(Error::InconsistentUsage {
            project: id(k).to_string(),
            resource: resource.to_string(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ProjectLimit, Snapshot, evaluate};

    fn tree() -> Vec<Project> {
        vec![Project::root("org"), Project::child("a", "org")]
    }

    fn servers(limit: i64) -> Limits {
        Limits {
            registered: vec![crate::RegisteredLimit {
                resource: "servers".into(),
                limit,
            }],
            project: vec![],
        }
    }

    #[test]
    fn decisions_past_the_inline_scratch_sizes_use_the_heap_alike() {
        // 70 nodes deep, 20 resources: past every inline size of `Buf`
        // (the path's, the resources', and `decide`'s 64 path flags).
        let depth = 70;
        let mut projects = vec![Project::root("p0")];
        for i in 1..depth {
            projects.push(Project::child(format!("p{i}"), format!("p{}", i - 1)));
        }
        let names: Vec<String> = (0..20).map(|r| format!("r{r:02}")).collect();
        let limits = Limits {
            registered: names
                .iter()
                .map(|r| crate::RegisteredLimit {
                    resource: r.clone(),
                    limit: 100,
                })
                .collect(),
            // The root's limit on the last resource is the tight one.
            project: vec![crate::ProjectLimit {
                project: "p0".into(),
                resource: "r19".into(),
                limit: 50,
            }],
        };
        let config = Config {
            max_depth: 100,
            ..Config::new(Model::Nested)
        };
        let mut p = Prepared::new(&config, &projects, &limits).unwrap();
        let leaf = format!("p{}", depth - 1);
        let node = p.locate(&leaf).unwrap().node;
        // Numbered in reverse, so that name order and request order differ.
        let reversed: Vec<&str> = names.iter().rev().map(String::as_str).collect();
        let numbered = p.number_request(&leaf, &reversed).unwrap();
        let deltas: Vec<(u32, i64)> = numbered.resources.iter().map(|&r| (r, 1)).collect();
        let n = deltas.len();
        let local = vec![0; n];
        let generations: Vec<u64> = (0..depth as u64).collect();
        let admitted =
            p.evaluate_numbers(node, &deltas, &local, &vec![49; depth * n], &generations);
        assert_eq!(
            admitted,
            Ok(PathDecision::Admitted {
                claim: (0..depth as u32).collect()
            })
        );
        let refused = p.evaluate_numbers(node, &deltas, &local, &vec![50; depth * n], &generations);
        assert_eq!(
            refused,
            Ok(PathDecision::Refused {
                violations: vec![Violation {
                    project: "p0".into(),
                    resource: "r19".into(),
                    limit: 50,
                    usage: 50,
                    delta: 1,
                }]
            })
        );
    }

    #[test]
    fn a_list_of_the_wrong_length_is_a_shape_mismatch() {
        let p = Prepared::new(&Config::default(), &tree(), &servers(5)).unwrap();
        let d = [Delta::new("servers", 1)];
        // (local, subtree, generations, the field reported, expected, actual)
        type Case<'a> = (&'a [i64], &'a [i64], &'a [u64], &'a str, u64, u64);
        let cases: [Case; 3] = [
            (&[], &[0, 0], &[1, 1], "local", 1, 0),
            (&[0], &[0], &[1, 1], "subtree", 2, 1),
            (&[0], &[0, 0], &[1, 1, 1], "generations", 2, 3),
        ];
        for (local, subtree, generations, field, expected, actual) in cases {
            assert_eq!(
                p.evaluate("a", &d, local, subtree, generations),
                Err(Error::ShapeMismatch {
                    field,
                    expected,
                    actual
                })
            );
        }
    }

    #[test]
    fn prepare_reports_the_tree_and_limit_errors_evaluate_reports() {
        let bad_tree = vec![Project::root("org"), Project::child("a", "nowhere")];
        let bad_limits = Limits {
            registered: vec![],
            project: vec![ProjectLimit {
                project: "ghost".into(),
                resource: "servers".into(),
                limit: 1,
            }],
        };
        let config = Config::default();
        for (projects, limits) in [
            (bad_tree, servers(5)),
            (tree(), bad_limits),
            (tree(), servers(-2)),
        ] {
            let snapshot = Snapshot {
                projects: projects.clone(),
                limits: limits.clone(),
                ..Snapshot::default()
            };
            let request = crate::Request::new("a", vec![Delta::new("servers", 1)]);
            let want = evaluate(&config, &snapshot, &request).unwrap_err();
            assert_eq!(
                Prepared::new(&config, &projects, &limits).unwrap_err(),
                want
            );
        }
        let zero_depth = Config {
            max_depth: 0,
            ..config
        };
        assert_eq!(
            Prepared::new(&zero_depth, &tree(), &servers(5))
                .unwrap_err()
                .kind(),
            "invalid-config"
        );
    }

    #[test]
    fn a_number_that_stands_for_nothing_is_a_shape_mismatch() {
        let mut p = Prepared::new(&Config::default(), &tree(), &servers(5)).unwrap();
        let numbered = p.number_request("a", &["servers", "ram"]).unwrap();
        let [servers, ram] = numbered.resources[..] else {
            panic!("{numbered:?}")
        };
        assert_eq!((servers, ram, numbered.kept), (0, 1, 1));
        let a = p.locate("a").unwrap();
        assert_eq!(a.path, vec!["a", "org"]);
        let node = a.node;
        let ok = p.evaluate_numbers(node, &[(servers, 1), (ram, 0)], &[0, 0], &[0; 4], &[1, 1]);
        assert_eq!(ok, Ok(PathDecision::Admitted { claim: vec![0, 1] }));
        let mismatch = |field, expected, actual| {
            Err(Error::ShapeMismatch {
                field,
                expected,
                actual,
            })
        };
        assert_eq!(
            p.evaluate_numbers(2, &[(servers, 1)], &[0], &[0, 0], &[1, 1]),
            mismatch("node", 2, 2)
        );
        assert_eq!(
            p.evaluate_numbers(node, &[(7, 1)], &[0], &[0, 0], &[1, 1]),
            mismatch("resource", 2, 7)
        );
        assert_eq!(
            p.evaluate_numbers(node, &[(ram, 1), (ram, 2)], &[0, 0], &[0; 4], &[1, 1])
                .unwrap_err()
                .kind(),
            "duplicate-resource"
        );
    }

    #[test]
    fn number_request_reports_evaluates_request_errors_in_its_order() {
        let mut p = Prepared::new(&Config::default(), &tree(), &servers(5)).unwrap();
        let snapshot = Snapshot {
            projects: tree(),
            limits: servers(5),
            ..Snapshot::default()
        };
        // (project, resources, the error kind)
        let cases: [(&str, &[&str], &str); 7] = [
            ("", &["servers"], "empty-id"),
            ("", &[""], "empty-id"),
            ("a", &["servers", ""], "empty-id"),
            ("ghost", &["", "servers"], "empty-id"),
            ("a", &["ram", "servers", "ram"], "duplicate-resource"),
            ("ghost", &["servers", "servers"], "duplicate-resource"),
            ("ghost", &["servers"], "unknown-project"),
        ];
        for (project, resources, kind) in cases {
            let request = crate::Request::new(
                project,
                resources.iter().map(|r| Delta::new(*r, 1)).collect(),
            );
            let want = evaluate(&Config::default(), &snapshot, &request).unwrap_err();
            assert_eq!(want.kind(), kind, "{project:?} {resources:?}");
            assert_eq!(p.number_request(project, resources), Err(want));
        }
        // A bad request keeps nothing.
        assert_eq!((p.names.len(), p.passing.len()), (1, 0));
    }

    #[test]
    fn number_request_gives_locate_and_lasting_numbers_for_limited_resources() {
        let mut p = Prepared::new(&Config::default(), &tree(), &servers(5)).unwrap();
        let got = p.number_request("a", &["ram", "servers", "disk"]).unwrap();
        let location = p.locate("a").unwrap();
        assert_eq!(got.node, location.node);
        assert_eq!(got.path, location.path);
        assert_eq!(got.path, vec!["a", "org"]);
        // servers has a limit: number 0, for good; ram and disk have none:
        // numbered after it, for this request only.
        assert_eq!((got.resources.clone(), got.kept), (vec![1, 0, 2], 1));
        assert_eq!(p.number_request("org", &[]).unwrap().path, vec!["org"]);
        let deltas: Vec<(u32, i64)> = got.resources.iter().map(|&r| (r, 1)).collect();
        // The request for org numbered nothing past `kept`: ram's and
        // disk's numbers stand for nothing now.
        assert_eq!(
            p.evaluate_numbers(got.node, &deltas, &[0; 3], &[0; 6], &[1, 2])
                .unwrap_err()
                .kind(),
            "shape-mismatch"
        );
        let got = p.number_request("a", &["ram", "servers", "disk"]).unwrap();
        let deltas: Vec<(u32, i64)> = got.resources.iter().map(|&r| (r, 1)).collect();
        // ram and disk have no limit: missing-limit zero refuses them, by name.
        let Ok(PathDecision::Refused { violations }) =
            p.evaluate_numbers(got.node, &deltas, &[0; 3], &[0; 6], &[1, 2])
        else {
            panic!("refused")
        };
        let names: Vec<&str> = violations.iter().map(|v| v.resource.as_str()).collect();
        assert_eq!(names, ["disk", "disk", "ram", "ram"]);
    }

    /// A service fed resource names from requests keeps, whatever it is
    /// asked, no more names than its limits mention plus one request's.
    #[test]
    fn names_no_limit_mentions_are_not_kept_past_their_request() {
        let mut p = Prepared::new(&Config::default(), &tree(), &servers(5)).unwrap();
        for i in 0..1000 {
            let name = format!("unknown-{i}");
            p.number_request("a", &[name.as_str(), "servers"]).unwrap();
        }
        assert_eq!((p.names.len(), p.numbers.len(), p.passing.len()), (1, 1, 1));
    }

    #[test]
    fn path_and_claim_positions_name_the_project_first() {
        let p = Prepared::new(&Config::default(), &tree(), &servers(5)).unwrap();
        assert_eq!(p.path("a").unwrap(), vec!["a", "org"]);
        assert_eq!(p.path("").unwrap_err().kind(), "empty-id");
        assert_eq!(p.path("b").unwrap_err().kind(), "unknown-project");
        let d = [Delta::new("servers", 1)];
        assert_eq!(
            p.evaluate("a", &d, &[1], &[1, 4], &[7, 9]),
            Ok(PathDecision::Admitted { claim: vec![0, 1] })
        );
        assert!(
            !p.evaluate("a", &d, &[1], &[1, 5], &[7, 9])
                .unwrap()
                .is_admitted()
        );
    }
}
