//! The Rust host's conformance runner: every case of `conformance/vectors`
//! through the WebAssembly component, via this crate's public API only, as
//! `conformance/README.md` describes. Prints failures, then
//! `conformance rust: N passed, M failed`, and exits non-zero on a failure.
//!

use delimiter::vector::*;
use delimiter::*;
use serde_json::{Value, json};
use std::path::PathBuf;

use delimiter_conformance::{Commit, Outcome, Ran, Script};

fn main() {
    let vectors = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../conformance/vectors");
    let mut enforcer = Enforcer::new();
    delimiter_conformance::main("rust", &vectors, |case| run_case(&mut enforcer, case));
}

/// Runs one case through the public API.
fn run_case(enforcer: &mut Enforcer, case: &Value) -> Ran {
    let op = case["operation"].as_str().ok_or("case has no operation")?;
    Ok(match op {
        "evaluate" => (run_evaluate(enforcer, case)?, None),
        "headroom" => (run_headroom(enforcer, case)?, None),
        "max-count" => (run_max_count(enforcer, case)?, None),
        "validate" => (run_validate(enforcer, case)?, None),
        "oslo-check" => (run_oslo(enforcer, case)?, None),
        "prepared" => (run_prepared(enforcer, case)?, None),
        "consume" => {
            let (outcome, calls) = run_consume(enforcer, case)?;
            (outcome, Some(calls))
        }
        "evaluate-batch" => (run_evaluate_batch(enforcer, case)?, None),
        "prepared-batch" => (run_prepared_batch(enforcer, case)?, None),
        "consume-batch" => {
            let (outcome, calls) = run_consume_batch(enforcer, case)?;
            (outcome, Some(calls))
        }
        other => return Err(format!("unsupported operation {other:?}")),
    })
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

/// `case[key]` in its vector shape.
fn field<T: serde::de::DeserializeOwned + Default>(case: &Value, key: &str) -> Result<T, String> {
    match case.get(key) {
        None => Ok(T::default()),
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| format!("bad {key}: {e}")),
    }
}

fn required<T: serde::de::DeserializeOwned>(case: &Value, key: &str) -> Result<T, String> {
    let v = case.get(key).ok_or_else(|| format!("case has no {key}"))?;
    serde_json::from_value(v.clone()).map_err(|e| format!("bad {key}: {e}"))
}

/// The case's config and snapshot, or the error kind the config yields.
fn inputs(
    enforcer: &mut Enforcer,
    case: &Value,
) -> Result<Result<(Config, SnapshotShape), String>, String> {
    let config: ConfigShape = field(case, "config")?;
    let snapshot: SnapshotShape = field(case, "snapshot")?;
    Ok(config.config(enforcer).map(|c| (c, snapshot)).map_err(kind))
}

// ---- operations -----------------------------------------------------------

fn run_evaluate(enforcer: &mut Enforcer, case: &Value) -> Result<Outcome, String> {
    let req: Request = required(case, "request")?;
    Ok(inputs(enforcer, case)?.and_then(|(c, snap)| {
        enforcer
            .evaluate(&c, &snap.snapshot(), &req)
            .map(|d| decision_json(&d))
            .map_err(kind)
    }))
}

fn run_headroom(enforcer: &mut Enforcer, case: &Value) -> Result<Outcome, String> {
    let project: String = required(case, "project")?;
    let resources: Vec<String> = field(case, "resources")?;
    Ok(inputs(enforcer, case)?.and_then(|(c, snap)| {
        enforcer
            .headroom(&c, &snap.snapshot(), &project, &resources)
            .map(|rows| headroom_json(&rows))
            .map_err(kind)
    }))
}

fn run_max_count(enforcer: &mut Enforcer, case: &Value) -> Result<Outcome, String> {
    let req: Request = required(case, "request")?;
    Ok(inputs(enforcer, case)?.and_then(|(c, snap)| {
        enforcer
            .max_count(&c, &snap.snapshot(), &req)
            .map(|n| count_json(&n))
            .map_err(kind)
    }))
}

fn run_validate(enforcer: &mut Enforcer, case: &Value) -> Result<Outcome, String> {
    Ok(inputs(enforcer, case)?.and_then(|(c, snap)| {
        enforcer
            .validate(&c, &snap.projects, &snap.limits())
            .map(|findings| findings.iter().map(finding_json).collect())
            .map_err(kind)
    }))
}

fn run_oslo(enforcer: &mut Enforcer, case: &Value) -> Result<Outcome, String> {
    let oslo: OsloShape = required(case, "oslo")?;
    Ok(enforcer
        .oslo_check(&oslo.request())
        .map(|over| over_limit_json(&over))
        .map_err(kind))
}

/// Prepares the case's tree and limits, then decides its request from the
/// path numbers, through the public `Prepared` (which numbers the request
/// in the component and keeps the numbers).
fn run_prepared(enforcer: &mut Enforcer, case: &Value) -> Result<Outcome, String> {
    let req: Request = required(case, "request")?;
    let local: Vec<i64> = field(case, "local")?;
    let subtree: Vec<i64> = field(case, "subtree")?;
    let generations: Vec<u64> = field(case, "generations")?;
    Ok(inputs(enforcer, case)?.and_then(|(c, snap)| {
        let mut prepared = Prepared::new(&c, &snap.projects, &snap.limits()).map_err(kind)?;
        let decision = prepared
            .evaluate(&req, &local, &subtree, &generations)
            .map_err(kind)?;
        let path = prepared.path(&req.project).map_err(kind)?;
        let mut out = decision_json(&decision);
        let path: Vec<&str> = path.iter().map(|p| &**p).collect();
        out["path"] = json!(path);
        Ok(out)
    }))
}

