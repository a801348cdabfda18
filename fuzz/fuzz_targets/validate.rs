//! `validate` on arbitrary trees and limits: no panic, the same findings
//! twice and in any listing order, and every finding of an invalid kind is
//! the error a decision on the same tree and limits reports first.
#![no_main]

use delimiter_core::*;
use delimiter_fuzz::Scenario;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: Scenario| {
    let (c, snap) = (&s.config, &s.snapshot);
    let findings = validate(c, &snap.projects, &snap.limits);
    assert_eq!(findings, validate(c, &snap.projects, &snap.limits));
    let r = s.reversed();
    assert_eq!(
        findings,
        validate(&r.config, &r.snapshot.projects, &r.snapshot.limits)
    );
    // Prepared checks config, tree and limits as evaluate does: its error
    // is the first invalid finding.
    let first_invalid = findings.iter().find_map(|f| match f {
        Finding::Invalid(e) => Some(e.clone()),
        _ => None,
    });
    match (
        Prepared::new(c, &snap.projects, &snap.limits),
        first_invalid,
    ) {
        (Ok(_), None) => {}
        (Err(e), Some(first)) => assert_eq!(e, first),
        (got, want) => panic!("prepare {got:?} against validate's first {want:?}"),
    }
});
