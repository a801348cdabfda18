"""oslo.limit's exceptions (``oslo_limit.exception``), the same classes for
the drop-in (``delimiter.compat.oslo_limit``) and for
:class:`delimiter.openstack.Enforcer`.

:class:`ProjectOverLimit` and :class:`OverLimitInfo` have oslo.limit 2.12's
attributes and message text. A refusal by the hierarchical enforcer carries
:class:`BindingOverLimitInfo` entries: the same, plus ``project_id``, the
project (or domain) whose limit binds, and ``current_usage`` is that
node's usage (its subtree's under strict_two_level and nested).
"""

from __future__ import annotations

from typing import Any, Optional

from delimiter._errors import QuotaError

__all__ = ["ProjectOverLimit", "OverLimitInfo", "BindingOverLimitInfo"]


class OverLimitInfo:
    """One resource over its limit (oslo.limit's, same attributes and text)."""

    def __init__(self, resource_name: str, limit: Any, current_usage: Any, delta: Any) -> None:
        self.resource_name = resource_name
        self.limit = int(limit)
        self.current_usage = int(current_usage)
        self.delta = int(delta)

    def __str__(self) -> str:
        template = "Resource %s is over limit of %s due to current usage %s and delta %s"
        return template % (self.resource_name, self.limit, self.current_usage, self.delta)

    def __repr__(self) -> str:
        return self.__str__()


class BindingOverLimitInfo(OverLimitInfo):
    """An :class:`OverLimitInfo` that also names ``project_id``, the project
    or domain whose limit is exceeded (the requester or an ancestor);
    ``current_usage`` is that node's usage (its subtree's in the
    hierarchical models). ``str`` adds ``of project <id>``."""

    def __init__(
        self, resource_name: str, limit: Any, current_usage: Any, delta: Any, project_id: Optional[str]
    ) -> None:
        super().__init__(resource_name, limit, current_usage, delta)
        self.project_id = project_id

    def __str__(self) -> str:
        return f"{super().__str__()} of project {self.project_id}"


class ProjectOverLimit(QuotaError):
    """A project goes over one or more limits (oslo.limit's, same text):
    ``project_id`` (the requester) and ``over_limit_info_list``."""

    def __init__(self, project_id: Optional[str], over_limit_info_list: list[OverLimitInfo]) -> None:
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
