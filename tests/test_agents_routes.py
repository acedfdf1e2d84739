"""The agents function without Temporal: agents, profiles, tasks, Unblock / Cancel, rules, notifications."""

from __future__ import annotations

import pytest
from falcon import testing

import functions.agents
from shared.store.db import database, write_transaction
from shared.store.feed import record_change
from shared.store.migrations import DEFAULT_ALERT_RULES, QUESTION_ALERT_RULES
from shared.store.models import Change, Notification
from tests.support import AGENT, DASHBOARD, assert_canonical_error, event


@pytest.fixture
def agents(settings, db) -> testing.TestClient:
    return testing.TestClient(functions.agents.create_app(settings))


def ingest(events_client, *events):
    response = events_client.simulate_post("/api/events", json={"events": list(events)}, headers=AGENT)
    assert response.status_code == 202, response.text


@pytest.fixture
def team(events_client):
    """A primary agent with a sub-agent, and two tasks of the primary's."""
    ingest(events_client,
           event("agent.registered", {"id": "main", "name": "Main", "type": "primary", "soul_md": "# Main",
                                      "skills": ["python"], "config": {"model": "x"}}),
           event("agent.registered", {"id": "explore-1", "name": "Explorer", "type": "sub-agent",
                                      "parent_agent_id": "main"}),
           event("task.created", {"id": "t1", "agent_id": "main", "title": "First", "priority": "high"},
                 timestamp="2026-11-24T10:00:00Z"),
           event("task.created", {"id": "t2", "agent_id": "main", "title": "Second"}, timestamp="2026-11-24T11:00:00Z"),
           event("task.updated", {"id": "t2", "status": "in_progress"}),
           event("agent.status", {"id": "explore-1", "status": "sleeping"}))


def test_agents_are_listed_and_filtered_by_status_type_and_parent(agents, team):
    everyone = agents.simulate_get("/api/agents", headers=DASHBOARD).json
    assert [a["id"] for a in everyone["agents"]] == ["explore-1", "main"] and everyone["next_cursor"] is None
    assert [a["id"] for a in agents.simulate_get("/api/agents?type=sub-agent", headers=DASHBOARD).json["agents"]] \
        == ["explore-1"]
    assert [a["id"] for a in agents.simulate_get("/api/agents?status=sleeping", headers=DASHBOARD).json["agents"]] \
        == ["explore-1"]
    assert [a["id"] for a in agents.simulate_get("/api/agents?parent=main", headers=DASHBOARD).json["agents"]] \
        == ["explore-1"]
    page = agents.simulate_get("/api/agents?limit=1", headers=DASHBOARD).json
    assert len(page["agents"]) == 1 and page["next_cursor"]


def test_a_profile_has_the_soul_skills_parent_children_and_current_task(agents, team):
    profile = agents.simulate_get("/api/agent/main/profile", headers=DASHBOARD).json
    assert profile["agent"]["soul_md"] == "# Main" and profile["agent"]["skills"] == ["python"]
    assert profile["parent"] is None
    assert [child["id"] for child in profile["children"]] == ["explore-1"]
    assert profile["current_task"]["id"] == "t2"
    child = agents.simulate_get("/api/agent/explore-1/profile", headers=DASHBOARD).json
    assert child["parent"]["id"] == "main" and child["current_task"] is None
    assert_canonical_error(agents.simulate_get("/api/agent/nobody/profile", headers=DASHBOARD), 404, "not_found")


def test_an_agents_tasks_are_paged_newest_first_and_filtered_by_status(agents, team):
    tasks = agents.simulate_get("/api/agent/main/tasks", headers=DASHBOARD).json
    assert [t["id"] for t in tasks["tasks"]] == ["t2", "t1"]
    assert tasks["tasks"][1]["workflow_waiting"] is True  # Temporal is off in these tests
    assert [t["id"] for t in agents.simulate_get("/api/agent/main/tasks?status=pending",
                                                 headers=DASHBOARD).json["tasks"]] == ["t1"]
    first = agents.simulate_get("/api/agent/main/tasks?limit=1", headers=DASHBOARD).json
    second = agents.simulate_get(f"/api/agent/main/tasks?limit=1&cursor={first['next_cursor']}",
                                 headers=DASHBOARD).json
    assert [t["id"] for t in first["tasks"] + second["tasks"]] == ["t2", "t1"] and second["next_cursor"] is None
    assert_canonical_error(agents.simulate_get("/api/agent/nobody/tasks", headers=DASHBOARD), 404, "not_found")


def test_one_task_is_shown_with_its_workflow_unreachable_when_temporal_is_off(agents, team):
    body = agents.simulate_get("/api/agent/main/tasks/t1", headers=DASHBOARD).json
    assert body["task"]["id"] == "t1" and body["workflow"] == {"reachable": False, "view": None}
    assert_canonical_error(agents.simulate_get("/api/agent/main/tasks/nope", headers=DASHBOARD), 404, "not_found")
    assert_canonical_error(agents.simulate_get("/api/agent/explore-1/tasks/t1", headers=DASHBOARD), 404)


