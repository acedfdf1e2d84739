"""GET /api/stream (the live change feed as Server-Sent Events) and POST /api/stream/token."""

from __future__ import annotations

import contextlib
import queue
import time
from collections.abc import Generator, Iterator

import falcon

from functions.sse import frames
from functions.sse.credentials import Credential, StreamCredentials
from functions.sse.hub import FeedHub, Subscription
from functions.sse.tokens import issue_stream_token, verify_stream_token
from shared.clock import iso_from_unix
from shared.config import Settings
from shared.store.db import database
from shared.store.feed import changes_since, latest_change_id, pruned_through
from shared.web.auth import DASHBOARD, PUBLIC, require_signing_key
from shared.web.errors import ApiError, bad_query
from shared.web.long_requests import Slot, long_request_budget
from shared.web.query import list_param, whole_number

BACKLOG_PAGE = 500
RECONNECT_HINT_MS = 2000
LIVE_WRITE_MAX = 100  # changes sent in one write when a stream has several waiting


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
    (the hub checks). It holds a thread for as long as it is open, so it takes a place in the worker's
    budget for long requests: past it, a 503 with Retry-After (shared/web/long_requests.py)."""

    auth = PUBLIC

    def __init__(self, settings: Settings, hub: FeedHub, credentials: StreamCredentials):
        self.settings = settings
        self.hub = hub
        self.credentials = credentials

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        credential = self.authenticate(req)
        last_event_id = requested_resume_id(req)
        topics = list_param(req, "topics") or None
        slot = long_request_budget().hold(self.settings.long_request_slots)
        resp.content_type = "text/event-stream; charset=utf-8"
        resp.set_header("Cache-Control", "no-cache")
        resp.set_header("X-Accel-Buffering", "no")  # nginx and friends: don't hold frames back
        # The frames are made after the request's middleware has closed its connection: they use their own.
        resp.stream = HeldStream(self.frames(topics, last_event_id, credential), slot)

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

    def frames(self, topics: list[str] | None, last_event_id: int | None,
               credential: Credential | None = None) -> Iterator[bytes]:
        subscription = self.hub.subscribe(topics, credential)
        try:
            yield frames.retry_frame(RECONNECT_HINT_MS)
            with database.connection_context():
                sent_id = yield from self.catch_up(subscription, topics, last_event_id)
            yield from self.live(subscription, sent_id)
        finally:
            # Also runs when the client goes away: the server closes this generator at its next write.
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

    def live(self, subscription: Subscription, sent_id: int) -> Iterator[bytes]:
        heartbeat = self.settings.sse_heartbeat_s
        limit = self.settings.sse_max_stream_s
        ends_at = time.monotonic() + limit if limit else None
        while not subscription.ended:
            wait = heartbeat if ends_at is None else min(heartbeat, ends_at - time.monotonic())
            if wait <= 0:
                return
            try:
                waiting = [subscription.queue.get(timeout=wait)]
            except queue.Empty:  # nothing new: keep the connection (and proxies, tunnels) warm
                yield frames.HEARTBEAT
                continue
            # Whatever else has queued meanwhile goes in the same write: a stream that fell behind (many
            # streams, a burst of changes) catches up in one write, not one per change.
            with contextlib.suppress(queue.Empty):
                while waiting[-1] is not None and len(waiting) < LIVE_WRITE_MAX:
                    waiting.append(subscription.queue.get_nowait())
            fresh = [change for change in waiting if change is not None and change["id"] > sent_id]
            if fresh:
                yield b"".join(change.frame for change in fresh)
                sent_id = fresh[-1]["id"]
        # Ended by the hub (overflowed, its poller failed, its credential ended): end cleanly. The client
        # reconnects with Last-Event-ID, is authenticated again and catches up from the feed.


class HeldStream:
    """A stream's frames, holding its place in the long-request budget until the server closes it —
    even if it closes it before the first frame, when a generator's own `finally` would never run."""

    def __init__(self, frames: Iterator[bytes], slot: Slot):
        self.frames = frames
        self.slot = slot

    def __iter__(self) -> Iterator[bytes]:
        return self.frames

    def close(self) -> None:
        try:
            self.frames.close()
        finally:
            self.slot.release()


def requested_resume_id(req: falcon.Request) -> int | None:
    """The header (which EventSource sends when it reconnects) wins over `?last_event_id=`, but a
    malformed value in either is a 400 rather than silently ignored."""
    ids = [event_id(raw) for raw in (req.get_header("Last-Event-ID"), req.get_param("last_event_id")) if raw]
    return ids[0] if ids else None


def event_id(raw: str) -> int:
    if (value := whole_number(raw)) is None:
        raise bad_query("last_event_id", "Last-Event-ID must be the id of an event this stream sent")
    return value

