"""delimiter.openstack without a Keystone: KeystoneLimits over a fake
openstacksdk identity proxy that records every call, so that the caching
rules (bulk listings, time to live for hits and misses, one request for a
project the tree lacks) are checked on every run; the live tests
(test_keystone_*.py) check the same against a real Keystone."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import delimiter as d
from delimiter.openstack import Enforcer, KeystoneLimits, ProjectOverLimit


class NotFound(Exception):
    pass


class FakeIdentity:
    """The identity proxy calls KeystoneLimits makes, answered from dicts."""

    def __init__(self):
        self.calls: list[str] = []
        self.model = "flat"
        self.registered = {"servers": 10, "cores": 0}
        self.limits_ = [("proj", "a", "servers", 5), ("domain", "dom", "servers", 8)]
        self.projects_ = {"a": ("dom", "dom"), "a1": ("a", "dom"), "b": ("dom", "dom")}

    def get(self, path):
        self.calls.append(f"GET {path}")
        return SimpleNamespace(json=lambda: {"model": {"name": self.model}})

    def registered_limits(self, service_id, region_id):
        self.calls.append("registered_limits")
        return [SimpleNamespace(resource_name=r, default_limit=v) for r, v in self.registered.items()]

    def limits(self, service_id, region_id):
        self.calls.append("limits")
        return [
            SimpleNamespace(
                project_id=owner if kind == "proj" else None,
                domain_id=owner if kind == "domain" else None,
                resource_name=r,
                resource_limit=v,
            )
            for kind, owner, r, v in self.limits_
        ]

    def projects(self):
        self.calls.append("projects")
        return [SimpleNamespace(id=p, parent_id=par, domain_id=dom) for p, (par, dom) in self.projects_.items()]

    def get_project(self, project_id):
        from openstack import exceptions

        self.calls.append(f"project {project_id}")
        if project_id not in self.projects_:
            raise exceptions.ResourceNotFound(f"no {project_id}")
        par, dom = self.projects_[project_id]
        return SimpleNamespace(id=project_id, parent_id=par, domain_id=dom)


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


USAGE = {"a": 2, "a1": 3, "b": 2}


def usage(project_id, names):
    return {n: USAGE.get(project_id, 0) if n == "servers" else 0 for n in names}


@pytest.fixture
def fake():
    pytest.importorskip("openstack")
    conn, clock = FakeIdentity(), Clock()
    limits = KeystoneLimits(conn, ttl=30, service_id="svc", region_id="RegionOne", clock=clock)
    return conn, clock, limits


def test_one_bulk_fetch_then_none_until_the_ttl(fake):
    conn, clock, limits = fake
    e = Enforcer(usage, limits=limits, model="nested")
    for p in ("a", "a1", "b"):
        e.enforce(p, {"servers": 0})
    assert conn.calls == ["GET /limits/model", "registered_limits", "limits", "projects"]
    assert limits.stats == {"requests": 4, "model": 1, "registered_limits": 1, "limits": 1, "projects": 1}
    clock.now = 29.9
    e.enforce("a1", {"servers": 0})
    assert len(conn.calls) == 4
    clock.now = 30
    e.enforce("a1", {"servers": 0})
    # Both copies expired: each fetched again, once (the tree first: the
    # path is asked for before the limits).
    assert conn.calls[4:] == ["projects", "GET /limits/model", "registered_limits", "limits"]


def test_a_project_the_tree_lacks_costs_one_request_found_or_not(fake):
    conn, clock, limits = fake
    e = Enforcer(usage, limits=limits, model="nested")
    e.enforce("a", {"servers": 0})
    conn.projects_["new"] = ("dom", "dom")
    for _ in range(3):
        e.enforce("new", {"servers": 1})
        e.enforce("ghost", {"servers": 1})  # no such project: decided flat
    assert conn.calls.count("project new") == 1 and conn.calls.count("project ghost") == 1
    # 'new' joined the domain: its usage counts toward dom.
    assert limits.members("dom") == ["a", "a1", "b", "new"]


def test_nested_and_flat_decisions(fake):
    conn, clock, limits = fake
    nested = Enforcer(usage, limits=limits, model="nested")
    with pytest.raises(ProjectOverLimit) as over:
        nested.enforce("a1", {"servers": 1})  # a: 2+3+1 > 5
    assert [(i.project_id, i.limit, i.current_usage) for i in over.value.over_limit_info_list] == [("a", 5, 5)]
    with pytest.raises(ProjectOverLimit) as over:
        nested.enforce("b", {"servers": 2})  # dom: 7+2 > 8
    assert [(i.project_id, i.limit, i.current_usage) for i in over.value.over_limit_info_list] == [("dom", 8, 7)]
    flat = Enforcer(usage, limits=limits)  # Keystone's model: flat
    flat.enforce("a1", {"servers": 7})  # registered 10, own usage 3
    with pytest.raises(ProjectOverLimit) as over:
        flat.enforce("b", {"cores": 1})
    assert str(over.value) == (
        "Project b is over a limit for [Resource cores is over limit of 0 due to current usage 0 "
        "and delta 1 of project b]"
    )
    assert flat.get_project_limits("a", ["servers", "cores", "nope"]) == [("servers", 5), ("cores", 0), ("nope", 0)]
    assert flat.get_registered_limits(None) == [("cores", 0), ("servers", 10)]
    assert flat.calculate_usage("a1", ["servers"]) == {"servers": (10, 3)}


def test_keystones_model_name_is_followed(fake):
    conn, clock, limits = fake
    conn.model = "strict_two_level"
    del conn.projects_["a1"]
    e = Enforcer(usage, limits=limits)
    assert e.model == "strict-two-level"
    with pytest.raises(ProjectOverLimit) as over:
        e.enforce("b", {"servers": 5})  # b: 2+5 <= 10 (registered); dom: a 2 + b 2 + 5 > 8
    assert [i.project_id for i in over.value.over_limit_info_list] == ["dom"]
    e.enforce("b", {"servers": 4})


def test_arguments_are_checked_like_oslo_limit(fake):
    conn, clock, limits = fake
    e = Enforcer(usage, limits=limits, model="nested")
    with pytest.raises(ValueError, match="deltas must be a non-empty dictionary"):
        e.enforce("a", {})
    with pytest.raises(ValueError, match="project_id must be a non-empty string or None"):
        e.enforce("", {"servers": 1})
    with pytest.raises(ValueError, match="unable to get current usage for servers"):
        Enforcer(lambda p, n: {}, limits=limits, model="nested").enforce("a", {"servers": 1})
    with pytest.raises(d.InvalidInput):
        e.enforce("a", {"servers": -3})  # below zero
    with pytest.raises(d.InvalidInput):
        Enforcer(usage, limits=limits, model="sideways")
