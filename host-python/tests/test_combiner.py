"""delimiter.Combiner: concurrent consumes of one process as batches.

On the test MemoryStore (Python dicts, with a pause inside each read and
commit so that threads overlap) and on SqlAlchemyStore over SQLite; under
eventlet's monkey-patching in a subprocess of its own.
"""

from __future__ import annotations

import os
import pathlib
import random
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import pytest

import delimiter as d
from _memory_store import BatchMemoryStore, MemoryStore

HERE = pathlib.Path(__file__).resolve().parent


def servers(project: str, n: int) -> d.Request:
    return d.Request(project, {"servers": n})


def outcome(call: Any) -> Any:
    """What a consume gave: ("ok", claim projects) or (exception type name,
    violations)."""
    try:
        done = call()
    except d.OverLimit as e:
        return ("OverLimit", [(v.project, v.usage, v.limit, v.delta) for v in e.violations])
    except d.QuotaError as e:
        return (type(e).__name__, getattr(e, "kind", None))
    return ("ok", [c.project for c in done.claim])


class Recording(d.Combiner):
    """Records each batch's requests (and the slot of each) in the order the
    leaders ran them: the arrival order the batches decided in."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.order: list[Any] = []

    def _lead(self, group: Any, batch: Any, store: Any) -> None:
        self.order.extend(batch)
        super()._lead(group, batch, store)


def wait_queued(combiner: d.Combiner, n: int, key: Any = None) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        group = combiner._groups.get(key)
        if group is not None:
            with group.cond:
                if len(group.queue) >= n:
                    return
        time.sleep(0.001)
    raise AssertionError(f"{n} requests never queued")


class Gate(BatchMemoryStore):
    """A batch store whose first read_batch waits until the gate opens."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.gate = threading.Event()
        self.entered = threading.Event()

    def read_batch(self, projects, resources):
        if not self.entered.is_set():
            self.entered.set()
            assert self.gate.wait(10)
        return super().read_batch(projects, resources)


def start(target: Any, *args: Any) -> threading.Thread:
    t = threading.Thread(target=target, args=args, daemon=True)
    t.start()
    return t


def run_queued(combiner: d.Combiner, store: Gate, requests: list[d.Request]) -> list[Any]:
    """The first request leads and blocks in its read; the others queue
    behind it in the given order; then the gate opens. Outcomes in order."""
    outcomes: list[Any] = [None] * len(requests)

    def one(i: int) -> None:
        outcomes[i] = outcome(lambda: combiner.consume(store, requests[i]))

    threads = [start(one, 0)]
    assert store.entered.wait(10)
    for i in range(1, len(requests)):
        threads.append(start(one, i))
        wait_queued(combiner, i)
    store.gate.set()
    for t in threads:
        t.join(10)
    return outcomes


def one_by_one(requests: list[d.Request], store: Any = None) -> list[Any]:
    store = store or MemoryStore()
    return [outcome(lambda r=r: d.consume(store, r)) for r in requests]


# ---- semantics ----------------------------------------------------------------------


def test_queued_requests_form_the_next_batch_and_decide_as_one_by_one():
    requests = [
        servers("a", 1),  # leads alone, blocked in its read
        servers("a", 3),
        servers("b", 5),
        servers("a", 2),  # a's own limit: 1 + 3 + 2 > 5
        servers("b", 1),  # org: 9 + 1 = 10, fits
        servers("nobody", 1),
        servers("solo", 4),  # solo's limit 3
        servers("a", 1),  # org is full
        d.Request("b", {"servers": -2}),
        servers("a", 1),  # the release made room
    ]
    combiner = d.Combiner()
    store = Gate()
    got = run_queued(combiner, store, requests)
    alone = MemoryStore()
    want = one_by_one(requests, alone)
    assert got == want
    assert [o[0] for o in want].count("ok") == 5
    assert combiner.stats == d.CombinerStats(batches=2, combined=10, largest=9, lone=0)
    assert combiner.stats.mean_batch == 5.0
    assert [len(c) for c in store.committed] == [1, 4], "one commit per batch, admitted members only"
    assert store.usage == alone.usage


