//! Table 4, contention: consumes per second and p99 latency for 1, 4, 16
//! and 64 workers on PostgreSQL and MariaDB, with Delimiter's generation
//! compare-and-update (`generation-cas`: the shipped stores and `consume`)
//! against the same workload and the same decision serialized by
//! `SELECT ... FOR UPDATE` (`for-update`) and by SERIALIZABLE transactions
//! (`serializable`), each with its oversubscribed count.
//!
//! Every worker is a thread with its own connection and its own component
//! instance. The workload fills a nested tree to its limits (consume only),
//! so the final state bounds every intermediate one and a final audit of
//! every node's subtree usage counts oversubscription exactly, for every
//! strategy alike (see `workload.rs`).
//!
//! Writes `target/bench/contention.json` (benches/README.md) and prints a
//! table. `DELIMITER_BENCH_TINY=1`: a tiny tree, 1 and 4 workers, results
//! wherever `DELIMITER_BENCH_DIR` says. Exits non-zero if generation-cas oversubscribes
//! or loses an update, or any worker fails unexpectedly. Databases come
//! from DELIMITER_TEST_POSTGRES_URL and DELIMITER_TEST_MARIADB_URL; an unset
//! one is skipped, and the output says so.

// The runner's parts, beside it in contention/ (a binary's root takes
// module paths relative to src/bin/).
#[path = "contention/driver.rs"]
mod driver;
#[path = "contention/mariadb.rs"]
mod my;
#[path = "contention/postgres.rs"]
mod pg;
#[path = "contention/workload.rs"]
mod workload;

use delimiter::{
    Decision, Delta, Enforcer, Limits, Project, RegisteredLimit, Request, RetryPolicy, Snapshot,
    Usage, UsageEntry,
};
use driver::{Outcome, Profile, Worker};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Barrier;
use std::time::{Duration, Instant};
use workload::{Rng, Size};

const PG_VAR: &str = "DELIMITER_TEST_POSTGRES_URL";
const MY_VAR: &str = "DELIMITER_TEST_MARIADB_URL";
/// A worker that meets this many refusals in a row, none at the root, stops:
/// what is left anywhere is smaller than the requests.
const MAX_REFUSALS_IN_A_ROW: u32 = 64;

/// The retry budget of the `-20` strategies.
const PATIENT_ATTEMPTS: u32 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    GenerationCas,
    ForUpdate,
    Serializable,
    /// The two retrying strategies again with a budget of
    /// [`PATIENT_ATTEMPTS`] attempts instead of the driver's default 5: under
    /// contention the default runs out, and a worker whose consume ran out
    /// retries at once with a fresh request, which feeds the contention.
    GenerationCasPatient,
    SerializablePatient,
    /// Not in the table: the same read-decide-write at READ COMMITTED with
    /// no lock and no compare-and-update, run only under
    /// DELIMITER_BENCH_UNGUARDED=1 to show that the audit catches an
    /// oversubscribing strategy.
    Unguarded,
}

impl Strategy {
    const ALL: [Strategy; 5] = [
        Strategy::GenerationCas,
        Strategy::ForUpdate,
        Strategy::Serializable,
        Strategy::GenerationCasPatient,
        Strategy::SerializablePatient,
    ];

    /// The worker that runs this strategy (the patient ones are the same
    /// workers with a larger retry budget).
    pub fn kind(self) -> Strategy {
        match self {
            Strategy::GenerationCasPatient => Strategy::GenerationCas,
            Strategy::SerializablePatient => Strategy::Serializable,
            other => other,
        }
    }

    fn max_attempts(self, default: u32) -> u32 {
        match self {
            Strategy::GenerationCasPatient | Strategy::SerializablePatient => PATIENT_ATTEMPTS,
            _ => default,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Strategy::GenerationCas => "generation-cas",
            Strategy::ForUpdate => "for-update",
            Strategy::Serializable => "serializable",
            Strategy::Unguarded => "unguarded",
            Strategy::GenerationCasPatient => "generation-cas-20",
            Strategy::SerializablePatient => "serializable-20",
        }
    }
}

enum Db {
    Postgres(pg::Pg),
    Mariadb(my::My),
}

