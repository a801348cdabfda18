//! `just demo`: Delimiter end to end on the embedded default, SQLite.
//!
//! A small nested project tree in a SQLite file, eight workers (threads, each
//! with its own connection and its own component instance) consuming and
//! releasing servers and cores through the consume driver, a refusal
//! explained, and a final audit of the database: no node over its limit, and
//! every committed change accounted for.

use delimiter::*;
use std::collections::BTreeMap;
use std::sync::Mutex;

const WORKERS: u64 = 8;
const OPS_PER_WORKER: usize = 60;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // org (servers 10, cores 40)
    // ├── eng (servers 8)      children may over-commit their parent:
    // │   ├── web (servers 6)  6 + 6 > 8, but usage never may
    // │   └── batch (servers 6)
    // └── ops (servers 4)
    let projects = vec![
        Project::root("org"),
        Project::child("eng", "org"),
        Project::child("web", "eng"),
        Project::child("batch", "eng"),
        Project::child("ops", "org"),
    ];
    let limits = Limits {
        registered: vec![
            RegisteredLimit::new("servers", 5),
            RegisteredLimit::new("cores", UNLIMITED),
        ],
        project: vec![
            ProjectLimit::new("org", "servers", 10),
            ProjectLimit::new("org", "cores", 40),
            ProjectLimit::new("eng", "servers", 8),
            ProjectLimit::new("web", "servers", 6),
            ProjectLimit::new("batch", "servers", 6),
            ProjectLimit::new("ops", "servers", 4),
        ],
    };
    let dir = std::env::temp_dir().join(format!("delimiter-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("quota.sqlite");
    let mut setup = SqliteStore::open(&path)?;
    setup.create_schema()?;
    for p in &projects {
        setup.add_project(p)?;
    }
    setup.set_limits(&limits)?;

    let config = Config::new(Model::Nested);
    let problems = validate(&config, &projects, &limits)?;
    println!("Delimiter demo: nested tree in {}", path.display());
    println!(
        "  org > eng > {{web, batch}}, org > ops; validate: {} findings",
        problems.len()
    );
    println!("  {WORKERS} workers, {OPS_PER_WORKER} requests each, through the consume driver\n");

    let committed: Mutex<BTreeMap<(String, String), i64>> = Mutex::new(BTreeMap::new());
    let example: Mutex<Option<(String, Vec<Violation>)>> = Mutex::new(None);
    let totals = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..WORKERS)
            .map(|w| {
                let (path, config, committed, example) = (&path, &config, &committed, &example);
                scope.spawn(move || -> Result<[u32; 4], Error> {
                    let mut store = SqliteStore::open(path).expect("the demo database opens");
                    let mut enforcer = Enforcer::new();
                    // The default policy: a 2 s deadline, jitter drawn per call.
                    let policy = RetryPolicy::default();
                    let mut rng = 0x2545_F491_4F6C_DD1Du64 ^ (w + 1);
                    let mut next = move |n: u64| {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        rng % n
                    };
                    // [admitted, refused, retries exhausted, attempts beyond the first]
                    let mut counts = [0u32; 4];
                    let mut held: BTreeMap<&str, i64> = BTreeMap::new();
                    for _ in 0..OPS_PER_WORKER {
                        let project = ["web", "batch", "ops", "eng"][next(4) as usize];
                        let mine = held.entry(project).or_default();
                        // Release some of what this worker holds, now and then.
                        let servers = if next(3) == 0 && *mine > 0 {
                            -(1 + next(*mine as u64) as i64)
                        } else {
                            1 + next(2) as i64
                        };
                        let request = Request::new(
                            project,
                            vec![
                                Delta::new("servers", servers),
                                Delta::new("cores", 4 * servers),
                            ],
                        );
                        match enforcer.consume(config, &policy, &mut store, &request) {
                            Ok(done) => {
                                counts[0] += 1;
                                counts[3] += done.attempts - 1;
                                *held.get_mut(project).unwrap() += servers;
                                let mut c = committed.lock().unwrap();
                                for d in &request.deltas {
                                    *c.entry((project.to_string(), d.resource.clone()))
                                        .or_default() += d.delta;
                                }
                            }
                            Err(Error::OverLimit(OverLimit { violations, .. })) => {
                                counts[1] += 1;
                                example
                                    .lock()
                                    .unwrap()
                                    .get_or_insert((project.to_string(), violations));
                            }
                            Err(Error::RetriesExhausted { .. }) => counts[2] += 1,
                            Err(other) => return Err(other),
                        }
                    }
                    Ok(counts)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker thread"))
            .collect::<Result<Vec<_>, _>>()
    })?;
    let sum = |i: usize| totals.iter().map(|t| t[i]).sum::<u32>();
    println!(
        "commits={} refusals={} retries={} retries_exhausted={}\n",
        sum(0),
        sum(1),
        sum(3),
        sum(2)
    );

    if let Some((project, violations)) = example.lock().unwrap().take() {
        println!("A refusal, explained (request by {project}):");
        for v in violations {
            println!(
                "  {} at {}: usage {} + delta {} would pass the limit of {}",
                v.resource, v.project, v.usage, v.delta, v.limit
            );
        }
        println!();
    }

    // Audit the database itself: subtree usage against every limit, and the
    // rows against what the workers saw committed.
    let subtree = |node: &str, resource: &str| -> Result<i64, StorageError> {
        let mut total = 0;
        for p in &projects {
            let mut at = Some(p.id.as_str());
            while let Some(a) = at {
                if a == node {
                    total += setup.usage(&p.id, resource)?;
                    break;
                }
                at = projects
                    .iter()
                    .find(|q| q.id == a)
                    .and_then(|q| q.parent.as_deref());
            }
        }
        Ok(total)
    };
    let mut reader = SqliteStore::open(&path)?;
    let mut oversubscribed = 0;
    println!("Final usage (subtree / limit):");
    for p in &projects {
        let mut line = format!("  {:<6}", p.id);
        for resource in ["servers", "cores"] {
            let used = subtree(&p.id, resource)?;
            let snapshot = reader.read(&p.id, &[resource.to_string()])?;
            let room = headroom(&config, &snapshot, &p.id, &[resource.to_string()])?;
            let limit = limits.limit_of(&p.id, resource).unwrap_or(0);
            if limit != UNLIMITED && used > limit {
                oversubscribed += 1;
            }
            let shown = if limit == UNLIMITED {
                "unlimited".to_string()
            } else {
                limit.to_string()
            };
            let room = match room[0].room {
                Room::Unlimited => "unlimited".to_string(),
                Room::Limited(n) => n.to_string(),
            };
            line += &format!("  {resource} {used:>3}/{shown:<9} (headroom {room})");
        }
        println!("{line}");
    }
    let mut lost_updates = 0;
    for ((project, resource), delta) in committed.lock().unwrap().iter() {
        if setup.usage(project, resource)? != *delta {
            lost_updates += 1;
        }
    }
    println!("\naudit: oversubscribed={oversubscribed} lost_updates={lost_updates}");
    std::fs::remove_dir_all(&dir)?;
    if oversubscribed > 0 || lost_updates > 0 {
        std::process::exit(1);
    }
    Ok(())
}
