"""Live streams across real gunicorn worker processes: every change reaches every stream, in order."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from itsdangerous import URLSafeTimedSerializer

from functions.sse.tokens import SALT
from tests.databases import database_url_in, run_sql
from tests.processes import gunicorn
from tests.sse_client import Stream
from tests.support import AGENT, API_KEY, DASHBOARD, DASHBOARD_TOKEN, event

SECRET = "stream-signing-key-for-e2e-0123456789"
STREAMS = 20
EVENTS = 40


@pytest.fixture(scope="module")
def server(tmp_path_factory, postgres_databases):
    url = database_url_in(tmp_path_factory.mktemp("sse"), postgres_databases)
    env = {"DASHBOARD_API_KEY": API_KEY, "DASHBOARD_TOKEN": DASHBOARD_TOKEN, "DASHBOARD_SECRET_KEY": SECRET,
           "SSE_HEARTBEAT_S": "1"}
    with gunicorn(url, env, workers=2) as running:
        running.database_url = url
        post_heartbeats(running, 1, "register")  # from now on each heartbeat is exactly one change
        yield running


def post_heartbeats(server, count, prefix):
    for n in range(count):
        status, _ = server.request("POST", "/api/events",
                                   event("agent.heartbeat", {"id": "e2e-agent"}, id=f"{prefix}-{n}"), AGENT)
        assert status == 202


def change_ids(server, after=0):
    rows = run_sql(server.database_url, f"SELECT id FROM changes WHERE id > {int(after)} ORDER BY id")
    return [row[0] for row in rows]


def latest_id(server):
    return (change_ids(server) or [0])[-1]


def collect(stream, count):
    received = []
    for frame in stream.changes():
        received.append(frame.id)
        if len(received) == count:
            break
    return received


def test_twenty_streams_on_two_workers_each_receive_every_change_in_order(server):
    start = latest_id(server)
    streams = [Stream(server.port, headers=DASHBOARD) for _ in range(STREAMS)]
    assert {stream.status for stream in streams} == {200}
    for stream in streams:
        stream.subscribed()  # every stream is subscribed before the first change
    expected_count = EVENTS
    with ThreadPoolExecutor(max_workers=STREAMS) as pool:
        futures = [pool.submit(collect, stream, expected_count) for stream in streams]
        post_heartbeats(server, EVENTS, "fanout")
        received = [future.result(timeout=30) for future in futures]
    for stream in streams:
        stream.close()
    expected = change_ids(server, after=start)
    assert len(expected) == expected_count
    assert all(ids == expected for ids in received)


def test_a_stream_that_reconnects_with_last_event_id_gets_exactly_what_it_missed(server):
    start = latest_id(server)
    first = Stream(server.port, headers=DASHBOARD).subscribed()
    reader = ThreadPoolExecutor(max_workers=1)
    before = reader.submit(collect, first, 5)
    post_heartbeats(server, 5, "before-drop")
    seen = before.result(timeout=30)
    first.close()  # the browser goes away mid-run...
    post_heartbeats(server, 7, "while-away")  # ...and misses these
    again = Stream(server.port, headers={**DASHBOARD, "Last-Event-ID": str(seen[-1])}).subscribed()
    after = reader.submit(collect, again, 7 + 3)
    post_heartbeats(server, 3, "after-return")
    resumed = after.result(timeout=30)
    again.close()
    everything = change_ids(server, after=start)
    assert seen + resumed == everything
    assert len(set(seen + resumed)) == len(seen + resumed)


def test_changes_from_a_writer_outside_gunicorn_reach_the_stream(server):
    stream = Stream(server.port, headers=DASHBOARD).subscribed()
    reader = ThreadPoolExecutor(max_workers=1).submit(collect, stream, 1)
    # Another process (the Temporal worker, the cron job) writes to the same database.
    run_sql(server.database_url, "INSERT INTO changes (topic, action, payload, created_at) "
                                 "VALUES ('linear.issue', 'updated', '{}', 0)")
    (received,) = reader.result(timeout=30)
    stream.close()
    assert received == latest_id(server)


def test_a_stream_without_auth_is_401(server):
    stream = Stream(server.port)
    assert stream.status == 401
    stream.close()


def test_an_expired_stream_token_is_401_and_a_fresh_one_streams(server, monkeypatch):
    with monkeypatch.context() as past:
        past.setattr(time, "time", lambda: 1_000_000_000.0)
        expired = URLSafeTimedSerializer(SECRET, salt=SALT).dumps({"scope": "stream"})
    stream = Stream(server.port, path=f"/api/stream?token={expired}")
    assert stream.status == 401
    stream.close()
    status, issued = server.request("POST", "/api/stream/token", headers=DASHBOARD)
    assert status == 201
    fresh = Stream(server.port, path=f"/api/stream?token={issued['token']}")
    assert fresh.status == 200
    fresh.close()


def test_heartbeats_keep_an_idle_stream_alive(server):
    stream = Stream(server.port, headers=DASHBOARD)
    frames = stream.frames()
    assert next(frames).retry is not None
    assert next(frames).comment == "ping"  # nothing else happens on the stream, yet it speaks
    stream.close()
