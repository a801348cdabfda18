"""Reference storage adapters for ``delimiter.consume``.

Each adapter lives in its own module and imports its database toolkit only
when that module is imported, so ``import delimiter`` stays cheap and needs
no database package:

- ``delimiter.stores.sqlalchemy``: :class:`SqlAlchemyStore`, on SQLAlchemy
  Core (SQLite, PostgreSQL, MariaDB / MySQL). Install ``delimiter[sqlalchemy]``.
"""

__all__: list[str] = []
