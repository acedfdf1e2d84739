"""Group commit (shared/store/group_commit.py): writes that queue while another is under way share one
transaction, and each is still answered as if it had been written alone.

The first tests hold the writer slot with another writer of the same process, queue several ingest
requests behind it (waiting until the queue holds them all), then let go: the requests are then
written in one transaction, and what each gets back, and what is stored, is checked. The last ones do
the same through a real gunicorn, with clients at once over HTTP.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from falcon import testing

import functions.events
from shared.store.db import database, open_database, write_transaction
from shared.store.group_commit import group_commit
from shared.store.migrations import migrate
from shared.store.models import Change, InboundEvent, Message, Todo
from tests.database_rows import changed_tables, reading, row_counts
from tests.databases import only_on_sqlite
from tests.processes import gunicorn
from tests.retrying_client import client_events
from tests.support import AGENT, API_KEY, DASHBOARD_TOKEN, assert_canonical_error, event
from tests.temporal_support import wait_for


@pytest.fixture
def client(settings):
    """The events app on a database whose writers wait as long as a slow machine needs to queue them."""
    patient = settings.with_overrides(busy_timeout_ms=120_000)
    open_database(patient)
    migrate()
    yield testing.TestClient(functions.events.create_app(patient))
    database.close()


@contextlib.contextmanager
def writer_slot_held() -> Iterator[None]:
    """Another writer of this process holds the writer slot (SQLite's write lock, PostgreSQL's writer
    lock) until the block ends."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with database.connection_context(), write_transaction():
            holding.set()
            release.wait()

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(30)
    try:
        yield
    finally:
        release.set()
        holder.join()


def posted_together(client, bodies: list[dict]) -> list:
    """POST each body from a thread of its own while the writer slot is held; once every one of them is
    queued, let go: they are written in one group. The answers, in the order of `bodies`."""
    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        with writer_slot_held():
            answers = [pool.submit(client.simulate_post, "/api/events", json=body, headers=AGENT) for body in bodies]
            wait_for(lambda: group_commit.queued == len(bodies), what=f"{len(bodies)} writes queued")
        return [answer.result() for answer in answers]


def todo_list(session: str, content: str) -> dict:
    return event("todo.updated", {"sessionID": session, "todos": [{"id": "1", "content": content,
                                                                   "status": "pending"}]})


def session_error(session: str, text: str, **kwargs) -> dict:
    return event("session.error", {"sessionID": session, "error": {"name": "ProviderError",
                                                                     "data": {"message": text}}}, **kwargs)


def test_writes_queued_together_are_each_stored_once_with_their_projections_and_changes(client):
    bodies = [todo_list(f"ses-{n}", f"todo {n}") if n % 2 else session_error(f"ses-{n}", f"error {n}")
              for n in range(8)]

    answers = posted_together(client, bodies)

    assert [(answer.status_code, answer.json) for answer in answers] == [
        (202, {"accepted": 1, "duplicates": 0, "unknown": 0})] * len(bodies)
    assert sorted(row.id for row in InboundEvent.select()) == sorted(body["id"] for body in bodies)
    assert sorted((t.session_id, t.content) for t in Todo.select()) == [
        (f"ses-{n}", f"todo {n}") for n in range(1, 8, 2)]
    assert sorted(m.session_id for m in Message.select().where(Message.type == "error")) == [
        f"ses-{n}" for n in range(0, 8, 2)]
    assert Counter((c.topic, c.action) for c in Change.select()) == {
        ("todo", "replaced"): 4, ("error", "session"): 4, ("session", "status"): 4}


def test_a_write_failing_in_its_group_is_rolled_back_alone_and_answers_only_its_request(client):
    # Only the database can tell that the task does not exist: the request fails inside the group's
    # transaction, after the write before it and before the one after it.
    bad = event("task.updated", {"id": "no-such-task", "status": "completed"})
    bodies = [todo_list("ses-a", "before"), bad, todo_list("ses-b", "after")]

    before, failed, after = posted_together(client, bodies)

    assert (before.status_code, after.status_code) == (202, 202)
    assert_canonical_error(failed, 422, field="data.id")
    assert sorted(row.id for row in InboundEvent.select()) == sorted([bodies[0]["id"], bodies[2]["id"]])
    assert sorted((t.session_id, t.content) for t in Todo.select()) == [("ses-a", "before"), ("ses-b", "after")]
    assert Counter(c.topic for c in Change.select()) == {"todo": 2}


