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
