//! Table 1, decision cost: the same scenarios (`target/bench/scenarios.json`,
//! `decision`) decided by the native core and by the Rust host through the
//! WebAssembly component. Writes `target/bench/decision-native.json` and
//! `target/bench/decision-rust.json`.
//!
//! One decision here is one `evaluate(config, snapshot, request)` on inputs
//! already in the implementation's own types, as a Rust service has them
//! after its store's read: the native core's function, or one
//! `Enforcer::evaluate` on an Enforcer (and component instance) kept for the
//! whole run, as a service keeps one per thread. For the Rust host that
//! includes converting to the WIT types, copying into the guest, the guest's
//! work, and converting the answer back.
//!
//! `cargo bench -p delimiter-benches --bench decision` measures (criterion);
//! under `cargo test --benches` or `DELIMITER_BENCH_TINY=1` every case runs
//! once and its answer is checked.

use criterion::{BenchmarkId, Criterion};
use delimiter_benches::{self as b, RunMode};
use serde_json::json;
use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

const GROUP: &str = "decision";

struct Case {
    id: String,
    scenario: String,
    resources: u64,
    native: b::NativeInputs,
    host: b::HostInputs,
}

/// A case for `delimiter::Prepared`: the tree and limits prepared once, and
/// what a service's read of the path returns, in the shape `evaluate` takes
/// (as benches/decision.py's wheel-prepared: a store's path query yields the
/// rows in path order, so no `path()` per decision): its own usage per
/// resource, the subtree usage per path node and resource, and the path's
/// generations.
struct PreparedCase {
    prepared: delimiter::Prepared,
    local: Vec<i64>,
    subtree: Vec<i64>,
    generations: Vec<u64>,
}

impl PreparedCase {
    fn new(case: &Case) -> PreparedCase {
        let (config, snapshot, request) = &case.host;
        let mut prepared = delimiter::Prepared::new(config, &snapshot.projects, &snapshot.limits)
            .expect("prepare");
        let delimiter::Usage::Local(entries) = &snapshot.usage else {
            panic!("{}: decision scenarios give local usage", case.id)
        };
        let parent = |p: &str| {
            snapshot
                .projects
                .iter()
                .find(|x| x.id == p)
                .and_then(|x| x.parent.clone())
        };
        // Subtree sums: what the service's store keeps or its query adds up.
        let mut subtree = std::collections::HashMap::<(String, String), i64>::new();
        for e in entries {
            let mut at = Some(e.project.clone());
            while let Some(p) = at {
                *subtree.entry((p.clone(), e.resource.clone())).or_default() += e.usage;
                at = parent(&p);
            }
        }
        let own = |p: &str, r: &str| {
            entries
                .iter()
                .find(|e| e.project == p && e.resource == r)
                .map_or(0, |e| e.usage)
        };
        let generation = |p: &str| {
            snapshot
                .generations
                .iter()
                .find(|g| g.project == p)
                .map_or(0, |g| g.generation)
        };
        let path = prepared.path(&request.project).expect("path").to_vec();
        let local = request
            .deltas
            .iter()
            .map(|d| own(&request.project, &d.resource))
            .collect();
        let subtree = path
            .iter()
            .flat_map(|p| {
                request.deltas.iter().map(|d| {
                    subtree
                        .get(&(p.to_string(), d.resource.clone()))
                        .copied()
                        .unwrap_or(0)
                })
            })
            .collect();
        let generations = path.iter().map(|p| generation(p)).collect();
        PreparedCase {
            prepared,
            local,
            subtree,
            generations,
        }
    }

    /// One decision as a service makes it: the path's numbers read
    /// (ready-made: storage is not timed), one `evaluate`.
    fn decide(&mut self, request: &delimiter::Request) -> delimiter::Decision {
        self.prepared
            .evaluate(request, &self.local, &self.subtree, &self.generations)
            .expect("prepared decision")
    }
}

fn cases() -> Vec<Case> {
    let scenarios = b::load_scenarios();
    scenarios["decision"]
        .as_array()
        .expect("decision scenarios")
        .iter()
        .map(|s| {
            let scenario = s["scenario"].as_str().unwrap().to_string();
            let resources = s["resources"].as_u64().unwrap();
            Case {
                id: format!("{scenario}-{resources}"),
                scenario,
                resources,
                native: (
                    b::core::config(s),
                    b::core::snapshot(s),
                    b::core::request(s),
                ),
                host: (
                    b::host::config(s),
                    b::host::snapshot(s),
                    b::host::request(s),
                ),
            }
        })
        .collect()
}

/// Both implementations must give the scenario's intended answer (admitted)
/// and the same claim, or the timings compare different work.
fn check(case: &Case, enforcer: &mut delimiter::Enforcer) {
    let (c, s, r) = &case.native;
    let native = b::core::outcome(&delimiter_core::evaluate(c, s, r).expect("native decision"));
    let (c, s, r) = &case.host;
    let host = b::host::outcome(&enforcer.evaluate(c, s, r).expect("rust-host decision"));
    assert!(native.0, "{}: the scenario must be admitted", case.id);
    assert_eq!(native, host, "{}: native and rust-host disagree", case.id);
}

