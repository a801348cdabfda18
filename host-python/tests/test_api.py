"""The native Python API: types, errors, consume with a Python store,
guest faults, threads and the GIL."""

import pickle
import threading
import time

import pytest

import delimiter as d

TREE = [d.Project("org"), d.Project("a", parent="org"), d.Project("b", parent="org")]
LIMITS = d.Limits(
    registered=[d.RegisteredLimit("servers", 8)],
    project=[d.ProjectLimit("org", "servers", 10)],
)


def snapshot(a=6, b=3, generations=(("org", 41), ("a", 3), ("b", 7))):
    return d.Snapshot(
        projects=TREE,
        limits=LIMITS,
        usage=[d.UsageEntry("a", "servers", a), d.UsageEntry("b", "servers", b)],
        generations=[d.Generation(p, g) for p, g in generations],
    )


# ---- values ------------------------------------------------------------------


def test_evaluate_admits_with_the_claim_and_refuses_with_every_violation():
    ok = d.evaluate(snapshot(), d.Request("b", {"servers": 1}))
    assert ok == d.Decision(True, claim=[d.ClaimEntry("b", 7), d.ClaimEntry("org", 41)])
    assert ok.violations == []
    no = d.evaluate(snapshot(), d.Request("b", [d.Delta("servers", 2)]))
    assert not no.admitted
    assert no.violations == [d.Violation("org", "servers", 10, 9, 2)]


def test_values_are_frozen_hashable_and_print_like_their_constructor():
    p = d.Project("a", parent="org")
    with pytest.raises(AttributeError):
        p.id = "b"
    assert {p, d.Project("a", "org")} == {p}
    assert repr(p) == "Project(id='a', parent='org')"
    assert eval(repr(d.Violation("o", "r", 1, 2, 3)), vars(d)) == d.Violation("o", "r", 1, 2, 3)
    r = d.Request("a", {"servers": 1, "cores": -2})
    assert r.deltas == [d.Delta("servers", 1), d.Delta("cores", -2)]
    s = snapshot()
    assert s == snapshot() and hash(s) == hash(snapshot())
    assert s.usage == [d.UsageEntry("a", "servers", 6), d.UsageEntry("b", "servers", 3)]
    assert d.Snapshot(usage=d.PathUsage()).usage == d.PathUsage()


def test_config_takes_models_by_enum_or_by_name():
    assert d.Config().model == d.Model.NESTED
    assert d.Config(model="flat").model == d.Model.FLAT
    assert d.Config(model="strict_two_level").model == d.Model.STRICT_TWO_LEVEL
    assert d.Config(d.Model.STRICT_TWO_LEVEL).model.value == "strict-two-level"
    assert d.parse_model("strict_two_level") == d.Model.STRICT_TWO_LEVEL
    assert d.Config(missing_limit="unlimited").missing_limit == d.MissingLimit.UNLIMITED
    with pytest.raises(d.InvalidInput) as e:
        d.Config(model="cgroup")
    assert (e.value.kind, e.value.model) == ("unknown-model", "cgroup")
    with pytest.raises(d.InvalidInput) as e:
        d.Config(missing_limit="sometimes")
    assert (e.value.kind, e.value.field) == ("invalid-config", "missing-limit")
    with pytest.raises(d.InvalidInput) as e:
        d.evaluate(snapshot(), d.Request("a", {"servers": 1}), d.Config(max_depth=0))
    assert (e.value.kind, e.value.field) == ("invalid-config", "max-depth")


def test_headroom_and_max_count():
    rows = d.headroom(snapshot(), "b", ["servers", "cores"], d.Config(missing_limit="unlimited"))
    assert rows == [d.ResourceHeadroom("cores", None), d.ResourceHeadroom("servers", 1)]
    assert rows[0].unlimited and not rows[1].unlimited
    assert d.max_count(snapshot(), d.Request("b", {"servers": 1})) == d.Count(1)
    assert d.max_count(snapshot(), d.Request("b", {"servers": 0})).unlimited


def test_limit_of_is_the_override_else_the_registered_limit():
    limits = d.Limits(
        registered=[d.RegisteredLimit("servers", 5)],
        project=[d.ProjectLimit("a", "servers", -1)],
    )
    assert limits.limit_of("a", "servers") == -1
    assert limits.limit_of("b", "servers") == 5
    assert limits.limit_of("a", "cores") is None


