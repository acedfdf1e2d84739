"""agentTaskWorkflow on a real Temporal dev server, with the real activities on a real SQLite file."""

from __future__ import annotations

import pytest
from falcon import testing

import functions.events
from shared.agents.task_workflow import SIGNAL_CANCEL, SIGNAL_UNBLOCK
from shared.agents.temporal import signal_task_workflow
from shared.jobs.workflow_starts import start_workflows
from shared.store.db import database
from shared.store.models import Change
from tests.temporal_support import FAST, notifications, post, task_row, wait_for


@pytest.fixture
def events(fast):
    return testing.TestClient(functions.events.create_app(fast))


def test_a_task_is_started_blocked_past_its_threshold_unblocked_and_done(temporal, fast, events):
    post(events, "task.created", {"id": "t-life", "agent_id": "agent-life", "title": "Ship it", "priority": "high"})
    assert task_row("t-life").workflow_started_at is not None  # started right after the commit
    wait_for(lambda: task_row("t-life").status == "in_progress", what="the workflow marks the task started")
    # The row is marked by the workflow's activity; the workflow's own view follows once it returns.
    wait_for(lambda: temporal.view("agent-life", "t-life")["status"] == "working", what="the workflow working")

    post(events, "task.updated", {"id": "t-life", "status": "blocked", "blocked_reason": "Which database?"})
    view = wait_for(lambda: (v := temporal.view("agent-life", "t-life"))["status"] == "blocked" and v,
                    what="BLOCKED after the high threshold")
    assert view["blocked_reason"] == "Which database?"
    task = task_row("t-life")
    assert task.status == "blocked" and task.blocked_at == view["blocked_since"]
    fired = wait_for(lambda: notifications("t-life"), what="the blocked-high notification")
    assert [(n.rule_id, n.trigger, n.channel) for n in fired] == [("blocked-high", "blocked", "both")]
    with database.connection_context():
        assert Change.select().where((Change.topic == "notification") & (Change.action == "created")).count() == 1
        assert Change.select().where((Change.topic == "task") & (Change.action == "escalated")).count() == 1

    assert signal_task_workflow(fast, "agent-life", "t-life", SIGNAL_UNBLOCK, "Use SQLite")
    wait_for(lambda: temporal.view("agent-life", "t-life")["status"] == "working", what="resumed after unblock")
    task = task_row("t-life")
    assert (task.status, task.blocked_at, task.blocked_reason) == ("in_progress", None, None)

    post(events, "task.updated", {"id": "t-life", "status": "completed"})
    assert temporal.result("agent-life", "t-life") == "done"
    with database.connection_context():
        agent = database.execute_sql("SELECT status, current_task_id FROM agents WHERE id = 'agent-life'").fetchone()
    assert agent == ("idle", None)
    assert len(notifications("t-life")) == 2  # blocked-high, then completed-high (in_app)
    assert notifications("t-life")[1].rule_id == "completed-high"


def test_a_low_priority_task_is_not_blocked_before_the_low_threshold(temporal, settings, db):
    # Thresholds 1 s and 5 s: a gap no loaded machine closes, so the check below cannot race.
    thresholds = temporal.settings_for(settings, **(FAST | {"blocked_after_low_s": 5.0}))
    events = testing.TestClient(functions.events.create_app(thresholds))
    with temporal.worker(thresholds):
        check_low_after_high(temporal, events)


def check_low_after_high(temporal, events) -> None:
    post(events, "task.created", {"id": "t-low", "agent_id": "agent-low", "title": "Tidy", "priority": "medium"})
    post(events, "task.created", {"id": "t-high", "agent_id": "agent-high", "title": "Fix prod", "priority": "urgent"})
    wait_for(lambda: task_row("t-low").status == "in_progress" and task_row("t-high").status == "in_progress")
    for task_id in ("t-low", "t-high"):
        post(events, "task.updated", {"id": task_id, "status": "blocked", "blocked_reason": "waiting"})

    wait_for(lambda: temporal.view("agent-high", "t-high")["status"] == "blocked", what="urgent: BLOCKED after 1 s")
    assert temporal.view("agent-low", "t-low")["status"] == "working"  # medium counts as low: 5 s
    wait_for(lambda: temporal.view("agent-low", "t-low")["status"] == "blocked", what="medium: BLOCKED after 5 s")


def test_cancel_signal_cancels_the_task_and_frees_its_agent(temporal, fast, events):
    post(events, "task.created", {"id": "t-cancel", "agent_id": "agent-cancel", "title": "Maybe"})
    wait_for(lambda: task_row("t-cancel").status == "in_progress")
    assert signal_task_workflow(fast, "agent-cancel", "t-cancel", SIGNAL_CANCEL)
    assert temporal.result("agent-cancel", "t-cancel") == "cancelled"
    task = task_row("t-cancel")
    assert task.status == "cancelled" and task.completed_at is not None


def test_a_task_blocked_before_its_workflow_starts_is_still_marked_started(temporal, settings, db):
    offline = testing.TestClient(functions.events.create_app(settings))  # no Temporal: the workflow waits
    post(offline, "task.created", {"id": "t-early", "agent_id": "agent-early", "title": "Quick question"})
    post(offline, "task.updated", {"id": "t-early", "status": "blocked", "blocked_reason": "Now?"})
    fast = temporal.settings_for(settings, **FAST)
    with temporal.worker(fast), database.connection_context():
        assert start_workflows(fast) == ["t-early"]
        wait_for(lambda: task_row("t-early").started_at is not None, what="started_at set")
    assert task_row("t-early").status == "blocked"
    with database.connection_context():
        assert database.execute_sql("SELECT current_task_id FROM agents WHERE id = 'agent-early'").fetchone() == (
            "t-early",)
