"""SqlAlchemyStore on a three-node MariaDB Galera cluster: the faults that only
a multi-writer cluster shows, each reproduced on the cluster.

The nodes come from ``DELIMITER_TEST_GALERA_URLS`` (comma-separated
``mysql://root@127.0.0.1:4306/test,...``; ``tools/galera/galera.sh up``
starts such a cluster and ``env`` prints the variable). Without it every
test here is skipped, and pytest's ``-rs`` summary says why.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url

import delimiter as d
from delimiter.stores.sqlalchemy import SqlAlchemyStore

VAR = "DELIMITER_TEST_GALERA_URLS"
URLS = [u.strip() for u in os.environ.get(VAR, "").split(",") if u.strip()]

pytestmark = pytest.mark.skipif(len(URLS) < 3, reason=f"{VAR} not set (three Galera nodes)")

DATABASE = f"delimiter_galera_{os.getpid()}"
TREE = [d.Project("org"), d.Project("eng", "org"), d.Project("web", "eng")]
LIMITS = d.Limits(registered=[d.RegisteredLimit("servers", 10)])
POLICY = d.RetryPolicy(max_attempts=3, base_delay_us=0, max_delay_us=0, seed=0)


def engine(node: int, database: str | None = DATABASE, **kw: Any) -> Engine:
    url = make_url(URLS[node]).set(drivername="mysql+pymysql", database=database)
    return create_engine(url, **kw)


def synced(node: int, sql: str, **params: Any) -> list[Any]:
    """``sql`` on ``node`` after the node applied every write committed
    anywhere before it (``wsrep_sync_wait=1``)."""
    e = engine(node, None)  # the database itself may not have arrived yet
    try:
        with e.connect() as conn:
            conn.exec_driver_sql("SET SESSION wsrep_sync_wait = 1")
            conn.exec_driver_sql("SELECT 1")  # waits
            conn.exec_driver_sql(f"USE {DATABASE}")
            return list(conn.execute(text(sql), params).all())
    finally:
        e.dispose()


def run(node: int, sql: str) -> None:
    """``sql`` on ``node``, after the node applied every write committed
    before it (reads and UPDATEs wait: ``wsrep_sync_wait=3``)."""
    e = engine(node, isolation_level="AUTOCOMMIT")
    try:
        with e.connect() as conn:
            conn.exec_driver_sql("SET SESSION wsrep_sync_wait = 3")
            conn.exec_driver_sql(sql)
    finally:
        e.dispose()


@pytest.fixture
def store() -> Iterator[SqlAlchemyStore]:
    """A fresh database with the tree, and a store on node 1."""
    admin = engine(0, None, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {DATABASE}")
        conn.exec_driver_sql(f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    e = engine(0)
    s = SqlAlchemyStore(e)
    s.create_schema()
    for p in TREE:
        s.add_project(p)
    s.set_limits(LIMITS)
    try:
        yield s
    finally:
        e.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {DATABASE}")
        admin.dispose()


def once_after(e: Engine, matches: Callable[[str], bool], action: Callable[[], None]) -> None:
    """Runs ``action`` once, right after the first statement on ``e`` that
    ``matches``: a rival's move at an exact point of a read or commit."""
    done = []

    @event.listens_for(e, "after_cursor_execute")
    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not done and matches(statement):
            done.append(True)
            action()


def state() -> list[Any]:
    return synced(0, "SELECT project_id, generation FROM delimiter_generations ORDER BY 1") + synced(
        0, "SELECT project_id, resource, `usage` FROM delimiter_usage ORDER BY 1, 2"
    )


def test_read_survives_an_online_ddl_on_another_node(store: SqlAlchemyStore) -> None:
    # The reproduction: the snapshot read delimiter_generations,
    # then node 2 runs a DDL on it; node 1 applies it in total order and
    # aborts the snapshot (1213) instead of making the DDL wait.
    def ddl() -> None:
        run(1, "ALTER TABLE delimiter_generations COMMENT = 'migrated'")
        synced(0, "SELECT COUNT(*) FROM delimiter_projects")  # applied on node 1 too

    once_after(store.engine, lambda s: "delimiter_generations" in s and s.lstrip().startswith("WITH"), ddl)
    snapshot = store.read("web", ["servers"])
    assert [g.project for g in snapshot.generations] == ["web", "eng", "org"]
    assert store.conflict_causes()["read_retries"] == 1


def rival_bumps_org() -> None:
    """Node 2 commits a write to org's generation row; node 1 has applied
    it when this returns (a brute-force abort of node 1's open transaction
    that wrote the row)."""
    run(1, "UPDATE delimiter_generations SET generation = generation + 100 WHERE project_id = 'org'")
    synced(0, "SELECT COUNT(*) FROM delimiter_projects")


