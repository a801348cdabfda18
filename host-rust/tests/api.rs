//! The public API end to end through the component: every question, error
//! mapping, model names, and error messages that stay those of the core.

mod common;

use common::{invalid, unknown_project};
use delimiter::*;

fn snapshot() -> Snapshot {
    Snapshot {
        projects: vec![Project::root("org"), Project::child("a", "org")],
        limits: Limits {
            registered: vec![
                RegisteredLimit::new("servers", 4),
                RegisteredLimit::new("cores", UNLIMITED),
            ],
            project: vec![ProjectLimit::new("org", "servers", 10)],
        },
        usage: Usage::Local(vec![
            UsageEntry::new("a", "servers", 3),
            UsageEntry::new("org", "servers", 5),
        ]),
        generations: vec![Generation::new("a", 1), Generation::new("org", 2)],
    }
}

#[test]
fn headroom_max_count_validate_and_oslo_go_through_the_component() {
    let config = Config::default();
    let rows = headroom(
        &config,
        &snapshot(),
        "a",
        &["servers".into(), "cores".into()],
    )
    .unwrap();
    assert_eq!(
        rows,
        vec![
            ResourceHeadroom {
                resource: "cores".into(),
                room: Room::Unlimited
            },
            // a: 4 - 3 = 1; org: 10 - 8 = 2.
            ResourceHeadroom {
                resource: "servers".into(),
                room: Room::Limited(1)
            },
        ]
    );
    let per_unit = |project: &str, resource: &str, delta: i64| {
        Request::new(project, vec![Delta::new(resource, delta)])
    };
    assert_eq!(
        max_count(&config, &snapshot(), &per_unit("org", "servers", 1)).unwrap(),
        Count::Units(2)
    );
    assert_eq!(
        max_count(&config, &snapshot(), &per_unit("a", "cores", 2)).unwrap(),
        Count::Unlimited
    );
    assert_eq!(
        max_count(&config, &snapshot(), &per_unit("a", "servers", -1)),
        Err(invalid(
            InvalidInput::NegativeDelta(Delta::new("servers", -1)),
            r#"per-unit delta -1 for "servers" is negative"#
        ))
    );

    let strict = Config::new(Model::StrictTwoLevel);
    let mut limits = snapshot().limits;
    limits.project.push(ProjectLimit::new("a", "servers", 11));
    assert_eq!(
        validate(&strict, &snapshot().projects, &limits).unwrap(),
        vec![Finding::ChildLimitExceedsParent(ChildLimitExcess {
            parent: "org".into(),
            child: "a".into(),
            resource: "servers".into(),
            parent_limit: 10,
            child_limit: 11,
        })]
    );
    assert!(
        validate(&config, &snapshot().projects, &snapshot().limits)
            .unwrap()
            .is_empty()
    );
    // A finding that is an input error carries the core's message too.
    let mut projects = snapshot().projects;
    projects.push(Project::root("a"));
    assert_eq!(
        validate(&config, &projects, &snapshot().limits).unwrap(),
        vec![Finding::Invalid(Invalid {
            input: InvalidInput::DuplicateProject(ProjectRef {
                project: "a".into()
            }),
            message: r#"project "a" appears more than once in the tree"#.into(),
        })]
    );

    let check = OsloRequest {
        project_id: Some("p".into()),
        deltas: vec![Delta::new("servers", 1)],
        registered: vec![ResourceLimit::new("servers", 10)],
        project: vec![ResourceLimit::new("servers", 5)],
        usage: vec![ResourceUsage::new("servers", 5)],
    };
    assert_eq!(
        oslo_check(&check).unwrap(),
        vec![OverLimitInfo {
            resource_name: "servers".into(),
            limit: 5,
            current_usage: 5,
            delta: 1
        }]
    );
}

#[test]
fn limit_of_is_the_override_else_the_registered_limit() {
    let limits = Limits {
        registered: vec![RegisteredLimit::new("servers", 5)],
        project: vec![ProjectLimit::new("a", "servers", UNLIMITED)],
    };
    assert_eq!(limits.limit_of("a", "servers"), Some(UNLIMITED));
    assert_eq!(limits.limit_of("b", "servers"), Some(5));
    assert_eq!(limits.limit_of("a", "cores"), None);
}

