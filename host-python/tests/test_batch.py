"""evaluate_batch and consume_batch through the wheel, the retry policy's
new fields, and the optional store methods (clock, entropy, batch calls)."""

from __future__ import annotations

import pytest

import delimiter as d
from _memory_store import BatchMemoryStore, MemoryStore


def servers(project: str, n: int) -> d.Request:
    return d.Request(project, {"servers": n})


# ---- the policy --------------------------------------------------------------------


def test_the_default_policy_is_the_wits():
    p = d.RetryPolicy()
    assert (p.max_attempts, p.deadline_us, p.base_delay_us, p.max_delay_us, p.seed) == (
        100,
        2_000_000,
        1000,
        50_000,
        None,
    )
    assert d.RetryPolicy(seed=7).seed == 7
    assert d.RetryPolicy(seed=None) == d.RetryPolicy()
    assert "seed=None" in repr(p)


@pytest.mark.parametrize(
    "policy, field",
    [
        (d.RetryPolicy(max_attempts=0), "max-attempts"),
        (d.RetryPolicy(deadline_us=0, base_delay_us=0, max_delay_us=0), "deadline-us"),
        (d.RetryPolicy(base_delay_us=2000, max_delay_us=1000), "base-delay-us"),
        (d.RetryPolicy(deadline_us=1000, max_delay_us=5000), "max-delay-us"),
    ],
)
def test_a_bad_policy_is_invalid_config_naming_the_field(policy, field):
    store = MemoryStore()
    with pytest.raises(d.InvalidInput) as e:
        d.consume(store, servers("a", 1), policy=policy)
    assert (e.value.kind, e.value.field) == ("invalid-config", field)
    assert store.calls["read"] == 0


# ---- optional store methods ------------------------------------------------------------


class Clocked(MemoryStore):
    """Conflicts forever, on a virtual clock."""

    def __init__(self, outcome: str) -> None:
        super().__init__()
        self.outcome = outcome
        self.clock = 0
        self.slept: list[int] = []
        self.asked_entropy = 0

    def commit(self, claim, request):
        self.clock += 100_000
        return self.outcome

    def backoff(self, attempt, delay_us):
        self.slept.append(delay_us)
        self.clock += delay_us

    def now_us(self):
        return self.clock

    def entropy(self):
        self.asked_entropy += 1
        return 12345


def test_the_deadline_runs_on_the_stores_clock():
    store = Clocked("conflict-after-wait")
    with pytest.raises(d.RetriesExhausted) as e:
        d.consume(store, servers("a", 1))
    # Commits of 0.1 s each: the 2 s deadline, not the 100 attempts.
    assert e.value.attempts == 20
    assert store.slept == [], "after a wait the driver reads again at once"


def test_the_jitter_comes_from_the_stores_entropy_unless_seeded():
    a, b = Clocked("conflict"), Clocked("conflict")
    for store in (a, b):
        with pytest.raises(d.RetriesExhausted):
            d.consume(store, servers("a", 1), policy=d.RetryPolicy(max_attempts=4))
    assert a.asked_entropy == 1 and a.slept == b.slept
    seeded = Clocked("conflict")
    with pytest.raises(d.RetriesExhausted):
        d.consume(seeded, servers("a", 1), policy=d.RetryPolicy(max_attempts=4, seed=1))
    assert seeded.asked_entropy == 0 and seeded.slept != a.slept


def test_a_store_without_clock_and_entropy_gets_fresh_jitter_per_call():
    slept = []

    class Plain(MemoryStore):
        def commit(self, claim, request):
            return d.CommitOutcome.CONFLICT

        def backoff(self, attempt, delay_us):
            slept.append(delay_us)

    runs = []
    for _ in range(3):
        slept.clear()
        with pytest.raises(d.RetriesExhausted):
            d.consume(Plain(), servers("a", 1), policy=d.RetryPolicy(max_attempts=4))
        runs.append(tuple(slept))
    assert len(set(runs)) > 1, "no lockstep between calls without a seed"


def test_a_clock_that_raises_propagates_as_itself():
    class Broken(MemoryStore):
        def now_us(self):
            raise ZeroDivisionError("clock")

    with pytest.raises(ZeroDivisionError):
        d.consume(Broken(), servers("a", 1))


def test_commit_may_return_conflict_after_wait_by_name_or_value():
    for outcome in ("conflict-after-wait", d.CommitOutcome.CONFLICT_AFTER_WAIT):
        outcomes = iter([outcome, "committed"])
        store = MemoryStore()
        store.commit = lambda claim, request: next(outcomes)
        store.backoff = lambda attempt, delay_us: pytest.fail("no backoff after a wait")
        assert d.consume(store, servers("a", 1)).attempts == 2
    assert str(d.CommitOutcome.CONFLICT_AFTER_WAIT) == "conflict-after-wait"


# ---- evaluate_batch -------------------------------------------------------------------


