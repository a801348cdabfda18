//! The Rust host's conformance runner: every case of `conformance/vectors`
//! through the WebAssembly component, via this crate's public API only, as
//! `conformance/README.md` describes. Prints failures, then
//! `conformance rust: N passed, M failed`, and exits non-zero on a failure.
//!
//! `DELIMITER_VECTORS` may name another directory of vector files.

use delimiter::*;
use serde_json::{Map, Value, json};
use std::path::PathBuf;

/// A rendered result, or an error kind.
type Outcome = Result<Value, String>;

fn main() {
    let dir = std::env::var_os("DELIMITER_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../conformance/vectors")
        });
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();

    let mut enforcer = Enforcer::new();
    let (mut passed, mut failed) = (0usize, 0usize);
    for file in files {
        let stem = file.file_stem().unwrap().to_string_lossy().to_string();
        let doc: Value = match std::fs::read_to_string(&file)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
        {
            Ok(doc) => doc,
            Err(e) => {
                println!("FAIL {stem}: unreadable vector file: {e}");
                failed += 1;
                continue;
            }
        };
        for case in doc["cases"].as_array().into_iter().flatten() {
            let id = format!("{stem}/{}", case["description"].as_str().unwrap_or("?"));
            match run_case(&mut enforcer, case) {
                Ok(()) => passed += 1,
                Err(why) => {
                    failed += 1;
                    println!("FAIL {id}\n     {why}");
                }
            }
        }
    }
    println!("conformance rust: {passed} passed, {failed} failed");
    if failed > 0 || passed == 0 {
        std::process::exit(1);
    }
}

/// Runs one case and compares it with its expectation.
fn run_case(enforcer: &mut Enforcer, case: &Value) -> Result<(), String> {
    let op = case["operation"].as_str().ok_or("case has no operation")?;
    let (outcome, calls) = match op {
        "evaluate" => (run_evaluate(enforcer, case)?, None),
        "headroom" => (run_headroom(enforcer, case)?, None),
        "max-count" => (run_max_count(enforcer, case)?, None),
        "validate" => (run_validate(enforcer, case)?, None),
        "oslo-check" => (run_oslo(enforcer, case)?, None),
        "consume" => {
            let (outcome, calls) = run_consume(enforcer, case)?;
            (outcome, Some(calls))
        }
        other => return Err(format!("unsupported operation {other:?}")),
    };
    let matches = match (&outcome, case.get("want_result"), case.get("want_error")) {
        (Ok(got), Some(want), None) => got == want,
        (Err(kind), None, Some(want)) => want.as_str() == Some(kind.as_str()),
        _ => false,
    };
    if !matches {
        let want = case
            .get("want_result")
            .map(|w| format!("result {w}"))
            .or_else(|| case.get("want_error").map(|w| format!("error {w}")))
            .unwrap_or_else(|| "nothing (the case has neither want_result nor want_error)".into());
        let got = match &outcome {
            Ok(v) => format!("result {v}"),
            Err(k) => format!("error {k:?}"),
        };
        return Err(format!("want {want} got {got}"));
    }
    if let Some(calls) = calls {
        let want = &case["want_calls"];
        if &calls != want {
            return Err(format!("want calls {want} got {calls}"));
        }
    }
    Ok(())
}

/// The error kind of a failed call; a guest fault is reported in full so
/// that it is never mistaken for an expected error.
fn kind(e: Error) -> String {
    match e {
        Error::GuestFault(fault) => format!("guest-fault: {fault}"),
        other => other.kind().to_string(),
    }
}

// ---- inputs ---------------------------------------------------------------

fn s(v: &Value, key: &str) -> Result<String, String> {
    v[key]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("missing string {key:?} in {v}"))
}