#[test]
fn model_names_are_read_by_the_component() {
    assert_eq!(parse_model("flat").unwrap(), Model::Flat);
    assert_eq!(
        parse_model("strict_two_level").unwrap(),
        Model::StrictTwoLevel
    );
    assert_eq!(
        parse_model("strict-two-level").unwrap(),
        Model::StrictTwoLevel
    );
    assert_eq!(
        parse_model("hierarchical"),
        Err(invalid(
            InvalidInput::UnknownModel(ModelName {
                model: "hierarchical".into()
            }),
            r#"unknown enforcement model "hierarchical" (expected flat, strict-two-level or nested)"#
        ))
    );
    for m in [Model::Flat, Model::StrictTwoLevel, Model::Nested] {
        assert_eq!(parse_model(m.as_str()).unwrap(), m);
    }

    // A whole config from names, checked in order: model, depth, rule.
    assert_eq!(
        parse_config("flat", 3, "unlimited").unwrap(),
        Config {
            model: Model::Flat,
            max_depth: 3,
            missing_limit: MissingLimit::Unlimited
        }
    );
    assert_eq!(
        parse_config("nested", 0, "none").unwrap_err().kind(),
        "invalid-config"
    );
    let bad_rule = parse_config("nested", 1, "none").unwrap_err();
    assert_eq!(
        bad_rule,
        invalid(
            InvalidInput::InvalidConfig(ConfigField {
                field: "missing-limit".into()
            }),
            "configuration value missing-limit is out of range"
        )
    );
    assert_eq!(
        parse_config("tree", 0, "none").unwrap_err().kind(),
        "unknown-model"
    );
}

#[test]
fn invalid_input_carries_its_fields() {
    let mut bad = snapshot();
    bad.usage = Usage::Local(vec![UsageEntry::new("a", "servers", -2)]);
    let err = evaluate(
        &Config::default(),
        &bad,
        &Request::new("a", vec![Delta::new("servers", 1)]),
    )
    .unwrap_err();
    assert_eq!(
        err,
        invalid(
            InvalidInput::NegativeUsage(NegativeUsageInfo {
                project: "a".into(),
                resource: "servers".into(),
                usage: -2
            }),
            r#"usage -2 of "servers" by project "a" is negative"#
        )
    );
    assert_eq!(err.kind(), "negative-usage");
    let Some(InvalidInput::NegativeUsage(info)) = err.invalid_input() else {
        unreachable!()
    };
    assert_eq!(
        (info.project.as_str(), info.resource.as_str()),
        ("a", "servers")
    );
    // Display is the core's message, nothing written by the host.
    assert_eq!(
        err.to_string(),
        r#"invalid input: usage -2 of "servers" by project "a" is negative"#
    );

    let deep = Config {
        max_depth: 0,
        ..Config::default()
    };
    let err = evaluate(&deep, &snapshot(), &Request::new("a", vec![])).unwrap_err();
    assert_eq!(
        err,
        invalid(
            InvalidInput::InvalidConfig(ConfigField {
                field: "max-depth".into()
            }),
            "configuration value max-depth is out of range"
        )
    );
}

/// `snapshot()` changed by `edit`.
fn with(edit: impl FnOnce(&mut Snapshot)) -> Snapshot {
    let mut s = snapshot();
    edit(&mut s);
    s
}

/// The error of a call that must fail.
fn fails<T: std::fmt::Debug>(result: Result<T, Error>) -> Error {
    result.expect_err("the call fails")
}

