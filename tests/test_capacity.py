"""No client can starve the server, over real gunicorn (two workers of four threads, two of them kept
for API calls, and room for two open streams each): half-sent requests hold no thread and are dropped
after the header timeout; long polls beyond each worker's thread budget, and streams beyond its bound of
open streams, are a 503 with Retry-After, and API calls are still served."""

from __future__ import annotations

import http.client
import socket
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

import pytest

from tests.databases import database_url_in
from tests.processes import Answer, gunicorn
from tests.sse_client import Stream
from tests.support import AGENT, API_KEY, DASHBOARD, DASHBOARD_TOKEN, assert_canonical_error, event

WORKERS = 2
LONG_REQUEST_SLOTS = 2  # per worker: 4 threads, 2 kept for API calls
STREAM_SLOTS = 2  # open streams per worker
LONG_POLL_S = 8  # how long a held long poll waits (the last test's teardown waits as long)
HEADER_TIMEOUT_S = 2
DEADLINE_S = 30  # generous: a loaded 2-core machine


@pytest.fixture(scope="module")
def server(tmp_path_factory, postgres_databases):
    url = database_url_in(tmp_path_factory.mktemp("capacity"), postgres_databases)
    env = {"DASHBOARD_API_KEY": API_KEY, "DASHBOARD_TOKEN": DASHBOARD_TOKEN, "SSE_HEARTBEAT_S": "0.5",
           "DASHBOARD_THREADS": "4", "DASHBOARD_API_THREADS": "2", "DASHBOARD_STREAMS": str(STREAM_SLOTS),
           "DASHBOARD_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S)}
    with gunicorn(url, env, workers=WORKERS) as running:
        assert running.request("POST", "/api/events", event("agent.heartbeat", {"id": "waiter"}, id="w-1"),
                               AGENT)[0] == 202
        yield running


def half_sent(port: int, head: bytes = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n") -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", port))
    connection.sendall(head)
    return connection


def answer_then_close(connection: socket.socket) -> Answer:
    """Everything the server sends until it closes the connection, as an answer."""
    connection.settimeout(DEADLINE_S)
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    return Answer(int(status_line.split()[1]), headers, body)


def test_half_sent_requests_hold_no_thread(server):
    # Five times every thread of both workers, each sending half a header and stopping.
    stalled = [half_sent(server.port) for _ in range(5 * 4 * WORKERS)]
    assert server.send("GET", "/api/health").status_code == 200
    assert server.send("GET", "/api/agents", headers=DASHBOARD).status_code == 200
    for connection in stalled:
        connection.close()


def test_a_request_head_that_stalls_is_answered_408_and_closed(server):
    stalled = half_sent(server.port)
    assert_canonical_error(answer_then_close(stalled), 408, "request_timeout")
    stalled.close()


def test_a_request_head_that_never_ends_is_431(server):
    endless = half_sent(server.port, b"GET /api/health HTTP/1.1\r\nX-Padding: " + b"a" * 70_000)
    assert_canonical_error(answer_then_close(endless), 431, "headers_too_large")
    endless.close()


def test_a_request_sent_in_pieces_is_served(server):
    connection = half_sent(server.port, b"GET /api/health HTTP/1.1\r\n")
    connection.sendall(b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert answer_then_close(connection).status_code == 200
    connection.close()


def open_every_slot(server) -> tuple[list[Stream], list[Stream]]:
    """Open streams until every worker's place for them is taken; return them and the refused attempts."""
    opened, refused = [], []
    while len(opened) < WORKERS * STREAM_SLOTS:
        assert len(opened) + len(refused) < 200, "the streams never took every slot"
        stream = Stream(server.port, headers=DASHBOARD, timeout=DEADLINE_S)
        (opened if stream.status == 200 else refused).append(stream)
    return opened, refused


def refusal(stream: Stream) -> Answer:
    return Answer(stream.status, {name.lower(): value for name, value in stream.response.getheaders()},
                  stream.response.read())


def assert_busy(answer: Answer) -> None:
    assert_canonical_error(answer, 503, "too_busy")
    assert int(answer.headers["retry-after"]) > 0


def test_streams_past_the_bound_are_503_and_api_calls_and_long_polls_are_still_served(server):
    opened, refused = open_every_slot(server)
    for stream in refused:
        assert_busy(refusal(stream))
    # Every place for a stream in every worker is taken: whichever worker takes them, these are refused...
    for _ in range(2 * WORKERS):
        assert_busy(refusal(Stream(server.port, headers=DASHBOARD, timeout=DEADLINE_S)))
    # ...and these are served: the open streams hold no thread.
    assert server.send("GET", "/api/agent/waiter/inbox?wait=1", headers=AGENT).status_code == 200
    assert server.send("GET", "/api/health").status_code == 200
    assert server.send("GET", "/api/agents", headers=DASHBOARD).status_code == 200
    assert server.send("GET", "/api/agent/waiter/inbox?wait=0", headers=AGENT).status_code == 200
    # A stream that ends gives its place back (the server notices at its next heartbeat).
    opened.pop().close()
    deadline = time.monotonic() + DEADLINE_S
    while (again := Stream(server.port, headers=DASHBOARD, timeout=DEADLINE_S)).status != 200:
        assert time.monotonic() < deadline, "a closed stream's place never came back"
        again.close()
        time.sleep(0.2)
    for stream in [*opened, again]:
        stream.close()


def long_poll(server) -> tuple[int | None, int]:
    """An agent's long poll: the worker that served it, and its status (503 at once when refused)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=DEADLINE_S + LONG_POLL_S)
    try:
        connection.request("GET", f"/api/agent/waiter/inbox?wait={LONG_POLL_S}", headers=AGENT)
        client_port = connection.sock.getsockname()[1]
        status = connection.getresponse().status
        # Asked once answered, not once sent: on a loaded machine no worker may have accepted it yet then.
        # Answered, it is still open (kept alive), so its worker still holds it.
        return server.worker_serving(client_port), status
    finally:
        connection.close()


def test_long_polls_past_the_thread_budget_are_503_and_api_calls_are_still_served(server):
    refused_by: set[int | None] = set()
    pool = ThreadPoolExecutor(max_workers=4 * WORKERS * LONG_REQUEST_SLOTS)
    pending = set()
    deadline = time.monotonic() + DEADLINE_S
    # Long polls one after another: each either holds a thread (and answers only after LONG_POLL_S) or
    # is refused at once; until every worker has refused one, i.e. every worker's budget is taken.
    while not server.worker_pids() <= refused_by:
        assert time.monotonic() < deadline, "the long polls never took every worker's threads"
        pending.add(pool.submit(long_poll, server))
        done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
        refused_by |= {worker for worker, status in (future.result() for future in done) if status == 503}
    # Threads remain for everything else.
    assert server.send("GET", "/api/health").status_code == 200
    assert server.send("GET", "/api/agents", headers=DASHBOARD).status_code == 200
    assert server.send("GET", "/api/agent/waiter/inbox?wait=0", headers=AGENT).status_code == 200
    pool.shutdown(wait=True)
