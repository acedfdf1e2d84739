"""GET /api/health: what a monitor learns about each dependency, 503 when the database is unusable."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest
from falcon import testing

from deploy import health, mount
from shared.linear import cache as linear_cache
from shared.store.db import database, execute, write_transaction
from shared.store.migrations import LATEST_VERSION
from tests.databases import close_connections, only_on_sqlite
from tests.support import AGENT, API_KEY, DASHBOARD_TOKEN, event


def database_file(settings) -> str:
    return settings.database_url.removeprefix("sqlite:///")


def test_the_feed_size_follows_what_was_recorded(mounted_client):
    todos = [{"id": str(n), "content": f"todo {n}", "status": "pending"} for n in range(3)]
    for n in range(3):
        posted = mounted_client.simulate_post("/api/events", json=event("todo.updated", {
            "sessionID": f"s{n}", "todos": todos}), headers=AGENT)
        assert posted.status_code == 202
    newest = database.execute_sql("SELECT MAX(id) FROM changes").fetchone()[0]
    rows = database.execute_sql("SELECT COUNT(*) FROM changes").fetchone()[0]
    feed = mounted_client.simulate_get("/api/health").json["feed"]
    assert feed == {"rows": rows, "oldest_id": 1, "newest_id": newest} and rows >= 3


def test_linear_reports_the_age_and_result_of_the_last_sync(settings, db):
    linear = settings.with_overrides(linear_api_key="lin_api_health_test_0123456789")
    result = {"mode": "incremental", "requests": 1, "seconds": 0.2}
    with database.connection_context(), write_transaction():
        linear_cache.save_sync_state({"last_success_at": 1_764_000_000, "last_result": result})
    with database.connection_context():
        status = health.linear_health(linear, now=1_764_000_042.4)
    assert status == {"configured": True, "webhook": False, "ok": True, "last_sync_at": "2025-11-24T16:00:00Z",
                      "last_sync_age_s": 42, "last_result": result, "last_error": None, "last_error_at": None}


@only_on_sqlite("overwrites the SQLite file")
def test_an_unreadable_database_file_is_503_with_each_dependency_said(settings, db, mounted_client):
    assert mounted_client.simulate_get("/api/health").status_code == 200
    close_connections()
    with open(database_file(settings), "r+b") as file:
        file.write(b"this is no SQLite database at all" * 4)
    response = mounted_client.simulate_get("/api/health")
    assert response.status_code == 503
    body = response.json
    assert body["status"] == "unavailable" and body["feed"] is None and body["linear"] is None
    assert body["database"]["ok"] is False and body["database"]["error"] == "the database cannot be read"
    assert body["temporal"] == {"configured": False, "reachable": False}
    assert response.headers["x-request-id"]


@only_on_sqlite("holds SQLite's file in exclusive locking mode")
def test_a_database_locked_past_the_busy_timeout_is_503_then_200_once_released(settings, db):
    impatient = settings.with_overrides(busy_timeout_ms=300)
    close_connections()
    database.initialize(None)  # a fresh database object, with the short busy timeout
    client = testing.TestClient(mount.create_app(impatient))
    assert client.simulate_get("/api/health").status_code == 200
    close_connections()
    holder = sqlite3.connect(database_file(settings), isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")  # nobody else may even read, as during a long exclusive write
    try:
        started = time.monotonic()
        response = client.simulate_get("/api/health")
        waited = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert response.status_code == 503 and response.json["database"]["ok"] is False
    assert waited >= 0.25  # it waited for the lock, up to the busy timeout, and then said so
    assert client.simulate_get("/api/health").status_code == 200  # and back once it is free


def test_a_schema_behind_says_what_to_run(settings, empty_database_url):
    empty = settings.with_overrides(database_url=empty_database_url)
    response = testing.TestClient(mount.create_app(empty)).simulate_get("/api/health")
    assert response.status_code == 503
    assert response.json["database"] | {"latency_ms": 0} == {
        "ok": False, "schema_version": 0, "latest_version": LATEST_VERSION, "latency_ms": 0,
        "error": "the schema is behind: run `python -m deploy.prepare`"}


def test_it_is_public_and_exposes_no_secret(settings, db):
    secrets = {"api_key": API_KEY, "dashboard_token": DASHBOARD_TOKEN, "secret_key": "signing-key-0123456789abcdef",
               "linear_api_key": "lin_api_secret_0123456789", "linear_webhook_secret": "webhook-secret-0123456789",
               "push_url": "https://ntfy.sh/secret-topic-0123456789", "push_token": "push-token-0123456789"}
    configured = settings.with_overrides(**secrets)
    with database.connection_context(), write_transaction():
        linear_cache.save_sync_state({"last_error_at": 1_764_000_000, "last_error": "Authentication required"})
    response = testing.TestClient(mount.create_app(configured)).simulate_get("/api/health")
    assert response.status_code == 200
    for secret in secrets.values():
        assert secret not in response.text
    assert response.json["linear"]["webhook"] is True  # that it is set, not what it is


@pytest.mark.parametrize("rows", [200_000])
def test_it_counts_a_large_feed(mounted_client, rows):
    with database.connection_context(), write_transaction():
        # One statement both databases speak: a counter from a recursive query, inserted as it goes.
        execute("WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)"
                " INSERT INTO changes (topic, action, payload, created_at)"
                " SELECT 'task', 'updated', '{}', 1764000000 + i FROM n", (rows,))
    response = mounted_client.simulate_get("/api/health")
    assert response.status_code == 200
    assert response.json["feed"] == {"rows": rows, "oldest_id": response.json["feed"]["oldest_id"],
                                     "newest_id": response.json["feed"]["oldest_id"] + rows - 1}


@only_on_sqlite("reads SQLite's query plan (PostgreSQL chooses a count's plan by the table's statistics)")
def test_the_feed_size_reads_indexes_not_the_table(db):
    """What keeps the check fast however large the feed grows (a monitor polls it every few seconds):
    the oldest and newest ids are one index probe each, and the count walks an index, never the rows."""
    with database.connection_context():
        plan = [step for *_, step in execute(f"EXPLAIN QUERY PLAN {health.FEED_SIZE}").fetchall()]
    reads = [step for step in plan if "changes" in step]
    count, *probes = sorted(reads)  # "SCAN …" sorts before "SEARCH …"
    assert probes == ["SEARCH changes", "SEARCH changes"], plan
    assert count.startswith("SCAN changes USING COVERING INDEX"), plan


@only_on_sqlite("overwrites the SQLite file with garbage")
def test_under_gunicorn_a_database_gone_bad_is_503_and_the_server_stays_up(tmp_path):
    import http.client

    from tests.processes import gunicorn

    path = tmp_path / "dashboard.db"
    with gunicorn(f"sqlite:///{path}", {}, workers=1) as server:
        assert server.request("GET", "/api/health")[0] == 200
        for suffix in ("", "-wal", "-shm"):  # what a failing disk or a stray `cp` could leave
            target = path.with_name(path.name + suffix)
            if target.exists():
                target.write_bytes(b"\0garbage, not a database\0" * 2000)
        answers = []
        for _ in range(2):
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            connection.request("GET", "/api/health", headers={"X-Request-Id": "monitor-1"})
            response = connection.getresponse()
            answers.append((response.status, response.getheader("X-Request-Id"), response.read()))
            connection.close()
        assert server.process.poll() is None  # still serving
    assert [(status, rid) for status, rid, _ in answers] == [(503, "monitor-1")] * 2
    assert json.loads(answers[0][2])["database"] == {"ok": False, "error": "the database cannot be read",
                                                     "latency_ms": json.loads(answers[0][2])["database"]["latency_ms"]}
