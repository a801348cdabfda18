"""``delimiter.consume`` with Keystone's limits and tree: the race-free path.

:class:`KeystoneStore` is a store for :func:`delimiter.consume` whose tree
and limits come from a :class:`~delimiter.openstack.KeystoneLimits` (no copy
of them in the service's database), while usage and generations stay in
the service's database, in :mod:`delimiter.stores.sqlalchemy`'s tables
(``delimiter_generations``, and ``delimiter_usage`` or the service's own
counted rows). Commits are :class:`~delimiter.stores.sqlalchemy.SqlAlchemyStore`'s
(generation compare-and-update in one transaction with the service's
rows), so a service gets generation sequencing (``docs/semantics.md``,
"Claims" and "Consuming with retries") without copying limits out of
Keystone.

A project's ``delimiter_projects`` and ``delimiter_generations`` rows (the
project and its ancestors up to the domain, with Keystone's parents) are
created on first use, generation 1, root first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional, Union

from sqlalchemy import FromClause, select, func, cast, BigInteger, bindparam
from sqlalchemy import insert as sql_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.expression import SelectBase

import delimiter as _d
from delimiter.openstack.keystone import KeystoneLimits
from delimiter.stores import sqlalchemy as _sql

__all__ = ["KeystoneStore"]


class KeystoneStore:
    """A :func:`delimiter.consume` store: tree and limits from ``limits``
    (Keystone, cached with its time to live), usage and generations from
    ``engine`` (SQLite, PostgreSQL or MariaDB / MySQL).

    ``write_rows`` and ``counted_usage`` are
    :class:`~delimiter.stores.sqlalchemy.SqlAlchemyStore`'s: the service's
    own rows, written in the commit transaction, and (optionally) a
    selectable with columns ``project_id``, ``resource``, ``usage`` counting
    them. Call :meth:`create_schema` once. Safe to share between threads.
    """

    def __init__(
        self,
        engine: Engine,
        limits: KeystoneLimits,
        *,
        write_rows: Optional[_sql.WriteRows] = None,
        counted_usage: Union[FromClause, SelectBase, None] = None,
    ) -> None:
        self._sql = _sql.SqlAlchemyStore(engine, write_rows=write_rows, counted_usage=counted_usage)
        self._limits = limits
        source: FromClause = _sql.usage
        if counted_usage is not None:
            source = counted_usage.subquery("counted") if isinstance(counted_usage, SelectBase) else counted_usage
        self._usage_query = (
            select(source.c.project_id, source.c.resource, cast(func.sum(source.c.usage), BigInteger))
            .where(
                source.c.project_id.in_(bindparam("members", expanding=True)),
                source.c.resource.in_(bindparam("resources", expanding=True)),
            )
            .group_by(source.c.project_id, source.c.resource)
        )
        self._generations_query = select(_sql.generations.c.project_id, _sql.generations.c.generation).where(
            _sql.generations.c.project_id.in_(bindparam("path", expanding=True))
        )
        self._known: set[str] = set()

    @property
    def limits(self) -> KeystoneLimits:
        """Where the tree and limits come from."""
        return self._limits

    @property
    def sql(self) -> _sql.SqlAlchemyStore:
        """The SQLAlchemy store that commits (and reads usage)."""
        return self._sql

    def with_rows(self, write_rows: Optional[_sql.WriteRows]) -> "KeystoneStore":
        """This store with another ``write_rows`` (cheap)."""
        other = object.__new__(KeystoneStore)
        other.__dict__.update(self.__dict__)
        other._sql = self._sql.with_rows(write_rows)
        return other

    def create_schema(self) -> None:
        """Creates the Delimiter tables that are missing."""
        self._sql.create_schema()

    def config(self, model: Union[str, "_d.Model", None] = None) -> "_d.Config":
        """The :class:`delimiter.Config` to consume with: ``model`` if given
        (say ``nested``), else Keystone's current model; missing limits are
        0 (oslo.limit's rule)."""
        chosen = model if model is not None else self._limits.limits().model
        return _d.Config(model=chosen, missing_limit="zero")

    # ---- the store protocol ---------------------------------------------------------

    def read(self, project: str, resources: Sequence[str]) -> "_d.Snapshot":
        """The project's path (from Keystone's tree), the limits on
        ``resources`` for it, its own usage, each path node's subtree usage
        (the service's rows of every project under the domain) and the
        path's generations, usage and generations in one read transaction."""
        resources = list(resources)
        path = self._limits.path(project) or [project]
        self._ensure_rows(path)
        root = path[-1]
        members = sorted(set(self._limits.members(root)) | set(path))
        def both(conn):  # one snapshot: generations, then usage
            gens = conn.execute(self._generations_query, {"path": path}).all()
            rows = conn.execute(self._usage_query, {"members": members, "resources": resources}).all()
            return gens, rows

        # Run again if a conflict aborts it (on Galera, a replicated DDL).
        gens, rows = self._sql._read(both)
        view = self._limits.view()
        on_path = set(path)
        subtree: dict[tuple[str, str], int] = {}
        local: dict[str, int] = {}
        for pid, resource, total in rows:
            if pid == project:
                local[resource] = int(total)
            chain = view.chain(pid) if pid in view.parent else tuple(path[path.index(pid) :])
            for node in chain:
                if node in on_path:
                    subtree[(node, resource)] = subtree.get((node, resource), 0) + int(total)
        parent_of = dict(zip(path, path[1:] + [None]))
        return _d.Snapshot(
            projects=[_d.Project(p, parent_of[p]) for p in path],
            limits=self._limits.limits_of(path, resources),
            usage=_d.PathUsage(
                local=[_d.ResourceUsage(r, u) for r, u in sorted(local.items())],
                subtree=[_d.UsageEntry(p, r, u) for (p, r), u in sorted(subtree.items())],
            ),
            generations=[_d.Generation(p, int(g)) for p, g in gens],
        )

    def commit(self, claim: Sequence["_d.ClaimEntry"], request: "_d.Request") -> "_d.CommitOutcome":
        """:meth:`SqlAlchemyStore.commit <delimiter.stores.sqlalchemy.SqlAlchemyStore.commit>`."""
        return self._sql.commit(claim, request)

    # ---- inside -------------------------------------------------------------------------

    def _ensure_rows(self, path: list[str]) -> None:
        """Creates the missing project and generation rows of ``path``, root
        first (a concurrent creator's rows are taken as they are)."""
        if all(p in self._known for p in path):
            return
        projects, generations = _sql.projects, _sql.generations
        parent_of = dict(zip(path, path[1:] + [None]))
        for attempt in range(3):
            try:
                with self._sql._writing() as conn:
                    have = set(
                        conn.execute(
                            select(projects.c.project_id).where(projects.c.project_id.in_(path))
                        ).scalars()
                    )
                    have_gen = set(
                        conn.execute(
                            select(generations.c.project_id).where(generations.c.project_id.in_(path))
                        ).scalars()
                    )
                    for p in reversed(path):
                        if p not in have:
                            conn.execute(sql_insert(projects).values(project_id=p, parent_id=parent_of[p]))
                        if p not in have_gen:
                            conn.execute(sql_insert(generations).values(project_id=p, generation=1))
                break
            except IntegrityError:
                if attempt == 2:
                    raise
        self._known.update(path)
