"""Reading a test's SQLite file from outside the server: what every table holds, to prove that a write
happened once, or not at all."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def reading(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection of the test's own (WAL lets it read while the server writes)."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        yield connection
    finally:
        connection.close()


def row_counts(path: Path) -> dict[str, int]:
    """The number of rows in every table of the database at `path`."""
    with reading(path) as db:
        tables = [name for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        return {table: db.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0] for table in tables}


def changed_tables(before: dict[str, int], after: dict[str, int]) -> dict[str, tuple[int, int]]:
    """The tables whose row count differs: {table: (before, after)}."""
    return {table: (before.get(table, 0), after.get(table, 0))
            for table in sorted(before.keys() | after.keys()) if before.get(table, 0) != after.get(table, 0)}
