//! The loop every Rust conformance runner shares, as `conformance/README.md`
//! ("Writing a runner") describes it: read every `vectors/*.json` (sorted by
//! name) and every case in file order, let the host run the case, compare
//! the outcome with `want_result` / `want_error` (and `want_calls` for
//! consume), print each failure with its id, then exactly one line
//! `conformance <host>: N passed, M failed`, and exit non-zero when a case
//! failed. A host supplies only how to run one case.
//!
//! `DELIMITER_VECTORS` may name another directory of vector files.

use serde_json::Value;
use std::path::{Path, PathBuf};

/// A rendered result in the vectors' shapes, or an error kind.
pub type Outcome = Result<Value, String>;

/// What running a case gave: its outcome and, for consume, the calls the
/// driver made (`{"reads", "commits", "backoffs"}`). `Err` is a case the
/// runner could not run (a malformed case, an unsupported operation).
pub type Ran = Result<(Outcome, Option<Value>), String>;

/// Runs every vector through `run` and reports as `host`; exits the process
/// with status 1 when a case failed or none ran.
pub fn main(host: &str, vectors: &Path, mut run: impl FnMut(&Value) -> Ran) {
    let dir = std::env::var_os("DELIMITER_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| vectors.to_path_buf());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();

    let (mut passed, mut failed) = (0usize, 0usize);
    for file in files {
        let stem = file
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
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
            match run(case).and_then(|ran| check(case, ran)) {
                Ok(()) => passed += 1,
                Err(why) => {
                    failed += 1;
                    println!("FAIL {id}\n     {why}");
                }
            }
        }
    }
    println!("conformance {host}: {passed} passed, {failed} failed");
    if failed > 0 || passed == 0 {
        std::process::exit(1);
    }
}

/// Compares what a case gave with what it wants.
fn check(case: &Value, (outcome, calls): (Outcome, Option<Value>)) -> Result<(), String> {
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
    if let Some(mut calls) = calls {
        if let Some(want) = case.get("want_commits") {
            let got = calls
                .as_object_mut()
                .and_then(|c| c.remove("commits_made"))
                .unwrap_or(Value::Null);
            if &got != want {
                return Err(format!("want commits {want} got {got}"));
            }
        }
        let want = &case["want_calls"];
        if &calls != want {
            return Err(format!("want calls {want} got {calls}"));
        }
    }
    Ok(())
}

/// `case["policy"]` as the vectors write it, each field `None` when absent
/// (the host's default applies), so that every runner maps one parsed
/// form onto its host's retry policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PolicyFields {
    pub max_attempts: Option<u32>,
    pub deadline_us: Option<u64>,
    pub base_delay_us: Option<u64>,
    pub max_delay_us: Option<u64>,
    pub seed: Option<u64>,
    pub lock_after_conflict: Option<bool>,
}

/// Parses `case["policy"]` (absent: every field `None`).
pub fn policy_fields(case: &Value) -> Result<PolicyFields, String> {
    let policy = &case["policy"];
    let number = |key: &str| match policy.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or(format!("bad policy.{key}: {v}")),
    };
    let max_attempts = match number("max_attempts")? {
        None => None,
        Some(n) => Some(u32::try_from(n).map_err(|_| format!("bad policy.max_attempts: {n}"))?),
    };
    let lock_after_conflict = match policy.get("lock_after_conflict") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_bool()
                .ok_or(format!("bad policy.lock_after_conflict: {v}"))?,
        ),
    };
    Ok(PolicyFields {
        max_attempts,
        deadline_us: number("deadline_us")?,
        base_delay_us: number("base_delay_us")?,
        max_delay_us: number("max_delay_us")?,
        seed: number("seed")?,
        lock_after_conflict,
    })
}

/// A consume case's scripted store (`store.reads`, `store.commits`, the
/// virtual clock and entropy, `store.locks`), as the README describes it: the n-th call
/// answers the n-th step, or the last one once the list runs out; calls are
/// counted; the clock moves by `read_us` per read, `commit_us` per commit
/// and each backoff's delay. Each runner wraps it in its host's store type.
#[derive(Debug, Clone, Default)]
pub struct Script {
    reads: Vec<Value>,
    commits: Vec<Value>,
    calls: [u32; 3],
    read_us: u64,
    commit_us: u64,
    entropy: u64,
    clock_us: u64,
    slept_us: u64,
    /// Whether the case checks `slept_us` (so the calls name it).
    counts_sleep: bool,
    /// Each `commit-batch` call's claim and member projects.
    commits_made: Vec<Value>,
    /// `store.locks`: whether `read-locked` answers (true) or says the
    /// store takes no locks (false); absent, the calls do not name the
    /// locked reads.
    locks: Option<bool>,
    /// Steps of `reads` taken, by plain and locked reads alike.
    read_steps: usize,
    locked_reads: u32,
    unlocks: u32,
}

