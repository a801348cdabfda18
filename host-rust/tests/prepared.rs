//! `Prepared`: decisions from path numbers through the component's
//! `prepared` resource give `evaluate`'s answers, report typed errors for
//! bad shapes, and recover from a guest fault.

mod common;

use common::{invalid, unknown_project};
use delimiter::*;

fn projects() -> Vec<Project> {
    vec![
        Project::root("org"),
        Project::child("dept", "org"),
        Project::child("team", "dept"),
    ]
}

fn limits() -> Limits {
    Limits {
        registered: vec![
            RegisteredLimit::new("servers", 4),
            RegisteredLimit::new("cores", UNLIMITED),
        ],
        project: vec![
            ProjectLimit::new("org", "servers", 10),
            ProjectLimit::new("dept", "servers", UNLIMITED),
        ],
    }
}

/// The path numbers of `team` (team, dept, org) for servers then cores.
const LOCAL: [i64; 2] = [3, 8];
const SUBTREE: [i64; 6] = [3, 8, 5, 8, 9, 20];
const GENERATIONS: [u64; 3] = [11, 22, 33];

/// The same numbers as a snapshot for `evaluate`.
fn snapshot(local: &[i64], subtree: &[i64]) -> Snapshot {
    snapshot_of(&["servers", "cores"], local, subtree)
}

/// `team`'s path numbers for `resources` as a snapshot for `evaluate`.
fn snapshot_of(resources: &[&str], local: &[i64], subtree: &[i64]) -> Snapshot {
    let path = ["team", "dept", "org"];
    let n = resources.len();
    Snapshot {
        projects: projects(),
        limits: limits(),
        usage: Usage::Path(PathUsage {
            local: resources
                .iter()
                .zip(local)
                .map(|(r, &u)| ResourceUsage::new(*r, u))
                .collect(),
            subtree: (0..path.len() * n)
                .map(|i| UsageEntry::new(path[i / n], resources[i % n], subtree[i]))
                .collect(),
        }),
        generations: path
            .iter()
            .zip(GENERATIONS)
            .map(|(p, g)| Generation::new(*p, g))
            .collect(),
    }
}

fn request(servers: i64, cores: i64) -> Request {
    Request::new(
        "team",
        vec![Delta::new("servers", servers), Delta::new("cores", cores)],
    )
}

#[test]
fn prepared_decisions_are_evaluates() {
    for model in [Model::Flat, Model::Nested] {
        let config = Config::new(model);
        let mut prepared = Prepared::new(&config, &projects(), &limits()).unwrap();
        let path = prepared.path("team").unwrap();
        assert_eq!(
            path.iter().map(|p| &**p).collect::<Vec<_>>(),
            ["team", "dept", "org"]
        );
        // Admitted (org constrains, dept is unlimited), refused by org,
        // refused by team, a release below zero, and an overflow.
        let cases = [
            (request(1, 2), LOCAL, SUBTREE),
            (request(2, 0), LOCAL, SUBTREE),
            (request(2, 0), [1, 8], [1, 8, 5, 8, 5, 20]),
            (request(0, -9), LOCAL, SUBTREE),
            (request(1, 0), LOCAL, [3, 8, 5, 8, i64::MAX, 20]),
        ];
        let mut outcomes = std::collections::BTreeSet::new();
        for (request, local, subtree) in cases {
            let want = evaluate(&config, &snapshot(&local, &subtree), &request);
            let got = prepared.evaluate(&request, &local, &subtree, &GENERATIONS);
            assert_eq!(got, want, "{model:?} {request:?}");
            outcomes.insert(match got {
                Ok(Decision::Admitted(claim)) => format!("admitted {}", claim.len()),
                Ok(Decision::Refused(violations)) => {
                    format!("refused by {}", violations[0].project)
                }
                Err(e) => format!("{e}"),
            });
        }
        // Flat never meets the ancestors, so it has fewer distinct outcomes.
        assert!(outcomes.len() >= 3, "{outcomes:?}");
    }
}

