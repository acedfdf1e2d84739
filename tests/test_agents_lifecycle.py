"""The whole story over HTTP, on a real Temporal dev server: a task created from the dashboard is
started, blocked past its threshold, announced, unblocked by a person, and done."""

from __future__ import annotations

import time

import pytest
from falcon import testing

from deploy import mount
from tests.support import DASHBOARD
from tests.temporal_support import FAST, post, task_row, wait_for


@pytest.fixture
def app(fast) -> testing.TestClient:
    return testing.TestClient(mount.create_app(fast))


def register(app, agent_id: str) -> None:
    post(app, "agent.registered", {"id": agent_id, "name": agent_id, "type": "primary"})


def test_created_blocked_notified_unblocked_over_http_and_done(temporal, app):
    register(app, "agent-http")
    created = app.simulate_post("/api/agent/agent-http/tasks", json={"id": "t-http", "title": "Migrate",
                                                                     "priority": "high"}, headers=DASHBOARD)
    assert created.status_code == 201 and created.json["workflow_started"] is True
    wait_for(lambda: task_row("t-http").status == "in_progress", what="working")
    assert app.simulate_get("/api/agent/agent-http/profile", headers=DASHBOARD).json["agent"]["status"] == "working"

    post(app, "task.updated", {"id": "t-http", "status": "blocked", "blocked_reason": "Prod credentials?"})
    wait_for(lambda: temporal.view("agent-http", "t-http")["status"] == "blocked", what="BLOCKED")
    listed = wait_for(lambda: app.simulate_get("/api/notifications?task_id=t-http", headers=DASHBOARD)
                      .json["notifications"], what="a notification")
    assert [(n["rule_id"], n["title"]) for n in listed] == [("blocked-high", "Blocked: Migrate")]
    assert app.simulate_get("/api/agent/agent-http/profile", headers=DASHBOARD).json["agent"]["status"] == "blocked"
    shown = app.simulate_get("/api/agent/agent-http/tasks/t-http", headers=DASHBOARD).json
    assert shown["workflow"]["reachable"] is True
    assert (shown["workflow"]["view"]["status"], shown["workflow"]["view"]["blocked_reason"]) == (
        "blocked", "Prod credentials?")
    assert shown["workflow"]["view"]["blocked_since"] == shown["task"]["blocked_at"]  # both ISO 8601

    unblocked = app.simulate_post("/api/agent/agent-http/tasks/t-http/unblock", json={"reason": "In the vault"},
                                  headers=DASHBOARD)
    assert unblocked.status_code == 202 and unblocked.json["signalled"] is True
    wait_for(lambda: temporal.view("agent-http", "t-http")["status"] == "working", what="working again")
    assert task_row("t-http").status == "in_progress"

    post(app, "task.updated", {"id": "t-http", "status": "completed"})
    assert temporal.result("agent-http", "t-http") == "done"
    task = app.simulate_get("/api/agent/agent-http/tasks", headers=DASHBOARD).json["tasks"][0]
    assert (task["status"], task["workflow_waiting"]) == ("completed", False)
    assert task["completed_at"] is not None


def test_cancel_over_http_ends_the_workflow_cancelled(temporal, app):
    register(app, "agent-stop")
    app.simulate_post("/api/agent/agent-stop/tasks", json={"id": "t-stop", "title": "Never mind"}, headers=DASHBOARD)
    wait_for(lambda: task_row("t-stop").status == "in_progress")
    cancelled = app.simulate_post("/api/agent/agent-stop/tasks/t-stop/cancel", headers=DASHBOARD)
    assert cancelled.status_code == 202 and cancelled.json["signalled"] is True
    assert temporal.result("agent-stop", "t-stop") == "cancelled"
    profile = app.simulate_get("/api/agent/agent-stop/profile", headers=DASHBOARD).json
    assert profile["current_task"] is None and profile["agent"]["status"] == "idle"


def test_a_sleeping_agent_is_not_escalated_until_it_works_again(temporal, app):
    post(app, "task.created", {"id": "t-nap", "agent_id": "agent-nap", "title": "Nap", "priority": "high"})
    wait_for(lambda: task_row("t-nap").status == "in_progress")
    post(app, "agent.status", {"id": "agent-nap", "status": "sleeping"})
    wait_for(lambda: temporal.view("agent-nap", "t-nap")["status"] == "sleeping", what="the sleep signal")
    post(app, "task.updated", {"id": "t-nap", "status": "blocked", "blocked_reason": "zzz"})
    blocked_at = time.monotonic()
    wait_for(lambda: time.monotonic() - blocked_at > FAST["blocked_after_high_s"], what="the high threshold")
    # Looks at the task after the threshold had passed, each one a chance to escalate: none did.
    assert temporal.ticks_later("agent-nap", "t-nap")["status"] == "sleeping"
    post(app, "agent.status", {"id": "agent-nap", "status": "working"})
    wait_for(lambda: temporal.view("agent-nap", "t-nap")["status"] == "blocked", what="BLOCKED once awake")
