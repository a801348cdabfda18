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
    Combiner, CombinerStats, Decision, Delta, Enforcer, Limits, Project, RegisteredLimit, Request,
    RetryPolicy, Snapshot, Usage, UsageEntry,
};
use driver::{Outcome, Profile, Worker};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, Write as _};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use workload::{Rng, Size};

const PG_VAR: &str = "DELIMITER_TEST_POSTGRES_URL";
/// Set in a child process of a `generation-cas-4p` cell: the parent's pid.
const CHILD_PARENT: &str = "DELIMITER_BENCH_CHILD_OF";
const MY_VAR: &str = "DELIMITER_TEST_MARIADB_URL";
/// A worker that meets this many refusals in a row, none at the root, stops:
/// what is left anywhere is smaller than the requests.
const MAX_REFUSALS_IN_A_ROW: u32 = 64;

/// The retry budget of the `-20` strategy.
const PATIENT_ATTEMPTS: u32 = 20;

/// The processes of the `generation-cas-4p` cells.
const PROCESSES: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Delimiter as a service runs it: every worker thread of the cell
    /// consumes through one shared `Combiner`, on the default policy
    /// (a 2 s deadline, jitter drawn per call).
    GenerationCas,
    /// The same workers each consuming alone (`Enforcer::consume`), on the
    /// default policy: what combining adds.
    GenerationCasLone,
    /// [`PROCESSES`] processes of N / 4 threads, one combiner each: the
    /// processes' batches contend with each other.
    GenerationCasProcesses,
    ForUpdate,
    Serializable,
    /// Serializable again with a budget of [`PATIENT_ATTEMPTS`] attempts.
    SerializablePatient,
    /// Not in the table: the same read-decide-write at READ COMMITTED with
    /// no lock and no compare-and-update, run only under
    /// DELIMITER_BENCH_UNGUARDED=1 to show that the audit catches an
    /// oversubscribing strategy.
    Unguarded,
}

impl Strategy {
    /// The table's strategies; `generation-cas-lone` and `unguarded` run
    /// only when named (DELIMITER_BENCH_STRATEGIES, DELIMITER_BENCH_UNGUARDED).
    const ALL: [Strategy; 5] = [
        Strategy::GenerationCas,
        Strategy::GenerationCasProcesses,
        Strategy::ForUpdate,
        Strategy::Serializable,
        Strategy::SerializablePatient,
    ];

    /// The worker that runs this strategy.
    pub fn kind(self) -> Strategy {
        match self {
            Strategy::GenerationCasLone | Strategy::GenerationCasProcesses => {
                Strategy::GenerationCas
            }
            Strategy::SerializablePatient => Strategy::Serializable,
            other => other,
        }
    }

    fn max_attempts(self, default: u32) -> u32 {
        match self {
            Strategy::SerializablePatient => PATIENT_ATTEMPTS,
            _ => default,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Strategy::GenerationCas => "generation-cas",
            Strategy::GenerationCasLone => "generation-cas-lone",
            Strategy::GenerationCasProcesses => "generation-cas-4p",
            Strategy::ForUpdate => "for-update",
            Strategy::Serializable => "serializable",
            Strategy::Unguarded => "unguarded",
            Strategy::SerializablePatient => "serializable-20",
        }
    }

    fn by_name(name: &str) -> Option<Strategy> {
        Strategy::ALL
            .into_iter()
            .chain([Strategy::GenerationCasLone, Strategy::Unguarded])
            .find(|s| s.name() == name)
    }
}

