//! Shared pieces of Delimiter's benchmarks. Results go to `target/bench/*.json`;
//! `benches/report.py` turns them into BENCHMARKS.md.
