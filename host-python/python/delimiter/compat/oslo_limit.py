"""A drop-in for oslo.limit 2.12's ``Enforcer``, deciding with Delimiter.

Replace ::

    from oslo_limit import limit, exception
    enforcer = limit.Enforcer(usage_callback)

with ::

    from delimiter.compat import oslo_limit as limit
    exception = limit  # ProjectOverLimit, OverLimitInfo live here too
    enforcer = limit.Enforcer(usage_callback)

and everything behaves as before, quirks included (see
``docs/semantics.md``, "Compatibility with oslo.limit"): every
resource named in the deltas is checked whatever the sign of its delta, any
negative limit is unlimited, a resource with no limit at all has limit 0,
missing usage is a ``ValueError``, and ``ProjectOverLimit`` carries the same
``over_limit_info_list`` and message text. The check itself is the
component's ``oslo-check``.

Limits come from Keystone like oslo.limit's (``limits=None``: openstacksdk,
configured by the same ``[oslo_limit]`` options; install
``delimiter[keystone]``), or from a :class:`StaticLimits` (no Keystone at
all). openstacksdk and oslo.config are imported only on the Keystone path.

``cache_ttl`` (seconds), only when asked: limits then come from the
process's shared :class:`delimiter.openstack.KeystoneLimits` (one bulk
listing, cached with that time to live for hits and misses, shared by every
Enforcer), so a warm ``enforce`` makes no Keystone request; answers may then
be up to ``cache_ttl`` stale, which oslo.limit's never are for a miss.

Logging: what oslo.limit logs, with its text and levels (the ERROR line for
a resource with no registered limit), under the logger ``oslo.limit.limit``
by default (oslo.limit's, as oslo_log names it), so an operator's logging configuration for oslo.limit applies
unchanged; ``Enforcer(..., logger=...)`` names another.

Speed: an ``enforce`` whose resources all fit (every value below 2**62 in
size) and are all within their limits is admitted after oslo.limit's own
comparison (``limit < 0 or current + delta <= limit``) in Python; anything
else (a resource over its limit, missing usage, a value that is not a
plain small integer) is decided by the component's ``oslo-check``, whose
answer, exception and message are the ones returned. The tests check the
two against each other and against oslo.limit.

One difference, on purpose: limits, usage and deltas must fit in a signed
64-bit integer (oslo.limit would compare larger Python integers); outside
that range ``InvalidInput`` (a ``ValueError``) or ``OverflowError`` is
raised instead of a decision.
"""

import logging
from collections import defaultdict, namedtuple

import delimiter as _d
from delimiter.openstack import connection as _connection
from delimiter.openstack.connection import SessionInitError, list_opts, register_opts
from delimiter.openstack.errors import OverLimitInfo, ProjectOverLimit

__all__ = [
    "Enforcer",
    "StaticLimits",
    "ProjectUsage",
    "ProjectOverLimit",
    "OverLimitInfo",
    "SessionInitError",
    "list_opts",
    "register_opts",
]

#: oslo.limit's logger name (oslo_log turns its ``oslo_limit.limit`` into
#: ``oslo.limit.limit``): an operator's logging configuration for
#: oslo.limit applies to the drop-in unchanged.
LOGGER_NAME = "oslo.limit.limit"
LOG = logging.getLogger(LOGGER_NAME)

ProjectUsage = namedtuple("ProjectUsage", ["limit", "usage"])

# Values up to this size cannot overflow 64 bits when a usage and a delta
# are added: the Python fast path takes only those.
_SMALL = 2**62


# ---- where limits come from -------------------------------------------------


class StaticLimits:
    """Limits given in code rather than read from Keystone.

    ``registered`` is ``{resource_name: limit}`` (the defaults);
    ``project`` is ``{project_id: {resource_name: limit}}`` (the overrides),
    the shapes of oslo.limit's ``LimitFixture``. -1 (any negative) is
    unlimited.
    """

    def __init__(self, registered=None, project=None):
        self.registered = {str(k): int(v) for k, v in (registered or {}).items()}
        self.project = {
            str(p): {str(k): int(v) for k, v in limits.items()}
            for p, limits in (project or {}).items()
        }

    def registered_limit(self, resource_name):
        """The registered limit, or None if there is none."""
        return self.registered.get(resource_name)

    def project_limit(self, project_id, resource_name):
        """The project's own limit, or None if there is none."""
        return self.project.get(project_id, {}).get(resource_name)

    def all_registered_limits(self):
        return list(self.registered.items())

    def all_project_limits(self, project_id):
        return list(self.project.get(project_id, {}).items())

    def __repr__(self):
        return f"StaticLimits(registered={self.registered!r}, project={self.project!r})"


