"""delimiter.openstack.Enforcer on a live Keystone (flat model in Keystone):
nested decisions over Keystone's domain -> project -> sub-project tree,
against hand-computed expectations; the time to live; request counts.

The tree and limits (registered: servers 10, cores 40, gpus 0):

    dom   (domain limit servers 8)
    |-- a  (servers 5)            usage servers 2
    |   `-- a1 (servers 4)        usage servers 3
    `-- b  (servers -1, cores 0)  usage servers 2
"""

from __future__ import annotations

import pytest
from _keystone import build, configure_oslo_limit, counting, requires_access_log, requires_keystone, set_limit

pytestmark = requires_keystone

USAGE = {"a": {"servers": 2}, "a1": {"servers": 3}, "b": {"servers": 2}}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def svc():
    tree = {"dom": None, "a": "dom", "a1": "a", "b": "dom"}
    limits = "dom servers 8, a servers 5, a1 servers 4, b servers -1, b cores 0"
    return build({"servers": 10, "cores": 40, "gpus": 0}, tree, limits)


def usage_of(svc, calls=None):
    by_id = {svc.projects[name]: u for name, u in USAGE.items()}

    def usage_callback(project_id, names):
        if calls is not None:
            calls.append(project_id)
        return {n: by_id.get(project_id, {}).get(n, 0) for n in names}

    return usage_callback


def enforcer(svc, model="nested", clock=None, **kw):
    from delimiter.openstack import Enforcer, KeystoneLimits

    configure_oslo_limit(svc.endpoint_id)
    limits = KeystoneLimits(ttl=60, clock=clock or Clock())
    return Enforcer(usage_of(svc), limits=limits, model=model, **kw)


def refusal(e, project, deltas):
    from delimiter.openstack import ProjectOverLimit

    with pytest.raises(ProjectOverLimit) as info:
        e.enforce(project, deltas)
    return [(i.project_id, i.resource_name, i.limit, i.current_usage, i.delta) for i in info.value.over_limit_info_list]


def test_nested_binds_at_the_parent_project(svc):
    e = enforcer(svc)
    ids = svc.projects
    # a1: own 3+1 <= 4; a: subtree 2+3+1 = 6 > 5; dom: 7+1 = 8 <= 8.
    assert refusal(e, ids["a1"], {"servers": 1}) == [(ids["a"], "servers", 5, 5, 1)]
    # a's own usage 2, but its subtree (5) is what a's limit caps.
    assert refusal(e, ids["a"], {"servers": 1}) == [(ids["a"], "servers", 5, 5, 1)]


def test_domain_total_over_its_limit_while_each_project_is_under_its_own(svc):
    e = enforcer(svc)
    b = svc.projects["b"]
    e.enforce(b, {"servers": 1})  # dom: 7+1 = 8 <= 8; b unlimited
    # dom: 7+2 = 9 > 8, b (-1) is unlimited, a and a1 untouched.
    assert refusal(e, b, {"servers": 2}) == [(svc.domains["dom"], "servers", 8, 7, 2)]


def test_minus_one_and_zero_overrides_and_registered_zero(svc):
    e = enforcer(svc)
    b, a = svc.projects["b"], svc.projects["a"]
    assert refusal(e, b, {"cores": 1}) == [(b, "cores", 0, 0, 1)]  # b's 0 override
    e.enforce(a, {"cores": 40})  # registered 40 on a and on the domain
    # gpus registered 0: refused at a, at the domain (registered default, no
    # domain limit) but not at a1? a1 is not on a's path.
    assert refusal(e, a, {"gpus": 1}) == [(a, "gpus", 0, 0, 1), (svc.domains["dom"], "gpus", 0, 0, 1)]
    e.enforce(a, {"servers": -1})  # a release is always admitted


def test_domain_default_unlimited(svc):
    # A domain without a domain limit for gpus: unlimited, not the registered 0.
    from delimiter.openstack import Enforcer, KeystoneLimits

    configure_oslo_limit(svc.endpoint_id)
    limits = KeystoneLimits(ttl=60, domain_default="unlimited")
    e = Enforcer(usage_of(svc), limits=limits, model="nested")
    a = svc.projects["a"]
    assert refusal(e, a, {"gpus": 1}) == [(a, "gpus", 0, 0, 1)]


