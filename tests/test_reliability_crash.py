"""Reliability: a gunicorn worker killed (SIGKILL) while eight agents send 40 000 events loses none of the
events it acknowledged and stores none twice.

Eight client processes (tests/retrying_client.py) each send 5 000 events to a real gunicorn with two
workers; when about 40 % of the events are acknowledged, one worker is killed with SIGKILL — mid-request,
mid-transaction, whatever it was doing — and the master starts a new one. The clients retry every request
that got no answer or a non-2xx answer, with the same event ids, as agents do.

Batches of 50: a request then holds the write lock for a few milliseconds, so the killed worker is
almost surely inside a transaction (a torn batch must leave nothing), a lost answer costs a retry of 50
events (not 1 000), and 40 000 events fit in about 900 requests, a few seconds. After each batch a
client sends 5 events one by one, so single-event requests (the way an agent plugin mostly sends) are
in flight at the kill too: 4 500 of the 40 000 events travel alone.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.database_rows import reading, row_counts
from tests.databases import ON_POSTGRES
from tests.processes import gunicorn
from tests.retrying_client import ClientReport, client_events, request_plan, run_client
from tests.support import API_KEY, DASHBOARD_TOKEN

pytestmark = [pytest.mark.reliability,
              pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds gunicorn's workers in /proc")]

CLIENTS = 8
EVENTS_PER_CLIENT = 5_000
BATCH_SIZE = 50
SINGLES_PER_BATCH = 5
KILL_AFTER_ACKED = 0.4  # the share of all events acknowledged when a worker is killed
# A client gives up on what is still unacknowledged after this long. PostgreSQL takes several times
# SQLite's time here (a round trip to the server per statement, ~100 per batch, under the writer lock).
DEADLINE_S = 240 if ON_POSTGRES else 90


def test_a_worker_killed_mid_run_loses_no_acknowledged_event_and_stores_none_twice(database_url, figures):
    database = database_url
    env = {"DASHBOARD_API_KEY": API_KEY, "DASHBOARD_TOKEN": DASHBOARD_TOKEN}
    with gunicorn(database, env, workers=2) as server:
        before = row_counts(database)
        started = time.monotonic()
        reports, killed, respawned = run_clients_and_kill_a_worker(server)
        elapsed = time.monotonic() - started
        # A client whose answer was lost sends the same request again: acknowledged, stored nothing new.
        stored_before_resend = row_counts(database)
        resent = [resend(server, group) for group in
                  request_plan(client_events(0, BATCH_SIZE + 1), BATCH_SIZE, SINGLES_PER_BATCH)]
        assert resent == [(202, {"accepted": 0, "duplicates": BATCH_SIZE, "unknown": 0}),
                          (202, {"accepted": 0, "duplicates": 1, "unknown": 0})]
        assert row_counts(database) == stored_before_resend

    acked = [event_id for report in reports for event_id in report.acked]
    statuses = sum((report.statuses for report in reports), Counter())
    with reading(database) as db:
        stored, distinct = db.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM inbound_events").fetchone()
    figures("a worker SIGKILLed under 8 clients x 5 000 events", {
        "events sent / acked (202)": f"{CLIENTS * EVENTS_PER_CLIENT} / {len(acked)}",
        "events stored / stored twice": f"{stored} / {stored - distinct}",
        "requests (retries included)": sum(report.requests for report in reports),
        "responses by status": dict(sorted(statuses.items())),
        "connection errors (no answer)": sum(report.connection_errors for report in reports),
        "retries": sum(report.retries for report in reports),
        "events a retry found already stored (deduplicated)": sum(r.acked_as_duplicates for r in reports),
        "worker killed / respawned": f"{killed} / {respawned}",
        "wall time": f"{elapsed:.1f} s",
    })

    # Every client finished: nothing refused, nothing left unacknowledged, and no server error on the way.
    assert [report.refused for report in reports] == [[]] * CLIENTS
    assert [report.unacked for report in reports] == [[]] * CLIENTS
    assert set(statuses) <= {202, 503}, statuses  # a retryable 503 at worst, never a 500
    # The kill really hit the clients: some requests lost their answer and had to be retried.
    assert sum(report.connection_errors for report in reports) >= 1
    assert respawned is not None and respawned != killed
    assert_stored_exactly_once(database, before, acked)


def run_clients_and_kill_a_worker(server) -> tuple[list[ClientReport], int, int | None]:
    spawn = multiprocessing.get_context("spawn")  # no fork of the test process and its threads
    acked_counter = spawn.Value("i", 0)
    reports_queue = spawn.Queue()
    clients = [spawn.Process(target=run_client, args=(
        client, server.port, API_KEY,
        request_plan(client_events(client, EVENTS_PER_CLIENT), BATCH_SIZE, SINGLES_PER_BATCH),
        DEADLINE_S, acked_counter, reports_queue)) for client in range(CLIENTS)]
    for process in clients:
        process.start()
    try:
        workers = server.worker_pids()
        assert len(workers) == 2, workers
        wait_for(lambda: acked_counter.value >= KILL_AFTER_ACKED * CLIENTS * EVENTS_PER_CLIENT,
                 DEADLINE_S, "clients to get 40 % of their events acknowledged")
        # The one with more client connections: killing it surely cuts some clients off mid-request.
        killed = server.busiest_worker()
        os.kill(killed, signal.SIGKILL)
        respawned = wait_for(lambda: next(iter(server.worker_pids() - workers), None), 20, "a new worker")
        reports = [reports_queue.get(timeout=DEADLINE_S + 30) for _ in clients]
    finally:
        for process in clients:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
    return sorted(reports, key=lambda report: report.client), killed, respawned


def resend(server, group: list[dict]) -> tuple[int, dict]:
    return server.request("POST", "/api/events", group[0] if len(group) == 1 else {"events": group},
                          {"Authorization": f"Bearer {API_KEY}"})


def wait_for(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def assert_stored_exactly_once(database, before: dict[str, int], acked: list[str]) -> None:
    """Every acknowledged event is stored once, raw and projected, and nothing else was stored."""
    assert len(acked) == len(set(acked)) == CLIENTS * EVENTS_PER_CLIENT
    todo_events = {event_id for event_id in acked if int(event_id.rsplit("-", 1)[1]) % 2 == 0}
    error_events = set(acked) - todo_events
    with reading(database) as db:
        stored = Counter(event_id for (event_id,) in db.execute("SELECT id FROM inbound_events"))
        todos = Counter(content for (content,) in db.execute("SELECT content FROM todos"))
        # A session error's message reads "ProviderError: <event id>": one per application of the event.
        errors = Counter(content.removeprefix("ProviderError: ")
                         for (content,) in db.execute("SELECT content FROM messages WHERE type = 'error'"))
        sessions = {session_id for (session_id,) in db.execute("SELECT id FROM sessions")}
    after = row_counts(database)

    assert [event_id for event_id, times in stored.items() if times > 1] == []
    assert set(stored) == set(acked)
    assert [content for content, times in todos.items() if times > 1] == []
    assert set(todos) == todo_events
    assert [event_id for event_id, times in errors.items() if times > 1] == []
    assert set(errors) == error_events
    assert sessions == {f"ses-{event_id}" for event_id in acked}
    # Changes on the feed per applied event: one for a todo list replaced, two for an error (the error, and
    # its session's status). A second application of any event would show here even where its projection
    # is an upsert.
    assert after["changes"] - before["changes"] == len(todo_events) + 2 * len(error_events)
