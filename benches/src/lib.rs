//! Shared pieces of Delimiter's benchmarks. Results go to `target/bench/*.json`;
//! `benches/report.py` turns them into BENCHMARKS.md.
//!
//! The decision and scale benches read their inputs from
//! `target/bench/scenarios.json` (written by `benches/scenarios.py`): the
//! conformance vectors' snapshot/request/config shapes, converted here to
//! the core's types ([`core`]) and to the Rust host's ([`host`]), so that
//! every implementation decides the very same data.

use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The workspace root (this crate lives in `benches/`).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("benches/ has a parent")
        .to_path_buf()
}

/// Where scenarios and results live: `$DELIMITER_BENCH_DIR` (a relative
/// path is taken from the workspace root, as the Python runners do, since
/// cargo runs benches from the crate's directory), else `target/bench`.
pub fn bench_dir() -> PathBuf {
    match std::env::var_os("DELIMITER_BENCH_DIR") {
        Some(dir) if !dir.is_empty() => workspace().join(dir),
        _ => workspace().join("target").join("bench"),
    }
}

/// `DELIMITER_BENCH_TINY=1`: `just test` runs every benchmark once on tiny
/// inputs so that they cannot rot.
pub fn tiny() -> bool {
    std::env::var("DELIMITER_BENCH_TINY").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// How a bench binary was asked to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// `cargo bench`: measure with criterion.
    Measure,
    /// `cargo test --benches`, `cargo bench -- --test` or
    /// `DELIMITER_BENCH_TINY=1`: run each case once and check its answer.
    Once,
}

/// The mode from the arguments cargo passes (criterion's own rule:
/// measuring needs `--bench` and no `--test`) and `DELIMITER_BENCH_TINY`.
pub fn run_mode() -> RunMode {
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|a| a == "--bench");
    let test = args.iter().any(|a| a == "--test");
    if tiny() || !bench || test {
        RunMode::Once
    } else {
        RunMode::Measure
    }
}

