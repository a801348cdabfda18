"""Keystone unified limits and the project tree, fetched in bulk and cached.

Where the rules come from: ``docs/semantics.md``, "Limits and hierarchy
from Keystone (unified limits)". One :class:`KeystoneLimits` holds, for one
service and region (found from the ``[oslo_limit]`` options exactly as
oslo.limit finds them), a copy of:

- Keystone's enforcement model (``GET /v3/limits/model``);
- the registered limits (one listing) and every project and domain limit
  of the service (one listing for all projects: not one request per
  project and resource, as oslo.limit makes);
- the project tree (one listing of every project; a top-level project's
  parent is its domain, and the domain is the root), fetched only when a
  hierarchical model asks for it.

Each copy is kept for ``ttl`` seconds (hits and misses alike), then fetched
again on the next use; the staleness of any answer is bounded by ``ttl``.
A project the tree listing did not have (created since) costs one
``GET /v3/projects/{id}``, remembered for ``ttl`` too, found or not. One
instance is meant to be shared by every enforcer of a process
(:meth:`KeystoneLimits.shared`); it is safe to use from many threads.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping, Optional

import delimiter as _d
from delimiter.openstack import connection as _conn

__all__ = ["KeystoneLimits", "LimitsCopy", "TreeCopy", "DomainDefault"]

#: What a domain with no domain limit of its own may use of a resource:
#: ``registered`` (the registered default, as Keystone's strict_two_level
#: validation assumes) or ``unlimited``.
DomainDefault = Literal["registered", "unlimited"]

#: The id the flat model decides projects without overrides under (no
#: Keystone id is empty-prefixed with NUL).
DEFAULT_NODE = "\x00registered"

_MAX_PARENT_FETCHES = 64


def _limit(value: Any) -> int:
    # Keystone stores -1 for unlimited; any negative is unlimited (as
    # oslo.limit 2.12 reads it), and the component wants exactly -1.
    v = int(value)
    return -1 if v < 0 else v


@dataclass(frozen=True)
class LimitsCopy:
    """One copy of a service's limits, as fetched.

    ``model``: Keystone's enforcement model name (``flat`` or
    ``strict_two_level``). ``registered``: ``{resource: default}``.
    ``project`` / ``domain``: ``{project or domain id: {resource: limit}}``.
    -1 is unlimited. ``fetched_at``: the clock's reading when fetched.
    """

    model: str
    registered: Mapping[str, int]
    project: Mapping[str, Mapping[str, int]]
    domain: Mapping[str, Mapping[str, int]]
    fetched_at: float
    #: Every project or domain with an override of its own.
    overridden: frozenset[str] = frozenset()

    def own_limit(self, project_id: Optional[str], resource: str) -> Optional[int]:
        """The limit of ``project_id``'s own usage: its override (project or
        domain limit), else the registered default, else None."""
        if project_id is not None:
            for table in (self.project, self.domain):
                own = table.get(project_id)
                if own is not None and resource in own:
                    return own[resource]
        return self.registered.get(resource)


@dataclass(frozen=True)
class TreeCopy:
    """One copy of Keystone's project tree: ``parent`` maps every project to
    its parent (a top-level project to its domain) and every domain to None."""

    parent: Mapping[str, Optional[str]]
    fetched_at: float
    children: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


class KeystoneLimits:
    """Limits, overrides and the project tree of one service and region,
    read from Keystone unified limits and cached per process.

    :param connection: openstacksdk's identity proxy; None: the one made
        from the ``[oslo_limit]`` options (as oslo.limit's).
    :param ttl: seconds a fetched copy (hit or miss) is used before the
        next use fetches it again; 0 fetches on every use.
    :param service_id, region_id: the service and region whose limits to
        read; None: from the endpoint the ``[oslo_limit]`` options name
        (``endpoint_id``, or service type/name, region and interface).
    :param domain_default: what a domain without a domain limit may use:
        ``registered`` (the default, Keystone's assumption) or
        ``unlimited``.
    :param clock: seconds, monotonic (tests pass a fake).

    ``stats`` counts the Keystone API requests made, by kind. Raises
    ``ValueError`` (oslo.limit's messages) when the endpoint is not found,
    :class:`~delimiter.openstack.connection.SessionInitError` when the
    options give no session, and openstacksdk's exceptions when Keystone
    fails.
    """

    _shared: dict[tuple[float, str], "KeystoneLimits"] = {}
    _shared_lock = threading.Lock()

    def __init__(
        self,
        connection: Any = None,
        *,
        ttl: float = 60.0,
        service_id: Optional[str] = None,
        region_id: Optional[str] = None,
        domain_default: DomainDefault = "registered",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl < 0:
            raise ValueError(f"ttl must be >= 0 seconds, not {ttl!r}")
        if domain_default not in ("registered", "unlimited"):
            raise ValueError(f"domain_default must be 'registered' or 'unlimited', not {domain_default!r}")
        self.ttl = float(ttl)
        self.domain_default: DomainDefault = domain_default
        self._clock = clock
        self._lock = threading.RLock()
        self._counts: dict[str, int] = {}
        self._connection = connection if connection is not None else _conn.get_connection()
        if service_id is None:
            endpoint = _conn.find_endpoint(self._connection, lambda: self._count("endpoint"))
            service_id, region_id = endpoint.service_id, endpoint.region_id
        self.service_id: str = service_id
        self.region_id: Optional[str] = region_id
        self._limits: Optional[LimitsCopy] = None
        self._tree: Optional[TreeCopy] = None
        # Projects fetched one by one: id -> (parent or None if not found, when).
        self._extra: dict[str, tuple[Optional[str], bool, float]] = {}
        self._prepared: dict[tuple[str, str, Optional[str]], tuple[tuple[object, ...], "_d.Prepared"]] = {}
        # Bumped (a new object) whenever a project fetched alone joins the tree.
        self._grown: object = object()
        self._view: Optional[tuple[object, object, TreeView]] = None

    @classmethod
    def shared(cls, ttl: float = 60.0, domain_default: DomainDefault = "registered") -> "KeystoneLimits":
        """The process's instance for these settings, made on first use from
        the ``[oslo_limit]`` options (so every enforcer of the process reads
        one copy). The first call makes the endpoint lookup's requests."""
        key = (float(ttl), domain_default)
        with cls._shared_lock:
            inst = cls._shared.get(key)
            if inst is None:
                inst = cls._shared[key] = cls(ttl=ttl, domain_default=domain_default)
            return inst

    # ---- counters -------------------------------------------------------------

    def _count(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self._counts[kind] = self._counts.get(kind, 0) + n
            self._counts["requests"] = self._counts.get("requests", 0) + n

    @property
    def stats(self) -> dict[str, int]:
        """``{kind: requests}``: ``requests`` (all), and ``endpoint``,
        ``model``, ``registered_limits``, ``limits``, ``projects`` (the tree
        listing), ``project`` (one project the listing lacked). Each listing
        is one request (Keystone does not paginate these by default). The
        token and version-discovery requests keystoneauth makes on its own
        are not counted here."""
        with self._lock:
            return {"requests": 0, **self._counts}

    # ---- the copies -------------------------------------------------------------

    def _fresh(self, fetched_at: float) -> bool:
        return self._clock() - fetched_at < self.ttl

    def limits(self) -> LimitsCopy:
        """The current copy of the model and limits (fetched if older than
        ``ttl``: 3 requests)."""
        return self._current("_limits", self._fetch_limits)

    def tree(self) -> TreeCopy:
        """The current copy of the project tree (fetched if older than
        ``ttl``: 1 request)."""
        return self._current("_tree", self._refetch_tree)

    def _current(self, name: str, fetch: Callable[[], Any]) -> Any:
        """The copy held in attribute ``name`` while fresh; else, under the
        lock (checked again there, so one thread fetches), ``fetch()``'s."""
        copy = getattr(self, name)
        if copy is not None and self._fresh(copy.fetched_at):
            return copy
        with self._lock:
            copy = getattr(self, name)
            if copy is None or not self._fresh(copy.fetched_at):
                copy = fetch()
                setattr(self, name, copy)
            return copy

    def _refetch_tree(self) -> TreeCopy:
        """A new tree copy; the projects looked up one by one since the
        last copy are forgotten with it (called under the lock)."""
        copy = self._fetch_tree()
        self._extra.clear()
        self._grown = object()
        return copy

    def invalidate(self) -> None:
        """Drops every copy: the next use fetches again."""
        with self._lock:
            self._limits = None
            self._tree = None
            self._extra.clear()
            self._prepared.clear()

    def _fetch_limits(self) -> LimitsCopy:
        conn = self._connection
        self._count("model")
        model = conn.get("/limits/model").json()["model"]["name"]
        self._count("registered_limits")
        registered = {
            rl.resource_name: _limit(rl.default_limit)
            for rl in conn.registered_limits(service_id=self.service_id, region_id=self.region_id)
        }
        self._count("limits")
        project: dict[str, dict[str, int]] = {}
        domain: dict[str, dict[str, int]] = {}
        for lim in conn.limits(service_id=self.service_id, region_id=self.region_id):
            if lim.project_id:
                project.setdefault(lim.project_id, {})[lim.resource_name] = _limit(lim.resource_limit)
            elif lim.domain_id:
                domain.setdefault(lim.domain_id, {})[lim.resource_name] = _limit(lim.resource_limit)
        return LimitsCopy(
            str(model), registered, project, domain, self._clock(), frozenset(project) | frozenset(domain)
        )

    def _fetch_tree(self) -> TreeCopy:
        self._count("projects")
        parent: dict[str, Optional[str]] = {}
        for p in self._connection.projects():
            parent[p.id] = p.parent_id or p.domain_id or None
        for pid, par in list(parent.items()):
            if par is not None and par not in parent:
                parent[par] = None  # a domain: the root
        return TreeCopy(parent, self._clock(), _children(parent))

    # ---- questions ----------------------------------------------------------------

    def path(self, project_id: str) -> Optional[list[str]]:
        """``project_id`` and its ancestors up to its domain (the root), from
        the tree copy; None if Keystone has no such project. A project the
        copy lacks is fetched alone (1 request per unknown ancestor) and
        remembered, found or not, for ``ttl``."""
        view = self.view()
        if project_id in view.parent:
            return list(view.chain(project_id))
        path: list[str] = []
        node: Optional[str] = project_id
        while node is not None:
            if len(path) > _MAX_PARENT_FETCHES:
                raise ValueError(f"project tree deeper than {_MAX_PARENT_FETCHES} at {project_id!r}")
            if node in view.parent:
                return path + list(view.chain(node))
            found, parent = self._fetch_one(node)
            if not found:
                return path or None
            path.append(node)
            node = parent
        return path

    def _fetch_one(self, project_id: str) -> tuple[bool, Optional[str]]:
        hit = self._extra.get(project_id)
        if hit is not None and self._fresh(hit[2]):
            return hit[1], hit[0]
        from openstack import exceptions as os_exceptions

        with self._lock:
            self._count("project")
            try:
                p = self._connection.get_project(project_id)
            except os_exceptions.ResourceNotFound:
                self._extra[project_id] = (None, False, self._clock())
                return False, None
            parent = p.parent_id or p.domain_id or None
            self._extra[project_id] = (parent, True, self._clock())
            self._grown = object()  # the tree grew: hierarchical Prepared objects are stale
            return True, parent

    def members(self, root: str) -> list[str]:
        """Every project under ``root`` (a domain or project), root excluded,
        sorted, from the tree copy and the projects fetched alone."""
        return list(self.view().members(root))

    def view(self) -> "TreeView":
        """The tree as decisions walk it (the copy plus the projects fetched
        alone), indexed once per change."""
        tree = self.tree()
        held = self._view
        if held is not None and held[0] is tree and held[1] is self._grown:
            return held[2]
        with self._lock:
            view = TreeView(self._parents())
            self._view = (tree, self._grown, view)
        return view

    def prepared(self, model: str, root: Optional[str] = None) -> tuple["_d.Prepared", LimitsCopy]:
        """A :class:`delimiter.Prepared` over the current copies for
        ``model``, rebuilt when a copy changes, and the limits copy it
        holds. ``flat``: every project with an override as a root, plus
        ``DEFAULT_NODE`` for the rest. Otherwise the tree under ``root`` (a
        domain, with its projects): one per domain, so that one malformed
        tree (say, too deep for strict_two_level) fails only its own
        decisions."""
        limits = self.limits()
        flat = model_name(model) == "flat"
        if not flat and root is None:
            raise ValueError("a hierarchical model needs the root (domain) to prepare")
        key = ("flat", model, None) if flat else ("tree", model, root)
        version: tuple[object, ...] = (limits,) if flat else (limits, self.tree(), self._grown)
        held = self._prepared.get(key)
        if held is not None and len(held[0]) == len(version) and all(a is b for a, b in zip(held[0], version)):
            return held[1], limits
        with self._lock:
            if flat:
                parent = None
            else:
                view = self.view()
                assert root is not None
                parent = {node: view.parent.get(node) for node in (root, *view.members(root))}
                parent[root] = None
            prepared = self._build(model, limits, parent)
            self._prepared[key] = (version, prepared)
        return prepared, limits

    def limits_of(self, path: list[str], resources: list[str]) -> "_d.Limits":
        """The :class:`delimiter.Limits` of ``resources`` for the nodes of
        ``path`` (registered defaults, project and domain overrides, and
        -1 for a domain without its own limit if ``domain_default`` is
        ``unlimited``)."""
        copy = self.limits()
        wanted = set(resources)
        registered = [_d.RegisteredLimit(r, v) for r, v in sorted(copy.registered.items()) if r in wanted]
        overrides = []
        for node in path:
            own = copy.project.get(node) or copy.domain.get(node) or {}
            overrides += [_d.ProjectLimit(node, r, v) for r, v in sorted(own.items()) if r in wanted]
        if self.domain_default == "unlimited" and path and path[-1] not in copy.project:
            own = copy.domain.get(path[-1], {})
            overrides += [_d.ProjectLimit(path[-1], r, -1) for r in sorted(wanted) if r in copy.registered and r not in own]
        return _d.Limits(registered, overrides)

    def _parents(self) -> dict[str, Optional[str]]:
        parent = dict(self.tree().parent)
        for pid, (par, found, _) in self._extra.items():
            if found:
                parent[pid] = par
                if par is not None:
                    parent.setdefault(par, None)
        return parent

    def _build(
        self, model: str, limits: LimitsCopy, parent: Optional[dict[str, Optional[str]]]
    ) -> "_d.Prepared":
        overrides = [
            _d.ProjectLimit(p, r, v)
            for table in (limits.project, limits.domain)
            for p, own in sorted(table.items())
            for r, v in sorted(own.items())
        ]
        if parent is None:
            ids = sorted({lim.project for lim in overrides} | {DEFAULT_NODE})
            projects = [_d.Project(i) for i in ids]
        else:
            projects = [_d.Project(i, parent[i]) for i in sorted(parent)]
            known = set(parent)
            overrides = [lim for lim in overrides if lim.project in known]
            if self.domain_default == "unlimited":
                domains = [i for i, par in parent.items() if par is None]
                for dom in sorted(domains):
                    own = limits.domain.get(dom, {})
                    overrides += [_d.ProjectLimit(dom, r, -1) for r in sorted(limits.registered) if r not in own]
        return _d.Prepared(
            projects,
            _d.Limits([_d.RegisteredLimit(r, v) for r, v in sorted(limits.registered.items())], overrides),
            _d.Config(model=model, missing_limit="zero"),
        )

    def __repr__(self) -> str:
        return (
            f"KeystoneLimits(service_id={self.service_id!r}, region_id={self.region_id!r}, "
            f"ttl={self.ttl!r}, domain_default={self.domain_default!r})"
        )


class TreeView:
    """A project tree indexed for decisions: ``parent`` (a domain's is
    None), each node's chain up to its root and each root's members,
    computed on first use and kept."""

    def __init__(self, parent: Mapping[str, Optional[str]]) -> None:
        self.parent = parent
        self.kids = _children(parent)
        self._chains: dict[str, tuple[str, ...]] = {}
        self._members: dict[str, tuple[str, ...]] = {}

    def chain(self, node: str) -> tuple[str, ...]:
        """``node``, its parent, ... up to its root (at most 1024 nodes)."""
        held = self._chains.get(node)
        if held is None:
            out: list[str] = []
            cur: Optional[str] = node
            while cur is not None and len(out) <= 1024:
                out.append(cur)
                cur = self.parent.get(cur)
            held = self._chains[node] = tuple(out)
        return held

    def members(self, root: str) -> tuple[str, ...]:
        """Every node under ``root``, ``root`` excluded, sorted."""
        held = self._members.get(root)
        if held is None:
            out: list[str] = []
            stack = list(self.kids.get(root, ()))
            while stack:
                node = stack.pop()
                out.append(node)
                stack.extend(self.kids.get(node, ()))
            held = self._members[root] = tuple(sorted(out))
        return held


_MODEL_NAMES: dict[str, str] = {}


def model_name(model: str) -> str:
    """Delimiter's name of a model given by any accepted spelling (``flat``,
    ``strict-two-level``, Keystone's ``strict_two_level``, ``nested``),
    checked by the component once per spelling; ``InvalidInput`` if
    unknown."""
    name = _MODEL_NAMES.get(model)
    if name is None:
        name = _MODEL_NAMES[model] = _d.Config(model=model).model.value
    return name


def _children(parent: Mapping[str, Optional[str]]) -> dict[str, tuple[str, ...]]:
    kids: dict[str, list[str]] = {}
    for pid, par in parent.items():
        if par is not None:
            kids.setdefault(par, []).append(pid)
    return {k: tuple(sorted(v)) for k, v in kids.items()}