def test_validate_reports_findings_as_values():
    findings = d.validate(
        [d.Project("p"), d.Project("c", "p"), d.Project("x", "nowhere")],
        d.Limits(project=[d.ProjectLimit("p", "cores", 4), d.ProjectLimit("c", "cores", 5)]),
        d.Config(model="strict-two-level"),
    )
    invalid, child = findings
    assert isinstance(invalid, d.InvalidFinding)
    assert (invalid.kind, invalid.project) == ("unknown-parent", "x")
    assert isinstance(invalid.error, d.InvalidInput) and invalid.error.parent == "nowhere"
    assert child == d.ChildLimitExceedsParent("p", "c", "cores", 4, 5)
    assert child.kind == "child-limit-exceeds-parent"
    assert d.validate(TREE, LIMITS) == []


def test_oslo_check():
    check = d.OsloCheck(
        "p",
        {"servers": 1, "cores": 0},
        registered=[d.ResourceLimit("servers", 10), d.ResourceLimit("cores", 2)],
        project=[d.ResourceLimit("servers", 5)],
        usage=[d.ResourceUsage("servers", 5), d.ResourceUsage("cores", 3)],
    )
    assert d.oslo_check(check) == [
        d.OverLimitInfo("cores", 2, 3, 0),
        d.OverLimitInfo("servers", 5, 5, 1),
    ]


# ---- errors ------------------------------------------------------------------


def test_invalid_input_carries_its_kind_and_fields():
    with pytest.raises(d.InvalidInput) as raised:
        d.evaluate(snapshot(a=1), d.Request("a", {"servers": -2}))
    e = raised.value
    assert isinstance(e, d.QuotaError) and isinstance(e, ValueError)
    assert e.kind == "release-below-zero"
    assert (e.project, e.resource, e.usage, e.delta) == ("a", "servers", 1, -2)
    assert e.fields == {"project": "a", "resource": "servers", "usage": 1, "delta": -2}
    assert e.parent is None  # fields a kind does not have are None
    assert "servers" in str(e)
    again = pickle.loads(pickle.dumps(e))
    assert (type(again), again.kind, again.fields, str(again)) == (type(e), e.kind, e.fields, str(e))


def test_a_registered_limit_error_names_no_project():
    with pytest.raises(d.InvalidInput) as raised:
        d.evaluate(
            d.Snapshot(projects=[d.Project("a")], limits=d.Limits([d.RegisteredLimit("x", -2)])),
            d.Request("a", {"x": 1}),
        )
    assert raised.value.kind == "invalid-limit"
    assert ("project", None) in raised.value.fields.items()
    assert raised.value.limit == -2


PREPARED = d.Prepared(TREE, LIMITS)


@pytest.mark.parametrize(
    "call, kind, message",
    [
        (
            lambda: d.evaluate(snapshot(), d.Request("nobody", {"servers": 1})),
            "unknown-project",
            'project "nobody" is not in the tree',
        ),
        (
            lambda: d.evaluate(snapshot(a=1), d.Request("a", {"servers": -2})),
            "release-below-zero",
            'releasing 2 of "servers" from project "a" would take usage 1 below zero',
        ),
        (
            lambda: d.Config(model="cgroup"),
            "unknown-model",
            'unknown enforcement model "cgroup" (expected flat, strict-two-level or nested)',
        ),
        (
            lambda: d.Config(missing_limit="sometimes"),
            "invalid-config",
            "configuration value missing-limit is out of range",
        ),
        (
            lambda: d.Prepared([d.Project("a"), d.Project("")]),
            "empty-id",
            "empty project id",
        ),
        (
            lambda: PREPARED.evaluate("a", {"servers": 1}, [0], [0], [1, 2]),
            "shape-mismatch",
            "subtree has 1 entries where the request and its path need 2",
        ),
        (
            lambda: PREPARED.path("nobody"),
            "unknown-project",
            'project "nobody" is not in the tree',
        ),
    ],
)
def test_messages_are_the_components_own(call, kind, message):
    """Neither Rust nor Python writes an error message: each is the core's
    text, as every host shows it."""
    with pytest.raises(d.InvalidInput) as raised:
        call()
    assert (raised.value.kind, str(raised.value)) == (kind, message)


def test_a_findings_error_has_the_components_message():
    (finding,) = d.validate([d.Project("x", "nowhere")])
    assert str(finding.error) == 'project "x" names parent "nowhere", which is not in the tree'


