"""SqlAlchemyStore on SQLite, PostgreSQL and MariaDB.

SQLite always; PostgreSQL and MariaDB when DELIMITER_TEST_POSTGRES_URL /
DELIMITER_TEST_MARIADB_URL are set (CI sets both), skipped with the reason
otherwise. Every test gets a namespace of its own (see ``_databases``), with
the fixture tree: org (10 servers) > team (unlimited) > {a, b}, registered
default 8.
"""

from __future__ import annotations

import itertools
import os
import pathlib
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, delete, event, func, insert, inspect, literal, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

import delimiter as d
from _databases import KINDS, Database, skip_reason
from delimiter.stores import sqlalchemy as store_module
from delimiter.stores.sqlalchemy import SqlAlchemyStore, generations, usage

REPO = pathlib.Path(__file__).resolve().parents[2]
QUICK = d.RetryPolicy(max_attempts=50, base_delay_us=50, max_delay_us=2000, seed=7)
NESTED = d.Config("nested")
#: A conflict of either kind (a missed UPDATE counts as waited when it took
#: 1 ms, which a loaded machine can take without any rival).
LOST = (d.CommitOutcome.CONFLICT, d.CommitOutcome.CONFLICT_AFTER_WAIT)


def servers(project: str, n: int) -> d.Request:
    return d.Request(project, {"servers": n})


def seed(store: SqlAlchemyStore) -> None:
    store.create_schema()
    for p in (d.Project("org"), d.Project("team", "org"), d.Project("a", "team"), d.Project("b", "team")):
        store.add_project(p)
    store.set_limits(
        d.Limits(
            registered=[d.RegisteredLimit("servers", 8)],
            project=[d.ProjectLimit("org", "servers", 10), d.ProjectLimit("team", "servers", -1)],
        )
    )


_namespaces = itertools.count()


def namespace() -> str:
    """A schema / database name no other run uses."""
    return f"delimiter_pytest_{os.getpid()}_{next(_namespaces)}"


@pytest.fixture(params=KINDS)
def db(request: pytest.FixtureRequest) -> Iterator[Database]:
    reason = skip_reason(request.param)
    if reason is not None:
        pytest.skip(f"{request.param}: {reason}")
    database = Database.new(request.param, namespace())
    database.create()
    yield database
    database.drop()


@pytest.fixture
def engine(db: Database) -> Iterator[Engine]:
    engine = db.engine()
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine: Engine) -> SqlAlchemyStore:
    store = SqlAlchemyStore(engine)
    seed(store)
    return store


def path_generations(store: SqlAlchemyStore) -> list[Any]:
    return [store.generation(p) for p in ("a", "team", "org")]


# ---- the store protocol ------------------------------------------------------------


def test_admits_commits_refuses_and_releases(store: SqlAlchemyStore) -> None:
    d.consume(store, servers("a", 6), NESTED, QUICK)
    snapshot = store.read("b", ["servers"])
    assert [p.id for p in snapshot.projects] == ["b", "team", "org"], "the path only: not a"
    assert isinstance(snapshot.usage, d.PathUsage)
    assert d.UsageEntry("org", "servers", 6) in snapshot.usage.subtree
    assert snapshot.usage.local == [], "b itself uses nothing yet"

    g_org = store.generation("org")
    assert g_org is not None
    done = d.consume(store, servers("b", 3), NESTED, QUICK)
    assert [c.project for c in done.claim] == ["b", "org"], "team is unlimited: not claimed"
    assert store.generation("org") == g_org + 1, "the claim bumped org"

    with pytest.raises(d.OverLimit) as refused:
        d.consume(store, servers("b", 2), NESTED, QUICK)
    assert [(v.project, v.usage, v.limit) for v in refused.value.violations] == [("org", 9, 10)]
    assert store.usage("b", "servers") == 3, "a refusal writes nothing"

    g_b = store.generation("b")
    assert g_b is not None
    d.consume(store, servers("b", -3), NESTED, QUICK)
    assert store.usage("b", "servers") == 0
    assert store.generation("b") == g_b + 1, "a release moves the generation too"