#[test]
fn an_admission_claims_path_ids_with_the_generations_passed() {
    let mut prepared = Prepared::new(&Config::default(), &projects(), &limits()).unwrap();
    let decision = prepared.evaluate(&request(1, 2), &LOCAL, &SUBTREE, &GENERATIONS);
    assert_eq!(
        decision.unwrap(),
        Decision::Admitted(vec![
            ClaimEntry::new("team", 11),
            ClaimEntry::new("org", 33)
        ])
    );
}

#[test]
fn wrong_lengths_and_bad_inputs_are_typed_errors() {
    let mut prepared = Prepared::new(&Config::default(), &projects(), &limits()).unwrap();
    let got = prepared.evaluate(&request(1, 0), &LOCAL, &SUBTREE[..5], &GENERATIONS);
    assert_eq!(
        got,
        Err(invalid(
            InvalidInput::ShapeMismatch(ShapeMismatchInfo {
                field: "subtree".into(),
                expected: 6,
                actual: 5
            }),
            "subtree has 5 entries where the request and its path need 6"
        ))
    );
    let stranger = Request::new("nobody", vec![Delta::new("servers", 1)]);
    assert_eq!(
        prepared.evaluate(&stranger, &[0], &[0], &[0]),
        Err(unknown_project("nobody"))
    );
    let cyclic = vec![Project::child("a", "b"), Project::child("b", "a")];
    assert_eq!(
        Prepared::new(&Config::default(), &cyclic, &limits()).unwrap_err(),
        invalid(
            InvalidInput::Cycle(ProjectRef {
                project: "a".into()
            }),
            r#"project "a" is its own ancestor"#
        )
    );
}

/// A prepared of the tree and limits on an instance capped at `bytes`.
fn capped(bytes: usize) -> Prepared {
    let small = Enforcer::new().with_memory_limit(bytes);
    Prepared::with_enforcer(small, &Config::default(), &projects(), &limits()).unwrap()
}

#[test]
fn a_guest_fault_is_reported_and_the_next_call_prepares_afresh() {
    let mut prepared = capped(2 << 20);
    // 16 MiB of numbers cannot be copied into a 2 MiB instance.
    let huge = vec![0i64; 2 << 20];
    match prepared.evaluate(&request(1, 0), &huge, &SUBTREE, &GENERATIONS) {
        Err(Error::GuestFault(fault)) => assert_eq!(fault.kind, FaultKind::MemoryLimit),
        other => panic!("{other:?}"),
    }
    let after = prepared.evaluate(&request(1, 2), &LOCAL, &SUBTREE, &GENERATIONS);
    assert!(after.unwrap().is_admitted());
}

#[test]
fn numbers_kept_from_an_instance_a_fault_dropped_are_not_used() {
    let mut prepared = capped(2 << 20);
    // Numbered in this order by this instance: ram, then disk (no limits,
    // so numbered for that request only; re-checks, which any usage passes).
    let ram_then_disk = Request::new("team", vec![Delta::new("ram", 0), Delta::new("disk", 0)]);
    let both = prepared.evaluate(&ram_then_disk, &[0, 0], &[0; 6], &GENERATIONS);
    assert!(both.unwrap().is_admitted());
    let huge = vec![0i64; 2 << 20];
    assert!(matches!(
        prepared.evaluate(&request(1, 0), &huge, &SUBTREE, &GENERATIONS),
        Err(Error::GuestFault(_))
    ));
    // The fresh instance has numbered neither; disk first.
    let disk = Request::new("team", vec![Delta::new("disk", 0)]);
    let got = prepared.evaluate(&disk, &[0], &[0; 3], &GENERATIONS);
    let want = evaluate(
        &Config::default(),
        &snapshot_of(&["disk"], &[0], &[0; 3]),
        &disk,
    );
    assert_eq!(got, want);
    assert!(want.unwrap().is_admitted());
}

