"""`python -m shared.jobs.backup [--output PATH] [--keep N]`: an online copy of the SQLite database.

Safe while the dashboard serves: the copy is made with sqlite3's backup API from inside one read
transaction, i.e. one WAL snapshot — writers carry on meanwhile, and the copy is the database exactly
as it was when the backup started (copying in steps without that transaction would start over at
every commit another process makes, and never finish on a busy server). It is written to a temporary
file beside the target, checked (`PRAGMA integrity_check`), flushed to disk, and only then renamed into
place: a backup file that exists is a whole one.

Without --output the copy goes to `backups/<name>-<UTC time>.db` beside the database, and only the
newest --keep (default 14) of those are kept. Exit 0 when done, 1 when the backup failed, 2 when it
cannot be done here (DATABASE_URL is not SQLite).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from playhouse.db_url import parse

from shared.config import Settings, settings_for_command
from shared.logs import configure_logging, report

log = logging.getLogger("backup")

PAGES_PER_STEP = 1024  # 4 MiB at SQLite's default page size: progress is reported between steps
PROGRESS_EVERY_S = 5.0
DEFAULT_KEEP = 14


class BackupError(Exception):
    """The backup could not be made; the message says why (and nothing was left behind)."""


class NotSQLite(BackupError):
    """DATABASE_URL names a database this command does not back up."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    bytes: int
    pages: int
    seconds: float


def sqlite_path(settings: Settings) -> Path:
    """The database file DATABASE_URL names, or NotSQLite saying what to use instead."""
    if not settings.database_url.startswith("sqlite:"):
        raise NotSQLite("python -m shared.jobs.backup copies a SQLite database; DATABASE_URL names another kind "
                        "(for PostgreSQL use its own tools: pg_dump, or the server's continuous archiving)")
    database = parse(settings.database_url).get("database") or ""
    if database in ("", ":memory:"):
        raise NotSQLite("DATABASE_URL names an in-memory SQLite database: there is no file to back up")
    return Path(database)


def default_target(database: Path, moment: datetime) -> Path:
    return database.parent / "backups" / f"{database.stem}-{moment:%Y%m%dT%H%M%SZ}.db"


def backup(database: Path, target: Path, *, busy_timeout_s: float = 5.0, progress_every_s: float = PROGRESS_EVERY_S,
           clock: Callable[[], float] = time.monotonic) -> BackupResult:
    """Copy `database` to `target` while others may be writing to it; atomic: all of it or nothing."""
    if not database.is_file():
        raise BackupError(f"there is no database at {database}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    started = clock()
    try:
        pages = _copy(database, partial, busy_timeout_s, progress_every_s, clock)
        _check_and_settle(partial)
        _flush(partial)
        os.replace(partial, target)
        _flush(target.parent)
    except sqlite3.Error as error:
        raise BackupError(f"the backup of {database} failed: {error}") from error
    except OSError as error:
        raise BackupError(f"the backup could not be written to {target}: {error.strerror or error}") from error
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return BackupResult(target, target.stat().st_size, pages, clock() - started)


def _copy(database: Path, partial: Path, busy_timeout_s: float, progress_every_s: float,
          clock: Callable[[], float]) -> int:
    source = sqlite3.connect(database, timeout=busy_timeout_s, isolation_level=None)
    copy = sqlite3.connect(partial, isolation_level=None)
    last_report = clock()
    copied = {"pages": 0}

    def progress(status: int, remaining: int, total: int) -> None:
        nonlocal last_report
        copied["pages"] = total
        if clock() - last_report >= progress_every_s:
            last_report = clock()
            done = total - remaining
            log.info("backup: %d%% (%d of %d pages)", 100 * done // max(total, 1), done, total,
                     extra={"pages_done": done, "pages_total": total})

    try:
        # One read transaction around every step: the snapshot the whole copy is taken from.
        source.execute("BEGIN")
        source.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        source.backup(copy, pages=PAGES_PER_STEP, progress=progress)
        source.execute("COMMIT")
    finally:
        source.close()
        copy.close()
    return copied["pages"]


def _check_and_settle(partial: Path) -> None:
    """The copy must pass SQLite's integrity check; it is left as one self-contained file (no -wal
    beside it: the server turns WAL back on when it opens a restored copy)."""
    copy = sqlite3.connect(partial, isolation_level=None)
    try:
        copy.execute("PRAGMA journal_mode=DELETE").fetchone()
        verdict = copy.execute("PRAGMA integrity_check").fetchall()
    finally:
        copy.close()
    if verdict != [("ok",)]:
        raise BackupError(f"the copy failed SQLite's integrity check: {verdict[:5]}")


def _flush(path: Path) -> None:
    """fsync a file, or a directory (so the rename itself survives a power cut)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def prune_backups(directory: Path, stem: str, keep: int) -> list[Path]:
    """Delete all but the newest `keep` default-named backups of `stem`; the ones deleted."""
    backups = sorted(directory.glob(f"{stem}-*.db"))  # the UTC timestamp in the name sorts by age
    doomed = backups[:-keep] if keep > 0 else backups
    for path in doomed:
        path.unlink()
    return doomed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.jobs.backup", description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, help="where to write the copy (default: backups/ beside the "
                                                    "database, named by the time)")
    parser.add_argument("--keep", type=int, default=DEFAULT_KEEP,
                        help=f"default-named backups to keep, newest first (default {DEFAULT_KEEP})")
    args = parser.parse_args(argv)
    if args.keep < 1:
        parser.error("--keep must be at least 1")
    settings = settings_for_command()
    configure_logging(settings)
    try:
        database = sqlite_path(settings)
    except NotSQLite as error:
        report("backup", f"backup not made: {error}", failed=True)
        return 2
    target = args.output or default_target(database, datetime.now(UTC))
    try:
        result = backup(database, target, busy_timeout_s=settings.busy_timeout_ms / 1000)
    except BackupError as error:
        report("backup", f"backup failed: {error}", failed=True)
        return 1
    pruned = [] if args.output else prune_backups(target.parent, database.stem, args.keep)
    report("backup", f"backup: {result.path} ({result.bytes / 1e6:.1f} MB, {result.pages} pages) in "
                     f"{result.seconds:.1f} s, integrity ok" + (f"; {len(pruned)} older removed" if pruned else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