/// Names the run's tables: this process's id, or the parent's in a child
/// of a `generation-cas-4p` cell.
pub fn run_id() -> String {
    std::env::var(CHILD_PARENT).unwrap_or_else(|_| std::process::id().to_string())
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
    fn worker(
        &self,
        strategy: Strategy,
        policy: RetryPolicy,
        combiner: Option<Arc<Combiner>>,
    ) -> Result<Box<dyn Worker>, String> {
        match self {
            Db::Postgres(d) => d.worker(strategy, policy, combiner),
            Db::Mariadb(d) => d.worker(strategy, policy, combiner),
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

impl Tally {
    /// One line of JSON, for a child process to hand its tallies to the
    /// parent (`finished` as nanoseconds after `go`).
    fn to_json(&self, go: Instant) -> Value {
        let sums: Vec<Value> = self
            .admitted_sums
            .iter()
            .map(|((p, r), v)| json!([p, r, v]))
            .collect();
        let p = &self.profile;
        json!({
            "admitted": self.admitted, "refused": self.refused, "exhausted": self.exhausted,
            "conflicts": self.conflicts, "latencies": self.latencies, "sums": sums,
            "profile": [p.read.as_nanos() as u64, p.evaluate.as_nanos() as u64,
                        p.commit.as_nanos() as u64, p.backoff.as_nanos() as u64],
            "hit_deadline": self.hit_deadline,
            "finished_ns": self.finished.map(|f| f.saturating_duration_since(go).as_nanos() as u64),
        })
    }

    fn from_json(v: &Value, go: Instant) -> Option<Tally> {
        let n = |k: &str| v[k].as_u64();
        let ns = |i: usize| Duration::from_nanos(v["profile"][i].as_u64().unwrap_or(0));
        Some(Tally {
            admitted: n("admitted")?,
            refused: n("refused")?,
            exhausted: n("exhausted")?,
            conflicts: n("conflicts")?,
            latencies: v["latencies"]
                .as_array()?
                .iter()
                .filter_map(Value::as_u64)
                .collect(),
            admitted_sums: v["sums"]
                .as_array()?
                .iter()
                .filter_map(|t| {
                    Some((
                        (t[0].as_str()?.to_string(), t[1].as_str()?.to_string()),
                        t[2].as_i64()?,
                    ))
                })
                .collect(),
            profile: Profile {
                read: ns(0),
                evaluate: ns(1),
                commit: ns(2),
                backoff: ns(3),
            },
            hit_deadline: v["hit_deadline"].as_bool()?,
            finished: n("finished_ns").map(|f| go + Duration::from_nanos(f)),
        })
    }
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
    /// The combiners' batches and the consumes they carried.
    combined: CombinerStats,
}

impl Cell {
    /// Consumes per batch, when the cell combined.
    fn mean_batch(&self) -> Option<f64> {
        (self.combined.batches > 0)
            .then(|| self.combined.members as f64 / self.combined.batches as f64)
    }

    /// Lost races per admitted consume.
    fn conflicts_per_admission(&self) -> f64 {
        self.conflicts as f64 / self.admitted.max(1) as f64
    }

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
    combiner: Option<Arc<Combiner>>,
) -> Result<Tally, String> {
    let policy = if strategy.kind() == Strategy::GenerationCas {
        // What a service gets: the default policy, jitter drawn per call.
        base_policy()
    } else {
        RetryPolicy {
            // Distinct seeds, so that workers' backoffs do not move in lockstep.
            seed: Some(index as u64 + 1),
            max_attempts: strategy.max_attempts(base_policy().max_attempts),
            ..base_policy()
        }
    };
    let setup = db
        .worker(strategy.kind(), policy, combiner)
        .and_then(|mut w| {
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
    let combiner = (strategy == Strategy::GenerationCas)
        .then(|| Arc::new(Combiner::new(driver::config(), base_policy())));
    let (start, results, mut combined) = if strategy == Strategy::GenerationCasProcesses {
        run_children(db, workers, size)?
    } else {
        let (start, results) = run_threads(db, strategy, 0, workers, size, deadline, &combiner);
        let stats = combiner.map(|c| c.stats()).unwrap_or_default();
        (start, results, stats)
    };
    combined.lone = 0;
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
        combined,
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

/// What each worker of a cell did (or why it failed).
type Ran = Vec<Result<Tally, String>>;

/// `workers` threads (indexes from `first`) that start together; the
/// instant they started and each one's tally.
fn run_threads(
    db: &Db,
    strategy: Strategy,
    first: usize,
    workers: usize,
    size: &Size,
    deadline: Duration,
    combiner: &Option<Arc<Combiner>>,
) -> (Instant, Ran) {
    let barrier = Barrier::new(workers + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (first..first + workers)
            .map(|i| {
                let barrier = &barrier;
                let combiner = combiner.clone();
                s.spawn(move || run_worker(db, strategy, i, size, barrier, deadline, combiner))
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let results: Vec<Result<Tally, String>> = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a worker panicked".into())))
            .collect();
        (start, results)
    })
}

/// A `generation-cas-4p` cell: [`PROCESSES`] child processes of this
/// binary, `workers / PROCESSES` threads each with one combiner per
/// process. Each child connects and warms up, says `ready`, waits for
/// `go` on its stdin, runs, and prints its threads' tallies and its
/// combiner's stats as JSON lines.
fn run_children(
    db: &Db,
    workers: usize,
    size: &Size,
) -> Result<(Instant, Ran, CombinerStats), String> {
    let per = workers / PROCESSES;
    if per == 0 {
        return Err(format!(
            "{workers} workers cannot make {PROCESSES} processes"
        ));
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut children = Vec::new();
    for p in 0..PROCESSES {
        let child = Command::new(&exe)
            .env(CHILD_PARENT, run_id())
            .env("DELIMITER_BENCH_CHILD_DB", db.name())
            .env("DELIMITER_BENCH_CHILD_THREADS", per.to_string())
            .env("DELIMITER_BENCH_CHILD_FIRST", (p * per).to_string())
            .env(
                "DELIMITER_BENCH_TINY",
                if size.is_tiny() { "1" } else { "0" },
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("child process: {e}"))?;
        children.push(child);
    }
    let mut readers = Vec::new();
    for child in &mut children {
        let mut out = std::io::BufReader::new(child.stdout.take().ok_or("no child stdout")?);
        let mut line = String::new();
        out.read_line(&mut line).map_err(|e| e.to_string())?;
        if line.trim() != "ready" {
            return Err(format!("child process did not start: {line:?}"));
        }
        readers.push(out);
    }
    let start = Instant::now();
    for child in &mut children {
        let stdin = child.stdin.as_mut().ok_or("no child stdin")?;
        stdin.write_all(b"go\n").map_err(|e| e.to_string())?;
        stdin.flush().map_err(|e| e.to_string())?;
    }
    let mut results = Vec::new();
    let mut stats = CombinerStats::default();
    for (child, out) in children.iter_mut().zip(readers) {
        for line in out.lines() {
            let line = line.map_err(|e| e.to_string())?;
            let v: Value =
                serde_json::from_str(&line).map_err(|e| format!("child said {line:?}: {e}"))?;
            if let Some(e) = v["error"].as_str() {
                results.push(Err(e.to_string()));
            } else if v.get("batches").is_some() {
                stats.batches += v["batches"].as_u64().unwrap_or(0);
                stats.members += v["members"].as_u64().unwrap_or(0);
            } else {
                results.push(Tally::from_json(&v, start).ok_or(format!("bad tally {line}")));
            }
        }
        let status = child.wait().map_err(|e| e.to_string())?;
        if !status.success() {
            results.push(Err(format!("a child process failed: {status}")));
        }
    }
    Ok((start, results, stats))
}

/// The child side of [`run_children`].
fn child_main(parent: &str) {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let tiny = var("DELIMITER_BENCH_TINY") == "1";
    let (size, deadline) = sizes(tiny);
    let db = match var("DELIMITER_BENCH_CHILD_DB").as_str() {
        "postgres" => Db::Postgres(pg::Pg::new(var(PG_VAR))),
        _ => Db::Mariadb(my::My::new(var(MY_VAR))),
    };
    let threads: usize = var("DELIMITER_BENCH_CHILD_THREADS").parse().unwrap_or(1);
    let first: usize = var("DELIMITER_BENCH_CHILD_FIRST").parse().unwrap_or(0);
    let _ = warm(&mut Enforcer::new());
    let combiner = Some(Arc::new(Combiner::new(driver::config(), base_policy())));
    let barrier = Barrier::new(threads + 1);
    let mut stdout = std::io::stdout();
    let (go, results) = std::thread::scope(|s| {
        let handles: Vec<_> = (first..first + threads)
            .map(|i| {
                let (barrier, db, size, combiner) = (&barrier, &db, &size, combiner.clone());
                s.spawn(move || {
                    run_worker(
                        db,
                        Strategy::GenerationCas,
                        i,
                        size,
                        barrier,
                        deadline,
                        combiner,
                    )
                })
            })
            .collect();
        // Every thread has connected and warmed up once the barrier opens
        // for it; the parent starts all processes together.
        let _ = writeln!(stdout, "ready");
        let _ = stdout.flush();
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        barrier.wait();
        let go = Instant::now();
        let results: Vec<Result<Tally, String>> = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a worker panicked".into())))
            .collect();
        (go, results)
    });
    for r in results {
        let v = match r {
            Ok(t) => t.to_json(go),
            Err(e) => json!({"error": e}),
        };
        let _ = writeln!(stdout, "{v}");
    }
    let stats = combiner.map(|c| c.stats()).unwrap_or_default();
    let _ = writeln!(
        stdout,
        "{}",
        json!({"batches": stats.batches, "members": stats.members})
    );
    let _ = parent;
}

/// The tree and the time cap: full, or tiny (DELIMITER_BENCH_TINY=1).
fn sizes(tiny: bool) -> (Size, Duration) {
    if tiny {
        (Size::TINY, Duration::from_secs(10))
    } else {
        (Size::FULL, Duration::from_secs(8))
    }
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
    if let Ok(parent) = std::env::var(CHILD_PARENT) {
        return child_main(&parent);
    }
    let tiny = std::env::var("DELIMITER_BENCH_TINY").is_ok_and(|v| v == "1");
    let (size, deadline) = sizes(tiny);
    let worker_counts: &[usize] = if tiny { &[1, 4] } else { &[1, 4, 16, 64] };

    let mut strategies = Strategy::ALL.to_vec();
    // DELIMITER_BENCH_STRATEGIES=generation-cas,...: the strategies named,
    // for experiments (generation-cas-lone among them).
    if let Ok(only) = std::env::var("DELIMITER_BENCH_STRATEGIES") {
        strategies = only
            .split(',')
            .filter_map(|name| Strategy::by_name(name.trim()))
            .collect();
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
        // Warm-up: one unrecorded one-worker cell of each strategy, so that
        // no measured cell is the first after the database's setup (the
        // server is still flushing and vacuuming then: a run's first cell
        // measured up to 40% slower than the same cell later in the run).
        for &strategy in &strategies {
            if strategy != Strategy::GenerationCasProcesses {
                let _ = run_cell(db, strategy, 1, &size, deadline);
            }
        }
        // Worker counts outermost: the cells a ratio compares (the same
        // workers, each strategy) run back to back, so that a drift of the
        // machine or the server over the run (a database still settling
        // after its setup, a neighbour's load) moves both alike.
        for &workers in worker_counts {
            for &strategy in &strategies {
                if strategy == Strategy::GenerationCasProcesses && workers < PROCESSES {
                    continue;
                }
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
                             {} conflicts ({:.2} per admission), {} exhausted{}, oversubscribed={} \
                             lost_updates={}{}; {}",
                            cell.db,
                            strategy.name(),
                            workers,
                            cell.consumes_per_s(),
                            cell.p99_ms,
                            cell.admitted,
                            cell.refused,
                            cell.conflicts,
                            cell.conflicts_per_admission(),
                            cell.exhausted,
                            cell.mean_batch()
                                .map_or(String::new(), |b| format!(", mean batch {b:.1}")),
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
        json!(format!(
            "{:?}: generation-cas cells as is (jitter drawn per call); for-update and \
             serializable with seed = worker index + 1",
            base_policy()
        )),
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
                "mean_batch": c.mean_batch().map(|b| (b * 10.0).round() / 10.0),
                "conflicts_per_admission": (c.conflicts_per_admission() * 100.0).round() / 100.0,
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
every worker thread of the cell consuming through one shared Combiner (batches of up to 32, one \
read and one commit per batch) on the default policy (2 s deadline, jitter drawn per call); \
generation-cas-4p the same in 4 processes of N/4 threads, a combiner each, started together; \
mean_batch = consumes per batch, conflicts_per_admission = lost races per admitted consume; \
for-update and serializable read the same snapshot with the same SQL, decide \
with the same component (Enforcer::evaluate) and write the same usage rows, in one transaction, \
with the same attempts and backoff schedule as the consume driver. They do not bump \
generations, which neither needs.";

const ISOLATION: &str = "generation-cas (the shipped stores): the read is one statement \
(one snapshot) at the session's level (PostgreSQL READ COMMITTED; the MariaDB store sets READ \
COMMITTED once per session), the commit one transaction at READ COMMITTED that \
compare-and-updates the claimed generations root first (one statement per row, sent together), \
then the usage rows, then COMMIT. for-update: READ COMMITTED; the path's generation \
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