def test_creating_a_task_stores_it_waiting_for_its_workflow_and_announces_it(agents, team):
    response = agents.simulate_post("/api/agent/main/tasks", json={"id": "t3", "title": "Third", "priority": "urgent"},
                                    headers=DASHBOARD)
    assert response.status_code == 201, response.text
    body = response.json
    assert body["workflow_started"] is False
    assert (body["task"]["id"], body["task"]["status"], body["task"]["priority"]) == ("t3", "pending", "urgent")
    assert body["task"]["workflow_id"] == "agent-task-main-t3" and body["task"]["workflow_waiting"] is True
    with database.connection_context():
        announced = Change.select().where(Change.topic == "task").order_by(Change.id.desc()).get()
        assert (announced.action, announced.payload["id"], announced.payload["status"]) == ("created", "t3", "pending")
    generated = agents.simulate_post("/api/agent/main/tasks", json={"title": "No id"}, headers=DASHBOARD).json
    assert generated["task"]["id"].startswith("task-") and generated["task"]["priority"] == "medium"


@pytest.mark.parametrize(("body", "field"), [
    ({}, "title"), ({"title": "  "}, "title"), ({"title": "x", "priority": "asap"}, "priority"),
    ({"title": "x", "id": "has space"}, "id"), ({"title": "x", "owner": "me"}, "owner"), ([], "body"),
    ({"title": "x", "project_id": 3}, "project_id"),
])
def test_a_bad_new_task_is_422_naming_the_field(agents, team, body, field):
    response = agents.simulate_post("/api/agent/main/tasks", json=body, headers=DASHBOARD)
    assert_canonical_error(response, 422, "unprocessable", field)


def test_creating_a_task_that_exists_or_for_an_unknown_agent_fails(agents, team):
    assert_canonical_error(agents.simulate_post("/api/agent/main/tasks", json={"id": "t1", "title": "Again"},
                                                headers=DASHBOARD), 409, "conflict", "id")
    assert_canonical_error(agents.simulate_post("/api/agent/ghost/tasks", json={"title": "Boo"}, headers=DASHBOARD),
                           404, "not_found")


def test_unblock_resumes_a_blocked_task_and_answers_202(agents, events_client, team):
    ingest(events_client, event("task.updated", {"id": "t2", "status": "blocked", "blocked_reason": "Which DB?"}),
           event("agent.status", {"id": "main", "status": "blocked", "reason": "Which DB?"}))
    response = agents.simulate_post("/api/agent/main/tasks/t2/unblock", json={"reason": "Use SQLite"},
                                    headers=DASHBOARD)
    assert response.status_code == 202, response.text
    assert response.json["signalled"] is False  # no Temporal here: the workflow finds the change later
    task = response.json["task"]
    assert (task["status"], task["blocked_at"], task["blocked_reason"]) == ("in_progress", None, None)
    profile = agents.simulate_get("/api/agent/main/profile", headers=DASHBOARD).json
    assert profile["agent"]["status"] == "working"
    again = agents.simulate_post("/api/agent/main/tasks/t2/unblock", headers=DASHBOARD)
    assert_canonical_error(again, 409, "not_blocked")


def test_unblock_or_cancel_of_an_unknown_task_is_404(agents, team):
    for action in ("unblock", "cancel"):
        assert_canonical_error(agents.simulate_post(f"/api/agent/main/tasks/nope/{action}", headers=DASHBOARD),
                               404, "not_found")
        # A task of another agent is not this agent's.
        assert_canonical_error(agents.simulate_post(f"/api/agent/explore-1/tasks/t1/{action}", headers=DASHBOARD),
                               404, "not_found")


def test_cancel_cancels_an_open_task_once(agents, team):
    response = agents.simulate_post("/api/agent/main/tasks/t2/cancel", headers=DASHBOARD)
    assert response.status_code == 202
    assert response.json["task"]["status"] == "cancelled" and response.json["task"]["completed_at"]
    assert response.json["task"]["workflow_waiting"] is False
    assert_canonical_error(agents.simulate_post("/api/agent/main/tasks/t2/cancel", headers=DASHBOARD),
                           409, "already_finished")


def test_the_routes_need_the_dashboard_token(agents, team):
    assert_canonical_error(agents.simulate_get("/api/agents"), 401)
    assert_canonical_error(agents.simulate_get("/api/agents", headers=AGENT), 401)


# Alert rules ----------------------------------------------------------------------------------------------

def test_the_default_alert_rules_are_seeded(agents):
    rules = agents.simulate_get("/api/alert-rules", headers=DASHBOARD).json["alert_rules"]
    assert sorted((r["id"], r["trigger"], r["priority_filter"], r["delay_ms"], r["channel"], r["enabled"])
                  for r in rules) == sorted((*rule, True) for rule in DEFAULT_ALERT_RULES + QUESTION_ALERT_RULES)


