//! Table 3, scale: one decision as the project tree grows to 100,000
//! projects (`target/bench/scenarios.json`, `scale`), with local usage (the
//! core builds the whole tree and sums subtrees) and with pre-summed path
//! usage (the path only, as the Rust host's SQL stores read it). Native core
//! and Rust host through the component. Writes `target/bench/scale-rust.json`.
//!
//! One decision is one `evaluate` on inputs already in the implementation's
//! types; the Rust host reuses one Enforcer, with fuel raised so that the
//! largest local-usage tree fits (the default budget is sized for trees of
//! about 10,000 projects; see host-rust/src/runtime.rs).
//!
//! `cargo bench -p delimiter-benches --bench scale` measures (criterion);
//! under `cargo test --benches` or `DELIMITER_BENCH_TINY=1` every case runs
//! once and its answer is checked.

use criterion::{Criterion, SamplingMode};
use delimiter_benches::{self as b, RunMode};
use serde_json::json;
use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

const GROUP: &str = "scale";

struct Case {
    id: String,
    /// `bushy` (the table) or `chain` (the deep-chain usage sum).
    shape: String,
    projects: u64,
    usage_form: String,
    native: b::NativeInputs,
    host: b::HostInputs,
}

fn cases() -> Vec<Case> {
    let scenarios = b::load_scenarios();
    scenarios["scale"]
        .as_array()
        .expect("scale scenarios")
        .iter()
        .map(|s| {
            let projects = s["projects"].as_u64().unwrap();
            let usage_form = s["usage_form"].as_str().unwrap().to_string();
            let shape = s["shape"].as_str().unwrap().to_string();
            Case {
                id: match shape.as_str() {
                    "bushy" => format!("{usage_form}-{projects}"),
                    _ => format!("{shape}-{usage_form}-{projects}"),
                },
                shape,
                projects,
                usage_form,
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

fn main() {
    let mode = b::run_mode();
    let cases = cases();
    // Fuel is a bound against runaway guests, not part of the cost being
    // measured; memory likewise (both stay on, just out of the way).
    let mut enforcer = delimiter::Enforcer::new().with_fuel(u64::MAX / 2);
    for case in &cases {
        let (c, s, r) = &case.native;
        let native = b::core::outcome(&delimiter_core::evaluate(c, s, r).expect("native decision"));
        let (c, s, r) = &case.host;
        let host = b::host::outcome(&enforcer.evaluate(c, s, r).expect("rust-host decision"));
        assert!(native.0, "{}: the scenario must be admitted", case.id);
        assert_eq!(native, host, "{}: native and rust-host disagree", case.id);
    }

    let mut results = b::Results::new("scale", "rust");
    results.meta(
        "method",
        "one evaluate per decision on inputs already in the implementation's types: \
         delimiter_core::evaluate (native) or Enforcer::evaluate on one reused Enforcer \
         (rust-host, fuel raised out of the way). local: the whole tree's usage, summed by the \
         core on every call; path: the path's projects, limits, pre-summed subtree usage and \
         generations, as the SQL stores read them",
    );
    match mode {
        RunMode::Once => {
            for case in &cases {
                let (c, s, r) = &case.native;
                let t = Instant::now();
                black_box(delimiter_core::evaluate(c, s, r).unwrap());
                results
                    .rows
                    .push(row(case, "native", t.elapsed().as_nanos() as f64, 1));
                let (c, s, r) = &case.host;
                let t = Instant::now();
                black_box(enforcer.evaluate(c, s, r).unwrap());
                results
                    .rows
                    .push(row(case, "rust-host", t.elapsed().as_nanos() as f64, 1));
            }
            results.meta(
                "timing",
                "one run per case (test mode or DELIMITER_BENCH_TINY): not a measurement",
            );
        }
        RunMode::Measure => {
            let started = SystemTime::now();
            let mut c = Criterion::default()
                .output_directory(&b::criterion_dir())
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(3))
                .sample_size(20)
                .configure_from_args();
            {
                let mut g = c.benchmark_group(GROUP);
                // Large local trees take up to a second per decision in the
                // guest: flat sampling (equal iterations per sample) keeps the
                // run short without lowering the sample count below 10.
                g.sampling_mode(SamplingMode::Flat);
                g.sample_size(10);
                for case in &cases {
                    b::bench_evaluate(&mut g, &case.id, &case.native, &case.host, &mut enforcer);
                }
                g.finish();
            }
            c.final_summary();
            results.meta(
                "timing",
                "criterion, flat sampling: 1 s warm-up, 3 s measurement, 10 samples per case; \
                 median_ns is criterion's median per-iteration time",
            );
            for case in &cases {
                for function in ["native", "rust-host"] {
                    if let Some((median, samples)) =
                        b::criterion_median(GROUP, function, &case.id, started)
                    {
                        results.rows.push(row(case, function, median, samples));
                    }
                }
            }
        }
    }
    results.write("scale-rust");
}

fn row(case: &Case, implementation: &str, median_ns: f64, samples: usize) -> serde_json::Value {
    json!({
        "shape": case.shape,
        "projects": case.projects,
        "usage_form": case.usage_form,
        "impl": implementation,
        "median_ns": median_ns.round() as u64,
        "samples": samples,
    })
}