impl Db {
    fn name(&self) -> &'static str {
        match self {
            Db::Postgres(_) => "postgres",
            Db::Mariadb(_) => "mariadb",
        }
    }
    fn server(&self) -> Result<(String, i64), String> {
        match self {
            Db::Postgres(d) => d.server(),
            Db::Mariadb(d) => d.server(),
        }
    }
    fn reset(&self, size: &Size) -> Result<(), String> {
        match self {
            Db::Postgres(d) => d.reset(size),
            Db::Mariadb(d) => d.reset(size),
        }
    }
    fn usage_rows(&self) -> Result<Vec<(String, String, i64)>, String> {
        match self {
            Db::Postgres(d) => d.usage_rows(),
            Db::Mariadb(d) => d.usage_rows(),
        }
    }
    fn drop_all(&self) -> Result<(), String> {
        match self {
            Db::Postgres(d) => d.drop_all(),
            Db::Mariadb(d) => d.drop_all(),
        }
    }
    fn worker(&self, strategy: Strategy, policy: RetryPolicy) -> Result<Box<dyn Worker>, String> {
        match self {
            Db::Postgres(d) => d.worker(strategy, policy),
            Db::Mariadb(d) => d.worker(strategy, policy),
        }
    }
}

/// What one worker thread did.
#[derive(Default)]
struct Tally {
    admitted: u64,
    refused: u64,
    exhausted: u64,
    conflicts: u64,
    /// Every consume call, admitted, refused or exhausted, in ns.
    latencies: Vec<u64>,
    /// What this worker saw admitted, per (project, resource).
    admitted_sums: BTreeMap<(String, String), i64>,
    profile: Profile,
    hit_deadline: bool,
    finished: Option<Instant>,
}

/// One cell's result.
struct Cell {
    db: &'static str,
    strategy: Strategy,
    workers: usize,
    seconds: f64,
    admitted: u64,
    refused: u64,
    exhausted: u64,
    conflicts: u64,
    p50_ms: f64,
    p99_ms: f64,
    oversubscribed: usize,
    lost_updates: usize,
    hit_deadline: bool,
    profile: Profile,
    calls: u64,
}

