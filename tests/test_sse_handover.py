"""Streams handed over to the feed poller, over real gunicorn with one worker of four threads: more
streams than threads each get every change once and in order, a reader that stops reading is cut off
without holding back the others and resumes losing nothing, open streams have their own bound (a
closed one gives its place back), signing out closes handed-over streams, and a graceful stop ends them
cleanly."""

from __future__ import annotations

import http.client
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.databases import database_url_in, run_sql
from tests.processes import gunicorn
from tests.sse_client import Stream
from tests.support import AGENT, API_KEY, DASHBOARD, DASHBOARD_TOKEN, assert_canonical_error, event
from tests.test_capacity import refusal
from tests.test_sse_sign_out import as_browser, ended_streams, sign_in

SECRET = "stream-signing-key-for-handover-0123456789"
THREADS = 4
STREAMS = 24  # open at once in the worker: six times its threads
QUEUE_SIZE = 10  # changes a stream may fall behind by before it is cut off
DEADLINE_S = 60  # generous: a loaded 2-core machine
PADDING = "x" * 32000  # a large change fills a reader's buffers in few changes


@pytest.fixture(scope="module")
def server(tmp_path_factory, postgres_databases):
    url = database_url_in(tmp_path_factory.mktemp("handover"), postgres_databases)
    env = {"DASHBOARD_API_KEY": API_KEY, "DASHBOARD_TOKEN": DASHBOARD_TOKEN, "DASHBOARD_SECRET_KEY": SECRET,
           "SSE_HEARTBEAT_S": "1", "SSE_POLL_INTERVAL_S": "0.01", "SSE_QUEUE_SIZE": str(QUEUE_SIZE),
           "DASHBOARD_THREADS": str(THREADS), "DASHBOARD_API_THREADS": "2", "DASHBOARD_STREAMS": str(STREAMS)}
    with gunicorn(url, env, workers=1) as running:
        running.database_url = url
        post_heartbeat(running, "register")  # from now on each heartbeat is exactly one change
        yield running


def post_heartbeat(server, name: str) -> None:
    assert server.request("POST", "/api/events", event("agent.heartbeat", {"id": "handover"}, id=name),
                          AGENT)[0] == 202


def record_large_change(server) -> int:
    """A change written by another process (as the Temporal worker writes), large; its id."""
    run_sql(server.database_url, "INSERT INTO changes (topic, action, payload, created_at) "
                                 f"VALUES ('linear.issue', 'updated', '{{\"pad\": \"{PADDING}\"}}', 0)")
    return run_sql(server.database_url, "SELECT MAX(id) FROM changes")[0][0]


def change_ids(server, after: int = 0) -> list[int]:
    rows = run_sql(server.database_url, f"SELECT id FROM changes WHERE id > {int(after)} ORDER BY id")
    return [row[0] for row in rows]


def latest_id(server) -> int:
    return (change_ids(server) or [0])[-1]


def collect(stream: Stream, count: int) -> list[int]:
    received = []
    for frame in stream.changes():
        received.append(frame.id)
        if len(received) == count:
            break
    return received


def ids_until_cut(stream: Stream) -> list[int]:
    """The ids of the whole frames a stream got before the server ended or cut it."""
    received = []
    try:
        for frame in stream.changes():
            received.append(frame.id)
    except (OSError, http.client.HTTPException):  # a reset, or a frame cut in the middle
        pass
    return received


def test_more_streams_than_threads_each_get_every_change_once_in_order_while_api_calls_are_served(server):
    start = latest_id(server)
    streams = [Stream(server.port, headers=DASHBOARD).subscribed() for _ in range(STREAMS)]
    with ThreadPoolExecutor(max_workers=STREAMS) as pool:
        futures = [pool.submit(collect, stream, 20) for stream in streams]
        for n in range(20):
            post_heartbeat(server, f"many-{n}")
            assert server.send("GET", "/api/agents", headers=DASHBOARD).status_code == 200
        received = [future.result(timeout=DEADLINE_S) for future in futures]
    for stream in streams:
        stream.close()
    expected = change_ids(server, after=start)
    assert len(expected) == 20
    assert all(ids == expected for ids in received)


