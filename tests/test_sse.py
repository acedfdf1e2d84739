"""GET /api/stream in-process: auth, frames, resume by id, resets, topics, heartbeats, slow readers.

Each stream here is bounded by `sse_max_stream_s` so the in-process client can read it whole; real,
endless streams across gunicorn processes are in test_sse_end_to_end.py.
"""

from __future__ import annotations

import threading
import time

import pytest
from falcon import testing

import functions.sse
from functions.sse.credentials import SESSION, Credential, StreamCredentials
from functions.sse.hub import FeedHub
from shared.store.db import database, write_transaction
from shared.store.feed import prune_changes, record_change
from shared.store.models import AuthSession, Change
from shared.web.auth import DASHBOARD as DASHBOARD_KIND
from shared.web.auth import Authentication, ensure_credentials
from shared.web.sessions import ensure_local_user, revoke_session, start_session
from tests.sse_client import parse_frames
from tests.support import AGENT, DASHBOARD, assert_canonical_error

SECRET = "a-signing-key-for-the-tests-0123456789"


@pytest.fixture
def stream_settings(settings):
    return settings.with_overrides(secret_key=SECRET, sse_max_stream_s=0.3, sse_heartbeat_s=0.1,
                                   sse_poll_interval_s=0.01)


@pytest.fixture
def hub(stream_settings):
    hub = FeedHub(stream_settings.sse_poll_interval_s, stream_settings.sse_queue_size)
    yield hub
    hub.stop()


@pytest.fixture
def client(stream_settings, db, hub):
    return testing.TestClient(functions.sse.create_app(stream_settings, hub=hub))


def record(*topics):
    with database.connection_context(), write_transaction():
        return [record_change(topic, "test", {"n": n}) for n, topic in enumerate(topics)]