impl Cell {
    fn consumes_per_s(&self) -> f64 {
        if self.seconds > 0.0 {
            self.admitted as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// Mean milliseconds per consume call spent in each phase.
    fn profile_text(&self) -> String {
        let per = |d: Duration| d.as_secs_f64() * 1e3 / self.calls.max(1) as f64;
        let p = &self.profile;
        format!(
            "per call: read {:.3} ms, evaluate {:.3} ms, commit {:.3} ms, backoff {:.3} ms",
            per(p.read),
            per(p.evaluate),
            per(p.commit),
            per(p.backoff)
        )
    }
}

/// A trivial decision, to instantiate a worker's component before the clock
/// starts (the process-wide compile happens once, in `main`).
fn warm(enforcer: &mut Enforcer) -> Result<(), String> {
    let snapshot = Snapshot {
        projects: vec![Project::root("warm")],
        limits: Limits {
            registered: vec![RegisteredLimit::new("r", 1)],
            project: vec![],
        },
        usage: Usage::Local(vec![UsageEntry::new("warm", "r", 0)]),
        generations: vec![],
    };
    let request = Request::new("warm", vec![Delta::new("r", 0)]);
    match enforcer.evaluate(&driver::config(), &snapshot, &request) {
        Ok(Decision::Admitted { .. }) => Ok(()),
        other => Err(format!("warm-up decision: {other:?}")),
    }
}

fn percentile_ms(sorted_ns: &[u64], q: f64) -> f64 {
    if sorted_ns.is_empty() {
        return 0.0;
    }
    // Nearest rank: the smallest value with at least q of the calls at or
    // below it.
    let rank = ((q * sorted_ns.len() as f64).ceil() as usize).clamp(1, sorted_ns.len());
    sorted_ns[rank - 1] as f64 / 1e6
}

/// One worker thread: connects, waits for the others, then consumes until
/// the root refuses, until nothing fits, or until the deadline.
fn run_worker(
    db: &Db,
    strategy: Strategy,
    index: usize,
    size: &Size,
    barrier: &Barrier,
    deadline: Duration,
) -> Result<Tally, String> {
    let policy = RetryPolicy {
        // Distinct seeds, so that workers' backoffs do not move in lockstep.
        seed: index as u64 + 1,
        max_attempts: strategy.max_attempts(base_policy().max_attempts),
        ..base_policy()
    };
    let setup = db.worker(strategy.kind(), policy).and_then(|mut w| {
        w.warm()?;
        Ok(w)
    });
    // Everybody waits at the barrier, even after a failed setup, so that
    // nobody waits forever.
    barrier.wait();
    let mut worker = setup?;
    let start = Instant::now();
    let teams = size.teams();
    let mut rng = Rng::new(index as u64);
    let mut tally = Tally::default();
    let mut refusals_in_a_row = 0;
    loop {
        if start.elapsed() >= deadline {
            tally.hit_deadline = true;
            break;
        }
        let request = workload::next_request(&mut rng, &teams);
        let t = Instant::now();
        let outcome = worker.consume(&request)?;
        tally.latencies.push(t.elapsed().as_nanos() as u64);
        match outcome {
            Outcome::Admitted => {
                tally.admitted += 1;
                refusals_in_a_row = 0;
                for d in &request.deltas {
                    *tally
                        .admitted_sums
                        .entry((request.project.clone(), d.resource.clone()))
                        .or_default() += d.delta;
                }
            }
            Outcome::Refused { at_root } => {
                tally.refused += 1;
                refusals_in_a_row += 1;
                if at_root || refusals_in_a_row >= MAX_REFUSALS_IN_A_ROW {
                    break;
                }
            }
            Outcome::Exhausted => tally.exhausted += 1,
        }
    }
    tally.finished = Some(Instant::now());
    tally.conflicts = worker.conflicts();
    tally.profile = worker.profile();
    Ok(tally)
}

fn run_cell(
    db: &Db,
    strategy: Strategy,
    workers: usize,
    size: &Size,
    deadline: Duration,
) -> Result<Cell, String> {
    db.reset(size)?;
    let barrier = Barrier::new(workers + 1);
    let (start, results) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|i| {
                let barrier = &barrier;
                s.spawn(move || run_worker(db, strategy, i, size, barrier, deadline))
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let results: Vec<Result<Tally, String>> = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a worker panicked".into())))
            .collect();
        (start, results)
    });
    let tallies = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    let end = tallies
        .iter()
        .filter_map(|t| t.finished)
        .max()
        .unwrap_or(start);
    let mut cell = Cell {
        db: db.name(),
        strategy,
        workers,
        seconds: end.saturating_duration_since(start).as_secs_f64(),
        admitted: 0,
        refused: 0,
        exhausted: 0,
        conflicts: 0,
        p50_ms: 0.0,
        p99_ms: 0.0,
        oversubscribed: 0,
        lost_updates: 0,
        hit_deadline: false,
        profile: Profile::default(),
        calls: 0,
    };
    let mut latencies = Vec::new();
    let mut admitted_sums: BTreeMap<(String, String), i64> = BTreeMap::new();
    for t in tallies {
        cell.admitted += t.admitted;
        cell.refused += t.refused;
        cell.exhausted += t.exhausted;
        cell.conflicts += t.conflicts;
        cell.hit_deadline |= t.hit_deadline;
        cell.profile.add(&t.profile);
        latencies.extend(t.latencies);
        for (k, v) in t.admitted_sums {
            *admitted_sums.entry(k).or_default() += v;
        }
    }
    latencies.sort_unstable();
    cell.calls = latencies.len() as u64;
    cell.p50_ms = percentile_ms(&latencies, 0.50);
    cell.p99_ms = percentile_ms(&latencies, 0.99);
    let usage = db.usage_rows()?;
    cell.oversubscribed = size.oversubscribed(&usage);
    cell.lost_updates = workload::lost_updates(&admitted_sums, &usage);
    Ok(cell)
}

/// Where results go: `$DELIMITER_BENCH_DIR` like every runner (the tiny
/// run in `just test` sets it, so it never overwrites real results), else
/// `target/bench`.
fn out_dir() -> std::path::PathBuf {
    delimiter_benches::bench_dir()
}

/// The driver's default retry policy, or with `DELIMITER_BENCH_ATTEMPTS`
/// attempts (an experiment: how far a larger budget helps under
/// contention). Recorded in the results' meta.
fn base_policy() -> RetryPolicy {
    let mut policy = RetryPolicy::default();
    if let Some(n) = std::env::var("DELIMITER_BENCH_ATTEMPTS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        policy.max_attempts = n;
    }
    policy
}

fn main() {
    let tiny = std::env::var("DELIMITER_BENCH_TINY").is_ok_and(|v| v == "1");
    let (size, worker_counts, deadline): (Size, &[usize], Duration) = if tiny {
        (Size::TINY, &[1, 4], Duration::from_secs(10))
    } else {
        (Size::FULL, &[1, 4, 16, 64], Duration::from_secs(8))
    };

    let mut strategies = Strategy::ALL.to_vec();
    // DELIMITER_BENCH_STRATEGIES=generation-cas,...: a subset, for experiments.
    if let Ok(only) = std::env::var("DELIMITER_BENCH_STRATEGIES") {
        strategies.retain(|s| only.split(',').any(|name| name.trim() == s.name()));
    }
    if std::env::var("DELIMITER_BENCH_UNGUARDED").is_ok_and(|v| v == "1") {
        strategies.push(Strategy::Unguarded);
    }

    let mut dbs = Vec::new();
    for (var, make) in [
        (
            PG_VAR,
            (|u| Db::Postgres(pg::Pg::new(u))) as fn(String) -> Db,
        ),
        (MY_VAR, |u| Db::Mariadb(my::My::new(u))),
    ] {
        match std::env::var(var) {
            Ok(url) => dbs.push(make(url)),
            Err(_) => {
                let name = if var == PG_VAR { "postgres" } else { "mariadb" };
                println!("contention: {name} skipped ({var} not set)");
            }
        }
    }

    // The process-wide compile of the component, before any clock runs.
    if let Err(e) = warm(&mut Enforcer::new()) {
        eprintln!("contention: {e}");
        std::process::exit(1);
    }

    let mut failed = false;
    let mut cells = Vec::new();
    let mut meta = serde_json::Map::new();
    let mut profiles = serde_json::Map::new();
    let mut skipped = Vec::new();
    for db in &dbs {
        let (version, free) = match db.server() {
            Ok(v) => v,
            Err(e) => {
                eprintln!("contention: {e}");
                failed = true;
                continue;
            }
        };
        println!("contention: {}: {version}", db.name());
        meta.insert(format!("{}_version", db.name()), json!(version));
        for &strategy in &strategies {
            for &workers in worker_counts {
                // One connection per worker, plus the reset's and the audit's.
                if workers as i64 + 2 > free {
                    let note = format!(
                        "{} {} {workers}: skipped, {} connections needed, {free} free",
                        db.name(),
                        strategy.name(),
                        workers + 2
                    );
                    println!("contention: {note}");
                    skipped.push(note);
                    continue;
                }
                match run_cell(db, strategy, workers, &size, deadline) {
                    Ok(cell) => {
                        let bad = cell.oversubscribed > 0 || cell.lost_updates > 0;
                        if bad && strategy.kind() == Strategy::GenerationCas {
                            failed = true;
                        }
                        println!(
                            "contention: {} {} {}: {:.0}/s p99 {:.2} ms, {} admitted, {} refused, \
                             {} conflicts, {} exhausted, oversubscribed={} lost_updates={}{}; {}",
                            cell.db,
                            strategy.name(),
                            workers,
                            cell.consumes_per_s(),
                            cell.p99_ms,
                            cell.admitted,
                            cell.refused,
                            cell.conflicts,
                            cell.exhausted,
                            cell.oversubscribed,
                            cell.lost_updates,
                            if cell.hit_deadline {
                                " (stopped by the time cap)"
                            } else {
                                ""
                            },
                            cell.profile_text()
                        );
                        if bad {
                            println!(
                                "contention: WARNING: {} {} {workers} is not exact",
                                cell.db,
                                strategy.name()
                            );
                        }
                        profiles.insert(
                            format!("{} {} {workers}", cell.db, strategy.name()),
                            json!(cell.profile_text()),
                        );
                        cells.push(cell);
                    }
                    Err(e) => {
                        eprintln!(
                            "contention: {} {} {workers}: {e}",
                            db.name(),
                            strategy.name()
                        );
                        failed = true;
                    }
                }
            }
        }
        if let Err(e) = db.drop_all() {
            eprintln!("contention: {e}");
        }
    }

    print_table(&cells);
    meta.insert("method".into(), json!(METHOD));
    meta.insert(
        "workload".into(),
        json!(workload_text(&size, worker_counts, deadline)),
    );
    meta.insert("isolation".into(), json!(ISOLATION));
    meta.insert("oversubscribed".into(), json!(AUDIT));
    meta.insert(
        "retry_policy".into(),
        json!(format!("{:?} (seed = worker index + 1)", base_policy())),
    );
    meta.insert(
        "machine".into(),
        json!(format!(
            "{} CPUs (std::thread::available_parallelism), shared with the databases: \
             16 and 64 workers measure contention, not parallelism",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        )),
    );
    meta.insert("tiny".into(), json!(tiny));
    meta.insert("profile".into(), Value::Object(profiles));
    if !skipped.is_empty() {
        meta.insert("skipped".into(), json!(skipped.join("; ")));
    }
    let rows: Vec<Value> = cells
        .iter()
        .map(|c| {
            json!({
                "db": c.db,
                "strategy": c.strategy.name(),
                "workers": c.workers,
                "consumes_per_s": (c.consumes_per_s() * 10.0).round() / 10.0,
                "p99_ms": (c.p99_ms * 1000.0).round() / 1000.0,
                "oversubscribed": c.oversubscribed,
                "admitted": c.admitted,
                "refused": c.refused,
                "conflicts": c.conflicts,
                "retries_exhausted": c.exhausted,
                "lost_updates": c.lost_updates,
                "p50_ms": (c.p50_ms * 1000.0).round() / 1000.0,
                "seconds": (c.seconds * 1000.0).round() / 1000.0,
                "time_capped": c.hit_deadline,
            })
        })
        .collect();
    let doc = json!({"table": "contention", "runner": "rust", "meta": meta, "rows": rows});
    let dir = out_dir();
    let path = dir.join("contention.json");
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n",
        )
    });
    match written {
        Ok(()) => println!("contention: wrote {}", path.display()),
        Err(e) => {
            eprintln!("contention: cannot write {}: {e}", path.display());
            failed = true;
        }
    }
    if failed {
        std::process::exit(1);
    }
}

