"""Prepared: decisions from the path's numbers give evaluate's answers,
with typed errors for bad shapes, from many threads."""

import threading

import pytest

import delimiter as d

TREE = [
    d.Project("org"),
    d.Project("dept", parent="org"),
    d.Project("team", parent="dept"),
]
LIMITS = d.Limits(
    registered=[d.RegisteredLimit("servers", 4), d.RegisteredLimit("cores", -1)],
    project=[d.ProjectLimit("org", "servers", 10), d.ProjectLimit("dept", "servers", -1)],
)
PATH = ["team", "dept", "org"]
RESOURCES = ["servers", "cores"]
# team, dept, org; servers then cores.
LOCAL = [3, 8]
SUBTREE = [3, 8, 5, 8, 9, 20]
GENERATIONS = [11, 22, 33]


def snapshot(local, subtree):
    """The same numbers as a snapshot for evaluate."""
    return d.Snapshot(
        projects=TREE,
        limits=LIMITS,
        usage=d.PathUsage(
            local=[d.ResourceUsage(r, u) for r, u in zip(RESOURCES, local)],
            subtree=[
                d.UsageEntry(PATH[i // 2], RESOURCES[i % 2], u) for i, u in enumerate(subtree)
            ],
        ),
        generations=[d.Generation(p, g) for p, g in zip(PATH, GENERATIONS)],
    )


def outcome(call):
    try:
        return call()
    except d.InvalidInput as e:
        return (e.kind, e.project, e.resource)


@pytest.mark.parametrize("model", ["flat", "nested"])
def test_prepared_decisions_are_evaluates(model):
    config = d.Config(model=model)
    prepared = d.Prepared(TREE, LIMITS, config)
    assert prepared.path("team") == PATH
    cases = [
        ({"servers": 1, "cores": 2}, LOCAL, SUBTREE),
        ({"servers": 2, "cores": 0}, LOCAL, SUBTREE),
        ({"servers": 2, "cores": 0}, [1, 8], [1, 8, 5, 8, 5, 20]),
        ({"servers": 0, "cores": -9}, LOCAL, SUBTREE),
        ({"servers": 1, "cores": 0}, LOCAL, [3, 8, 5, 8, 2**63 - 1, 20]),
        ({"servers": 1, "cores": 0}, LOCAL, [3, 8, 2, 8, 9, 20]),
    ]
    seen = set()
    for deltas, local, subtree in cases:
        want = outcome(lambda: d.evaluate(snapshot(local, subtree), d.Request("team", deltas), config))
        got = outcome(lambda: prepared.evaluate("team", deltas, local, subtree, GENERATIONS))
        assert got == want, (model, deltas)
        seen.add(got[0] if isinstance(got, tuple) else ("admitted" if got.admitted else "refused"))
    assert {"admitted", "refused", "release-below-zero", "inconsistent-usage"} <= seen


def test_an_admission_claims_path_ids_with_the_generations_passed():
    prepared = d.Prepared(TREE, LIMITS)
    decision = prepared.evaluate("team", {"servers": 1}, [3], [3, 5, 9], GENERATIONS)
    want = d.Decision(True, claim=[d.ClaimEntry("team", 11), d.ClaimEntry("org", 33)])
    # Made from path positions, read as entries: equal, same hash and repr.
    assert decision == want
    assert hash(decision) == hash(want)
    assert repr(decision) == repr(want)
    assert decision.claim == [d.ClaimEntry("team", 11), d.ClaimEntry("org", 33)]
    assert decision != d.Decision(True, claim=[d.ClaimEntry("team", 11)])


def test_wrong_lengths_and_bad_inputs_are_typed_errors():
    prepared = d.Prepared(TREE, LIMITS)
    with pytest.raises(d.InvalidInput) as e:
        prepared.evaluate("team", {"servers": 1}, [3], [3, 5], GENERATIONS)
    assert (e.value.kind, e.value.field, e.value.expected, e.value.actual) == (
        "shape-mismatch",
        "subtree",
        3,
        2,
    )
    with pytest.raises(d.InvalidInput) as e:
        prepared.path("nobody")
    assert (e.value.kind, e.value.project) == ("unknown-project", "nobody")
    with pytest.raises(d.InvalidInput) as e:
        d.Prepared([d.Project("a", parent="b"), d.Project("b", parent="a")])
    assert (e.value.kind, e.value.project) == ("cycle", "a")
    with pytest.raises(TypeError):
        prepared.evaluate("team", {"servers": 1}, ["x"], [3, 5, 9], GENERATIONS)

@pytest.mark.parametrize("model", ["flat", "nested"])
def test_requests_with_several_problems_raise_what_evaluate_raises(model):
    config = d.Config(model=model)
    prepared = d.Prepared(TREE, LIMITS, config)
    cases = [
        # Empty project before an empty resource.
        ("", [("", 1)]),
        # Empty resource before a resource twice.
        ("team", [("cores", 1), ("", 1), ("cores", 2)]),
        # A resource twice (the smallest) before an unknown project.
        ("nobody", [("servers", 1), ("ram", 1), ("servers", 1), ("ram", 2)]),
        ("nobody", [("servers", 1)]),
        # Resources with no limit anywhere (numbered on first use): the
        # missing-limit rule, as evaluate applies it.
        ("team", [("ram", 5), ("servers", 1)]),
        ("team", [("disk", 1), ("ram", 2), ("ram", 3)]),
        ("team", [("servers", 1), ("disk", 0)]),
    ]
    for project, pairs in cases:
        names = [r for r, _ in pairs]
        deltas = [d.Delta(r, n) for r, n in pairs]
        local = list(range(len(pairs)))
        subtree = [i + 10 for i in range(3 * len(pairs))]
        snap = d.Snapshot(
            projects=TREE,
            limits=LIMITS,
            usage=d.PathUsage(
                local=[d.ResourceUsage(r, u) for r, u in zip(names, local)],
                subtree=[
                    d.UsageEntry(PATH[i // len(names)], names[i % len(names)], u)
                    for i, u in enumerate(subtree)
                ],
            ),
            generations=[d.Generation(p, g) for p, g in zip(PATH, GENERATIONS)],
        )
        want = outcome(lambda: d.evaluate(snap, d.Request(project, deltas), config))
        got = outcome(lambda: prepared.evaluate(project, deltas, local, subtree, GENERATIONS))
        assert got == want, (model, project, pairs)


def test_a_guest_fault_is_raised_and_the_next_call_prepares_afresh():
    prepared = d.Prepared(TREE, LIMITS, memory_limit=2 << 20)
    with pytest.raises(d.GuestFault) as e:
        prepared.evaluate("team", {"servers": 1}, [0] * (2 << 20), [3, 5, 9], GENERATIONS)
    assert e.value.kind == "memory-limit"
    assert prepared.evaluate("team", {"servers": 1}, [3], [3, 5, 9], GENERATIONS).admitted


def test_numbers_kept_from_an_instance_a_fault_dropped_are_not_used():
    prepared = d.Prepared(TREE, LIMITS, memory_limit=2 << 20)
    # Numbered in this order by this instance: ram, then disk (no limits:
    # re-checks, which any usage passes).
    assert prepared.evaluate("team", {"ram": 0, "disk": 0}, [0, 0], [0] * 6, GENERATIONS).admitted
    with pytest.raises(d.GuestFault):
        prepared.evaluate("team", {"servers": 1}, [0] * (2 << 20), [3, 5, 9], GENERATIONS)
    # The fresh instance has numbered neither; disk first.
    decision = prepared.evaluate("team", {"disk": 0}, [0], [0] * 3, GENERATIONS)
    assert decision == d.Decision(True)


def test_one_prepared_serves_many_threads():
    prepared = d.Prepared(TREE, LIMITS)
    results = []

    def work():
        for used in range(10):
            results.append(
                prepared.evaluate("team", {"servers": 1}, [0], [0, used, used], GENERATIONS).admitted
            )

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # org allows 10: usage 0..9 plus one all fit, every time.
    assert results == [True] * 40


def test_a_huge_request_for_an_unknown_project_is_checked_in_linear_time():
    """Found by fuzzing: the host's own duplicate check was quadratic (11 s
    for 200,000 names, holding the GIL). The request is now checked once,
    by the component, sorting the names; the answer is evaluate's."""
    n = 200_000
    deltas = {f"r{i}": 0 for i in range(n)}
    with pytest.raises(d.InvalidInput) as raised:
        d.Prepared([d.Project("a")]).evaluate("zz", deltas, [0] * n, [0] * n, [1])
    assert raised.value.kind == "unknown-project"
    assert raised.value.project == "zz"


def test_names_no_limit_mentions_do_not_accumulate():
    """Found by fuzzing: a prepared kept every resource name it was asked
    about, until an innocent call failed with GuestFault(memory-limit).
    Names no limit mentions are now kept for their request only. 20,000
    distinct 1 kB names through a 4 MiB instance, then an ordinary call."""
    prepared = d.Prepared(TREE, LIMITS, memory_limit=4 << 20)
    for i in range(20_000):
        name = f"{i:01000}"
        assert prepared.evaluate("team", {name: 0}, [0], [0, 0, 0], GENERATIONS).admitted
    got = prepared.evaluate("team", dict(zip(RESOURCES, [1, 2])), LOCAL, SUBTREE, GENERATIONS)
    assert got == d.evaluate(snapshot(LOCAL, SUBTREE), d.Request("team", {"servers": 1, "cores": 2}))


# ---- Prepared.evaluate_batch ---------------------------------------------------------

SIBLINGS = [d.Project("org"), d.Project("a", parent="org"), d.Project("b", parent="org")]
SIBLING_LIMITS = d.Limits(
    registered=[d.RegisteredLimit("servers", 10)],
    project=[d.ProjectLimit("org", "servers", 8)],
)


def member(project, deltas, local, subtree, generations):
    return d.PreparedMember(d.Request(project, deltas), local, subtree, generations)


# org holds 5 servers: a 3, b 2. Path numbers of a and b as read together.
A_TWO = member("a", {"servers": 2}, [3], [3, 5], [4, 7])
B_TWO = member("b", {"servers": 2}, [2], [2, 5], [2, 7])
B_ONE = member("b", {"servers": 1}, [2], [2, 5], [2, 7])


def test_members_are_decided_in_arrival_order():
    prepared = d.Prepared(SIBLINGS, SIBLING_LIMITS)
    # Alone, b's 2 fit under org's 8 (5 + 2).
    assert prepared.evaluate("b", {"servers": 2}, [2], [2, 5], [2, 7]).admitted
    got = prepared.evaluate_batch([A_TWO, B_TWO, B_ONE])
    assert got == [
        d.Decision(True, claim=[d.ClaimEntry("a", 4), d.ClaimEntry("org", 7)]),
        # a's admission used org's room: 5 + 2 = 7, and 7 + 2 > 8.
        d.Decision(False, violations=[d.Violation("org", "servers", 8, 7, 2)]),
        # A refused member adds nothing: 7 + 1 = 8 fits.
        d.Decision(True, claim=[d.ClaimEntry("b", 2), d.ClaimEntry("org", 7)]),
    ]
    # The other order: b first, and then it is a that no longer fits.
    assert prepared.evaluate_batch([B_TWO, A_TWO]) == [
        d.Decision(True, claim=[d.ClaimEntry("b", 2), d.ClaimEntry("org", 7)]),
        d.Decision(False, violations=[d.Violation("org", "servers", 8, 7, 2)]),
    ]
    # Nothing is kept between batches.
    assert prepared.evaluate_batch([B_TWO])[0].admitted
    assert prepared.evaluate_batch([]) == []


def test_a_members_error_is_returned_and_leaves_the_others_alone():
    prepared = d.Prepared(SIBLINGS, SIBLING_LIMITS)
    bad_shape = member("a", {"servers": 3}, [3], [3], [4, 7])  # subtree needs 2
    nobody = member("nobody", {"servers": 1}, [0], [0], [1])
    got = prepared.evaluate_batch([A_TWO, bad_shape, nobody, B_ONE])
    assert len(got) == 4
    assert isinstance(got[1], d.InvalidInput) and isinstance(got[2], d.InvalidInput)
    e = got[1]
    assert (e.kind, e.field, e.expected, e.actual) == ("shape-mismatch", "subtree", 2, 1)
    assert (got[2].kind, got[2].project) == ("unknown-project", "nobody")
    # The others: as if the failing members were not there (a's 3 would
    # have left no room for b's 1: 5 + 2 + 3 > 8).
    without = prepared.evaluate_batch([A_TWO, B_ONE])
    assert [got[0], got[3]] == without
    assert without == [
        d.Decision(True, claim=[d.ClaimEntry("a", 4), d.ClaimEntry("org", 7)]),
        d.Decision(True, claim=[d.ClaimEntry("b", 2), d.ClaimEntry("org", 7)]),
    ]
    # An earlier admitted release counts: a release of all a holds (no
    # positive delta, so no claim), then one more is below zero.
    release = member("a", {"servers": -3}, [3], [3, 5], [4, 7])
    again = member("a", {"servers": -1}, [3], [3, 5], [4, 7])
    first, second = prepared.evaluate_batch([release, again])
    assert first == d.Decision(True)
    assert isinstance(second, d.InvalidInput) and second.kind == "release-below-zero"


def counted(usage, tree, generations, request, path):
    """The numbers `Prepared.evaluate` takes for `request`, counted from
    each project's own usage (`usage[(project, resource)]`)."""
    children = {}
    for p in tree:
        children.setdefault(p.parent, []).append(p.id)

    def subtree_of(project, resource):
        return usage.get((project, resource), 0) + sum(
            subtree_of(c, resource) for c in children.get(project, [])
        )

    resources = [x.resource for x in request.deltas]
    return d.PreparedMember(
        request,
        [usage.get((request.project, r), 0) for r in resources],
        [subtree_of(node, r) for node in path for r in resources],
        [generations[node] for node in path],
    )


def same(x):
    """A batch element, comparable across the two batch functions."""
    if isinstance(x, d.InvalidInput):
        return ("error", x.kind, tuple(sorted(x.fields.items())), str(x))
    return x


DEEP = [
    d.Project("org"),
    d.Project("a", parent="org"),
    d.Project("b", parent="org"),
    d.Project("a1", parent="a"),
    d.Project("a2", parent="a"),
]
DEEP_LIMITS = d.Limits(
    registered=[d.RegisteredLimit("servers", 3), d.RegisteredLimit("cores", 10)],
    project=[
        d.ProjectLimit("org", "servers", 7),
        d.ProjectLimit("a", "cores", 6),
        d.ProjectLimit("b", "servers", -1),
    ],
)


@pytest.mark.parametrize(
    "model, tree, missing",
    [
        ("nested", DEEP, "zero"),
        ("nested", DEEP, "unlimited"),
        ("flat", DEEP, "zero"),
        ("strict-two-level", SIBLINGS, "zero"),
    ],
)
def test_a_batch_on_numbers_counted_from_a_snapshot_is_evaluate_batchs(model, tree, missing):
    import random

    config = d.Config(model=model, missing_limit=missing)
    prepared = d.Prepared(tree, DEEP_LIMITS, config)
    ids = [p.id for p in tree]
    rng = random.Random(f"{model}/{missing}")
    seen = set()
    for _ in range(60):
        usage = {
            (p, r): rng.randint(0, 3) for p in ids for r in ("servers", "cores") if rng.random() < 0.7
        }
        generations = {p: rng.randint(0, 50) for p in ids}
        snap = d.Snapshot(
            projects=tree,
            limits=DEEP_LIMITS,
            usage=[d.UsageEntry(p, r, u) for (p, r), u in usage.items()],
            generations=[d.Generation(p, g) for p, g in generations.items()],
        )
        requests, members = [], []
        for _ in range(rng.randint(1, 6)):
            resources = rng.sample(["servers", "cores", "ram"], rng.randint(1, 2))
            if rng.random() < 0.05:
                resources.append(resources[0])  # a resource twice
            project = "nobody" if rng.random() < 0.05 else rng.choice(ids)
            request = d.Request(project, [d.Delta(r, rng.randint(-2, 3)) for r in resources])
            path = prepared.path(project) if project != "nobody" else []
            requests.append(request)
            members.append(counted(usage, tree, generations, request, path))
        want = d.evaluate_batch(snap, requests, config)
        got = prepared.evaluate_batch(members)
        assert [same(x) for x in got] == [same(x) for x in want], (usage, requests)
        for x in got:
            seen.add(x.kind if isinstance(x, d.InvalidInput) else ("admitted" if x.admitted else "refused"))
    assert {"admitted", "refused", "release-below-zero", "unknown-project"} <= seen, seen


def test_prepared_member_is_a_value():
    m = d.PreparedMember(d.Request("a", {"servers": 2}), (3,), [3, 5], [4, 7])
    assert m.request == d.Request("a", [d.Delta("servers", 2)])
    assert (m.local, m.subtree, m.generations) == ([3], [3, 5], [4, 7])
    assert m == A_TWO and hash(m) == hash(A_TWO) and m != B_TWO
    assert repr(m) == (
        "PreparedMember(request=Request(project='a', deltas=[Delta(resource='servers', delta=2)]), "
        "local=[3], subtree=[3, 5], generations=[4, 7])"
    )
    with pytest.raises(AttributeError):
        m.local = [0]


def test_bad_batch_inputs_are_typed_errors():
    prepared = d.Prepared(SIBLINGS, SIBLING_LIMITS)
    request = d.Request("a", {"servers": 1})
    with pytest.raises(TypeError, match=r"item 1 is a tuple, not a PreparedMember"):
        prepared.evaluate_batch([A_TWO, (request, [3], [3, 5], [4, 7])])
    with pytest.raises(TypeError, match=r"argument 'members': a sequence of PreparedMember, not str"):
        prepared.evaluate_batch("members")
    with pytest.raises(TypeError, match=r"not PreparedMember"):
        prepared.evaluate_batch(A_TWO)  # one member, not a sequence of them
    with pytest.raises(TypeError, match=r"not NoneType"):
        prepared.evaluate_batch(None)
    with pytest.raises(TypeError, match="request"):
        d.PreparedMember("a", [3], [3, 5], [4, 7])
    with pytest.raises(TypeError, match="local"):
        d.PreparedMember(request, ["x"], [3, 5], [4, 7])
    with pytest.raises(TypeError, match="subtree"):
        d.PreparedMember(request, [3], "35", [4, 7])
    with pytest.raises(TypeError, match="generations"):
        d.PreparedMember(request, [3], [3, 5], [4.5, 7])
    with pytest.raises(OverflowError):
        d.PreparedMember(request, [3], [3, 5], [-1, 7])
    with pytest.raises(OverflowError):
        d.PreparedMember(request, [2**63], [3, 5], [4, 7])
    # Nothing was decided or broken: the prepared still answers.
    assert prepared.evaluate_batch([A_TWO])[0].admitted


def test_a_guest_fault_in_a_batch_is_raised_and_the_next_batch_prepares_afresh():
    prepared = d.Prepared(SIBLINGS, SIBLING_LIMITS, memory_limit=2 << 20)
    huge = member("a", {"servers": 1}, [0] * (2 << 20), [3, 5], [4, 7])
    with pytest.raises(d.GuestFault) as e:
        prepared.evaluate_batch([A_TWO, huge])
    assert e.value.kind == "memory-limit"
    assert prepared.evaluate_batch([A_TWO, B_TWO]) == [
        d.Decision(True, claim=[d.ClaimEntry("a", 4), d.ClaimEntry("org", 7)]),
        d.Decision(False, violations=[d.Violation("org", "servers", 8, 7, 2)]),
    ]


def test_one_prepared_serves_batches_from_many_threads():
    prepared = d.Prepared(SIBLINGS, SIBLING_LIMITS)
    want = prepared.evaluate_batch([A_TWO, B_TWO, B_ONE])
    results = []

    def work():
        for _ in range(50):
            results.append(prepared.evaluate_batch([A_TWO, B_TWO, B_ONE]) == want)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 200
