"""Waking threads when anything commits to the database, whichever process wrote it.

A long poll (the agents' inbox) must return as soon as its answer is committed, and that commit may
come from another gunicorn worker, another thread or the Temporal worker: only the database is shared.
So, like the SSE function's feed poller, one thread per process asks SQLite's `PRAGMA data_version`
every `CHECK_INTERVAL_S`, and at once when a writer that committed changes pokes it (shared/store/
wakeup.py) — it reads nothing and moves only when another connection committed — and wakes every
waiter when it moves. Waiters then re-read what they wait for. N waiting requests cost one
cheap check per tick, not N queries. (Elsewhere than SQLite there is no such pragma: every tick wakes
the waiters.) The thread starts with the first waiter and stops when none has come for a while.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from shared.store.db import database, is_sqlite
from shared.store.wakeup import listener_for

log = logging.getLogger(__name__)

CHECK_INTERVAL_S = 0.05
IDLE_STOP_S = 5.0
# A waiter re-reads at least this often whatever happens (a safety net: the watch wakes it long before).
RECHECK_S = 10.0


class CommitWatch:
    def __init__(self, interval_s: float = CHECK_INTERVAL_S):
        self.interval_s = interval_s
        self._generation = 0  # moves every time a commit is seen
        self._changed = threading.Condition()
        self._waiters = 0
        self._last_wait = time.monotonic()
        self._thread: threading.Thread | None = None

    def generation(self) -> int:
        """Take this before reading what you wait for; pass it to `wait_past` if it was not there yet."""
        self._ensure_watching()
        with self._changed:
            return self._generation

    def wait_past(self, generation: int, timeout_s: float) -> int:
        """Wait until a commit after `generation` is seen, or `timeout_s` (at most RECHECK_S) passes."""
        with self._changed:
            self._waiters += 1
            self._last_wait = time.monotonic()
            try:
                self._changed.wait_for(lambda: self._generation > generation, min(timeout_s, RECHECK_S))
            finally:
                self._waiters -= 1
            return self._generation

    def _ensure_watching(self) -> None:
        with self._changed:
            self._last_wait = time.monotonic()
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name="commit-watch", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        last_version = None
        # The database this watch was started for, not whatever the proxy points at later: a process has
        # one, but a test run re-points it at each test's, and a watch winding down must not open the next.
        db = database.obj
        listener = listener_for(db)  # woken by every writer's commit: shared/store/wakeup.py
        try:
            db.connect(reuse_if_open=True)
            while True:
                listener.wait(self.interval_s)
                with self._changed:
                    if not self._waiters and time.monotonic() - self._last_wait > IDLE_STOP_S:
                        self._thread = None
                        return
                version = db.execute_sql("PRAGMA data_version").fetchone()[0] if is_sqlite() else None
                if version is not None and version == last_version:
                    continue
                last_version = version
                with self._changed:
                    self._generation += 1
                    self._changed.notify_all()
        except Exception:
            log.exception("the commit watch stopped on an error; it restarts with the next waiter")
            with self._changed:
                self._thread = None
        finally:
            listener.close()
            if not db.is_closed():
                db.close()


_watches: dict[int, CommitWatch] = {}
_watches_lock = threading.Lock()


def commit_watch() -> CommitWatch:
    """This process's watch (one per pid: a forked gunicorn worker gets its own thread)."""
    with _watches_lock:
        return _watches.setdefault(os.getpid(), CommitWatch())
