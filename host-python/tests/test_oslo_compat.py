"""delimiter.compat.oslo_limit against the real oslo.limit 2.12 from PyPI.

Each input runs three ways, and the outcomes (exception type, attributes,
message) must be identical:

- oslo.limit's own ``Enforcer``, limits supplied by its ``LimitFixture``;
- our ``Enforcer`` with ``limits=StaticLimits(...)`` (no Keystone);
- our ``Enforcer`` with ``limits=None`` (the Keystone path, openstacksdk
  mocked the same way ``LimitFixture`` mocks it for oslo.limit).
"""

import logging

import fixtures
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oslo_config import cfg
from oslo_limit import exception as oslo_exception
from oslo_limit import fixture as oslo_fixture
from oslo_limit import limit as oslo_limit

import delimiter
from delimiter.compat import oslo_limit as compat

# Both libraries find the service's endpoint in Keystone by id.
cfg.CONF.set_override("endpoint_id", "ENDPOINT_ID", group="oslo_limit")
# oslo.limit logs an error for every resource without a limit: noise here.
logging.getLogger("oslo_limit").setLevel(logging.CRITICAL)
logging.getLogger("delimiter").setLevel(logging.CRITICAL)


class CompatLimitFixture(oslo_fixture.LimitFixture):
    """oslo.limit's LimitFixture, aimed at delimiter.compat.oslo_limit: the
    same fake Keystone connection (same fake endpoint, limits and
    registered limits), patched into our module instead of oslo.limit's."""

    def setUp(self):
        fixtures.Fixture.setUp(self)
        from unittest import mock

        from openstack.identity.v3 import endpoint as _endpoint
        from openstack.test import fakes as sdk_fakes

        self.mock_conn = mock.MagicMock()
        self.useFixture(
            fixtures.MockPatch("delimiter.openstack.connection._SDK_CONNECTION", new=self.mock_conn)
        )
        self.mock_conn.get.return_value.json.return_value = {"model": {"name": "flat"}}
        self.mock_conn.get_endpoint.return_value = sdk_fakes.generate_fake_resource(
            _endpoint.Endpoint, service_id="service_id", region_id="region_id"
        )
        self.mock_conn.services.side_effect = oslo_fixture._fake_services
        self.mock_conn.get_region.side_effect = oslo_fixture._fake_region
        self.mock_conn.endpoints.side_effect = oslo_fixture._fake_endpoints
        self.mock_conn.limits.side_effect = self.get_projlimit_objects
        self.mock_conn.registered_limits.side_effect = self.get_reglimit_objects


def callback(usage):
    calls = []

    def usage_callback(project_id, resources):
        calls.append((project_id, list(resources)))
        if isinstance(usage, Exception):
            raise usage
        return usage

    usage_callback.calls = calls
    return usage_callback


def outcome(f):
    """What a call did, comparable across the two libraries."""
    try:
        result = f()
    except (oslo_exception.ProjectOverLimit, compat.ProjectOverLimit) as e:
        return (
            "ProjectOverLimit",
            e.project_id,
            [(i.resource_name, i.limit, i.current_usage, i.delta) for i in e.over_limit_info_list],
            [(str(i), repr(i)) for i in e.over_limit_info_list],
            str(e),
            e.args,
        )
    except Exception as e:
        # InvalidInput is a ValueError: compare on the builtin type.
        kind = next(t for t in type(e).__mro__ if t.__module__ == "builtins")
        return (kind.__name__, str(e))
    if isinstance(result, dict):
        result = {k: (tuple(v), type(v).__name__) for k, v in result.items()}
    return ("ok", result)


def run_all(reg, proj, call, usage):
    """``call(enforcer)`` on the three enforcers: their outcomes, and the
    usage callback's calls."""
    results = []
    with oslo_fixture.LimitFixture(reg, proj):
        cb = callback(usage)
        results.append((outcome(lambda: call(oslo_limit.Enforcer(cb))), cb.calls))
    cb = callback(usage)
    static = compat.StaticLimits(registered=reg, project=proj)
    results.append((outcome(lambda: call(compat.Enforcer(cb, limits=static))), cb.calls))
    with CompatLimitFixture(reg, proj):
        cb = callback(usage)
        results.append((outcome(lambda: call(compat.Enforcer(cb))), cb.calls))
    return results


def assert_same(reg, proj, call, usage):
    oslo, static, keystone = run_all(reg, proj, call, usage)
    assert static == oslo
    assert keystone == oslo
    return oslo[0]


REG = {"servers": 10, "cores": 20, "ram": -1, "gpus": 0, "disk": -7}
PROJ = {"p": {"servers": 4, "ram": 100, "cores": -1}, "q": {"gpus": 2}}
USAGE = {"servers": 4, "cores": 20, "ram": 1000, "gpus": 0, "disk": 10**12}