def test_read_is_the_path_usage_form_with_subtree_sums(store: SqlAlchemyStore) -> None:
    d.consume(store, servers("a", 2), NESTED, QUICK)
    d.consume(store, servers("b", 3), NESTED, QUICK)
    snapshot = store.read("a", ["servers", "cores"])
    assert snapshot.usage == d.PathUsage(
        local=[d.ResourceUsage("servers", 2)],
        subtree=[
            d.UsageEntry("a", "servers", 2),
            d.UsageEntry("org", "servers", 5),
            d.UsageEntry("team", "servers", 5),
        ],
    )
    assert snapshot.generations == [d.Generation("a", 2), d.Generation("team", 1), d.Generation("org", 3)]
    assert snapshot.limits == d.Limits(
        registered=[d.RegisteredLimit("servers", 8)],
        project=[d.ProjectLimit("team", "servers", -1), d.ProjectLimit("org", "servers", 10)],
    )
    # Resources not asked for are left out.
    assert store.read("a", ["cores"]).usage == d.PathUsage()


def test_stale_generation_rolls_the_whole_commit_back(store: SqlAlchemyStore) -> None:
    g_a, g_org = store.generation("a"), store.generation("org")
    assert g_a is not None and g_org is not None
    stale = [d.ClaimEntry("a", g_a), d.ClaimEntry("org", g_org - 1)]
    assert store.commit(stale, servers("a", 1)) in LOST
    assert store.generation("a") == g_a, "a's bump rolled back with the rest"
    assert store.usage("a", "servers") == 0
    # A generation no BIGINT holds cannot be current either.
    assert store.commit([d.ClaimEntry("a", 2**64 - 1)], servers("a", 1)) == d.CommitOutcome.CONFLICT


class Interleaved:
    """A rival connection commits right after our first read."""

    def __init__(self, store: SqlAlchemyStore, rival: SqlAlchemyStore) -> None:
        self.store, self.rival, self.reads = store, rival, 0

    def read(self, project: str, resources: list[str]) -> d.Snapshot:
        snapshot = self.store.read(project, resources)
        self.reads += 1
        if self.reads == 1:
            d.consume(self.rival, servers("b", 1), NESTED, QUICK)
        return snapshot

    def commit(self, claim: list[d.ClaimEntry], request: d.Request) -> d.CommitOutcome:
        return self.store.commit(claim, request)

    def backoff(self, attempt: int, delay_us: int) -> None:
        pass


def test_conflict_with_a_rival_is_retried_on_a_fresh_read(db: Database, store: SqlAlchemyStore) -> None:
    rival_engine = db.engine()
    try:
        racing = Interleaved(store, SqlAlchemyStore(rival_engine))
        done = d.consume(racing, servers("a", 2), NESTED, QUICK)
    finally:
        rival_engine.dispose()
    assert done.attempts == 2, "the first commit lost to the rival"
    assert store.usage("a", "servers") == 2, "written once, by the retry"
    assert store.usage("b", "servers") == 1


class LockingInterleaved(Interleaved):
    """Interleaved, passing the locked attempts through (counted) and
    counting backoffs instead of sleeping."""

    def __init__(self, store: SqlAlchemyStore, rival: SqlAlchemyStore, rival_delta: int) -> None:
        super().__init__(store, rival)
        self.rival_delta, self.locked_reads, self.unlocks, self.backoffs = rival_delta, 0, 0, 0

    def read(self, project: str, resources: list[str]) -> d.Snapshot:
        snapshot = self.store.read(project, resources)
        self.reads += 1
        if self.reads == 1:
            d.consume(self.rival, servers("b", self.rival_delta), NESTED, QUICK)
        return snapshot

    def read_locked(self, project: str, resources: list[str]) -> d.Snapshot | None:
        self.locked_reads += 1
        return self.store.read_locked(project, resources)

    def unlock(self) -> None:
        self.unlocks += 1
        self.store.unlock()

    def backoff(self, attempt: int, delay_us: int) -> None:
        self.backoffs += 1


def test_lock_after_conflict_commits_in_a_locked_attempt_and_a_refusal_releases_it(
    db: Database, store: SqlAlchemyStore
) -> None:
    locking = d.RetryPolicy(max_attempts=50, base_delay_us=50, max_delay_us=2000, seed=7, lock_after_conflict=True)
    rival_engine = db.engine()
    rival = SqlAlchemyStore(rival_engine)
    try:
        racing = LockingInterleaved(store, rival, 1)
        done = d.consume(racing, servers("a", 2), NESTED, locking)
        assert done.attempts == 2, "the first commit lost to the rival"
        assert (racing.reads, racing.locked_reads, racing.backoffs) == (1, 1, 0), "then a locked read, no backoff"
        assert store.usage("a", "servers") == 2

        # org: 3 of 10 used. a +5 fits the first read; the rival's b +4
        # then leaves 3, and the locked attempt refuses at org.
        racing = LockingInterleaved(store, rival, 4)
        with pytest.raises(d.OverLimit) as refused:
            d.consume(racing, servers("a", 5), NESTED, locking)
        assert refused.value.attempts == 2 and refused.value.violations[0].project == "org"
        assert racing.unlocks == 1
        assert store.usage("a", "servers") == 2, "the refusal wrote nothing"

        # The locks are gone: the rival writes the same rows at once.
        released: list[Any] = []
        t = threading.Thread(target=lambda: released.append(d.consume(rival, servers("b", -4), NESTED, QUICK)))
        t.start()
        t.join(10)
        assert released, "the rival still waits on a lock the refused attempt kept"
        assert store.usage("b", "servers") == 1
    finally:
        rival_engine.dispose()