/// One real call giving each `InvalidInput` case (both forms of the cases
/// with an optional project, both wordings of `shape-mismatch`), with the
/// case's fields and the core's message.
fn every_invalid_input() -> Vec<(Error, InvalidInput, &'static str)> {
    use InvalidInput::*;
    let config = Config::default();
    let one = |project: &str| Request::new(project, vec![Delta::new("servers", 1)]);
    let eval = |snapshot: &Snapshot, request: &Request| fails(evaluate(&config, snapshot, request));
    let project = |p: &str| ProjectRef { project: p.into() };
    let usage_ref = |p: &str, r: &str| UsageRef {
        project: p.into(),
        resource: r.into(),
    };
    let mut prepared = Prepared::new(&config, &snapshot().projects, &snapshot().limits).unwrap();
    vec![
        (
            eval(&snapshot(), &one("")),
            EmptyId(EmptyIdInfo {
                what: IdKind::Project,
            }),
            "empty project id",
        ),
        (
            eval(
                &with(|s| s.projects.push(Project::child("x", ""))),
                &one("a"),
            ),
            EmptyId(EmptyIdInfo {
                what: IdKind::Parent,
            }),
            "empty parent id",
        ),
        (
            eval(&snapshot(), &Request::new("a", vec![Delta::new("", 1)])),
            EmptyId(EmptyIdInfo {
                what: IdKind::Resource,
            }),
            "empty resource id",
        ),
        (
            eval(&with(|s| s.projects.push(Project::root("a"))), &one("a")),
            DuplicateProject(project("a")),
            r#"project "a" appears more than once in the tree"#,
        ),
        (
            eval(
                &with(|s| s.projects.push(Project::child("x", "q"))),
                &one("a"),
            ),
            UnknownParent(UnknownParentInfo {
                project: "x".into(),
                parent: "q".into(),
            }),
            r#"project "x" names parent "q", which is not in the tree"#,
        ),
        (
            fails(Prepared::new(
                &config,
                &[Project::child("a", "b"), Project::child("b", "a")],
                &Limits::default(),
            )),
            Cycle(project("a")),
            r#"project "a" is its own ancestor"#,
        ),
        (
            fails(evaluate(
                &Config {
                    max_depth: 1,
                    ..config
                },
                &snapshot(),
                &one("a"),
            )),
            TooDeep(TooDeepInfo {
                project: "a".into(),
                depth: 2,
                max_depth: 1,
            }),
            r#"project "a" is at depth 2, deeper than the maximum of 1"#,
        ),
        (
            eval(&snapshot(), &one("p")),
            UnknownProject(project("p")),
            r#"project "p" is not in the tree"#,
        ),
        (
            eval(
                &with(|s| s.limits.project.push(ProjectLimit::new("a", "servers", -2))),
                &one("a"),
            ),
            InvalidLimit(InvalidLimitInfo {
                project: Some("a".into()),
                resource: "servers".into(),
                limit: -2,
            }),
            r#"limit -2 for "servers" of project "a" is below -1"#,
        ),
        (
            eval(
                &with(|s| s.limits.registered.push(RegisteredLimit::new("r", -5))),
                &one("a"),
            ),
            InvalidLimit(InvalidLimitInfo {
                project: None,
                resource: "r".into(),
                limit: -5,
            }),
            r#"limit -5 for "r" of the registered default is below -1"#,
        ),
        (
            eval(
                &with(|s| {
                    s.limits
                        .project
                        .push(ProjectLimit::new("org", "servers", 10))
                }),
                &one("a"),
            ),
            DuplicateLimit(LimitRef {
                project: Some("org".into()),
                resource: "servers".into(),
            }),
            r#"limit for "servers" of project "org" is given more than once"#,
        ),
        (
            eval(
                &with(|s| s.limits.registered.push(RegisteredLimit::new("servers", 4))),
                &one("a"),
            ),
            DuplicateLimit(LimitRef {
                project: None,
                resource: "servers".into(),
            }),
            r#"limit for "servers" of the registered default is given more than once"#,
        ),
        (
            eval(
                &with(|s| s.usage = Usage::Local(vec![UsageEntry::new("a", "servers", -1)])),
                &one("a"),
            ),
            NegativeUsage(NegativeUsageInfo {
                project: "a".into(),
                resource: "servers".into(),
                usage: -1,
            }),
            r#"usage -1 of "servers" by project "a" is negative"#,
        ),
        (
            eval(
                &with(|s| {
                    s.usage = Usage::Local(vec![
                        UsageEntry::new("a", "servers", 1),
                        UsageEntry::new("a", "servers", 2),
                    ])
                }),
                &one("a"),
            ),
            DuplicateUsage(usage_ref("a", "servers")),
            r#"usage of "servers" by project "a" is given more than once"#,
        ),
        (
            // a's subtree (2) cannot be smaller than its own usage (3).
            eval(
                &with(|s| {
                    s.usage = Usage::Path(PathUsage {
                        local: vec![ResourceUsage::new("servers", 3)],
                        subtree: vec![
                            UsageEntry::new("a", "servers", 2),
                            UsageEntry::new("org", "servers", 8),
                        ],
                    })
                }),
                &one("a"),
            ),
            InconsistentUsage(usage_ref("a", "servers")),
            r#"path usage of "servers" at project "a" is inconsistent with the rest of the path"#,
        ),
        (
            eval(
                &with(|s| s.generations.push(Generation::new("a", 5))),
                &one("a"),
            ),
            DuplicateGeneration(project("a")),
            r#"generation of project "a" is given more than once"#,
        ),
        (
            eval(&with(|s| s.generations.truncate(1)), &one("a")),
            MissingGeneration(project("org")),
            r#"project "org" must be in the claim but no generation was read for it"#,
        ),
        (
            eval(
                &snapshot(),
                &Request::new(
                    "a",
                    vec![Delta::new("servers", 1), Delta::new("servers", 1)],
                ),
            ),
            DuplicateResource(ResourceRef {
                resource: "servers".into(),
            }),
            r#"resource "servers" appears more than once in the request"#,
        ),
        (
            eval(
                &snapshot(),
                &Request::new("a", vec![Delta::new("servers", -4)]),
            ),
            ReleaseBelowZero(ReleaseInfo {
                project: "a".into(),
                resource: "servers".into(),
                usage: 3,
                delta: -4,
            }),
            r#"releasing 4 of "servers" from project "a" would take usage 3 below zero"#,
        ),
        (
            fails(max_count(
                &config,
                &snapshot(),
                &Request::new("a", vec![Delta::new("servers", -1)]),
            )),
            NegativeDelta(Delta::new("servers", -1)),
            r#"per-unit delta -1 for "servers" is negative"#,
        ),
        (
            // a's usage plus the delta.
            eval(
                &with(|s| s.usage = Usage::Local(vec![UsageEntry::new("a", "servers", i64::MAX)])),
                &one("a"),
            ),
            Overflow(usage_ref("a", "servers")),
            r#"usage of "servers" at project "a" does not fit in 64 bits"#,
        ),
        (
            fails(parse_model("m")),
            UnknownModel(ModelName { model: "m".into() }),
            r#"unknown enforcement model "m" (expected flat, strict-two-level or nested)"#,
        ),
        (
            fails(parse_config("nested", 0, "zero")),
            InvalidConfig(ConfigField {
                field: "max-depth".into(),
            }),
            "configuration value max-depth is out of range",
        ),
        (
            fails(oslo_check(&OsloRequest {
                project_id: Some("p".into()),
                deltas: vec![Delta::new("r", 1)],
                registered: vec![ResourceLimit::new("r", 10)],
                project: vec![],
                usage: vec![],
            })),
            MissingUsage(ResourceRef {
                resource: "r".into(),
            }),
            "unable to get current usage for r",
        ),
        (
            fails(prepared.evaluate(&one("a"), &[3], &[3, 8, 0], &[1, 2])),
            ShapeMismatch(ShapeMismatchInfo {
                field: "subtree".into(),
                expected: 2,
                actual: 3,
            }),
            "subtree has 3 entries where the request and its path need 2",
        ),
        (
            fails(prepared.evaluate_numbers(99, &[], &[], &[], &[])),
            ShapeMismatch(ShapeMismatchInfo {
                field: "node".into(),
                expected: 2,
                actual: 99,
            }),
            "node number 99 was never given by this prepared (it gave 2)",
        ),
    ]
}