# (project_id, deltas, usage): a table of oslo.limit's documented and
# undocumented behaviour.
TABLE = [
    ("p", {"servers": 0}, USAGE),  # at the limit, re-check: within
    ("p", {"servers": 1}, USAGE),  # project override of 4 reached
    ("q", {"servers": 1}, USAGE),  # registered 10 applies: within
    (None, {"servers": 6}, USAGE),  # project None: registered only
    (None, {"servers": 7}, USAGE),
    ("p", {"cores": 1000}, USAGE),  # project -1: unlimited
    ("q", {"cores": 1}, USAGE),  # at the registered 20: over
    ("q", {"cores": 0}, USAGE),  # zero delta at the limit: within
    ("q", {"cores": 0}, {**USAGE, "cores": 21}),  # zero delta, already over
    ("q", {"cores": -1}, {**USAGE, "cores": 22}),  # negative delta, still over
    ("q", {"cores": -2}, {**USAGE, "cores": 22}),  # negative delta back to the limit
    ("p", {"ram": 1}, USAGE),  # project 100 overrides registered -1: over
    ("q", {"ram": 10**6}, USAGE),  # registered -1 unlimited
    ("q", {"disk": 1}, USAGE),  # registered -7: any negative is unlimited
    ("p", {"gpus": 1}, USAGE),  # registered 0
    ("q", {"gpus": 2}, USAGE),  # project 2 overrides 0: within
    ("q", {"gpus": 3}, USAGE),
    ("p", {"widgets": 0}, {**USAGE, "widgets": 0}),  # no limit at all: 0, within
    ("p", {"widgets": 1}, {**USAGE, "widgets": 0}),  # no limit at all: over
    ("p", {"widgets": -1}, {**USAGE, "widgets": 0}),  # releases are checked too
    ("p", {"servers": 5, "cores": 1, "gpus": 1, "ram": 1}, USAGE),  # several, name order
    ("p", {"servers": 1, "widgets": 1}, USAGE),  # missing usage: ValueError
    ("p", {"ram": 1, "widgets": 1}, USAGE),  # missing usage even when unlimited
    ("p", {"cores": 1, "ram": 1}, {"servers": 1}),  # the first missing in name order
    ("p", {"servers": 9, "zzz": 1}, USAGE),  # missing after one over: ValueError
    ("p", {"servers": 1}, {"servers": "3"}),  # usage converted with int()
    ("p", {"servers": 1}, {"servers": 3.9}),
    ("p", {"servers": 1}, {"servers": None}),  # int(None): TypeError
    ("p", {"servers": 1}, {"servers": "many"}),  # int("many"): ValueError
    ("p", {"servers": True}, USAGE),  # bool is an int to oslo.limit
    ("p", {"": 1}, {"": 0}),  # the empty resource name is a name
    ("p", {"é": 0, "z": 0, "Z": 0}, {"é": 0, "z": 0, "Z": 0}),  # code point order
    ("p", {"servers": 2**61}, {"servers": 2**62}),  # large, within 64 bits
    ("", {"servers": 1}, USAGE),  # project_id checks
    (7, {"servers": 1}, USAGE),
    ("p", {}, USAGE),  # deltas checks
    ("p", [("servers", 1)], USAGE),
    ("p", {1: 1}, USAGE),
    ("p", {"servers": 1.0}, USAGE),
    ("p", {"servers": "1"}, USAGE),
    ("p", {"servers": 1}, RuntimeError("usage backend down")),  # callback raises
    ("p", {"servers": 1}, None),  # callback returns None: TypeError
]


@pytest.mark.parametrize(
    "project_id, deltas, usage", TABLE, ids=[f"{i}:{r[0]!r}:{r[1]!r}" for i, r in enumerate(TABLE)]
)
def test_enforce_matches_oslo_limit(project_id, deltas, usage):
    assert_same(REG, PROJ, lambda e: e.enforce(project_id, deltas), usage)


def test_the_table_covers_every_outcome():
    kinds = {
        assert_same(REG, PROJ, lambda e, p=p, d=d: e.enforce(p, d), u)[0]
        for p, d, u in TABLE
    }
    assert {"ok", "ProjectOverLimit", "ValueError", "TypeError", "RuntimeError"} <= kinds


def test_sums_beyond_64_bits_are_invalid_input():
    """The one documented difference: oslo.limit compares unbounded Python
    integers; Delimiter's arithmetic is checked 64-bit."""
    e = compat.Enforcer(callback({"servers": 2**62}), limits=compat.StaticLimits({"servers": 1}))
    with pytest.raises(delimiter.InvalidInput) as raised:
        e.enforce("p", {"servers": 2**62})
    assert raised.value.kind == "overflow"
    assert raised.value.resource == "servers"
    assert "r:" not in str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_over_limit_message_and_attributes():
    e = compat.Enforcer(callback(USAGE), limits=compat.StaticLimits(REG, PROJ))
    with pytest.raises(compat.ProjectOverLimit) as raised:
        e.enforce("p", {"servers": 1, "gpus": 1})
    err = raised.value
    assert str(err) == (
        "Project p is over a limit for [Resource gpus is over limit of 0 due to current "
        "usage 0 and delta 1, Resource servers is over limit of 4 due to current usage 4 "
        "and delta 1]"
    )
    assert [(i.resource_name, i.limit, i.current_usage, i.delta) for i in err.over_limit_info_list] == [
        ("gpus", 0, 0, 1),
        ("servers", 4, 4, 1),
    ]
    assert isinstance(err, delimiter.QuotaError)