fn i(v: &Value, key: &str) -> Result<i64, String> {
    v[key]
        .as_i64()
        .ok_or_else(|| format!("missing integer {key:?} in {v}"))
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The case's config, or the error kind its model name yields (the model
/// name is read by the component, through `Enforcer::parse_model`).
fn config(enforcer: &mut Enforcer, case: &Value) -> Result<Result<Config, String>, String> {
    let c = &case["config"];
    let mut config = Config::default();
    if let Some(model) = c.get("model") {
        let name = model.as_str().ok_or("model is not a string")?;
        match enforcer.parse_model(name) {
            Ok(m) => config.model = m,
            Err(e) => return Ok(Err(kind(e))),
        }
    }
    if let Some(d) = c.get("max_depth") {
        config.max_depth = d
            .as_u64()
            .and_then(|d| u32::try_from(d).ok())
            .ok_or_else(|| format!("bad max_depth {d}"))?;
    }
    if let Some(m) = c.get("missing_limit") {
        config.missing_limit = match m.as_str() {
            Some("zero") => MissingLimit::Zero,
            Some("unlimited") => MissingLimit::Unlimited,
            _ => return Err(format!("bad missing_limit {m}")),
        };
    }
    Ok(Ok(config))
}

fn usage_entries(values: &[Value]) -> Result<Vec<UsageEntry>, String> {
    values
        .iter()
        .map(|e| {
            Ok(UsageEntry::new(
                s(e, "project")?,
                s(e, "resource")?,
                i(e, "usage")?,
            ))
        })
        .collect()
}

fn snapshot(v: &Value) -> Result<Snapshot, String> {
    let projects = list(v, "projects")
        .iter()
        .map(|p| {
            Ok(Project {
                id: s(p, "id")?,
                parent: p.get("parent").and_then(Value::as_str).map(str::to_string),
            })
        })
        .collect::<Result<_, String>>()?;
    let registered = list(v, "registered_limits")
        .iter()
        .map(|l| Ok(RegisteredLimit::new(s(l, "resource")?, i(l, "limit")?)))
        .collect::<Result<_, String>>()?;
    let project = list(v, "project_limits")
        .iter()
        .map(|l| {
            Ok(ProjectLimit::new(
                s(l, "project")?,
                s(l, "resource")?,
                i(l, "limit")?,
            ))
        })
        .collect::<Result<_, String>>()?;
    let usage = match v.get("usage") {
        None => Usage::Local(Vec::new()),
        Some(u) if u.get("local").is_some() => Usage::Local(usage_entries(list(u, "local"))?),
        Some(u) if u.get("path").is_some() => {
            let p = &u["path"];
            Usage::Path(PathUsage {
                local: list(p, "local")
                    .iter()
                    .map(|e| Ok(ResourceUsage::new(s(e, "resource")?, i(e, "usage")?)))
                    .collect::<Result<_, String>>()?,
                subtree: usage_entries(list(p, "subtree"))?,
            })
        }
        Some(u) => return Err(format!("bad usage {u}")),
    };
    let generations = list(v, "generations")
        .iter()
        .map(|g| {
            let n = g["generation"]
                .as_u64()
                .ok_or_else(|| format!("bad generation in {g}"))?;
            Ok(Generation::new(s(g, "project")?, n))
        })
        .collect::<Result<_, String>>()?;
    Ok(Snapshot {
        projects,
        limits: Limits {
            registered,
            project,
        },
        usage,
        generations,
    })
}

fn deltas(values: &[Value]) -> Result<Vec<Delta>, String> {
    values
        .iter()
        .map(|d| Ok(Delta::new(s(d, "resource")?, i(d, "delta")?)))
        .collect()
}

fn request(case: &Value) -> Result<Request, String> {
    let r = &case["request"];
    Ok(Request::new(s(r, "project")?, deltas(list(r, "deltas"))?))
}

// ---- outcomes -------------------------------------------------------------

fn claim_json(claim: &[ClaimEntry]) -> Value {
    claim
        .iter()
        .map(|c| json!({"project": c.project, "generation": c.generation}))
        .collect()
}

fn violations_json(violations: &[Violation]) -> Value {
    violations
        .iter()
        .map(|v| {
            json!({"project": v.project, "resource": v.resource, "limit": v.limit,
                   "usage": v.usage, "delta": v.delta})
        })
        .collect()
}

fn run_evaluate(enforcer: &mut Enforcer, case: &Value) -> Result<Outcome, String> {
    let snap = snapshot(&case["snapshot"])?;
    let req = request(case)?;
    Ok(match config(enforcer, case)? {
        Err(k) => Err(k),
        Ok(c) => match enforcer.evaluate(&c, &snap, &req) {
            Ok(Decision::Admitted { claim }) => {
                Ok(json!({"admitted": true, "claim": claim_json(&claim)}))
            }
            Ok(Decision::Refused { violations }) => {
                Ok(json!({"admitted": false, "violations": violations_json(&violations)}))
            }
            Err(e) => Err(kind(e)),
        },
    })
}

fn run_headroom(enforcer: &mut Enforcer, case: &Value) -> Result<Outcome, String> {
    let snap = snapshot(&case["snapshot"])?;
    let project = s(case, "project")?;
    let resources: Vec<String> = list(case, "resources")
        .iter()
        .map(|r| r.as_str().map(str::to_string).ok_or("bad resource"))
        .collect::<Result<_, _>>()?;
    Ok(match config(enforcer, case)? {
        Err(k) => Err(k),
        Ok(c) => match enforcer.headroom(&c, &snap, &project, &resources) {
            Ok(rows) => Ok(rows
                .iter()
                .map(|h| {
                    let room = match h.room {
                        Room::Unlimited => json!("unlimited"),
                        Room::Limited(n) => json!(n),
                    };
                    json!({"resource": h.resource, "headroom": room})
                })
                .collect()),
            Err(e) => Err(kind(e)),
        },
    })
}

fn run_max_count(enforcer: &mut Enforcer, case: &Value) -> Result<Outcome, String> {
    let snap = snapshot(&case["snapshot"])?;
    let req = request(case)?;
    Ok(match config(enforcer, case)? {
        Err(k) => Err(k),
        Ok(c) => match enforcer.max_count(&c, &snap, &req.project, &req.deltas) {
            Ok(Count::Unlimited) => Ok(json!({"count": "unlimited"})),
            Ok(Count::Units(n)) => Ok(json!({"count": n})),
            Err(e) => Err(kind(e)),
        },
    })
}

fn finding_json(f: &Finding) -> Value {
    match f {
        Finding::Invalid(e) => {
            let mut m = Map::new();
            m.insert("kind".into(), json!(e.kind()));
            if let Some(p) = e.project() {
                m.insert("project".into(), json!(p));
            }
            if let Some(r) = e.resource() {
                m.insert("resource".into(), json!(r));
            }
            Value::Object(m)
        }
        Finding::ChildLimitExceedsParent {
            parent,
            child,
            resource,
            parent_limit,
            child_limit,
        } => json!({
            "kind": "child-limit-exceeds-parent", "parent": parent, "child": child,
            "resource": resource, "parent_limit": parent_limit, "child_limit": child_limit,
        }),
    }
}

fn run_validate(enforcer: &mut Enforcer, case: &Value) -> Result<Outcome, String> {
    let snap = snapshot(&case["snapshot"])?;
    Ok(match config(enforcer, case)? {
        Err(k) => Err(k),
        Ok(c) => match enforcer.validate(&c, &snap.projects, &snap.limits) {
            Ok(findings) => Ok(findings.iter().map(finding_json).collect()),
            Err(e) => Err(kind(e)),
        },
    })
}

fn run_oslo(enforcer: &mut Enforcer, case: &Value) -> Result<Outcome, String> {
    let o = &case["oslo"];
    let limits = |key: &str| -> Result<Vec<ResourceLimit>, String> {
        list(o, key)
            .iter()
            .map(|l| Ok(ResourceLimit::new(s(l, "resource")?, i(l, "limit")?)))
            .collect()
    };
    let check = OsloCheck {
        project_id: o
            .get("project_id")
            .and_then(Value::as_str)
            .map(str::to_string),
        deltas: deltas(list(o, "deltas"))?,
        registered: limits("registered_limits")?,
        project: limits("project_limits")?,
        usage: list(o, "usage")
            .iter()
            .map(|u| Ok(ResourceUsage::new(s(u, "resource")?, i(u, "usage")?)))
            .collect::<Result<_, String>>()?,
    };
    Ok(match enforcer.oslo_check(&check) {
        Ok(over) => {
            let list: Vec<Value> = over
                .iter()
                .map(|o| {
                    json!({"resource_name": o.resource_name, "limit": o.limit,
                           "current_usage": o.current_usage, "delta": o.delta})
                })
                .collect();
            Ok(json!({ "over_limit": list }))
        }
        Err(e) => Err(kind(e)),
    })
}

/// A store that plays back the case's script and counts calls.
struct Scripted {
    reads: Vec<Value>,
    commits: Vec<String>,
    calls: [u32; 3],
}

impl Store for Scripted {
    fn read(&mut self, _project: &str, _resources: &[String]) -> Result<Snapshot, StorageError> {
        let n = self.calls[0] as usize;
        self.calls[0] += 1;
        let step = self
            .reads
            .get(n)
            .or(self.reads.last())
            .cloned()
            .unwrap_or(Value::Null);
        if step.as_str() == Some("storage-error") {
            return Err(StorageError::new("scripted read failure"));
        }
        snapshot(&step).map_err(StorageError::new)
    }

    fn commit(
        &mut self,
        _claim: &[ClaimEntry],
        _request: &Request,
    ) -> Result<CommitOutcome, StorageError> {
        let n = self.calls[1] as usize;
        self.calls[1] += 1;
        match self
            .commits
            .get(n)
            .or(self.commits.last())
            .map(String::as_str)
        {
            Some("committed") => Ok(CommitOutcome::Committed),
            Some("conflict") => Ok(CommitOutcome::Conflict),
            _ => Err(StorageError::new("scripted commit failure")),
        }
    }

    fn backoff(&mut self, _attempt: u32, _delay: std::time::Duration) {
        self.calls[2] += 1;
    }
}

fn run_consume(enforcer: &mut Enforcer, case: &Value) -> Result<(Outcome, Value), String> {
    let req = request(case)?;
    let store = &case["store"];
    let mut scripted = Scripted {
        reads: list(store, "reads").to_vec(),
        commits: list(store, "commits")
            .iter()
            .filter_map(|c| c.as_str().map(str::to_string))
            .collect(),
        calls: [0; 3],
    };
    let mut policy = RetryPolicy::default();
    if let Some(n) = case["policy"].get("max_attempts") {
        policy.max_attempts = n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("bad max_attempts {n}"))?;
    }
    let outcome = match config(enforcer, case)? {
        Err(k) => Err(k),
        Ok(c) => match enforcer.consume(&c, &policy, &mut scripted, &req) {
            Ok(done) => Ok(json!({"claim": claim_json(&done.claim), "attempts": done.attempts})),
            Err(e) => Err(kind(e)),
        },
    };
    let [reads, commits, backoffs] = scripted.calls;
    Ok((
        outcome,
        json!({"reads": reads, "commits": commits, "backoffs": backoffs}),
    ))
}
