"""delimiter.consume with KeystoneStore: the tree and limits from a live
Keystone, usage and generations in the service's SQLite database;
concurrent consumes never oversubscribe a parent or the domain.

    dom (domain limit servers 8)
    |-- a  (servers 5)
    |   `-- a1 (servers 4)
    `-- b  (servers -1)
    registered: servers 10
"""

from __future__ import annotations

import threading

import pytest
from _keystone import build, configure_oslo_limit, requires_keystone

pytestmark = requires_keystone

sqlalchemy = pytest.importorskip("sqlalchemy")


@pytest.fixture(scope="module")
def svc():
    tree = {"dom": None, "a": "dom", "a1": "a", "b": "dom"}
    return build({"servers": 10}, tree, "dom servers 8, a servers 5, a1 servers 4, b servers -1")


def test_concurrent_consumes_respect_every_level(svc, tmp_path):
    import delimiter as d
    from delimiter.openstack import KeystoneLimits, KeystoneStore

    configure_oslo_limit(svc.endpoint_id)
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'svc.db'}")
    store = KeystoneStore(engine, KeystoneLimits(ttl=300))
    store.create_schema()
    config = store.config("nested")
    a1, b, a, dom = svc.projects["a1"], svc.projects["b"], svc.projects["a"], svc.domains["dom"]
    results = {"admitted": [], "refused": []}
    lock = threading.Lock()

    def worker(project):
        for _ in range(5):
            try:
                d.consume(store, d.Request(project, {"servers": 1}), config, d.RetryPolicy(max_attempts=100))
                outcome = "admitted"
            except d.OverLimit:
                outcome = "refused"
            with lock:
                results[outcome].append(project)

    threads = [threading.Thread(target=worker, args=(p,)) for p in (a1, a1, b, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # The domain allows 8 in all, a1 at most 4 (its own limit, under a's 5).
    assert len(results["admitted"]) == 8
    assert results["admitted"].count(a1) <= 4
    assert store.sql.usage(a1, "servers") + store.sql.usage(b, "servers") == 8
    assert store.sql.usage(a1, "servers") == results["admitted"].count(a1)
    # Generation rows were made on first use, then moved by every commit.
    assert store.sql.generation(dom) is not None and store.sql.generation(a) is not None
    assert store.sql.generation(dom) == 1 + 8


def test_refusal_at_the_domain_is_explained(svc, tmp_path):
    import delimiter as d
    from delimiter.openstack import KeystoneLimits, KeystoneStore

    configure_oslo_limit(svc.endpoint_id)
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'svc2.db'}")
    store = KeystoneStore(engine, KeystoneLimits(ttl=300))
    store.create_schema()
    b, dom = svc.projects["b"], svc.domains["dom"]
    d.consume(store, d.Request(b, {"servers": 8}), store.config("nested"))
    with pytest.raises(d.OverLimit) as over:
        d.consume(store, d.Request(b, {"servers": 1}), store.config("nested"))
    assert [(v.project, v.limit, v.usage, v.delta) for v in over.value.violations] == [(dom, 8, 8, 1)]
    # In Keystone's own model (flat here) only b's limit counts: unlimited.
    assert store.config().model == d.Model.FLAT
    d.consume(store, d.Request(b, {"servers": 1}), store.config())