fn main() {
    let mode = b::run_mode();
    let cases = cases();
    let mut enforcer = delimiter::Enforcer::new();
    let mut prepared: Vec<PreparedCase> = cases.iter().map(PreparedCase::new).collect();
    for (case, p) in cases.iter().zip(&mut prepared) {
        check(case, &mut enforcer);
        let (c, s, r) = &case.host;
        let want = enforcer.evaluate(c, s, r).expect("rust-host decision");
        assert_eq!(
            p.decide(r),
            want,
            "{}: prepared and evaluate disagree",
            case.id
        );
    }

    let mut native = b::Results::new("decision", "native");
    let mut rust = b::Results::new("decision", "rust-host");
    let method_native = "one delimiter_core::evaluate(config, snapshot, request) on inputs already in \
         the core's types (as a Rust service holds them after its store's read); the snapshot is \
         the scenario's local usage, so the core builds the tree and sums subtrees on every call";
    let method_rust = "one delimiter::Enforcer::evaluate on one Enforcer kept for the whole run (one \
         component instance, as a service keeps one per thread); includes converting to WIT \
         values, copying them into the guest, the guest's decision, and the answer back";
    native.meta("method", method_native);
    rust.meta(
        "method",
        format!(
            "{method_rust}. rust-host-prepared: one delimiter::Prepared per case, prepared once \
             from the projects and limits (its own component instance); per decision the \
             path's numbers, ready-made in the shape evaluate takes (local, subtree and \
             generations in path order, as a store's path query yields them; no path() per \
             decision, as for wheel-prepared), one Prepared::evaluate"
        ),
    );

    match mode {
        RunMode::Once => {
            // One run each: proves the benchmark still works; not a measurement.
            for case in &cases {
                let (c, s, r) = &case.native;
                let t = Instant::now();
                black_box(delimiter_core::evaluate(c, s, r).unwrap());
                native
                    .rows
                    .push(row(case, "native", t.elapsed().as_nanos() as f64, 1));
                let (c, s, r) = &case.host;
                let t = Instant::now();
                black_box(enforcer.evaluate(c, s, r).unwrap());
                rust.rows
                    .push(row(case, "rust-host", t.elapsed().as_nanos() as f64, 1));
            }
            for (case, p) in cases.iter().zip(&mut prepared) {
                let t = Instant::now();
                black_box(p.decide(&case.host.2));
                rust.rows.push(row(
                    case,
                    "rust-host-prepared",
                    t.elapsed().as_nanos() as f64,
                    1,
                ));
            }
            let note = "one run per case (test mode or DELIMITER_BENCH_TINY): not a measurement";
            native.meta("timing", note);
            rust.meta("timing", note);
        }
        RunMode::Measure => {
            let started = SystemTime::now();
            let mut c = Criterion::default()
                .output_directory(&b::criterion_dir())
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(3))
                .sample_size(50)
                .configure_from_args();
            {
                let mut g = c.benchmark_group(GROUP);
                for (case, p) in cases.iter().zip(prepared.iter_mut()) {
                    g.bench_with_input(
                        BenchmarkId::new("rust-host-prepared", &case.id),
                        &case.host.2,
                        |bch, r| bch.iter(|| p.decide(black_box(r))),
                    );
                    b::bench_evaluate(&mut g, &case.id, &case.native, &case.host, &mut enforcer);
                }
                g.finish();
            }
            c.final_summary();
            let timing = "criterion: 1 s warm-up, 3 s measurement, 50 samples per case; median_ns is \
                 criterion's median of per-iteration time, samples its sample count";
            native.meta("timing", timing);
            rust.meta("timing", timing);
            rust.meta("rust_host_split", boundary_split(&cases, &mut enforcer));
            for case in &cases {
                for (function, to_native) in [
                    ("native", true),
                    ("rust-host", false),
                    ("rust-host-prepared", false),
                ] {
                    let results = if to_native { &mut native } else { &mut rust };
                    // A case filtered out on the command line has no fresh estimate.
                    if let Some((median, samples)) =
                        b::criterion_median(GROUP, function, &case.id, started)
                    {
                        results.rows.push(row(case, function, median, samples));
                    }
                }
            }
        }
    }
    native.write("decision-native");
    rust.write("decision-rust");
}

/// Where the Rust host's time goes, per case: the whole decision against
/// the same call made to fail on its first check (a max depth of 0, checked
/// before anything else), which still converts the snapshot, copies every
/// string into the guest and back out, and frees it all, but decides
/// nothing. Medians of 30 batches of 20 calls, interleaved.
fn boundary_split(cases: &[Case], enforcer: &mut delimiter::Enforcer) -> String {
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut parts = Vec::new();
    for case in cases {
        let (c, s, r) = &case.host;
        let copy_only = delimiter::Config { max_depth: 0, ..*c };
        let (mut full, mut copy) = (Vec::new(), Vec::new());
        for _ in 0..30 {
            let t = Instant::now();
            for _ in 0..20 {
                black_box(enforcer.evaluate(c, s, r).unwrap());
            }
            full.push(t.elapsed().as_nanos() as f64 / 20.0);
            let t = Instant::now();
            for _ in 0..20 {
                black_box(enforcer.evaluate(&copy_only, s, r).unwrap_err());
            }
            copy.push(t.elapsed().as_nanos() as f64 / 20.0);
        }
        let (full, copy) = (median(&mut full), median(&mut copy));
        parts.push(format!(
            "{}: {:.1} us of {:.1} us ({:.0}%) is conversion and copying across the boundary",
            case.id,
            copy / 1e3,
            full / 1e3,
            100.0 * copy / full
        ));
    }
    parts.join("; ")
}

fn row(case: &Case, implementation: &str, median_ns: f64, samples: usize) -> serde_json::Value {
    json!({
        "scenario": case.scenario,
        "resources": case.resources,
        "impl": implementation,
        "median_ns": median_ns.round() as u64,
        "samples": samples,
    })
}
