"""Structured logs and request ids: what an operator reads, and what must never be in it."""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import subprocess
import sys

import pytest
from falcon import testing

from shared.logs import JsonFormatter, make_handler, redact
from shared.web.webapp import function_app
from tests.processes import REPO, gunicorn
from tests.support import AGENT, API_KEY, DASHBOARD, DASHBOARD_TOKEN, assert_canonical_error, event
from tests.temporal_support import wait_for

STREAM_TOKEN = "stream-token-that-travels-in-the-url-42"
COOKIE = "session-cookie-value-0123456789abcdef"
LINEAR_KEY = "lin_api_abcdefghijklmnop0123456789"


@pytest.fixture
def log_file(tmp_path, settings):
    """The dashboard's own JSON handler on the root logger, writing to a file the test reads."""
    path = tmp_path / "logs" / "web.log"
    handler = make_handler(settings.with_overrides(log_format="json", log_file=str(path)))
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield path
    root.removeHandler(handler)
    handler.close()
    root.setLevel(previous_level)


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def access_lines(path) -> list[dict]:
    return [line for line in lines(path) if line["logger"] == "access"]


def test_a_request_without_an_id_gets_a_fresh_one_in_the_header_and_the_access_line(mounted_client, log_file):
    first = mounted_client.simulate_get("/api/todos", headers=DASHBOARD)
    second = mounted_client.simulate_get("/api/todos", headers=DASHBOARD)
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert all(re.fullmatch(r"[0-9a-f]{32}", rid) for rid in ids) and ids[0] != ids[1]
    logged = access_lines(log_file)
    assert [line["request_id"] for line in logged] == ids
    line = logged[0]
    assert (line["method"], line["path"], line["status"], line["level"]) == ("GET", "/api/todos", 200, "INFO")
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])


@pytest.mark.parametrize("offered", ["req-1", "0b4f1c2e-9d3a-4d8e-8f00-1a2b3c4d5e6f", "agent.openclaw:42_x"])
def test_a_sane_incoming_id_is_kept(mounted_client, offered):
    response = mounted_client.simulate_get("/api/health", headers={"X-Request-Id": offered})
    assert response.headers["x-request-id"] == offered


@pytest.mark.parametrize("offered", ["", "two words", "x" * 129, '"}{"level":"ERROR', "-leading-dash", "é"])
def test_an_insane_incoming_id_is_replaced(mounted_client, offered):
    response = mounted_client.simulate_get("/api/health", headers={"X-Request-Id": offered})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


@pytest.mark.parametrize(("method", "path", "headers", "status"), [
    ("GET", "/api/nothing-here", {}, 404),              # the mount's own 404
    ("GET", "/api/todos", {}, 401),                     # no credential
    ("DELETE", "/api/events", AGENT, 405),
    ("POST", "/api/events", AGENT, 400),                # not JSON
])
def test_errors_carry_the_request_id_too(mounted_client, log_file, method, path, headers, status):
    response = mounted_client.simulate_request(method, path, headers=headers | {"X-Request-Id": "err-1",
                                                                                "Content-Type": "application/json"},
                                               body=b"{not json")
    assert_canonical_error(response, status)
    assert response.headers["x-request-id"] == "err-1"
    assert [(line["request_id"], line["status"]) for line in access_lines(log_file)] == [("err-1", status)]


class Exploding:
    auth = "public"

    def on_get(self, req, resp):
        raise RuntimeError(f"failed talking to https://example.test/x?token={STREAM_TOKEN} with Bearer {API_KEY}")


def test_lines_written_while_serving_a_request_carry_its_id_and_no_secret(settings, db, log_file):
    from shared.web.request_log import RequestLog

    app = function_app(settings)
    app.add_route("/api/explode", Exploding())
    response = testing.TestClient(RequestLog(app)).simulate_get("/api/explode", headers={"X-Request-Id": "boom-1"})
    assert_canonical_error(response, 500, "internal_error")
    error, access = lines(log_file)
    assert (error["level"], error["logger"], error["request_id"]) == ("ERROR", "shared.web.errors", "boom-1")
    assert "RuntimeError" in error["exception"]
    assert STREAM_TOKEN not in log_file.read_text() and API_KEY not in log_file.read_text()
    assert "token=[redacted]" in error["exception"] and "Bearer [redacted]" in error["exception"]
    assert (access["request_id"], access["status"]) == ("boom-1", 500)


def test_no_credential_a_request_carries_reaches_the_log(mounted_client, log_file):
    mounted_client.simulate_post("/api/events", json=event("todo.updated", {"sessionID": "s", "todos": []}),
                                 headers={"X-API-Key": API_KEY})
    mounted_client.simulate_get("/api/todos", headers=DASHBOARD | {"Cookie": f"ocd_session={COOKIE}"})
    mounted_client.simulate_get("/api/todos", headers={"Authorization": "Bearer wrong-token-0123456789abcdef"})
    mounted_client.simulate_get("/api/stream", query_string=f"token={STREAM_TOKEN}&topics=agent")
    text = log_file.read_text()
    assert len(access_lines(log_file)) == 4
    for secret in (API_KEY, DASHBOARD_TOKEN, COOKIE, STREAM_TOKEN, "wrong-token-0123456789abcdef"):
        assert secret not in text
    assert "/api/stream" in text and "topics" not in text  # the path, never the query string


