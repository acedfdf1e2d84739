"""Digest rules: `completed` with a delay (the seed's completed-batch) sends one notification a window."""

from __future__ import annotations

import json

import pytest
import responses

from shared.jobs.digests import send_due_digests
from shared.store.db import database, execute
from shared.store.models import AlertRule, Change, Notification

T0 = 1_764_000_000
WINDOW = 900  # the seed's completed-batch: 900 000 ms


def complete(task_id: str, at: int, priority: str = "medium", agent: str = "openclaw-main") -> None:
    execute("INSERT INTO agents (id, name, type) VALUES (?, ?, 'primary') ON CONFLICT (id) DO NOTHING",
            (agent, agent))
    execute("INSERT INTO agent_tasks (id, agent_id, title, status, priority, completed_at)"
            " VALUES (?, ?, ?, 'completed', ?, ?)", (task_id, agent, f"Task {task_id}", priority, at))


@pytest.fixture
def digests_only(db):
    """Only the seed's completed-batch rule is on, so the test sees just its notifications."""
    with database.connection_context():
        AlertRule.update(enabled=0).where(AlertRule.id != "completed-batch").execute()
    return db


def test_the_seed_has_a_completed_batch_rule(db):
    rule = AlertRule.get_by_id("completed-batch")
    assert (rule.trigger, rule.delay_ms, rule.channel, rule.enabled) == ("completed", 900000, "in_app", 1)


def test_tasks_completed_in_a_window_make_one_notification_when_it_ends(settings, digests_only):
    assert send_due_digests(settings, now=T0) == []  # the first window starts now
    complete("a", T0 + 10)
    complete("b", T0 + 500)
    assert send_due_digests(settings, now=T0 + WINDOW - 1) == []  # not over yet
    (made,) = send_due_digests(settings, now=T0 + WINDOW)
    notification = Notification.get_by_id(made)
    assert (notification.title, notification.trigger, notification.rule_id) == (
        "2 tasks completed", "completed", "completed-batch")
    assert notification.body == "openclaw-main: Task a\nopenclaw-main: Task b"
    change = Change.select().order_by(Change.id.desc()).get()
    assert (change.topic, change.payload["id"]) == ("notification", made)


def test_a_window_is_reported_once_and_the_next_one_starts_where_it_ended(settings, digests_only):
    send_due_digests(settings, now=T0)
    complete("a", T0 + 10)
    assert len(send_due_digests(settings, now=T0 + WINDOW)) == 1
    assert send_due_digests(settings, now=T0 + WINDOW + 30) == []  # the same window again: nothing
    complete("b", T0 + WINDOW + 60)
    (made,) = send_due_digests(settings, now=T0 + 2 * WINDOW + 5)
    assert Notification.get_by_id(made).body == "openclaw-main: Task b"


def test_a_window_with_nothing_completed_sends_nothing(settings, digests_only):
    send_due_digests(settings, now=T0)
    assert send_due_digests(settings, now=T0 + WINDOW) == []
    assert Notification.select().count() == 0


def test_the_priority_filter_applies_to_the_digest(settings, digests_only):
    with database.connection_context():
        AlertRule.update(priority_filter="high").where(AlertRule.id == "completed-batch").execute()
    send_due_digests(settings, now=T0)
    complete("low-one", T0 + 1, priority="low")
    complete("urgent-one", T0 + 2, priority="urgent")
    (made,) = send_due_digests(settings, now=T0 + WINDOW)
    assert Notification.get_by_id(made).body == "openclaw-main: Task urgent-one"


def test_a_disabled_rule_sends_no_digest(settings, digests_only):
    with database.connection_context():
        AlertRule.update(enabled=0).where(AlertRule.id == "completed-batch").execute()
    send_due_digests(settings, now=T0)
    complete("a", T0 + 1)
    assert send_due_digests(settings, now=T0 + WINDOW) == []


@responses.activate
def test_a_push_digest_is_posted_to_the_push_server(settings, digests_only):
    responses.add(responses.POST, "https://ntfy.example.test", status=200, json={"id": "msg-1"})
    with database.connection_context():
        AlertRule.update(channel="both").where(AlertRule.id == "completed-batch").execute()
    pushing = settings.with_overrides(push_url="https://ntfy.example.test/agents-topic",
                                      dashboard_public_url="https://dash.example.test")
    send_due_digests(pushing, now=T0)
    complete("a", T0 + 1)
    (made,) = send_due_digests(pushing, now=T0 + WINDOW)
    message = json.loads(responses.calls[0].request.body)
    assert (message["topic"], message["title"], message["click"]) == (
        "agents-topic", "1 task completed", "https://dash.example.test")
    assert Notification.get_by_id(made).delivered_at is not None


@responses.activate
def test_a_push_server_error_leaves_the_digest_in_app_and_undelivered(settings, digests_only):
    responses.add(responses.POST, "https://ntfy.example.test", status=500)
    with database.connection_context():
        AlertRule.update(channel="both").where(AlertRule.id == "completed-batch").execute()
    pushing = settings.with_overrides(push_url="https://ntfy.example.test/agents-topic")
    send_due_digests(pushing, now=T0)
    complete("a", T0 + 1)
    (made,) = send_due_digests(pushing, now=T0 + WINDOW)
    assert Notification.get_by_id(made).delivered_at is None