/// One element per batch member: its decision, or `{"error": kind}`.
fn batch_json(results: Vec<Result<Decision, Invalid>>) -> Value {
    results
        .into_iter()
        .map(|r| match r {
            Ok(d) => decision_json(&d),
            Err(e) => json!({"error": e.input.kind()}),
        })
        .collect()
}

/// One member of a `prepared-batch` case, as the vectors write it.
#[derive(serde::Deserialize)]
struct MemberShape {
    request: Request,
    local: Vec<i64>,
    subtree: Vec<i64>,
    generations: Vec<u64>,
}

/// Prepares (an error there is the case's), then decides the members as
/// given: one result per member.
fn run_prepared_batch(enforcer: &mut Enforcer, case: &Value) -> Result<Outcome, String> {
    let members: Vec<PreparedMember> = required::<Vec<MemberShape>>(case, "members")?
        .into_iter()
        .map(|m| PreparedMember {
            request: m.request,
            local: m.local,
            subtree: m.subtree,
            generations: m.generations,
        })
        .collect();
    Ok(inputs(enforcer, case)?.and_then(|(c, snap)| {
        let mut prepared = Prepared::new(&c, &snap.projects, &snap.limits()).map_err(kind)?;
        prepared
            .evaluate_batch(&members)
            .map(batch_json)
            .map_err(kind)
    }))
}

/// The case's scripted store, as a `Store` with batch calls.
struct Scripted(Script);

fn snapshot_of(step: Option<Value>) -> Result<Snapshot, StorageError> {
    match step {
        Some(step) => serde_json::from_value::<SnapshotShape>(step)
            .map(|s| s.snapshot())
            .map_err(|e| StorageError::new(e.to_string())),
        None => Err(StorageError::new("scripted read failure")),
    }
}

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
    fn read(&mut self, _project: &str, _resources: &[String]) -> Result<Snapshot, StorageError> {
        snapshot_of(self.0.read())
    }

    fn commit(
        &mut self,
        _claim: &[ClaimEntry],
        _request: &Request,
    ) -> Result<CommitOutcome, StorageError> {
        commit_outcome(self.0.commit())
    }

    fn backoff(&mut self, _attempt: u32, delay: std::time::Duration) {
        self.0.backoff(delay.as_micros() as u64);
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
        _resources: &[String],
    ) -> Result<Option<Snapshot>, StorageError> {
        self.0.read_locked().map(snapshot_of).transpose()
    }

    fn unlock(&mut self) {
        self.0.unlock();
    }

    fn batches(&self) -> bool {
        true
    }

    fn read_batch(
        &mut self,
        _projects: &[String],
        _resources: &[String],
    ) -> Result<Snapshot, StorageError> {
        snapshot_of(self.0.read())
    }

    fn commit_batch(
        &mut self,
        claim: &[ClaimEntry],
        members: &[Request],
    ) -> Result<BatchOutcome, StorageError> {
        let projects = members.iter().map(|m| m.project.clone()).collect();
        match self.0.commit_batch(claim_json(claim), projects) {
            Commit::MemberFailed(index) => Ok(BatchOutcome::MemberFailed(MemberFailure {
                index,
                message: "scripted member failure".into(),
            })),
            Commit::Committed => Ok(BatchOutcome::Committed),
            other => commit_outcome(other).map(BatchOutcome::Conflict),
        }
    }
}

/// The case's policy: the default with the fields the case sets.
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

fn consumed_json(done: &Consumed) -> Value {
    json!({"claim": claim_json(&done.claim), "attempts": done.attempts})
}

fn run_consume(enforcer: &mut Enforcer, case: &Value) -> Result<(Outcome, Value), String> {
    let req: Request = required(case, "request")?;
    let mut scripted = Scripted(Script::of(case));
    let policy = policy(case)?;
    let outcome = inputs(enforcer, case)?.and_then(|(c, _)| {
        enforcer
            .consume(&c, &policy, &mut scripted, &req)
            .map(|done| consumed_json(&done))
            .map_err(kind)
    });
    Ok((outcome, scripted.0.calls()))
}

fn run_evaluate_batch(enforcer: &mut Enforcer, case: &Value) -> Result<Outcome, String> {
    let requests: Vec<Request> = required(case, "requests")?;
    Ok(inputs(enforcer, case)?.and_then(|(c, snap)| {
        enforcer
            .evaluate_batch(&c, &snap.snapshot(), &requests)
            .map(batch_json)
            .map_err(kind)
    }))
}

fn run_consume_batch(enforcer: &mut Enforcer, case: &Value) -> Result<(Outcome, Value), String> {
    let requests: Vec<Request> = required(case, "requests")?;
    let mut scripted = Scripted(Script::of(case));
    let policy = policy(case)?;
    let outcome = inputs(enforcer, case)?.and_then(|(c, _)| {
        enforcer
            .consume_batch(&c, &policy, &mut scripted, &requests)
            .map(|results| {
                results
                    .into_iter()
                    .map(|r| match r {
                        Ok(done) => consumed_json(&done),
                        Err(e) => json!({"error": kind(e)}),
                    })
                    .collect()
            })
            .map_err(kind)
    });
    Ok((outcome, scripted.0.batch_calls()))
}
