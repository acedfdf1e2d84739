"""The task workflow survives what real life does: long runs, worker restarts, Temporal outages, flaky push."""

from __future__ import annotations

import json

import responses
from falcon import testing

import functions.events
from shared.agents.task_workflow import (
    SIGNAL_SLEEP,
    SIGNAL_UNBLOCK,
    WORKFLOW_NAME,
    CarriedState,
    TaskWorkflowInput,
    task_workflow_id,
)
from shared.agents.temporal import gateway, signal_task_workflow
from shared.jobs.workflow_starts import start_workflows
from shared.store.db import database, open_database
from shared.store.migrations import migrate
from shared.store.models import AgentTask, Notification
from tests.processes import free_port
from tests.support import AGENT, event
from tests.temporal_support import FAST, next_second, notifications, post, task_row, wait_for

PUSH_URL = "https://ntfy.example.test/agents-topic"


def events_client(settings):
    return testing.TestClient(functions.events.create_app(settings))


def test_continue_as_new_carries_a_blocked_episode_over_without_alerting_again(temporal, fast_settings, settings):
    offline = events_client(settings)  # Temporal off: the test starts the workflow itself, with short runs
    post(offline, "task.created", {"id": "t-can", "agent_id": "agent-can", "title": "Long one", "priority": "high"})
    with temporal.worker(fast_settings):
        temporal.run(temporal.client.start_workflow(
            WORKFLOW_NAME, TaskWorkflowInput("agent-can", "t-can", ticks_per_run=3, **FAST),
            id=task_workflow_id("agent-can", "t-can"), task_queue=fast_settings.temporal_task_queue))
        wait_for(lambda: task_row("t-can").status == "in_progress")
        post(offline, "task.updated", {"id": "t-can", "status": "blocked", "blocked_reason": "stuck"})
        blocked = wait_for(lambda: (v := temporal.view("agent-can", "t-can"))["status"] == "blocked" and v)
        later = wait_for(lambda: (v := temporal.view("agent-can", "t-can"))["runs"] >= blocked["runs"] + 2 and v,
                         what="two more runs (continue-as-new)")
        assert (later["status"], later["blocked_since"], later["blocked_reason"]) == (
            "blocked", blocked["blocked_since"], "stuck")
        assert [n.rule_id for n in notifications("t-can")] == ["blocked-high"]  # one per episode, not per run
        assert signal_task_workflow(fast_settings, "agent-can", "t-can", SIGNAL_UNBLOCK, "go on")
        wait_for(lambda: temporal.view("agent-can", "t-can")["status"] == "working")
        post(offline, "task.updated", {"id": "t-can", "status": "completed"})
        assert temporal.result("agent-can", "t-can") == "done"
    described = temporal.run(temporal.handle("agent-can", "t-can").describe())
    assert described.run_id != described.raw_description.workflow_execution_info.first_run_id


def test_an_unblock_sent_as_a_continued_run_begins_is_not_lost(temporal, fast_settings, settings):
    """The new run of a continue-as-new may find a signal in its very first workflow task (sent in the
    moment between the runs). That signal must change the state the run carried over, not a blank one."""
    offline = events_client(settings)
    post(offline, "task.created", {"id": "t-seam", "agent_id": "agent-seam", "title": "Seam", "priority": "high"})
    post(offline, "task.updated", {"id": "t-seam", "status": "blocked", "blocked_reason": "stuck"})
    blocked_at = task_row("t-seam").blocked_at
    carried = CarriedState(started=True, status="blocked", blocked_since=blocked_at, blocked_reason="stuck", runs=2)
    temporal.run(temporal.client.start_workflow(  # a continued run, as the last one left it; no worker yet
        WORKFLOW_NAME, TaskWorkflowInput("agent-seam", "t-seam", state=carried, **FAST),
        id=task_workflow_id("agent-seam", "t-seam"), task_queue=fast_settings.temporal_task_queue))
    assert signal_task_workflow(fast_settings, "agent-seam", "t-seam", SIGNAL_UNBLOCK, "go on")
    with temporal.worker(fast_settings):  # the run's first workflow task holds the signal
        wait_for(lambda: temporal.view("agent-seam", "t-seam")["status"] == "working", what="the unblock")
        assert task_row("t-seam").status == "in_progress"
        assert temporal.view("agent-seam", "t-seam")["runs"] == 2  # the carried state, not a blank one
        post(offline, "task.updated", {"id": "t-seam", "status": "completed"})
        assert temporal.result("agent-seam", "t-seam") == "done"