def test_concurrent_threads_never_overrun_the_parent(store: SqlAlchemyStore) -> None:
    # One store shared by every thread: each call checks out its own
    # connection, and the decisions run without the GIL.
    admitted = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        project = "a" if index % 2 == 0 else "b"
        for _ in range(6):
            try:
                d.consume(store, servers(project, 1), NESTED, QUICK)
            except (d.OverLimit, d.RetriesExhausted):
                continue
            with lock:
                admitted.append(project)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    a, b = store.usage("a", "servers"), store.usage("b", "servers")
    assert a + b == len(admitted), "every admission written once"
    assert a + b == 10, "org's limit is reached exactly, never passed"
    assert a <= 8 and b <= 8


# ---- the one row order, waited conflicts, batches ---------------------------------------


def generation_updates(engine: Engine) -> list[str]:
    """Records the project of every UPDATE of a generation row, in the
    order run (the list fills as statements run)."""
    seen: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("UPDATE DELIMITER_GENERATIONS"):
            if isinstance(parameters, dict):
                seen.append(parameters["p"])
            else:  # positional: the only string is the project id
                seen.append(next(x for x in parameters if isinstance(x, str)))

    event.listen(engine, "before_cursor_execute", before)
    return seen


def test_a_lone_commit_takes_the_rows_root_first(engine: Engine, store: SqlAlchemyStore) -> None:
    claim = d.evaluate(store.read("a", ["servers"]), servers("a", 1), NESTED).claim
    assert [c.project for c in claim] == ["a", "org"], "from the project up"
    seen = generation_updates(engine)
    assert store.commit(claim, servers("a", 1)) == d.CommitOutcome.COMMITTED
    assert seen == ["org", "a"]


def hold_root(db: Database, engine: Engine, seconds: float) -> threading.Thread:
    """A rival transaction bumps org's generation and keeps its row (its
    write lock, on SQLite) for ``seconds``, then commits."""
    locked = threading.Event()

    def rival() -> None:
        with engine.connect() as conn:
            if db.kind == "sqlite":
                conn.execution_options(**{store_module._SQLITE_BEGIN: "BEGIN IMMEDIATE"})
            with conn.begin():
                conn.execute(store_module._bump, {"p": "org"})
                locked.set()
                time.sleep(seconds)

    t = threading.Thread(target=rival)
    t.start()
    assert locked.wait(10)
    return t


def test_a_miss_after_waiting_for_the_winner_is_conflict_after_wait(
    db: Database, engine: Engine, store: SqlAlchemyStore
) -> None:
    patient = SqlAlchemyStore(engine, waited_us=100_000)
    stale = [d.ClaimEntry("a", 1), d.ClaimEntry("org", 0)]
    assert patient.commit(stale, servers("a", 1)) == d.CommitOutcome.CONFLICT, "stale, no wait"
    for commit in (
        lambda claim: patient.commit(claim, servers("a", 1)),
        lambda claim: patient.commit_batch(list(reversed(claim)), [servers("a", 1)]),
    ):
        read = patient.read("a", ["servers"])
        claim = d.evaluate(read, servers("a", 1), NESTED).claim
        rival = hold_root(db, engine, 0.4)
        try:
            assert commit(claim) == d.CommitOutcome.CONFLICT_AFTER_WAIT
        finally:
            rival.join()
    assert store.usage("a", "servers") == 0


def tree_with_a_second_root(store: SqlAlchemyStore) -> None:
    store.add_project(d.Project("solo"))
    store.add_project(d.Project("s1", "solo"))
    store.add_project(d.Project("other"))
    store.set_limits(d.Limits(project=[d.ProjectLimit("solo", "servers", 3)]))