def test_each_follower_gets_its_own_error():
    broken = KeyError("duplicate instance")
    requests = [servers("a", 1), servers("b", 1), servers("nobody", 1), servers("a", 9), d.Request("solo", {"servers": -1})]
    store = Gate(fail=lambda m: broken if m == servers("b", 1) else None)
    combiner = d.Combiner()
    raised: dict[int, BaseException] = {}
    results: dict[int, Any] = {}

    def one(i: int) -> None:
        try:
            results[i] = combiner.consume(store, requests[i])
        except BaseException as e:  # noqa: BLE001 - the test looks at each
            raised[i] = e

    threads = [start(one, 0)]
    assert store.entered.wait(10)
    for i in range(1, len(requests)):
        threads.append(start(one, i))
        wait_queued(combiner, i)
    store.gate.set()
    for t in threads:
        t.join(10)
    assert sorted(results) == [0]
    assert isinstance(raised[1], d.StorageError) and raised[1].original is broken
    assert isinstance(raised[2], d.InvalidInput) and raised[2].kind == "unknown-project"
    assert isinstance(raised[3], d.OverLimit)
    assert isinstance(raised[4], d.InvalidInput) and raised[4].kind == "release-below-zero"
    # The failed members' rows were never written; the leader's were.
    assert store.usage == {("a", "servers"): 1}


def test_many_threads_on_one_root_combine_and_stay_exact():
    rng = random.Random(5)
    store = BatchMemoryStore(pause=0.002)
    combiner = Recording()
    outcomes: dict[int, Any] = {}
    plan = []
    for i in range(16):
        plan.append([(i, k, servers(rng.choice("ab"), rng.choice([1, 1, 2, -1]))) for k in range(12)])

    def worker(jobs: list[Any]) -> None:
        for i, k, request in jobs:
            slot_outcome = outcome(lambda: combiner.consume(store, request))
            outcomes[(i, k)] = (request, slot_outcome)

    threads = [start(worker, jobs) for jobs in plan]
    for t in threads:
        t.join(60)
    stats = combiner.stats
    assert stats.combined == 16 * 12
    assert stats.mean_batch > 1.5, stats
    assert stats.largest <= 32
    # The batches, replayed one by one in the order they were decided,
    # give every request the same outcome and the same final state.
    replay = MemoryStore()
    assert len(combiner.order) == 16 * 12
    for slot in combiner.order:
        assert outcome(slot.outcome) == one_by_one([slot.request], replay)[0], slot.request
    assert sorted(map(repr, outcomes.values())) == sorted(
        repr((s.request, outcome(s.outcome))) for s in combiner.order
    )
    assert store.usage == replay.usage
    assert sum(u for (p, _), u in store.usage.items() if p in "ab") <= 10


def test_a_store_without_batch_calls_consumes_alone():
    store = MemoryStore()
    combiner = d.Combiner()
    assert combiner.consume(store, servers("a", 1)).attempts == 1
    with pytest.raises(d.OverLimit):
        combiner.consume(store, servers("a", 5))
    assert combiner.stats == d.CombinerStats(lone=2)
    assert store.calls["read"] == 2


def test_groups_by_key_run_apart():
    roots = {"org": "org", "a": "org", "b": "org", "solo": "solo"}
    combiner = d.Combiner(key=roots.__getitem__)
    store = BatchMemoryStore()
    combiner.consume(store, servers("a", 1))
    combiner.consume(store, servers("solo", 1))
    assert set(combiner._groups) == {"org", "solo"}
    assert store.used("a") == 1 and store.used("solo") == 1


def test_cap_bounds_a_batch():
    combiner = d.Combiner(cap=3)
    store = Gate()
    got = run_queued(combiner, store, [servers("a", 1)] + [servers("solo", 0)] * 7)
    assert all(o[0] == "ok" for o in got)
    assert [len(c) for c in store.committed] == [1, 3, 3, 1]
    with pytest.raises(ValueError):
        d.Combiner(cap=0)


def test_an_exception_of_the_leaders_store_reaches_every_member():
    class Broken(Gate):
        def commit_batch(self, claim, members):
            raise ZeroDivisionError("bug in the store")

    combiner = d.Combiner()
    store = Broken()
    errors: dict[int, BaseException] = {}

    def one(i: int) -> None:
        try:
            combiner.consume(store, servers("a", 1))
        except ZeroDivisionError as e:
            errors[i] = e

    threads = [start(one, 0)]
    assert store.entered.wait(10)
    threads += [start(one, 1), start(one, 2)]
    wait_queued(combiner, 2)
    store.gate.set()
    for t in threads:
        t.join(10)
    assert sorted(errors) == [0, 1, 2]
    assert len({id(e) for e in errors.values()}) == 3, "each thread raises its own copy"


