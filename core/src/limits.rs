//! Limits and their resolution: project limit, else registered limit, else
//! the missing-limit rule.

use crate::error::{Error, IdKind, Result};
use crate::model::MissingLimit;
use crate::tree::Tree;
use std::collections::BTreeMap;

/// The value that means "no limit", as in Keystone's unified limits.
pub const UNLIMITED: i64 = -1;

/// The default limit of a resource for every project.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RegisteredLimit {
    pub resource: String,
    pub limit: i64,
}

/// An override of the registered limit for one project.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProjectLimit {
    pub project: String,
    pub resource: String,
    pub limit: i64,
}

/// All limits known to the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub registered: Vec<RegisteredLimit>,
    pub project: Vec<ProjectLimit>,
}

/// A resolved limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    Unlimited,
    Finite(i64),
}

/// Limits checked and indexed by (node, resource).
#[derive(Debug)]
pub(crate) struct LimitTable<'a> {
    registered: BTreeMap<&'a str, i64>,
    project: BTreeMap<(usize, &'a str), i64>,
    missing: MissingLimit,
}

impl<'a> LimitTable<'a> {
    pub(crate) fn build(
        limits: &'a Limits,
        tree: &Tree<'_>,
        missing: MissingLimit,
    ) -> Result<Self> {
        let mut problems = Vec::new();
        let table = Self::analyse(limits, tree, missing, &mut problems);
        match problems.into_iter().next() {
            Some(problem) => Err(problem),
            None => Ok(table),
        }
    }

    /// Indexes every well-formed limit and reports every problem, registered
    /// limits first (by resource), then project limits (by project, resource).
    pub(crate) fn analyse(
        limits: &'a Limits,
        tree: &Tree<'_>,
        missing: MissingLimit,
        problems: &mut Vec<Error>,
    ) -> Self {
        let mut registered_sorted: Vec<&'a RegisteredLimit> = limits.registered.iter().collect();
        registered_sorted.sort_by(|a, b| (&a.resource, a.limit).cmp(&(&b.resource, b.limit)));
        let mut registered = BTreeMap::new();
        for r in registered_sorted {
            if let Some(problem) = check_limit(None, &r.resource, r.limit) {
                problems.push(problem);
            } else if registered.insert(r.resource.as_str(), r.limit).is_some() {
                push_once(
                    problems,
                    Error::DuplicateLimit {
                        project: None,
                        resource: r.resource.clone(),
                    },
                );
            }
        }

        let mut project = BTreeMap::new();
        // The common case, every project limit well-formed and of a known
        // project, is ordered by node instead of by project id: node order
        // is id order (`Tree`), so the order, and so every duplicate
        // reported, is the same, without comparing ids at every step of the
        // sort. Anything else takes the general path below.
        let known: Option<Vec<(usize, &'a ProjectLimit)>> = limits
            .project
            .iter()
            .map(|p| {
                let well_formed = !p.resource.is_empty() && p.limit >= UNLIMITED;
                well_formed
                    .then(|| tree.lookup(&p.project))
                    .flatten()
                    .map(|node| (node, p))
            })
            .collect();
        if let Some(mut known) = known {
            known.sort_by(|(na, a), (nb, b)| {
                (na, &a.resource, a.limit).cmp(&(nb, &b.resource, b.limit))
            });
            for (node, p) in known {
                insert_project_limit(&mut project, problems, node, p);
            }
            return LimitTable {
                registered,
                project,
                missing,
            };
        }

        let mut project_sorted: Vec<&'a ProjectLimit> = limits.project.iter().collect();
        project_sorted.sort_by(|a, b| {
            (&a.project, &a.resource, a.limit).cmp(&(&b.project, &b.resource, b.limit))
        });
        for p in project_sorted {
            if p.project.is_empty() {
                problems.push(Error::EmptyId {
                    what: IdKind::Project,
                });
            } else if let Some(problem) = check_limit(Some(p.project.clone()), &p.resource, p.limit)
            {
                problems.push(problem);
            } else {
                match tree.lookup(&p.project) {
                    None => push_once(
                        problems,
                        Error::UnknownProject {
                            project: p.project.clone(),
                        },
                    ),
                    Some(node) => insert_project_limit(&mut project, problems, node, p),
                }
            }
        }
        LimitTable {
            registered,
            project,
            missing,
        }
    }

    /// The limit of `resource` for `node`.
    pub(crate) fn resolve(&self, node: usize, resource: &str) -> Limit {
        let raw = self
            .project
            .get(&(node, resource))
            .or_else(|| self.registered.get(resource))
            .copied();
        resolve(raw, self.missing)
    }

    /// Every resource that has a registered or a project limit, in order.
    pub(crate) fn resources(&self) -> Vec<&'a str> {
        let mut all: Vec<&'a str> = self.registered.keys().copied().collect();
        all.extend(self.project.keys().map(|(_, r)| *r));
        all.sort_unstable();
        all.dedup();
        all
    }
}

/// The resolution rule, given the project limit if present else the
/// registered one (`raw`); shared with [`Prepared`](crate::Prepared)'s own
/// index so that both resolve alike.
pub(crate) fn resolve(raw: Option<i64>, missing: MissingLimit) -> Limit {
    match raw {
        Some(UNLIMITED) => Limit::Unlimited,
        Some(l) => Limit::Finite(l),
        None => match missing {
            MissingLimit::Zero => Limit::Finite(0),
            MissingLimit::Unlimited => Limit::Unlimited,
        },
    }
}

fn check_limit(project: Option<String>, resource: &str, limit: i64) -> Option<Error> {
    if resource.is_empty() {
        Some(Error::EmptyId {
            what: IdKind::Resource,
        })
    } else if limit < UNLIMITED {
        Some(Error::InvalidLimit {
            project,
            resource: resource.to_string(),
            limit,
        })
    } else {
        None
    }
}

/// Pushes `problem` unless it is the same as the last one (a value given
/// three times is one duplicate, not two).
/// Indexes `p`, the limit of `node`; a second limit of one (node,
/// resource) is a DuplicateLimit, reported once.
fn insert_project_limit<'a>(
    project: &mut BTreeMap<(usize, &'a str), i64>,
    problems: &mut Vec<Error>,
    node: usize,
    p: &'a ProjectLimit,
) {
    if project
        .insert((node, p.resource.as_str()), p.limit)
        .is_some()
    {
        push_once(
            problems,
            Error::DuplicateLimit {
                project: Some(p.project.clone()),
                resource: p.resource.clone(),
            },
        );
    }
}

pub(crate) fn push_once(problems: &mut Vec<Error>, problem: Error) {
    if problems.last() != Some(&problem) {
        problems.push(problem);
    }
}
