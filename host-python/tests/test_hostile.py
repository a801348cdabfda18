"""Hostile input through the Python API: wrong types, integers past 64
bits, lone surrogates, huge ids, huge requests, deep trees, stores that
return garbage or call back in, many threads, starved fuel and memory.

Every outcome is an answer or a documented exception (TypeError,
OverflowError, ValueError, or a delimiter.QuotaError); never a panic
(pyo3's PanicException), never a crash, and memory stays bounded."""

import gc
from concurrent.futures import ThreadPoolExecutor

import pytest

import delimiter as d

TREE = [d.Project("org"), d.Project("a", parent="org")]
LIMITS = d.Limits(registered=[d.RegisteredLimit("servers", 8)])
DOCUMENTED = (TypeError, OverflowError, ValueError, d.QuotaError)


def snapshot(usage=0, generations=(("org", 1), ("a", 2))):
    return d.Snapshot(
        projects=TREE,
        limits=LIMITS,
        usage=[d.UsageEntry("a", "servers", usage)],
        generations=[d.Generation(p, g) for p, g in generations],
    )


def outcome(call):
    """The call's answer, or the documented exception it raised. Anything
    else (a PanicException is a BaseException, not an Exception) fails."""
    try:
        return call()
    except DOCUMENTED as e:
        return e


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.mark.parametrize(
    "call",
    [
        lambda: d.Project(42),
        lambda: d.Project("a", parent=["org"]),
        lambda: d.Request("a", {"servers": "1"}),
        lambda: d.Request("a", {1: 1}),
        lambda: d.Snapshot(projects="org"),
        lambda: d.Snapshot(usage=[d.Delta("servers", 1)]),
        lambda: d.evaluate(None, d.Request("a", {})),
        lambda: d.evaluate(snapshot(), "a"),
        lambda: d.headroom(snapshot(), "a", "servers"),
        lambda: d.Config(max_depth=-1),
        lambda: d.Config(missing_limit=3),
        lambda: d.Prepared(TREE).evaluate("a", {"servers": 1}, "0", [0, 0], [1, 2]),
    ],
)
def test_wrong_types_raise_type_errors(call):
    with pytest.raises((TypeError, OverflowError, d.InvalidInput)):
        call()


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 2**64, 10**40])
def test_integers_past_64_bits_are_overflow_errors(value):
    for call in (
        lambda: d.RegisteredLimit("servers", value),
        lambda: d.UsageEntry("a", "servers", value),
        lambda: d.Request("a", {"servers": value}),
        # Generations are unsigned 64-bit: past 2**64, or negative.
        lambda: d.Generation("a", value + 2**64 if value > 0 else -1),
        lambda: d.Prepared(TREE, LIMITS).evaluate("a", {"servers": 1}, [value], [0, 0], [1, 2]),
    ):
        with pytest.raises(OverflowError):
            call()


def test_lone_surrogates_cannot_become_ids():
    """A str with a lone surrogate is not UTF-8, so it cannot cross into
    the component: the conversion refuses it and nothing is decided."""
    bad = "a\ud800"
    for call in (
        lambda: d.Project(bad),
        lambda: d.Request(bad, {"servers": 1}),
        lambda: d.evaluate(snapshot(), d.Request("a", {bad: 1})),
        lambda: d.Prepared(TREE, LIMITS).evaluate(bad, {"servers": 1}, [0], [0, 0], [1, 2]),
        lambda: d.Prepared(TREE, LIMITS).path(bad),
    ):
        with pytest.raises((UnicodeEncodeError, TypeError, ValueError)):
            call()


def test_ten_megabyte_ids_are_decided_or_refused_by_the_memory_cap():
    huge = "p" * (10 * 2**20)
    tree = [d.Project("org"), d.Project(huge, parent="org")]
    s = d.Snapshot(projects=tree, limits=LIMITS, generations=[d.Generation(huge, 1), d.Generation("org", 2)])
    got = outcome(lambda: d.evaluate(s, d.Request(huge, {"servers": 1})))
    if isinstance(got, Exception):
        assert isinstance(got, d.GuestFault) and got.kind == "memory-limit", got
    else:
        assert got.admitted and got.claim[0].project == huge
    # The default instance recovers: an ordinary call answers.
    assert d.evaluate(snapshot(), d.Request("a", {"servers": 1})).admitted


def test_a_million_resources_are_answered_or_run_out_of_fuel():
    deltas = {f"r{i}": 0 for i in range(1_000_000)}
    got = outcome(lambda: d.evaluate(snapshot(), d.Request("a", deltas)))
    if isinstance(got, Exception):
        assert isinstance(got, d.GuestFault) and got.kind in ("out-of-fuel", "memory-limit"), got
    else:
        assert got.admitted  # re-checks only
    assert d.evaluate(snapshot(), d.Request("a", {"servers": 1})).admitted