@pytest.mark.parametrize(
    "error",
    [
        d.OverLimit([d.Violation("o", "r", 1, 1, 1)], 2),
        d.RetriesExhausted(5),
        d.StorageError("db down", 3),
        d.GuestFault("trap", "unreachable"),
    ],
)
def test_errors_pickle(error):
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error) and str(again) == str(error)


def test_guest_faults_are_their_own_kind_of_error():
    with pytest.raises(d.GuestFault) as raised:
        d.evaluate(snapshot(), d.Request("b", {"servers": 1}), fuel=1)
    assert raised.value.kind == "out-of-fuel"
    assert not isinstance(raised.value, (d.InvalidInput, d.OverLimit, ValueError))
    with pytest.raises(d.GuestFault) as raised:
        d.evaluate(snapshot(), d.Request("b", {"servers": 1}), memory_limit=1)
    assert raised.value.kind == "memory-limit"
    # The faulted instance was dropped; the next call works.
    assert d.evaluate(snapshot(), d.Request("b", {"servers": 1})).admitted


# ---- consume -----------------------------------------------------------------


class MemoryStore:
    """Usage and generations in dicts; commit is one compare-and-update."""

    def __init__(self, usage=None, generations=None):
        self.usage = dict(usage or {("a", "servers"): 6, ("b", "servers"): 3})
        self.generations = dict(generations or {"org": 41, "a": 3, "b": 7})
        self.log = []

    def read(self, project, resources):
        self.log.append("read")
        return d.Snapshot(
            projects=TREE,
            limits=LIMITS,
            usage=[d.UsageEntry(p, r, u) for (p, r), u in sorted(self.usage.items())],
            generations=[d.Generation(p, g) for p, g in sorted(self.generations.items())],
        )

    def commit(self, claim, request):
        self.log.append("commit")
        if any(self.generations[c.project] != c.generation for c in claim):
            return d.CommitOutcome.CONFLICT
        for c in claim:
            self.generations[c.project] += 1
        for delta in request.deltas:
            key = (request.project, delta.resource)
            self.usage[key] = self.usage.get(key, 0) + delta.delta
        return d.CommitOutcome.COMMITTED

    def backoff(self, attempt, delay_us):
        self.log.append("backoff")


def test_consume_commits_through_a_python_store():
    store = MemoryStore()
    done = d.consume(store, d.Request("b", {"servers": 1}))
    assert done == d.Consumed([d.ClaimEntry("b", 7), d.ClaimEntry("org", 41)], 1)
    assert store.usage[("b", "servers")] == 4
    assert store.generations == {"org": 42, "a": 3, "b": 8}


def test_consume_refusal_is_final_and_commits_nothing():
    store = MemoryStore()
    with pytest.raises(d.OverLimit) as raised:
        d.consume(store, d.Request("b", {"servers": 2}))
    assert raised.value.violations == [d.Violation("org", "servers", 10, 9, 2)]
    assert raised.value.attempts == 1
    assert store.log == ["read"]


def test_consume_retries_conflicts_then_gives_up():
    store = MemoryStore()
    store.commit = lambda claim, request: (store.log.append("commit"), "conflict")[1]
    with pytest.raises(d.RetriesExhausted) as raised:
        d.consume(store, d.Request("b", {"servers": 1}), policy=d.RetryPolicy(max_attempts=3))
    assert raised.value.attempts == 3
    assert store.log == ["read", "commit", "backoff"] * 2 + ["read", "commit"]


def test_consume_without_a_backoff_method_sleeps_itself():
    conflicts = iter(["conflict", "committed"])
    store = d.CallbackStore(MemoryStore().read, lambda claim, request: next(conflicts))
    started = time.monotonic()
    done = d.consume(
        store, d.Request("b", {"servers": 1}), policy=d.RetryPolicy(base_delay_us=20000, seed=1)
    )
    assert done.attempts == 2
    assert time.monotonic() - started < 5


def test_a_storage_error_raised_by_the_store_is_reported_with_its_attempt():
    store = MemoryStore()
    original = d.StorageError("connection reset")

    def commit(claim, request):
        raise original

    store.commit = commit
    with pytest.raises(d.StorageError) as raised:
        d.consume(store, d.Request("b", {"servers": 1}))
    assert (raised.value.message, raised.value.attempts) == ("connection reset", 1)
    assert raised.value.__cause__ is original
    assert raised.value.original is original


