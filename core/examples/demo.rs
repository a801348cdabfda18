//! A self-contained demonstration of the core: a small nested project tree,
//! concurrent workers consuming and releasing through the consume driver
//! against an in-memory store with generation compare-and-update, refusals
//! explained, and a final audit.
//!
//! The store here is an in-process stand-in for a service's database (one
//! mutex per commit plays the part of one transaction); the SQLite,
//! PostgreSQL and MariaDB stores come with the storage work.
//!
//! Run with `just demo` (or `cargo run --release -p delimiter-core --example demo`).

use delimiter_core::*;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

const WORKERS: usize = 8;
const OPS_PER_WORKER: usize = 200;

/// Usage rows and generations, as a service's database would hold them.
#[derive(Default)]
struct Db {
    usage: BTreeMap<(String, String), i64>,
    generation: BTreeMap<String, u64>,
    /// Every committed request, for the audit.
    log: Vec<Request>,
}

/// What one worker sees: a handle on the shared database.
struct Worker {
    db: Arc<Mutex<Db>>,
    projects: Vec<Project>,
    limits: Limits,
    conflicts: u32,
    /// Makes the race window real: sleep between read and commit.
    think: Duration,
}

impl Store for Worker {
    fn read(&mut self, _project: &str, _resources: &[&str]) -> Result<Snapshot, StorageError> {
        let db = self.db.lock().map_err(|_| StorageError::new("poisoned"))?;
        // Generations and usage from the same snapshot (one lock).
        let generations =
            db.generation.iter().map(|(p, g)| Generation { project: p.clone(), generation: *g }).collect();
        let usage = db
            .usage
            .iter()
            .map(|((p, r), u)| UsageEntry { project: p.clone(), resource: r.clone(), usage: *u })
            .collect();
        drop(db);
        thread::sleep(self.think);
        Ok(Snapshot { projects: self.projects.clone(), limits: self.limits.clone(), usage: Usage::Local(usage), generations })
    }

    fn commit(&mut self, claim: &[ClaimEntry], request: &Request) -> Result<CommitOutcome, StorageError> {
        let mut db = self.db.lock().map_err(|_| StorageError::new("poisoned"))?;
        // UPDATE generations SET generation = generation + 1 WHERE project_id = ? AND generation = ?
        if claim.iter().any(|c| db.generation.get(&c.project) != Some(&c.generation)) {
            self.conflicts += 1;
            return Ok(CommitOutcome::Conflict);
        }
        // The service's own rows cannot go below zero (a CHECK constraint
        // in a real schema): two racing releases of the same servers lose
        // one to this, and the retry's fresh read reports it.
        if request.deltas.iter().any(|d| {
            db.usage.get(&(request.project.clone(), d.resource.clone())).copied().unwrap_or(0) + d.delta < 0
        }) {
            self.conflicts += 1;
            return Ok(CommitOutcome::Conflict);
        }
        for c in claim {
            *db.generation.get_mut(&c.project).expect("claimed project exists") += 1;
        }
        for d in &request.deltas {
            *db.usage.entry((request.project.clone(), d.resource.clone())).or_default() += d.delta;
        }
        // A release changes usage too: bump the project's own generation so
        // a stale writer cannot pair old usage with it (the ABA case).
        if request.deltas.iter().any(|d| d.delta < 0) {
            *db.generation.get_mut(&request.project).expect("project exists") += 1;
        }
        db.log.push(request.clone());
        Ok(CommitOutcome::Committed)
    }

    fn backoff(&mut self, _attempt: u32, delay_us: u64) {
        thread::sleep(Duration::from_micros(delay_us));
    }
}

