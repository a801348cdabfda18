"""The databases the store tests and the concurrency harness run on.

SQLite always (a file in a temporary directory); PostgreSQL and MariaDB when
``DELIMITER_TEST_POSTGRES_URL`` / ``DELIMITER_TEST_MARIADB_URL`` are set (CI
sets both; the Rust tests read the same variables), in libpq / mysql URL
form (``postgresql://postgres@127.0.0.1:5432/test``,
``mysql://root@127.0.0.1:3306/test``).

Each run works in a namespace of its own, created fresh and dropped after:
a schema of the PostgreSQL database (``search_path``), a database of the
MariaDB server, a file for SQLite. So the tests never touch the tables the
Rust tests use, and two runs on one server do not collide.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import tempfile
from typing import Any, Optional

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine, make_url

PG_VAR = "DELIMITER_TEST_POSTGRES_URL"
MY_VAR = "DELIMITER_TEST_MARIADB_URL"
KINDS = ("sqlite", "postgres", "mariadb")
_VARS = {"postgres": PG_VAR, "mariadb": MY_VAR}
#: The SQLAlchemy driver for each server, from the URL scheme the Rust
#: tests use: psycopg 3 and PyMySQL.
_DRIVERS = {"postgres": "postgresql+psycopg", "mariadb": "mysql+pymysql"}


def skip_reason(kind: str) -> Optional[str]:
    """Why ``kind`` cannot run here, or None."""
    var = _VARS.get(kind)
    if var is not None and not os.environ.get(var):
        return f"{var} not set"
    return None


@dataclasses.dataclass(frozen=True)
class Database:
    """One namespace on one database; plain data, so it pickles into worker
    processes."""

    kind: str
    #: The SQLAlchemy URL of the server (its default database).
    server_url: str
    #: Schema (PostgreSQL), database (MariaDB) or file path (SQLite).
    namespace: str

    @classmethod
    def new(cls, kind: str, tag: str) -> Database:
        """A namespace named after ``tag`` (not created yet)."""
        if kind == "sqlite":
            folder = tempfile.mkdtemp(prefix=f"delimiter-{tag}-")
            return cls(kind, "sqlite://", str(pathlib.Path(folder) / "quota.sqlite"))
        url = os.environ[_VARS[kind]]
        server = make_url(url).set(drivername=_DRIVERS[kind])
        return cls(kind, server.render_as_string(hide_password=False), tag)

    def engine(self, **kw: Any) -> Engine:
        """A new engine inside the namespace."""
        if self.kind == "sqlite":
            return create_engine(f"sqlite:///{self.namespace}", **kw)
        url = make_url(self.server_url)
        if self.kind == "mariadb":
            return create_engine(url.set(database=self.namespace), **kw)
        return create_engine(url, connect_args={"options": f"-c search_path={self.namespace}"}, **kw)

    def create(self) -> None:
        """The namespace, empty (dropped first if a crashed run left it)."""
        if self.kind == "sqlite":
            self.drop()
            pathlib.Path(self.namespace).parent.mkdir(parents=True, exist_ok=True)
            return
        with self._server() as conn:
            if self.kind == "postgres":
                conn.execute(text(f"DROP SCHEMA IF EXISTS {self.namespace} CASCADE"))
                conn.execute(text(f"CREATE SCHEMA {self.namespace}"))
            else:
                conn.execute(text(f"DROP DATABASE IF EXISTS {self.namespace}"))
                conn.execute(
                    text(f"CREATE DATABASE {self.namespace} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
                )

    def drop(self) -> None:
        if self.kind == "sqlite":
            for suffix in ("", "-wal", "-shm", "-journal"):
                pathlib.Path(self.namespace + suffix).unlink(missing_ok=True)
            folder = pathlib.Path(self.namespace).parent
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
            return
        with self._server() as conn:
            if self.kind == "postgres":
                conn.execute(text(f"DROP SCHEMA IF EXISTS {self.namespace} CASCADE"))
            else:
                conn.execute(text(f"DROP DATABASE IF EXISTS {self.namespace}"))

    def _server(self) -> Connection:
        engine = create_engine(self.server_url, isolation_level="AUTOCOMMIT", poolclass=_null_pool())
        return engine.connect()

    # ---- killing a connection from outside -------------------------------------

    def backend_id(self, conn: Connection) -> int:
        """The server's id of ``conn`` (what ``kill`` takes)."""
        if self.kind == "postgres":
            return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
        if self.kind == "mariadb":
            return int(conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar_one())
        raise ValueError("SQLite has no server connections")

    def kill(self, backend: int) -> None:
        """Ends connection ``backend`` from a second connection, as an
        operator or a failover would."""
        with self._server() as conn:
            if self.kind == "postgres":
                # With a timeout, waits until the backend is gone.
                ended = conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": backend})
                assert ended.scalar_one() is True, f"backend {backend} did not end"
            else:
                conn.exec_driver_sql(f"KILL CONNECTION {int(backend)}")


def _null_pool() -> Any:
    from sqlalchemy.pool import NullPool

    return NullPool
