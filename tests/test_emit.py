"""The Python emitter (`python -m shared.emit`) against the real bundle under gunicorn."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from shared import emit
from tests.databases import database_url_in
from tests.flaky_proxy import FlakyProxy
from tests.processes import REPO, free_port, gunicorn
from tests.support import API_KEY, DASHBOARD, DASHBOARD_TOKEN

WRONG_KEY = "not-the-agent-key-0123456789"


@pytest.fixture(scope="module")
def server(tmp_path_factory, postgres_databases):
    database = database_url_in(tmp_path_factory.mktemp("emit"), postgres_databases)
    with gunicorn(database, {"DASHBOARD_API_KEY": API_KEY, "DASHBOARD_TOKEN": DASHBOARD_TOKEN}) as s:
        yield s


def run_emit(*args: str, url: str, key: str | None = API_KEY, stdin: str = "") -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "DASHBOARD_URL": url} | ({"DASHBOARD_API_KEY": key} if key else {})
    return subprocess.run([sys.executable, "-m", "shared.emit", *args], cwd=REPO, env=env, input=stdin,
                          capture_output=True, text=True, timeout=60)


def error_messages(server, session_id: str) -> list[dict]:
    status, body = server.request("GET", f"/api/msgs?type=error&session_id={session_id}", headers=DASHBOARD)
    assert status == 200, body
    return body["messages"]


def session_error(session_id: str, message: str) -> dict:
    # A session.error is stored as a new error message each time it is applied: a double apply would show.
    return {"sessionID": session_id, "error": {"name": "APIError", "data": {"message": message}}}


def test_an_event_from_the_command_line_is_delivered_and_the_key_is_never_printed(server):
    done = run_emit("task.created", "--agent", "emit-a1", "--data",
                    json.dumps({"id": "emit-t1", "agent_id": "emit-a1", "title": "Ship the hook"}),
                    url=f"http://127.0.0.1:{server.port}")

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"accepted": 1, "duplicates": 0, "unknown": 0}
    status, body = server.request("GET", "/api/agent/emit-a1/tasks", headers=DASHBOARD)
    assert status == 200
    assert [task["title"] for task in body["tasks"]] == ["Ship the hook"]
    assert API_KEY not in done.stdout + done.stderr


def test_events_on_stdin_as_json_lines_get_ids_and_are_all_delivered(server):
    lines = "\n".join(json.dumps({"type": "session.error", "agent_id": "emit-a2",
                                  "data": session_error("ses-emit-lines", f"failure {n}")}) for n in range(3))

    done = run_emit(url=f"http://127.0.0.1:{server.port}", stdin=lines)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["accepted"] == 3
    assert len(error_messages(server, "ses-emit-lines")) == 3


def test_a_request_whose_answer_was_lost_is_retried_with_the_same_id_and_applied_once(server):
    event = emit.make_event("session.error", session_error("ses-emit-lost", "disk full"), agent_id="emit-a3")
    delays: list[float] = []
    with FlakyProxy(server.port, plan=["lose_answer", (503, {"Retry-After": "0"})]) as proxy:
        answer = emit.emit(event, url=proxy.url, api_key=API_KEY, sleep=delays.append)

    assert answer == {"accepted": 0, "duplicates": 1, "unknown": 0}
    sent_ids = [[e["id"] for e in body["events"]] for _, body in proxy.seen]
    assert sent_ids == [[event["id"]]] * 3  # lost answer, the proxy's 503, then the duplicate acknowledged
    assert len(delays) == 2
    assert len(error_messages(server, "ses-emit-lost")) == 1


def test_a_wrong_key_fails_at_once_with_a_clear_message_and_without_printing_the_key(server):
    done = run_emit("agent.heartbeat", "--data", '{"id": "emit-a4"}', url=f"http://127.0.0.1:{server.port}",
                    key=WRONG_KEY)

    assert done.returncode == emit.EXIT_REJECTED
    assert "answered 401" in done.stderr
    assert done.stdout == ""
    assert WRONG_KEY not in done.stderr


def test_an_invalid_event_is_refused_naming_the_field_and_not_retried(server):
    with FlakyProxy(server.port) as proxy:
        done = run_emit("todo.updated", "--data", '{"sessionID": "ses-x", "todos": [{"id": "1"}]}', url=proxy.url)

    assert done.returncode == emit.EXIT_REJECTED
    assert "answered 422" in done.stderr and "events[0].data.todos[0].content" in done.stderr
    assert len(proxy.seen) == 1


def test_no_key_and_bad_json_are_usage_errors_before_anything_is_sent():
    url = f"http://127.0.0.1:{free_port()}"

    no_key = run_emit("agent.heartbeat", "--data", '{"id": "a"}', url=url, key=None)
    bad_data = run_emit("agent.heartbeat", "--data", "{not json", url=url)

    assert no_key.returncode == emit.EXIT_USAGE and "DASHBOARD_API_KEY" in no_key.stderr
    assert bad_data.returncode == emit.EXIT_USAGE and "bad input" in bad_data.stderr


def test_an_unreachable_dashboard_is_given_up_on_after_the_attempts():
    done = run_emit("agent.heartbeat", "--data", '{"id": "a"}', "--attempts", "1",
                    url=f"http://127.0.0.1:{free_port()}")

    assert done.returncode == emit.EXIT_GAVE_UP
    assert "gave up after 1 attempts" in done.stderr and "cannot reach" in done.stderr


def test_backoff_grows_with_full_jitter_and_never_comes_before_retry_after():
    assert all(0 <= emit.backoff_delay(0, 0.5, 10) <= 0.5 for _ in range(100))
    assert max(emit.backoff_delay(10, 0.5, 10) for _ in range(200)) <= 10
    assert max(emit.backoff_delay(3, 0.5, 10) for _ in range(200)) > 0.5  # it does grow
    assert all(emit.backoff_delay(0, 0.5, 10, retry_after_s=7) >= 7 for _ in range(50))
    in_a_minute = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    assert 55 < emit.retry_after_seconds(in_a_minute) <= 60
    assert emit.retry_after_seconds("3") == 3.0
    assert emit.retry_after_seconds("soon") is None


def test_event_ids_begin_with_the_millisecond_they_were_made_and_never_repeat():
    before = time.time_ns() // 1_000_000
    made = [emit.new_event_id() for _ in range(10_000)]
    after = time.time_ns() // 1_000_000

    assert all(re.fullmatch(r"evt_[0-9a-f]{32}", event_id) for event_id in made), made[0]
    assert len(set(made)) == len(made)
    assert before <= int(made[0][4:16], 16) <= int(made[-1][4:16], 16) <= after
    # Across milliseconds, ids sort as their times do (within one, at random): as the opencode hook's.
    times = [1_700_000_000_000, 1_700_000_000_001, 1_800_000_000_000, 16**12 - 1]
    ids = [emit.new_event_id(at) for at in times]
    assert sorted(ids) == ids
    assert emit.new_event_id(0).startswith("evt_000000000000")