class _KeystoneLimits:
    """Limits read from Keystone unified limits, as oslo.limit 2.12's
    ``_EnforcerUtils`` reads them (same endpoint discovery, same queries
    in the same order, same optional cache for the enforcer's lifetime,
    misses never cached). The caches hold the limits as integers."""

    def __init__(self, connection, cache=True):
        self.connection = connection
        self.should_cache = cache
        # {project_id: {resource_name: project_limit}}
        self.plimit_cache = defaultdict(dict)
        # {resource_name: registered_limit}
        self.rlimit_cache = {}

        self._endpoint = _connection.find_endpoint(connection)
        self.service_id = self._endpoint.service_id
        self.region_id = self._endpoint.region_id

    def registered_limit(self, resource_name):
        if resource_name in self.rlimit_cache:
            return self.rlimit_cache[resource_name]
        limit = None
        for rl in self.connection.registered_limits(
            service_id=self.service_id, region_id=self.region_id
        ):
            if rl.resource_name == resource_name:
                limit = rl.default_limit
            if self.should_cache:
                self.rlimit_cache[rl.resource_name] = rl.default_limit
        return limit

    def project_limit(self, project_id, resource_name):
        cached = self.plimit_cache.get(project_id)
        if cached is not None and resource_name in cached:
            return cached[resource_name]
        limit = None
        for pl in self.connection.limits(
            service_id=self.service_id, region_id=self.region_id, project_id=project_id
        ):
            # As oslo.limit: the first limit found for the resource.
            if limit is None and pl.resource_name == resource_name:
                limit = pl.resource_limit
            if self.should_cache:
                self.plimit_cache[project_id][pl.resource_name] = pl.resource_limit
        return limit

    def all_registered_limits(self):
        registered_limits = []
        for reg_limit in self.connection.registered_limits(
            service_id=self.service_id, region_id=self.region_id
        ):
            name, limit = reg_limit.resource_name, reg_limit.default_limit
            registered_limits.append((name, limit))
            if self.should_cache:
                self.rlimit_cache[name] = limit
        return registered_limits

    def all_project_limits(self, project_id):
        project_limits = []
        for proj_limit in self.connection.limits(
            service_id=self.service_id, region_id=self.region_id, project_id=project_id
        ):
            name, limit = proj_limit.resource_name, proj_limit.resource_limit
            project_limits.append((name, limit))
            if self.should_cache:
                self.plimit_cache[project_id][name] = limit
        return project_limits


class _SharedLimits:
    """The limit-source interface over a
    :class:`delimiter.openstack.KeystoneLimits` (``cache_ttl``): every
    answer from its current copy, no request while the copy is fresh."""

    def __init__(self, limits):
        self.limits = limits
        self.service_id = limits.service_id
        self.region_id = limits.region_id

    def registered_limit(self, resource_name):
        return self.limits.limits().registered.get(resource_name)

    def project_limit(self, project_id, resource_name):
        own = self.limits.limits().project.get(project_id)
        return None if own is None else own.get(resource_name)

    def all_registered_limits(self):
        return list(self.limits.limits().registered.items())

    def all_project_limits(self, project_id):
        return list(self.limits.limits().project.get(project_id, {}).items())


# ---- the enforcer -----------------------------------------------------------

# Resource names go to the component unchanged, and come back unchanged:
# its oslo-check accepts every name oslo.limit accepts, the empty string
# included.