def stream(client, headers=DASHBOARD, **params):
    response = client.simulate_get("/api/stream", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return parse_frames(response.text)


def changes(frames):
    return [frame for frame in frames if frame.id is not None]


# Authentication --------------------------------------------------------------------------------------------

def test_a_stream_without_credentials_is_401(client):
    assert_canonical_error(client.simulate_get("/api/stream"), 401, "unauthorized")


def test_the_agents_api_key_does_not_open_a_stream(client):
    assert_canonical_error(client.simulate_get("/api/stream", headers=AGENT), 401)


def test_a_session_cookie_opens_a_stream(client):
    with write_transaction():
        token = start_session(ensure_local_user())
    response = client.simulate_get("/api/stream", cookies={"ocd_session": token})
    assert response.status_code == 200


def test_a_stream_token_opens_a_stream_without_headers(client):
    issued = client.simulate_post("/api/stream/token", headers=DASHBOARD)
    assert issued.status_code == 201
    assert issued.json["expires_in"] == 300
    assert DASHBOARD["Authorization"][7:] not in issued.json["token"]
    assert client.simulate_get("/api/stream", params={"token": issued.json["token"]}).status_code == 200


def test_issuing_a_stream_token_needs_the_dashboard_token(client):
    assert_canonical_error(client.simulate_post("/api/stream/token", headers=AGENT), 401)


def test_an_expired_stream_token_is_401(client, monkeypatch):
    with monkeypatch.context() as past:
        past.setattr(time, "time", lambda: 1_000_000_000.0)
        token = client.simulate_post("/api/stream/token", headers=DASHBOARD).json["token"]
    assert_canonical_error(client.simulate_get("/api/stream", params={"token": token}), 401, "token_expired")


def test_a_tampered_stream_token_is_401(client):
    token = client.simulate_post("/api/stream/token", headers=DASHBOARD).json["token"]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert_canonical_error(client.simulate_get("/api/stream", params={"token": forged}), 401, "unauthorized")


# The frames ------------------------------------------------------------------------------------------------

def test_the_stream_is_an_uncached_event_stream_with_a_retry_hint(client):
    response = client.simulate_get("/api/stream", headers=DASHBOARD)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    frames = parse_frames(response.text)
    assert frames[0].retry == 2000
    assert any(frame.comment == "ping" for frame in frames)  # heartbeats while nothing happens


def test_a_change_made_while_streaming_arrives_with_its_id_and_topic(client):
    writer = threading.Timer(0.1, record, args=("todo",))
    writer.start()
    frames = stream(client)
    writer.join()
    (frame,) = changes(frames)
    change = Change.get()
    assert (frame.id, frame.event) == (change.id, "todo")
    assert frame.data == {"id": change.id, "topic": "todo", "action": "test", "payload": {"n": 0},
                          "created_at": change.to_json()["created_at"]}


def test_a_fresh_stream_starts_from_now(client):
    record("todo", "agent")
    assert changes(stream(client)) == []


# Resuming --------------------------------------------------------------------------------------------------

def test_last_event_id_resumes_with_exactly_the_missed_changes_in_order(client):
    ids = record("todo", "agent", "task", "todo", "session")
    frames = stream(client, headers={**DASHBOARD, "Last-Event-ID": str(ids[1])})
    assert [frame.id for frame in changes(frames)] == ids[2:]


def test_last_event_id_may_be_a_query_parameter(client):
    ids = record("todo", "agent")
    assert [f.id for f in changes(stream(client, last_event_id=ids[0]))] == ids[1:]


def test_topics_filter_the_stream_and_its_backlog(client):
    ids = record("todo", "agent", "task", "agent")
    frames = stream(client, last_event_id=0, topics="agent,task")
    assert [(f.id, f.event) for f in changes(frames)] == [(ids[1], "agent"), (ids[2], "task"), (ids[3], "agent")]


def test_a_client_away_longer_than_the_retention_is_told_to_reset(client):
    ids = record("todo", "todo", "todo")
    Change.update(created_at=0).where(Change.id <= ids[1]).execute()
    with database.connection_context():
        assert prune_changes(older_than_s=3600) == 2
    frames = stream(client, last_event_id=ids[0])
    assert frames[1].event == "reset"
    assert frames[1].id == ids[2]
    assert changes(frames)[1:] == []  # nothing after the reset: the client reloads and goes on from there


def test_a_client_that_saw_every_change_before_pruning_resumes_normally(client):
    ids = record("todo", "todo")
    Change.update(created_at=0).where(Change.id == ids[0]).execute()
    with database.connection_context():
        prune_changes(older_than_s=3600)
    assert [f.id for f in changes(stream(client, last_event_id=ids[0]))] == [ids[1]]


def test_an_id_from_the_future_is_a_reset(client):
    record("todo")
    frames = stream(client, last_event_id=999_999)
    assert [f.event for f in changes(frames)] == ["reset"]


@pytest.mark.parametrize("last_event_id", ["abc", "\u00b2", str(2**64)])
def test_a_malformed_last_event_id_is_400(client, last_event_id):
    # '²' passed str.isdigit() and was a 500 from int(); found while running schemathesis.
    assert_canonical_error(client.simulate_get("/api/stream", params={"last_event_id": last_event_id},
                                               headers=DASHBOARD), 400, field="last_event_id")


def test_a_malformed_last_event_id_is_400_even_beside_a_good_header(client):
    # Found by schemathesis: the header won, and a malformed ?last_event_id= beside it was ignored.
    response = client.simulate_get("/api/stream", params={"last_event_id": "\u00a0x"},
                                   headers={**DASHBOARD, "Last-Event-ID": "1"})
    assert_canonical_error(response, 400, field="last_event_id")


# The hub ---------------------------------------------------------------------------------------------------

def wait_for(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_one_poller_fans_out_to_every_subscriber_and_drops_only_the_slow_one(db):
    hub = FeedHub(poll_interval_s=0.01, queue_size=3)
    try:
        slow, fast = hub.subscribe(), hub.subscribe()
        fast.queue.maxsize = 100
        ids = record(*["todo"] * 5)
        wait_for(lambda: fast.queue.qsize() == 5)
        assert [fast.queue.get()["id"] for _ in range(5)] == ids
        assert slow.overflowed and not fast.overflowed
    finally:
        hub.stop()


def test_a_slow_stream_ends_cleanly_instead_of_blocking(stream_settings, db):
    hub = FeedHub(poll_interval_s=0.01, queue_size=2)
    app = functions.sse.create_app(stream_settings.with_overrides(sse_max_stream_s=30), hub=hub)
    writer = threading.Timer(0.1, record, args=tuple(["todo"] * 10))
    writer.start()
    response = testing.TestClient(app).simulate_get("/api/stream", headers=DASHBOARD)
    writer.join()
    hub.stop()
    assert response.status_code == 200
    # It ended on overflow with changes still unsent (run to its 30 s bound, it would have sent all ten);
    # the browser resumes from the last id it got.
    assert len([frame for frame in parse_frames(response.text) if frame.id is not None]) < 10


def test_a_closed_stream_frees_its_subscription_at_once(stream_settings, db):
    hub = FeedHub(poll_interval_s=0.01, queue_size=10)
    resource = functions.sse.resources.StreamResource(stream_settings, hub, credentials=None)
    frames = resource.frames(topics=None, last_event_id=None)
    next(frames)
    assert hub.subscriber_count == 1
    frames.close()
    assert hub.subscriber_count == 0
    hub.stop()


def drain(frames, deadline_s=30.0):
    """Read a stream's frames until the server ends it; fail if it never does."""
    deadline = time.monotonic() + deadline_s
    received = []
    for frame in frames:
        received.append(frame)
        assert time.monotonic() < deadline, "the stream never ended"
    return received


def test_a_stream_that_subscribes_while_the_poller_winds_down_still_gets_changes(stream_settings, db):
    hub = FeedHub(poll_interval_s=0.01, queue_size=10, idle_stop_s=0.05)
    winding, carry_on = threading.Event(), threading.Event()

    def held_while_winding_down():
        winding.set()
        carry_on.wait(30)

    hub._winding_down = held_while_winding_down
    try:
        hub.unsubscribe(hub.subscribe())  # a poller starts, then has nobody left...
        assert winding.wait(30)  # ...and decides to stop: held here, still alive
        late = hub.subscribe()
        carry_on.set()
        (change_id,) = record("todo")
        wait_for(lambda: late.queue.qsize() == 1, timeout=30)
        assert late.queue.get()["id"] == change_id
    finally:
        carry_on.set()
        hub.stop()


def test_a_poller_that_dies_ends_its_streams_and_they_resume_by_id(stream_settings, db, monkeypatch):
    hub = FeedHub(poll_interval_s=0.01, queue_size=10)
    resource = functions.sse.resources.StreamResource(stream_settings.with_overrides(sse_max_stream_s=0), hub,
                                                      credentials=None)
    streams = [resource.frames(topics=None, last_event_id=None) for _ in range(3)]
    for frames in streams:
        next(frames)  # subscribed
    (seen,) = record("todo")
    for frames in streams:
        assert next(f for f in frames if f != functions.sse.frames.HEARTBEAT).startswith(f"id: {seen}".encode())

    def broken_feed(*args, **kwargs):
        raise RuntimeError("the feed query failed")

    monkeypatch.setattr(functions.sse.hub, "changes_since", broken_feed)
    (missed,) = record("agent")  # the poller reads it, fails and dies
    for frames in streams:
        assert not any(f.startswith(b"id:") for f in drain(frames))  # ended, not silent
    assert hub.subscriber_count == 0
    monkeypatch.undo()

    resumed = resource.frames(topics=None, last_event_id=seen)  # what the browser does next
    next(resumed)
    assert next(resumed).startswith(f"id: {missed}".encode())
    (later,) = record("task")  # and a new poller carries the live changes again
    assert next(f for f in resumed if f != functions.sse.frames.HEARTBEAT).startswith(f"id: {later}".encode())
    resumed.close()
    hub.stop()


# Sign-out -------------------------------------------------------------------------------------------------

def session_headers():
    with write_transaction():
        return {"Authorization": f"Bearer {start_session(ensure_local_user())}"}


def revoke_all_sessions():
    with write_transaction():
        for session in AuthSession.select():
            revoke_session(session)


def test_a_stream_token_is_refused_once_its_session_is_signed_out(client):
    token = client.simulate_post("/api/stream/token", headers=session_headers()).json["token"]
    assert client.simulate_get("/api/stream", params={"token": token}).status_code == 200
    revoke_all_sessions()
    for _ in range(3):
        assert_canonical_error(client.simulate_get("/api/stream", params={"token": token}), 401, "unauthorized")


def test_a_stream_token_expires_at_its_ttl_to_the_second(client, monkeypatch):
    issued_at = 1_900_000_000.9
    monkeypatch.setattr(time, "time", lambda: issued_at)
    token = client.simulate_post("/api/stream/token", headers=DASHBOARD).json["token"]
    monkeypatch.setattr(time, "time", lambda: issued_at + 300)  # STREAM_TOKEN_TTL_S, to the second
    assert_canonical_error(client.simulate_get("/api/stream", params={"token": token}), 401, "token_expired")


def test_a_longer_ttl_setting_does_not_lengthen_a_token_already_issued(stream_settings, db, hub, monkeypatch):
    issued_at = 1_900_000_000.0
    monkeypatch.setattr(time, "time", lambda: issued_at)
    short = testing.TestClient(functions.sse.create_app(stream_settings.with_overrides(stream_token_ttl_s=60),
                                                        hub=hub))
    token = short.simulate_post("/api/stream/token", headers=DASHBOARD).json["token"]
    longer = testing.TestClient(functions.sse.create_app(stream_settings.with_overrides(stream_token_ttl_s=3600),
                                                         hub=hub))
    monkeypatch.setattr(time, "time", lambda: issued_at + 61)
    assert_canonical_error(longer.simulate_get("/api/stream", params={"token": token}), 401, "token_expired")


def test_an_open_stream_ends_when_its_session_is_signed_out(stream_settings, db, hub):
    app = testing.TestClient(functions.sse.create_app(stream_settings.with_overrides(sse_max_stream_s=0), hub=hub))
    headers = session_headers()
    session = AuthSession.get()
    resource = functions.sse.resources.StreamResource(stream_settings, hub, credentials=None)
    frames = resource.frames(None, None, Credential(SESSION, session.id))
    next(frames)
    revoke_all_sessions()
    drain(frames)
    assert hub.subscriber_count == 0
    assert_canonical_error(app.simulate_get("/api/stream", headers=headers), 401)


def test_a_stream_on_the_generated_dashboard_token_ends_when_the_token_is_rotated(stream_settings, db, hub):
    generated = stream_settings.with_overrides(dashboard_token=None, sse_max_stream_s=0)
    with write_transaction():
        token = ensure_credentials(generated, rotate=frozenset({DASHBOARD_KIND}))[DASHBOARD_KIND]
    app = testing.TestClient(functions.sse.create_app(generated, hub=hub))
    issued = app.simulate_post("/api/stream/token", headers={"Authorization": f"Bearer {token}"}).json["token"]
    credentials = StreamCredentials(generated, Authentication(generated))
    frames = functions.sse.resources.StreamResource(generated, hub, credentials).frames(
        None, None, credentials.dashboard_token())
    next(frames)
    with write_transaction():
        ensure_credentials(generated, rotate=frozenset({DASHBOARD_KIND}))
    drain(frames)
    assert_canonical_error(app.simulate_get("/api/stream", params={"token": issued}), 401)