def test_followers_of_an_interrupted_leader_are_led_by_another():
    class Interrupted(BaseException):
        pass

    class Once(Gate):
        def read_batch(self, projects, resources):
            snapshot = super().read_batch(projects, resources)
            if self.calls["read_batch"] == 2:
                raise Interrupted()
            return snapshot

    combiner = d.Combiner()
    store = Once()
    got: dict[int, Any] = {}

    def one(i: int) -> None:
        try:
            got[i] = combiner.consume(store, servers("a", 1)).attempts
        except Interrupted:
            got[i] = "interrupted"

    threads = [start(one, 0)]
    assert store.entered.wait(10)
    threads += [start(one, 1), start(one, 2)]
    wait_queued(combiner, 2)
    store.gate.set()
    for t in threads:
        t.join(10)
    # 0 alone, then 1 leads 1 and 2 and is interrupted; 2 leads itself.
    assert got == {0: 1, 1: "interrupted", 2: 1}
    assert store.used("a") == 2
    assert combiner.stats.batches == 2, "the interrupted batch is not counted"


# ---- per-member rows on SqlAlchemyStore -------------------------------------------------


@pytest.fixture
def sqlite_store(tmp_path: pathlib.Path) -> Any:
    from sqlalchemy import create_engine

    from delimiter.stores.sqlalchemy import SqlAlchemyStore

    engine = create_engine(f"sqlite:///{tmp_path / 'quota.sqlite'}")
    store = SqlAlchemyStore(engine)
    store.create_schema()
    for p in (d.Project("org"), d.Project("a", "org"), d.Project("b", "org")):
        store.add_project(p)
    store.set_limits(
        d.Limits(registered=[d.RegisteredLimit("servers", 5)], project=[d.ProjectLimit("org", "servers", 10)])
    )
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE instances (name TEXT PRIMARY KEY, project TEXT)")
    yield store
    engine.dispose()


def test_sqlalchemy_members_write_their_own_rows(sqlite_store: Any) -> None:
    """Each caller binds its own rows (with_rows); in a batch the leader's
    store writes every member's with that member's binding. Equal requests
    from different stores go into different batches."""

    def instance(name: str) -> Any:
        def write(conn: Any, request: d.Request) -> None:
            conn.exec_driver_sql("INSERT INTO instances VALUES (?, ?)", (name, request.project))

        return write

    class Gated:
        """sqlite_store, bound to one caller's rows, whose first batch read
        waits for the gate."""

        gate = threading.Event()
        entered = threading.Event()

        def __init__(self, name: str) -> None:
            self.inner = sqlite_store.with_rows(instance(name))

        def read_batch(self, projects, resources):
            if not Gated.entered.is_set():
                Gated.entered.set()
                assert Gated.gate.wait(10)
            return self.inner.read_batch(projects, resources)

        def commit_batch(self, claim, members, *, stores=None):
            inner = None if stores is None else [None if s is None else s.inner for s in stores]
            return self.inner.commit_batch(claim, members, stores=inner)

        def read(self, project, resources):
            return self.inner.read(project, resources)

        def commit(self, claim, request):
            return self.inner.commit(claim, request)

    combiner = Recording()
    names = ["i0", "i1", "i2", "i3", "i4", "i5"]
    requests = [servers("a", 1), servers("b", 2), servers("a", 1), servers("b", 9), servers("a", 1), servers("b", 1)]
    got: dict[int, Any] = {}

    def one(i: int) -> None:
        got[i] = outcome(lambda: combiner.consume(Gated(names[i]), requests[i]))

    threads = [start(one, 0)]
    assert Gated.entered.wait(10)
    for i in range(1, len(requests)):
        threads.append(start(one, i))
        wait_queued(combiner, i)
    Gated.gate.set()
    for t in threads:
        t.join(20)
    assert [got[i][0] for i in range(6)] == ["ok", "ok", "ok", "OverLimit", "ok", "ok"]
    with sqlite_store.engine.connect() as conn:
        rows = sorted(tuple(r) for r in conn.exec_driver_sql("SELECT name, project FROM instances"))
    assert rows == [("i0", "a"), ("i1", "b"), ("i2", "a"), ("i4", "a"), ("i5", "b")]
    assert sqlite_store.usage("a", "servers") == 3 and sqlite_store.usage("b", "servers") == 3
    # i2 and i4 are equal requests from different stores: not one batch.
    batches = combiner.stats.batches
    assert batches >= 3, combiner.stats


