"""OpenStack: Keystone unified limits as the source, and the models oslo.limit
cannot enforce.

- :class:`KeystoneLimits`: registered, project and domain limits and the
  project tree of one service and region, read from Keystone in bulk with
  openstacksdk (configured by the ``[oslo_limit]`` options), cached per
  process with a time to live, with request counters (``stats``).
- :class:`Enforcer`: oslo.limit's shape (``enforce``, ``calculate_usage``,
  ``get_project_limits``, ``get_registered_limits``) in Keystone's model
  (``flat``, ``strict_two_level``) or ``nested``; no Keystone request on a
  warm ``enforce``.
- :class:`KeystoneStore`: ``delimiter.consume`` with the limits and tree
  from Keystone and usage and generations in the service's database.

Needs openstacksdk, keystoneauth1 and oslo.config (the ``keystone``
extra: ``delimiter[keystone]``); :class:`KeystoneStore` needs SQLAlchemy
too (``delimiter[sqlalchemy]``). They are imported when first used.
"""

from delimiter.openstack.enforcer import (
    BatchUsageCallback,
    Enforcer,
    PathUsageCallback,
    ProjectUsage,
    UsageCallback,
)
from delimiter.openstack.errors import BindingOverLimitInfo, OverLimitInfo, ProjectOverLimit
from delimiter.openstack.keystone import DomainDefault, KeystoneLimits, LimitsCopy, TreeCopy

__all__ = [
    "KeystoneLimits",
    "LimitsCopy",
    "TreeCopy",
    "DomainDefault",
    "Enforcer",
    "ProjectUsage",
    "UsageCallback",
    "BatchUsageCallback",
    "PathUsageCallback",
    "ProjectOverLimit",
    "OverLimitInfo",
    "BindingOverLimitInfo",
    "KeystoneStore",
]


def __getattr__(name: str) -> object:
    # KeystoneStore needs SQLAlchemy: imported only when asked for.
    if name == "KeystoneStore":
        from delimiter.openstack.store import KeystoneStore

        return KeystoneStore
    raise AttributeError(name)