const METHOD: &str = "Each cell: fresh tables, then N threads, each with its own connection \
and its own component instance (Enforcer), start together and consume until the tree is full \
(a refusal at the root), until 64 refusals in a row, or until the time cap. consumes_per_s = \
admitted consumes / wall time of the cell; p99_ms (and p50_ms) over every consume call, admitted, \
refused or exhausted, retries and backoff included; conflicts = attempts that lost a race and \
were retried (generation-cas: a claimed generation had moved; for-update and serializable: a \
deadlock, lock wait timeout or serialization failure). generation-cas is the shipped store with \
Enforcer::consume; for-update and serializable read the same snapshot with the same SQL, decide \
with the same component (Enforcer::evaluate) and write the same usage rows, in one transaction, \
with the same attempts and backoff schedule as the consume driver. They do not bump \
generations, which neither needs.";

const ISOLATION: &str = "generation-cas (the shipped stores): the read is one statement \
(one snapshot) at the server's default level (PostgreSQL READ COMMITTED, MariaDB REPEATABLE \
READ), the commit one transaction at READ COMMITTED that compare-and-updates the claimed \
generations root first, then the usage rows. for-update: READ COMMITTED; the path's generation \
rows are locked with SELECT ... FOR UPDATE (PostgreSQL: in project id order; MariaDB: in the \
join's order, the same for every transaction) before the same one-statement read. \
serializable: SERIALIZABLE (PostgreSQL: SSI; MariaDB: InnoDB turns the read into a shared-lock \
read). Lost races (deadlock, lock wait timeout, serialization failure) are retried.";

