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

Each stream is a `Subscription` with a bounded queue, and the poller is also the writer of every
stream whose connection the server handed over (under gunicorn, all of them once they have replayed
their backlog: deploy/gunicorn_worker.py): it reads each change once, encodes its frame once, and
writes it without waiting to every stream that wants it, from this one thread, with the heartbeats and
the ends of streams (`StreamWriter`). With 500 streams that cut the server's CPU per change and stream
to about a third (45-64 µs against 137-184 µs, most of what is left the kernel's: docs/benchmarks.md), and no
stream waits for a thread of its own to be scheduled. Where nothing can be
handed over (falcon.testing, another WSGI server), the stream's request thread takes what is queued
and writes it (`Subscription.next_write`, the same for both). A stream that cannot keep up (its queue
full) is ended; its browser reconnects with Last-Event-ID and loses nothing. A client that went away
is noticed at once (its socket reads end-of-file). The poller starts with the first subscriber and
stops after a while with none; subscribing and deciding to stop happen under one lock, so a stream
that subscribes while a poller winds down starts a new one. A poller that dies on an error ends every
stream it served (their browsers reconnect and resume by id) rather than leave them open and silent.

Every half second the poller also asks whether the credentials behind its streams still hold
(`dead_credentials`, see credentials.py) and ends the streams of those that do not: sign-out reaches
open streams in under a second, in every worker.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import selectors
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from functions.sse import frames
from functions.sse.socket_stream import SocketStream
from shared.store.db import database, is_sqlite
from shared.store.feed import changes_since, latest_change_id
from shared.store.wakeup import Listener, listener_for

log = logging.getLogger(__name__)

FETCH_BATCH = 1000
IDLE_STOP_S = 5.0
CREDENTIAL_CHECK_S = 0.5
WRITE_MAX = 100  # changes sent in one write when a stream has several waiting

# Why the hub ended a stream.
OVERFLOWED = "overflowed"
CREDENTIAL_ENDED = "credential ended"
POLLER_FAILED = "poller failed"
SERVER_STOPPING = "server stopping"
TIME_LIMIT = "time limit"
CLIENT_LEFT = "client left"
# Ended this way, a handed-over stream's connection is cut (a reset) rather than its body ended.
CUT_OFF = (OVERFLOWED, CLIENT_LEFT)

HEARTBEAT_DUE = object()  # in a stream's queue: nothing was sent for a while, say something


class OfferedChange(dict):
    """A change as the poller offers it to every stream of its process: its frame is encoded once, by
    the first stream that sends it, not once per stream (500 streams, 500 json.dumps of the same change)."""

    @functools.cached_property
    def frame(self) -> bytes:
        return frames.change_frame(self)


class Subscription:
    """One stream, whoever writes it: the poller queues what the stream must send (changes of its
    topics, heartbeats) and ends it; `next_write` takes what is waiting as one write. The request thread
    writes it in the threaded way (functions/sse/resources.py); once its socket is handed over (`stream`)
    the poller itself writes it."""

    def __init__(self, topics: frozenset[str] | None, queue_size: int, start_id: int,
                 credential: Hashable | None = None, heartbeat_s: float | None = None,
                 max_duration_s: float = 0):
        self.topics = topics
        self.start_id = start_id  # the hub's position when subscribed: live changes come after it
        # The last change id sent, or that the backlog will send: a change offered at or before it is not
        # sent again (the poller may offer what the backlog replay already read from the database).
        self.sent_id = start_id
        self.credential = credential  # whose stream this is (None: nobody's to check)
        self.queue: queue.Queue[OfferedChange | object | None] = queue.Queue(maxsize=queue_size)
        self.ended: str | None = None  # why the hub ended this stream, once it has
        self.heartbeat_s = heartbeat_s
        self.ends_at = time.monotonic() + max_duration_s if max_duration_s else None
        self.last_offered = time.monotonic()
        self.stream: SocketStream | None = None  # the socket the poller writes to, once handed over

    @property
    def overflowed(self) -> bool:
        return self.ended == OVERFLOWED

    def wants(self, change: dict[str, Any]) -> bool:
        return self.topics is None or change["topic"] in self.topics

    def offer(self, change: OfferedChange | object) -> bool:
        """Queue a change (or a heartbeat) for this stream; whether it took it."""
        if self.ended or (change is not HEARTBEAT_DUE and not self.wants(change)):
            return False
        try:
            self.queue.put_nowait(change)
        except queue.Full:
            # Never block the poller (and so every other stream) on one slow reader.
            self.ended = OVERFLOWED
            return False
        self.last_offered = time.monotonic()
        return True

    def due(self) -> float:
        """When the hub must next look at this stream (its heartbeat, its end), on the monotonic clock."""
        heartbeat = self.last_offered + self.heartbeat_s if self.heartbeat_s else float("inf")
        return min(heartbeat, self.ends_at or float("inf"))

    def end(self, reason: str) -> None:
        """End the stream: its writer wakes (None in its queue) and stops, and its client reconnects."""
        self.ended = self.ended or reason
        with contextlib.suppress(queue.Full):  # full: the reader has plenty to wake it
            self.queue.put_nowait(None)

    def next_write(self, block: bool) -> bytes | None:
        """What is waiting, as one write (at most WRITE_MAX changes, each after `sent_id`); b"" when
        nothing is (without `block`), None once the stream has ended."""
        waiting = []
        with contextlib.suppress(queue.Empty):
            if block or not self.queue.empty():
                waiting.append(self.queue.get(block=block))
                while waiting[-1] is not None and len(waiting) < WRITE_MAX and not self.queue.empty():
                    waiting.append(self.queue.get_nowait())
        if self.ended:
            return None  # what still waits is the reconnecting client's to read from the feed
        parts = []
        for item in waiting:
            if item is HEARTBEAT_DUE:
                parts.append(frames.HEARTBEAT)
            elif item is not None and item["id"] > self.sent_id:
                parts.append(item.frame)
                self.sent_id = item["id"]
        return b"".join(parts)


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
        self._next_due = float("inf")  # when a stream next needs a heartbeat or its end
        self._handed_over: list[Subscription] = []  # streams whose socket the current poller has yet to take
        _hubs.add(self)

    # Streams ------------------------------------------------------------------------------------------

    def subscribe(self, topics: Iterable[str] | None = None, credential: Hashable | None = None,
                  heartbeat_s: float | None = None, max_duration_s: float = 0) -> Subscription:
        with self._lock:
            # Under the lock the poller dispatches (and decides to stop) under: every change after
            # `position` will be offered, by this poller or by the one started here.
            self._ensure_polling()
            subscription = Subscription(frozenset(topics) if topics else None, self.queue_size, self.position,
                                        credential, heartbeat_s, max_duration_s)
            self._subscriptions.add(subscription)
            self._next_due = min(self._next_due, subscription.due())
        # "Now" is the feed's newest id, read after subscribing, even if the poller has not caught up
        # yet: changes up to it are in the database (the backlog), later ones will be offered.
        subscription.start_id = subscription.sent_id = max(subscription.start_id, latest_change_id())
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions.discard(subscription)

    def hand_over(self, subscription: Subscription, stream: SocketStream) -> bool:
        """From now on the poller writes this stream, to `stream`: what was queued meanwhile first (its
        ids after `sent_id`, so nothing is sent twice or skipped). False when the stream has ended
        already (the caller ends it)."""
        with self._lock:
            if subscription.ended or subscription not in self._subscriptions:
                return False
            subscription.stream = stream
            self._handed_over.append(subscription)
            listener = self._listener
        if listener is not None:
            listener.wake()
        return True

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
        # Made here, not in the thread, so that a stream handed over at once can wake it; and each poller
        # has its own list of streams to take, so that one winding down never takes the next one's.
        self._listener, self._handed_over = listener_for(database.obj), []
        self._thread = threading.Thread(target=self._run, args=(self._listener, self._handed_over),
                                        name="feed-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End every stream and stop the poller (its handed-over streams are closed on the way out)."""
        self._end_every_stream(SERVER_STOPPING)
        self._stopping.set()
        thread, listener = self._thread, self._listener
        if listener is not None:
            listener.wake()
        if thread is not None:
            thread.join(timeout=5)

    def _run(self, listener: Listener, handed_over: list[Subscription]) -> None:
        last_version = None
        credentials_checked = time.monotonic()
        # The poller waits for a commit (every writer's, in any process, pokes its listener:
        # shared/store/wakeup.py), and for the sockets it writes to become writable or readable.
        # The interval is the safety net for a lost poke, and the pace of the credential checks.
        writer = StreamWriter(listener)
        try:
            database.connect(reuse_if_open=True)
            while True:
                writer.wait(self.poll_interval_s)
                writer.take(self._take(handed_over))
                if self._stopping.is_set():
                    return
                if not self._still_needed():
                    self._winding_down()
                    return
                if time.monotonic() - credentials_checked >= CREDENTIAL_CHECK_S:
                    self._end_streams_of_dead_credentials()
                    credentials_checked = time.monotonic()
                writer.write(self._heartbeats_and_ends())
                version = self._data_version()
                if version is None or version != last_version:
                    last_version = version
                    self._poll_once(writer)
                writer.close_ended(self.unsubscribe)
        except Exception:
            log.exception("the feed poller stopped on an error: its streams end, and their clients resume")
            self._end_every_stream(POLLER_FAILED)
        finally:
            writer.take(self._take(handed_over))
            for subscription in writer.streams:  # nobody would write them any more
                subscription.end(SERVER_STOPPING)
            writer.close_ended(self.unsubscribe)
            writer.close()
            listener.close()
            database.close()

    def _take(self, handed_over: list[Subscription]) -> list[Subscription]:
        with self._lock:
            taken = handed_over[:]
            handed_over.clear()
        return taken

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
            listener = self._listener
        if listener is not None:
            listener.wake()  # the poller closes the handed-over ones

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

    def _heartbeats_and_ends(self) -> list[Subscription]:
        """Queue a heartbeat for every stream that has sent nothing for its interval, and end those past
        their time limit; return the handed-over streams that have something new to write."""
        now = time.monotonic()
        if now < self._next_due:
            return []
        touched = []
        with self._lock:
            for subscription in self._subscriptions:
                if subscription.ends_at is not None and now >= subscription.ends_at:
                    subscription.end(TIME_LIMIT)
                elif (subscription.heartbeat_s and now - subscription.last_offered >= subscription.heartbeat_s
                      and subscription.offer(HEARTBEAT_DUE) and subscription.stream is not None):
                    touched.append(subscription)
            self._next_due = min((s.due() for s in self._subscriptions if not s.ended), default=float("inf"))
        return touched

    def _data_version(self) -> int | None:
        if not is_sqlite():
            return None  # PostgreSQL: read the feed every tick (an indexed id > n query)
        return database.execute_sql("PRAGMA data_version").fetchone()[0]

    def _poll_once(self, writer: StreamWriter) -> None:
        while True:
            changes = changes_since(self.position, limit=FETCH_BATCH)
            if not changes:
                return
            touched = set()
            with self._lock:
                for change in map(OfferedChange, changes):
                    for subscription in self._subscriptions:
                        if subscription.offer(change) and subscription.stream is not None:
                            touched.add(subscription)
                self.position = changes[-1]["id"]
            # Written after the whole batch: a stream with several changes waiting sends them in one write.
            writer.write(touched)
            if len(changes) < FETCH_BATCH:
                return


class StreamWriter:
    """The poller's side of the handed-over streams: one selector over their sockets and its listener.
    A stream's socket is watched for reading (its client leaving) and, while a write waits on a full
    socket, for writing; the next changes wait in the stream's queue meanwhile."""

    def __init__(self, listener: Listener):
        self.listener = listener
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ, None)
        self.streams: set[Subscription] = set()

    def wait(self, timeout_s: float) -> None:
        for key, events in self.selector.select(timeout_s):
            subscription = key.data
            if subscription is None:
                self.listener.drain()
                continue
            if events & selectors.EVENT_READ and subscription.stream.client_left():
                subscription.end(CLIENT_LEFT)
            elif events & selectors.EVENT_WRITE:
                self.write([subscription])

    def take(self, subscriptions: list[Subscription]) -> None:
        """Start writing these handed-over streams: the socket becomes non-blocking and watched."""
        for subscription in subscriptions:
            self.streams.add(subscription)
            if subscription.ended:
                continue  # closed by close_ended
            subscription.stream.sock.setblocking(False)
            self.selector.register(subscription.stream, selectors.EVENT_READ, subscription)
            self.write([subscription])

    def write(self, subscriptions: Iterable[Subscription]) -> None:
        """Send each stream what waits for it, as far as its socket takes it without waiting."""
        for subscription in subscriptions:
            if subscription not in self.streams:
                continue  # handed over since this tick took the new ones: `take` writes it next tick
            stream = subscription.stream
            try:
                while stream.flush():
                    data = subscription.next_write(block=False)
                    if not data:
                        break  # nothing more, or ended (then close_ended closes it)
                    stream.write(data)
            except OSError:  # the connection failed: the client is gone
                subscription.end(CLIENT_LEFT)
                continue
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if stream.unsent else 0)
            if self.selector.get_key(stream).events != events:
                self.selector.modify(stream, events, subscription)

    def close_ended(self, unsubscribe: Callable[[Subscription], None]) -> None:
        for subscription in [s for s in self.streams if s.ended]:
            self.streams.discard(subscription)
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(subscription.stream)
            unsubscribe(subscription)
            subscription.stream.close(clean=subscription.ended not in CUT_OFF)

    def close(self) -> None:
        self.selector.close()


_hubs: weakref.WeakSet[FeedHub] = weakref.WeakSet()  # every hub of this process


def end_every_stream_in_this_process() -> None:
    """The server is stopping: every open stream of this process ends now, cleanly, instead of holding
    its thread (and so the stop) until gunicorn's graceful timeout. Browsers reconnect and resume by id."""
    for hub in list(_hubs):
        hub._end_every_stream(SERVER_STOPPING)


def stop_every_hub_in_this_process() -> None:
    """End every stream and wait (a few seconds at most) for each poller to close its streams' sockets."""
    for hub in list(_hubs):
        hub.stop()