/// What a scripted commit answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    Committed,
    Conflict,
    ConflictAfterWait,
    StorageError,
    /// A batch member (its place among the members passed) failed to write.
    MemberFailed(u32),
}

impl Script {
    /// The script of `case["store"]`.
    pub fn of(case: &Value) -> Self {
        let store = &case["store"];
        let list = |key: &str| store[key].as_array().cloned().unwrap_or_default();
        let number = |key: &str| store[key].as_u64().unwrap_or(0);
        Script {
            reads: list("reads"),
            commits: list("commits"),
            read_us: number("read_us"),
            commit_us: number("commit_us"),
            entropy: number("entropy"),
            counts_sleep: case["want_calls"].get("slept_us").is_some(),
            locks: store["locks"].as_bool(),
            ..Script::default()
        }
    }

    /// The next read's snapshot (in the vectors' shape), or `None` for a
    /// scripted storage error.
    pub fn read(&mut self) -> Option<Value> {
        self.calls[0] += 1;
        self.next_read()
    }

    /// A locked read (`read-locked`): `None` when the store takes no
    /// locks, else the next read's step as [`read`](Self::read) gives it.
    pub fn read_locked(&mut self) -> Option<Option<Value>> {
        self.locked_reads += 1;
        if self.locks != Some(true) {
            return None;
        }
        Some(self.next_read())
    }

    /// Counts an `unlock` call.
    pub fn unlock(&mut self) {
        self.unlocks += 1;
    }

    /// The next step of `reads`, shared by plain and locked reads.
    fn next_read(&mut self) -> Option<Value> {
        let n = self.read_steps;
        self.read_steps += 1;
        self.clock_us += self.read_us;
        let step = self.reads.get(n).or(self.reads.last()).cloned();
        step.filter(|s| s.as_str() != Some("storage-error"))
    }

    /// The next commit's answer.
    pub fn commit(&mut self) -> Commit {
        let n = self.calls[1] as usize;
        self.calls[1] += 1;
        self.clock_us += self.commit_us;
        let step = self.commits.get(n).or(self.commits.last());
        match step.and_then(Value::as_str) {
            Some("committed") => Commit::Committed,
            Some("conflict") => Commit::Conflict,
            Some("conflict-after-wait") => Commit::ConflictAfterWait,
            _ => match step.and_then(|s| s["member_failed"].as_u64()) {
                Some(i) => Commit::MemberFailed(u32::try_from(i).unwrap_or(u32::MAX)),
                None => Commit::StorageError,
            },
        }
    }

    /// The next batch commit's answer, recording what it was passed: the
    /// claim in the vectors' shape and each member's project.
    pub fn commit_batch(&mut self, claim: Value, members: Vec<String>) -> Commit {
        self.commits_made
            .push(serde_json::json!({"claim": claim, "members": members}));
        self.commit()
    }

    /// Counts a backoff and moves the clock by its delay (never waits).
    pub fn backoff(&mut self, delay_us: u64) {
        self.calls[2] += 1;
        self.clock_us += delay_us;
        self.slept_us += delay_us;
    }

    /// The virtual clock.
    pub fn now_us(&self) -> u64 {
        self.clock_us
    }

    /// The case's entropy.
    pub fn entropy(&self) -> u64 {
        self.entropy
    }

    /// The calls made, as `want_calls` writes them (with `slept_us` when
    /// the case checks it, and `commits_made` for a batch case, which the
    /// loop compares with `want_commits`).
    pub fn calls(&self) -> Value {
        let [reads, commits, backoffs] = self.calls;
        let mut calls =
            serde_json::json!({"reads": reads, "commits": commits, "backoffs": backoffs});
        if self.counts_sleep {
            calls["slept_us"] = self.slept_us.into();
        }
        if self.locks.is_some() {
            calls["locked_reads"] = self.locked_reads.into();
            calls["unlocks"] = self.unlocks.into();
        }
        calls
    }

    /// [`calls`](Self::calls) plus the batch commits made.
    pub fn batch_calls(&self) -> Value {
        let mut calls = self.calls();
        calls["commits_made"] = Value::Array(self.commits_made.clone());
        calls
    }
}
