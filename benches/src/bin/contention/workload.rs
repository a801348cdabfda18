//! The contention workload every strategy runs: the tree, the limits, the
//! requests, and the audit of the final state.
//!
//! "Fill to the limit": workers only consume (never release), so usage only
//! grows and the final subtree usage of a node bounds every value it had
//! during the run. Auditing every node's final subtree usage against its
//! limit therefore counts oversubscription exactly, for every strategy,
//! without a trigger inside the measured transactions. The audit is only as
//! good as the final state, so it also checks that the stored usage equals
//! the sum of what the workers saw admitted (a lost update would hide an
//! overrun).

use delimiter::{Delta, Limits, Project, ProjectLimit, RegisteredLimit, Request};
use std::collections::BTreeMap;

pub const RESOURCES: [&str; 3] = ["servers", "cores", "ram_gb"];
pub const ROOT: &str = "org";

/// Sizes of one run: the full benchmark, or the tiny one `just test` runs.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    pub departments: usize,
    pub teams: usize,
    /// Limits per level as (servers, cores, ram_gb); children over-commit
    /// their parent at every level, so the root binds.
    pub root: [i64; 3],
    pub department: [i64; 3],
    pub team: [i64; 3],
}

impl Size {
    /// 1 + 4 + 16 projects; about 1,500 admitted consumes fill the root.
    pub const FULL: Size = Size {
        departments: 4,
        teams: 4,
        root: [1500, 3750, 7500],
        department: [450, 1100, 2250],
        team: [130, 320, 650],
    };
    /// 1 + 2 + 4 projects; a dozen consumes fill the root.
    pub const TINY: Size = Size {
        departments: 2,
        teams: 2,
        root: [12, 30, 60],
        department: [7, 18, 36],
        team: [4, 10, 20],
    };

    /// Whether this is the tiny size.
    pub fn is_tiny(&self) -> bool {
        self.root == Size::TINY.root
    }

    /// org > d0..dN > dI-t0..tM, parents first.
    pub fn projects(&self) -> Vec<Project> {
        let mut out = vec![Project::root(ROOT)];
        for d in 0..self.departments {
            out.push(Project::child(format!("d{d}"), ROOT));
        }
        for d in 0..self.departments {
            for t in 0..self.teams {
                out.push(Project::child(format!("d{d}-t{t}"), format!("d{d}")));
            }
        }
        out
    }

    /// The leaves, where every request goes.
    pub fn teams(&self) -> Vec<String> {
        self.projects()
            .into_iter()
            .filter(|p| p.id.contains("-t"))
            .map(|p| p.id)
            .collect()
    }

    /// Registered limits are the team level's; the root and the
    /// departments have project limits.
    pub fn limits(&self) -> Limits {
        let mut project = Vec::new();
        for (i, r) in RESOURCES.iter().enumerate() {
            project.push(ProjectLimit::new(ROOT, *r, self.root[i]));
            for d in 0..self.departments {
                project.push(ProjectLimit::new(format!("d{d}"), *r, self.department[i]));
            }
        }
        Limits {
            registered: RESOURCES
                .iter()
                .enumerate()
                .map(|(i, r)| RegisteredLimit::new(*r, self.team[i]))
                .collect(),
            project,
        }
    }

    fn limit_of(&self, project: &str, resource: usize) -> i64 {
        if project == ROOT {
            self.root[resource]
        } else if project.contains("-t") {
            self.team[resource]
        } else {
            self.department[resource]
        }
    }

    /// Oversubscribed (node, resource) pairs: final subtree usage above the
    /// limit. `usage` is every stored (project, resource, usage) row.
    pub fn oversubscribed(&self, usage: &[(String, String, i64)]) -> usize {
        let projects = self.projects();
        let mut over = 0;
        for anchor in &projects {
            for (i, r) in RESOURCES.iter().enumerate() {
                let total: i64 = usage
                    .iter()
                    .filter(|(p, res, _)| res == r && is_in_subtree(&projects, p, &anchor.id))
                    .map(|(_, _, u)| *u)
                    .sum();
                if total > self.limit_of(&anchor.id, i) {
                    over += 1;
                }
            }
        }
        over
    }
}

fn is_in_subtree(projects: &[Project], project: &str, anchor: &str) -> bool {
    let mut at = Some(project.to_string());
    while let Some(p) = at {
        if p == anchor {
            return true;
        }
        at = projects
            .iter()
            .find(|q| q.id == p)
            .and_then(|q| q.parent.clone());
    }
    false
}

/// (project, resource) pairs whose stored usage differs from what the
/// workers saw admitted.
pub fn lost_updates(
    admitted: &BTreeMap<(String, String), i64>,
    usage: &[(String, String, i64)],
) -> usize {
    let stored: BTreeMap<(String, String), i64> = usage
        .iter()
        .filter(|u| u.2 != 0)
        .map(|(p, r, u)| ((p.clone(), r.clone()), *u))
        .collect();
    let admitted: BTreeMap<_, _> = admitted
        .iter()
        .filter(|(_, v)| **v != 0)
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    stored
        .keys()
        .chain(admitted.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|k| stored.get(*k) != admitted.get(*k))
        .count()
}

/// A small deterministic generator (xorshift), so every strategy sees the
/// same request stream per worker index.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(0x9E37_79B9_7F4A_7C15u64.wrapping_mul(seed + 1) | 1)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// One request: a random team takes 1 server, 1-4 cores and 2-8 GB.
pub fn next_request(rng: &mut Rng, teams: &[String]) -> Request {
    let team = &teams[rng.below(teams.len() as u64) as usize];
    let cores = 1 + rng.below(4) as i64;
    let ram = 2 * (1 + rng.below(4) as i64);
    Request::new(
        team.clone(),
        vec![
            Delta::new("servers", 1),
            Delta::new("cores", cores),
            Delta::new("ram_gb", ram),
        ],
    )
}
