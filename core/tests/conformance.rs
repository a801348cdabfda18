//! The native conformance runner: every case of `conformance/vectors`
//! through the core crate directly, as `conformance/README.md` describes.
//! Prints failures, then `conformance native: N passed, M failed`.

use delimiter_core::*;
use serde_json::{Map, Value, json};
use std::path::Path;

use delimiter_conformance::{Commit, Outcome, Ran, Script};

fn main() {
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/vectors");
    delimiter_conformance::main("native", &vectors, run_case);
}

/// Runs one case through the core.
fn run_case(case: &Value) -> Ran {
    let op = case["operation"].as_str().ok_or("case has no operation")?;
    Ok(match op {
        "evaluate" => (run_evaluate(case)?, None),
        "headroom" => (run_headroom(case)?, None),
        "max-count" => (run_max_count(case)?, None),
        "validate" => (run_validate(case)?, None),
        "oslo-check" => (run_oslo(case)?, None),
        "prepared" => (run_prepared(case)?, None),
        "consume" => {
            let (outcome, calls) = run_consume(case)?;
            (outcome, Some(calls))
        }
        "evaluate-batch" => (run_evaluate_batch(case)?, None),
        "prepared-batch" => (run_prepared_batch(case)?, None),
        "consume-batch" => {
            let (outcome, calls) = run_consume_batch(case)?;
            (outcome, Some(calls))
        }
        other => return Err(format!("unsupported operation {other:?}")),
    })
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

/// The config, or the error kind its model name yields.
fn config(case: &Value) -> Result<Result<Config, String>, String> {
    let c = &case["config"];
    let mut config = Config::default();
    if let Some(model) = c.get("model") {
        match model
            .as_str()
            .ok_or("model is not a string")?
            .parse::<Model>()
        {
            Ok(m) => config.model = m,
            Err(e) => return Ok(Err(e.kind().to_string())),
        }
    }
    if let Some(d) = c.get("max_depth") {
        config.max_depth = d
            .as_u64()
            .and_then(|d| u32::try_from(d).ok())
            .ok_or("bad max_depth")?;
    }
    if let Some(m) = c.get("missing_limit") {
        match m
            .as_str()
            .ok_or("missing_limit is not a string")?
            .parse::<MissingLimit>()
        {
            Ok(m) => config.missing_limit = m,
            Err(e) => return Ok(Err(e.kind().to_string())),
        }
    }
    Ok(Ok(config))
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
        .map(|l| {
            Ok(RegisteredLimit {
                resource: s(l, "resource")?,
                limit: i(l, "limit")?,
            })
        })
        .collect::<Result<_, String>>()?;
    let project = list(v, "project_limits")
        .iter()
        .map(|l| {
            Ok(ProjectLimit {
                project: s(l, "project")?,
                resource: s(l, "resource")?,
                limit: i(l, "limit")?,
            })
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
                    .map(|e| {
                        Ok(ResourceUsage {
                            resource: s(e, "resource")?,
                            usage: i(e, "usage")?,
                        })
                    })
                    .collect::<Result<_, String>>()?,
                subtree: usage_entries(list(p, "subtree"))?,
            })
        }
        Some(u) => return Err(format!("bad usage {u}")),
    };
    let generations = list(v, "generations")
        .iter()
        .map(|g| {
            Ok(Generation {
                project: s(g, "project")?,
                generation: g["generation"].as_u64().ok_or("bad generation")?,
            })
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

fn usage_entries(values: &[Value]) -> Result<Vec<UsageEntry>, String> {
    values
        .iter()
        .map(|e| {
            Ok(UsageEntry {
                project: s(e, "project")?,
                resource: s(e, "resource")?,
                usage: i(e, "usage")?,
            })
        })
        .collect()
}

fn deltas(values: &[Value]) -> Result<Vec<Delta>, String> {
    values
        .iter()
        .map(|d| Ok(Delta::new(s(d, "resource")?, i(d, "delta")?)))
        .collect()
}

fn request(case: &Value) -> Result<Request, String> {
    request_of(&case["request"])
}

fn request_of(r: &Value) -> Result<Request, String> {
    Ok(Request::new(s(r, "project")?, deltas(list(r, "deltas"))?))
}

fn requests(case: &Value) -> Result<Vec<Request>, String> {
    list(case, "requests").iter().map(request_of).collect()
}

/// The case's policy: the core's default with the fields the case sets.
fn policy(case: &Value) -> Result<RetryPolicy, String> {
    let f = delimiter_conformance::policy_fields(case)?;
    let d = RetryPolicy::default();
    Ok(RetryPolicy {
        max_attempts: f.max_attempts.unwrap_or(d.max_attempts),
        deadline_us: f.deadline_us.unwrap_or(d.deadline_us),
        base_delay_us: f.base_delay_us.unwrap_or(d.base_delay_us),
        max_delay_us: f.max_delay_us.unwrap_or(d.max_delay_us),
        seed: f.seed,
        lock_after_conflict: f.lock_after_conflict.unwrap_or(d.lock_after_conflict),
    })
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
        .map(|v| json!({"project": v.project, "resource": v.resource, "limit": v.limit, "usage": v.usage, "delta": v.delta}))
        .collect()
}

fn decision_json(decision: &Decision) -> Value {
    match decision {
        Decision::Admitted { claim } => json!({"admitted": true, "claim": claim_json(claim)}),
        Decision::Refused { violations } => {
            json!({"admitted": false, "violations": violations_json(violations)})
        }
    }
}

/// Runs `f` with the case's config, or yields the config's own error.
fn with_config(
    case: &Value,
    f: impl FnOnce(&Config) -> Result<Value, Error>,
) -> Result<Outcome, String> {
    Ok(match config(case)? {
        Ok(config) => f(&config).map_err(|e| e.kind().to_string()),
        Err(kind) => Err(kind),
    })
}

fn run_evaluate(case: &Value) -> Result<Outcome, String> {
    let snap = snapshot(&case["snapshot"])?;
    let req = request(case)?;
    with_config(case, |c| {
        evaluate(c, &snap, &req).map(|d| decision_json(&d))
    })
}

fn i64s(case: &Value, key: &str) -> Result<Vec<i64>, String> {
    numbers(case, key, Value::as_i64)
}

fn u64s(case: &Value, key: &str) -> Result<Vec<u64>, String> {
    numbers(case, key, Value::as_u64)
}

/// The list `key` of `case`, each entry read by `read`.
fn numbers<T>(case: &Value, key: &str, read: fn(&Value) -> Option<T>) -> Result<Vec<T>, String> {
    case.get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("missing list {key:?}"))?
        .iter()
        .map(|v| read(v).ok_or_else(|| format!("bad {key} entry {v}")))
        .collect()
}

/// One element per batch member: its decision, or `{"error": kind}`.
fn batch_json(results: &[Result<Decision>]) -> Value {
    results
        .iter()
        .map(|d| match d {
            Ok(d) => decision_json(d),
            Err(e) => json!({"error": e.kind()}),
        })
        .collect()
}

/// Prepares (config, tree, limits; an error there is the case's), then
/// decides the members as given: one result per member.
fn run_prepared_batch(case: &Value) -> Result<Outcome, String> {
    let snap = snapshot(&case["snapshot"])?;
    let members: Vec<PreparedMember> = list(case, "members")
        .iter()
        .map(|m| {
            Ok(PreparedMember {
                request: request_of(&m["request"])?,
                local: i64s(m, "local")?,
                subtree: i64s(m, "subtree")?,
                generations: u64s(m, "generations")?,
            })
        })
        .collect::<Result<_, String>>()?;
    with_config(case, |c| {
        let prepared = Prepared::new(c, &snap.projects, &snap.limits)?;
        Ok(batch_json(&prepared.evaluate_batch(&members)))
    })
}

/// Prepares (config, tree, limits), numbers the request, then decides by
/// numbers; an error at any step is the case's error. The result is
/// evaluate's shape, its claim named from the path and the generations
/// passed, plus the project's `path`.
fn run_prepared(case: &Value) -> Result<Outcome, String> {
    let snap = snapshot(&case["snapshot"])?;
    let req = request(case)?;
    let local = i64s(case, "local")?;
    let subtree = i64s(case, "subtree")?;
    let generations = u64s(case, "generations")?;
    with_config(case, |c| {
        let mut prepared = Prepared::new(c, &snap.projects, &snap.limits)?;
        let names: Vec<&str> = req.deltas.iter().map(|d| d.resource.as_str()).collect();
        let numbered = prepared.number_request(&req.project, &names)?;
        let deltas = numbered.numbered_deltas(&req.deltas);
        let decision =
            prepared.evaluate_numbers(numbered.node, &deltas, &local, &subtree, &generations)?;
        let mut out = match decision.named(&numbered.path, &generations) {
            Decision::Admitted { claim } => json!({"admitted": true, "claim": claim_json(&claim)}),
            Decision::Refused { violations } => {
                json!({"admitted": false, "violations": violations_json(&violations)})
            }
        };
        out["path"] = json!(numbered.path);
        Ok(out)
    })
}

fn run_headroom(case: &Value) -> Result<Outcome, String> {
    let snap = snapshot(&case["snapshot"])?;
    let project = s(case, "project")?;
    let resources: Vec<String> = list(case, "resources")
        .iter()
        .map(|r| r.as_str().map(str::to_string).ok_or("bad resource"))
        .collect::<Result<_, _>>()?;
    with_config(case, |c| {
        headroom(c, &snap, &project, &resources).map(|rows| {
            rows.iter()
                .map(|h| {
                    let room = match h.room {
                        Room::Unlimited => json!("unlimited"),
                        Room::Limited(n) => json!(n),
                    };
                    json!({"resource": h.resource, "headroom": room})
                })
                .collect()
        })
    })
}

fn run_max_count(case: &Value) -> Result<Outcome, String> {
    let snap = snapshot(&case["snapshot"])?;
    let req = request(case)?;
    with_config(case, |c| {
        max_count(c, &snap, &req.project, &req.deltas).map(|count| match count {
            Count::Unlimited => json!({"count": "unlimited"}),
            Count::Units(n) => json!({"count": n}),
        })
    })
}

fn error_subject(e: &Error) -> (Option<&str>, Option<&str>) {
    match e {
        Error::DuplicateProject { project }
        | Error::UnknownParent { project, .. }
        | Error::Cycle { project }
        | Error::TooDeep { project, .. }
        | Error::UnknownProject { project }
        | Error::DuplicateGeneration { project }
        | Error::MissingGeneration { project } => (Some(project), None),
        Error::InvalidLimit {
            project, resource, ..
        }
        | Error::DuplicateLimit { project, resource } => (project.as_deref(), Some(resource)),
        Error::NegativeUsage {
            project, resource, ..
        }
        | Error::DuplicateUsage { project, resource }
        | Error::InconsistentUsage { project, resource }
        | Error::ReleaseBelowZero {
            project, resource, ..
        }
        | Error::Overflow { project, resource } => (Some(project), Some(resource)),
        Error::DuplicateResource { resource }
        | Error::NegativeDelta { resource, .. }
        | Error::MissingUsage { resource } => (None, Some(resource)),
        Error::EmptyId { .. }
        | Error::UnknownModel { .. }
        | Error::InvalidConfig { .. }
        | Error::ShapeMismatch { .. } => (None, None),
    }
}

fn run_validate(case: &Value) -> Result<Outcome, String> {
    let snap = snapshot(&case["snapshot"])?;
    with_config(case, |c| {
        Ok(validate(c, &snap.projects, &snap.limits)
            .iter()
            .map(|f| match f {
                Finding::Invalid(e) => {
                    let mut m = Map::new();
                    m.insert("kind".into(), json!(e.kind()));
                    let (project, resource) = error_subject(e);
                    if let Some(p) = project {
                        m.insert("project".into(), json!(p));
                    }
                    if let Some(r) = resource {
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
            })
            .collect())
    })
}

fn run_oslo(case: &Value) -> Result<Outcome, String> {
    let o = &case["oslo"];
    let limits = |key: &str| -> Result<Vec<ResourceLimit>, String> {
        list(o, key)
            .iter()
            .map(|l| {
                Ok(ResourceLimit {
                    resource: s(l, "resource")?,
                    limit: i(l, "limit")?,
                })
            })
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
            .map(|u| {
                Ok(ResourceUsage {
                    resource: s(u, "resource")?,
                    usage: i(u, "usage")?,
                })
            })
            .collect::<Result<_, String>>()?,
    };
    Ok(oslo_check(&check)
        .map(|over| {
            let list: Vec<Value> = over
                .iter()
                .map(|o| json!({"resource_name": o.resource_name, "limit": o.limit, "current_usage": o.current_usage, "delta": o.delta}))
                .collect();
            json!({"over_limit": list})
        })
        .map_err(|e| e.kind().to_string()))
}

/// The case's scripted store, as the core's `Store` and `BatchStore`.
struct Scripted(Script);

fn commit_outcome(commit: Commit) -> Result<CommitOutcome, StorageError> {
    match commit {
        Commit::Committed => Ok(CommitOutcome::Committed),
        Commit::Conflict => Ok(CommitOutcome::Conflict),
        Commit::ConflictAfterWait => Ok(CommitOutcome::ConflictAfterWait),
        Commit::StorageError | Commit::MemberFailed(_) => {
            Err(StorageError::new("scripted commit failure"))
        }
    }
}

impl Store for Scripted {
    fn read(&mut self, _project: &str, _resources: &[&str]) -> Result<Snapshot, StorageError> {
        match self.0.read() {
            Some(step) => snapshot(&step).map_err(StorageError::new),
            None => Err(StorageError::new("scripted read failure")),
        }
    }

    fn commit(
        &mut self,
        _claim: &[ClaimEntry],
        _request: &Request,
    ) -> Result<CommitOutcome, StorageError> {
        commit_outcome(self.0.commit())
    }

    fn backoff(&mut self, _attempt: u32, delay_us: u64) {
        self.0.backoff(delay_us);
    }

    fn now_us(&mut self) -> u64 {
        self.0.now_us()
    }

    fn entropy(&mut self) -> u64 {
        self.0.entropy()
    }

    fn read_locked(
        &mut self,
        _project: &str,
        _resources: &[&str],
    ) -> Result<Option<Snapshot>, StorageError> {
        match self.0.read_locked() {
            None => Ok(None),
            Some(Some(step)) => snapshot(&step).map(Some).map_err(StorageError::new),
            Some(None) => Err(StorageError::new("scripted read failure")),
        }
    }

    fn unlock(&mut self) {
        self.0.unlock();
    }
}

impl BatchStore for Scripted {
    fn read_batch(
        &mut self,
        _projects: &[&str],
        _resources: &[&str],
    ) -> Result<Snapshot, StorageError> {
        self.read("", &[])
    }

    fn commit_batch(
        &mut self,
        claim: &[ClaimEntry],
        members: &[&Request],
    ) -> Result<BatchOutcome, StorageError> {
        let projects = members.iter().map(|m| m.project.clone()).collect();
        match self.0.commit_batch(claim_json(claim), projects) {
            Commit::MemberFailed(index) => Ok(BatchOutcome::MemberFailed {
                index,
                error: StorageError::new("scripted member failure"),
            }),
            Commit::Committed => Ok(BatchOutcome::Committed),
            other => commit_outcome(other).map(BatchOutcome::Conflict),
        }
    }
}

fn run_consume(case: &Value) -> Result<(Outcome, Value), String> {
    let req = request(case)?;
    let mut scripted = Scripted(Script::of(case));
    let policy = policy(case)?;
    let outcome = match config(case)? {
        Err(kind) => Err(kind),
        Ok(config) => match consume(&config, &policy, &mut scripted, &req) {
            Ok(done) => Ok(consumed_json(&done)),
            Err(e) => Err(e.kind().to_string()),
        },
    };
    Ok((outcome, scripted.0.calls()))
}

fn consumed_json(done: &Consumed) -> Value {
    json!({"claim": claim_json(&done.claim), "attempts": done.attempts})
}

fn run_evaluate_batch(case: &Value) -> Result<Outcome, String> {
    let snap = snapshot(&case["snapshot"])?;
    let reqs = requests(case)?;
    with_config(case, |config| {
        Ok(batch_json(&evaluate_batch(config, &snap, &reqs)))
    })
}

fn run_consume_batch(case: &Value) -> Result<(Outcome, Value), String> {
    let reqs = requests(case)?;
    let mut scripted = Scripted(Script::of(case));
    let policy = policy(case)?;
    let outcome = match config(case)? {
        Err(kind) => Err(kind),
        Ok(config) => Ok(consume_batch(&config, &policy, &mut scripted, &reqs)
            .iter()
            .map(|r| match r {
                Ok(done) => consumed_json(done),
                Err(e) => json!({"error": e.kind()}),
            })
            .collect()),
    };
    Ok((outcome, scripted.0.batch_calls()))
}