@pytest.mark.parametrize("isolation_level", [None, "AUTOCOMMIT"])
def test_a_brute_force_abort_is_a_conflict_of_its_cause(store: SqlAlchemyStore, isolation_level: str | None) -> None:
    # The commit bumped org's generation (root first); node 2 bumps it too
    # and commits first, and node 1's applier aborts the local transaction.
    # On an AUTOCOMMIT engine too: with the connection's autocommit on,
    # Galera runs the statements after a brute-force abort outside any
    # transaction (tools/galera/commit_probe.py measures it); the store's
    # write transactions set READ COMMITTED, which turns the driver's
    # autocommit off, whatever the engine says.
    e = engine(0, **({} if isolation_level is None else {"isolation_level": isolation_level}))
    on_node1 = SqlAlchemyStore(e)
    once_after(e, lambda s: s.lstrip().startswith("UPDATE delimiter_generations"), rival_bumps_org)
    claim = [d.ClaimEntry("web", 1), d.ClaimEntry("eng", 1), d.ClaimEntry("org", 1)]
    try:
        outcome = on_node1.commit(claim, d.Request("web", {"servers": 1}))
    finally:
        e.dispose()
    assert outcome == d.CommitOutcome.CONFLICT
    assert on_node1.conflict_causes() == {
        "generation_miss": 0,
        "brute_force_abort": 1,
        "certification_failure": 0,
        "read_retries": 0,
    }
    assert synced(0, "SELECT project_id, generation FROM delimiter_generations ORDER BY 1") == [
        ("eng", 1),
        ("org", 101),
        ("web", 1),
    ]
    assert synced(0, "SELECT COUNT(*) FROM delimiter_usage") == [(0,)]


def test_a_miss_stays_a_miss_when_its_rollback_is_aborted(store: SqlAlchemyStore) -> None:
    # org is bumped (root first), eng misses (stale claim); before the
    # ROLLBACK, node 2 commits a write to org's row, which aborts the
    # transaction on node 1.
    bumps = []

    # The second generations UPDATE (eng's, the miss) is followed by the rival.
    @event.listens_for(store.engine, "after_cursor_execute")
    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().startswith("UPDATE delimiter_generations"):
            bumps.append(cursor.rowcount)
            if len(bumps) == 2:
                rival_bumps_org()

    claim = [d.ClaimEntry("web", 1), d.ClaimEntry("eng", 7), d.ClaimEntry("org", 1)]
    outcome = store.commit(claim, d.Request("web", {"servers": 1}))
    assert outcome in (d.CommitOutcome.CONFLICT, d.CommitOutcome.CONFLICT_AFTER_WAIT)
    assert bumps == [1, 0]
    assert store.conflict_causes()["generation_miss"] == 1
    assert store.conflict_causes()["brute_force_abort"] == 0
    assert synced(0, "SELECT generation FROM delimiter_generations WHERE project_id = 'org'") == [(101,)]


def isolate(node: int, on: bool) -> None:
    """Cuts ``node`` off the cluster (``gmcast.isolate``) or lets it back,
    and waits until it sees itself outside the primary component, or
    Synced again in a cluster of three. Through the driver alone: a node
    outside the primary component refuses SELECTs and USE (1047), which
    SQLAlchemy's connection setup runs, but takes SET and SHOW STATUS."""
    import pymysql

    url = make_url(URLS[node])
    conn = pymysql.connect(host=url.host, port=url.port or 3306, user=url.username, password=url.password or "")
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"SET GLOBAL wsrep_provider_options = 'gmcast.isolate={1 if on else 0}'")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                cursor.execute(
                    "SHOW STATUS WHERE Variable_name IN "
                    "('wsrep_cluster_status', 'wsrep_cluster_size', 'wsrep_local_state_comment')"
                )
                status = dict(cursor.fetchall())
                if on and status["wsrep_cluster_status"] != "Primary":
                    return
                if not on and status["wsrep_cluster_size"] == "3" and status["wsrep_local_state_comment"] == "Synced":
                    return
                time.sleep(0.5)
    finally:
        conn.close()
    raise TimeoutError(f"node {node + 1} did not {'leave' if on else 'rejoin'} the cluster in 60 s: {status}")


def test_a_node_leaving_mid_consume_is_a_storage_error_with_nothing_written(store: SqlAlchemyStore) -> None:
    before = state()
    synced(2, "SELECT COUNT(*) FROM delimiter_projects")  # node 3 has the tables
    e = engine(2)
    on_node3 = SqlAlchemyStore(e)
    # Node 3 leaves the cluster inside the commit, after the first claimed
    # generation was bumped and before COMMIT.
    once_after(e, lambda s: s.lstrip().startswith("UPDATE delimiter_generations"), lambda: isolate(2, True))
    try:
        with pytest.raises(d.StorageError) as caught:
            d.consume(on_node3, d.Request("web", {"servers": 2}), d.Config("nested"), POLICY)
        assert "1047" in str(caught.value) or "WSREP" in str(caught.value), caught.value
        # The cluster (nodes 1 and 2) holds nothing of it.
        assert state() == before
    finally:
        isolate(2, False)
        e.dispose()
    # Back in the cluster, node 3 holds the cluster's data, nothing of its own.
    assert synced(2, "SELECT project_id, generation FROM delimiter_generations ORDER BY 1") == before[:3]
    assert synced(2, "SELECT COUNT(*) FROM delimiter_usage") == [(0,)]
