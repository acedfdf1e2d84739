"""One poller per process tails the change feed and fans each new change out to every open stream.

N browsers cost one cheap check per tick, not N queries: on SQLite the poller asks `PRAGMA
data_version` (which moves only when another connection commits) and reads `changes` only then.
Because every writer — any gunicorn worker, the Temporal worker, the cron job — commits to the same
database, every change reaches every stream in every process. The poller does not wait out its tick
for that: a writer that committed changes pokes every process's poller at once (shared/store/wakeup.py),
and the tick stays as the safety net for a lost poke.

On PostgreSQL there is no data_version: the poller runs the feed query itself every tick (`id > n`
on the primary key, an index probe that finds nothing most of the time), i.e. 20 small queries a
second per process at the default 50 ms. LISTEN/NOTIFY would save those, but it needs a connection
held open per process outside the pool, a NOTIFY in every writer, and still the id query to catch
up after a dropped connection; the ids it tails are safe to tail because writers commit in id order
(shared.store.db.WRITER_LOCK_KEY).

Each stream is a `Subscription` with a bounded queue. A stream that cannot keep up is marked
overflowed and ends cleanly; its browser reconnects with Last-Event-ID and loses nothing. The poller
thread starts with the first subscriber and stops after a while with none; subscribing and deciding
to stop happen under one lock, so a stream that subscribes while a poller winds down starts a new one.
A poller that dies on an error ends every stream it served (their browsers reconnect and resume by
id) rather than leave them open and silent.

Every half second the poller also asks whether the credentials behind its streams still hold
(`dead_credentials`, see credentials.py) and ends the streams of those that do not: sign-out reaches
open streams in under a second, in every worker.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from functions.sse.frames import change_frame
from shared.store.db import database, is_sqlite
from shared.store.feed import changes_since, latest_change_id
from shared.store.wakeup import Listener, listener_for

log = logging.getLogger(__name__)

FETCH_BATCH = 1000
IDLE_STOP_S = 5.0
CREDENTIAL_CHECK_S = 0.5

# Why the hub ended a stream.
OVERFLOWED = "overflowed"
CREDENTIAL_ENDED = "credential ended"
POLLER_FAILED = "poller failed"
SERVER_STOPPING = "server stopping"


class OfferedChange(dict):
    """A change as the poller offers it to every stream of its process: its frame is encoded once, by
    the first stream that sends it, not once per stream (500 streams, 500 json.dumps of the same change)."""

    @functools.cached_property
    def frame(self) -> bytes:
        return change_frame(self)


class Subscription:
    def __init__(self, topics: frozenset[str] | None, queue_size: int, start_id: int,
                 credential: Hashable | None = None):
        self.topics = topics
        self.start_id = start_id  # the hub's position when subscribed: live changes come after it
        self.credential = credential  # whose stream this is (None: nobody's to check)
        self.queue: queue.Queue[OfferedChange | None] = queue.Queue(maxsize=queue_size)
        self.ended: str | None = None  # why the hub ended this stream, once it has

    @property
    def overflowed(self) -> bool:
        return self.ended == OVERFLOWED

    def wants(self, change: dict[str, Any]) -> bool:
        return self.topics is None or change["topic"] in self.topics

    def offer(self, change: OfferedChange) -> None:
        if self.ended or not self.wants(change):
            return
        try:
            self.queue.put_nowait(change)
        except queue.Full:
            # Never block the poller (and so every other stream) on one slow reader.
            self.ended = OVERFLOWED

    def end(self, reason: str) -> None:
        """End the stream: its reader wakes (None in its queue) and stops, and its client reconnects."""
        self.ended = self.ended or reason
        with contextlib.suppress(queue.Full):  # full: the reader has plenty to wake it
            self.queue.put_nowait(None)


class FeedHub:
    def __init__(self, poll_interval_s: float, queue_size: int, idle_stop_s: float = IDLE_STOP_S):
        self.poll_interval_s = poll_interval_s
        self.queue_size = queue_size
        # Which of the given credentials have ended (the app sets it: functions/sse/credentials.py).
        self.dead_credentials: Callable[[set[Hashable]], set[Hashable]] | None = None
        self.idle_stop_s = idle_stop_s
        self.position = 0
        self._subscriptions: set[Subscription] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._listener: Listener | None = None
        self._idle_since: float | None = None
        _hubs.add(self)

    # Streams ------------------------------------------------------------------------------------------

    def subscribe(self, topics: Iterable[str] | None = None, credential: Hashable | None = None) -> Subscription:
        with self._lock:
            # Under the lock the poller dispatches (and decides to stop) under: every change after
            # `position` will be offered, by this poller or by the one started here.
            self._ensure_polling()
            subscription = Subscription(frozenset(topics) if topics else None, self.queue_size, self.position,
                                        credential)
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

    @property
    def polling(self) -> bool:
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    # The poller ---------------------------------------------------------------------------------------

    def _ensure_polling(self) -> None:
        """Start a poller unless one is running and has not decided to stop. Called under the lock."""
        if self._thread is not None and self._thread.is_alive():
            return
        with database.connection_context():
            self.position = latest_change_id()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="feed-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            self._listener.wake()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        last_version = None
        credentials_checked = time.monotonic()
        # Woken by every writer's commit, in any process (shared/store/wakeup.py); the interval is the
        # safety net for a lost poke, and the pace of the credential checks.
        listener = self._listener = listener_for(database.obj)
        try:
            database.connect(reuse_if_open=True)
            while True:
                listener.wait(self.poll_interval_s)
                if self._stopping.is_set():
                    return
                if not self._still_needed():
                    self._winding_down()
                    return
                if time.monotonic() - credentials_checked >= CREDENTIAL_CHECK_S:
                    self._end_streams_of_dead_credentials()
                    credentials_checked = time.monotonic()
                version = self._data_version()
                if version is not None and version == last_version:
                    continue
                last_version = version
                self._poll_once()
        except Exception:
            log.exception("the feed poller stopped on an error: its streams end, and their clients resume")
            self._end_every_stream(POLLER_FAILED)
        finally:
            listener.close()
            database.close()

    def _still_needed(self) -> bool:
        """False once nobody has subscribed for `idle_stop_s`: then this poller is no longer the hub's,
        and the next subscriber starts another."""
        with self._lock:
            if self._subscriptions:
                self._idle_since = None
                return True
            self._idle_since = self._idle_since or time.monotonic()
            if time.monotonic() - self._idle_since <= self.idle_stop_s:
                return True
            self._idle_since = None
            self._thread = None
            return False

    def _winding_down(self) -> None:
        """Runs in a poller that has decided to stop, before it closes its connection (a seam for tests)."""

    def _end_every_stream(self, reason: str) -> None:
        with self._lock:
            for subscription in self._subscriptions:
                subscription.end(reason)
            self._subscriptions.clear()
            if self._thread is threading.current_thread():
                self._thread = None  # the next subscriber starts a poller afresh

    def _end_streams_of_dead_credentials(self) -> None:
        with self._lock:
            credentials = {s.credential for s in self._subscriptions if s.credential is not None}
        if not credentials or self.dead_credentials is None:
            return
        dead = self.dead_credentials(credentials)
        if not dead:
            return
        with self._lock:
            for subscription in [s for s in self._subscriptions if s.credential in dead]:
                subscription.end(CREDENTIAL_ENDED)
                self._subscriptions.discard(subscription)

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
                for change in map(OfferedChange, changes):
                    for subscription in self._subscriptions:
                        subscription.offer(change)
                self.position = changes[-1]["id"]
            if len(changes) < FETCH_BATCH:
                return


_hubs: weakref.WeakSet[FeedHub] = weakref.WeakSet()  # every hub of this process


def end_every_stream_in_this_process() -> None:
    """The server is stopping: every open stream of this process ends now, cleanly, instead of holding
    its thread (and so the stop) until gunicorn's graceful timeout. Browsers reconnect and resume by id."""
    for hub in list(_hubs):
        hub._end_every_stream(SERVER_STOPPING)
