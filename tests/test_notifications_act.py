"""Notifications a person can act on: they name agents by name, all of them can be marked read at once
(POST /api/notifications/read), and a task's "blocked" notifications settle (are read) as soon as the task
is answered or unblocked."""

from __future__ import annotations

import pytest
from falcon import testing

from deploy import mount
from shared.agents.alerts import fire_rules
from shared.agents.task_workflow import AlertInput, TaskRef
from shared.clock import now
from shared.store.db import write_transaction
from shared.store.feed import changes_since
from shared.store.models import AgentTask
from tests.support import AGENT, DASHBOARD, assert_canonical_error, event
from worker.activities import notification_text


@pytest.fixture
def app(settings, db) -> testing.TestClient:
    return testing.TestClient(mount.create_app(settings))


def send(app, *events):
    response = app.simulate_post("/api/events", json={"events": list(events)}, headers=AGENT)
    assert response.status_code == 202, response.text


def blocked(app, task_id: str, **update) -> None:
    send(app, event("task.created", {"id": task_id, "agent_id": "builder", "title": f"Task {task_id}",
                                     "priority": "high"}),
         event("task.updated", {"id": task_id, "status": "blocked", **update}))


def alert(task_id: str, trigger: str = "blocked") -> None:
    """What the task's workflow does when a rule is due: the seed's rules fire for a high-priority task."""
    task = AgentTask.fetch_json("id = ?", (task_id,))
    with write_transaction():
        fire_rules(trigger, task, now() - 3600, now(), title=f"{trigger}: {task['title']}", body="body")


def unread(app, **params) -> list[dict]:
    response = app.simulate_get("/api/notifications", params={"unread_only": "true", **params}, headers=DASHBOARD)
    assert response.status_code == 200, response.text
    return response.json["notifications"]


def test_mark_all_read_reads_every_unread_notification_and_tells_open_pages(app):
    for task_id in ("t1", "t2"):
        blocked(app, task_id, blocked_reason="stuck")
        alert(task_id)
    assert len(unread(app)) >= 2
    last = changes_since(0)[-1]["id"]
    response = app.simulate_post("/api/notifications/read", headers=DASHBOARD)
    assert response.status_code == 200, response.text
    ids = sorted(n["id"] for n in app.simulate_get("/api/notifications", headers=DASHBOARD).json["notifications"])
    assert response.json == {"marked_read": len(ids)}
    assert unread(app) == []
    [change] = changes_since(last, ["notification"])
    assert (change["action"], change["payload"]["ids"]) == ("read_many", ids)
    # Nothing is left unread: a second time reads nothing and says nothing.
    assert app.simulate_post("/api/notifications/read", headers=DASHBOARD).json == {"marked_read": 0}
    assert changes_since(change["id"], ["notification"]) == []


def test_mark_all_read_needs_the_dashboards_credential(app):
    assert_canonical_error(app.simulate_post("/api/notifications/read", headers=AGENT), 401)


@pytest.mark.parametrize("answer", [None, {"response": "Use v2"}], ids=["unblocked", "answered"])
def test_a_blocked_notification_settles_when_its_task_is_answered_or_unblocked(app, answer):
    question = {"question": {"type": "question", "text": "Which version?"}} if answer else {"blocked_reason": "x"}
    blocked(app, "t1", **question)
    blocked(app, "t-other", blocked_reason="still stuck")
    alert("t1")
    alert("t-other")
    assert {n["task_id"] for n in unread(app)} == {"t1", "t-other"}
    response = app.simulate_post("/api/agent/builder/tasks/t1/unblock", json=answer, headers=DASHBOARD)
    assert response.status_code in (200, 202), response.text
    assert {n["task_id"] for n in unread(app)} == {"t-other"}  # the other task still waits for a person
    read = app.simulate_get("/api/notifications", params={"task_id": "t1"}, headers=DASHBOARD).json["notifications"]
    assert read and all(n["read"] and n["read_at"] for n in read)


def test_an_agent_moving_on_by_itself_settles_its_blocked_notification_too(app):
    blocked(app, "t1", blocked_reason="waiting for CI")
    alert("t1")
    send(app, event("task.updated", {"id": "t1", "status": "in_progress"}))
    assert unread(app, task_id="t1") == []


def test_a_notification_names_the_agent_by_its_name(app):
    send(app, event("agent.registered", {"id": "builder", "name": "Release builder", "type": "primary"}))
    blocked(app, "t1", blocked_reason="needs a version")
    task = AgentTask.fetch_json("id = ?", ("t1",))
    title, body = notification_text(AlertInput(TaskRef("builder", "t1"), "blocked", now() - 600), task)
    assert title == "Blocked: Task t1"
    assert body.startswith("Release builder has been blocked for 10 min")
    # An agent the dashboard has no name for is named by its id.
    send(app, event("task.created", {"id": "t3", "agent_id": "ghost", "title": "Haunt", "priority": "high"}))
    ghost = AgentTask.fetch_json("id = ?", ("t3",))
    assert notification_text(AlertInput(TaskRef("ghost", "t3"), "completed", now()), ghost)[1].startswith("ghost")
