"""Sign-out ends access everywhere, over real gunicorn with two workers: the session's open streams
end (in every worker), its stream tokens stop opening streams, and other credentials' streams go on."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.databases import database_url_in, run_sql
from tests.processes import gunicorn
from tests.sse_client import Stream
from tests.support import AGENT, API_KEY, DASHBOARD, DASHBOARD_TOKEN, event

SECRET = "stream-signing-key-for-sign-out-0123456789"
# Generous for a loaded 2-core machine; the figure itself is printed, not asserted.
DEADLINE_S = 30
MAX_ATTEMPTS = 400


@pytest.fixture(scope="module")
def server(tmp_path_factory, postgres_databases):
    url = database_url_in(tmp_path_factory.mktemp("sign-out"), postgres_databases)
    env = {"DASHBOARD_API_KEY": API_KEY, "DASHBOARD_TOKEN": DASHBOARD_TOKEN, "DASHBOARD_SECRET_KEY": SECRET,
           "SSE_HEARTBEAT_S": "1"}
    with gunicorn(url, env, workers=2) as running:
        running.database_url = url
        yield running


def sign_in(server) -> str:
    """A new session's cookie value, as the page gets it."""
    answer = server.send("POST", "/api/auth/login", body=f'{{"token": "{DASHBOARD_TOKEN}"}}'.encode(),
                         headers={"Content-Type": "application/json", "Origin": f"http://127.0.0.1:{server.port}"})
    assert answer.status_code == 200, answer.text
    return answer.headers["set-cookie"].split(";")[0].partition("=")[2]


def as_browser(server, cookie: str) -> dict[str, str]:
    return {"Cookie": f"ocd_session={cookie}", "Origin": f"http://127.0.0.1:{server.port}"}


def streams_in_every_worker(server, headers) -> list[Stream]:
    """One stream in each worker. Connections spread over the workers at random (whichever wakes first
    accepts), and an idle worker can win many times running: a stream that lands on a worker already
    served is closed, and another is opened, until both are."""
    streams: dict[int, Stream] = {}
    for _ in range(MAX_ATTEMPTS):
        stream = Stream(server.port, headers=headers)
        assert stream.status == 200
        worker = server.worker_serving(stream.connection.sock.getsockname()[1])
        if worker in streams:
            stream.close()
        else:
            streams[worker] = stream
        if len(streams) == 2:
            return list(streams.values())
    raise AssertionError(f"{MAX_ATTEMPTS} streams all landed on one worker")


def read_until_closed(stream: Stream) -> float:
    """Read frames (heartbeats arrive every second) until the server closes the stream; when it did."""
    for _ in stream.frames():
        pass
    return time.monotonic()


def ended_streams(streams: list[Stream]) -> list:
    pool = ThreadPoolExecutor(max_workers=len(streams))
    return [pool.submit(read_until_closed, stream) for stream in streams]


def test_signing_out_ends_the_sessions_open_streams_in_every_worker_and_only_them(server, figures):
    cookie = sign_in(server)
    session_streams = streams_in_every_worker(server, as_browser(server, cookie))
    token_stream = Stream(server.port, headers=DASHBOARD)  # another credential: unaffected
    closing = ended_streams(session_streams)

    signed_out_at = time.monotonic()
    assert server.send("POST", "/api/auth/logout", headers=as_browser(server, cookie)).status_code == 204
    closed_at = [future.result(timeout=DEADLINE_S) for future in closing]
    figures("stream ended after sign-out", {"streams": len(session_streams),
                                            "slowest (s)": round(max(closed_at) - signed_out_at, 2)})
    # Reconnecting is authenticating again: refused.
    assert Stream(server.port, headers=as_browser(server, cookie)).status == 401
    # The dashboard token's stream goes on: a change made now reaches it.
    assert server.request("POST", "/api/events", event("agent.heartbeat", {"id": "after"}, id="after-1"),
                          AGENT)[0] == 202
    assert next(token_stream.changes()).data["topic"] == "agent"
    token_stream.close()


def test_a_stream_token_dies_with_the_session_that_minted_it(server):
    cookie = sign_in(server)
    status, issued = server.request("POST", "/api/stream/token", headers=as_browser(server, cookie))
    assert status == 201
    path = f"/api/stream?token={issued['token']}"
    opened = Stream(server.port, path=path)
    assert opened.status == 200
    closing = ended_streams([opened])

    assert server.send("POST", "/api/auth/logout", headers=as_browser(server, cookie)).status_code == 204
    closing[0].result(timeout=DEADLINE_S)  # the stream it opened ends...
    for _ in range(5):  # ...and it opens no other, however often it is tried, in whichever worker
        refused = Stream(server.port, path=path)
        assert refused.status == 401
        refused.close()


def test_a_session_that_expires_ends_its_streams(server):
    cookie = sign_in(server)
    streams = streams_in_every_worker(server, as_browser(server, cookie))
    closing = ended_streams(streams)
    run_sql(server.database_url, "UPDATE auth_sessions SET expires_at = 0 WHERE revoked_at IS NULL "
                                 "AND user_id = 'local'")
    for future in closing:
        future.result(timeout=DEADLINE_S)


def test_a_dashboard_token_stream_token_still_opens_streams(server):
    status, issued = server.request("POST", "/api/stream/token", headers=DASHBOARD)
    assert status == 201
    stream = Stream(server.port, path=f"/api/stream?token={issued['token']}")
    assert stream.status == 200
    stream.close()