def test_read_batch_reads_the_members_whole_trees_in_one_statement(
    engine: Engine, store: SqlAlchemyStore
) -> None:
    tree_with_a_second_root(store)
    d.consume(store, servers("b", 2), NESTED, QUICK)
    d.consume(store, servers("s1", 1), NESTED, QUICK)
    d.consume(store, servers("other", 1), NESTED, QUICK)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    snapshot = store.read_batch(["a", "s1"], ["servers", "cores"])
    assert len([s for s in statements if "SELECT" in s.upper()]) == 1, statements
    assert [(p.id, p.parent) for p in snapshot.projects] == [
        ("a", "team"), ("b", "team"), ("org", None), ("s1", "solo"), ("solo", None), ("team", "org")
    ], "the whole trees of a and s1: b too, other not"
    assert sorted(snapshot.usage, key=lambda u: u.project) == [
        d.UsageEntry("b", "servers", 2), d.UsageEntry("s1", "servers", 1)
    ]
    assert {g.project: g.generation for g in snapshot.generations} == {
        "a": 1, "b": 2, "org": 2, "team": 1, "s1": 2, "solo": 2
    }
    assert snapshot.limits.registered == [d.RegisteredLimit("servers", 8)]
    assert sorted((l.project, l.limit) for l in snapshot.limits.project) == [
        ("org", 10), ("solo", 3), ("team", -1)
    ]
    decided = d.evaluate_batch(snapshot, [servers("a", 8), servers("s1", 3), servers("a", 1)], NESTED)
    assert [x.admitted for x in decided] == [True, False, False]


def test_consume_batch_commits_once_with_each_generation_bumped_once(
    engine: Engine, store: SqlAlchemyStore
) -> None:
    d.consume(store, servers("team", 1), NESTED, QUICK)
    before = {p: store.generation(p) for p in ("org", "team", "a", "b")}
    seen = generation_updates(engine)
    results = d.consume_batch(
        store,
        [servers("b", 2), servers("a", 1), d.Request("team", {"servers": -1}), servers("a", 1), servers("b", 9)],
        NESTED,
        QUICK,
    )
    assert [type(r).__name__ for r in results] == ["Consumed"] * 4 + ["OverLimit"]
    # The union claim (org, a, b) and team's release, in the one row order.
    assert seen == ["org", "team", "a", "b"]
    after = {p: store.generation(p) for p in ("org", "team", "a", "b")}
    assert {p: after[p] - before[p] for p in after} == {"org": 1, "team": 1, "a": 1, "b": 1}
    assert (store.usage("a", "servers"), store.usage("b", "servers"), store.usage("team", "servers")) == (2, 2, 0)


def test_a_stale_batch_commit_writes_nothing(store: SqlAlchemyStore) -> None:
    stale = [d.ClaimEntry("org", 0), d.ClaimEntry("a", 1)]
    assert store.commit_batch(stale, [servers("a", 1), servers("b", 1)]) in LOST
    assert path_generations(store) == [1, 1, 1]
    assert store.usage("a", "servers") == 0 and store.usage("b", "servers") == 0


def test_a_member_whose_rows_fail_is_reported_and_nothing_is_written(store: SqlAlchemyStore) -> None:
    claim = [d.ClaimEntry("org", 1), d.ClaimEntry("a", 1)]
    # b has nothing to release: the CHECK (usage >= 0) refuses its row.
    outcome = store.commit_batch(claim, [servers("a", 1), servers("b", -1)])
    assert isinstance(outcome, d.MemberFailure) and outcome.index == 1
    assert isinstance(outcome.original, d.StorageError)
    assert isinstance(outcome.original.original, DBAPIError), "the database's own error"
    assert path_generations(store) == [1, 1, 1] and store.generation("b") == 1
    assert store.usage("a", "servers") == 0


def test_consume_batch_gives_a_failed_member_its_error_and_commits_the_rest(
    engine: Engine, store: SqlAlchemyStore
) -> None:
    service.create_all(engine)

    def boot(conn: Connection, request: d.Request) -> None:
        # b's instance takes id 1000, which exists: b's rows fail.
        row = {"project_id": request.project, "vcpus": 1}
        if request.project == "b":
            row["id"] = 1000
        conn.execute(insert(instances).values(**row))

    with engine.begin() as conn:
        conn.execute(insert(instances).values(id=1000, project_id="a", vcpus=1))
    booting = store.with_rows(boot)
    results = d.consume_batch(booting, [servers("a", 1), servers("b", 1), servers("a", 1)], NESTED, QUICK)
    assert [type(r).__name__ for r in results] == ["Consumed", "StorageError", "Consumed"]
    assert isinstance(results[1].original, IntegrityError), repr(results[1].original)
    assert results[1].attempts == 1
    assert store.usage("a", "servers") == 2 and store.usage("b", "servers") == 0
    assert instance_count(engine) == 3


