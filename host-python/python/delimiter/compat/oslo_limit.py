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

One difference, on purpose: limits, usage and deltas must fit in a signed
64-bit integer (oslo.limit would compare larger Python integers); outside
that range ``InvalidInput`` (a ``ValueError``) or ``OverflowError`` is
raised instead of a decision.
"""

import logging
from collections import defaultdict, namedtuple

import delimiter as _d

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

LOG = logging.getLogger(__name__)

ProjectUsage = namedtuple("ProjectUsage", ["limit", "usage"])

# oslo.limit's connection to Keystone, made once per process (and replaced
# by tests, as oslo.limit's own fixture does with its).
_SDK_CONNECTION = None

_OPTION_GROUP = "oslo_limit"


# ---- exceptions (oslo_limit.exception) --------------------------------------


class ProjectOverLimit(_d.QuotaError):
    """A project goes over one or more limits (oslo.limit's, same text)."""

    def __init__(self, project_id, over_limit_info_list):
        if not isinstance(over_limit_info_list, list):
            raise ValueError(over_limit_info_list)

        if len(over_limit_info_list) == 0:
            raise ValueError(over_limit_info_list)

        for info in over_limit_info_list:
            if not isinstance(info, OverLimitInfo):
                raise ValueError(over_limit_info_list)

        self.project_id = project_id
        self.over_limit_info_list = over_limit_info_list
        msg = "Project %(project_id)s is over a limit for %(limits)s" % {
            "project_id": project_id,
            "limits": over_limit_info_list,
        }
        super().__init__(msg)


class OverLimitInfo:
    """One resource over its limit (oslo.limit's, same attributes and text)."""

    def __init__(self, resource_name, limit, current_usage, delta):
        self.resource_name = resource_name
        self.limit = int(limit)
        self.current_usage = int(current_usage)
        self.delta = int(delta)

    def __str__(self):
        template = (
            "Resource %s is over limit of %s due to "
            "current usage %s and delta %s"
        )
        return template % (
            self.resource_name,
            self.limit,
            self.current_usage,
            self.delta,
        )

    def __repr__(self):
        return self.__str__()


class SessionInitError(_d.QuotaError):
    """The Keystone session could not be set up (oslo.limit's, same text)."""

    def __init__(self, reason):
        msg = "Can't initialise OpenStackSDK session: %(reason)s." % {"reason": reason}
        super().__init__(msg)


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
    ``_EnforcerUtils`` reads them (same endpoint discovery, same queries,
    same optional cache for the enforcer's lifetime)."""

    def __init__(self, connection, cache=True):
        self.connection = connection
        self.should_cache = cache
        # {project_id: {resource_name: project_limit}}
        self.plimit_cache = defaultdict(dict)
        # {resource_name: registered_limit}
        self.rlimit_cache = {}

        self._endpoint = self._get_endpoint()
        self._service_id = self._endpoint.service_id
        self._region_id = self._endpoint.region_id

    def _get_endpoint(self):
        endpoint = self._get_endpoint_by_id()
        if endpoint is not None:
            return endpoint
        return self._get_endpoint_by_service_lookup()

    def _get_endpoint_by_id(self):
        from openstack import exceptions as os_exceptions

        endpoint_id = _conf().oslo_limit.endpoint_id
        if endpoint_id is None:
            return None
        try:
            return self.connection.get_endpoint(endpoint_id)
        except os_exceptions.ResourceNotFound:
            raise ValueError(f"Can't find endpoint for {endpoint_id}")

    def _get_endpoint_by_service_lookup(self):
        from openstack import exceptions as os_exceptions

        conf = _conf().oslo_limit
        service_type = conf.endpoint_service_type
        service_name = conf.endpoint_service_name

        if not service_type and not service_name:
            raise ValueError("Either service_type or service_name should be set")

        services = list(self.connection.services(type=service_type, name=service_name))
        if len(services) > 1:
            raise ValueError("Multiple services found")
        if len(services) == 0:
            raise ValueError("Service not found")
        service_id = services[0].id

        if conf.endpoint_region_name is not None:
            try:
                region = self.connection.get_region(conf.endpoint_region_name)
            except os_exceptions.ResourceNotFound:
                raise ValueError("Region not found")
            region_id = region.id
        else:
            region_id = None

        interface = conf.endpoint_interface
        if interface.endswith("URL"):
            LOG.info(
                "'[oslo_limit] endpoint_interface' is configured with a "
                "deprecated value: %s. Remove the URL suffix, which is not "
                "relevant for Keystone v3 API.",
                interface,
            )
            interface = interface[:-3]

        endpoints = list(
            self.connection.endpoints(
                service_id=service_id, region_id=region_id, interface=interface
            )
        )
        if len(endpoints) > 1:
            raise ValueError("Multiple endpoints found")
        if len(endpoints) == 0:
            raise ValueError("Endpoint not found")
        return endpoints[0]

    def registered_limit(self, resource_name):
        reg_limit = self._get_registered_limit(resource_name)
        return reg_limit.default_limit if reg_limit else None

    def project_limit(self, project_id, resource_name):
        project_limit = self._get_project_limit(project_id, resource_name)
        return project_limit.resource_limit if project_limit else None

    def all_registered_limits(self):
        registered_limits = []
        reg_limits = self.connection.registered_limits(
            service_id=self._service_id, region_id=self._region_id
        )
        for reg_limit in reg_limits:
            name, limit = reg_limit.resource_name, reg_limit.default_limit
            registered_limits.append((name, limit))
            if self.should_cache:
                self.rlimit_cache[name] = reg_limit
        return registered_limits

    def all_project_limits(self, project_id):
        project_limits = []
        proj_limits = self.connection.limits(
            service_id=self._service_id,
            region_id=self._region_id,
            project_id=project_id,
        )
        for proj_limit in proj_limits:
            name, limit = proj_limit.resource_name, proj_limit.resource_limit
            project_limits.append((name, limit))
            if self.should_cache:
                self.plimit_cache[project_id][name] = proj_limit
        return project_limits

    def _get_project_limit(self, project_id, resource_name):
        if project_id in self.plimit_cache and resource_name in self.plimit_cache[project_id]:
            return self.plimit_cache[project_id][resource_name]

        limits = self.connection.limits(
            service_id=self._service_id,
            region_id=self._region_id,
            project_id=project_id,
        )
        limit = None
        for pl in limits:
            # As oslo.limit: the first limit found for the resource.
            if limit is None and pl.resource_name == resource_name:
                limit = pl
            if self.should_cache:
                self.plimit_cache[project_id][pl.resource_name] = pl
        return limit

    def _get_registered_limit(self, resource_name):
        if resource_name in self.rlimit_cache:
            return self.rlimit_cache[resource_name]

        reg_limits = self.connection.registered_limits(
            service_id=self._service_id, region_id=self._region_id
        )
        reg_limit = None
        for rl in reg_limits:
            if rl.resource_name == resource_name:
                reg_limit = rl
            if self.should_cache:
                self.rlimit_cache[rl.resource_name] = rl
        return reg_limit


# ---- Keystone: options and connection (imported only on this path) ---------


def _options():
    from oslo_config import cfg

    return [
        cfg.StrOpt(
            "endpoint_id",
            help="The service's endpoint id which is registered in Keystone.",
        ),
        cfg.StrOpt("endpoint_service_name", help="Service name for endpoint discovery"),
        cfg.StrOpt("endpoint_service_type", help="Service type for endpoint discovery"),
        cfg.StrOpt("endpoint_region_name", help="Region to which the endpoint belongs"),
        cfg.StrOpt(
            "endpoint_interface",
            default="public",
            choices=[
                "public",
                "publicURL",
                "internal",
                "internalURL",
                "admin",
                "adminURL",
            ],
            help="The interface for endpoint discovery",
        ),
    ]


def list_opts():
    """The ``[oslo_limit]`` options, for oslo-config-generator (the same as
    oslo.limit's ``oslo_limit.opts.list_opts``)."""
    from keystoneauth1 import loading

    return [
        (
            _OPTION_GROUP,
            _options()
            + loading.get_session_conf_options()
            + loading.get_auth_plugin_conf_options("password")
            + loading.get_auth_plugin_conf_options("v2password")
            + loading.get_auth_plugin_conf_options("v3password")
            + loading.get_adapter_conf_options(include_deprecated=False),
        )
    ]


_registered = False


def register_opts(conf=None):
    """Registers the ``[oslo_limit]`` options on ``conf`` (default
    ``oslo_config.cfg.CONF``), as oslo.limit does on import. Registering
    them twice, or beside oslo.limit itself, is harmless."""
    from keystoneauth1 import loading
    from oslo_config import cfg

    conf = cfg.CONF if conf is None else conf
    loading.register_session_conf_options(conf, _OPTION_GROUP)
    loading.register_adapter_conf_options(conf, _OPTION_GROUP, include_deprecated=False)
    loading.register_auth_conf_options(conf, _OPTION_GROUP)
    plugin_name = conf.oslo_limit.auth_type
    if plugin_name:
        plugin_loader = loading.get_plugin_loader(plugin_name)
        plugin_opts = loading.get_auth_plugin_conf_options(plugin_loader)
        conf.register_opts(plugin_opts, group=_OPTION_GROUP)
    conf.register_opts(_options(), group=_OPTION_GROUP)


def _conf():
    global _registered
    from oslo_config import cfg

    if not _registered:
        register_opts(cfg.CONF)
        _registered = True
    return cfg.CONF


def _get_keystone_connection():
    global _SDK_CONNECTION
    if not _SDK_CONNECTION:
        from keystoneauth1 import exceptions as ksa_exceptions
        from keystoneauth1 import loading
        from openstack import connection
        from openstack import utils as os_utils

        conf = _conf()
        try:
            auth = loading.load_auth_from_conf_options(conf, group=_OPTION_GROUP)
            session = loading.load_session_from_conf_options(
                conf, group=_OPTION_GROUP, auth=auth
            )
            ksa_opts = loading.get_adapter_conf_options(include_deprecated=False)
            conn_kwargs = {}
            for opt in ksa_opts:
                if opt.dest != "valid_interfaces":
                    conn_kwargs["identity_" + opt.dest] = getattr(conf.oslo_limit, opt.dest)
            conn_kwargs["identity_interface"] = conf.oslo_limit.valid_interfaces
            conn = connection.Connection(session=session, **conn_kwargs)
            _SDK_CONNECTION = os_utils.ensure_service_version(conn.identity, "3")
        except (
            ksa_exceptions.NoMatchingPlugin,
            ksa_exceptions.MissingRequiredOptions,
            ksa_exceptions.MissingAuthPlugin,
            ksa_exceptions.DiscoveryFailure,
            ksa_exceptions.Unauthorized,
        ) as e:
            LOG.error("Unable to initialize OpenStackSDK session: %s", e)
            raise SessionInitError(e)
    return _SDK_CONNECTION


# ---- the enforcer -----------------------------------------------------------

# Resource names go to the component unchanged, and come back unchanged:
# its oslo-check accepts every name oslo.limit accepts, the empty string
# included.


class Enforcer:
    """oslo.limit 2.12's ``Enforcer``: checks usage plus deltas against
    limits for the resources in the deltas (flat model).

    :param usage_callback: ``usage_callback(project_id, resource_names)``
        returns ``{resource_name: current_usage}``.
    :param cache: cache Keystone's limits for the enforcer's lifetime.
    :param limits: a :class:`StaticLimits`, or None to read them from
        Keystone like oslo.limit does (``[oslo_limit]`` options).
    """

    def __init__(self, usage_callback, cache=True, limits=None):
        if not callable(usage_callback):
            msg = "usage_callback must be a callable function."
            raise ValueError(msg)

        self._usage_callback = usage_callback
        self.model = "flat"
        if limits is None:
            self.connection = _get_keystone_connection()
            model = self._get_enforcement_model()
            if model not in ("flat", "strict-two-level"):
                raise ValueError(f"enforcement model {model} is not supported")
            self.model = model
            # As oslo.limit: a strict-two-level enforcer has no limit source
            # (every method raises NotImplementedError).
            limits = _KeystoneLimits(self.connection, cache=cache) if model == "flat" else None
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
        resources_to_check = sorted(deltas.keys())

        registered, project = [], []
        for name in resources_to_check:
            if project_id is not None:
                limit = limits.project_limit(project_id, name)
                if limit is not None:
                    project.append(_d.ResourceLimit(name, limit))
                    continue
            limit = limits.registered_limit(name)
            if limit is not None:
                registered.append(_d.ResourceLimit(name, limit))

        current_usage = self._usage_callback(project_id, resources_to_check)

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
            LOG.debug("hit limit for project: %s", over_limit_list)
            raise ProjectOverLimit(project_id, over_limit_list)

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
                LOG.error(
                    "Unable to find registered limit for resource %(resource)s.",
                    {"resource": resource_name},
                )
                limit = 0
            project_limits.append((resource_name, limit))
        return project_limits
