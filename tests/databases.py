"""The database each test runs on: a SQLite file in the test's directory, or a fresh PostgreSQL database.

`make test` runs on SQLite. With TEST_DATABASE_URL pointing at a PostgreSQL server (its maintenance
database, e.g. `postgresql://postgres@127.0.0.1:5433/postgres`; `make test-postgres` starts a throwaway
one), every test gets a database of its own instead. Creating one by running the migrations would cost
every test the whole DDL; copying a template that was migrated once per run (CREATE DATABASE ...
TEMPLATE) costs ~60 ms. The databases are dropped when the run ends.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "").strip()
ON_POSTGRES = TEST_DATABASE_URL.startswith(("postgres:", "postgresql:"))

def only_on_sqlite(reason: str):
    """Mark a test that exercises something only SQLite has (a file, a PRAGMA, the flock write queue)."""
    return pytest.mark.skipif(ON_POSTGRES, reason=f"SQLite only: {reason}")


class PostgresDatabases:
    """Creates and drops the run's databases on the server TEST_DATABASE_URL names."""

    def __init__(self, admin_url: str):
        import psycopg2

        self.admin_url = admin_url
        self.connection = psycopg2.connect(admin_url)
        self.connection.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
        self.prefix = f"dashboard_test_{os.getpid()}"
        self.template = f"{self.prefix}_template"
        self._numbers = itertools.count(1)
        self.created: list[str] = []
        self._create(self.template, "template0")
        self._migrate_template()

    def url_for(self, name: str) -> str:
        base, _, query = self.admin_url.partition("?")
        return f"{base.rpartition('/')[0]}/{name}" + (f"?{query}" if query else "")

    def new(self, *, migrated: bool = True) -> str:
        name = f"{self.prefix}_{next(self._numbers)}"
        self._create(name, self.template if migrated else "template0")
        return self.url_for(name)

    def drop_all(self) -> None:
        with self.connection.cursor() as cursor:
            for name in reversed(self.created):
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.connection.close()

    def _create(self, name: str, template: str) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        self.created.append(name)

    def _migrate_template(self) -> None:
        from shared.config import Settings
        from shared.db import database, open_database
        from shared.migrations import migrate

        open_database(Settings(database_url=self.url_for(self.template)))
        migrate()
        # A template must have no connection open while it is copied.
        database.obj.close_all()


def database_url_in(directory: Path, postgres: PostgresDatabases | None, *, name: str = "dashboard.db",
                    migrated: bool = True) -> str:
    """A new database for a test: a SQLite file in `directory` (empty until something migrates it), or on
    PostgreSQL a database of its own, a copy of the migrated template unless `migrated` is False."""
    if postgres is None:
        return f"sqlite:///{directory / name}"
    return postgres.new(migrated=migrated)


def close_pool(url: str) -> None:
    """Close this process's pooled connections to `url` (a test's database is not reused)."""
    from shared.db import database

    current = database.obj
    if current is not None and getattr(current, "opened_from_url", None) == url and hasattr(current, "close_all"):
        current.close_all()


def run_sql(url: str, statement: str) -> list[tuple]:
    """Run one statement (no parameters) on a connection of its own, as another process writing to the
    same database would; commit, and return the rows it produced."""
    import contextlib
    import sqlite3

    from playhouse.db_url import parse

    if url.startswith("sqlite:"):
        connection = sqlite3.connect(url.removeprefix("sqlite:///"))
    else:
        import psycopg2

        connection = psycopg2.connect(**parse(url))
    with contextlib.closing(connection):
        cursor = connection.cursor()
        cursor.execute(statement)
        rows = cursor.fetchall() if cursor.description else []
        connection.commit()
        return [tuple(row) for row in rows]
