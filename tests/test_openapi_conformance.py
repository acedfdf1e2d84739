"""schemathesis against the live bundle, over its own OpenAPI document: no server error, and every
answer (status, content type, headers, body) as the document says.

The bundle runs for real: gunicorn with the project's config, a real SQLite file, and every optional
dependency set up the way a user would, so routes answer from their code rather than "not configured":
Linear through the in-memory stand-in served over loopback HTTP (the card move and the sync talk to
it), the webhook secret, GitHub's and Linear's OAuth apps (made up: nothing reaches them), and
Temporal off (`TEMPORAL_ADDRESS=off`: tasks wait for their workflows, which no route answers 503 for;
the Temporal paths have their own tests against a real dev server). The database holds an agent,
tasks, a session, todos, messages, a notification, an inbox entry and a synced Linear project, named
by the document's examples, so operations reach their 200s, not only their 404s.

Bounded: a fixed number of examples per operation and deterministic generation
(tests/schemathesis.toml), streams that end after 0.3 s (`SSE_MAX_STREAM_S`), the inbox's long poll
cut short (tests/schemathesis_hooks.py), and a hard timeout on the whole run.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tests.fake_linear import FakeLinear
from tests.linear_support import LINEAR_API_KEY, LINEAR_WEBHOOK_SECRET, STATES, issue_node, project_node, state_node
from tests.processes import REPO, Server, gunicorn
from tests.support import AGENT, API_KEY, DASHBOARD, DASHBOARD_TOKEN, event

CONFIG = Path(__file__).with_name("schemathesis.toml")
RUN_TIMEOUT_S = 420


def seed(server: Server, database: Path) -> None:
    """What the document's examples name: openclaw-main, its tasks, ses_1, proj-1, notification 1, inbox
    entry 1."""
    events = [
        event("agent.registered", {"id": "openclaw-main", "name": "Main", "type": "primary"}),
        event("agent.registered", {"id": "openclaw-sub", "name": "Sub", "type": "sub-agent",
                                   "parent_agent_id": "openclaw-main"}),
        event("task.created", {"id": "task-blocked", "agent_id": "openclaw-main", "title": "Ship it",
                               "priority": "high"}),
        event("task.updated", {"id": "task-blocked", "status": "blocked", "blocked_reason": "Which tag?"}),
        event("task.created", {"id": "task-asked", "agent_id": "openclaw-main", "title": "Pick a tag"}),
        event("task.updated", {"id": "task-asked", "status": "blocked", "blocked_reason": "Which tag?",
                               "question": {"type": "question", "text": "Which tag?"}}),
        event("task.created", {"id": "task-working", "agent_id": "openclaw-main", "title": "Write docs"}),
        event("task.updated", {"id": "task-working", "status": "in_progress"}),
        event("session.created", {"info": {"id": "ses_1", "title": "Release", "directory": "/repo",
                                           "time": {"created": 1764000000000}}}),
        event("todo.updated", {"sessionID": "ses_1", "todos": [
            {"id": "1", "content": "Tag the release", "status": "pending", "priority": "high"}]}),
        event("message.updated", {"info": {"id": "msg_1", "sessionID": "ses_1", "role": "assistant",
                                           "modelID": "m", "providerID": "p", "cost": 0.01,
                                           "tokens": {"input": 1, "output": 2}}}),
        event("message.part.updated", {"part": {"id": "prt_1", "messageID": "msg_1", "sessionID": "ses_1",
                                                "type": "text", "text": "Tagging v1.2.3"}}),
        event("session.error", {"sessionID": "ses_1", "error": {"name": "APIError", "data": {"message": "x"}}}),
    ]
    status, body = server.request("POST", "/api/events", {"events": events}, AGENT)
    assert status == 202, body
    # A person answers the question: the agent's inbox holds entry 1.
    status, body = server.request("POST", "/api/agent/openclaw-main/tasks/task-asked/unblock",
                                  {"response": "v1.2.3"}, DASHBOARD)
    assert status == 202, body
    status, body = server.request("POST", "/api/linear/sync", {"full": True}, DASHBOARD)
    assert status == 202, body
    deadline = time.monotonic() + 20
    while server.request("GET", "/api/linear/sync", headers=DASHBOARD)[1]["last_success_at"] is None:
        assert time.monotonic() < deadline, "the Linear sync did not finish"
        time.sleep(0.1)
    # Notifications come from the worker's alert rules, which need Temporal: write one as they do.
    with contextlib.closing(sqlite3.connect(database)) as connection, connection:
        connection.execute(
            "INSERT INTO notifications (id, rule_id, trigger, channel, title, body, agent_id, task_id, created_at,"
            " priority) VALUES (1, 'blocked-high', 'blocked', 'both', 'Blocked: Ship it', 'Which tag?',"
            " 'openclaw-main', 'task-blocked', 1764000000, 'high')")


@contextlib.contextmanager
def live_bundle(tmp_path: Path) -> Iterator[Server]:
    fake = FakeLinear(states=[state_node(state) for state in STATES], projects=[project_node()],
                      issues=[issue_node(number=n) for n in range(1, 4)], api_key=LINEAR_API_KEY)
    database = tmp_path / "dashboard.db"
    with fake.serve() as linear_url, gunicorn(f"sqlite:///{database}", {
        "DASHBOARD_API_KEY": API_KEY, "DASHBOARD_TOKEN": DASHBOARD_TOKEN,
        "LINEAR_API_KEY": LINEAR_API_KEY, "LINEAR_API_URL": linear_url, "LINEAR_WEBHOOK_SECRET": LINEAR_WEBHOOK_SECRET,
        # GitHub sign-in and Linear's OAuth app set up, so their routes answer from their code rather than
        # 503 *_not_configured: their state is signed and bound to the browser, so no generated callback
        # reaches GitHub or Linear, and redirects are not followed. Linear is never connected, so
        # disconnecting it has nothing to revoke.
        "GITHUB_CLIENT_ID": "Iv1.conformance-test", "GITHUB_CLIENT_SECRET": "not-a-real-secret-0123456789",
        "LINEAR_CLIENT_ID": "conformance-test", "LINEAR_CLIENT_SECRET": "not-a-real-secret-0123456789",
        "DASHBOARD_SECRET_KEY": "conformance-test-secret-key-0123456789abcdef",
        "SSE_MAX_STREAM_S": "0.3", "SSE_HEARTBEAT_S": "0.1", "DASHBOARD_LOG_LEVEL": "WARNING",
    }, workers=2) as server:
        seed(server, database)
        yield server


def run_schemathesis(server: Server, report_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    env = os.environ | {"OCD_TEST_API_KEY": API_KEY, "OCD_TEST_DASHBOARD_TOKEN": DASHBOARD_TOKEN,
                        "OCD_TEST_LINEAR_WEBHOOK_SECRET": LINEAR_WEBHOOK_SECRET, "NO_COLOR": "1", "COLUMNS": "120"}
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
               f"http://127.0.0.1:{server.port}/api/openapi.json", "--report", "junit",
               "--report-dir", str(report_dir), "--no-color", *extra]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)


def test_the_live_bundle_answers_as_its_openapi_document_says(tmp_path):
    with live_bundle(tmp_path) as server:
        result = run_schemathesis(server, tmp_path / "schemathesis")
        server_log = server.log()
    output = result.stdout + result.stderr
    print(output)  # the run's own summary: operations, test cases, failures (shown with -rP or -s)
    assert result.returncode == 0, output[-20000:] + "\n--- server log ---\n" + server_log[-5000:]
    assert "Traceback" not in server_log, server_log[-5000:]  # nothing crashed, even behind a 4xx


if __name__ == "__main__":  # python -m tests.test_openapi_conformance [schemathesis options]: a live run by hand
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ocd-schemathesis-") as tmp, live_bundle(Path(tmp)) as live:
        completed = run_schemathesis(live, Path(tmp) / "report", *sys.argv[1:])
        print(completed.stdout + completed.stderr)
        print("--- server log ---\n" + live.log()[-20000:])
    sys.exit(completed.returncode)
