"""delimiter.compat.oslo_limit against the real oslo.limit 2.12, both reading
the same live Keystone: same answers and exceptions, and the same Keystone
requests in the same order. With ``cache_ttl`` the drop-in reads the
process's shared KeystoneLimits instead: no request on a warm enforce."""

from __future__ import annotations

import logging

import pytest
from _keystone import build, configure_oslo_limit, counting, requires_access_log, requires_keystone

pytestmark = requires_keystone

REGISTERED = {"servers": 10, "cores": 20, "ram": -1, "gpus": 0}
RESOURCES = ["cores", "gpus", "ram", "servers"]


@pytest.fixture(scope="module")
def svc():
    # p overrides every resource; q none.
    return build(REGISTERED, {"dom": None, "p": "dom", "q": "dom"}, "p servers 4, p cores -1, p ram 100, p gpus 2")


def outcome(f):
    from oslo_limit import exception as oslo_exception

    from delimiter.compat import oslo_limit as compat

    try:
        result = f()
    except (oslo_exception.ProjectOverLimit, compat.ProjectOverLimit) as e:
        return (
            "ProjectOverLimit",
            str(e),
            [(i.resource_name, i.limit, i.current_usage, i.delta) for i in e.over_limit_info_list],
        )
    except Exception as e:
        kind = next(t for t in type(e).__mro__ if t.__module__ == "builtins")
        return (kind.__name__, str(e))
    if isinstance(result, dict):
        result = {k: tuple(v) for k, v in result.items()}
    return ("ok", result)


def run(library, svc, calls, usage):
    """Builds an Enforcer of ``library`` on a fresh connection, then makes
    ``calls``; the outcomes and, per step, the Keystone requests."""
    from oslo_limit import limit as real

    from delimiter.compat import oslo_limit as compat

    configure_oslo_limit(svc.endpoint_id)
    mod = real if library == "oslo.limit" else compat
    results, requests = [], []
    with counting() as c:
        enforcer = mod.Enforcer(lambda project_id, names: {n: usage[n] for n in names if n in usage})
    requests.append(c.paths())
    for call in calls:
        with counting() as c:
            results.append(outcome(lambda: call(enforcer)))
        requests.append(c.paths())
    return results, requests


def calls_for(svc):
    p, q = svc.projects["p"], svc.projects["q"]
    return [
        lambda e: e.enforce(p, {"servers": 1}),
        lambda e: e.enforce(p, {"servers": 1}),  # warm: cached hits
        lambda e: e.enforce(q, {"servers": 1, "cores": 2}),
        lambda e: e.enforce(q, {"servers": 1, "cores": 2}),  # warm: misses asked again
        lambda e: e.enforce(q, {"servers": 7}),  # over the registered 10
        lambda e: e.enforce(p, {"servers": 1, "gpus": 1, "ram": 1}),  # over p's servers 4
        lambda e: e.enforce(q, {"gpus": 1}),  # registered 0
        lambda e: e.enforce(q, {"disk": 1}),  # no registered limit: 0, and an ERROR line
        lambda e: e.enforce(None, {"servers": 1}),
        lambda e: e.enforce(p, {"servers": -1}),
        lambda e: e.enforce(q, {"nope": 0}),  # missing usage
        lambda e: e.calculate_usage(p, ["servers", "cores"]),
        lambda e: e.get_project_limits(p, None),
        lambda e: e.get_project_limits(q, ["servers", "disk"]),
        lambda e: e.get_registered_limits(["servers", "gpus", "disk"]),
        lambda e: sorted(e.get_registered_limits(None)),
    ]


USAGE = {"servers": 4, "cores": 5, "ram": 1000, "gpus": 0, "disk": 0}


@requires_access_log
def test_same_answers_and_same_requests_as_oslo_limit(svc):
    calls = calls_for(svc)
    oslo_results, oslo_requests = run("oslo.limit", svc, calls, USAGE)
    ours_results, ours_requests = run("compat", svc, calls, USAGE)
    assert ours_results == oslo_results
    assert ours_requests == oslo_requests
    # What the comparison covered: refusals and admissions, and requests
    # on warm calls for a project without overrides (oslo.limit's misses).
    kinds = {r[0] for r in oslo_results}
    assert {"ok", "ProjectOverLimit", "ValueError"} <= kinds
    assert len(oslo_requests[4]) == 2  # q, 2 resources, warm: one per resource
    assert len(oslo_requests[2]) == 0  # p, warm: all hits


def test_error_line_for_a_resource_without_registered_limit(svc, caplog):
    from oslo_limit import limit as real

    from delimiter.compat import oslo_limit as compat

    q = svc.projects["q"]
    lines = {}
    for name, mod in (("oslo.limit", real), ("compat", compat)):
        configure_oslo_limit(svc.endpoint_id)
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="oslo.limit"):
            e = mod.Enforcer(lambda project_id, names: {n: 0 for n in names})
            with pytest.raises(Exception):
                e.enforce(q, {"disk": 1})
        lines[name] = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    assert lines["compat"] == lines["oslo.limit"]
    assert lines["compat"] and "Unable to find registered limit for resource disk" in lines["compat"][0][2]


def test_logger_name_can_be_chosen(svc, caplog):
    from delimiter.compat import oslo_limit as compat

    configure_oslo_limit(svc.endpoint_id)
    with caplog.at_level(logging.ERROR, logger="my.service.quota"):
        e = compat.Enforcer(lambda project_id, names: {n: 0 for n in names}, logger="my.service.quota")
        with pytest.raises(compat.ProjectOverLimit):
            e.enforce(svc.projects["q"], {"disk": 1})
    assert [r.name for r in caplog.records] == ["my.service.quota"]


@requires_access_log
def test_cache_ttl_makes_warm_enforce_free(svc):
    from delimiter.compat import oslo_limit as compat

    configure_oslo_limit(svc.endpoint_id)
    q = svc.projects["q"]
    e = compat.Enforcer(lambda project_id, names: {n: 0 for n in names}, cache_ttl=300)
    e.enforce(q, {"servers": 1, "cores": 1})
    with counting() as c:
        for _ in range(3):
            e.enforce(q, {"servers": 1, "cores": 1, "ram": 5})
        with pytest.raises(compat.ProjectOverLimit) as over:
            e.enforce(q, {"servers": 11})
        # A second Enforcer shares the process's copy.
        compat.Enforcer(lambda project_id, names: {n: 0 for n in names}, cache_ttl=300).enforce(q, {"servers": 1})
    assert c.n == 0, c.lines
    assert [(i.resource_name, i.limit) for i in over.value.over_limit_info_list] == [("servers", 10)]