def test_commit_batch_writes_each_member_with_its_own_stores_rows(engine: Engine, store: SqlAlchemyStore) -> None:
    service.create_all(engine)

    def vcpus(n: int) -> Any:
        return lambda conn, request: conn.execute(insert(instances).values(project_id=request.project, vcpus=n))

    claim = [d.ClaimEntry("org", 1), d.ClaimEntry("a", 1), d.ClaimEntry("b", 1)]
    outcome = store.with_rows(vcpus(1)).commit_batch(
        claim, [servers("a", 1), servers("b", 1), servers("a", 1)], stores=[None, store.with_rows(vcpus(7)), None]
    )
    assert outcome == d.CommitOutcome.COMMITTED
    with engine.connect() as conn:
        rows = sorted(tuple(r) for r in conn.execute(select(instances.c.project_id, instances.c.vcpus)))
    assert rows == [("a", 1), ("a", 1), ("b", 7)]


def test_threads_sharing_a_combiner_never_overrun(store: SqlAlchemyStore) -> None:
    combiner = d.Combiner(NESTED)
    admitted = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        project = "a" if index % 2 == 0 else "b"
        for _ in range(6):
            try:
                combiner.consume(store, servers(project, 1))
            except (d.OverLimit, d.RetriesExhausted):
                continue
            with lock:
                admitted.append(project)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    a, b = store.usage("a", "servers"), store.usage("b", "servers")
    assert a + b == len(admitted) == 10, "org's limit reached exactly, never passed"
    assert combiner.stats.combined == 48


# ---- faults: no partial charge anywhere ---------------------------------------------


def assert_storage_error_leaves_no_charge(store: Any, check: SqlAlchemyStore, message: str) -> d.StorageError:
    before = path_generations(check)
    with pytest.raises(d.StorageError) as failed:
        d.consume(store, servers("a", 2), NESTED, QUICK)
    assert failed.value.attempts == 1
    assert message in failed.value.message, failed.value.message
    assert path_generations(check) == before, "no generation moved"
    assert check.usage("a", "servers") == 0, "no usage written"
    return failed.value


class KilledAfterRead:
    """After each read, the store's connection is ended from outside."""

    def __init__(self, db: Database, store: SqlAlchemyStore) -> None:
        self.db, self.store = db, store

    def read(self, project: str, resources: list[str]) -> d.Snapshot:
        snapshot = self.store.read(project, resources)
        # The engine has one pooled connection: the one the read used and
        # the commit will check out again.
        with self.store.engine.connect() as conn:
            backend = self.db.backend_id(conn)
        self.db.kill(backend)
        return snapshot

    def commit(self, claim: list[d.ClaimEntry], request: d.Request) -> d.CommitOutcome:
        return self.store.commit(claim, request)


def test_connection_killed_between_read_and_commit_leaves_no_charge(
    db: Database, store: SqlAlchemyStore
) -> None:
    if db.kind == "sqlite":
        pytest.skip(
            "sqlite: no server connection to kill (the next test closes a SQLite "
            "connection inside the commit)"
        )
    victim_engine = db.engine(pool_size=1, max_overflow=0)
    try:
        victim = KilledAfterRead(db, SqlAlchemyStore(victim_engine))
        assert_storage_error_leaves_no_charge(victim, store, db.kind)
    finally:
        victim_engine.dispose()


def test_connection_killed_inside_the_commit_leaves_no_charge(db: Database, store: SqlAlchemyStore) -> None:
    # Killed after every claimed generation was bumped and the usage
    # written, before COMMIT: the server (or SQLite, on close) drops it all.
    def kill_myself(conn: Connection, request: d.Request) -> None:
        if db.kind == "sqlite":
            conn.connection.dbapi_connection.close()  # type: ignore[union-attr]
        else:
            db.kill(db.backend_id(conn))

    assert_storage_error_leaves_no_charge(store.with_rows(kill_myself), store, db.kind)