/// The scenarios file, parsed. Fails with the command that writes it.
pub fn load_scenarios() -> Value {
    let path = bench_dir().join("scenarios.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; write it first with `python3 benches/scenarios.py`",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn s(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {v}"))
        .to_string()
}

fn i(v: &Value, key: &str) -> i64 {
    v[key]
        .as_i64()
        .unwrap_or_else(|| panic!("{key} is not an integer in {v}"))
}

/// The JSON -> types conversion, once for the core and once for the Rust
/// host: their records have the same names and fields (the host's are
/// generated from the WIT, which mirrors the core), so one body serves
/// both. Only the decision differs (the core's variants have named fields,
/// the WIT's a payload), so each module is given its own `outcome`.
macro_rules! converters {
    ($module:ident, $krate:ident, $doc:literal, $($extra:item)*) => {
        #[doc = $doc]
        pub mod $module {
            use super::{i, list, s};
            use serde_json::Value;
            use $krate::*;

            /// A case's `config` (model names parsed here, not by the
            /// component, so that no call is made before timing starts).
            pub fn config(case: &Value) -> Config {
                let c = &case["config"];
                let mut config = Config::default();
                if let Some(model) = c.get("model").and_then(Value::as_str) {
                    config.model = match model {
                        "flat" => Model::Flat,
                        "strict-two-level" | "strict_two_level" => Model::StrictTwoLevel,
                        "nested" => Model::Nested,
                        other => panic!("unknown model {other}"),
                    };
                }
                if let Some(d) = c.get("max_depth").and_then(Value::as_u64) {
                    config.max_depth = u32::try_from(d).expect("max_depth fits in u32");
                }
                if let Some(m) = c.get("missing_limit").and_then(Value::as_str) {
                    config.missing_limit = match m {
                        "zero" => MissingLimit::Zero,
                        "unlimited" => MissingLimit::Unlimited,
                        other => panic!("unknown missing_limit {other}"),
                    };
                }
                config
            }

            fn usage_entries(values: &[Value]) -> Vec<UsageEntry> {
                values
                    .iter()
                    .map(|e| UsageEntry {
                        project: s(e, "project"),
                        resource: s(e, "resource"),
                        usage: i(e, "usage"),
                    })
                    .collect()
            }

            /// A case's `snapshot`.
            pub fn snapshot(case: &Value) -> Snapshot {
                let v = &case["snapshot"];
                let projects = list(v, "projects")
                    .iter()
                    .map(|p| Project {
                        id: s(p, "id"),
                        parent: p.get("parent").and_then(Value::as_str).map(str::to_string),
                    })
                    .collect();
                let registered = list(v, "registered_limits")
                    .iter()
                    .map(|l| RegisteredLimit {
                        resource: s(l, "resource"),
                        limit: i(l, "limit"),
                    })
                    .collect();
                let project = list(v, "project_limits")
                    .iter()
                    .map(|l| ProjectLimit {
                        project: s(l, "project"),
                        resource: s(l, "resource"),
                        limit: i(l, "limit"),
                    })
                    .collect();
                let usage = match v.get("usage") {
                    None => Usage::Local(Vec::new()),
                    Some(u) if u.get("local").is_some() => {
                        Usage::Local(usage_entries(list(u, "local")))
                    }
                    Some(u) => {
                        let p = &u["path"];
                        Usage::Path(PathUsage {
                            local: list(p, "local")
                                .iter()
                                .map(|e| ResourceUsage {
                                    resource: s(e, "resource"),
                                    usage: i(e, "usage"),
                                })
                                .collect(),
                            subtree: usage_entries(list(p, "subtree")),
                        })
                    }
                };
                let generations = list(v, "generations")
                    .iter()
                    .map(|g| Generation {
                        project: s(g, "project"),
                        generation: g["generation"].as_u64().expect("generation is a u64"),
                    })
                    .collect();
                Snapshot {
                    projects,
                    limits: Limits {
                        registered,
                        project,
                    },
                    usage,
                    generations,
                }
            }

            /// A case's `request`.
            pub fn request(case: &Value) -> Request {
                let r = &case["request"];
                Request {
                    project: s(r, "project"),
                    deltas: list(r, "deltas")
                        .iter()
                        .map(|d| Delta {
                            resource: s(d, "resource"),
                            delta: i(d, "delta"),
                        })
                        .collect(),
                }
            }

            $($extra)*
        }
    };
}

converters!(
    core,
    delimiter_core,
    "JSON scenarios as the core's types (`delimiter-core`).",
    /// The decision as comparable data: admitted with the claimed
    /// (project, generation) pairs, or refused with the violations.
    pub fn outcome(d: &Decision) -> (bool, Vec<(String, u64)>, usize) {
        match d {
            Decision::Admitted { claim } => (
                true,
                claim
                    .iter()
                    .map(|c| (c.project.clone(), c.generation))
                    .collect(),
                0,
            ),
            Decision::Refused { violations } => (false, Vec::new(), violations.len()),
        }
    }
);
converters!(
    host,
    delimiter,
    "JSON scenarios as the Rust host's types (crate `delimiter`).",
    /// The decision as comparable data, as [`core::outcome`](super::core::outcome).
    pub fn outcome(d: &Decision) -> (bool, Vec<(String, u64)>, usize) {
        match d {
            Decision::Admitted(claim) => (
                true,
                claim
                    .iter()
                    .map(|c| (c.project.clone(), c.generation))
                    .collect(),
                0,
            ),
            Decision::Refused(violations) => (false, Vec::new(), violations.len()),
        }
    }
);

/// One results file, `target/bench/<name>.json`, in the shape of
/// benches/README.md.
pub struct Results {
    pub table: &'static str,
    pub runner: &'static str,
    pub meta: Map<String, Value>,
    pub rows: Vec<Value>,
}

impl Results {
    pub fn new(table: &'static str, runner: &'static str) -> Self {
        let mut meta = machine_meta();
        meta.insert("runner".into(), json!(runner));
        Results {
            table,
            runner,
            meta,
            rows: Vec::new(),
        }
    }

    pub fn meta(&mut self, key: &str, value: impl Into<String>) {
        self.meta.insert(key.into(), Value::String(value.into()));
    }

    /// Writes the file atomically and says where.
    pub fn write(&self, name: &str) {
        let dir = bench_dir();
        std::fs::create_dir_all(&dir).expect("create target/bench");
        let path = dir.join(format!("{name}.json"));
        let tmp = dir.join(format!(".{name}.json.tmp"));
        let body = json!({
            "table": self.table,
            "runner": self.runner,
            "meta": self.meta,
            "rows": self.rows,
        });
        std::fs::write(&tmp, serde_json::to_string_pretty(&body).unwrap() + "\n")
            .expect("write results");
        std::fs::rename(&tmp, &path).expect("rename results");
        println!("wrote {} ({} rows)", path.display(), self.rows.len());
    }
}

/// What the machine and toolchain are, as free-form strings.
pub fn machine_meta() -> Map<String, Value> {
    let mut meta = Map::new();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    meta.insert("cpu".into(), json!(cpu));
    meta.insert(
        "cpus".into(),
        json!(
            std::thread::available_parallelism()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "unknown".into())
        ),
    );
    meta.insert("os".into(), json!(command_line("uname", &["-srm"])));
    meta.insert(
        "rustc".into(),
        json!(command_line(
            &std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()),
            &["-V"]
        )),
    );
    meta.insert("wasmtime".into(), json!(locked_version("wasmtime")));
    meta.insert("criterion".into(), json!(locked_version("criterion")));
    meta.insert(
        "profile".into(),
        json!(if cfg!(debug_assertions) {
            "debug (numbers are not representative)"
        } else {
            "release (cargo bench profile)"
        }),
    );
    meta.insert("tiny".into(), json!(tiny()));
    meta
}