# ---- the GIL and eventlet -----------------------------------------------------------


def count_for(seconds: float) -> int:
    n = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        n += 1
    return n


def test_waiting_followers_do_not_hold_the_gil():
    """While 8 followers wait on a leader blocked in its read, a pure-Python
    thread counts about as fast as with nobody waiting (busy-waiting
    followers would each take their share of the GIL)."""
    combiner = d.Combiner()
    store = Gate()
    threads = [start(lambda: combiner.consume(store, servers("a", 0)))]
    assert store.entered.wait(10)
    alone = count_for(0.3)
    for i in range(8):
        threads.append(start(lambda: combiner.consume(store, servers("b", 0))))
    wait_queued(combiner, 8)
    counted: list[int] = []
    counter = start(lambda: counted.append(count_for(0.3)))
    counter.join(10)
    store.gate.set()
    for t in threads:
        t.join(10)
    assert combiner.stats.combined == 9
    assert counted[0] > 0.5 * alone, (counted[0], alone)


EVENTLET_SCRIPT = textwrap.dedent(
    """
    import eventlet
    eventlet.monkey_patch()

    import sys, threading, time
    sys.path.insert(0, {here!r})
    import eventlet.patcher
    assert eventlet.patcher.is_monkey_patched("thread")

    import delimiter as d
    from _memory_store import BatchMemoryStore

    # time.sleep in the store is eventlet's: a green thread yields inside
    # the store's read and commit, which run inside consume_batch.
    store = BatchMemoryStore(pause=0.002)
    combiner = d.Combiner()
    net = {{"a": 0, "b": 0}}
    refused = []
    lock = threading.Lock()

    def worker(i):
        for k in range(10):
            project = "ab"[(i + k) % 2]
            try:
                combiner.consume(store, d.Request(project, {{"servers": 1}}))
            except d.OverLimit:
                refused.append(project)
                continue
            with lock:
                net[project] += 1
            if k % 2 == 0:
                combiner.consume(store, d.Request(project, {{"servers": -1}}))
                with lock:
                    net[project] -= 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s = combiner.stats
    used = {{p: store.used(p) for p in "ab"}}
    assert used == net, (used, net)
    assert sum(used.values()) <= 10 and max(used.values()) <= 5
    assert refused, "the limits were reached"
    assert s.mean_batch > 1.5, s

    # A follower that gives up waiting (eventlet.Timeout inside the wait)
    # leaves the queue: the one behind it leads the next batch.
    gate = threading.Event()

    class Slow(BatchMemoryStore):
        def read_batch(self, projects, resources):
            gate.wait()
            return super().read_batch(projects, resources)

    slow, patient = Slow(), d.Combiner()
    out = {{}}

    def lead():
        out["lead"] = patient.consume(slow, d.Request("a", {{"servers": 1}})).attempts

    def impatient():
        try:
            with eventlet.Timeout(0.05):
                patient.consume(slow, d.Request("a", {{"servers": 1}}))
        except eventlet.Timeout:
            out["impatient"] = "gave up"

    def late():
        out["late"] = patient.consume(slow, d.Request("b", {{"servers": 1}})).attempts

    waiting = []
    for target in (lead, impatient, late):
        waiting.append(threading.Thread(target=target))
        waiting[-1].start()
        eventlet.sleep(0.01)
    eventlet.sleep(0.1)
    gate.set()
    for t in waiting:
        t.join()
    assert out == {{"lead": 1, "impatient": "gave up", "late": 1}}, out
    assert (slow.used("a"), slow.used("b")) == (1, 1)
    print(f"eventlet ok: batches={{s.batches}} combined={{s.combined}} mean={{s.mean_batch:.1f}}")
    """
)


def test_the_combiner_combines_green_threads_under_eventlet():
    pytest.importorskip("eventlet")
    script = EVENTLET_SCRIPT.format(here=str(HERE))
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=dict(os.environ)
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "eventlet ok" in out.stdout
    print(out.stdout.strip())