def test_a_storage_error_wrapping_the_databases_error_hands_that_error_over():
    store = MemoryStore()
    duplicate = KeyError("duplicate key")

    def commit(claim, request):
        raise d.StorageError("duplicate key", original=duplicate)

    store.commit = commit
    before = (dict(store.usage), dict(store.generations))
    with pytest.raises(d.StorageError) as raised:
        d.consume(store, d.Request("b", {"servers": 1}))
    assert raised.value.original is duplicate
    assert raised.value.__cause__ is duplicate
    assert (raised.value.message, raised.value.attempts) == ("duplicate key", 1)
    assert (store.usage, store.generations) == before
    again = pickle.loads(pickle.dumps(raised.value))
    assert (again.message, again.attempts, type(again.original)) == ("duplicate key", 1, KeyError)


class Boom(Exception):
    pass


@pytest.mark.parametrize("method", ["read", "commit", "backoff"])
def test_any_other_exception_in_a_callback_propagates_as_itself(method):
    store = MemoryStore()
    boom = Boom(method)
    if method == "backoff":
        # Reach backoff through a conflict.
        store.commit = lambda claim, request: (store.log.append("commit"), "conflict")[1]

    def raiser(*args):
        store.log.append(method + " raised")
        raise boom

    setattr(store, method, raiser)
    before = (dict(store.usage), dict(store.generations))
    with pytest.raises(Boom) as raised:
        d.consume(store, d.Request("b", {"servers": 1}))
    assert raised.value is boom
    assert any("test_api.py" in str(f.filename) for f in __import__("traceback").extract_tb(raised.tb))
    # The guest stopped at once: nothing after the failing call, nothing written.
    assert store.log[-1] == method + " raised"
    assert (store.usage, store.generations) == before
    # And the next consume works.
    assert d.consume(MemoryStore(), d.Request("b", {"servers": 1})).attempts == 1


def test_a_store_returning_the_wrong_type_raises_type_error():
    store = MemoryStore()
    store.read = lambda project, resources: {"projects": []}
    with pytest.raises(TypeError, match="delimiter.Snapshot"):
        d.consume(store, d.Request("b", {"servers": 1}))
    store = MemoryStore()
    store.commit = lambda claim, request: True
    with pytest.raises(TypeError, match="CommitOutcome"):
        d.consume(store, d.Request("b", {"servers": 1}))


def test_a_store_callback_may_call_delimiter_again():
    store = MemoryStore()
    inner = []
    read = store.read

    def reading(project, resources):
        s = read(project, resources)
        inner.append(d.evaluate(s, d.Request(project, {"servers": 1})).admitted)
        return s

    store.read = reading
    assert d.consume(store, d.Request("b", {"servers": 1})).attempts == 1
    assert inner == [True]


# ---- threads and the GIL -------------------------------------------------------


def test_calls_from_many_threads_agree():
    want = d.evaluate(snapshot(), d.Request("b", {"servers": 1}))
    results, errors = [], []

    def work():
        try:
            for _ in range(300):
                results.append(d.evaluate(snapshot(), d.Request("b", {"servers": 1})) == want)
            results.append(d.consume(MemoryStore(), d.Request("b", {"servers": 1})).attempts == 1)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 8 * 301 and all(results)


def test_the_gil_is_released_while_the_component_runs():
    """With a switch interval far longer than the test, a thread holding the
    GIL keeps it until it blocks or releases it itself. So if this thread
    gets to run while the other one is inside a call, that call released
    the GIL; if it had not, this thread would only run once the call is
    over."""
    import sys

    n = 20000
    big = d.Snapshot(
        projects=[d.Project("root")] + [d.Project(f"p{i}", "root") for i in range(n)],
        limits=d.Limits(registered=[d.RegisteredLimit("servers", -1)]),
        usage=[d.UsageEntry(f"p{i}", "servers", 1) for i in range(n)],
        generations=[d.Generation("root", 1), d.Generation("p1", 1)],
    )
    request = d.Request("p1", {"servers": 1})
    state = ["starting"]

    def call():
        state[0] = "in-call"
        d.evaluate(big, request)
        state[0] = "done"

    seen = None
    interval = sys.getswitchinterval()
    sys.setswitchinterval(100.0)
    try:
        worker = threading.Thread(target=call)
        worker.start()
        while seen is None:
            if state[0] != "starting":
                seen = state[0]
            else:
                time.sleep(0)  # let the worker run up to its call
        worker.join(timeout=60)
    finally:
        sys.setswitchinterval(interval)
    assert seen == "in-call"
