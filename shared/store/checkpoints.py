"""Moving the WAL's pages into the database file away from the write lock (SQLite).

In WAL mode a commit appends pages to the `-wal` file, and every so often (1 000 pages, by default) the
committing connection copies them back into the database file — a checkpoint: two fsyncs and a few
megabytes of writes, inside that writer's COMMIT, so inside our write lock (shared/store/db.py). Every
other writer on the machine waited for it. Measured with 1 000-event batches, one commit in three or
four took 12-19 ms instead of 1-2, and with another program busy on the disk, 0.45 s and 1.1 s: an
answer from a phone, or an agent's event, waited that long behind a copy it had no part in.

So the pool's connections checkpoint when they commit only past a backstop four times the default
(`BACKSTOP_PAGES`); after a write transaction commits, the writer only says so (`committed`), and one
thread per process and database checkpoints on a connection of its own, at most every `INTERVAL_S`,
outside the lock. A PASSIVE checkpoint copies what no reader still needs and waits for no reader or
writer; writers go on appending meanwhile (its fsyncs can still slow a commit's writes to the same
disk). Under a steady stream of commits it seldom catches the WAL's end, and the WAL restarts from its
beginning only after a checkpoint that did: then the backstop's checkpoint, inside a commit, does it
(docs/benchmarks.md has the figures). The thread ends
after `IDLE_S` without commits (a test process opens many databases) and starts again with the next.
A process killed between a commit and its checkpoint leaves the pages in the WAL, safe: the next
checkpoint, in any process, or SQLite's own when the last connection closes, copies them.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from urllib.parse import quote

log = logging.getLogger(__name__)

BACKSTOP_PAGES = 4_000  # a commit checkpoints itself only past this (16 MB): the WAL did not restart
INTERVAL_S = 0.5  # at most two checkpoints a second: a busy second's pages are copied together
IDLE_S = 5.0


class Checkpointer:
    """Checkpoints one SQLite database file from a thread of this process, soon after writes commit."""

    def __init__(self, path: str):
        self.path = path
        self._due = threading.Event()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()

    def committed(self) -> None:
        """A write transaction committed: its pages are checkpointed within about INTERVAL_S."""
        self._due.set()
        thread = self._thread
        if thread is None or not thread.is_alive():  # never started, idle too long, or forked away
            with self._start:
                if self._thread is thread:
                    self._thread = threading.Thread(target=self._run, name="wal-checkpoints", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while self._due.wait(IDLE_S):
            self._due.clear()
            self.checkpoint()
            time.sleep(INTERVAL_S)  # the commits of the next half second are checkpointed together
        # Idle: this thread ends. A commit that came just now finds it ending and starts another.

    def checkpoint(self) -> None:
        """One PASSIVE checkpoint, on a connection opened for it: none is left open between two (it would
        hold files of a database a test or a restore replaces). `mode=rw`: a database file removed meanwhile
        is not made again, empty."""
        try:
            connection = sqlite3.connect(f"file:{quote(self.path)}?mode=rw", uri=True, timeout=0,
                                         isolation_level=None)
            try:
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                connection.close()
        except sqlite3.Error as error:  # another checkpoint under way, a file gone: the next one catches up
            log.debug("WAL checkpoint of %s skipped: %s", self.path, error)