def test_a_reader_that_never_reads_is_cut_off_without_holding_back_the_others_and_resumes_losing_nothing(server):
    start = latest_id(server)
    slow = Stream(server.port, headers=DASHBOARD, receive_buffer=4096).subscribed()
    fast = Stream(server.port, headers=DASHBOARD).subscribed()
    fast_changes = fast.changes()
    slow_port = slow.connection.sock.getsockname()[1]
    deadline = time.monotonic() + DEADLINE_S * 3
    while server.worker_serving(slow_port) is not None:  # until the server has let the slow one go
        assert time.monotonic() < deadline, "a reader that never reads was never cut off"
        change_id = record_large_change(server)
        # Every change reaches the reading stream before the next is made, the stuck one notwithstanding.
        assert next(fast_changes).id == change_id
    fast.close()

    got = ids_until_cut(slow)
    resumed_from = got[-1] if got else start
    again = Stream(server.port, headers={**DASHBOARD, "Last-Event-ID": str(resumed_from)}).subscribed()
    missed = change_ids(server, after=resumed_from)
    rest = collect(again, len(missed))
    again.close()
    assert got + rest == change_ids(server, after=start)  # every change once, in order
    assert len(missed) > QUEUE_SIZE  # it had fallen behind by more than its bound


def test_streams_past_the_bound_are_503_and_a_closed_stream_gives_its_place_back(server):
    streams = [Stream(server.port, headers=DASHBOARD, timeout=DEADLINE_S) for _ in range(STREAMS)]
    assert {stream.status for stream in streams} == {200}
    past = refusal(Stream(server.port, headers=DASHBOARD, timeout=DEADLINE_S))
    assert_canonical_error(past, 503, "too_busy")
    assert int(past.headers["retry-after"]) > 0
    assert server.send("GET", "/api/health").status_code == 200  # and the threads serve calls meanwhile
    streams.pop().close()
    deadline = time.monotonic() + DEADLINE_S
    while (again := Stream(server.port, headers=DASHBOARD, timeout=DEADLINE_S)).status != 200:
        assert time.monotonic() < deadline, "a closed stream's place never came back"
        again.close()
        time.sleep(0.1)
    for stream in [*streams, again]:
        stream.close()


def test_signing_out_closes_handed_over_streams_and_only_them(server):
    cookie = sign_in(server)
    session_streams = [Stream(server.port, headers=as_browser(server, cookie)).subscribed()
                       for _ in range(2 * THREADS)]
    token_stream = Stream(server.port, headers=DASHBOARD).subscribed()
    closing = ended_streams(session_streams)
    assert server.send("POST", "/api/auth/logout", headers=as_browser(server, cookie)).status_code == 204
    for future in closing:
        future.result(timeout=DEADLINE_S)
    post_heartbeat(server, "after-sign-out")
    assert next(token_stream.changes()).data["topic"] == "agent"
    token_stream.close()


def test_a_graceful_stop_ends_handed_over_streams_cleanly(tmp_path, postgres_databases):
    url = database_url_in(tmp_path, postgres_databases)
    env = {"DASHBOARD_API_KEY": API_KEY, "DASHBOARD_TOKEN": DASHBOARD_TOKEN, "DASHBOARD_SECRET_KEY": SECRET,
           "SSE_HEARTBEAT_S": "1", "DASHBOARD_THREADS": str(THREADS), "DASHBOARD_API_THREADS": "2"}
    with gunicorn(url, env, workers=1) as stopping:
        streams = [Stream(stopping.port, headers=DASHBOARD, timeout=DEADLINE_S).subscribed()
                   for _ in range(2 * THREADS)]
        stopping.process.send_signal(signal.SIGTERM)
        for stream in streams:
            # Read to the end of the body: a clean end (the last chunk), not a reset or a cut-off frame.
            assert all(frame.id is None for frame in stream.frames())
            stream.close()
        assert stopping.process.wait(timeout=DEADLINE_S) == 0