#: A trigger that makes the root's generation row refuse updates, so that a
#: commit fails at its first claim entry (the root: root first).
REFUSE_ORG = {
    "sqlite": [
        "CREATE TRIGGER refuse_org BEFORE UPDATE ON delimiter_generations "
        "WHEN OLD.project_id = 'org' BEGIN SELECT RAISE(ABORT, 'org is read-only'); END"
    ],
    "postgres": [
        "CREATE FUNCTION refuse_org() RETURNS trigger AS $$ "
        "BEGIN RAISE EXCEPTION 'org is read-only'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_org BEFORE UPDATE ON delimiter_generations FOR EACH ROW "
        "WHEN (OLD.project_id = 'org') EXECUTE FUNCTION refuse_org()",
    ],
    "mariadb": [
        "CREATE TRIGGER refuse_org BEFORE UPDATE ON delimiter_generations FOR EACH ROW "
        "IF OLD.project_id = 'org' THEN "
        "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'org is read-only'; END IF"
    ],
}


def test_storage_error_at_the_root_claim_entry_leaves_no_charge(
    db: Database, store: SqlAlchemyStore
) -> None:
    with store.engine.begin() as conn:
        for statement in REFUSE_ORG[db.kind]:
            conn.exec_driver_sql(statement)
    error = assert_storage_error_leaves_no_charge(store, store, "org is read-only")
    assert isinstance(error.original, DBAPIError), "the database's own error, plainly"
    assert error.__cause__ is error.original


def test_an_exception_from_write_rows_rolls_back_and_propagates(store: SqlAlchemyStore) -> None:
    def broken(conn: Connection, request: d.Request) -> None:
        raise KeyError("the service's own bug")

    before = path_generations(store)
    with pytest.raises(KeyError, match="the service's own bug"):
        d.consume(store.with_rows(broken), servers("a", 1), NESTED, QUICK)
    assert path_generations(store) == before
    assert store.usage("a", "servers") == 0


# ---- bad input: a typed error, nothing written ---------------------------------------------


def snapshot_of_everything(engine: Engine) -> dict[str, list[Any]]:
    present = set(inspect(engine).get_table_names())  # the markers: MariaDB only
    with engine.connect() as conn:
        return {
            t.name: sorted(tuple(r) for r in conn.execute(select(t)))
            for t in store_module.metadata.sorted_tables
            if t.name in present
        }


def test_bad_input_is_a_typed_error_and_writes_nothing(engine: Engine, store: SqlAlchemyStore) -> None:
    d.consume(store, servers("a", 2), NESTED, QUICK)
    before = snapshot_of_everything(engine)

    with pytest.raises(d.InvalidInput) as e:
        d.consume(store, servers("A", 1), NESTED, QUICK)
    assert (e.value.kind, e.value.project) == ("unknown-project", "A"), "ids are case-sensitive"
    with pytest.raises(d.InvalidInput) as e:
        d.consume(store, servers("a", -3), NESTED, QUICK)
    assert (e.value.kind, e.value.usage, e.value.delta) == ("release-below-zero", 2, -3)
    with pytest.raises(d.InvalidInput) as e:
        store.add_project(d.Project("x", "nope"))
    assert (e.value.kind, e.value.parent) == ("unknown-parent", "nope")
    with pytest.raises(d.InvalidInput) as e:
        store.add_project(d.Project("a", "team"))
    assert e.value.kind == "duplicate-project"
    with pytest.raises(d.InvalidInput) as e:
        store.add_project(d.Project(""))
    assert e.value.kind == "empty-id"
    with pytest.raises(d.InvalidInput) as e:
        # All or none: the valid limit before the bad one is not written.
        store.set_limits(
            d.Limits(project=[d.ProjectLimit("a", "servers", 1), d.ProjectLimit("b", "servers", -2)])
        )
    assert (e.value.kind, e.value.project, e.value.limit) == ("invalid-limit", "b", -2)
    with pytest.raises(d.InvalidInput) as e:
        store.set_limits(d.Limits(project=[d.ProjectLimit("ghost", "servers", 1)]))
    assert e.value.kind == "unknown-project"

    assert snapshot_of_everything(engine) == before


def test_the_usage_check_constraint_is_in_the_schema(engine: Engine, store: SqlAlchemyStore) -> None:
    with pytest.raises(DBAPIError), engine.begin() as conn:
        conn.execute(insert(usage).values(project_id="a", resource="servers", usage=-1))
    with pytest.raises(DBAPIError), engine.begin() as conn:
        conn.execute(insert(usage).values(project_id="ghost", resource="servers", usage=1))


