//! Property tests: the core against a deliberately naive reference model on
//! random trees and requests.
//!
//! The reference recomputes everything from the definitions in the spec
//! (subtree usage by scanning every project's ancestry, limits by linear
//! search) with no indexing, sorting tricks or shared code, so that the two
//! implementations can only agree by both being right.

use delimiter_core::*;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

const RESOURCES: [&str; 3] = ["cores", "ram", "servers"];

/// At least 1,000 cases per property unless PROPTEST_CASES asks for more.
fn cases() -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000u32)
        .max(1000);
    ProptestConfig {
        cases: n,
        ..ProptestConfig::default()
    }
}

#[derive(Debug, Clone)]
struct Scenario {
    config: Config,
    snapshot: Snapshot,
    request: Request,
    /// Seed for shuffling inputs in the order-independence property.
    shuffle_seed: u64,
}

fn model() -> impl Strategy<Value = Model> {
    prop_oneof![
        Just(Model::Flat),
        Just(Model::StrictTwoLevel),
        Just(Model::Nested)
    ]
}

/// Project `i` is named `p{i}`; its parent is an earlier project (or none),
/// so the tree is well-formed. Under strict-two-level parents are roots.
fn scenario() -> impl Strategy<Value = Scenario> {
    (model(), 1usize..10, any::<bool>()).prop_flat_map(|(model, n, missing_unlimited)| {
        let parents = proptest::collection::vec(any::<prop::sample::Index>(), n);
        let roots = proptest::collection::vec(any::<bool>(), n);
        let registered = proptest::collection::vec(prop::option::of(-1i64..12), RESOURCES.len());
        let project_limits =
            proptest::collection::vec(prop::option::of(-1i64..12), n * RESOURCES.len());
        let usage = proptest::collection::vec(prop::option::of(0i64..7), n * RESOURCES.len());
        let deltas = proptest::collection::vec(prop::option::of(-3i64..6), RESOURCES.len());
        let generations = proptest::collection::vec(0u64..1000, n);
        (
            parents,
            roots,
            registered,
            project_limits,
            usage,
            deltas,
            generations,
            0..n,
            any::<u64>(),
        )
            .prop_map(
                move |(
                    parents,
                    roots,
                    registered,
                    plimits,
                    usage,
                    deltas,
                    generations,
                    who,
                    shuffle_seed,
                )| {
                    let mut parent_of: Vec<Option<usize>> = Vec::with_capacity(n);
                    for i in 0..n {
                        let parent = if i == 0 || roots[i] {
                            None
                        } else if model == Model::StrictTwoLevel {
                            let candidates: Vec<usize> =
                                (0..i).filter(|&j| parent_of[j].is_none()).collect();
                            Some(candidates[parents[i].index(candidates.len())])
                        } else {
                            Some(parents[i].index(i))
                        };
                        parent_of.push(parent);
                    }
                    let name = |i: usize| format!("p{i}");
                    let projects = (0..n)
                        .map(|i| Project {
                            id: name(i),
                            parent: parent_of[i].map(name),
                        })
                        .collect();
                    let registered = registered
                        .iter()
                        .zip(RESOURCES)
                        .filter_map(|(l, r)| {
                            l.map(|limit| RegisteredLimit {
                                resource: r.into(),
                                limit,
                            })
                        })
                        .collect();
                    let project = plimits
                        .iter()
                        .enumerate()
                        .filter_map(|(k, l)| {
                            l.map(|limit| ProjectLimit {
                                project: name(k / RESOURCES.len()),
                                resource: RESOURCES[k % RESOURCES.len()].into(),
                                limit,
                            })
                        })
                        .collect();
                    let usage = usage
                        .iter()
                        .enumerate()
                        .filter_map(|(k, u)| {
                            u.map(|usage| UsageEntry {
                                project: name(k / RESOURCES.len()),
                                resource: RESOURCES[k % RESOURCES.len()].into(),
                                usage,
                            })
                        })
                        .collect();
                    let deltas = deltas
                        .iter()
                        .zip(RESOURCES)
                        .filter_map(|(d, r)| d.map(|d| Delta::new(r, d)))
                        .collect();
                    let generations = generations
                        .iter()
                        .enumerate()
                        .map(|(i, &g)| Generation {
                            project: name(i),
                            generation: g,
                        })
                        .collect();
                    let mut config = Config::new(model);
                    if missing_unlimited {
                        config.missing_limit = MissingLimit::Unlimited;
                    }
                    Scenario {
                        config,
                        snapshot: Snapshot {
                            projects,
                            limits: Limits {
                                registered,
                                project,
                            },
                            usage: Usage::Local(usage),
                            generations,
                        },
                        request: Request::new(name(who), deltas),
                        shuffle_seed,
                    }
                },
            )
    })
}

