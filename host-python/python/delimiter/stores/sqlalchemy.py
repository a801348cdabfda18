"""A reference store for ``delimiter.consume`` on SQLAlchemy Core.

The tables are those of the Rust host's ``SqliteStore``, ``PostgresStore``
and ``MariadbStore`` (same names, columns and constraints), so a Rust
service and a Python service can share one database:

- ``delimiter_projects (project_id, parent_id)``: the tree;
- ``delimiter_generations (project_id, generation)``: one generation per
  project, the row every commit compares and updates;
- ``delimiter_usage (project_id, resource, usage)`` with ``CHECK (usage >=
  0)``: the usage counter rows (unless usage is counted from the service's
  own rows, see ``counted_usage``);
- ``delimiter_registered_limits (resource, limit_value)`` and
  ``delimiter_project_limits (project_id, resource, limit_value)``.

On MariaDB / MySQL the keys are ``VARCHAR(255)`` with the ``utf8mb4_bin``
collation (ids are case-sensitive, as everywhere else) and ``usage`` is
quoted (a reserved word); SQLAlchemy renders both.

``read`` takes one consistent snapshot of the requesting project's path
(PostgreSQL: REPEATABLE READ, READ ONLY; MariaDB: START TRANSACTION WITH
CONSISTENT SNAPSHOT at REPEATABLE READ; SQLite: one read transaction), with
every ancestor's subtree usage summed by a recursive CTE. ``commit`` runs in
one transaction (READ COMMITTED on PostgreSQL and MariaDB, ``BEGIN
IMMEDIATE`` on SQLite)::

    UPDATE delimiter_generations SET generation = generation + 1
     WHERE project_id = :p AND generation = :expected   -- per claim entry

root first (the one row order: root first, then by depth, then project id,
for every commit path), and rolls everything back as a conflict on the
first that matches no row: ``conflict-after-wait`` when that UPDATE took
``waited_us`` or longer (it had waited for the winner's row lock; on SQLite
for the write lock at ``BEGIN IMMEDIATE``), plain ``conflict`` otherwise.
No SERIALIZABLE, no ``SELECT ... FOR UPDATE``.

For ``consume_batch`` and :class:`delimiter.Combiner`, ``read_batch`` reads
in ONE statement the whole trees of the members (projects, generations,
local usage, limits), and ``commit_batch`` compares and bumps the batch's
claim once per entry in the one row order, then writes each member's rows,
in one transaction; a member whose rows fail is reported by its index
(``MemberFailure``) after rolling everything back.

On a MariaDB Galera cluster a replicated DDL (an ``ALTER TABLE`` on any node)
aborts a snapshot that already read its table (error 1213), where a single
server would make the DDL wait. A read writes nothing, so ``read`` runs
again, up to four times, when a conflict aborts it. A node that has left the
cluster answers 1047: a :class:`delimiter.StorageError` (fail over).

Galera can also roll a transaction back under a brute-force abort and run
the statements after it outside any transaction, answering OK to COMMIT,
when the connection's autocommit is on and ``START TRANSACTION`` opened the
transaction (the Rust ``MariadbStore`` guards against it with a commit
marker). This store needs no marker: its write transactions set READ
COMMITTED, which turns the driver's autocommit off whatever the engine's
isolation level, and then the abort is reported at the next statement or at
COMMIT. ``tools/galera/commit_probe.py`` measures both ways of sending.

Every conflict is counted by cause (:meth:`SqlAlchemyStore.conflict_causes`):
a generation miss, a brute-force abort (a replicated write or DDL aborted the
transaction before COMMIT; on one server a deadlock or lock wait timeout), or
a certification failure (COMMIT refused by Galera).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Literal, Optional, TypeVar, Union

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    FromClause,
    Index,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    cast,
    null,
    event,
    func,
    literal_column,
    select,
    text,
    union,
    union_all,
    update,
)
from sqlalchemy import insert as sql_insert
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.sql.expression import SelectBase

import delimiter as d

__all__ = [
    "SqlAlchemyStore",
    "WriteRows",
    "metadata",
    "projects",
    "generations",
    "usage",
    "registered_limits",
    "project_limits",
]

#: Writes the service's own rows for an admitted request, inside the commit
#: transaction: ``write_rows(connection, request)``. It runs after every
#: claimed generation was bumped (and after the usage counter rows), so its
#: rows commit together with them or not at all.
WriteRows = Callable[[Connection, "d.Request"], None]

# ---- the schema ----------------------------------------------------------------

#: The Delimiter tables. Add it to Alembic's ``target_metadata`` (a list is
#: accepted) to manage them beside the service's own.
metadata = MetaData()


def _key(name: str, *args: Any, **kw: Any) -> Column[str]:
    # TEXT on SQLite and PostgreSQL, as the Rust stores declare them;
    # MariaDB cannot index TEXT, so VARCHAR(255) with a binary collation
    # (case-sensitive ids), again as the Rust MariaDB store.
    key_type = Text().with_variant(
        mysql.VARCHAR(255, collation="utf8mb4_bin"), "mysql", "mariadb"
    )
    return Column(name, key_type, *args, **kw)


def _project_ref() -> ForeignKey:
    return ForeignKey("delimiter_projects.project_id")


# Table options for MariaDB / MySQL (ignored elsewhere).
_MYSQL: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}

projects = Table(
    "delimiter_projects",
    metadata,
    _key("project_id", primary_key=True, nullable=False),
    _key("parent_id", _project_ref(), nullable=True),
    Index("delimiter_projects_parent", "parent_id"),
    **_MYSQL,
)

_generation = Column("generation", BigInteger, nullable=False)
generations = Table(
    "delimiter_generations",
    metadata,
    _key("project_id", _project_ref(), primary_key=True, nullable=False),
    _generation,
    CheckConstraint(_generation >= 0),
    **_MYSQL,
)

_usage = Column("usage", BigInteger, nullable=False)
usage = Table(
    "delimiter_usage",
    metadata,
    _key("project_id", _project_ref(), primary_key=True, nullable=False),
    _key("resource", primary_key=True, nullable=False),
    _usage,
    # An expression, not text: MariaDB needs `usage` quoted in it too.
    CheckConstraint(_usage >= 0),
    **_MYSQL,
)

registered_limits = Table(
    "delimiter_registered_limits",
    metadata,
    _key("resource", primary_key=True, nullable=False),
    Column("limit_value", BigInteger, nullable=False),
    **_MYSQL,
)

project_limits = Table(
    "delimiter_project_limits",
    metadata,
    _key("project_id", _project_ref(), primary_key=True, nullable=False),
    _key("resource", primary_key=True, nullable=False),
    Column("limit_value", BigInteger, nullable=False),
    **_MYSQL,
)

#: MariaDB only: the Rust MariadbStore's commit markers on Galera (see
#: conformance/storage/schema-mariadb.sql). This store does not write them
#: (it sends one statement per round trip, and a brute-force abort between
#: statements is reported at the next one), but creates the table so that a
#: Rust service can share a database this store created.
commit_markers = Table(
    "delimiter_commit_markers",
    metadata,
    Column("token", mysql.CHAR(36, charset="ascii", collation="ascii_bin"), primary_key=True, nullable=False),
    Column("seq", mysql.BIGINT(unsigned=True), nullable=False),
    Column(
        "updated_at",
        mysql.TIMESTAMP(),
        nullable=False,
        server_default=text("CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP"),
    ),
    mysql_engine="InnoDB",
    mysql_charset="ascii",
    mysql_collate="ascii_bin",
)

# ---- the queries -----------------------------------------------------------------

#: Bounds every walk along the parent chain, so that a cycle stored by
#: mistake ends; the component then reports it (``cycle``).
_MAX_CHAIN = 1024

#: The largest generation a BIGINT column holds.
_MAX_GENERATION = 2**63 - 1

# What a commit runs. Bound parameters are named unlike the columns
# (SQLAlchemy reserves column names for the SET clause) and typed BIGINT so
# that every driver sends 64-bit integers.
_bump_expected = (
    update(generations)
    .where(
        generations.c.project_id == bindparam("p"),
        generations.c.generation == bindparam("expected", type_=BigInteger),
    )
    .values(generation=generations.c.generation + 1)
)
_bump = (
    update(generations)
    .where(generations.c.project_id == bindparam("p"))
    .values(generation=generations.c.generation + 1)
)
_add_usage = (
    update(usage)
    .where(usage.c.project_id == bindparam("p"), usage.c.resource == bindparam("r"))
    .values(usage=usage.c.usage + bindparam("delta", type_=BigInteger))
)
_insert_usage = sql_insert(usage).values(
    project_id=bindparam("p"), resource=bindparam("r"), usage=bindparam("delta", type_=BigInteger)
)


def _path_cte() -> Any:
    """``path``: the requesting project (``:project``) and its ancestors,
    with their depth from the project (0) up."""
    start = select(
        projects.c.project_id,
        projects.c.parent_id,
        # Literal, not bound: a bound 0 could be typed smallint by the
        # driver, and the recursive term would then not match it.
        literal_column("0").label("depth"),
    ).where(projects.c.project_id == bindparam("project"))
    path = start.cte("path", recursive=True)
    up = projects.alias("up")
    return path.union_all(
        select(up.c.project_id, up.c.parent_id, path.c.depth + literal_column("1")).where(
            up.c.project_id == path.c.parent_id, path.c.depth < literal_column(str(_MAX_CHAIN))
        )
    )


def _subtree_cte(path: Any) -> Any:
    """``subtree``: every node of ``path`` (``anchor``) paired with every
    project of its subtree, itself included, so that grouping by anchor
    sums U(a, r)."""
    start = select(
        path.c.project_id.label("anchor"),
        path.c.project_id.label("project_id"),
        literal_column("0").label("depth"),
    )
    subtree = start.cte("subtree", recursive=True)
    child = projects.alias("child")
    return subtree.union_all(
        select(subtree.c.anchor, child.c.project_id, subtree.c.depth + literal_column("1")).where(
            child.c.parent_id == subtree.c.project_id,
            subtree.c.depth < literal_column(str(_MAX_CHAIN)),
        )
    )


def _resources() -> Any:
    return bindparam("resources", expanding=True)


def _batch_query(source: FromClause) -> Any:
    """``read_batch``'s one statement: rows ``(kind, a, b, n)``, ``kind``
    being ``p`` for a project (id, parent, generation or NULL), ``u`` for
    local usage (project, resource, usage), ``r`` for a registered limit
    (NULL, resource, limit) and ``l`` for a project limit (project,
    resource, limit). The projects are those of the whole trees the members
    (``:projects``) are in: their paths up (``up``), then everything under
    the roots found (``down``); a cycle stored by mistake has no root, so
    its nodes come from ``up`` alone and the component reports the cycle."""
    start = select(
        projects.c.project_id, projects.c.parent_id, literal_column("0").label("depth")
    ).where(projects.c.project_id.in_(bindparam("projects", expanding=True)))
    up = start.cte("batch_up", recursive=True)
    above = projects.alias("above")
    up = up.union_all(
        select(above.c.project_id, above.c.parent_id, up.c.depth + literal_column("1")).where(
            above.c.project_id == up.c.parent_id, up.c.depth < literal_column(str(_MAX_CHAIN))
        )
    )
    roots = select(up.c.project_id, literal_column("0").label("depth")).where(up.c.parent_id.is_(None)).distinct()
    down = roots.cte("batch_down", recursive=True)
    below = projects.alias("below")
    down = down.union_all(
        select(below.c.project_id, down.c.depth + literal_column("1")).where(
            below.c.parent_id == down.c.project_id, down.c.depth < literal_column(str(_MAX_CHAIN))
        )
    )
    nodes = union(select(up.c.project_id), select(down.c.project_id)).cte("batch_nodes")
    in_trees = select(nodes.c.project_id)
    tree = (
        select(
            literal_column("'p'").label("kind"),
            projects.c.project_id.label("a"),
            projects.c.parent_id.label("b"),
            generations.c.generation.label("n"),
        )
        .select_from(
            nodes.join(projects, projects.c.project_id == nodes.c.project_id).outerjoin(
                generations, generations.c.project_id == nodes.c.project_id
            )
        )
    )
    local = (
        select(literal_column("'u'"), source.c.project_id, source.c.resource, cast(func.sum(source.c.usage), BigInteger))
        .where(source.c.project_id.in_(in_trees), source.c.resource.in_(_resources()))
        .group_by(source.c.project_id, source.c.resource)
    )
    registered = select(
        literal_column("'r'"), null(), registered_limits.c.resource, registered_limits.c.limit_value
    ).where(registered_limits.c.resource.in_(_resources()))
    limits = select(
        literal_column("'l'"), project_limits.c.project_id, project_limits.c.resource, project_limits.c.limit_value
    ).where(project_limits.c.project_id.in_(in_trees), project_limits.c.resource.in_(_resources()))
    return union_all(tree, local, registered, limits)


def _depths(parent_of: dict[str, Optional[str]]) -> dict[str, int]:
    """Each project's depth (a root is 1) from the parent links read; a
    project whose chain leaves the links read (or loops) is left out."""
    depths: dict[str, int] = {}
    for start in parent_of:
        chain: list[str] = []
        at: Optional[str] = start
        while at is not None and at not in depths and at in parent_of and len(chain) <= _MAX_CHAIN:
            if at in chain:
                break
            chain.append(at)
            at = parent_of[at]
        if at is None:
            base = 0
        elif at in depths:
            base = depths[at]
        else:
            continue
        for k, node in enumerate(reversed(chain)):
            depths[node] = base + k + 1
    return depths


class _Queries:
    """The read queries over one usage source (the counter table, or the
    service's counted rows)."""

    def __init__(self, source: FromClause) -> None:
        self.path = _path_query(source)
        self.usage_of = select(func.coalesce(cast(func.sum(source.c.usage), BigInteger), 0)).where(
            source.c.project_id == bindparam("project"), source.c.resource == bindparam("resource")
        )
        self.batch = _batch_query(source)


def _path_query(source: FromClause) -> Any:
    """``read``'s one statement (one round trip, one read view): rows
    ``(kind, a, b, n, depth)``, ``kind`` being ``p`` for a path node
    (project, parent, generation or NULL, depth from the project), ``l`` for
    the project's own usage (NULL, resource, usage), ``s`` for a path node's
    subtree usage (node, resource, usage), ``r`` for a registered limit
    (NULL, resource, limit) and ``q`` for a path node's own limit (project,
    resource, limit, depth)."""
    path = _path_cte()
    total = cast(func.sum(source.c.usage), BigInteger)
    nodes = select(
        literal_column("'p'").label("kind"),
        path.c.project_id.label("a"),
        path.c.parent_id.label("b"),
        generations.c.generation.label("n"),
        path.c.depth.label("depth"),
    ).select_from(path.outerjoin(generations, generations.c.project_id == path.c.project_id))
    local = (
        select(literal_column("'l'"), null(), source.c.resource, total, null())
        .where(source.c.project_id == bindparam("project"), source.c.resource.in_(_resources()))
        .group_by(source.c.resource)
    )
    subtree = _subtree_cte(path)
    sums = (
        select(literal_column("'s'"), subtree.c.anchor, source.c.resource, total, null())
        .select_from(subtree.join(source, source.c.project_id == subtree.c.project_id))
        .where(source.c.resource.in_(_resources()))
        .group_by(subtree.c.anchor, source.c.resource)
    )
    registered = select(
        literal_column("'r'"), null(), registered_limits.c.resource, registered_limits.c.limit_value, null()
    ).where(registered_limits.c.resource.in_(_resources()))
    limits = (
        select(
            literal_column("'q'"),
            project_limits.c.project_id,
            project_limits.c.resource,
            project_limits.c.limit_value,
            path.c.depth,
        )
        .select_from(path.join(project_limits, project_limits.c.project_id == path.c.project_id))
        .where(project_limits.c.resource.in_(_resources()))
    )
    return union_all(nodes, local, sums, registered, limits)


_counter_queries = _Queries(usage)

# ---- the database kinds ------------------------------------------------------------

_Kind = Literal["sqlite", "postgres", "mariadb"]

_KINDS: dict[str, _Kind] = {
    "sqlite": "sqlite",
    "postgresql": "postgres",
    "mysql": "mariadb",
    "mariadb": "mariadb",
}

#: PostgreSQL SQLSTATEs that mean "lost a race; the transaction is gone and
#: nothing was written": serialization_failure, deadlock_detected.
_PG_CONFLICTS = frozenset({"40001", "40P01"})
#: MariaDB / MySQL error codes that mean the same: ER_LOCK_WAIT_TIMEOUT,
#: ER_LOCK_DEADLOCK. Galera reports a certification failure (a rival node
#: committed first) as ER_LOCK_DEADLOCK.
_MYSQL_CONFLICTS = frozenset({1205, 1213})
#: SQLITE_BUSY, SQLITE_LOCKED: the busy timeout ran out behind other writers.
_SQLITE_CONFLICTS = frozenset({5, 6})

#: Execution option read by the SQLite ``begin`` listener: the statement
#: that opens the transaction.
_SQLITE_BEGIN = "delimiter_sqlite_begin"
#: Where the SQLite ``begin`` listener notes how long BEGIN took (seconds).
_BEGIN_WAITED = "delimiter_begin_waited"


def _sqlite_begin(conn: Connection) -> None:
    """Opens SQLite transactions ourselves (SQLAlchemy's documented recipe
    for pysqlite): the driver would otherwise begin late, and always
    DEFERRED, while a commit needs ``BEGIN IMMEDIATE`` (take the write lock
    first, then read the generations) and a read needs its SELECTs in one
    transaction to see one snapshot."""
    record = conn.connection
    if not record.info.get("delimiter_sqlite"):
        # Done once per DBAPI connection, also for connections the engine
        # opened before the store was made.
        record.dbapi_connection.isolation_level = None  # type: ignore[union-attr]
        conn.exec_driver_sql("PRAGMA foreign_keys = ON")
        conn.exec_driver_sql("PRAGMA busy_timeout = 10000")
        # WAL: readers do not block the writer (an in-memory database
        # answers "memory", which is fine).
        conn.exec_driver_sql("PRAGMA journal_mode = WAL").scalar()
        record.info["delimiter_sqlite"] = True
    began = time.perf_counter()
    conn.exec_driver_sql(conn.get_execution_options().get(_SQLITE_BEGIN, "BEGIN"))
    # How long BEGIN (IMMEDIATE: behind other writers) waited, for a miss
    # after it to tell whether it had waited for the winner.
    record.info[_BEGIN_WAITED] = time.perf_counter() - began


class _Conflict(Exception):
    """A claimed generation had moved: roll back, report a conflict
    (``waited``: after waiting for the winning writer)."""

    def __init__(self, waited: bool = False) -> None:
        super().__init__()
        self.waited = waited


class _MemberFailed(Exception):
    """The rows of member ``index`` of a batch failed to write: roll back,
    report that member."""

    def __init__(self, index: int, error: BaseException) -> None:
        super().__init__(index)
        self.index = index
        self.error = error


#: A missed compare-and-update that took at least this long (from the
#: start of the transaction on SQLite, where a writer waits at BEGIN
#: IMMEDIATE; the UPDATE itself elsewhere) had waited for the winner:
#: reported as conflict-after-wait. The default of ``waited_us``.
_WAITED_US = 1000


#: How many times ``read`` runs when a conflict (on Galera, a replicated
#: DDL) aborts its snapshot. The DDL holds its table until it is done, so the
#: next try waits for it instead of being aborted again.
_READ_ATTEMPTS = 4

#: The causes :meth:`SqlAlchemyStore.conflict_causes` counts.
_CAUSES = ("generation_miss", "brute_force_abort", "certification_failure", "read_retries")

_T = TypeVar("_T")


def _cause(e: BaseException) -> Optional[BaseException]:
    """The generation miss (``_Conflict``) or member failure
    (``_MemberFailed``) whose ROLLBACK raised ``e``, if any (the ROLLBACK
    itself can fail on Galera, with 1213, and would otherwise replace the
    miss)."""
    seen: Optional[BaseException] = e
    while seen is not None:
        if isinstance(seen, (_Conflict, _MemberFailed)):
            return seen
        seen = seen.__context__
    return None


# ---- the store -------------------------------------------------------------------------


class SqlAlchemyStore:
    """A store for :func:`delimiter.consume` over a SQLAlchemy :class:`Engine`
    (SQLite, PostgreSQL or MariaDB / MySQL).

    It holds only the engine and its settings, so one store may be shared by
    every thread of a process: each ``read`` and ``commit`` checks out its own
    connection from the engine's pool.

    ``write_rows(connection, request)``, if given, writes the service's own
    rows (say, the instances it creates) inside the commit transaction, after
    the claimed generations were bumped: they commit together or not at all.
    Use :meth:`with_rows` to bind it per request.

    ``counted_usage``, if given, is where usage is read from instead of the
    ``delimiter_usage`` counter table: a selectable (a ``Select`` or a
    subquery) with columns ``project_id``, ``resource`` and ``usage`` over the
    service's own rows, counted the way Nova counts instances. The counter
    table is then neither read nor written, and ``write_rows`` is required:
    it is what changes the counted rows.

    ``waited_us`` (default 1000): a compare-and-update that misses after
    taking this long (on SQLite, counting the wait at ``BEGIN IMMEDIATE``)
    had waited for the winning writer, and is reported as
    ``CONFLICT_AFTER_WAIT`` (the driver reads again at once) rather than
    ``CONFLICT`` (it backs off first). A timing heuristic: on a loaded
    machine a miss that waited for nobody may take that long too.

    On SQLite the store installs, once per engine, a ``begin`` listener that
    opens transactions itself (SQLAlchemy's recipe for pysqlite, ``BEGIN`` or
    ``BEGIN IMMEDIATE``) and turns on foreign keys, WAL and a 10 s busy
    timeout for each connection; other code using the engine gets real
    ``BEGIN`` transactions too.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        write_rows: Optional[WriteRows] = None,
        counted_usage: Union[FromClause, SelectBase, None] = None,
        waited_us: int = _WAITED_US,
    ) -> None:
        kind = _KINDS.get(engine.dialect.name)
        if kind is None:
            raise ValueError(
                f"SqlAlchemyStore supports SQLite, PostgreSQL and MariaDB / MySQL, "
                f"not {engine.dialect.name!r}"
            )
        queries = _counter_queries
        if counted_usage is not None:
            source = (
                counted_usage.subquery("counted")
                if isinstance(counted_usage, SelectBase)
                else counted_usage
            )
            missing = {"project_id", "resource", "usage"} - set(source.c.keys())
            if missing:
                raise ValueError(f"counted_usage lacks the column(s) {sorted(missing)}")
            if write_rows is None:
                raise ValueError(
                    "counted_usage needs write_rows: with usage counted from the "
                    "service's rows, they are what a commit must write"
                )
            queries = _Queries(source)
        if kind == "sqlite" and not event.contains(engine, "begin", _sqlite_begin):
            event.listen(engine, "begin", _sqlite_begin)
        self._engine = engine
        self._kind: _Kind = kind
        # The driver's own exception base: SQLAlchemy lets some through
        # unwrapped (from setting a connection's isolation level).
        dbapi = getattr(engine.dialect, "loaded_dbapi", None)
        raw: tuple[type[BaseException], ...] = (
            (dbapi.Error,) if dbapi is not None and hasattr(dbapi, "Error") else ()
        )
        self._db_errors: tuple[type[BaseException], ...] = (SQLAlchemyError, *raw)
        self._write_rows = write_rows
        self._counted = counted_usage is not None
        self._queries = queries
        # Shared by the copies with_rows makes: one store, one count.
        self._causes = dict.fromkeys(_CAUSES, 0)
        self._causes_lock = threading.Lock()
        self._waited_s = waited_us / 1e6
        # Each project's depth, as the last batch reads saw the trees (a
        # batch commit takes the rows of pure releases in the one row order
        # with the claim's); shared by the copies with_rows makes.
        self._depth_of: dict[str, int] = {}
        # The transaction a read_locked left open, per thread (a store is
        # shared by threads; with_rows copies share it, as a thread makes
        # its calls one after another).
        self._held = threading.local()

    def conflict_causes(self) -> dict[str, int]:
        """The conflicts this store's commits reported so far, by cause
        (``generation_miss``, ``brute_force_abort``,
        ``certification_failure``), and ``read_retries``, the reads run
        again after a conflict aborted them."""
        with self._causes_lock:
            return dict(self._causes)

    def _count(self, cause: str) -> None:
        with self._causes_lock:
            self._causes[cause] += 1

    @property
    def engine(self) -> Engine:
        """The engine, for a service's own tables and queries."""
        return self._engine

    def with_rows(self, write_rows: Optional[WriteRows]) -> SqlAlchemyStore:
        """This store with another ``write_rows`` (say, one that inserts the
        instances of this request); cheap, nothing is copied but settings."""
        if write_rows is None and self._counted:
            raise ValueError("counted_usage needs write_rows")
        other = object.__new__(SqlAlchemyStore)
        other.__dict__.update(self.__dict__)
        other._write_rows = write_rows
        return other

    def __repr__(self) -> str:
        mode = "counted" if self._counted else "counter"
        return f"SqlAlchemyStore({self._engine.url!r}, usage={mode})"

    # ---- schema and setup ----------------------------------------------------------

    def create_schema(self) -> None:
        """Creates the Delimiter tables that are missing (``CREATE TABLE``
        for each absent one; existing tables, also those a Rust store
        created, are left as they are)."""
        with self._mapped():
            metadata.create_all(self._engine, tables=self._tables(), checkfirst=True)

    def drop_schema(self) -> None:
        """Drops the Delimiter tables (and everything in them)."""
        with self._mapped():
            metadata.drop_all(self._engine, tables=self._tables(), checkfirst=True)

    def _tables(self) -> list[Table]:
        """The tables of this database's kind (the commit markers on MariaDB
        only), in dependency order."""
        return [t for t in metadata.sorted_tables if t is not commit_markers or self._kind == "mariadb"]

    def add_project(self, project: d.Project) -> None:
        """Adds ``project`` (generation 1), under its parent or as a root.

        An empty id, an id already present or a parent that is not stored
        raises :class:`delimiter.InvalidInput` (``empty-id``,
        ``duplicate-project``, ``unknown-parent``) and writes nothing.
        """
        with self._mapped(), self._writing() as conn:
            tree = self._tree(conn)
            self._check(d.validate([*tree, project]))
            conn.execute(sql_insert(projects).values(project_id=project.id, parent_id=project.parent))
            conn.execute(sql_insert(generations).values(project_id=project.id, generation=1))

    def set_limits(self, limits: d.Limits) -> None:
        """Sets (or replaces) the registered and project limits given, all
        or none: a limit below -1, an empty resource name, a project not
        stored or a limit given twice raises :class:`delimiter.InvalidInput`
        and writes nothing."""
        with self._mapped(), self._writing() as conn:
            self._check(d.validate(self._tree(conn), limits))
            for r in limits.registered:
                self._upsert(conn, registered_limits, {"resource": r.resource, "limit_value": r.limit})
            for p in limits.project:
                self._upsert(
                    conn,
                    project_limits,
                    {"project_id": p.project, "resource": p.resource, "limit_value": p.limit},
                )

    def usage(self, project: str, resource: str) -> int:
        """What ``project`` itself uses of ``resource`` (0 if nothing),
        from the counter table or the counted rows."""
        query = self._queries.usage_of
        params = {"project": project, "resource": resource}
        return self._read(lambda conn: int(conn.execute(query, params).scalar_one()))

    def generation(self, project: str) -> Optional[int]:
        """The current generation of ``project``, None if it has none."""
        query = select(generations.c.generation).where(generations.c.project_id == project)
        g = self._read(lambda conn: conn.execute(query).scalar_one_or_none())
        return None if g is None else int(g)

    # ---- the store protocol ------------------------------------------------------------

    def read(self, project: str, resources: Sequence[str]) -> d.Snapshot:
        """One consistent snapshot of ``project``'s path: the projects from
        it up to the root, their generations, the limits on ``resources``,
        its local usage and every path node's subtree usage."""
        # One statement: the generations in the same snapshot as the usage.
        return self._path_snapshot(self._read(lambda conn: self._path_rows(conn, project, resources)))

    def _path_rows(self, conn: Connection, project: str, resources: Sequence[str]) -> list[Any]:
        params = {"project": project, "resources": list(resources)}
        return list(conn.execute(self._queries.path, params).all())

    def _path_snapshot(self, rows: Sequence[Any]) -> d.Snapshot:
        """The snapshot of one path read's rows."""
        path: list[tuple[int, str, Optional[str], Optional[int]]] = []
        local: list[d.ResourceUsage] = []
        subtree: list[d.UsageEntry] = []
        registered: list[d.RegisteredLimit] = []
        limits: list[tuple[int, str, str, int]] = []
        for kind, a, b, n, depth in rows:
            if kind == "p":
                path.append((int(depth), a, b, n))
            elif kind == "l":
                local.append(d.ResourceUsage(b, int(n)))
            elif kind == "s":
                subtree.append(d.UsageEntry(a, b, int(n)))
            elif kind == "r":
                registered.append(d.RegisteredLimit(b, int(n)))
            else:
                limits.append((int(depth), a, b, int(n)))
        path.sort()
        gens = []
        for _depth, pid, _parent, g in path:
            if g is None:
                continue  # the component reports it if the claim needs it
            if g < 0:
                raise _storage_error(f"{self._kind}: negative generation {g} for {pid!r}")
            gens.append(d.Generation(pid, int(g)))
        return d.Snapshot(
            projects=[d.Project(pid, parent) for _, pid, parent, _ in path],
            limits=d.Limits(
                registered=sorted(registered, key=lambda r: r.resource),
                project=[d.ProjectLimit(p, r, v) for _, p, r, v in sorted(limits)],
            ),
            usage=d.PathUsage(
                local=sorted(local, key=lambda u: u.resource),
                subtree=sorted(subtree, key=lambda u: (u.project, u.resource)),
            ),
            generations=gens,
        )

    def commit(self, claim: Sequence[d.ClaimEntry], request: d.Request) -> d.CommitOutcome:
        """Bumps every claimed generation (``UPDATE ... WHERE generation =
        :expected``), root first (the claim comes from the project up; the
        one row order of every commit path), then writes the usage and the
        service's rows, in one transaction.

        A claim entry that matches no row rolls it all back and reports a
        conflict: ``CONFLICT_AFTER_WAIT`` when the missed UPDATE took
        ``waited_us`` or longer (it had waited for the winning writer, which
        has committed: the driver reads again at once; on SQLite the wait at
        ``BEGIN IMMEDIATE`` counts too), else ``CONFLICT``. A deadlock, a serialization failure, a
        lock wait timeout or a Galera certification failure is a
        ``CONFLICT``. Any other database error (also one ``write_rows``
        raises, such as a duplicate key's ``IntegrityError``) rolls back
        and raises :class:`delimiter.StorageError` with that error as
        ``original`` (which ``consume``'s ``StorageError`` carries on as
        its own ``original``); any other exception from ``write_rows`` rolls
        back and propagates."""
        rows = [(entry.project, entry.generation) for entry in reversed(list(claim))]

        def body(conn: Connection) -> None:
            self._compare(conn, rows)
            self._write(conn, request, {c.project for c in claim}, self._write_rows, set())

        held = self._take_held()
        outcome = self._transact(body, self._writing if held is None else lambda: self._in_held(held))
        assert not isinstance(outcome, d.MemberFailure)
        return outcome

    def read_locked(self, project: str, resources: Sequence[str]) -> d.Snapshot:
        """A locked attempt's read (``RetryPolicy(lock_after_conflict=True)``):
        the path (an ordinary read), then a write transaction on a
        connection of this thread's own (``BEGIN IMMEDIATE`` on SQLite, READ
        COMMITTED elsewhere) that locks the path's generation rows root
        first, one ``SELECT ... FOR UPDATE`` per row (SQLite's write lock
        covers the whole database), then the path read again inside it. The
        transaction stays open: this thread's next :meth:`commit` writes
        and commits in it, or :meth:`unlock` rolls it back. A database error
        rolls back and raises :class:`delimiter.StorageError`."""
        self.unlock()
        path = self.read(project, resources)
        conn = self._engine.connect()
        try:
            if self._kind == "sqlite":
                conn.execution_options(**{_SQLITE_BEGIN: "BEGIN IMMEDIATE"})
            else:
                conn.execution_options(isolation_level="READ COMMITTED")
            tx = conn.begin()
            if self._kind != "sqlite":
                for p in reversed(path.projects):
                    lock = select(generations.c.generation).where(generations.c.project_id == p.id)
                    conn.execute(lock.with_for_update())
            snapshot = self._path_snapshot(self._path_rows(conn, project, resources))
        except BaseException as e:
            conn.close()  # rolls back
            if isinstance(e, self._db_errors):
                raise self._storage_error(e) from e
            raise
        self._held.open = (conn, tx)
        return snapshot

    def unlock(self) -> None:
        """Rolls back this thread's transaction :meth:`read_locked` left
        open, writing nothing (no-op without one)."""
        held = self._take_held()
        if held is not None:
            held[0].close()  # rolls back

    def _take_held(self) -> Optional[tuple[Connection, Any]]:
        held = getattr(self._held, "open", None)
        self._held.open = None
        return held

    @contextmanager
    def _in_held(self, held: tuple[Connection, Any]) -> Iterator[Connection]:
        """The transaction :meth:`read_locked` left open, as :meth:`_writing`
        gives one: committed when the block ends, rolled back by any
        exception, and its connection returned to the pool."""
        conn, tx = held
        try:
            with tx:
                yield conn
        finally:
            conn.close()

    def read_batch(self, projects: Sequence[str], resources: Sequence[str]) -> d.Snapshot:
        """``consume_batch``'s read, in ONE statement (so one read view):
        every project of the trees ``projects`` are in (the whole tree under
        each of their roots, which subtree sums need) with its generation,
        the local usage of those projects for ``resources`` (a list of
        ``UsageEntry``), the registered limits on ``resources`` and those
        projects' limits on them."""
        params = {"projects": list(projects), "resources": list(resources)}
        query = self._queries.batch
        rows = self._read(lambda conn: conn.execute(query, params).all())
        parent_of: dict[str, Optional[str]] = {}
        gens: list[d.Generation] = []
        used: list[d.UsageEntry] = []
        registered: list[d.RegisteredLimit] = []
        limits: list[d.ProjectLimit] = []
        for kind, a, b, n in rows:
            if kind == "p":
                parent_of[a] = b
                if n is not None:
                    if n < 0:
                        raise _storage_error(f"{self._kind}: negative generation {n} for {a!r}")
                    gens.append(d.Generation(a, int(n)))
            elif kind == "u":
                used.append(d.UsageEntry(a, b, int(n)))
            elif kind == "r":
                registered.append(d.RegisteredLimit(b, int(n)))
            else:
                limits.append(d.ProjectLimit(a, b, int(n)))
        self._depth_of.update(_depths(parent_of))
        return d.Snapshot(
            projects=[d.Project(pid, parent) for pid, parent in sorted(parent_of.items())],
            limits=d.Limits(registered=registered, project=limits),
            usage=used,
            generations=gens,
        )

    def commit_batch(
        self,
        claim: Sequence[d.ClaimEntry],
        members: Sequence[d.Request],
        *,
        stores: Optional[Sequence[Optional[SqlAlchemyStore]]] = None,
    ) -> Union[d.CommitOutcome, d.MemberFailure]:
        """``consume_batch``'s commit, in ONE transaction: compares and bumps
        each entry of ``claim`` once, in the order given (root first, then
        by depth, then project id: the one row order), then writes each
        member's usage and rows, in order. The project of a member that only
        releases (so is in no claim) has its generation bumped too, once,
        taken in that same row order among the claim's rows.

        A generation miss rolls everything back: ``CONFLICT_AFTER_WAIT`` or
        ``CONFLICT`` as for :meth:`commit` (by timing the missed UPDATE
        against ``waited_us``), as is a deadlock, serialization failure,
        lock wait timeout or certification failure. A database error while
        writing member ``i``'s rows (a release below zero that the CHECK
        refuses, a duplicate key from ``write_rows``) rolls everything back
        and returns ``MemberFailure(i, StorageError(..., original=error))``.
        Another database error raises :class:`delimiter.StorageError` (every
        member fails); another exception from a ``write_rows`` propagates.

        ``stores``: the store each member's caller passed (what
        :class:`delimiter.Combiner` hands over), one per member, None for
        this one: member ``i``'s rows are written with ``stores[i]``'s
        ``write_rows`` (say, a ``with_rows`` binding of that caller's)."""
        members = list(members)
        writers: list[Optional[WriteRows]] = []
        for i in range(len(members)):
            own = self if stores is None or stores[i] is None else stores[i]
            if not isinstance(own, SqlAlchemyStore):
                raise TypeError(f"commit_batch's stores are SqlAlchemyStores (or None), not {type(own).__name__}")
            writers.append(own._write_rows)
        if self._counted and any(w is None for w in writers):
            raise ValueError("counted_usage needs write_rows for every member")
        claimed = {c.project for c in claim}
        rows: list[tuple[str, Optional[int]]] = [(c.project, c.generation) for c in claim]
        releases = sorted(
            {m.project for m in members if m.project not in claimed and any(x.delta != 0 for x in m.deltas)}
        )

        def body(conn: Connection) -> None:
            order = rows
            if releases:
                # The one row order: the releases' rows among the claim's.
                depth = self._depths_for(conn, [p for p, _ in rows] + releases)
                order = sorted(
                    rows + [(p, None) for p in releases], key=lambda r: (depth.get(r[0], 0), r[0])
                )
            self._compare(conn, order)
            bumped = set(releases)
            for i, member in enumerate(members):
                try:
                    self._write(conn, member, claimed | bumped, writers[i], bumped)
                except self._db_errors as e:
                    if self._is_conflict(e):
                        raise
                    raise _MemberFailed(i, e) from e

        return self._transact(body)

    # ---- inside ----------------------------------------------------------------------------

    def _transact(
        self,
        body: Callable[[Connection], None],
        writing: Optional[Callable[[], Any]] = None,
    ) -> Union[d.CommitOutcome, d.MemberFailure]:
        """``body(connection)`` in one write transaction (``writing()``'s,
        by default :meth:`_writing`'s), its end
        as an outcome: a generation miss (``_Conflict``), a member's failed
        rows (``_MemberFailed``), a conflict of the database's; other
        database errors raise :class:`delimiter.StorageError`."""
        applied = False  # after body, leaving the block runs COMMIT
        try:
            with (writing or self._writing)() as conn:
                body(conn)
                applied = True
        except _Conflict as miss:
            self._count("generation_miss")
            return d.CommitOutcome.CONFLICT_AFTER_WAIT if miss.waited else d.CommitOutcome.CONFLICT
        except _MemberFailed as failed:
            return d.MemberFailure(failed.index, self._storage_error(failed.error))
        except self._db_errors as e:
            cause = _cause(e)
            if isinstance(cause, _Conflict):
                # The ROLLBACK after a miss failed (Galera: aborted by a
                # replicated write meanwhile); nothing was written either way.
                self._count("generation_miss")
                return d.CommitOutcome.CONFLICT_AFTER_WAIT if cause.waited else d.CommitOutcome.CONFLICT
            if isinstance(cause, _MemberFailed):
                return d.MemberFailure(cause.index, self._storage_error(cause.error))
            if self._is_conflict(e):
                # Galera certifies at COMMIT; a replicated write or DDL
                # aborts a transaction at the statement running or next.
                self._count("certification_failure" if applied else "brute_force_abort")
                return d.CommitOutcome.CONFLICT
            raise self._storage_error(e) from e
        return d.CommitOutcome.COMMITTED

    def _compare(self, conn: Connection, rows: Sequence[tuple[str, Optional[int]]]) -> None:
        """Bumps each row's generation in the order given: compared with the
        generation read (``UPDATE ... WHERE generation = :expected``), or
        not compared (None: the project of a pure release). A compared row
        that matches nothing raises ``_Conflict``, marked as waited when
        the UPDATE (on SQLite, with the transaction's BEGIN IMMEDIATE) took
        ``waited_us`` or longer."""
        for project, expected in rows:
            if expected is None:
                conn.execute(_bump, {"p": project})
                continue
            if expected > _MAX_GENERATION:
                raise _Conflict  # no stored generation can equal it: stale
            began = time.perf_counter()
            bumped = conn.execute(_bump_expected, {"p": project, "expected": expected})
            if bumped.rowcount == 0:
                took = time.perf_counter() - began
                if self._kind == "sqlite":
                    # A SQLite writer waits for the winner at BEGIN IMMEDIATE.
                    took += conn.connection.info.get(_BEGIN_WAITED, 0.0)
                raise _Conflict(took >= self._waited_s)

    def _write(
        self,
        conn: Connection,
        request: d.Request,
        claimed: set[str],
        write_rows: Optional[WriteRows],
        bumped: set[str],
    ) -> None:
        """Writes ``request``'s usage and the service's rows. Every write
        moves the project's generation (compare generations, never usage
        values: the ABA case); a pure release has an empty claim, so its
        project is bumped here, unless ``claimed`` (or ``bumped``, which
        records it) already has it."""
        writes = [x for x in request.deltas if x.delta != 0]
        if writes and request.project not in claimed and request.project not in bumped:
            conn.execute(_bump, {"p": request.project})
            bumped.add(request.project)
        if not self._counted:
            for x in writes:
                # CHECK (usage >= 0) fails a release below zero, rolling
                # back. Not an upsert: SQLite and PostgreSQL check the
                # proposed row before resolving the conflict, so a negative
                # delta would always fail. The project's generation row,
                # updated above, serializes writers of this project, so the
                # INSERT cannot race another.
                row = {"p": request.project, "r": x.resource, "delta": x.delta}
                if conn.execute(_add_usage, row).rowcount == 0:
                    conn.execute(_insert_usage, row)
        if write_rows is not None:
            write_rows(conn, request)

    def _depths_for(self, conn: Connection, wanted: Sequence[str]) -> dict[str, int]:
        """The depths of ``wanted``, as the batch reads saw them, else from
        the tree read now (in the commit's transaction)."""
        known = self._depth_of
        if any(p not in known for p in wanted):
            tree = conn.execute(select(projects.c.project_id, projects.c.parent_id)).all()
            known.update(_depths({pid: parent for pid, parent in tree}))
        return known

    def _read(self, body: Callable[[Connection], _T]) -> _T:
        """``body`` in a read-only transaction with one snapshot for every
        statement, run again (a read writes nothing) when a conflict aborts
        it: on Galera, a replicated DDL on a table the snapshot read."""
        attempt = 1
        while True:
            try:
                with self._snapshot() as conn:
                    return body(conn)
            except self._db_errors as e:
                if attempt < _READ_ATTEMPTS and self._is_conflict(e):
                    attempt += 1
                    self._count("read_retries")
                    continue
                raise self._storage_error(e) from e

    @contextmanager
    def _snapshot(self) -> Iterator[Connection]:
        """A read-only transaction with one snapshot for every statement.
        Database errors propagate as SQLAlchemy's; :meth:`_read` maps them."""
        with self._engine.connect() as conn:
            if self._kind == "sqlite":
                conn.execution_options(**{_SQLITE_BEGIN: "BEGIN"})
            elif self._kind == "postgres":
                conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            else:
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                if self._kind == "mariadb":
                    # The snapshot is taken now, not at the first read.
                    conn.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
                yield conn

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A write transaction (rolled back by any exception): READ
        COMMITTED on PostgreSQL and MariaDB, ``BEGIN IMMEDIATE`` on SQLite.
        Database errors propagate as SQLAlchemy's; callers map them."""
        with self._engine.connect() as conn:
            if self._kind == "sqlite":
                conn.execution_options(**{_SQLITE_BEGIN: "BEGIN IMMEDIATE"})
            else:
                conn.execution_options(isolation_level="READ COMMITTED")
            with conn.begin():
                yield conn

    def _tree(self, conn: Connection) -> list[d.Project]:
        rows = conn.execute(select(projects.c.project_id, projects.c.parent_id).order_by(projects.c.project_id))
        return [d.Project(pid, parent) for pid, parent in rows]

    @staticmethod
    def _check(findings: Iterable[object]) -> None:
        # Tree and limit rules have one home, the component: raise its first
        # finding (Keystone's child-over-parent report is advice, not an error).
        for finding in findings:
            if isinstance(finding, d.InvalidFinding):
                raise finding.error

    def _upsert(self, conn: Connection, table: Table, row: dict[str, Any]) -> None:
        keys = [c.name for c in table.primary_key.columns]
        if self._kind == "mariadb":
            stmt = mysql.insert(table).values(**row)
            conn.execute(stmt.on_duplicate_key_update(limit_value=stmt.inserted.limit_value))
            return
        if self._kind == "postgres":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            pg = pg_insert(table).values(**row)
            conn.execute(pg.on_conflict_do_update(index_elements=keys, set_={"limit_value": pg.excluded.limit_value}))
            return
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        lite = sqlite_insert(table).values(**row)
        conn.execute(lite.on_conflict_do_update(index_elements=keys, set_={"limit_value": lite.excluded.limit_value}))

    @contextmanager
    def _mapped(self) -> Iterator[None]:
        """Database errors of a setup call as :class:`delimiter.StorageError`."""
        try:
            yield
        except self._db_errors as e:
            raise self._storage_error(e) from e

    def _is_conflict(self, e: BaseException) -> bool:
        orig = _driver_error(e)
        if orig is None:
            return False
        if self._kind == "postgres":
            return getattr(orig, "sqlstate", None) in _PG_CONFLICTS
        if self._kind == "mariadb":
            args: tuple[Any, ...] = getattr(orig, "args", ())
            return bool(args) and args[0] in _MYSQL_CONFLICTS
        code = getattr(orig, "sqlite_errorcode", None)  # Python 3.11+
        if code is None:
            return "database is locked" in str(orig)
        return code & 0xFF in _SQLITE_CONFLICTS

    def _storage_error(self, e: BaseException) -> d.StorageError:
        # The driver's own words (SQLAlchemy's wrapper adds the statement,
        # which is noise for an operator and may be long), and the exception
        # itself as `original`, for the service to branch on.
        orig = _driver_error(e)
        return _storage_error(f"{self._kind}: {orig if orig is not None else e}".strip(), e)


def _storage_error(message: str, original: Optional[BaseException] = None) -> d.StorageError:
    return d.StorageError(message, original=original)  # type: ignore[no-untyped-call]


def _driver_error(e: BaseException) -> Optional[BaseException]:
    """The DBAPI driver's exception behind ``e``: SQLAlchemy wraps most in
    ``DBAPIError.orig``, but not those raised while it sets a connection's
    isolation level."""
    if isinstance(e, DBAPIError):
        return e.orig
    if isinstance(e, SQLAlchemyError):
        return None
    return e