def test_a_ten_thousand_level_tree_is_too_deep_unless_allowed():
    depth = 10_000
    tree = [d.Project("n0")] + [d.Project(f"n{i}", parent=f"n{i - 1}") for i in range(1, depth)]
    usage = [d.UsageEntry(f"n{i}", "servers", 1) for i in range(depth)]
    s = d.Snapshot(
        projects=tree,
        limits=d.Limits(registered=[d.RegisteredLimit("servers", 2 * depth)]),
        usage=usage,
        generations=[d.Generation(f"n{i}", 1) for i in range(depth)],
    )
    leaf = d.Request(f"n{depth - 1}", {"servers": 1})
    with pytest.raises(d.InvalidInput) as raised:
        d.evaluate(s, leaf)
    assert raised.value.kind == "too-deep"
    deep = d.Config(max_depth=depth)
    got = d.evaluate(s, leaf, deep)
    assert got.admitted and len(got.claim) == depth
    # At the root the whole chain is summed (linear in the tree).
    room = d.headroom(s, "n0", ["servers"], deep)
    assert room == [d.ResourceHeadroom("servers", depth)]


def committing_store(read):
    commits = []
    return commits, d.CallbackStore(read, lambda claim, request: commits.append(claim) or "committed")


@pytest.mark.parametrize("garbage", [None, "snapshot", 42, [snapshot()], {"projects": []}])
def test_a_store_returning_garbage_raises_type_error_and_commits_nothing(garbage):
    commits, store = committing_store(lambda project, resources: garbage)
    with pytest.raises(TypeError):
        d.consume(store, d.Request("a", {"servers": 1}))
    assert commits == []


def test_a_store_returning_another_projects_snapshot_commits_only_a_valid_claim():
    other = d.Snapshot(projects=[d.Project("elsewhere")], generations=[d.Generation("elsewhere", 1)])
    commits, store = committing_store(lambda project, resources: other)
    with pytest.raises(d.InvalidInput) as raised:
        d.consume(store, d.Request("a", {"servers": 1}))
    assert raised.value.kind == "unknown-project"
    assert commits == []


def test_reentrant_calls_from_a_store_callback_are_answered():
    """A store that itself asks the library (evaluate, a Prepared, even a
    nested consume) while the driver waits on it."""
    prepared = d.Prepared(TREE, LIMITS)
    inner_commits, inner_store = committing_store(lambda project, resources: snapshot())

    def read(project, resources):
        assert d.evaluate(snapshot(), d.Request("a", {"servers": 1})).admitted
        assert prepared.evaluate("a", {"servers": 1}, [0], [0, 0], [1, 2]).admitted
        assert d.consume(inner_store, d.Request("a", {"servers": 1})).attempts == 1
        return snapshot()

    commits, store = committing_store(read)
    done = d.consume(store, d.Request("a", {"servers": 2}))
    assert done.claim == [d.ClaimEntry("a", 2), d.ClaimEntry("org", 1)]
    assert len(commits) == 1 and len(inner_commits) == 1


def test_many_threads_get_the_answers_one_thread_gets():
    want = [d.evaluate(snapshot(u), d.Request("a", {"servers": 3})) for u in range(10)]
    prepared = d.Prepared(TREE, LIMITS)
    wrong = []

    def work():
        for i in range(200):
            u = i % 10
            if d.evaluate(snapshot(u), d.Request("a", {"servers": 3})) != want[u]:
                wrong.append(("evaluate", u))
            got = prepared.evaluate("a", {"servers": 3}, [u], [u, u], [1, 2])
            if got.admitted != want[u].admitted:
                wrong.append(("prepared", u))

    with ThreadPoolExecutor(max_workers=8) as pool:
        for done in [pool.submit(work) for _ in range(8)]:
            done.result()
    assert wrong == []


@pytest.mark.parametrize(
    "bounds, kinds",
    [({"fuel": 1}, ("out-of-fuel",)), ({"memory_limit": 1}, ("memory-limit",))],
)
def test_starved_fuel_or_memory_is_a_guest_fault_and_the_next_call_answers(bounds, kinds):
    for call in (
        lambda: d.evaluate(snapshot(), d.Request("a", {"servers": 1}), **bounds),
        lambda: d.validate(TREE, LIMITS, **bounds),
        lambda: d.Prepared(TREE, LIMITS, **bounds),
    ):
        with pytest.raises(d.GuestFault) as raised:
            call()
        assert raised.value.kind in kinds
    assert d.evaluate(snapshot(), d.Request("a", {"servers": 1})).admitted


def test_memory_stays_bounded_under_repeated_hostile_calls():
    """The same hostile mix, repeated: after a warm-up round, further
    rounds must not keep growing the process (faulted instances are
    dropped, failed conversions free what they made)."""

    def round_():
        outcome(lambda: d.evaluate(snapshot(), d.Request("a", {f"r{i}": 0 for i in range(50_000)})))
        outcome(lambda: d.evaluate(snapshot(), d.Request("a", {"servers": 1}), fuel=1))
        outcome(lambda: d.Prepared(TREE, LIMITS, memory_limit=1))
        p = d.Prepared(TREE, LIMITS)
        for i in range(2_000):
            outcome(lambda: p.evaluate("a", {f"name-{i}" * 20: 0}, [0], [0, 0], [1, 2]))

    round_()
    gc.collect()
    before = rss_bytes()
    for _ in range(3):
        round_()
    gc.collect()
    grown = rss_bytes() - before
    assert grown < 64 * 2**20, f"grew {grown / 2**20:.0f} MiB over three rounds"