def test_flat_model_checks_only_the_project(svc):
    e = enforcer(svc, model="flat")
    ids = svc.projects
    e.enforce(ids["a1"], {"servers": 1})  # 3+1 <= 4; a and dom not counted
    assert refusal(e, ids["a1"], {"servers": 2}) == [(ids["a1"], "servers", 4, 3, 2)]
    # Keystone's model (flat here) when none is asked for.
    from delimiter.openstack import Enforcer, KeystoneLimits

    assert Enforcer(usage_of(svc), limits=KeystoneLimits(ttl=60)).model == "flat"


def test_usage_is_asked_for_every_project_of_the_domain_or_batched(svc):
    from delimiter.openstack import Enforcer, KeystoneLimits

    configure_oslo_limit(svc.endpoint_id)
    calls: list = []
    e = Enforcer(usage_of(svc, calls), limits=KeystoneLimits(ttl=60), model="nested")
    e.enforce(svc.projects["b"], {"servers": 1})
    assert sorted(calls) == sorted(svc.projects.values())

    batches: list = []
    by_id = {svc.projects[name]: u for name, u in USAGE.items()}

    def batch(project_ids, names):
        batches.append(sorted(project_ids))
        return {p: by_id.get(p, {}) for p in project_ids}

    e = Enforcer(None, limits=KeystoneLimits(ttl=60), model="nested", usage_batch_callback=batch)
    assert refusal(e, svc.projects["b"], {"servers": 2}) == [(svc.domains["dom"], "servers", 8, 7, 2)]
    assert batches == [sorted(svc.projects.values())]

    def pre_summed(path, names):
        assert path == [svc.projects["a1"], svc.projects["a"], svc.domains["dom"]]
        return {"servers": 3}, {path[0]: {"servers": 3}, path[1]: {"servers": 5}, path[2]: {"servers": 7}}

    e = Enforcer(None, limits=KeystoneLimits(ttl=60), model="nested", path_usage_callback=pre_summed)
    assert refusal(e, svc.projects["a1"], {"servers": 1}) == [(svc.projects["a"], "servers", 5, 5, 1)]


@requires_access_log
def test_a_limit_changed_in_keystone_is_seen_after_the_ttl_and_not_before(svc):
    from delimiter.openstack import Enforcer, KeystoneLimits

    configure_oslo_limit(svc.endpoint_id)
    clock = Clock()
    limits = KeystoneLimits(ttl=30, clock=clock)
    e = Enforcer(usage_of(svc), limits=limits, model="nested")
    b = svc.projects["b"]
    e.enforce(b, {"servers": 1})  # dom 8: 7+1 fits
    try:
        set_limit(svc.conn, svc, "dom", "servers", 6)  # lowered below usage
        clock.now += 29
        with counting() as c:
            e.enforce(b, {"servers": 1})  # the old copy: still 8
        assert c.n == 0
        clock.now += 2
        assert refusal(e, b, {"servers": 1}) == [(svc.domains["dom"], "servers", 6, 7, 1)]
        e.enforce(b, {"servers": -1})  # over the lowered limit: releases still go
        assert limits.stats["limits"] == 2 and limits.stats["registered_limits"] == 2
    finally:
        set_limit(svc.conn, svc, "dom", "servers", 8)


@requires_access_log
def test_warm_enforce_makes_no_keystone_request_and_stats_match_the_server(svc):
    from delimiter.openstack import Enforcer, KeystoneLimits

    configure_oslo_limit(svc.endpoint_id)
    with counting() as built:
        limits = KeystoneLimits(ttl=600)
        e = Enforcer(usage_of(svc), limits=limits, model="nested")
        e.enforce(svc.projects["a1"], {"servers": 0})
    # Our own requests: endpoint, model, registered limits, limits, projects;
    # the rest are keystoneauth's discovery and token.
    assert limits.stats == {
        "requests": 5,
        "endpoint": 1,
        "model": 1,
        "registered_limits": 1,
        "limits": 1,
        "projects": 1,
    }
    ours = [line for line in built.lines if "/auth/tokens" not in line and line.split("?")[0] not in ("GET /v3", "GET /")]
    assert len(ours) == 5, built.lines
    with counting() as warm:
        for name in ("a", "a1", "b"):
            for _ in range(3):
                e.enforce(svc.projects[name], {"servers": 0, "cores": 0, "gpus": 0})
        Enforcer(usage_of(svc), limits=limits, model="nested").enforce(svc.projects["b"], {"servers": 1})
    assert warm.n == 0, warm.lines
    assert limits.stats["requests"] == 5