fn command_line(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The version of `package` in the workspace's Cargo.lock (what was built).
pub fn locked_version(package: &str) -> String {
    let lock = std::fs::read_to_string(workspace().join("Cargo.lock")).unwrap_or_default();
    let needle = format!("name = \"{package}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == needle
            && let Some(v) = lines.next().and_then(|l| l.strip_prefix("version = "))
        {
            return v.trim_matches('"').to_string();
        }
    }
    "unknown".into()
}

/// Criterion's output directory for this workspace, set explicitly so that
/// the estimates are found whatever directory cargo runs the bench from.
pub fn criterion_dir() -> PathBuf {
    match std::env::var_os("CRITERION_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace().join("target").join("criterion"),
    }
}

/// The median time per iteration (ns) and the number of samples criterion
/// measured for `group/function/parameter`, if it wrote them after `since`
/// (an older file is a previous run's, not this one's).
pub fn criterion_median(
    group: &str,
    function: &str,
    parameter: &str,
    since: SystemTime,
) -> Option<(f64, usize)> {
    let dir = criterion_dir()
        .join(group)
        .join(function)
        .join(parameter)
        .join("new");
    let estimates = dir.join("estimates.json");
    let fresh = std::fs::metadata(&estimates)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t >= since);
    if !fresh {
        return None;
    }
    let e: Value = serde_json::from_str(&std::fs::read_to_string(&estimates).ok()?).ok()?;
    let median = e["median"]["point_estimate"].as_f64()?;
    let sample: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("sample.json")).ok()?).ok()?;
    let samples = sample["iters"].as_array().map_or(0, Vec::len);
    Some((median, samples))
}

/// A case's inputs in the native core's types.
pub type NativeInputs = (
    delimiter_core::Config,
    delimiter_core::Snapshot,
    delimiter_core::Request,
);

/// A case's inputs in the Rust host's types.
pub type HostInputs = (delimiter::Config, delimiter::Snapshot, delimiter::Request);

/// The two `evaluate` benchmarks every decision case gets, in `group`:
/// `native/<id>` (the core's function) and `rust-host/<id>` (one
/// `Enforcer::evaluate` on `enforcer`, kept for the whole run).
pub fn bench_evaluate(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: &str,
    native: &NativeInputs,
    host: &HostInputs,
    enforcer: &mut delimiter::Enforcer,
) {
    use criterion::BenchmarkId;
    use std::hint::black_box;
    group.bench_with_input(BenchmarkId::new("native", id), native, |bch, (c, s, r)| {
        bch.iter(|| delimiter_core::evaluate(black_box(c), black_box(s), black_box(r)).unwrap())
    });
    group.bench_with_input(BenchmarkId::new("rust-host", id), host, |bch, (c, s, r)| {
        bch.iter(|| {
            enforcer
                .evaluate(black_box(c), black_box(s), black_box(r))
                .unwrap()
        })
    });
}