def test_unsupported_dialects_and_counted_usage_without_writer_are_refused() -> None:
    from sqlalchemy import create_mock_engine

    with pytest.raises(ValueError, match="not 'mssql'"):
        SqlAlchemyStore(create_mock_engine("mssql+pyodbc://", executor=None))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs write_rows"):
        SqlAlchemyStore(
            create_mock_engine("sqlite://", executor=None),  # type: ignore[arg-type]
            counted_usage=select(generations.c.project_id, literal("x").label("resource"), literal(1).label("usage")),
        )
    with pytest.raises(ValueError, match="lacks the column"):
        SqlAlchemyStore(
            create_mock_engine("sqlite://", executor=None),  # type: ignore[arg-type]
            counted_usage=select(generations.c.project_id),
            write_rows=lambda conn, request: None,
        )


# ---- usage counted from the service's own rows (as Nova counts instances) ----------------

service = MetaData()
instances = Table(
    "instances",
    service,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", store_module.projects.c.project_id.type, nullable=False),
    Column("vcpus", Integer, nullable=False),
)

#: servers = how many instances, cores = their vCPUs, per project.
counted = select(
    instances.c.project_id, literal("servers").label("resource"), func.count().label("usage")
).group_by(instances.c.project_id).union_all(
    select(instances.c.project_id, literal("cores").label("resource"), func.sum(instances.c.vcpus).label("usage"))
    .group_by(instances.c.project_id)
)


def boot_or_delete(vcpus: int) -> Any:
    """The service's own write: one instance per server asked for, or the
    newest ones deleted for a release."""

    def write(conn: Connection, request: d.Request) -> None:
        n = next(x.delta for x in request.deltas if x.resource == "servers")
        if n > 0:
            conn.execute(insert(instances), [{"project_id": request.project, "vcpus": vcpus}] * n)
        elif n < 0:
            newest = (
                select(instances.c.id)
                .where(instances.c.project_id == request.project)
                .order_by(instances.c.id.desc())
                .limit(-n)
            )
            ids = [row.id for row in conn.execute(newest)]
            conn.execute(delete(instances).where(instances.c.id.in_(ids)))

    return write


@pytest.fixture
def counted_store(engine: Engine, store: SqlAlchemyStore) -> SqlAlchemyStore:
    service.create_all(engine)
    store.set_limits(d.Limits(registered=[d.RegisteredLimit("cores", 16)]))
    return SqlAlchemyStore(engine, counted_usage=counted, write_rows=boot_or_delete(2))


def instance_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(instances)).scalar_one())


def test_a_duplicate_key_from_write_rows_reaches_the_caller_as_original(
    engine: Engine, store: SqlAlchemyStore
) -> None:
    # The service's own rows break its own unique key inside the commit:
    # consume raises StorageError whose `original` is SQLAlchemy's
    # IntegrityError itself, so the service tells a duplicate from a lost
    # connection without parsing text. Nothing is charged.
    service.create_all(engine)

    def boot_instance_one(conn: Connection, request: d.Request) -> None:
        conn.execute(insert(instances).values(id=1, project_id=request.project, vcpus=1))

    booting = store.with_rows(boot_instance_one)
    d.consume(booting, servers("a", 1), NESTED, QUICK)
    before = path_generations(store)
    with pytest.raises(d.StorageError) as failed:
        d.consume(booting, servers("a", 1), NESTED, QUICK)
    error = failed.value
    assert isinstance(error.original, IntegrityError), repr(error.original)
    assert error.__cause__ is error.original
    assert error.attempts == 1, "a duplicate key is no conflict: not retried"
    assert path_generations(store) == before, "no generation moved"
    assert store.usage("a", "servers") == 1, "only the first consume is charged"
    assert instance_count(engine) == 1


