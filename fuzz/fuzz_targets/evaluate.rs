//! `evaluate` on arbitrary snapshots: no panic, the same answer twice and
//! in any listing order, and an admission claims its project first.
#![no_main]

use delimiter_fuzz::{Scenario, check_evaluate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: Scenario| check_evaluate(&s));