// ---- the naive reference model ----------------------------------------------

fn parent_of<'a>(s: &'a Snapshot, id: &str) -> Option<&'a str> {
    s.projects
        .iter()
        .find(|p| p.id == id)
        .and_then(|p| p.parent.as_deref())
}

/// `id` and its ancestors, from `id` up.
fn ancestry(s: &Snapshot, id: &str) -> Vec<String> {
    let mut out = vec![id.to_string()];
    while let Some(p) = parent_of(s, out.last().unwrap()) {
        out.push(p.to_string());
    }
    out
}

fn local(s: &Snapshot, project: &str, resource: &str) -> i64 {
    let Usage::Local(entries) = &s.usage else {
        unreachable!("scenarios use local usage")
    };
    entries
        .iter()
        .filter(|e| e.project == project && e.resource == resource)
        .map(|e| e.usage)
        .sum()
}

fn subtree(s: &Snapshot, node: &str, resource: &str) -> i64 {
    s.projects
        .iter()
        .filter(|q| ancestry(s, &q.id).iter().any(|a| a == node))
        .map(|q| local(s, &q.id, resource))
        .sum()
}

/// None = unlimited.
fn limit(s: &Snapshot, config: &Config, project: &str, resource: &str) -> Option<i64> {
    let raw = s
        .limits
        .project
        .iter()
        .find(|l| l.project == project && l.resource == resource)
        .map(|l| l.limit)
        .or_else(|| {
            s.limits
                .registered
                .iter()
                .find(|l| l.resource == resource)
                .map(|l| l.limit)
        });
    match raw {
        Some(-1) => None,
        Some(l) => Some(l),
        None if config.missing_limit == MissingLimit::Zero => Some(0),
        None => None,
    }
}

fn checked_nodes(s: &Snapshot, config: &Config, project: &str) -> Vec<String> {
    match config.model {
        Model::Flat => vec![project.to_string()],
        _ => ancestry(s, project),
    }
}

fn counted(s: &Snapshot, config: &Config, node: &str, resource: &str) -> i64 {
    match config.model {
        Model::Flat => local(s, node, resource),
        _ => subtree(s, node, resource),
    }
}