def test_usage_counted_from_the_services_rows(engine: Engine, counted_store: SqlAlchemyStore) -> None:
    both = lambda project, n: d.Request(project, {"servers": n, "cores": 2 * n})  # noqa: E731
    d.consume(counted_store, both("a", 3), NESTED, QUICK)
    d.consume(counted_store.with_rows(boot_or_delete(2)), both("b", 4), NESTED, QUICK)
    assert instance_count(engine) == 7
    assert counted_store.usage("a", "servers") == 3
    assert counted_store.usage("b", "cores") == 8
    snapshot = counted_store.read("a", ["servers", "cores"])
    assert isinstance(snapshot.usage, d.PathUsage)
    assert d.UsageEntry("org", "servers", 7) in snapshot.usage.subtree
    assert d.UsageEntry("org", "cores", 14) in snapshot.usage.subtree

    # cores: 14 + 4 > 16 at org. Refused: no instance written.
    with pytest.raises(d.OverLimit) as refused:
        d.consume(counted_store, both("a", 2), NESTED, QUICK)
    assert [(v.project, v.resource) for v in refused.value.violations] == [
        ("team", "cores"),
        ("org", "cores"),
    ], "registered 16 cores: team and org"
    assert instance_count(engine) == 7

    d.consume(counted_store, both("b", -4), NESTED, QUICK)
    assert counted_store.usage("b", "servers") == 0
    assert instance_count(engine) == 3
    # The counter table is neither read nor written in this mode.
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(usage)).scalar_one() == 0


def test_a_conflict_rolls_back_the_services_rows(engine: Engine, counted_store: SqlAlchemyStore) -> None:
    g_a, g_org = counted_store.generation("a"), counted_store.generation("org")
    assert g_a is not None and g_org is not None
    request = d.Request("a", {"servers": 2, "cores": 4})
    stale = [d.ClaimEntry("a", g_a), d.ClaimEntry("org", g_org + 5)]
    assert counted_store.commit(stale, request) in LOST
    assert instance_count(engine) == 0, "the instances rolled back with the generation bumps"
    assert counted_store.generation("a") == g_a


def test_counted_threads_never_overrun(engine: Engine, counted_store: SqlAlchemyStore) -> None:
    def worker(project: str) -> None:
        for _ in range(6):
            try:
                d.consume(counted_store, d.Request(project, {"servers": 1, "cores": 2}), NESTED, QUICK)
            except (d.OverLimit, d.RetriesExhausted):
                pass

    threads = [threading.Thread(target=worker, args=("ab"[i % 2],)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # cores: 16 at org, 2 per instance: 8 instances, never more.
    assert instance_count(engine) == 8


# ---- one schema with every host (conformance/storage) ---------------------------------------------------------


def shared_schema(kind: str) -> list[str]:
    """The DDL of conformance/storage, which the Rust stores run as is:
    statements end with a semicolon at a line end, ``--`` lines are comments."""
    name = "schema-mariadb.sql" if kind == "mariadb" else "schema.sql"
    text = (REPO / "conformance" / "storage" / name).read_text()
    statements = []
    for part in text.split(";\n"):
        sql = "\n".join(l for l in part.splitlines() if not l.lstrip().startswith("--")).strip()
        if sql:
            statements.append(sql)
    # The five tables, and an index (schema.sql) or the Galera commit
    # markers (schema-mariadb.sql).
    assert len(statements) == 6, "expected the five tables and an index or the commit markers"
    return statements


def test_a_database_the_rust_stores_created_is_shared(db: Database, engine: Engine) -> None:
    with engine.begin() as conn:
        for statement in shared_schema(db.kind):
            conn.exec_driver_sql(statement)
    rust_tables = {
        t: [(c["name"], str(c["type"]), c["nullable"]) for c in inspect(engine).get_columns(t)]
        for t in inspect(engine).get_table_names()
    }
    store = SqlAlchemyStore(engine)
    seed(store)  # create_schema leaves the Rust tables as they are
    d.consume(store, servers("a", 4), NESTED, QUICK)
    with pytest.raises(d.OverLimit):
        d.consume(store, servers("b", 7), NESTED, QUICK)
    assert store.usage("a", "servers") == 4

    # And the tables this store creates have the Rust columns.
    other = Database.new(db.kind, namespace())
    other.create()
    try:
        py_engine = other.engine()
        SqlAlchemyStore(py_engine).create_schema()
        py_tables = {
            t: [(c["name"], str(c["type"]), c["nullable"]) for c in inspect(py_engine).get_columns(t)]
            for t in inspect(py_engine).get_table_names()
        }
        py_engine.dispose()
    finally:
        other.drop()
    assert py_tables == rust_tables


# ---- packaging and the demo -------------------------------------------------------------------


def test_import_delimiter_does_not_import_sqlalchemy() -> None:
    code = "import sys, delimiter, delimiter.stores; print('sqlalchemy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_demo_runs_and_its_audit_passes() -> None:
    demo = REPO / "host-python" / "examples" / "demo.py"
    out = subprocess.run([sys.executable, str(demo)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "audit: oversubscribed=0 lost_updates=0" in out.stdout, out.stdout
    assert "A refusal, explained" in out.stdout, out.stdout
