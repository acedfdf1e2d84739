"""The database each test runs on: a SQLite file in the test's directory, or a fresh PostgreSQL database.

`make test` runs on SQLite. With TEST_DATABASE_URL pointing at a PostgreSQL server (its maintenance
database, e.g. `postgresql://postgres@127.0.0.1:5433/postgres`; `make test-postgres` starts a throwaway
one), every test gets a database of its own instead, as it gets a file of its own on SQLite.

Making those must stay cheap, for ~500 tests. Running the migrations costs the whole DDL; CREATE
DATABASE ... TEMPLATE (a template migrated once per run) costs 60-400 ms and DROP DATABASE as much
again, several minutes a run on a busy machine. So a test's database is recycled when the test is
done: emptied (DELETE from every table, with foreign-key triggers off, ~5 ms) and given back the
template's rows and sequence positions. A database is only recycled when nothing else is connected
to it and its schema still is the template's; otherwise the next test gets a new copy. What remains
is dropped when the run ends.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "").strip()
ON_POSTGRES = TEST_DATABASE_URL.startswith(("postgres:", "postgresql:"))


def only_on_sqlite(reason: str):
    """Mark a test that exercises something only SQLite has (a file, a PRAGMA, the flock write queue)."""
    return pytest.mark.skipif(ON_POSTGRES, reason=f"SQLite only: {reason}")


# The shape of a database's schema, to tell whether a test changed it.
SCHEMA_FINGERPRINT = """
    SELECT md5(coalesce(string_agg(item, ',' ORDER BY item), '')) FROM (
        SELECT table_name || '.' || column_name || ':' || data_type || ':' || is_nullable
               || ':' || coalesce(column_default, '') AS item
        FROM information_schema.columns WHERE table_schema = current_schema()
        UNION ALL
        SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema()
    ) AS schema_items
"""


class PostgresDatabases:
    """Creates, recycles and finally drops the run's databases on the server TEST_DATABASE_URL names."""

    def __init__(self, admin_url: str):
        import psycopg2

        self.admin_url = admin_url
        self.connection = psycopg2.connect(admin_url)
        self.connection.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
        self.prefix = f"dashboard_test_{os.getpid()}"
        self.template = f"{self.prefix}_template"
        self._numbers = itertools.count(1)
        self.created: list[str] = []
        self.recycled: list[str] = []
        self._create(self.template, "template0")
        self._migrate_template()
        self._remember_template()

    def url_for(self, name: str) -> str:
        base, _, query = self.admin_url.partition("?")
        return f"{base.rpartition('/')[0]}/{name}" + (f"?{query}" if query else "")

    def new(self, *, migrated: bool = True) -> str:
        if migrated and self.recycled:
            return self.url_for(self.recycled.pop())
        name = f"{self.prefix}_{next(self._numbers)}"
        self._create(name, self.template if migrated else "template0")
        return self.url_for(name)

    def release(self, url: str) -> None:
        """The test that used `url` (a migrated database) is done: recycle it if it can be."""
        name = url.partition("?")[0].rpartition("/")[2]
        if self._reset(name):
            self.recycled.append(name)

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
        from shared.store.db import database, open_database
        from shared.store.migrations import migrate

        open_database(Settings(database_url=self.url_for(self.template)))
        migrate()
        # A template must have no connection open while it is copied.
        database.obj.close_all()

    def _remember_template(self) -> None:
        """What a recycled database must look like again: the template's schema, rows and sequences."""
        import psycopg2

        with contextlib.closing(psycopg2.connect(self.url_for(self.template))) as connection:
            cursor = connection.cursor()
            cursor.execute(SCHEMA_FINGERPRINT)
            (self.fingerprint,) = cursor.fetchone()
            cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename")
            self.tables = [table for (table,) in cursor.fetchall()]
            self.rows = {}
            for table in self.tables:
                cursor.execute(f'SELECT * FROM "{table}"')
                rows = cursor.fetchall()
                if rows:
                    self.rows[table] = ([column[0] for column in cursor.description], rows)
            cursor.execute("SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = current_schema()")
            self.sequences = cursor.fetchall()
            connection.rollback()

    def _reset(self, name: str) -> bool:
        import psycopg2
        from psycopg2.extras import execute_values

        try:
            connection = psycopg2.connect(self.url_for(name))
        except psycopg2.Error:
            return False
        try:
            cursor = connection.cursor()
            if not self._alone(cursor):
                return False
            cursor.execute(SCHEMA_FINGERPRINT)
            if cursor.fetchone()[0] != self.fingerprint:
                return False
            cursor.execute("SET LOCAL session_replication_role = replica")  # no foreign-key checks meanwhile
            for table in self.tables:
                cursor.execute(f'DELETE FROM "{table}"')
            for table, (columns, rows) in self.rows.items():
                names = ", ".join(f'"{column}"' for column in columns)
                execute_values(cursor, f'INSERT INTO "{table}" ({names}) VALUES %s', rows)
            for sequence, last_value in self.sequences:
                cursor.execute("SELECT setval(%s, %s, %s)", (sequence, last_value or 1, last_value is not None))
            connection.commit()
            return True
        except psycopg2.Error:
            return False
        finally:
            connection.close()

    @staticmethod
    def _alone(cursor) -> bool:
        """Nobody else is connected (a closed connection's server process may take a moment to go)."""
        for _ in range(10):
            cursor.execute("SELECT count(*) FROM pg_stat_activity"
                           " WHERE datname = current_database() AND pid <> pg_backend_pid()")
            if cursor.fetchone()[0] == 0:
                return True
            time.sleep(0.02)
        return False


def database_url_in(directory: Path, postgres: PostgresDatabases | None, *, name: str = "dashboard.db",
                    migrated: bool = True) -> str:
    """A new database for a test: a SQLite file in `directory` (empty until something migrates it), or on
    PostgreSQL a database of its own, a copy of the migrated template unless `migrated` is False."""
    if postgres is None:
        return f"sqlite:///{directory / name}"
    return postgres.new(migrated=migrated)


def close_pool(url: str) -> None:
    """Close this process's pooled connections to `url`, the test's database, and forget them: a recycled
    database comes back under the same URL, and the next test's settings must get a database object of
    their own (open_database reuses one opened from the same URL)."""
    from shared.store.db import database

    current = database.obj
    if current is not None and getattr(current, "opened_from_url", None) == url:
        close_connections()
        current.opened_from_url = None


def close_connections() -> None:
    """Close this thread's connection and the pool's idle ones. Never `close_all()`: a connection that a
    background thread (an SSE poller or commit watch winding down) is using must stay with it — closing a
    SQLite connection under a running statement crashes the interpreter."""
    from shared.store.db import database

    database.obj.close()
    if hasattr(database.obj, "close_idle"):
        database.obj.close_idle()


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


@contextlib.contextmanager
def long_writer(database: Path) -> Iterator[None]:
    """Another process holds the database's write lock (BEGIN EXCLUSIVE) until the block ends."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, sys\n"
        f"db = sqlite3.connect({str(database)!r}, isolation_level=None)\n"
        "db.execute('BEGIN EXCLUSIVE')\n"
        "db.execute(\"INSERT INTO settings (key, value) VALUES ('half-written', 'by the long writer')\")\n"
        "print('locked', flush=True)\n"
        "sys.stdin.readline()\n"
        "db.execute('ROLLBACK')\n")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