/// Resource names fed from requests cannot exhaust a prepared: names no
/// limit mentions are kept for their request only, by the host and by the
/// instance. 20,000 distinct 1 kB names through a 4 MiB instance (which
/// kept them all and faulted with memory-limit before), then an innocent
/// call on the same, never re-prepared, instance.
#[test]
fn names_no_limit_mentions_do_not_accumulate() {
    let mut prepared = capped(4 << 20);
    for i in 0..20_000 {
        let name = format!("{i:01000}");
        let recheck = Request::new("team", vec![Delta::new(name, 0)]);
        let decision = prepared.evaluate(&recheck, &[0], &[0; 3], &GENERATIONS);
        assert!(decision.unwrap().is_admitted(), "name {i}");
    }
    assert!(prepared.is_live(), "no fault re-prepared the instance");
    let after = prepared.evaluate(&request(1, 2), &LOCAL, &SUBTREE, &GENERATIONS);
    assert!(after.unwrap().is_admitted());
}

#[test]
fn requests_with_several_problems_report_what_evaluate_reports() {
    for model in [Model::Flat, Model::Nested] {
        let config = Config::new(model);
        let mut prepared = Prepared::new(&config, &projects(), &limits()).unwrap();
        let cases: Vec<(&str, Vec<(&str, i64)>)> = vec![
            // Empty project before an empty resource.
            ("", vec![("", 1)]),
            // Empty resource before a resource twice.
            ("team", vec![("cores", 1), ("", 1), ("cores", 2)]),
            // A resource twice (the smallest) before an unknown project.
            (
                "nobody",
                vec![("servers", 1), ("ram", 1), ("servers", 1), ("ram", 2)],
            ),
            ("nobody", vec![("servers", 1)]),
            // Resources with no limit anywhere (numbered on first use):
            // the missing-limit rule, as `evaluate` applies it.
            ("team", vec![("ram", 5), ("servers", 1)]),
            ("team", vec![("disk", 1), ("ram", 2), ("ram", 3)]),
            ("team", vec![("servers", 1), ("disk", 0)]),
        ];
        for (project, deltas) in cases {
            let names: Vec<&str> = deltas.iter().map(|(r, _)| *r).collect();
            let request = Request::new(
                project,
                deltas.iter().map(|&(r, d)| Delta::new(r, d)).collect(),
            );
            let n = deltas.len();
            let local: Vec<i64> = (0..n as i64).collect();
            let subtree: Vec<i64> = (0..3 * n as i64).map(|i| i + 10).collect();
            let want = evaluate(&config, &snapshot_of(&names, &local, &subtree), &request);
            let got = prepared.evaluate(&request, &local, &subtree, &GENERATIONS);
            assert_eq!(got, want, "{model:?} {request:?}");
        }
    }
}

/// A prepared batch of members on `team` decides as `evaluate_batch` on
/// the snapshot its numbers come from: the second member is refused once
/// the first used org's room, a member with a short list gets its own
/// shape error and takes no room, and a release makes room again.
#[test]
fn a_prepared_batch_decides_as_evaluate_batch() {
    let config = Config::default();
    let mut prepared = Prepared::new(&config, &projects(), &limits()).unwrap();
    let member = |request: Request, subtree: &[i64]| PreparedMember {
        request,
        local: LOCAL.to_vec(),
        subtree: subtree.to_vec(),
        generations: GENERATIONS.to_vec(),
    };
    // org has 9 of 10 servers: the first takes the last one.
    let requests = [request(1, 0), request(1, 0), request(-1, 0), request(1, 0)];
    let mut members: Vec<PreparedMember> = requests
        .iter()
        .map(|r| member(r.clone(), &SUBTREE))
        .collect();
    members.insert(1, member(request(1, 0), &SUBTREE[..5]));
    let got = prepared.evaluate_batch(&members).unwrap();
    assert!(matches!(
        got[1],
        Err(Invalid {
            input: InvalidInput::ShapeMismatch(_),
            ..
        })
    ));
    let got: Vec<_> = got
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, r)| r)
        .collect();
    let want = Enforcer::new()
        .evaluate_batch(&config, &snapshot(&LOCAL, &SUBTREE), &requests)
        .unwrap();
    assert_eq!(got, want);
    let admitted: Vec<bool> = got
        .iter()
        .map(|r| matches!(r, Ok(Decision::Admitted(_))))
        .collect();
    assert_eq!(admitted, [true, false, true, true]);
}