def test_an_alert_rule_is_created_read_updated_and_deleted(agents):
    created = agents.simulate_post("/api/alert-rules", headers=DASHBOARD, json={
        "id": "blocked-urgent", "trigger": "blocked", "priority_filter": "urgent", "channel": "push"})
    assert created.status_code == 201, created.text
    assert created.json["alert_rule"] == {"id": "blocked-urgent", "trigger": "blocked", "priority_filter": "urgent",
                                          "delay_ms": 0, "channel": "push", "enabled": True}
    assert_canonical_error(agents.simulate_post("/api/alert-rules", headers=DASHBOARD, json={
        "id": "blocked-urgent", "trigger": "blocked", "channel": "push"}), 409, "conflict", "id")
    updated = agents.simulate_patch("/api/alert-rules/blocked-urgent", headers=DASHBOARD,
                                    json={"delay_ms": 60000, "enabled": False})
    assert updated.json["alert_rule"]["delay_ms"] == 60000 and updated.json["alert_rule"]["enabled"] is False
    assert agents.simulate_get("/api/alert-rules/blocked-urgent", headers=DASHBOARD).json == updated.json
    assert agents.simulate_delete("/api/alert-rules/blocked-urgent", headers=DASHBOARD).status_code == 204
    assert_canonical_error(agents.simulate_get("/api/alert-rules/blocked-urgent", headers=DASHBOARD), 404)
    assert_canonical_error(agents.simulate_patch("/api/alert-rules/nope", headers=DASHBOARD, json={}), 404)
    with database.connection_context():
        actions = [c.action for c in Change.select().where(Change.topic == "alert_rule").order_by(Change.id)]
    assert actions == ["created", "updated", "deleted"]


@pytest.mark.parametrize(("body", "field"), [
    ({"trigger": "blocked", "channel": "push"}, "id"),
    ({"id": "r", "trigger": "sometimes", "channel": "push"}, "trigger"),
    ({"id": "r", "trigger": "blocked", "channel": "sms"}, "channel"),
    ({"id": "r", "trigger": "blocked", "channel": "push", "priority_filter": "mega"}, "priority_filter"),
    ({"id": "r", "trigger": "blocked", "channel": "push", "delay_ms": -1}, "delay_ms"),
    ({"id": "r", "trigger": "blocked", "channel": "push", "delay_ms": 1.5}, "delay_ms"),
    ({"id": "r", "trigger": "blocked", "channel": "push", "enabled": "yes"}, "enabled"),
    ({"id": "Bad Id", "trigger": "blocked", "channel": "push"}, "id"),
    ({"id": "r", "trigger": "blocked", "channel": "push", "colour": "red"}, "colour"),
])
def test_a_bad_alert_rule_is_422_naming_the_field(agents, body, field):
    assert_canonical_error(agents.simulate_post("/api/alert-rules", json=body, headers=DASHBOARD),
                           422, "unprocessable", field)


def test_a_patch_cannot_rename_a_rule(agents):
    assert_canonical_error(agents.simulate_patch("/api/alert-rules/blocked-high", json={"id": "x"},
                                                 headers=DASHBOARD), 422, "unprocessable", "id")


# Notifications --------------------------------------------------------------------------------------------

def add_notification(title: str, created_at: int) -> int:
    with database.connection_context(), write_transaction():
        notification = Notification.create(rule_id="blocked-high", trigger="blocked", channel="in_app", title=title,
                                           agent_id="main", task_id="t1", created_at=created_at)
        record_change("notification", "created", {"id": notification.id})
    return notification.id


def test_notifications_are_paged_newest_first_and_marked_read(agents):
    first, second = add_notification("one", 1000), add_notification("two", 2000)
    listed = agents.simulate_get("/api/notifications", headers=DASHBOARD).json
    assert [n["id"] for n in listed["notifications"]] == [second, first]
    assert listed["notifications"][0]["read"] is False and "dedup_key" not in listed["notifications"][0]
    read = agents.simulate_post(f"/api/notifications/{first}/read", headers=DASHBOARD)
    assert read.status_code == 200 and read.json["notification"]["read"] is True
    unread = agents.simulate_get("/api/notifications?unread_only=true", headers=DASHBOARD).json
    assert [n["id"] for n in unread["notifications"]] == [second]
    page = agents.simulate_get("/api/notifications?limit=1", headers=DASHBOARD).json
    assert len(page["notifications"]) == 1 and page["next_cursor"]
    assert_canonical_error(agents.simulate_post("/api/notifications/999/read", headers=DASHBOARD), 404, "not_found")
    # More digits than a database integer holds: no such notification either (was a 500).
    assert_canonical_error(agents.simulate_post(f"/api/notifications/{2**63}/read", headers=DASHBOARD), 404)


@pytest.mark.parametrize(("path", "field"), [
    ("/api/agents?status=working,busy", "status"),
    ("/api/agents?type=primary&type=robot", "type"),
    ("/api/agent/main/tasks?status=done", "status"),
    ("/api/notifications?trigger=blocked,late", "trigger"),
    ("/api/notifications?channel=email", "channel"),
])
def test_a_filter_value_that_can_never_match_is_a_400_naming_it(agents, team, path, field):
    # Found by schemathesis' negative tests: these answered 200 with an empty list, hiding a typo.
    assert_canonical_error(agents.simulate_get(path, headers=DASHBOARD), 400, "invalid_parameter", field=field)
