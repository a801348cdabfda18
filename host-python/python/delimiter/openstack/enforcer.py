"""An oslo.limit-shaped enforcer over Keystone's limits and tree, for the
three models: ``flat``, ``strict_two_level`` (Keystone's) and ``nested``.

Where the rules come from: ``docs/semantics.md``, "Enforcement models",
"Deciding" and "Limits and hierarchy from Keystone". Every decision is the
component's (``delimiter.Prepared``), over the tree and limits of a
:class:`~delimiter.openstack.KeystoneLimits` copy: a warm ``enforce``
makes no Keystone request. Unlike oslo.limit's flat check, only increases
are refused (a delta of 0 or less is always admitted, but a release below
zero is ``InvalidInput``), as in Delimiter's native rules.
"""

from __future__ import annotations

import logging
from collections import namedtuple
from collections.abc import Collection, Mapping
from typing import Callable, Optional, Sequence, Union

import delimiter as _d
from delimiter.openstack.errors import BindingOverLimitInfo, ProjectOverLimit
from delimiter.openstack.keystone import DEFAULT_NODE, DomainDefault, KeystoneLimits, model_name

__all__ = ["Enforcer", "ProjectUsage", "UsageCallback", "BatchUsageCallback", "PathUsageCallback"]

LOG = logging.getLogger("delimiter.openstack")

ProjectUsage = namedtuple("ProjectUsage", ["limit", "usage"])

#: oslo.limit's: ``(project_id, resource_names) -> {resource: usage}``.
UsageCallback = Callable[[Optional[str], list[str]], Mapping[str, int]]
#: Many projects at once: ``(project_ids, resource_names) ->
#: {project_id: {resource: usage}}`` (a project or resource left out is 0).
BatchUsageCallback = Callable[[list[str], list[str]], Mapping[str, Mapping[str, int]]]
#: Pre-summed: ``(path, resource_names) -> (local, subtree)`` where
#: ``path`` is the project then its ancestors up to the domain, ``local``
#: is ``{resource: the project's own usage}`` and ``subtree`` is
#: ``{node: {resource: usage of the node and everything under it}}`` for
#: each node of ``path`` (left out: 0).
PathUsageCallback = Callable[
    [list[str], list[str]], tuple[Mapping[str, int], Mapping[str, Mapping[str, int]]]
]


