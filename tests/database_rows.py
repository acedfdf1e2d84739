"""Reading a test's database from outside the server: what every table holds, to prove that a write
happened once, or not at all. `database` is a SQLite file's path or a database URL (SQLite or PostgreSQL)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from playhouse.db_url import parse


class _PostgresReader:
    """The part of sqlite3.Connection these tests use (`execute` with `?` placeholders), on psycopg2."""

    def __init__(self, url: str):
        import psycopg2

        self.connection = psycopg2.connect(**parse(url))
        self.connection.autocommit = True  # each statement sees what has been committed by then

    def execute(self, statement: str, params: Sequence[Any] = ()):
        cursor = self.connection.cursor()
        cursor.execute(statement.replace("?", "%s"), params)
        return cursor

    def tables(self) -> list[str]:
        return [name for (name,) in self.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename")]

    def close(self) -> None:
        self.connection.close()


class _SqliteReader:
    def __init__(self, path: Path, mode: str = "ro"):
        # Read-only unless asked, of the test's own (WAL lets it read while the server writes).
        # isolation_level=None: each statement commits by itself, as on PostgreSQL's autocommit.
        self.connection = sqlite3.connect(f"file:{path}?mode={mode}", uri=True, timeout=10, isolation_level=None)

    def execute(self, statement: str, params: Sequence[Any] = ()):
        return self.connection.execute(statement, params)

    def tables(self) -> list[str]:
        return [name for (name,) in self.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]

    def close(self) -> None:
        self.connection.close()


@contextlib.contextmanager
def reading(database: Path | str, mode: str = "ro") -> Iterator[_SqliteReader | _PostgresReader]:
    """A connection of the test's own to `database`, for reading (for writing too: `writing`)."""
    text = str(database)
    if text.startswith(("postgres:", "postgresql:")):
        reader: _SqliteReader | _PostgresReader = _PostgresReader(text)
    else:
        reader = _SqliteReader(Path(text.removeprefix("sqlite:///")), mode)
    try:
        yield reader
    finally:
        reader.close()


def writing(database: Path | str) -> contextlib.AbstractContextManager[_SqliteReader | _PostgresReader]:
    """A connection of the test's own to `database` that writes, each statement committed at once: to
    put rows there that the server would not have written, or to commit beside it."""
    return reading(database, mode="rw")


def row_counts(database: Path | str) -> dict[str, int]:
    """The number of rows in every table of `database`."""
    with reading(database) as db:
        return {table: db.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0] for table in db.tables()}


def changed_tables(before: dict[str, int], after: dict[str, int]) -> dict[str, tuple[int, int]]:
    """The tables whose row count differs: {table: (before, after)}."""
    return {table: (before.get(table, 0), after.get(table, 0))
            for table in sorted(before.keys() | after.keys()) if before.get(table, 0) != after.get(table, 0)}


def stored_bytes(database: Path | str) -> bytes:
    """Everything the database keeps, to search for a secret in: on SQLite the file and its write-ahead
    log (WAL mode) byte for byte; on PostgreSQL, whose files are the server's, every row of every table."""
    text = str(database)
    if text.startswith(("postgres:", "postgresql:")):
        with reading(text) as db:
            return repr([db.execute(f'SELECT * FROM "{table}"').fetchall() for table in db.tables()]).encode()
    path = Path(text.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*") if p.is_file())
