"""Keystone's strict_two_level model, enforced: Keystone is restarted in that
model (tools/keystone/keystone.sh restart strict_two_level), where
oslo.limit 2.12 and the drop-in raise ValueError when the Enforcer is
built, and delimiter.openstack.Enforcer decides over domain -> projects.

Keystone refuses to start in strict_two_level while any tree is three deep
(domain -> project -> sub-project), so every sub-project is deleted first
(this Keystone is the tests' own). Keystone is restarted flat afterwards.

    dom  (domain limit servers 8)       dom2 (no domain limit)
    |-- a (servers 5)  usage 4          `-- c   usage 9
    `-- b (servers -1) usage 3
    registered: servers 10
"""

from __future__ import annotations

import subprocess

import pytest
from _keystone import CONTROL, admin, build, configure_oslo_limit, counting, keystone_model, requires_access_log, requires_keystone, set_limit

pytestmark = [
    requires_keystone,
    pytest.mark.skipif(
        not CONTROL,
        reason="DELIMITER_TEST_KEYSTONE_CONTROL is not set: Keystone cannot be restarted in strict_two_level",
    ),
]

USAGE = {"a": 4, "b": 3, "c": 9}


def restart(model: str) -> None:
    subprocess.run([CONTROL, "restart", model], check=True, stdout=subprocess.DEVNULL)


def drop_sub_projects(conn) -> None:
    """Deletes every project whose parent is a project, deepest first."""
    projects = list(conn.projects())
    is_domain = {p.domain_id for p in projects}
    parent = {p.id: p.parent_id for p in projects}

    def depth(pid):
        n = 0
        while pid in parent and parent[pid] not in is_domain and parent[pid] is not None:
            pid, n = parent[pid], n + 1
        return n

    for p in sorted((p for p in projects if depth(p.id) > 0), key=lambda p: -depth(p.id)):
        conn.update_project(p.id, is_enabled=False)
        conn.delete_project(p.id)


@pytest.fixture(scope="module")
def svc():
    tree = {"dom": None, "dom2": None, "a": "dom", "b": "dom", "c": "dom2"}
    s = build({"servers": 10}, tree, "dom servers 8, a servers 5, b servers -1")
    drop_sub_projects(s.conn)
    restart("strict_two_level")
    try:
        assert keystone_model() == "strict_two_level"
        yield s
    finally:
        restart("flat")


def usage_callback(svc):
    by_id = {svc.projects[n]: u for n, u in USAGE.items()}
    return lambda project_id, names: {n: by_id.get(project_id, 0) for n in names}


def refusal(e, project, deltas):
    from delimiter.openstack import ProjectOverLimit

    with pytest.raises(ProjectOverLimit) as info:
        e.enforce(project, deltas)
    return [(i.project_id, i.resource_name, i.limit, i.current_usage, i.delta) for i in info.value.over_limit_info_list]


def test_oslo_limit_and_the_drop_in_refuse_to_build(svc):
    from oslo_limit import limit as real

    from delimiter.compat import oslo_limit as compat

    for mod in (real, compat):
        configure_oslo_limit(svc.endpoint_id)
        with pytest.raises(ValueError, match="enforcement model strict_two_level is not supported"):
            mod.Enforcer(usage_callback(svc))


def test_strict_two_level_is_enforced(svc):
    from delimiter.openstack import Enforcer, KeystoneLimits

    configure_oslo_limit(svc.endpoint_id)
    e = Enforcer(usage_callback(svc), limits=KeystoneLimits(ttl=60))
    assert e.model == "strict-two-level"  # Keystone's, read with the limits
    a, b, dom = svc.projects["a"], svc.projects["b"], svc.domains["dom"]
    e.enforce(a, {"servers": 1})  # a: 4+1 <= 5; dom: 7+1 <= 8
    # A domain total over its limit while each project is under its own.
    assert refusal(e, b, {"servers": 2}) == [(dom, "servers", 8, 7, 2)]
    # Both a's own limit and the domain's, project first.
    assert refusal(e, a, {"servers": 2}) == [(a, "servers", 5, 4, 2), (dom, "servers", 8, 7, 2)]


def test_a_domain_without_a_limit_takes_the_registered_default(svc):
    from delimiter.openstack import Enforcer, KeystoneLimits

    configure_oslo_limit(svc.endpoint_id)
    c, dom2 = svc.projects["c"], svc.domains["dom2"]
    e = Enforcer(usage_callback(svc), limits=KeystoneLimits(ttl=60))
    assert refusal(e, c, {"servers": 2}) == [(c, "servers", 10, 9, 2), (dom2, "servers", 10, 9, 2)]
    e = Enforcer(usage_callback(svc), limits=KeystoneLimits(ttl=60, domain_default="unlimited"))
    assert refusal(e, c, {"servers": 2}) == [(c, "servers", 10, 9, 2)]


@requires_access_log
def test_a_lowered_domain_limit_is_seen_after_the_ttl(svc):
    from delimiter.openstack import Enforcer, KeystoneLimits

    configure_oslo_limit(svc.endpoint_id)
    now = [0.0]
    limits = KeystoneLimits(ttl=10, clock=lambda: now[0])
    e = Enforcer(usage_callback(svc), limits=limits)
    b, dom = svc.projects["b"], svc.domains["dom"]
    e.enforce(b, {"servers": 1})
    conn = admin()
    set_limit(conn, svc, "dom", "servers", 7)  # strict Keystone: a, 5, still <= 7
    try:
        with counting() as c:
            e.enforce(b, {"servers": 1})  # not yet seen: 7+1 <= 8
        assert c.n == 0
        now[0] += 10
        assert refusal(e, b, {"servers": 1}) == [(dom, "servers", 7, 7, 1)]
    finally:
        set_limit(conn, svc, "dom", "servers", 8)
