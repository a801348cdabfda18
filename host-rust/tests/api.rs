//! The public API end to end through the component: every question, error
//! mapping, model names, and error messages that stay those of the core.

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
    assert_eq!(
        max_count(&config, &snapshot(), "org", &[Delta::new("servers", 1)]).unwrap(),
        Count::Units(2)
    );
    assert_eq!(
        max_count(&config, &snapshot(), "a", &[Delta::new("cores", 2)]).unwrap(),
        Count::Unlimited
    );
    assert_eq!(
        max_count(&config, &snapshot(), "a", &[Delta::new("servers", -1)]),
        Err(Error::Invalid(InvalidInput::NegativeDelta {
            resource: "servers".into(),
            delta: -1
        }))
    );

    let strict = Config::new(Model::StrictTwoLevel);
    let mut limits = snapshot().limits;
    limits.project.push(ProjectLimit::new("a", "servers", 11));
    assert_eq!(
        validate(&strict, &snapshot().projects, &limits).unwrap(),
        vec![Finding::ChildLimitExceedsParent {
            parent: "org".into(),
            child: "a".into(),
            resource: "servers".into(),
            parent_limit: 10,
            child_limit: 11,
        }]
    );
    assert!(
        validate(&config, &snapshot().projects, &snapshot().limits)
            .unwrap()
            .is_empty()
    );

    let check = OsloCheck {
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
fn model_names_are_read_by_the_component() {
    assert_eq!(Model::parse("flat").unwrap(), Model::Flat);
    assert_eq!(
        "strict_two_level".parse::<Model>().unwrap(),
        Model::StrictTwoLevel
    );
    assert_eq!(
        Model::parse("strict-two-level").unwrap(),
        Model::StrictTwoLevel
    );
    assert_eq!(
        Model::parse("hierarchical"),
        Err(Error::Invalid(InvalidInput::UnknownModel {
            name: "hierarchical".into()
        }))
    );
    for m in [Model::Flat, Model::StrictTwoLevel, Model::Nested] {
        assert_eq!(Model::parse(m.as_str()).unwrap(), m);
    }
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
        Error::Invalid(InvalidInput::NegativeUsage {
            project: "a".into(),
            resource: "servers".into(),
            usage: -2
        })
    );
    assert_eq!(err.kind(), "negative-usage");
    let Error::Invalid(input) = &err else {
        unreachable!()
    };
    assert_eq!(
        (input.project(), input.resource()),
        (Some("a"), Some("servers"))
    );

    let deep = Config {
        max_depth: 0,
        ..Config::default()
    };
    let err = evaluate(&deep, &snapshot(), &Request::new("a", vec![])).unwrap_err();
    assert_eq!(
        err,
        Error::Invalid(InvalidInput::InvalidConfig {
            field: "max-depth".into()
        })
    );
}

/// One value of every `InvalidInput` variant.
fn every_invalid_input() -> Vec<InvalidInput> {
    use InvalidInput::*;
    let (p, r) = (|| "p".to_string(), || "r".to_string());
    vec![
        EmptyId {
            what: IdKind::Project,
        },
        EmptyId {
            what: IdKind::Parent,
        },
        EmptyId {
            what: IdKind::Resource,
        },
        DuplicateProject { project: p() },
        UnknownParent {
            project: p(),
            parent: "q".into(),
        },
        Cycle { project: p() },
        TooDeep {
            project: p(),
            depth: 3,
            max_depth: 2,
        },
        UnknownProject { project: p() },
        InvalidLimit {
            project: Some(p()),
            resource: r(),
            limit: -2,
        },
        InvalidLimit {
            project: None,
            resource: r(),
            limit: -5,
        },
        DuplicateLimit {
            project: Some(p()),
            resource: r(),
        },
        DuplicateLimit {
            project: None,
            resource: r(),
        },
        NegativeUsage {
            project: p(),
            resource: r(),
            usage: -1,
        },
        DuplicateUsage {
            project: p(),
            resource: r(),
        },
        InconsistentUsage {
            project: p(),
            resource: r(),
        },
        DuplicateGeneration { project: p() },
        MissingGeneration { project: p() },
        DuplicateResource { resource: r() },
        ReleaseBelowZero {
            project: p(),
            resource: r(),
            usage: 1,
            delta: -2,
        },
        NegativeDelta {
            resource: r(),
            delta: -1,
        },
        Overflow {
            project: p(),
            resource: r(),
        },
        UnknownModel { name: "m".into() },
        InvalidConfig {
            field: "max-depth".into(),
        },
        MissingUsage { resource: r() },
        ShapeMismatch {
            field: "subtree".into(),
            expected: 6,
            actual: 5,
        },
    ]
}

#[test]
fn error_messages_are_the_cores() {
    let mut enforcer = Enforcer::new();
    let all = every_invalid_input();
    let kinds: std::collections::BTreeSet<&str> = all.iter().map(InvalidInput::kind).collect();
    assert_eq!(kinds.len(), 21, "every WIT error case is covered");
    for input in all {
        let core_text = enforcer.describe(&input).unwrap();
        assert_eq!(input.to_string(), core_text, "{input:?}");
    }
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
    assert!(load_time().is_ok());
}