class Enforcer:
    """Checks usage plus deltas against Keystone's limits, in Keystone's
    model (``flat`` or ``strict_two_level``) or in ``nested``.

    :param usage_callback: oslo.limit's ``usage_callback(project_id,
        resource_names)`` returning ``{resource_name: usage}``; in the
        hierarchical models it is called for every project under the
        requester's domain (the domain itself owns no usage) unless a
        batched callback is given. A resource missing from its answer is a
        ``ValueError`` (as in oslo.limit).
    :param limits: a :class:`KeystoneLimits`; None: the process's shared one
        (:meth:`KeystoneLimits.shared` with ``cache_ttl``).
    :param model: None to follow Keystone's model (read with the limits, so
        a change is seen within the time to live), or ``flat``,
        ``strict-two-level`` / ``strict_two_level`` or ``nested`` (the last
        is the service's choice: Keystone has no name for it).
    :param cache_ttl: seconds Keystone's data is used before it is fetched
        again (only used when ``limits`` is None).
    :param usage_batch_callback: instead of one ``usage_callback`` call per
        project, one call for all of them (:data:`BatchUsageCallback`).
    :param path_usage_callback: pre-summed subtree usage of the path
        (:data:`PathUsageCallback`), e.g. from one SQL query; takes
        precedence over the others.
    :param domain_default: for the shared ``KeystoneLimits``: what a domain
        without a domain limit may use (``registered`` or ``unlimited``).

    Building one costs the Keystone requests of its first copy (endpoint,
    model and limits) unless the shared copy is warm; build it once per
    process and reuse it.
    """

    def __init__(
        self,
        usage_callback: Optional[UsageCallback],
        *,
        limits: Optional[KeystoneLimits] = None,
        model: Union[str, "_d.Model", None] = None,
        cache_ttl: float = 60.0,
        usage_batch_callback: Optional[BatchUsageCallback] = None,
        path_usage_callback: Optional[PathUsageCallback] = None,
        domain_default: DomainDefault = "registered",
    ) -> None:
        if usage_callback is None and usage_batch_callback is None and path_usage_callback is None:
            raise ValueError("usage_callback must be a callable function.")
        for cb in (usage_callback, usage_batch_callback, path_usage_callback):
            if cb is not None and not callable(cb):
                raise ValueError("usage_callback must be a callable function.")
        self._usage = usage_callback
        self._batch = usage_batch_callback
        self._path_usage = path_usage_callback
        self._model: Optional[str] = None
        if model is not None:
            self._model = model_name(model if isinstance(model, str) else model.value)
        self.limits = limits if limits is not None else KeystoneLimits.shared(cache_ttl, domain_default)
        self.limits.limits()  # the first copy now: configuration errors surface here

    @property
    def model(self) -> str:
        """The model decisions use now: the service's, else Keystone's
        (``flat`` or ``strict-two-level``, Delimiter's spelling)."""
        if self._model is not None:
            return self._model
        return model_name(self.limits.limits().model)

    # ---- oslo.limit's methods ---------------------------------------------------

    def enforce(self, project_id: Optional[str], deltas: Mapping[str, int]) -> None:
        """Raises :class:`ProjectOverLimit` (entries
        :class:`BindingOverLimitInfo`, sorted by resource, then from the
        project up to the domain) if adding ``deltas`` would take the
        project, or in the hierarchical models any ancestor with a finite
        limit, over its limit. ``project_id`` None checks the registered
        limits only. ``ValueError`` on malformed arguments or missing usage;
        :class:`delimiter.InvalidInput` (a ``ValueError``) on a release
        below zero or a malformed tree."""
        _check_args(project_id, deltas)
        resources = sorted(deltas)
        model = self.model
        flat = model == "flat"
        path = None if flat or project_id is None else self.limits.path(project_id)
        if path is None:
            prepared, copy = self.limits.prepared("flat")
        else:
            prepared, copy = self.limits.prepared(model, path[-1])
        if path is None:
            node = project_id if project_id is not None and project_id in copy.overridden else DEFAULT_NODE
            path = [node]
            local_map = self._own_usage(project_id, resources)
            subtree_maps = {node: local_map}
        else:
            node = project_id  # type: ignore[assignment]
            local_map, subtree_maps = self._tree_usage(path, resources)
        local = [local_map[r] for r in resources]
        subtree = [subtree_maps.get(p, {}).get(r, 0) for p in path for r in resources]
        decision = prepared.evaluate(node, {r: deltas[r] for r in resources}, local, subtree, [0] * len(path))
        if not decision.admitted:
            infos = [
                BindingOverLimitInfo(
                    v.resource, v.limit, v.usage, v.delta, project_id if v.project == DEFAULT_NODE else v.project
                )
                for v in decision.violations
            ]
            LOG.debug("hit limit for project: %s", infos)
            raise ProjectOverLimit(project_id, infos)  # type: ignore[arg-type]

    def calculate_usage(
        self, project_id: Optional[str], resources_to_check: Collection[str]
    ) -> dict[str, ProjectUsage]:
        """``{resource: ProjectUsage(limit, usage)}``: the project's own limit
        and own usage (for reporting, as oslo.limit's)."""
        msg = "resources_to_check must be non-empty sequence of resource name strings"
        if project_id is not None and (not project_id or not isinstance(project_id, str)):
            raise ValueError("project_id must be a non-empty string or None.")
        try:
            if len(resources_to_check) == 0:
                raise ValueError(msg)
        except TypeError:
            raise ValueError(msg)
        if not all(isinstance(r, str) for r in resources_to_check):
            raise ValueError(msg)
        limits = self.get_project_limits(project_id, resources_to_check)
        usage = self._own_usage(project_id, list(resources_to_check))
        return {r: ProjectUsage(limit, usage[r]) for r, limit in limits}

    def get_registered_limits(self, resources_to_check: Optional[Collection[str]]) -> list[tuple[str, int]]:
        """``[(resource, registered limit or 0)]``, or every registered limit
        when ``resources_to_check`` is None. -1 is unlimited."""
        copy = self.limits.limits()
        if resources_to_check is None:
            return sorted(copy.registered.items())
        return [(r, copy.registered.get(r, 0)) for r in resources_to_check]

    def get_project_limits(
        self, project_id: Optional[str], resources_to_check: Optional[Collection[str]]
    ) -> list[tuple[str, int]]:
        """``[(resource, limit)]``: the project's (or domain's) own limit of
        each, else the registered one, else 0; or every override of the
        project when ``resources_to_check`` is None."""
        copy = self.limits.limits()
        if resources_to_check is None:
            if project_id is None:
                raise ValueError("project_id must not be None")
            own = copy.project.get(project_id) or copy.domain.get(project_id) or {}
            return sorted(own.items())
        out = []
        for r in resources_to_check:
            limit = copy.own_limit(project_id, r)
            out.append((r, 0 if limit is None else limit))
        return out

    # ---- usage --------------------------------------------------------------------

    def _own_usage(self, project_id: Optional[str], resources: list[str]) -> dict[str, int]:
        if self._usage is not None:
            got = self._usage(project_id, resources)
            return _complete(got, resources, project_id)
        if self._batch is not None and project_id is not None:
            return {r: int(self._batch([project_id], resources).get(project_id, {}).get(r, 0)) for r in resources}
        assert self._path_usage is not None
        local, _ = self._path_usage([project_id] if project_id is not None else [], resources)
        return {r: int(local.get(r, 0)) for r in resources}

    def _tree_usage(
        self, path: list[str], resources: list[str]
    ) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
        """The project's own usage and the subtree usage of each path node."""
        if self._path_usage is not None:
            local, subtree = self._path_usage(list(path), resources)
            return (
                {r: int(local.get(r, 0)) for r in resources},
                {p: {r: int(v) for r, v in subtree.get(p, {}).items()} for p in path},
            )
        view = self.limits.view()
        root = path[-1]
        members = view.members(root)
        if self._batch is not None:
            got = self._batch(list(members), resources)
            per = {m: {r: int(got.get(m, {}).get(r, 0)) for r in resources} for m in members}
        else:
            assert self._usage is not None
            per = {m: _complete(self._usage(m, resources), resources, m) for m in members}
        project = path[0]
        if project not in per:  # a project the tree lacks, or the domain itself
            per[project] = (
                _complete(self._usage(project, resources), resources, project)
                if self._usage is not None and project != root
                else {r: 0 for r in resources}
            )
        sums: dict[str, dict[str, int]] = {p: {r: 0 for r in resources} for p in path}
        for m, usage in per.items():
            chain = view.chain(m) if m in view.parent else (m,)
            for node in chain:
                acc = sums.get(node)
                if acc is not None:
                    for r in resources:
                        acc[r] += usage[r]
        return per[project], sums


def _complete(got: Mapping[str, int], resources: Sequence[str], project_id: Optional[str]) -> dict[str, int]:
    out = {}
    for r in resources:
        if r not in got:
            raise ValueError(f"unable to get current usage for {r}")
        out[r] = int(got[r])
    return out


def _check_args(project_id: Optional[str], deltas: Mapping[str, int]) -> None:
    # oslo.limit's checks, same messages.
    if project_id is not None and (not project_id or not isinstance(project_id, str)):
        raise ValueError("project_id must be a non-empty string or None.")
    if not isinstance(deltas, dict) or len(deltas) == 0:
        raise ValueError("deltas must be a non-empty dictionary.")
    for k, v in deltas.items():
        if not isinstance(k, str):
            raise ValueError("resource name is not a string.")
        elif not isinstance(v, int):
            raise ValueError("resource limit is not an integer.")