def test_configured_secrets_are_redacted_wherever_they_appear(settings, tmp_path):
    configured = settings.with_overrides(linear_api_key=LINEAR_KEY, push_url="https://ntfy.sh/my-secret-topic-123",
                                         log_format="json", log_file=str(tmp_path / "x.log"))
    handler = make_handler(configured)
    record = logging.LogRecord("push", logging.WARNING, __file__, 1, "posting to %s failed for %s", (
        "https://ntfy.sh/my-secret-topic-123", DASHBOARD_TOKEN), None)
    line = handler.formatter.format(record)
    handler.close()
    assert "my-secret-topic" not in line and DASHBOARD_TOKEN not in line
    assert json.loads(line)["message"] == "posting to [redacted] failed for [redacted]"


@pytest.mark.parametrize(("text", "expected"), [
    ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer [redacted]"),
    ("GET /api/stream?token=abc&topics=x", "GET /api/stream?token=[redacted]&topics=x"),
    ("key lin_api_XYZ123 refused", "key [redacted] refused"),
    ("nothing secret here", "nothing secret here"),
])
def test_redact_removes_credentials_by_shape(text, expected):
    assert redact(text) == expected


def test_extra_fields_become_json_fields():
    record = logging.LogRecord("job", logging.INFO, __file__, 1, "done", (), None)
    record.rows = 3
    assert json.loads(JsonFormatter().format(record)) | {"time": "t"} == {
        "time": "t", "level": "INFO", "logger": "job", "message": "done", "pid": os.getpid(), "rows": 3}


def test_real_gunicorn_returns_the_request_id_and_writes_json_lines(database_url):
    env = {"DASHBOARD_API_KEY": API_KEY, "DASHBOARD_TOKEN": DASHBOARD_TOKEN}
    with gunicorn(database_url, env, workers=1) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.request("GET", f"/api/stream?token={STREAM_TOKEN}", headers={"X-Request-Id": "gunicorn-1"})
        stream = connection.getresponse()
        stream.read()
        connection.request("GET", "/api/nowhere", headers={"Authorization": f"Bearer {DASHBOARD_TOKEN}"})
        missing = connection.getresponse()
        missing.read()
        connection.close()
    assert (stream.status, stream.getheader("X-Request-Id")) == (401, "gunicorn-1")
    assert missing.status == 404 and re.fullmatch(r"[0-9a-f]{32}", missing.getheader("X-Request-Id"))
    text = server.log()
    logged = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is JSON
    access = [line for line in logged if line["logger"] == "access"]
    assert {(line["request_id"], line["path"], line["status"]) for line in access} >= {
        ("gunicorn-1", "/api/stream", 401), (missing.getheader("X-Request-Id"), "/api/nowhere", 404)}
    assert any(line["logger"] == "gunicorn" and "Booting worker" in line["message"] for line in logged)
    assert [line for line in logged if "error" in line["logger"] and line["level"] == "INFO"] == []
    assert STREAM_TOKEN not in text and DASHBOARD_TOKEN not in text and API_KEY not in text


def run_module(module: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module], cwd=REPO, env=os.environ | env, capture_output=True,
                          text=True, timeout=timeout)


def test_a_periodic_job_writes_its_result_as_a_json_line_to_the_log_file(settings, db, tmp_path):
    log = tmp_path / "logs" / "feed-retention.log"
    done = run_module("shared.jobs.retention", {"DATABASE_URL": settings.database_url, "DASHBOARD_LOG_FORMAT": "json",
                                           "DASHBOARD_LOG_FILE": str(log)})
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # the result is in the log, not loose on stdout
    (line,) = lines(log)
    assert (line["logger"], line["level"]) == ("feed-retention", "INFO")
    assert line["message"].startswith("feed retention: pruned 0 changes")


def test_the_same_job_run_by_hand_prints_its_result(settings, db):
    done = run_module("shared.jobs.retention", {"DATABASE_URL": settings.database_url})
    assert done.stdout.startswith("feed retention: pruned 0 changes") and done.stderr == ""


def test_the_worker_logs_json_lines(settings, db, tmp_path):
    from tests.processes import free_port

    env = {"DATABASE_URL": settings.database_url, "DASHBOARD_LOG_FORMAT": "json",
           "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}", "DASHBOARD_LOG_FILE": str(tmp_path / "worker.log")}
    worker = subprocess.Popen([sys.executable, "-m", "worker"], cwd=REPO, env=os.environ | env)
    log = tmp_path / "worker.log"
    try:
        wait_for(lambda: log.exists() and log.read_text().endswith("\n"), timeout=30, what="the worker's first line")
    finally:
        worker.terminate()
        worker.wait(timeout=20)
    first = lines(log)[0]
    assert (first["logger"], first["level"]) == ("worker", "WARNING")
    assert "not reachable yet" in first["message"]


def test_a_log_file_moved_away_by_a_rotator_is_reopened_without_a_signal(settings, tmp_path):
    path = tmp_path / "logs" / "gunicorn.log"
    handler = make_handler(settings.with_overrides(log_format="json", log_file=str(path)))
    logger = logging.getLogger("rotation-test")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        logger.info("before the rotation")
        path.rename(path.with_name("gunicorn.log.0"))  # what newsyslog and logrotate do
        logger.info("after the rotation")
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert [line["message"] for line in lines(path.with_name("gunicorn.log.0"))] == ["before the rotation"]
    assert [line["message"] for line in lines(path)] == ["after the rotation"]


def test_every_secret_setting_is_redacted_including_ones_added_later():
    from dataclasses import fields

    from shared.config import Settings
    from shared.logs import configured_secrets

    hidden = [field.name for field in fields(Settings) if not field.repr]
    assert {"api_key", "dashboard_token", "linear_api_key", "push_url"} <= set(hidden)
    settings = Settings(**{name: f"secret-{name}-0123456789" for name in hidden})
    assert sorted(configured_secrets(settings)) == sorted(f"secret-{name}-0123456789" for name in hidden)
