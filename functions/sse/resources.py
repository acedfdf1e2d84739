"""GET /api/stream (the live change feed as Server-Sent Events) and POST /api/stream/token."""

from __future__ import annotations

from collections.abc import Generator, Iterator

import falcon

from functions.sse import frames
from functions.sse.credentials import Credential, StreamCredentials
from functions.sse.hub import FeedHub, Subscription
from functions.sse.socket_stream import SocketStream
from functions.sse.tokens import issue_stream_token, verify_stream_token
from shared.clock import iso_from_unix
from shared.config import Settings
from shared.store.db import database
from shared.store.feed import changes_since, latest_change_id, pruned_through
from shared.web.auth import DASHBOARD, PUBLIC, require_signing_key
from shared.web.errors import ApiError, bad_query
from shared.web.handover import TAKE_SOCKET, TakeSocket
from shared.web.long_requests import Slot, long_request_budget, stream_budget
from shared.web.query import list_param, whole_number

BACKLOG_PAGE = 500
RECONNECT_HINT_MS = 2000


class StreamTokenResource:
    """POST /api/stream/token — a token for `?token=`, valid for minutes and while the caller's session is."""

    def __init__(self, settings: Settings, credentials: StreamCredentials):
        self.settings = settings
        self.credentials = credentials

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        ttl = self.settings.stream_token_ttl_s
        token, expires_at = issue_stream_token(require_signing_key(self.settings), self.credentials.of(req), ttl)
        resp.media = {"token": token, "expires_in": ttl, "expires_at": iso_from_unix(int(expires_at))}
        resp.status = falcon.HTTP_201