def test_evaluate_batch_decides_in_arrival_order_and_returns_errors():
    store = MemoryStore()
    snapshot = store.read("a", ["servers"])
    decided = d.evaluate_batch(
        snapshot, [servers("a", 5), servers("b", 5), servers("nobody", 1), servers("org", 1)]
    )
    assert decided[0] == d.Decision(True, [d.ClaimEntry("a", 1), d.ClaimEntry("org", 1)])
    assert decided[1].admitted
    assert isinstance(decided[2], d.InvalidInput) and decided[2].kind == "unknown-project"
    assert decided[3] == d.Decision(False, violations=[d.Violation("org", "servers", 10, 10, 1)])
    assert d.evaluate_batch(snapshot, []) == []


# ---- consume_batch --------------------------------------------------------------------


def test_consume_batch_reads_once_and_commits_once():
    store = BatchMemoryStore()
    results = d.consume_batch(store, [servers("a", 4), servers("b", 5), servers("b", 2)])
    assert results[0] == d.Consumed([d.ClaimEntry("a", 1), d.ClaimEntry("org", 1)], 1)
    assert results[1] == d.Consumed([d.ClaimEntry("b", 1), d.ClaimEntry("org", 1)], 1)
    assert isinstance(results[2], d.OverLimit)
    assert results[2].violations == [
        d.Violation("b", "servers", 5, 5, 2),
        d.Violation("org", "servers", 10, 9, 2),
    ]
    assert store.calls == {"read": 0, "commit": 0, "read_batch": 1, "commit_batch": 1}
    assert store.committed == [[servers("a", 4), servers("b", 5)]]
    assert store.generations["org"] == 2, "the union claims org once"


def test_a_member_failure_is_that_members_storage_error_with_its_exception():
    duplicate = KeyError("duplicate instance")
    store = BatchMemoryStore(fail=lambda m: duplicate if m.project == "b" else None)
    results = d.consume_batch(store, [servers("a", 1), servers("b", 1), servers("a", 1)])
    assert [type(r).__name__ for r in results] == ["Consumed", "StorageError", "Consumed"]
    failed = results[1]
    assert failed.original is duplicate and failed.__cause__ is duplicate
    assert (failed.message, failed.attempts) == ("'duplicate instance'", 1)
    assert store.committed == [[servers("a", 1), servers("a", 1)]]
    assert store.calls["commit_batch"] == 2


def test_a_member_failure_given_as_text():
    store = BatchMemoryStore()
    store.commit_batch = lambda claim, members: (
        d.MemberFailure(0, "no room in the rack") if len(members) == 2 else "committed"
    )
    results = d.consume_batch(store, [servers("a", 1), servers("b", 1)])
    assert isinstance(results[0], d.StorageError)
    assert (results[0].message, results[0].original) == ("no room in the rack", None)
    assert isinstance(results[1], d.Consumed)


def test_member_failure_shape():
    f = d.MemberFailure(2, ValueError("x"))
    assert (f.index, f.message, type(f.original)) == (2, "x", ValueError)
    assert d.MemberFailure(2, "x") == f
    assert repr(d.MemberFailure(1, "y")) == "MemberFailure(index=1, message='y')"
    with pytest.raises(TypeError):
        d.MemberFailure(0, 42)


def test_a_storage_error_of_the_batch_is_every_pending_members():
    store = BatchMemoryStore()

    def commit_batch(claim, members):
        raise d.StorageError("connection lost")

    store.commit_batch = commit_batch
    results = d.consume_batch(store, [servers("a", 1), servers("b", 9)])
    assert all(isinstance(r, d.StorageError) for r in results)
    assert [r.message for r in results] == ["connection lost"] * 2


def test_another_exception_of_the_store_propagates_from_consume_batch():
    store = BatchMemoryStore()
    store.read_batch = lambda projects, resources: 1 / 0
    with pytest.raises(ZeroDivisionError):
        d.consume_batch(store, [servers("a", 1)])
    store = BatchMemoryStore()
    store.commit_batch = lambda claim, members: "maybe"
    with pytest.raises(TypeError, match="MemberFailure"):
        d.consume_batch(store, [servers("a", 1)])


def test_consume_batch_on_a_store_without_batch_calls_is_a_storage_error():
    results = d.consume_batch(MemoryStore(), [servers("a", 1)])
    assert isinstance(results[0], d.StorageError)
    assert "read_batch" in results[0].message


def test_conflicts_rerun_the_batch():
    outcomes = iter(["conflict", "conflict-after-wait", "committed"])
    store = BatchMemoryStore()
    inner = store.commit_batch
    store.commit_batch = lambda claim, members: (o if (o := next(outcomes)) != "committed" else inner(claim, members))
    results = d.consume_batch(store, [servers("a", 1), servers("b", 1)])
    assert [r.attempts for r in results] == [3, 3]
    assert store.calls["read_batch"] == 3
