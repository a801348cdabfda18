"""The connection to Keystone, configured by the ``[oslo_limit]`` options.

The same options, connection and endpoint lookup as oslo.limit 2.12
(``oslo_limit.opts`` and ``oslo_limit.limit._get_keystone_connection`` /
``_EnforcerUtils._get_endpoint``): a service configured for oslo.limit is
configured for Delimiter. openstacksdk, keystoneauth1 and oslo.config are
imported only when these functions run (install ``delimiter[keystone]``).
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Optional

from delimiter._errors import QuotaError

__all__ = [
    "SessionInitError",
    "get_connection",
    "find_endpoint",
    "list_opts",
    "register_opts",
]

LOG = logging.getLogger("oslo.limit.limit")  # oslo.limit's, as oslo_log names it

#: The options' group, as oslo.limit's.
GROUP = "oslo_limit"

# The identity proxy, made once per process (oslo.limit's _SDK_CONNECTION;
# tests replace it, as oslo.limit's own fixture does with its).
_SDK_CONNECTION: Any = None
_registered = False


class SessionInitError(QuotaError):
    """The Keystone session could not be set up (oslo.limit's, same text)."""

    def __init__(self, reason: object) -> None:
        msg = "Can't initialise OpenStackSDK session: %(reason)s." % {"reason": reason}
        super().__init__(msg)


def _options() -> list[Any]:
    from oslo_config import cfg

    return [
        cfg.StrOpt("endpoint_id", help="The service's endpoint id which is registered in Keystone."),
        cfg.StrOpt("endpoint_service_name", help="Service name for endpoint discovery"),
        cfg.StrOpt("endpoint_service_type", help="Service type for endpoint discovery"),
        cfg.StrOpt("endpoint_region_name", help="Region to which the endpoint belongs"),
        cfg.StrOpt(
            "endpoint_interface",
            default="public",
            choices=["public", "publicURL", "internal", "internalURL", "admin", "adminURL"],
            help="The interface for endpoint discovery",
        ),
    ]


def list_opts() -> list[tuple[str, list[Any]]]:
    """The ``[oslo_limit]`` options, for oslo-config-generator (the same as
    oslo.limit's ``oslo_limit.opts.list_opts``)."""
    from keystoneauth1 import loading

    return [
        (
            GROUP,
            _options()
            + loading.get_session_conf_options()
            + loading.get_auth_plugin_conf_options("password")
            + loading.get_auth_plugin_conf_options("v2password")
            + loading.get_auth_plugin_conf_options("v3password")
            + loading.get_adapter_conf_options(include_deprecated=False),
        )
    ]


def register_opts(conf: Any = None) -> None:
    """Registers the ``[oslo_limit]`` options on ``conf`` (default
    ``oslo_config.cfg.CONF``), as oslo.limit does on import. Registering
    them twice, or beside oslo.limit itself, is harmless."""
    from keystoneauth1 import loading
    from oslo_config import cfg

    conf = cfg.CONF if conf is None else conf
    loading.register_session_conf_options(conf, GROUP)
    loading.register_adapter_conf_options(conf, GROUP, include_deprecated=False)
    loading.register_auth_conf_options(conf, GROUP)
    plugin_name = conf.oslo_limit.auth_type
    if plugin_name:
        plugin_loader = loading.get_plugin_loader(plugin_name)
        conf.register_opts(loading.get_auth_plugin_conf_options(plugin_loader), group=GROUP)
    conf.register_opts(_options(), group=GROUP)


def conf() -> Any:
    """``oslo_config.cfg.CONF`` with the ``[oslo_limit]`` options registered."""
    global _registered
    from oslo_config import cfg

    if not _registered:
        register_opts(cfg.CONF)
        _registered = True
    return cfg.CONF


def get_connection() -> Any:
    """openstacksdk's identity (v3) proxy, made once per process from the
    ``[oslo_limit]`` options exactly as oslo.limit makes it. Raises
    :class:`SessionInitError` (and logs it at ERROR) when the options do not
    give a usable session."""
    global _SDK_CONNECTION
    if not _SDK_CONNECTION:
        from keystoneauth1 import exceptions as ksa_exceptions
        from keystoneauth1 import loading
        from openstack import connection
        from openstack import utils as os_utils

        cfg = conf()
        try:
            auth = loading.load_auth_from_conf_options(cfg, group=GROUP)
            session = loading.load_session_from_conf_options(cfg, group=GROUP, auth=auth)
            conn_kwargs = {}
            for opt in loading.get_adapter_conf_options(include_deprecated=False):
                if opt.dest != "valid_interfaces":
                    conn_kwargs["identity_" + opt.dest] = getattr(cfg.oslo_limit, opt.dest)
            conn_kwargs["identity_interface"] = cfg.oslo_limit.valid_interfaces
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


def find_endpoint(connection: Any, on_request: Optional[Callable[[], None]] = None) -> Any:
    """The service's endpoint in Keystone, found as oslo.limit finds it:
    by ``endpoint_id`` (1 request), else by ``endpoint_service_type`` /
    ``endpoint_service_name``, ``endpoint_region_name`` and
    ``endpoint_interface`` (2-3 requests). Raises ``ValueError`` with
    oslo.limit's messages when it is not found or not unique.
    ``on_request``, if given, is called before each request."""

    def made() -> None:
        if on_request is not None:
            on_request()

    from openstack import exceptions as os_exceptions

    opts = conf().oslo_limit
    if opts.endpoint_id is not None:
        made()
        try:
            return connection.get_endpoint(opts.endpoint_id)
        except os_exceptions.ResourceNotFound:
            raise ValueError(f"Can't find endpoint for {opts.endpoint_id}")

    service_type, service_name = opts.endpoint_service_type, opts.endpoint_service_name
    if not service_type and not service_name:
        raise ValueError("Either service_type or service_name should be set")
    made()
    services = list(connection.services(type=service_type, name=service_name))
    if len(services) > 1:
        raise ValueError("Multiple services found")
    if len(services) == 0:
        raise ValueError("Service not found")
    service_id = services[0].id

    region_id = None
    if opts.endpoint_region_name is not None:
        made()
        try:
            region_id = connection.get_region(opts.endpoint_region_name).id
        except os_exceptions.ResourceNotFound:
            raise ValueError("Region not found")

    interface = opts.endpoint_interface
    if interface.endswith("URL"):
        LOG.info(
            "'[oslo_limit] endpoint_interface' is configured with a deprecated value: %s. "
            "Remove the URL suffix, which is not relevant for Keystone v3 API.",
            interface,
        )
        interface = interface[:-3]
    made()
    endpoints = list(
        connection.endpoints(service_id=service_id, region_id=region_id, interface=interface)
    )
    if len(endpoints) > 1:
        raise ValueError("Multiple endpoints found")
    if len(endpoints) == 0:
        raise ValueError("Endpoint not found")
    return endpoints[0]