class StreamResource:
    """GET /api/stream[?topics=a,b][&last_event_id=N][&token=...] — text/event-stream.

    Authenticates itself (hence PUBLIC to the middleware): a dashboard token or session as for every
    dashboard route, or a stream token in the query string. The stream ends when that credential does
    (the hub checks). It holds a thread while it sends its headers and replays its backlog, then hands
    its connection to the process's feed poller, which writes it from then on with every other stream
    (shared/web/handover.py; under a server that cannot, it keeps its thread and writes the same frames
    itself). So it takes a place in the worker's budget for long requests for that while, and one among
    the worker's open streams for as long as it is open: past either, a 503 with Retry-After
    (shared/web/long_requests.py)."""

    auth = PUBLIC

    def __init__(self, settings: Settings, hub: FeedHub, credentials: StreamCredentials):
        self.settings = settings
        self.hub = hub
        self.credentials = credentials

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        credential = self.authenticate(req)
        last_event_id = requested_resume_id(req)
        topics = list_param(req, "topics") or None
        open_slot = stream_budget().hold(self.settings.streams)
        try:
            thread_slot = long_request_budget().hold(self.settings.long_request_slots)
        except ApiError:
            open_slot.release()
            raise
        resp.content_type = "text/event-stream; charset=utf-8"
        resp.set_header("Cache-Control", "no-cache")
        resp.set_header("X-Accel-Buffering", "no")  # nginx and friends: don't hold frames back
        # The frames are made after the request's middleware has closed its connection: they use their own.
        resp.stream = HeldStream(self.frames(topics, last_event_id, credential, req.env.get(TAKE_SOCKET), open_slot),
                                 thread_slot, open_slot)

    def authenticate(self, req: falcon.Request) -> Credential:
        token = req.get_param("token")
        if token is None:
            self.credentials.authentication.require(req, DASHBOARD)
            return self.credentials.of(req)
        credential = verify_stream_token(require_signing_key(self.settings), token)
        if self.credentials.dead({credential}):
            raise ApiError(401, "unauthorized", "The session that asked for this stream token has ended "
                           "(signed out or expired); sign in again.", headers={"WWW-Authenticate": "Bearer"})
        return credential

    def frames(self, topics: list[str] | None, last_event_id: int | None, credential: Credential | None = None,
               take_socket: TakeSocket | None = None, open_slot: Slot | None = None) -> Iterator[bytes]:
        subscription = self.hub.subscribe(topics, credential, self.settings.sse_heartbeat_s,
                                          self.settings.sse_max_stream_s)
        handed_over = False
        try:
            yield frames.retry_frame(RECONNECT_HINT_MS)
            with database.connection_context():
                subscription.sent_id = yield from self.catch_up(subscription, topics, last_event_id)
            # What the poller queued meanwhile waits in the subscription, and goes first (after sent_id).
            handed_over = take_socket is not None and self.hand_over(subscription, take_socket, open_slot)
            if not handed_over:
                yield from self.live(subscription)
        finally:
            # Also runs when the client goes away: the server closes this generator at its next write.
            if not handed_over:
                self.hub.unsubscribe(subscription)

    def catch_up(self, subscription: Subscription, topics: list[str] | None,
                 last_event_id: int | None) -> Generator[bytes, None, int]:
        """Send what the client missed, up to where live delivery starts; return the last id sent."""
        live_from = subscription.start_id
        if last_event_id is None:
            return live_from
        if last_event_id < pruned_through() or last_event_id > max(live_from, latest_change_id()):
            # The changes it missed are gone (pruned, or another database): a gap must never be silent.
            yield frames.event_frame("reset", {"reason": "the changes since your last event are no longer "
                                               "available; reload", "last_event_id": live_from},
                                     event_id=live_from)
            return live_from
        cursor = last_event_id
        while cursor < live_from:
            page = [c for c in changes_since(cursor, topics, limit=BACKLOG_PAGE) if c["id"] <= live_from]
            if not page:
                break
            for change in page:
                yield frames.change_frame(change)
            cursor = page[-1]["id"]
        return max(last_event_id, live_from)

    def hand_over(self, subscription: Subscription, take_socket: TakeSocket, open_slot: Slot | None) -> bool:
        """Give the connection to the feed poller, which writes the stream from now on; whether it was
        taken (False: this server cannot, and this thread goes on writing it)."""
        taken = take_socket()
        if taken is None:
            return False
        sock, chunked = taken
        stream = SocketStream(sock, chunked, on_close=open_slot.transfer().release if open_slot else lambda: None)
        if not self.hub.hand_over(subscription, stream):
            stream.close(clean=True)  # it ended meanwhile (sign-out, server stopping): its client resumes
        return True

    def live(self, subscription: Subscription) -> Iterator[bytes]:
        """The threaded way of writing a stream: this thread waits for what the poller queues (changes,
        heartbeats) and writes it, several waiting changes in one write."""
        while (data := subscription.next_write(block=True)) is not None:
            if data:
                yield data
        # Ended by the hub (overflowed, its poller failed, its credential ended, its time limit): end
        # cleanly. The client reconnects with Last-Event-ID, is authenticated again and catches up.


class HeldStream:
    """A stream's frames, holding its places in the budgets until the server closes it — even if it
    closes it before the first frame, when a generator's own `finally` would never run. (A stream
    handed over takes its place among the open streams with it: `Slot.transfer`.)"""

    def __init__(self, frames: Iterator[bytes], *slots: Slot):
        self.frames = frames
        self.slots = slots

    def __iter__(self) -> Iterator[bytes]:
        return self.frames

    def close(self) -> None:
        try:
            self.frames.close()
        finally:
            for slot in self.slots:
                slot.release()


def requested_resume_id(req: falcon.Request) -> int | None:
    """The header (which EventSource sends when it reconnects) wins over `?last_event_id=`, but a
    malformed value in either is a 400 rather than silently ignored."""
    ids = [event_id(raw) for raw in (req.get_header("Last-Event-ID"), req.get_param("last_event_id")) if raw]
    return ids[0] if ids else None


def event_id(raw: str) -> int:
    if (value := whole_number(raw)) is None:
        raise bad_query("last_event_id", "Last-Event-ID must be the id of an event this stream sent")
    return value