fn reference(sc: &Scenario) -> Result<Decision, &'static str> {
    let (s, c, req) = (&sc.snapshot, &sc.config, &sc.request);
    let mut deltas = req.deltas.clone();
    deltas.sort_by(|a, b| a.resource.cmp(&b.resource));
    let nodes = checked_nodes(s, c, &req.project);
    let mut violations = Vec::new();
    let mut constraining = vec![false; nodes.len()];
    for d in &deltas {
        if d.delta < 0 && local(s, &req.project, &d.resource) + d.delta < 0 {
            return Err("release-below-zero");
        }
        if d.delta <= 0 {
            continue;
        }
        for (k, node) in nodes.iter().enumerate() {
            if let Some(l) = limit(s, c, node, &d.resource) {
                constraining[k] = true;
                let usage = counted(s, c, node, &d.resource);
                if usage + d.delta > l {
                    violations.push(Violation {
                        project: node.clone(),
                        resource: d.resource.clone(),
                        limit: l,
                        usage,
                        delta: d.delta,
                    });
                }
            }
        }
    }
    if !violations.is_empty() {
        return Ok(Decision::Refused { violations });
    }
    let claim = if deltas.iter().any(|d| d.delta > 0) {
        nodes
            .iter()
            .enumerate()
            .filter(|&(k, _)| k == 0 || constraining[k])
            .map(|(_, n)| ClaimEntry {
                project: n.clone(),
                generation: s
                    .generations
                    .iter()
                    .find(|g| &g.project == n)
                    .unwrap()
                    .generation,
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(Decision::Admitted { claim })
}

// ---- helpers --------------------------------------------------------------

fn shuffle<T>(items: &mut [T], seed: &mut u64) {
    for i in (1..items.len()).rev() {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = ((*seed >> 33) as usize) % (i + 1);
        items.swap(i, j);
    }
}

fn shuffled(sc: &Scenario) -> Scenario {
    let mut out = sc.clone();
    let mut seed = sc.shuffle_seed;
    shuffle(&mut out.snapshot.projects, &mut seed);
    shuffle(&mut out.snapshot.limits.registered, &mut seed);
    shuffle(&mut out.snapshot.limits.project, &mut seed);
    match &mut out.snapshot.usage {
        Usage::Local(entries) => shuffle(entries, &mut seed),
        Usage::Path(path) => {
            shuffle(&mut path.local, &mut seed);
            shuffle(&mut path.subtree, &mut seed);
        }
    }
    shuffle(&mut out.snapshot.generations, &mut seed);
    shuffle(&mut out.request.deltas, &mut seed);
    out
}

/// The same snapshot with usage pre-summed along the request's path.
fn path_form(sc: &Scenario) -> Scenario {
    let mut out = sc.clone();
    let s = &sc.snapshot;
    let path = ancestry(s, &sc.request.project);
    let local_usage = RESOURCES
        .iter()
        .map(|r| ResourceUsage {
            resource: r.to_string(),
            usage: local(s, &sc.request.project, r),
        })
        .collect();
    let subtree_usage = path
        .iter()
        .flat_map(|a| {
            RESOURCES.iter().map(move |r| UsageEntry {
                project: a.clone(),
                resource: r.to_string(),
                usage: subtree(s, a, r),
            })
        })
        .collect();
    out.snapshot.usage = Usage::Path(PathUsage {
        local: local_usage,
        subtree: subtree_usage,
    });
    out
}

// ---- input with problems ------------------------------------------------------

/// One addition to a well-formed scenario, which may make it invalid in any
/// of the ways the core checks for: (what to add, which project, which
/// resource, which second project, a value).
type Mess = (
    u8,
    prop::sample::Index,
    prop::sample::Index,
    prop::sample::Index,
    i64,
);

fn messes() -> impl Strategy<Value = (bool, Vec<Mess>)> {
    (
        any::<bool>(),
        proptest::collection::vec(
            (
                0u8..8,
                any::<prop::sample::Index>(),
                any::<prop::sample::Index>(),
                any::<prop::sample::Index>(),
                -3i64..12,
            ),
            0..5,
        ),
    )
}

/// `sc` with usage in the path form when `path` says so, then each of
/// `messes` added: projects (repeated, with unknown, empty or cyclic
/// parents), limits, usage and generations naming unknown or empty
/// projects and resources or repeating one, negative values, and deltas.
/// Most results are invalid input; the rest decide.
fn messed(sc: &Scenario, path: bool, messes: &[Mess]) -> Scenario {
    let mut out = if path { path_form(sc) } else { sc.clone() };
    let n = sc.snapshot.projects.len();
    let project = |i: &prop::sample::Index| -> String {
        match i.index(n + 2) {
            k if k < n => format!("p{k}"),
            k if k == n => "ghost".into(),
            _ => String::new(),
        }
    };
    let resource = |i: &prop::sample::Index| -> String {
        match i.index(RESOURCES.len() + 2) {
            k if k < RESOURCES.len() => RESOURCES[k].into(),
            k if k == RESOURCES.len() => "disk".into(),
            _ => String::new(),
        }
    };
    let s = &mut out.snapshot;
    for (what, p, r, q, value) in messes {
        match what {
            0 => s.projects.push(Project {
                id: project(p),
                parent: (value % 3 != 0).then(|| project(q)),
            }),
            1 => s.limits.registered.push(RegisteredLimit {
                resource: resource(r),
                limit: *value - 1,
            }),
            2 => s.limits.project.push(ProjectLimit {
                project: project(p),
                resource: resource(r),
                limit: *value - 1,
            }),
            3 | 4 => match &mut s.usage {
                Usage::Local(entries) => entries.push(UsageEntry {
                    project: project(p),
                    resource: resource(r),
                    usage: *value - 1,
                }),
                Usage::Path(path) if *what == 3 => path.subtree.push(UsageEntry {
                    project: project(p),
                    resource: resource(r),
                    usage: *value - 1,
                }),
                Usage::Path(path) => path.local.push(ResourceUsage {
                    resource: resource(r),
                    usage: *value - 1,
                }),
            },
            5 => s.generations.push(Generation {
                project: project(p),
                generation: value.unsigned_abs(),
            }),
            6 => out.request.deltas.push(Delta::new(resource(r), *value - 3)),
            _ => out.request.project = project(p),
        }
    }
    out
}

/// The path form's usage check as `conformance/README.md` states it, done
/// naively: `path.local` by resource name, then `path.subtree` by project
/// id and resource name, each entry's first problem (empty ids, negative,
/// unknown project, off the path, the same pair as the entry before), then
/// consistency by resource name from the project up. `None`: no problem.
fn path_usage_error(s: &Snapshot, project: &str) -> Option<Error> {
    let Usage::Path(usage) = &s.usage else {
        unreachable!("path form only")
    };
    let path = ancestry(s, project);
    let mut local: Vec<&ResourceUsage> = usage.local.iter().collect();
    local.sort_by(|a, b| (&a.resource, a.usage).cmp(&(&b.resource, b.usage)));
    for (i, e) in local.iter().enumerate() {
        if e.resource.is_empty() {
            return Some(Error::EmptyId {
                what: IdKind::Resource,
            });
        }
        if e.usage < 0 {
            return Some(Error::NegativeUsage {
                project: project.into(),
                resource: e.resource.clone(),
                usage: e.usage,
            });
        }
        if i > 0 && local[i - 1].resource == e.resource {
            return Some(Error::DuplicateUsage {
                project: project.into(),
                resource: e.resource.clone(),
            });
        }
    }
    let mut subtree: Vec<&UsageEntry> = usage.subtree.iter().collect();
    subtree.sort_by(|a, b| {
        (&a.project, &a.resource, a.usage).cmp(&(&b.project, &b.resource, b.usage))
    });
    for (i, e) in subtree.iter().enumerate() {
        let (p, r) = (e.project.clone(), e.resource.clone());
        if p.is_empty() {
            return Some(Error::EmptyId {
                what: IdKind::Project,
            });
        }
        if r.is_empty() {
            return Some(Error::EmptyId {
                what: IdKind::Resource,
            });
        }
        if e.usage < 0 {
            return Some(Error::NegativeUsage {
                project: p,
                resource: r,
                usage: e.usage,
            });
        }
        if !s.projects.iter().any(|q| q.id == p) {
            return Some(Error::UnknownProject { project: p });
        }
        if !path.contains(&p) {
            return Some(Error::InconsistentUsage {
                project: p,
                resource: r,
            });
        }
        if i > 0 && subtree[i - 1].project == p && subtree[i - 1].resource == r {
            return Some(Error::DuplicateUsage {
                project: p,
                resource: r,
            });
        }
    }
    let mut resources: Vec<&str> = local
        .iter()
        .map(|e| e.resource.as_str())
        .chain(subtree.iter().map(|e| e.resource.as_str()))
        .collect();
    resources.sort_unstable();
    resources.dedup();
    for r in resources {
        let mut below = local
            .iter()
            .find(|e| e.resource == r)
            .map_or(0, |e| e.usage);
        for a in &path {
            let value = subtree
                .iter()
                .find(|e| &e.project == a && e.resource == r)
                .map_or(0, |e| e.usage);
            if value < below {
                return Some(Error::InconsistentUsage {
                    project: a.clone(),
                    resource: r.into(),
                });
            }
            below = value;
        }
    }
    None
}

// ---- prepared decisions -----------------------------------------------------

/// A prepared decision with its claim named by project id and generation,
/// as `evaluate` names it.
fn generation_of(s: &Snapshot, project: &str) -> u64 {
    s.generations
        .iter()
        .find(|g| g.project == project)
        .map_or(0, |g| g.generation)
}

/// Path numbers that may be anything: small, negative, or near the top of
/// i64 (for overflow). `accumulate` makes each subtree value the one below
/// plus a step, so that most cases are consistent and reach a decision.
fn numbers() -> impl Strategy<Value = (bool, Vec<i64>)> {
    let value = prop_oneof![
        6 => 0i64..6,
        1 => -3i64..0,
        1 => (i64::MAX - 8)..=i64::MAX,
    ];
    (
        any::<bool>(),
        proptest::collection::vec(value, 1 + 10 * RESOURCES.len()),
    )
}

/// Lays `numbers` out as the `local` and `subtree` lists of a path of
/// `len` nodes for `n` resources.
fn lay_out(numbers: &(bool, Vec<i64>), len: usize, n: usize) -> (Vec<i64>, Vec<i64>) {
    let (accumulate, values) = numbers;
    let local: Vec<i64> = values[..n].to_vec();
    let mut subtree = Vec::with_capacity(len * n);
    for k in 0..len {
        for r in 0..n {
            let v = values[n + k * n + r];
            subtree.push(if *accumulate {
                let below = if k == 0 {
                    local[r]
                } else {
                    subtree[(k - 1) * n + r]
                };
                below.saturating_add(v.max(0))
            } else {
                v
            });
        }
    }
    (local, subtree)
}

/// A batch's members: who (an index into the tree) and, per resource of
/// RESOURCES, a delta or none.
type Members = Vec<(prop::sample::Index, Vec<Option<i64>>)>;

fn members() -> impl Strategy<Value = Members> {
    proptest::collection::vec(
        (
            any::<prop::sample::Index>(),
            proptest::collection::vec(prop::option::of(-3i64..6), RESOURCES.len()),
        ),
        0..6,
    )
}

/// The requests `members` stand for on `s`'s tree.
fn requests_of(s: &Snapshot, members: &Members) -> Vec<Request> {
    let ids: Vec<String> = s.projects.iter().map(|p| p.id.clone()).collect();
    members
        .iter()
        .map(|(who, deltas)| {
            let deltas = RESOURCES
                .iter()
                .zip(deltas)
                .filter_map(|(r, d)| d.map(|d| Delta::new(*r, d)))
                .collect();
            Request::new(ids[who.index(ids.len())].clone(), deltas)
        })
        .collect()
}

/// `request`'s path numbers counted from `s` (as a prepared decision takes
/// them): (local, subtree, generations) along `ancestry`.
fn path_numbers(s: &Snapshot, request: &Request) -> (Vec<i64>, Vec<i64>, Vec<u64>) {
    let project = request.project.as_str();
    let path = ancestry(s, project);
    (
        request
            .deltas
            .iter()
            .map(|d| local(s, project, &d.resource))
            .collect(),
        path.iter()
            .flat_map(|a| {
                request
                    .deltas
                    .iter()
                    .map(move |d| subtree(s, a, &d.resource))
            })
            .collect(),
        path.iter().map(|a| generation_of(s, a)).collect(),
    )
}

fn kind<T>(r: Result<T, Error>) -> Result<T, &'static str> {
    r.map_err(|e| e.kind())
}

proptest! {
    #![proptest_config(cases())]

    /// A prepared decision on the path's numbers, counted from the full
    /// snapshot, is the decision `evaluate` makes on that snapshot.
    #[test]
    fn prepared_matches_evaluate(sc in scenario()) {
        let s = &sc.snapshot;
        let prepared = Prepared::new(&sc.config, &s.projects, &s.limits);
        prop_assert!(prepared.is_ok(), "{:?}", prepared);
        let prepared = prepared.unwrap();
        let project = sc.request.project.as_str();
        let path = prepared.path(project).unwrap();
        let want_path = ancestry(s, project);
        prop_assert_eq!(&path, &want_path.iter().map(String::as_str).collect::<Vec<_>>());
        let (local, subtree, generations) = path_numbers(s, &sc.request);
        let got = prepared
            .evaluate(project, &sc.request.deltas, &local, &subtree, &generations)
            .map(|d| d.named(&path, &generations));
        prop_assert_eq!(got, evaluate(&sc.config, s, &sc.request));
    }

    /// On any path numbers, including negative, inconsistent, overflowing
    /// ones and releases below zero, a prepared decision (or error) is the
    /// one `evaluate` gives for the same numbers as `Usage::Path`.
    #[test]
    fn prepared_matches_evaluate_on_any_numbers(sc in scenario(), numbers in numbers()) {
        let prepared = Prepared::new(&sc.config, &sc.snapshot.projects, &sc.snapshot.limits).unwrap();
        let project = sc.request.project.as_str();
        let path = prepared.path(project).unwrap();
        let deltas = &sc.request.deltas;
        let n = deltas.len();
        let (local, subtree) = lay_out(&numbers, path.len(), n);
        let generations: Vec<u64> = path.iter().map(|a| generation_of(&sc.snapshot, a)).collect();
        let got = prepared
            .evaluate(project, deltas, &local, &subtree, &generations)
            .map(|d| d.named(&path, &generations));

        let mut snapshot = sc.snapshot.clone();
        snapshot.usage = Usage::Path(PathUsage {
            local: deltas
                .iter()
                .zip(&local)
                .map(|(d, &usage)| ResourceUsage { resource: d.resource.clone(), usage })
                .collect(),
            subtree: path
                .iter()
                .enumerate()
                .flat_map(|(k, a)| {
                    let subtree = &subtree;
                    deltas.iter().enumerate().map(move |(r, d)| UsageEntry {
                        project: a.to_string(),
                        resource: d.resource.clone(),
                        usage: subtree[k * n + r],
                    })
                })
                .collect(),
        });
        prop_assert_eq!(got, evaluate(&sc.config, &snapshot, &sc.request));
    }

    /// Deciding by the numbers `number_request` gives is deciding by the
    /// names they stand for, errors included (a request naming one
    /// resource twice among them, each time by its one number).
    #[test]
    fn numbers_match_names(sc in scenario(), numbers in numbers(), twice in proptest::option::of(0usize..8)) {
        let mut prepared = Prepared::new(&sc.config, &sc.snapshot.projects, &sc.snapshot.limits).unwrap();
        let project = sc.request.project.as_str();
        let mut deltas = sc.request.deltas.clone();
        if let Some(i) = twice.filter(|_| !deltas.is_empty()) {
            let again = deltas[i % deltas.len()].clone();
            deltas.push(again);
        }
        let distinct: Vec<&str> = sc.request.deltas.iter().map(|d| d.resource.as_str()).collect();
        let request = prepared.number_request(project, &distinct).unwrap();
        let number_of = |name: &str| request.resources[distinct.iter().position(|&n| n == name).unwrap()];
        let numbered: Vec<(u32, i64)> = deltas.iter().map(|d| (number_of(&d.resource), d.delta)).collect();
        let (node, path) = (request.node, request.path.len());
        let (local, subtree) = lay_out(&numbers, path, deltas.len().min(RESOURCES.len()));
        // Lists for at most RESOURCES.len() deltas: with a repeated one the
        // shape is off by one, and the duplicate must be found first.
        let generations: Vec<u64> = (0..path as u64).collect();
        let by_name = prepared.evaluate(project, &deltas, &local, &subtree, &generations);
        let by_number = prepared.evaluate_numbers(node, &numbered, &local, &subtree, &generations);
        prop_assert_eq!(by_number, by_name);
    }

    /// `number_request` reports exactly the request error `evaluate`
    /// reports (empty project, empty or repeated resource name, unknown
    /// project, in evaluate's order), and when it numbers the request,
    /// deciding by those numbers is deciding by names: the same path, a
    /// lasting number for each resource a limit mentions (the same when
    /// asked again), and `evaluate`'s outcome.
    #[test]
    fn number_request_matches_evaluate(
        sc in scenario(),
        project_tweak in 0u8..6,
        tweaks in proptest::collection::vec((0u8..3, any::<prop::sample::Index>(), -3i64..6), 0..3),
    ) {
        let mut request = sc.request.clone();
        match project_tweak {
            4 => request.project = String::new(),
            5 => request.project = "ghost".into(),
            _ => {}
        }
        // Insert an empty name, a name already in the request, or a name
        // no limit knows, at any position.
        for (kind, at, delta) in tweaks {
            let name = match kind {
                0 => String::new(),
                1 if !request.deltas.is_empty() => {
                    request.deltas[at.index(request.deltas.len())].resource.clone()
                }
                1 => "servers".into(),
                _ => "disk".into(),
            };
            let position = at.index(request.deltas.len() + 1);
            request.deltas.insert(position, Delta::new(name, delta));
        }
        let s = &sc.snapshot;
        let want = evaluate(&sc.config, s, &request);
        let mut prepared = Prepared::new(&sc.config, &s.projects, &s.limits).unwrap();
        let names: Vec<&str> = request.deltas.iter().map(|d| d.resource.as_str()).collect();
        match prepared.number_request(&request.project, &names) {
            Err(e) => {
                prop_assert!(
                    matches!(e.kind(), "empty-id" | "duplicate-resource" | "unknown-project"),
                    "{:?}", e
                );
                prop_assert_eq!(want, Err(e));
            }
            Ok(numbered) => {
                if let Err(e) = &want {
                    prop_assert!(
                        !matches!(e.kind(), "empty-id" | "duplicate-resource" | "unknown-project"),
                        "evaluate failed with {:?} where number_request numbered", e
                    );
                }
                let want_path = ancestry(s, &request.project);
                prop_assert_eq!(&numbered.path, &want_path);
                prop_assert_eq!(numbered.node, prepared.locate(&request.project).unwrap().node);
                let kept = numbered.kept;
                let again = prepared.number_request(&request.project, &names).unwrap();
                for (&first, &second) in numbered.resources.iter().zip(&again.resources) {
                    prop_assert_eq!(first < kept, second < kept);
                    if first < kept {
                        prop_assert_eq!(first, second);
                    }
                }
                let path: Vec<&str> = numbered.path.iter().map(String::as_str).collect();
                let project = request.project.as_str();
                let local: Vec<i64> = names.iter().map(|r| local(s, project, r)).collect();
                let subtree: Vec<i64> = path
                    .iter()
                    .flat_map(|a| names.iter().map(move |r| subtree(s, a, r)))
                    .collect();
                let generations: Vec<u64> = path.iter().map(|a| generation_of(s, a)).collect();
                let deltas = numbered.numbered_deltas(&request.deltas);
                let got = prepared
                    .evaluate_numbers(numbered.node, &deltas, &local, &subtree, &generations)
                    .map(|d| d.named(&path, &generations));
                prop_assert_eq!(got, want);
            }
        }
    }

    /// The core and the reference never disagree.
    #[test]
    fn core_matches_reference(sc in scenario()) {
        prop_assert_eq!(kind(evaluate(&sc.config, &sc.snapshot, &sc.request)), reference(&sc));
    }

    /// A decision does not depend on the order of any input list.
    #[test]
    fn decision_ignores_input_order(sc in scenario()) {
        let other = shuffled(&sc);
        prop_assert_eq!(
            evaluate(&sc.config, &sc.snapshot, &sc.request),
            evaluate(&other.config, &other.snapshot, &other.request)
        );
    }

    /// No answer depends on the order in which the caller listed projects,
    /// limits, usage entries (either form), generations or deltas: on
    /// input with any mix of problems, evaluate's outcome (result or the
    /// error, with its fields), validate's findings, headroom and
    /// max-count are the same for any order.
    #[test]
    fn outcome_ignores_input_order_even_on_bad_input(sc in scenario(), (path, messes) in messes()) {
        let sc = messed(&sc, path, &messes);
        let other = shuffled(&sc);
        let (c, s, o) = (&sc.config, &sc.snapshot, &other.snapshot);
        prop_assert_eq!(evaluate(c, s, &sc.request), evaluate(c, o, &other.request));
        prop_assert_eq!(validate(c, &s.projects, &s.limits), validate(c, &o.projects, &o.limits));
        let names: Vec<String> = sc.request.deltas.iter().map(|d| d.resource.clone()).collect();
        let other_names: Vec<String> = other.request.deltas.iter().map(|d| d.resource.clone()).collect();
        prop_assert_eq!(
            headroom(c, s, &sc.request.project, &names),
            headroom(c, o, &other.request.project, &other_names)
        );
        prop_assert_eq!(
            max_count(c, s, &sc.request.project, &sc.request.deltas),
            max_count(c, o, &other.request.project, &other.request.deltas)
        );
    }

    /// The path form's usage errors follow the stated rule: entries in byte
    /// order, the smallest bad entry reported whatever its problem.
    #[test]
    fn path_usage_errors_follow_the_entry_order_rule(
        sc in scenario(),
        entries in proptest::collection::vec((any::<bool>(), any::<prop::sample::Index>(), any::<prop::sample::Index>(), -2i64..6), 0..5),
    ) {
        let messes: Vec<Mess> = entries
            .into_iter()
            .map(|(subtree, p, r, v)| (if subtree { 3 } else { 4 }, p, r, r, v))
            .collect();
        let sc = messed(&sc, true, &messes);
        let want = path_usage_error(&sc.snapshot, &sc.request.project);
        let got = evaluate(&sc.config, &sc.snapshot, &sc.request);
        match want {
            Some(e) => prop_assert_eq!(got, Err(e)),
            None => prop_assert!(
                !got.as_ref().is_err_and(|e| matches!(
                    e.kind(),
                    "empty-id" | "negative-usage" | "unknown-project" | "inconsistent-usage" | "duplicate-usage"
                )),
                "{:?}", got
            ),
        }
    }

    /// Local usage and usage pre-summed for the path give the same decision.
    #[test]
    fn path_usage_matches_local_usage(sc in scenario()) {
        let pre = path_form(&sc);
        prop_assert_eq!(
            evaluate(&sc.config, &sc.snapshot, &sc.request),
            evaluate(&pre.config, &pre.snapshot, &pre.request)
        );
    }

    /// After an admitted request, no node the model checks is over its limit
    /// for a resource that grew, and none got worse for the others.
    #[test]
    fn admission_never_oversubscribes(sc in scenario()) {
        if let Ok(Decision::Admitted { .. }) = evaluate(&sc.config, &sc.snapshot, &sc.request) {
            for d in &sc.request.deltas {
                for node in checked_nodes(&sc.snapshot, &sc.config, &sc.request.project) {
                    let before = counted(&sc.snapshot, &sc.config, &node, &d.resource);
                    let after = before + d.delta;
                    if let Some(l) = limit(&sc.snapshot, &sc.config, &node, &d.resource) {
                        prop_assert!(after <= l || after <= before,
                            "{node} {} after {after} > limit {l}", d.resource);
                    }
                }
            }
        }
    }

    /// max-count is exact: n units are admitted and n + 1 are not.
    #[test]
    fn max_count_is_the_admission_boundary(sc in scenario()) {
        let per_unit: Vec<Delta> =
            sc.request.deltas.iter().map(|d| Delta::new(d.resource.clone(), d.delta.abs())).collect();
        let times = |n: i64| Request::new(
            sc.request.project.clone(),
            per_unit.iter().map(|d| Delta::new(d.resource.clone(), d.delta * n)).collect(),
        );
        match max_count(&sc.config, &sc.snapshot, &sc.request.project, &per_unit) {
            Ok(Count::Units(n)) => {
                prop_assert!(evaluate(&sc.config, &sc.snapshot, &times(n)).unwrap().is_admitted());
                prop_assert!(!evaluate(&sc.config, &sc.snapshot, &times(n + 1)).unwrap().is_admitted());
            }
            Ok(Count::Unlimited) => {
                prop_assert!(evaluate(&sc.config, &sc.snapshot, &times(1_000_000)).unwrap().is_admitted());
            }
            Err(e) => prop_assert!(false, "max-count failed: {e}"),
        }
    }

    /// Headroom is the largest single delta the project can take.
    #[test]
    fn headroom_is_the_largest_admitted_delta(sc in scenario()) {
        let names: Vec<String> = RESOURCES.iter().map(|r| r.to_string()).collect();
        let rows = headroom(&sc.config, &sc.snapshot, &sc.request.project, &names).unwrap();
        for row in rows {
            let ask = |n: i64| Request::new(sc.request.project.clone(), vec![Delta::new(row.resource.clone(), n)]);
            match row.room {
                Room::Limited(h) => {
                    prop_assert!(h >= 0);
                    if h > 0 {
                        prop_assert!(evaluate(&sc.config, &sc.snapshot, &ask(h)).unwrap().is_admitted());
                    }
                    prop_assert!(!evaluate(&sc.config, &sc.snapshot, &ask(h + 1)).unwrap().is_admitted());
                }
                Room::Unlimited => {
                    prop_assert!(evaluate(&sc.config, &sc.snapshot, &ask(1_000_000)).unwrap().is_admitted());
                }
            }
        }
    }

    /// A batch decides each member as one by one would: against the
    /// snapshot whose local usage holds the deltas of every member admitted
    /// before it (the reference updates the usage rows by hand).
    #[test]
    fn batch_matches_one_by_one(sc in scenario(), members in members()) {
        let requests = requests_of(&sc.snapshot, &members);
        let batch = evaluate_batch(&sc.config, &sc.snapshot, &requests);
        prop_assert_eq!(batch.len(), requests.len());
        let mut state = sc.snapshot.clone();
        for (request, got) in requests.iter().zip(&batch) {
            let want = evaluate(&sc.config, &state, request);
            prop_assert_eq!(kind(got.clone()), kind(want.clone()), "member {:?}", request);
            if let Ok(Decision::Admitted { .. }) = want {
                let Usage::Local(rows) = &mut state.usage else { unreachable!() };
                for d in &request.deltas {
                    match rows.iter_mut().find(|u| u.project == request.project && u.resource == d.resource) {
                        Some(row) => row.usage += d.delta,
                        None => rows.push(UsageEntry { project: request.project.clone(), resource: d.resource.clone(), usage: d.delta }),
                    }
                }
            }
        }
    }

    /// A prepared batch, each member given the numbers of its path counted
    /// from the one snapshot, decides (and fails) every member exactly as
    /// the batch over that snapshot does.
    #[test]
    fn prepared_batch_matches_batch(sc in scenario(), members in members()) {
        let s = &sc.snapshot;
        let requests = requests_of(s, &members);
        let prepared = Prepared::new(&sc.config, &s.projects, &s.limits).unwrap();
        let prepared_members: Vec<PreparedMember> = requests
            .iter()
            .map(|request| {
                let (local, subtree, generations) = path_numbers(s, request);
                PreparedMember { request: request.clone(), local, subtree, generations }
            })
            .collect();
        let got = prepared.evaluate_batch(&prepared_members);
        let want = evaluate_batch(&sc.config, s, &requests);
        prop_assert_eq!(got.len(), want.len());
        for (request, (got, want)) in requests.iter().zip(got.into_iter().zip(want)) {
            prop_assert_eq!(kind(got), kind(want), "member {:?}", request);
        }
    }

    /// Backoff delays stay within [cap / 2, cap] with a doubling cap.
    #[test]
    fn backoff_is_jittered_and_growing(seed in any::<u64>(), attempt in 1u32..70) {
        let policy = RetryPolicy::default();
        let cap = policy.base_delay_us.saturating_mul(1u64 << (attempt - 1).min(63)).min(policy.max_delay_us);
        let delay = policy.delay_us(seed, attempt);
        prop_assert!(delay >= cap / 2 && delay <= cap, "attempt {attempt}: {delay} not in [{}, {cap}]", cap / 2);
    }
}
