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
    if let Some(calls) = calls {
        let want = &case["want_calls"];
        if &calls != want {
            return Err(format!("want calls {want} got {calls}"));
        }
    }
    Ok(())
}

/// A consume case's scripted store (`store.reads`, `store.commits`), as the
/// README describes it: the n-th call answers the n-th step, or the last
/// one once the list runs out; calls are counted. Each runner wraps it in
/// its host's store type.
#[derive(Debug, Clone, Default)]
pub struct Script {
    reads: Vec<Value>,
    commits: Vec<String>,
    calls: [u32; 3],
}

/// What a scripted commit answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    Committed,
    Conflict,
    StorageError,
}

impl Script {
    /// The script of `case["store"]`.
    pub fn of(case: &Value) -> Self {
        let store = &case["store"];
        let list = |key: &str| store[key].as_array().cloned().unwrap_or_default();
        Script {
            reads: list("reads"),
            commits: list("commits")
                .iter()
                .filter_map(|c| c.as_str().map(str::to_string))
                .collect(),
            calls: [0; 3],
        }
    }

    /// The next read's snapshot (in the vectors' shape), or `None` for a
    /// scripted storage error.
    pub fn read(&mut self) -> Option<Value> {
        let n = self.calls[0] as usize;
        self.calls[0] += 1;
        let step = self.reads.get(n).or(self.reads.last()).cloned();
        step.filter(|s| s.as_str() != Some("storage-error"))
    }

    /// The next commit's answer.
    pub fn commit(&mut self) -> Commit {
        let n = self.calls[1] as usize;
        self.calls[1] += 1;
        match self
            .commits
            .get(n)
            .or(self.commits.last())
            .map(String::as_str)
        {
            Some("committed") => Commit::Committed,
            Some("conflict") => Commit::Conflict,
            _ => Commit::StorageError,
        }
    }

    /// Counts a backoff (never waits).
    pub fn backoff(&mut self) {
        self.calls[2] += 1;
    }

    /// The calls made, as `want_calls` writes them.
    pub fn calls(&self) -> Value {
        let [reads, commits, backoffs] = self.calls;
        serde_json::json!({"reads": reads, "commits": commits, "backoffs": backoffs})
    }
}