def test_one_event_sent_twice_in_one_group_is_stored_once_and_counted_as_a_duplicate_once(client):
    twice = session_error("ses-1", "once only", id="evt-twice")
    other = todo_list("ses-2", "between")

    answers = posted_together(client, [twice, other, twice])

    assert [answer.status_code for answer in answers] == [202, 202, 202]
    assert sorted((a.json["accepted"], a.json["duplicates"]) for a in (answers[0], answers[2])) == [(0, 1), (1, 0)]
    assert InboundEvent.select().where(InboundEvent.id == "evt-twice").count() == 1
    # Applied twice, a session error would leave two error messages, and two changes.
    assert Message.select().where(Message.type == "error").count() == 1
    assert Change.select().where(Change.topic == "error").count() == 1


def test_writes_queued_past_the_busy_timeout_are_each_503_and_write_nothing(settings):
    quick = settings.with_overrides(busy_timeout_ms=300)
    open_database(quick)
    migrate()
    client = testing.TestClient(functions.events.create_app(quick))
    bodies = [todo_list(f"ses-{n}", "never") for n in range(4)]
    with ThreadPoolExecutor(max_workers=len(bodies)) as pool, writer_slot_held():
        answers = list(pool.map(lambda body: client.simulate_post("/api/events", json=body, headers=AGENT), bodies))
    for answer in answers:
        error = assert_canonical_error(answer, 503, "database_unavailable")
        assert "busy" in error["message"]
    assert InboundEvent.select().count() == Todo.select().count() == Change.select().count() == 0
    # The slot is free again: the same writes go through.
    assert [client.simulate_post("/api/events", json=body, headers=AGENT).status_code for body in bodies] == [202] * 4
    assert InboundEvent.select().count() == 4
    database.close()


# Through gunicorn ---------------------------------------------------------------------------------------

SERVER_ENV = {"DASHBOARD_API_KEY": API_KEY, "DASHBOARD_TOKEN": DASHBOARD_TOKEN}
JSON_AGENT = {"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"}


def post_each(port: int, events: list[dict]) -> list[tuple[int, dict]]:
    """Send `events` one per request over one keep-alive connection, as an agent's plugin does."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    answers = []
    try:
        for body in events:
            connection.request("POST", "/api/events", json.dumps(body).encode(), JSON_AGENT)
            response = connection.getresponse()
            answers.append((response.status, json.loads(response.read())))
    finally:
        connection.close()
    return answers


def test_single_events_from_many_clients_at_once_are_each_stored_once_with_every_projection(database_url):
    clients, per_client = 16, 30
    events = {client: client_events(client, per_client) for client in range(clients)}
    with gunicorn(database_url, SERVER_ENV, workers=2) as server:
        before = row_counts(database_url)
        with ThreadPoolExecutor(max_workers=clients) as pool:
            answers = list(pool.map(lambda client: post_each(server.port, events[client]), range(clients)))
        after = row_counts(database_url)

    assert [answer for client in answers for answer in client] == [
        (202, {"accepted": 1, "duplicates": 0, "unknown": 0})] * (clients * per_client)
    sent = [e for client in range(clients) for e in events[client]]
    with reading(database_url) as db:
        stored = Counter(event_id for (event_id,) in db.execute("SELECT id FROM inbound_events"))
        todos = sorted(content for (content,) in db.execute("SELECT content FROM todos"))
        errors = sorted(session_id for (session_id,) in db.execute(
            "SELECT session_id FROM messages WHERE type = 'error'"))
        sessions = {session_id for (session_id,) in db.execute("SELECT id FROM sessions")}
    assert stored == Counter(e["id"] for e in sent)
    assert todos == sorted(e["id"] for e in sent if e["type"] == "todo.updated")
    assert errors == sorted(e["data"]["sessionID"] for e in sent if e["type"] == "session.error")
    assert sessions == {e["data"]["sessionID"] for e in sent}
    # One change per todo list, two per error (the error, and its session's status): per event applied.
    assert after["changes"] - before["changes"] == len(sent) + len(errors)


def connection_to(server, worker: int | None, avoid: int | None = None) -> tuple[http.client.HTTPConnection, int]:
    """A keep-alive connection served by `worker` (any but `avoid` when None), and the worker's pid."""
    while True:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        connection.connect()
        client_port = connection.sock.getsockname()[1]
        serving = wait_for(lambda port=client_port: server.worker_serving(port), what="a worker to accept it")
        if serving == worker or (worker is None and serving != avoid):
            return connection, serving
        connection.close()