const AUDIT: &str = "Counted, never assumed, the same way for every strategy: the workload only \
consumes, so usage only grows and a node's final subtree usage bounds every value it had; after \
each cell every (node, resource) whose final subtree usage exceeds its limit counts one. The \
stored usage is also checked against the sum of what the workers saw admitted (lost_updates), \
since a lost update would hide an overrun. No trigger runs inside the measured transactions.";

fn workload_text(size: &Size, workers: &[usize], deadline: Duration) -> String {
    let fmt = |l: &[i64; 3]| format!("servers {}, cores {}, ram_gb {}", l[0], l[1], l[2]);
    format!(
        "A nested tree: org > {d} departments > {t} teams each ({n} projects). Limits: org {}; \
         each department {} (the departments over-commit org); each team {} (registered limits; \
         the teams over-commit their department). Every request is on a random team: servers 1, \
         cores 1-4, ram_gb 2-8, so each claims team, department and org: every consume contends \
         on org. Workers: {workers:?}; time cap per cell {}s.",
        fmt(&size.root),
        fmt(&size.department),
        fmt(&size.team),
        deadline.as_secs(),
        d = size.departments,
        t = size.teams,
        n = 1 + size.departments * (1 + size.teams),
    )
}

fn print_table(cells: &[Cell]) {
    if cells.is_empty() {
        return;
    }
    println!();
    println!(
        "{:<9} {:<15} {:>7} {:>12} {:>9} {:>9} {:>8} {:>8} {:>9} {:>9} {:>14}",
        "db",
        "strategy",
        "workers",
        "consumes/s",
        "p99 ms",
        "admitted",
        "refused",
        "exhaust",
        "conflicts",
        "oversub",
        "lost_updates"
    );
    for c in cells {
        println!(
            "{:<9} {:<15} {:>7} {:>12.0} {:>9.2} {:>9} {:>8} {:>8} {:>9} {:>9} {:>14}{}",
            c.db,
            c.strategy.name(),
            c.workers,
            c.consumes_per_s(),
            c.p99_ms,
            c.admitted,
            c.refused,
            c.exhausted,
            c.conflicts,
            c.oversubscribed,
            c.lost_updates,
            if c.hit_deadline { "  (time cap)" } else { "" }
        );
    }
    println!();
}
