//! `cargo test` runs the contention benchmark once on its tiny size
//! (DELIMITER_BENCH_TINY=1), so that it cannot rot. Nothing here depends on
//! timing: the run fails only if a worker errors or generation-cas
//! oversubscribes or loses an update. Without the database variables the
//! runner prints that each database is skipped.

use std::process::Command;

#[test]
fn contention_runs_tiny() {
    let out = Command::new(env!("CARGO_BIN_EXE_contention"))
        .env("DELIMITER_BENCH_TINY", "1")
        .env("DELIMITER_BENCH_DIR", "target/bench-tiny")
        .env_remove("DELIMITER_BENCH_UNGUARDED")
        .output()
        .expect("the contention runner starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "contention failed:\n{stdout}\n{stderr}"
    );
    // Per database: either skipped, or one line per strategy and worker count.
    for db in ["postgres", "mariadb"] {
        assert!(
            stdout.contains(&format!("contention: {db} skipped"))
                || stdout.contains(&format!("contention: {db} generation-cas 4:")),
            "{stdout}"
        );
    }
}
