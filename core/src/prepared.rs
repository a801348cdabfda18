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

use crate::decide::{Delta, PathOutcome, Violation, decide};
use crate::error::{Error, IdKind, Result};
use crate::limits::{Limit, LimitTable, Limits, resolve};
use crate::model::{Config, MissingLimit, Model};
use crate::snapshot::{Constraint, check_request};
use crate::tree::{Project, Tree};
use std::collections::BTreeMap;

/// Limits of one resource, indexed by node.
#[derive(Debug, Clone, Default)]
struct ResourceLimits {
    registered: Option<i64>,
    project: BTreeMap<usize, i64>,
}

/// The config, tree and limits, checked once and owned, ready for many
/// decisions.
#[derive(Debug, Clone)]
pub struct Prepared {
    model: Model,
    missing: MissingLimit,
    ids: Vec<String>,
    index: BTreeMap<String, usize>,
    parent: Vec<Option<usize>>,
    /// By resource name, then node: one name lookup per requested resource
    /// and a small map per node, instead of a (node, name) key per pair.
    limits: BTreeMap<String, ResourceLimits>,
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
        let mut by_resource: BTreeMap<String, ResourceLimits> = BTreeMap::new();
        for r in &limits.registered {
            by_resource
                .entry(r.resource.clone())
                .or_default()
                .registered = Some(r.limit);
        }
        for p in &limits.project {
            // Checked above: every project limit names a known project.
            if let Some(node) = tree.lookup(&p.project) {
                by_resource
                    .entry(p.resource.clone())
                    .or_default()
                    .project
                    .insert(node, p.limit);
            }
        }
        Ok(Prepared {
            model: config.model,
            missing: config.missing_limit,
            ids,
            index,
            parent,
            limits: by_resource,
        })
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

    fn nodes(&self, node: usize) -> Vec<usize> {
        let mut path = Vec::new();
        let mut at = Some(node);
        while let Some(n) = at {
            path.push(n);
            at = self.parent[n];
        }
        path
    }

    /// The nodes whose usage and generation a decision for `project`
    /// needs: the project, then each ancestor up to the root, under every
    /// model (flat decides on the project alone, but the subtree usage of
    /// the whole path is checked for consistency as `evaluate` checks
    /// [`Usage::Path`](crate::Usage::Path)).
    pub fn path(&self, project: &str) -> Result<Vec<&str>> {
        let node = self.require(project)?;
        Ok(self
            .nodes(node)
            .into_iter()
            .map(|n| self.ids[n].as_str())
            .collect())
    }

    /// The limit of `node` given its resource's limits (`None`: the
    /// resource has no limit anywhere).
    fn limit(&self, table: Option<&ResourceLimits>, node: usize) -> Limit {
        let raw = table.and_then(|l| l.project.get(&node).copied().or(l.registered));
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
        let resources: Vec<&str> = deltas.iter().map(|d| d.resource.as_str()).collect();
        check_request(project, &resources)?;
        let node = self.require(project)?;
        let path = self.nodes(node);
        let n = deltas.len();
        check_len("local", n, local.len())?;
        check_len("subtree", path.len().saturating_mul(n), subtree.len())?;
        check_len("generations", path.len(), generations.len())?;
        let ids: Vec<&str> = path.iter().map(|&p| self.ids[p].as_str()).collect();
        check_usage(&ids, &resources, local, subtree)?;

        // The nodes the model checks: the project alone for flat, the
        // whole path otherwise (as `View::build`).
        let checked = match self.model {
            Model::Flat => 1,
            Model::StrictTwoLevel | Model::Nested => path.len(),
        };
        let constraints: Vec<Vec<Constraint>> = (0..n)
            .map(|r| {
                // One lookup by name per resource, then by node.
                let table = self.limits.get(resources[r]);
                (0..checked)
                    .map(|k| Constraint {
                        limit: self.limit(table, path[k]),
                        usage: match self.model {
                            Model::Flat => local[r],
                            _ => subtree[k * n + r],
                        },
                    })
                    .collect()
            })
            .collect();
        let generations: Vec<Option<u64>> =
            generations[..checked].iter().map(|&g| Some(g)).collect();
        let outcome = decide(
            project,
            deltas,
            local,
            &constraints,
            &ids[..checked],
            &generations,
        )?;
        Ok(match outcome {
            PathOutcome::Admitted { claim } => PathDecision::Admitted {
                // A position is below the path's length, which is at most
                // the maximum depth, a u32: the cast cannot truncate.
                claim: claim.into_iter().map(|(k, _)| k as u32).collect(),
            },
            PathOutcome::Refused { violations } => PathDecision::Refused { violations },
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
fn check_usage(ids: &[&str], resources: &[&str], local: &[i64], subtree: &[i64]) -> Result<()> {
    let n = resources.len();
    let negative_local = (0..n)
        .filter(|&r| local[r] < 0)
        .min_by_key(|&r| resources[r]);
    if let Some(r) = negative_local {
        return Err(Error::NegativeUsage {
            project: ids[0].to_string(),
            resource: resources[r].to_string(),
            usage: local[r],
        });
    }
    let negative_subtree = (0..subtree.len())
        .filter(|&i| subtree[i] < 0)
        .min_by_key(|&i| (ids[i / n], resources[i % n], subtree[i]));
    if let Some(i) = negative_subtree {
        return Err(Error::NegativeUsage {
            project: ids[i / n].to_string(),
            resource: resources[i % n].to_string(),
            usage: subtree[i],
        });
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&r| resources[r]);
    for r in order {
        let mut below = local[r];
        for (k, id) in ids.iter().enumerate() {
            let value = subtree[k * n + r];
            if value < below {
                return Err(Error::InconsistentUsage {
                    project: id.to_string(),
                    resource: resources[r].to_string(),
                });
            }
            below = value;
        }
    }
    Ok(())
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