@pytest.mark.parametrize(
    "project_id, resources, usage",
    [
        ("p", ["servers", "ram", "widgets"], {"servers": 1, "ram": 2, "widgets": 3}),
        (None, ["servers", "gpus"], {"servers": 1, "gpus": 2}),
        ("q", ("gpus",), {"gpus": "2"}),
        ("p", ["servers", "ram"], {"servers": 1}),  # missing usage: KeyError
        ("p", [], USAGE),
        ("p", "servers", USAGE),  # a string is a sequence of names
        ("p", 5, USAGE),
        ("p", ["servers", 5], USAGE),
        ("", ["servers"], USAGE),
    ],
)
def test_calculate_usage_matches_oslo_limit(project_id, resources, usage):
    assert_same(REG, PROJ, lambda e: e.calculate_usage(project_id, resources), usage)


@pytest.mark.parametrize(
    "call",
    [
        lambda e: e.get_registered_limits(["servers", "widgets", "ram"]),
        lambda e: e.get_registered_limits(None),
        lambda e: e.get_project_limits("p", ["servers", "gpus", "widgets"]),
        lambda e: e.get_project_limits(None, ["servers", "gpus"]),
        lambda e: e.get_project_limits("p", None),
        lambda e: e.get_project_limits("nobody", None),
        lambda e: e.get_project_limits(None, None),
    ],
)
def test_limit_queries_match_oslo_limit(call):
    assert_same(REG, PROJ, call, USAGE)


def test_usage_callback_must_be_callable():
    for make in (
        lambda: oslo_limit.Enforcer(None),
        lambda: compat.Enforcer(None, limits=compat.StaticLimits()),
    ):
        with oslo_fixture.LimitFixture({}, {}):
            assert outcome(make) == ("ValueError", "usage_callback must be a callable function.")


@pytest.mark.parametrize("model", ["strict_two_level", "strict-two-level", "nested"])
@pytest.mark.parametrize(
    "call",
    [
        lambda e: e.enforce("p", {"servers": 1}),
        lambda e: e.enforce("p", {}),
        lambda e: e.calculate_usage("p", ["servers"]),
        lambda e: e.get_project_limits("p", ["servers"]),
        lambda e: e.get_registered_limits(None),
    ],
)
def test_keystone_enforcement_models_match_oslo_limit(model, call):
    """Keystone says `strict_two_level`; oslo.limit only knows
    `strict-two-level`, whose enforcer raises NotImplementedError."""
    from unittest import mock

    def run(make):
        return outcome(lambda: call(make()))

    with oslo_fixture.LimitFixture({"servers": 1}, {}):
        with mock.patch.object(oslo_limit.Enforcer, "_get_enforcement_model", return_value=model):
            oslo = run(lambda: oslo_limit.Enforcer(callback({"servers": 0})))
    with CompatLimitFixture({"servers": 1}, {}) as f:
        f.mock_conn.get.return_value.json.return_value = {"model": {"name": model}}
        ours = run(lambda: compat.Enforcer(callback({"servers": 0})))
    assert ours == oslo


def test_keystone_limits_are_cached_like_oslo_limit():
    for cache, want in ((True, 1), (False, 3)):
        with CompatLimitFixture({"servers": 10}, {"p": {"servers": 4}}) as f:
            e = compat.Enforcer(callback({"servers": 0}), cache=cache)
            for _ in range(3):
                e.enforce("p", {"servers": 1})
            assert f.mock_conn.limits.call_count == want


def test_keystone_path_is_imported_lazily():
    import subprocess
    import sys

    code = (
        "import sys, delimiter, delimiter.compat.oslo_limit as l\n"
        "l.Enforcer(lambda p, r: {'a': 0}, limits=l.StaticLimits({'a': 1})).enforce('p', {'a': 1})\n"
        "heavy = [m for m in ('openstack', 'oslo_config', 'keystoneauth1') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---- randomized sweep --------------------------------------------------------

NAMES = ["a", "b", "c", "", "é"]
values = st.integers(min_value=-3, max_value=12)
limit_maps = st.dictionaries(st.sampled_from(NAMES), values, max_size=4)


# Usage for every name, less at most one (so that missing usage happens,
# but not in most examples).
usages = st.tuples(
    st.fixed_dictionaries({n: st.integers(min_value=-2, max_value=15) for n in NAMES}),
    st.one_of(st.none(), st.none(), st.none(), st.sampled_from(NAMES)),
).map(lambda t: {k: v for k, v in t[0].items() if k != t[1]})


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    reg=limit_maps,
    proj=st.dictionaries(st.sampled_from(["p", "q"]), limit_maps, max_size=2),
    project_id=st.sampled_from([None, "p", "q", "r"]),
    deltas=st.dictionaries(st.sampled_from(NAMES), values, min_size=1, max_size=4),
    usage=usages,
)
def test_randomized_enforce_matches_oslo_limit(reg, proj, project_id, deltas, usage):
    assert_same(reg, proj, lambda e: e.enforce(project_id, deltas), usage)