def test_a_sleep_sent_before_any_worker_looked_is_kept(temporal, fast_settings):
    """Tasks are created while the worker is down (restarting, say): what the agent says meanwhile waits
    in the workflow's history and counts once a worker picks the workflow up."""
    client = events_client(fast_settings)
    post(client, "task.created", {"id": "t-asleep", "agent_id": "agent-asleep", "title": "Early", "priority": "high"})
    assert signal_task_workflow(fast_settings, "agent-asleep", "t-asleep", SIGNAL_SLEEP)
    with temporal.worker(fast_settings):
        view = wait_for(lambda: (v := temporal.view("agent-asleep", "t-asleep"))["ticks"] >= 1 and v,
                        what="the first look at the task")
        assert (view["status"], view["sleeping"]) == ("sleeping", True)
        post(client, "task.updated", {"id": "t-asleep", "status": "completed"})
        assert temporal.result("agent-asleep", "t-asleep") == "done"


def test_a_workflow_left_by_a_stopped_worker_completes_on_a_new_one(temporal, fast_settings):
    client = events_client(fast_settings)
    with temporal.worker(fast_settings):
        post(client, "task.created", {"id": "t-restart", "agent_id": "agent-restart", "title": "Survive"})
        wait_for(lambda: task_row("t-restart").status == "in_progress")
    post(client, "task.updated", {"id": "t-restart", "status": "completed"})  # while no worker runs
    with temporal.worker(fast_settings):
        assert temporal.result("agent-restart", "t-restart") == "done"
    assert task_row("t-restart").status == "completed"


def test_a_task_made_anew_under_a_finished_workflows_id_is_watched_again(temporal, fast_settings, empty_database_url):
    """The dashboard's database is replaced (restored from an older backup, or started afresh) while
    Temporal keeps its history. A task that comes again under an id whose workflow has finished is open:
    it gets a new run of that workflow, not the finished one taken for its own."""
    client = events_client(fast_settings)
    with temporal.worker(fast_settings):
        post(client, "task.created", {"id": "t-anew", "agent_id": "agent-anew", "title": "First life"})
        wait_for(lambda: task_row("t-anew").status == "in_progress")
        post(client, "task.updated", {"id": "t-anew", "status": "completed"})
        assert temporal.result("agent-anew", "t-anew") == "done"
    afresh = fast_settings.with_overrides(database_url=empty_database_url)
    open_database(afresh)
    migrate()
    client = events_client(afresh)
    with temporal.worker(afresh):
        post(client, "task.created", {"id": "t-anew", "agent_id": "agent-anew", "title": "Second life"})
        wait_for(lambda: task_row("t-anew").status == "in_progress", what="a new run marks the task started")
        post(client, "task.updated", {"id": "t-anew", "status": "completed"})
        assert temporal.result("agent-anew", "t-anew") == "done"


def test_a_second_blocked_episode_alerts_again_but_each_episode_only_once(temporal, fast_settings):
    client = events_client(fast_settings)
    with temporal.worker(fast_settings):
        post(client, "task.created", {"id": "t-ep", "agent_id": "agent-ep", "title": "Twice", "priority": "high"})
        wait_for(lambda: task_row("t-ep").status == "in_progress")
        for episode in (1, 2):
            post(client, "task.updated", {"id": "t-ep", "status": "blocked", "blocked_reason": f"question {episode}"})
            wait_for(lambda: temporal.view("agent-ep", "t-ep")["status"] == "blocked")
            temporal.ticks_later("agent-ep", "t-ep")  # a few more ticks while blocked: no new alert
            assert len(notifications("t-ep")) == episode
            assert signal_task_workflow(fast_settings, "agent-ep", "t-ep", SIGNAL_UNBLOCK, "answered")
            wait_for(lambda: temporal.view("agent-ep", "t-ep")["status"] == "working")
    assert [n.body.endswith(f"question {i}") for i, n in enumerate(notifications("t-ep"), 1)] == [True, True]


def test_temporal_unreachable_ingest_stays_fast_and_the_reconciler_starts_the_workflow_later(temporal, fast_settings):
    down = fast_settings.with_overrides(temporal_address=f"127.0.0.1:{free_port()}", temporal_retry_after_s=60.0)
    client = events_client(down)
    for n in range(5):
        post(client, "task.created", {"id": f"t-down-{n}", "agent_id": "agent-down", "title": f"Task {n}"})
    assert gateway(down).breaker_open  # the first failure opened it: the others did not wait for Temporal
    assert all(task_row(f"t-down-{n}").workflow_started_at is None for n in range(5))  # waiting

    with temporal.worker(fast_settings), database.connection_context():
        assert sorted(start_workflows(fast_settings)) == [f"t-down-{n}" for n in range(5)]  # Temporal is back
        wait_for(lambda: all(task_row(f"t-down-{n}").status == "in_progress" for n in range(5)))
        assert start_workflows(fast_settings) == []  # nothing waits any more
    assert all(task_row(f"t-down-{n}").workflow_started_at is not None for n in range(5))


