"""One sync at a time: an exclusive, non-blocking `fcntl.flock` on a file beside the database.

A file lock rather than a lock row in the database because the kernel releases it the moment its
holder exits, however it exits (a crash, `kill -9`, a reboot): there is never a stale lock to expire,
and no lease to renew during a long sync. The cron job, `make run`'s supervisor and the
`POST /api/linear/sync` trigger all take the same lock, so their syncs never overlap. (It holds on
one machine, which is the deployment this project is for.)

On PostgreSQL, where the processes may run on several machines, it is a session-level advisory lock
instead (`pg_try_advisory_lock`) on a connection of its own, held for the sync: the server releases
it the moment that connection ends, however its holder exits — the same property, across machines.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from playhouse.db_url import parse

from shared.config import Settings


class SyncAlreadyRunning(RuntimeError):
    """Another process (or thread) holds the sync lock."""


def lock_path(settings: Settings) -> Path:
    """`<database file>.linear-sync.lock`; for a database that is not a file, one per URL in the temp dir."""
    if settings.database_url.startswith("sqlite:"):
        database = parse(settings.database_url).get("database", "")
        if database and database != ":memory:":
            return Path(f"{database}.linear-sync.lock")
    digest = hashlib.sha256(settings.database_url.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"opencode-dashboard-{digest}.linear-sync.lock"


# The advisory lock's key on PostgreSQL ("linsync" in ASCII); the writer lock (shared.store.db) has another.
ADVISORY_LOCK_KEY = 0x6C696E73796E63


class FileSyncLock:
    """The lock, held from `acquire()` until `release()`; usable across threads of one process."""

    def __init__(self, settings: Settings):
        self.path = lock_path(settings)
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SyncAlreadyRunning(f"another Linear sync holds {self.path}") from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the descriptor releases the flock


class AdvisorySyncLock:
    """The lock on PostgreSQL: held by a connection opened for it (not a pooled one, which would keep
    the lock after going back to the pool)."""

    def __init__(self, settings: Settings):
        self.database_url = settings.database_url
        self._connection = None

    def acquire(self) -> None:
        import psycopg2

        connection = psycopg2.connect(**parse(self.database_url))
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
            (taken,) = cursor.fetchone()
        if not taken:
            connection.close()
            raise SyncAlreadyRunning("another Linear sync holds the database's sync lock")
        self._connection = connection

    def release(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            connection.close()  # ending the session releases the lock


SyncLock = FileSyncLock | AdvisorySyncLock


def new_sync_lock(settings: Settings) -> SyncLock:
    """The sync lock for the configured database (not yet acquired)."""
    if settings.database_url.startswith("sqlite:"):
        return FileSyncLock(settings)
    return AdvisorySyncLock(settings)


@contextlib.contextmanager
def sync_lock(settings: Settings) -> Iterator[SyncLock]:
    """Hold the sync lock for the block; SyncAlreadyRunning at once if another sync holds it."""
    lock = new_sync_lock(settings)
    lock.acquire()
    try:
        yield lock
    finally:
        lock.release()
