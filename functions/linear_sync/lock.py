"""One sync at a time: an exclusive, non-blocking `fcntl.flock` on a file beside the database.

A file lock rather than a lock row in the database because the kernel releases it the moment its
holder exits, however it exits (a crash, `kill -9`, a reboot): there is never a stale lock to expire,
and no lease to renew during a long sync. The cron job, `make run`'s supervisor and the
`POST /api/linear/sync` trigger all take the same lock, so their syncs never overlap. (It holds on
one machine, which is the deployment this project is for.)
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


class SyncLock:
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


@contextlib.contextmanager
def sync_lock(settings: Settings) -> Iterator[SyncLock]:
    """Hold the sync lock for the block; SyncAlreadyRunning at once if another sync holds it."""
    lock = SyncLock(settings)
    lock.acquire()
    try:
        yield lock
    finally:
        lock.release()