@responses.activate
def test_push_goes_to_the_ntfy_url_and_is_retried_after_a_500(temporal, fast_settings):
    responses.add_passthru("http://127.0.0.1")  # nothing else of ours speaks HTTP, but be safe
    responses.add(responses.POST, "https://ntfy.example.test", status=500)
    responses.add(responses.POST, "https://ntfy.example.test", status=200, json={"id": "msg-1"})
    pushing = fast_settings.with_overrides(push_url=PUSH_URL, dashboard_public_url="https://dash.example.test")
    client = events_client(pushing)
    with temporal.worker(pushing):
        post(client, "task.created", {"id": "t-push", "agent_id": "agent-push", "title": "Deploy", "priority": "high"})
        wait_for(lambda: task_row("t-push").status == "in_progress")
        post(client, "task.updated", {"id": "t-push", "status": "blocked", "blocked_reason": "Need a key"})
        wait_for(lambda: notifications("t-push") and notifications("t-push")[0].delivered_at, timeout=20,
                 what="the push delivered on the second try")
    assert len(responses.calls) == 2
    message = json.loads(responses.calls[1].request.body)
    assert message == {"topic": "agents-topic", "title": "Blocked: Deploy", "message": message["message"],
                       "priority": 4, "tags": ["warning", "high"],
                       "click": "https://dash.example.test/agents/agent-push?task=t-push"}
    assert "Need a key" in message["message"]
    with database.connection_context():
        assert AgentTask.get_by_id("t-push").status == "blocked"
        assert Notification.select().count() == 1


def test_an_open_task_from_before_workflows_existed_gets_one_from_the_reconciler(temporal, fast_settings):
    with database.connection_context():
        database.execute_sql("INSERT INTO agents (id, name, type) VALUES ('agent-old', 'Old', 'primary')")
        database.execute_sql("INSERT INTO agent_tasks (id, agent_id, title, status) VALUES"
                             " ('t-old', 'agent-old', 'From the TypeScript days', 'pending')")
    with temporal.worker(fast_settings), database.connection_context():
        assert start_workflows(fast_settings) == ["t-old"]
        wait_for(lambda: task_row("t-old").status == "in_progress")
    task = task_row("t-old")
    assert task.workflow_id == "agent-task-agent-old-t-old" and task.workflow_started_at is not None


def test_an_agent_quiet_too_long_is_announced_once_per_quiet_spell(temporal, fast_settings):
    with database.connection_context():
        database.execute_sql("UPDATE alert_rules SET delay_ms = 1000 WHERE id = 'idle-all'")
    client = events_client(fast_settings)
    with temporal.worker(fast_settings):
        post(client, "task.created", {"id": "t-idle", "agent_id": "agent-idle", "title": "Quiet"})
        wait_for(lambda: task_row("t-idle").status == "in_progress")
        first = wait_for(lambda: notifications("t-idle"), what="the idle_too_long alert")
        assert [(n.rule_id, n.trigger) for n in first] == [("idle-all", "idle_too_long")]
        assert first[0].title == "Idle: Quiet" and first[0].body.startswith("Nothing from agent-idle for ")
        temporal.ticks_later("agent-idle", "t-idle")
        assert len(notifications("t-idle")) == 1  # the same quiet spell is not announced again
        next_second(after=first[0].created_at)  # a heartbeat in a later second starts a new quiet spell
        post(client, "agent.heartbeat", {"id": "agent-idle"})
        wait_for(lambda: len(notifications("t-idle")) == 2, what="a second quiet spell, a second alert")


def test_an_agents_error_fires_the_error_rules_from_its_task_workflow(temporal, fast_settings):
    client = events_client(fast_settings)
    with temporal.worker(fast_settings):
        post(client, "task.created", {"id": "t-err", "agent_id": "agent-err", "title": "Fragile"})
        wait_for(lambda: task_row("t-err").status == "in_progress")
        error = event("session.error", {"error": {"name": "ProviderAuthError", "data": {"message": "bad key"}}},
                      agent_id="agent-err")
        assert client.simulate_post("/api/events", headers=AGENT, json=error).status_code == 202
        fired = wait_for(lambda: notifications("t-err"), what="the error-all alert")
        next_second(after=fired[0].created_at)  # a later second: a second signal would be a second alert
        resent = client.simulate_post("/api/events", headers=AGENT, json=error)
        assert resent.json["duplicates"] == 1
        temporal.ticks_later("agent-err", "t-err")  # a signal would have been alerted by then
        assert len(notifications("t-err")) == 1  # the resent event is acknowledged, not alerted again
    assert [(n.rule_id, n.title, n.body) for n in fired] == [
        ("error-all", "Error: Fragile", "agent-err: ProviderAuthError: bad key")]