#[test]
fn error_messages_are_the_cores() {
    let all = every_invalid_input();
    let kinds: std::collections::BTreeSet<&str> =
        all.iter().map(|(_, input, _)| input.kind()).collect();
    assert_eq!(kinds.len(), 21, "every WIT error case is covered");
    for (err, input, message) in all {
        assert_eq!(err, invalid(input, message));
        assert_eq!(err.to_string(), format!("invalid input: {message}"));
    }
    // The same text for the same input, whichever function reports it.
    assert_eq!(
        consume(
            &Config::default(),
            &RetryPolicy::default(),
            &mut MemoryStore::new(snapshot().projects, snapshot().limits),
            &Request::new("p", vec![Delta::new("servers", 1)]),
        ),
        Err(unknown_project("p"))
    );
}

#[test]
fn an_enforcer_is_reusable_and_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Enforcer>();
    let mut enforcer = Enforcer::new();
    let request = Request::new("a", vec![Delta::new("servers", 1)]);
    for _ in 0..3 {
        assert!(
            enforcer
                .evaluate(&Config::default(), &snapshot(), &request)
                .unwrap()
                .is_admitted()
        );
    }
    assert!(enforcer.last_fuel_used().unwrap() > 0);
    assert!(enforcer.memory_high_water() > 0);
    assert!(component_size() > 0);
    assert!(load_info().is_ok());
}
