//! Inputs that fuzzing found to give a wrong answer, an answer that
//! depended on input order, or time beyond linear: each kept as a test
//! of the whole kind of fault it stood for.

use delimiter_core::*;

fn entry(project: &str, resource: &str, usage: i64) -> UsageEntry {
    UsageEntry {
        project: project.into(),
        resource: resource.into(),
        usage,
    }
}

fn generation(project: &str, generation: u64) -> Generation {
    Generation {
        project: project.into(),
        generation,
    }
}

fn root_with_two_children() -> Vec<Project> {
    vec![
        Project::root("root"),
        Project::child("a", "root"),
        Project::child("b", "root"),
    ]
}

/// Flat counts the project's own usage only: a subtree sum it never reads
/// (root's, here i64::MAX + 1) must not fail the decision.
#[test]
fn flat_ignores_a_subtree_sum_that_would_overflow() {
    let snapshot = Snapshot {
        projects: root_with_two_children(),
        limits: Limits {
            registered: vec![RegisteredLimit {
                resource: "r".into(),
                limit: 10,
            }],
            project: vec![],
        },
        usage: Usage::Local(vec![entry("a", "r", 1), entry("b", "r", i64::MAX)]),
        generations: vec![generation("a", 1)],
    };
    let request = Request::new("a", vec![Delta::new("r", 1)]);
    let flat = Config::new(Model::Flat);
    assert_eq!(
        evaluate(&flat, &snapshot, &request).unwrap(),
        Decision::Admitted {
            claim: vec![ClaimEntry {
                project: "a".into(),
                generation: 1
            }]
        }
    );
    // The same question under flat through headroom and max_count.
    let room = headroom(&flat, &snapshot, "a", &["r".to_string()]).unwrap();
    assert_eq!(room[0].room, Room::Limited(9));
    assert_eq!(
        max_count(&flat, &snapshot, "a", &request.deltas).unwrap(),
        Count::Units(9)
    );
    // Nested does read root's sum: there it is overflow.
    let nested = Config::new(Model::Nested);
    assert!(matches!(
        evaluate(&nested, &snapshot, &request),
        Err(Error::Overflow { .. })
    ));
}

/// Two resources whose sums both overflow at root: the error names the
/// smallest resource name, whatever order the request lists them in.
#[test]
fn an_overflow_names_the_same_resource_in_any_listing_order() {
    let max = i64::MAX;
    let snapshot = Snapshot {
        projects: root_with_two_children(),
        limits: Limits::default(),
        usage: Usage::Local(vec![
            entry("a", "r", max),
            entry("a", "s", max),
            entry("b", "r", max),
            entry("b", "s", max),
        ]),
        generations: vec![],
    };
    let config = Config {
        missing_limit: MissingLimit::Unlimited,
        ..Config::new(Model::Nested)
    };
    for deltas in [
        vec![Delta::new("r", 0), Delta::new("s", 0)],
        vec![Delta::new("s", 0), Delta::new("r", 0)],
    ] {
        let request = Request::new("root", deltas);
        assert_eq!(
            evaluate(&config, &snapshot, &request),
            Err(Error::Overflow {
                project: "root".into(),
                resource: "r".into()
            }),
            "{request:?}"
        );
    }
}

/// A chain 30,000 deep with usage on every node, asked at the root: the
/// root's sum is every node's usage. Summing walked each entry up to the
/// path (entries x depth, about 2 s here, and out of fuel in the
/// component); it is now linear in the tree. Correctness is asserted here;
/// the time is the scale bench's `deep-chain-usage-sum` row.
#[test]
fn a_deep_chain_sums_every_node_once() {
    let depth = 30_000;
    let mut projects = vec![Project::root("n0")];
    projects.extend((1..depth).map(|i| Project::child(format!("n{i}"), format!("n{}", i - 1))));
    let usage = (0..depth)
        .map(|i| entry(&format!("n{i}"), "r", 1))
        .collect();
    let snapshot = Snapshot {
        projects,
        limits: Limits {
            registered: vec![RegisteredLimit {
                resource: "r".into(),
                limit: depth as i64,
            }],
            project: vec![],
        },
        usage: Usage::Local(usage),
        generations: vec![generation("n0", 1)],
    };
    let config = Config {
        max_depth: depth as u32,
        ..Config::new(Model::Nested)
    };
    let at_root = Request::new("n0", vec![Delta::new("r", 1)]);
    let Decision::Refused { violations } = evaluate(&config, &snapshot, &at_root).unwrap() else {
        panic!("the root is full")
    };
    assert_eq!(
        (violations[0].usage, violations[0].limit),
        (depth as i64, depth as i64)
    );
    // Half way down: U(n15000) counts the 15,000 nodes from there down.
    let room = headroom(&config, &snapshot, "n15000", &["r".to_string()]).unwrap();
    assert_eq!(room[0].room, Room::Limited(0), "the root is full");
}

/// max_count is the admission boundary: n units it counts must be admitted,
/// so it also stops where usage plus n deltas would leave the 64-bit range
/// at a node the model checks, unlimited ones included (where evaluate
/// answers overflow). Found by the `questions` fuzz target: 1 unit was
/// counted while evaluate said overflow at d.
#[test]
fn max_count_stops_where_evaluate_would_overflow() {
    let max = i64::MAX;
    let snapshot = Snapshot {
        projects: vec![Project::root("d"), Project::child("root", "d")],
        limits: Limits {
            registered: vec![RegisteredLimit {
                resource: "r".into(),
                limit: max,
            }],
            project: vec![],
        },
        usage: Usage::Local(vec![entry("d", "s", max - 1)]),
        generations: vec![generation("d", 1), generation("root", 1)],
    };
    let config = Config {
        missing_limit: MissingLimit::Unlimited,
        ..Config::new(Model::StrictTwoLevel)
    };
    let per_unit = vec![Delta::new("r", max), Delta::new("s", max - 1)];
    let count = max_count(&config, &snapshot, "root", &per_unit).unwrap();
    assert_eq!(count, Count::Units(0));
    let one = Request::new("root", per_unit);
    assert!(matches!(
        evaluate(&config, &snapshot, &one),
        Err(Error::Overflow { .. })
    ));
}

/// Found by the consume target: past attempt 64 the doubling factor no
/// longer fits in 64 bits; the cap must saturate to `max_delay_us`, not
/// stop at base * 2^63.
#[test]
fn backoff_cap_saturates_past_attempt_64() {
    let policy = RetryPolicy {
        max_attempts: 1000,
        deadline_us: u64::MAX,
        base_delay_us: 1,
        max_delay_us: u64::MAX,
        seed: Some(0),
        lock_after_conflict: false,
    };
    for attempt in [64, 65, 66, 200, u32::MAX] {
        let delay = policy.delay_us(7, attempt);
        let cap = if attempt <= 64 {
            1u64 << (attempt - 1)
        } else {
            u64::MAX
        };
        assert!(
            delay >= cap / 2 && delay <= cap,
            "attempt {attempt}: {delay}"
        );
    }
}