class Enforcer:
    """oslo.limit 2.12's ``Enforcer``: checks usage plus deltas against
    limits for the resources in the deltas (flat model).

    :param usage_callback: ``usage_callback(project_id, resource_names)``
        returns ``{resource_name: current_usage}``.
    :param cache: cache Keystone's limits for the enforcer's lifetime
        (oslo.limit's: hits only; a miss is asked again on every call).
    :param limits: a :class:`StaticLimits`, or None to read them from
        Keystone like oslo.limit does (``[oslo_limit]`` options).
    :param cache_ttl: None (the default): oslo.limit's caching, exact. A
        number of seconds: limits from the process's shared
        :class:`delimiter.openstack.KeystoneLimits` with that time to live
        (hits and misses; no Keystone request on a warm enforce; answers up
        to that stale).
    :param logger: the logger (or its name) for what oslo.limit logs;
        default ``oslo.limit.limit``, oslo.limit's own.

    Raises ``ValueError`` when Keystone's model is not ``flat`` (as
    oslo.limit 2.12 does for Keystone's ``strict_two_level``: use
    :class:`delimiter.openstack.Enforcer` for it), or the endpoint is not
    found; :class:`SessionInitError` when the options give no session.
    """

    def __init__(self, usage_callback, cache=True, limits=None, *, cache_ttl=None, logger=None):
        if not callable(usage_callback):
            msg = "usage_callback must be a callable function."
            raise ValueError(msg)

        self._usage_callback = usage_callback
        self._log = (
            logger
            if isinstance(logger, logging.Logger)
            else logging.getLogger(logger)
            if logger
            else LOG
        )
        self.model = "flat"
        if limits is None:
            self.connection = _connection.get_connection()
            if cache_ttl is not None:
                from delimiter.openstack import KeystoneLimits

                shared = KeystoneLimits.shared(float(cache_ttl))
                model = shared.limits().model
            else:
                shared = None
                model = self._get_enforcement_model()
            if model not in ("flat", "strict-two-level"):
                raise ValueError(f"enforcement model {model} is not supported")
            self.model = model
            # As oslo.limit: a strict-two-level enforcer has no limit source
            # (every method raises NotImplementedError).
            if model != "flat":
                limits = None
            elif shared is not None:
                limits = _SharedLimits(shared)
            else:
                limits = _KeystoneLimits(self.connection, cache=cache)
        self._limits = limits

    def _get_enforcement_model(self):
        """Query keystone for the configured enforcement model."""
        return self.connection.get("/limits/model").json()["model"]["name"]

    def _flat(self):
        if self.model != "flat":
            raise NotImplementedError()
        return self._limits

    def enforce(self, project_id, deltas):
        """Raises :class:`ProjectOverLimit` if usage plus ``deltas`` is over
        a limit of ``project_id`` (or, for None, a registered limit)."""
        if project_id is not None and (not project_id or not isinstance(project_id, str)):
            msg = "project_id must be a non-empty string or None."
            raise ValueError(msg)

        if not isinstance(deltas, dict) or len(deltas) == 0:
            msg = "deltas must be a non-empty dictionary."
            raise ValueError(msg)

        for k, v in deltas.items():
            if not isinstance(k, str):
                raise ValueError("resource name is not a string.")
            elif not isinstance(v, int):
                raise ValueError("resource limit is not an integer.")

        limits = self._flat()
        resources_to_check = sorted(deltas)

        # oslo.limit's lookups, in its order: the project's limit, else the
        # registered one (the ERROR line when neither exists).
        resolved = []
        project_limit, registered_limit = limits.project_limit, limits.registered_limit
        for name in resources_to_check:
            limit = None
            if project_id is not None:
                limit = project_limit(project_id, name)
                if limit is not None:
                    resolved.append((name, limit, True))
                    continue
            limit = registered_limit(name)
            if limit is None:
                self._log_missing(name)
            resolved.append((name, limit, False))

        current_usage = self._usage_callback(project_id, resources_to_check)

        # The fast path: every value a small int and every resource within
        # its limit is oslo.limit's admission (limit < 0: unlimited; no
        # limit: 0).
        small = _SMALL
        try:
            for name, limit, _ in resolved:
                current = current_usage[name]
                delta = deltas[name]
                if type(current) is not int or not (-small < current < small and -small < delta < small):
                    break
                if limit is None:
                    if current + delta > 0:
                        break
                elif type(limit) is not int or limit >= small:
                    break
                elif limit >= 0 and current + delta > limit:
                    break
            else:
                return
        except Exception:
            pass  # missing usage, an odd mapping: the component's path decides

        self._check(project_id, deltas, resolved, current_usage, resources_to_check)

    def _check(self, project_id, deltas, resolved, current_usage, resources_to_check):
        """The component's oslo-check, authoritative: raises
        ``ProjectOverLimit``, ``ValueError`` (missing usage), or returns."""
        registered, project = [], []
        for name, limit, own in resolved:
            if own:
                project.append(_d.ResourceLimit(name, limit))
            elif limit is not None:
                registered.append(_d.ResourceLimit(name, limit))

        # In oslo.limit's order: the first resource without usage ends the
        # check (the component raises missing-usage for it), and each value
        # is converted with int() as it is reached.
        usage, check_deltas = [], []
        for name in resources_to_check:
            if name not in current_usage:
                break
            usage.append(_d.ResourceUsage(name, int(current_usage[name])))
            check_deltas.append(_d.Delta(name, int(deltas[name])))
        for name in resources_to_check[len(check_deltas):]:
            check_deltas.append(_d.Delta(name, int(deltas[name])))

        check = _d.OsloCheck(project_id, check_deltas, registered, project, usage)
        try:
            over = _d.oslo_check(check)
        except _d.InvalidInput as e:
            if e.kind == "missing-usage":
                raise ValueError(f"unable to get current usage for {e.resource or ''}") from None
            # Anything else (a sum beyond 64 bits) is the component's error
            # as it is.
            raise

        if over:
            over_limit_list = [
                OverLimitInfo(o.resource_name, o.limit, o.current_usage, o.delta) for o in over
            ]
            self._log.debug("hit limit for project: %s", over_limit_list)
            raise ProjectOverLimit(project_id, over_limit_list)

    def _log_missing(self, resource_name):
        # oslo.limit's ERROR line, same text.
        self._log.error(
            "Unable to find registered limit for resource "
            "%(resource)s for %(service)s in region %(region)s.",
            {
                "resource": resource_name,
                "service": getattr(self._limits, "service_id", None),
                "region": getattr(self._limits, "region_id", None),
            },
        )

    def calculate_usage(self, project_id, resources_to_check):
        """``{resource_name: ProjectUsage(limit, usage)}`` for reporting."""
        if project_id is not None and (not project_id or not isinstance(project_id, str)):
            msg = "project_id must be a non-empty string or None."
            raise ValueError(msg)

        msg = "resources_to_check must be non-empty sequence of resource name strings"
        try:
            if len(resources_to_check) == 0:
                raise ValueError(msg)
        except TypeError:
            raise ValueError(msg)

        for resource_name in resources_to_check:
            if not isinstance(resource_name, str):
                raise ValueError(msg)

        limits = self.get_project_limits(project_id, resources_to_check)
        usage = self._usage_callback(project_id, resources_to_check)

        return {resource: ProjectUsage(limit, usage[resource]) for resource, limit in limits}

    def get_registered_limits(self, resources_to_check):
        """``[(resource_name, limit)]``: the registered limit of each (0 if
        none), or every registered limit when ``resources_to_check`` is
        None."""
        limits = self._flat()
        if resources_to_check is None:
            return limits.all_registered_limits()
        registered_limits = []
        for resource_name in resources_to_check:
            limit = limits.registered_limit(resource_name)
            registered_limits.append((resource_name, 0 if limit is None else limit))
        return registered_limits

    def get_project_limits(self, project_id, resources_to_check):
        """``[(resource_name, limit)]``: the project's limit of each, else the
        registered one, else 0; or every limit of the project when
        ``resources_to_check`` is None."""
        limits = self._flat()
        if resources_to_check is None:
            if project_id is None:
                raise ValueError("project_id must not be None")
            return limits.all_project_limits(project_id)

        project_limits = []
        for resource_name in resources_to_check:
            limit = None
            if project_id is not None:
                limit = limits.project_limit(project_id, resource_name)
            if limit is None:
                limit = limits.registered_limit(resource_name)
            if limit is None:
                self._log_missing(resource_name)
                limit = 0
            project_limits.append((resource_name, limit))
        return project_limits
