"""One poller per process tails the change feed and fans each new change out to every open stream.

N browsers cost one cheap check per tick, not N queries: on SQLite the poller asks `PRAGMA
data_version` (which moves only when another connection commits) and reads `changes` only then.
Because every writer — any gunicorn worker, the Temporal worker, the cron job — commits to the same
database, every change reaches every stream in every process.

On PostgreSQL there is no data_version: the poller runs the feed query itself every tick (`id > n`
on the primary key, an index probe that finds nothing most of the time), i.e. 20 small queries a
second per process at the default 50 ms. LISTEN/NOTIFY would save those, but it needs a connection
held open per process outside the pool, a NOTIFY in every writer, and still the id query to catch
up after a dropped connection; the ids it tails are safe to tail because writers commit in id order
(shared.store.db.WRITER_LOCK_KEY).

Each stream is a `Subscription` with a bounded queue. A stream that cannot keep up is marked
overflowed and ends cleanly; its browser reconnects with Last-Event-ID and loses nothing. The poller
thread starts with the first subscriber and stops after a while with none.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable
from typing import Any

from shared.store.db import database, is_sqlite
from shared.store.feed import changes_since, latest_change_id

log = logging.getLogger(__name__)

FETCH_BATCH = 1000
IDLE_STOP_S = 5.0


class Subscription:
    def __init__(self, topics: frozenset[str] | None, queue_size: int, start_id: int):
        self.topics = topics
        self.start_id = start_id  # the hub's position when subscribed: live changes come after it
        self.queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=queue_size)
        self.overflowed = False

    def wants(self, change: dict[str, Any]) -> bool:
        return self.topics is None or change["topic"] in self.topics

    def offer(self, change: dict[str, Any]) -> None:
        if self.overflowed or not self.wants(change):
            return
        try:
            self.queue.put_nowait(change)
        except queue.Full:
            # Never block the poller (and so every other stream) on one slow reader.
            self.overflowed = True


class FeedHub:
    def __init__(self, poll_interval_s: float, queue_size: int):
        self.poll_interval_s = poll_interval_s
        self.queue_size = queue_size
        self.position = 0
        self._subscriptions: set[Subscription] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # Streams ------------------------------------------------------------------------------------------

    def subscribe(self, topics: Iterable[str] | None = None) -> Subscription:
        self._ensure_polling()
        with self._lock:
            # Under the lock the poller dispatches under: every change after `position` will be offered.
            subscription = Subscription(frozenset(topics) if topics else None, self.queue_size, self.position)
            self._subscriptions.add(subscription)
        # "Now" is the feed's newest id, read after subscribing, even if the poller has not caught up
        # yet: changes up to it are in the database (the backlog), later ones will be offered.
        subscription.start_id = max(subscription.start_id, latest_change_id())
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions.discard(subscription)

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscriptions)

    # The poller ---------------------------------------------------------------------------------------

    def _ensure_polling(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            with database.connection_context():
                self.position = latest_change_id()
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="feed-poller", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        database.connect(reuse_if_open=True)
        idle_since: float | None = None
        last_version = None
        try:
            while not self._stopping.wait(self.poll_interval_s):
                if self.subscriber_count == 0:
                    idle_since = idle_since or time.monotonic()
                    if time.monotonic() - idle_since > IDLE_STOP_S and self._stop_if_still_idle():
                        return
                else:
                    idle_since = None
                version = self._data_version()
                if version is not None and version == last_version:
                    continue
                last_version = version
                self._poll_once()
        except Exception:
            log.exception("the feed poller stopped on an error; it restarts with the next stream")
        finally:
            database.close()

    def _stop_if_still_idle(self) -> bool:
        with self._lock:
            if self._subscriptions:
                return False
            self._thread = None
            return True

    def _data_version(self) -> int | None:
        if not is_sqlite():
            return None  # PostgreSQL: read the feed every tick (an indexed id > n query)
        return database.execute_sql("PRAGMA data_version").fetchone()[0]

    def _poll_once(self) -> None:
        while True:
            changes = changes_since(self.position, limit=FETCH_BATCH)
            if not changes:
                return
            with self._lock:
                for change in changes:
                    for subscription in self._subscriptions:
                        subscription.offer(change)
                self.position = changes[-1]["id"]
            if len(changes) < FETCH_BATCH:
                return