fn main() {
    // org (servers 10, cores 40)
    // ├── eng (servers 8)            limits of children may over-commit the parent
    // │   ├── web (servers 6)
    // │   └── batch (servers 6)
    // └── ops (servers 4)
    let projects = vec![
        Project::root("org"),
        Project::child("eng", "org"),
        Project::child("web", "eng"),
        Project::child("batch", "eng"),
        Project::child("ops", "org"),
    ];
    let limit = |p: &str, r: &str, l: i64| ProjectLimit { project: p.into(), resource: r.into(), limit: l };
    let limits = Limits {
        registered: vec![
            RegisteredLimit { resource: "servers".into(), limit: 5 },
            RegisteredLimit { resource: "cores".into(), limit: UNLIMITED },
        ],
        project: vec![
            limit("org", "servers", 10),
            limit("org", "cores", 40),
            limit("eng", "servers", 8),
            limit("web", "servers", 6),
            limit("batch", "servers", 6),
            limit("ops", "servers", 4),
        ],
    };
    let config = Config::new(Model::Nested);
    let db = Arc::new(Mutex::new(Db::default()));
    for p in &projects {
        db.lock().unwrap().generation.insert(p.id.clone(), 1);
    }

    println!("Delimiter demo: nested tree org > eng > {{web, batch}}, org > ops; {WORKERS} workers\n");
    let leaves = ["web", "batch", "ops", "eng"];
    let handles: Vec<_> = (0..WORKERS)
        .map(|w| {
            let mut worker = Worker {
                db: Arc::clone(&db),
                projects: projects.clone(),
                limits: limits.clone(),
                conflicts: 0,
                think: Duration::from_micros(50),
            };
            thread::spawn(move || {
                let policy = RetryPolicy { seed: w as u64, ..RetryPolicy::default() };
                let mut rng = 0x2545_F491_4F6C_DD1Du64 ^ (w as u64 + 1);
                let mut next = move |n: u64| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng % n
                };
                let (mut admitted, mut refused, mut exhausted, mut first_refusal) = (0, 0, 0, None);
                for _ in 0..OPS_PER_WORKER {
                    let project = leaves[next(leaves.len() as u64) as usize];
                    let servers = next(3) as i64 + 1;
                    // Release what this project holds now and then, else consume.
                    let held = worker.db.lock().unwrap().usage.get(&(project.into(), "servers".into())).copied();
                    let release = next(3) == 0 && held.unwrap_or(0) >= servers;
                    let sign = if release { -1 } else { 1 };
                    let request = Request::new(
                        project,
                        vec![Delta::new("servers", sign * servers), Delta::new("cores", sign * servers * 4)],
                    );
                    match consume(&config, &policy, &mut worker, &request) {
                        Ok(_) => admitted += 1,
                        Err(ConsumeError::OverLimit { violations, .. }) => {
                            refused += 1;
                            first_refusal.get_or_insert((project, violations));
                        }
                        Err(ConsumeError::RetriesExhausted { .. }) => exhausted += 1,
                        // Another worker released the same servers first.
                        Err(ConsumeError::Invalid(Error::ReleaseBelowZero { .. })) => {}
                        Err(other) => panic!("unexpected: {other}"),
                    }
                }
                (admitted, refused, exhausted, worker.conflicts, first_refusal)
            })
        })
        .collect();

    let (mut admitted, mut refused, mut exhausted, mut conflicts) = (0, 0, 0, 0);
    let mut example = None;
    for h in handles {
        let (a, r, e, c, first) = h.join().expect("worker finished");
        admitted += a;
        refused += r;
        exhausted += e;
        conflicts += c;
        example = example.or(first);
    }
    println!("commits={admitted} refusals={refused} conflicts={conflicts} retries_exhausted={exhausted}\n");

    if let Some((project, violations)) = example {
        println!("A refusal, explained (request by {project}):");
        for v in violations {
            println!(
                "  {} at {}: usage {} + delta {} would exceed limit {}",
                v.resource, v.project, v.usage, v.delta, v.limit
            );
        }
        println!();
    }

    // Audit: replay the commit log, check every prefix, and compare with the
    // final rows.
    let db = db.lock().unwrap();
    let mut replay: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut oversubscribed = 0;
    let subtree = |usage: &BTreeMap<(String, String), i64>, node: &str, r: &str| -> i64 {
        let in_subtree = |p: &str| {
            let mut at = Some(p.to_string());
            while let Some(x) = at {
                if x == node {
                    return true;
                }
                at = projects.iter().find(|q| q.id == x).and_then(|q| q.parent.clone());
            }
            false
        };
        usage.iter().filter(|((p, res), _)| res == r && in_subtree(p)).map(|(_, u)| u).sum()
    };
    for request in &db.log {
        for d in &request.deltas {
            *replay.entry((request.project.clone(), d.resource.clone())).or_default() += d.delta;
        }
        for p in &projects {
            for (r, l) in [("servers", limits_of(&limits, &p.id, "servers")), ("cores", limits_of(&limits, &p.id, "cores"))] {
                if l >= 0 && subtree(&replay, &p.id, r) > l {
                    oversubscribed += 1;
                }
            }
        }
    }
    let lost_updates = (replay != db.usage) as u32;
    println!("Final usage (subtree) per project:");
    for p in &projects {
        println!(
            "  {:<6} servers {:>2}/{:<2}  cores {:>3}/{}",
            p.id,
            subtree(&db.usage, &p.id, "servers"),
            limits_of(&limits, &p.id, "servers"),
            subtree(&db.usage, &p.id, "cores"),
            match limits_of(&limits, &p.id, "cores") {
                UNLIMITED => "unlimited".to_string(),
                l => l.to_string(),
            }
        );
    }
    println!("\naudit: oversubscribed={oversubscribed} lost_updates={lost_updates} (after each of {} commits)", db.log.len());
    if oversubscribed > 0 || lost_updates > 0 {
        std::process::exit(1);
    }
}

fn limits_of(limits: &Limits, project: &str, resource: &str) -> i64 {
    limits
        .project
        .iter()
        .find(|l| l.project == project && l.resource == resource)
        .map(|l| l.limit)
        .or_else(|| limits.registered.iter().find(|l| l.resource == resource).map(|l| l.limit))
        .unwrap_or(0)
}