@pytest.mark.parametrize("same_worker", [True, False], ids=["same worker", "two workers"])
def test_one_event_sent_by_two_clients_at_once_is_stored_once(database_url, same_worker):
    with gunicorn(database_url, SERVER_ENV, workers=2) as server:
        for round_ in range(10):
            first, worker = connection_to(server, None)
            second, _ = connection_to(server, worker) if same_worker else connection_to(server, None, avoid=worker)
            body = json.dumps(session_error(f"ses-{round_}", "sent twice", id=f"twice-{round_}")).encode()
            ready = threading.Barrier(2)
            with ThreadPoolExecutor(max_workers=2) as pool:
                sent = [pool.submit(send_at_once, connection, body, ready) for connection in (first, second)]
                answers = sorted((answer.result() for answer in sent), key=lambda answer: answer[1]["accepted"])
            first.close()
            second.close()
            assert answers == [(202, {"accepted": 0, "duplicates": 1, "unknown": 0}),
                               (202, {"accepted": 1, "duplicates": 0, "unknown": 0})], round_

    with reading(database_url) as db:
        stored = db.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM inbound_events").fetchone()
        errors = db.execute("SELECT COUNT(*) FROM messages WHERE type = 'error'").fetchone()[0]
    assert tuple(stored) == (10, 10)
    assert errors == 10


def send_at_once(connection: http.client.HTTPConnection, body: bytes, ready: threading.Barrier) -> tuple[int, dict]:
    ready.wait()  # both clients send together
    connection.request("POST", "/api/events", body, JSON_AGENT)
    response = connection.getresponse()
    return response.status, json.loads(response.read())


@contextlib.contextmanager
def write_lock_held_elsewhere(database: Path) -> Iterator[None]:
    """Another process of this machine holds the dashboard's write lock (the file every writer queues
    on, shared/store/db.py's WriteLock) until the block ends."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys\n"
        f"fd = os.open({str(database) + '.write-lock'!r}, os.O_RDWR | os.O_CREAT, 0o600)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('locked', flush=True)\n"
        "sys.stdin.readline()\n")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


@only_on_sqlite("the write lock is a file beside SQLite's; PostgreSQL's writer lock is tested in-process above")
def test_writes_waiting_on_the_write_lock_past_the_busy_timeout_are_503_and_write_nothing(tmp_path):
    database = tmp_path / "dashboard.db"
    env = SERVER_ENV | {"DATABASE_BUSY_TIMEOUT_MS": "500"}
    events = [session_error(f"ses-{n}", f"error {n}") for n in range(6)]
    with gunicorn(f"sqlite:///{database}", env, workers=2) as server:
        before = row_counts(database)
        with write_lock_held_elsewhere(database), ThreadPoolExecutor(max_workers=len(events)) as pool:
            locked = list(pool.map(lambda body: server.send("POST", "/api/events", json.dumps(body).encode(),
                                                            JSON_AGENT), events))
        for answer in locked:
            error = assert_canonical_error(answer, 503, "database_unavailable")
            assert "busy" in error["message"]
        assert changed_tables(before, row_counts(database)) == {}  # nothing half-written

        assert [status for status, _ in post_each(server.port, events)] == [202] * len(events)
    changed = changed_tables(before, row_counts(database))
    assert changed["inbound_events"] == (before["inbound_events"], before["inbound_events"] + len(events))
