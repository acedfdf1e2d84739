"""Monitoring with no set-up, end to end: a plain opencode agent — nothing configured, no task declared —
posts only opencode's own events (shaped as opencode's types say) to real gunicorn; the test run's Temporal
dev server and a worker, with thresholds of seconds, watch each turn of its session: a permission left
waiting is BLOCKED, notified and pushed, answered from the dashboard, and the finished turn fires the
`completed` rules. The push server is a `responses` stand-in shaped as ntfy answers."""

from __future__ import annotations

import json
import time

import pytest
import responses

from shared.store.db import database
from tests import opencode_events as oc
from tests.processes import gunicorn
from tests.support import AGENT, API_KEY, DASHBOARD, DASHBOARD_TOKEN
from tests.temporal_support import next_second, notifications, wait_for

PUSH_URL = "https://ntfy.example.test/agents-topic"
SESSION = "ses_monitor"
TURN = f"{SESSION}.turn-1"
PARENT = "ses_parent"
PARENT_TURN = f"{PARENT}.turn-1"


@pytest.fixture
def fast(temporal, settings, db):
    """The worker's settings: the dev server, thresholds of seconds, and a push server."""
    fast = temporal.settings_for(settings, blocked_after_high_s=1.0, blocked_after_low_s=3.0, monitor_interval_s=0.2,
                                 push_url=PUSH_URL, dashboard_public_url="https://dash.example.test")
    with temporal.worker(fast):
        yield fast


@pytest.fixture
def server(fast, settings):
    env = {"DASHBOARD_API_KEY": API_KEY, "DASHBOARD_TOKEN": DASHBOARD_TOKEN, "TEMPORAL_ADDRESS": fast.temporal_address,
           "TEMPORAL_TASK_QUEUE": fast.temporal_task_queue, "MONITOR_INTERVAL_S": "0.2",
           "BLOCKED_AFTER_HIGH_S": "1", "BLOCKED_AFTER_LOW_S": "3"}
    with gunicorn(settings.database_url, env, workers=2) as server:
        yield server


@pytest.fixture
def push():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.POST, "https://ntfy.example.test", status=200,
                 json={"id": "hF7x0", "time": 1764670000, "event": "message", "topic": "agents-topic"})
        yield mock


def post(server, *events):
    status, body = server.request("POST", "/api/events", {"events": list(events)}, AGENT)
    assert status == 202, body
    assert body["unknown"] == 0, body


def task(server, task_id: str = TURN):
    status, body = server.request("GET", f"/api/agent/{oc.AGENT_ID}/tasks/{task_id}", headers=DASHBOARD)
    return body["task"] if status == 200 else None


def agent_status(server):
    status, body = server.request("GET", f"/api/agent/{oc.AGENT_ID}/profile", headers=DASHBOARD)
    return body["agent"]["status"] if status == 200 else None


def pushed(push):
    return [json.loads(call.request.body) for call in push.calls]


def test_an_opencode_agent_left_waiting_on_a_permission_is_blocked_pushed_answered_and_its_turn_completed(
        temporal, server, push):
    post(server, oc.session(SESSION), *oc.prompt(SESSION, "msg_m1", "Clean the build and rerun the tests"),
         oc.status(SESSION, "busy"))
    started = wait_for(lambda: (t := task(server)) and t["workflow_started_at"] and t["status"] == "in_progress" and t,
                       timeout=30, what="the turn's task and its workflow")
    assert (started["title"], started["priority"], started["session_id"]) == (
        "Clean the build and rerun the tests", "high", SESSION)
    assert agent_status(server) == "working"

    asked = time.monotonic()
    post(server, oc.permission_asked(SESSION, "per_m1", "rm -rf build"))
    assert agent_status(server) == "blocked"
    assert task(server)["question"]["request_id"] == "per_m1"
    view = wait_for(lambda: (v := temporal.view(oc.AGENT_ID, TURN))["status"] == "blocked" and v, timeout=30,
                    what="BLOCKED past the high threshold")
    assert view["blocked_reason"] == "Permission requested: bash: rm -rf build"
    [blocked] = wait_for(lambda: [n for n in notifications(TURN) if n.trigger == "blocked" and n.delivered_at],
                         timeout=30, what="the blocked notification pushed")
    prompt_to_push_s = time.monotonic() - asked
    [message] = pushed(push)
    assert (message["topic"], message["title"], message["priority"]) == (
        "agents-topic", "Blocked: Clean the build and rerun the tests", 4)
    assert "asks permission: bash: rm -rf build (allow or deny)" in message["message"]
    assert message["click"] == f"https://dash.example.test/agents/{oc.AGENT_ID}?task={TURN}"
    assert blocked.channel == "both"  # in the dashboard as well

    status, body = server.request("POST", f"/api/agent/{oc.AGENT_ID}/tasks/{TURN}/unblock", {"permission": True},
                                  DASHBOARD)
    assert status == 202 and body["signalled"] is True, body
    wait_for(lambda: temporal.view(oc.AGENT_ID, TURN)["status"] == "working", timeout=30, what="the workflow resumed")
    status, inbox = server.request("GET", f"/api/agent/{oc.AGENT_ID}/inbox?request_id=per_m1", headers=AGENT)
    assert [entry["answer"] for entry in inbox["answers"]] == [{"permission": True}]
    post(server, oc.permission_replied(SESSION, "per_m1", "once"))  # opencode took the answer
    assert (task(server)["status"], agent_status(server)) == ("in_progress", "working")

    post(server, *oc.idle(SESSION))  # the turn is over: opencode waits for the person
    assert agent_status(server) == "idle"
    wait_for(lambda: temporal.view(oc.AGENT_ID, TURN)["status"] == "done", timeout=30, what="the workflow done")
    done = wait_for(lambda: [n for n in notifications(TURN) if n.trigger == "completed"], timeout=30,
                    what="the completed rules")
    assert done[0].title == "Done: Clean the build and rerun the tests"
    print(f"\nopencode's permission prompt to the push: {prompt_to_push_s:.2f} s (BLOCKED after 1 s, ticks of 0.2 s)")


def test_a_turn_begun_and_finished_in_one_batch_still_fires_the_completed_rules(temporal, server, push):
    post(server, oc.session("ses_quick"), *oc.prompt("ses_quick", "msg_q", "What does make test run?"),
         oc.status("ses_quick", "busy"), *oc.idle("ses_quick"))
    turn = "ses_quick.turn-1"
    assert task(server, turn)["status"] == "completed"
    done = wait_for(lambda: [n for n in notifications(turn) if n.trigger == "completed"], timeout=30,
                    what="the completed rules of a turn that was over before its workflow started")
    assert done[0].title == "Done: What does make test run?"


def test_a_question_from_a_sub_agent_blocks_the_turn_and_is_answered_with_a_choice(temporal, server, push):
    # Ids of their own: the test run's Temporal keeps other tests' finished workflows.
    post(server, oc.session(PARENT), oc.status(PARENT, "busy"),
         oc.session("ses_sub", title="Pick a database (@general subagent)", parent=PARENT),
         oc.status("ses_sub", "busy"),
         oc.question_asked("ses_sub", "que_m1", oc.question_info("Which database?", "PostgreSQL", "SQLite")))
    wait_for(lambda: temporal.view(oc.AGENT_ID, PARENT_TURN)["status"] == "blocked", timeout=30, what="BLOCKED")
    shown = task(server, PARENT_TURN)["question"]
    assert (shown["type"], shown["choices"], shown["request_id"]) == ("choice", ["PostgreSQL", "SQLite"], "que_m1")
    status, _ = server.request("GET", "/api/agent/sub-ses_sub/profile", headers=DASHBOARD)
    assert status == 200 and agent_status(server) == "blocked"
    status, body = server.request("POST", f"/api/agent/{oc.AGENT_ID}/tasks/{PARENT_TURN}/unblock", {"choice": "SQLite"},
                                  DASHBOARD)
    assert status == 202, body
    status, inbox = server.request("GET", f"/api/agent/{oc.AGENT_ID}/inbox?request_id=que_m1", headers=AGENT)
    assert [entry["answer"] for entry in inbox["answers"]] == [{"choice": "SQLite"}]
    post(server, oc.question_replied("ses_sub", "que_m1", ["SQLite"]))
    status, body = server.request("POST", f"/api/agent/{oc.AGENT_ID}/tasks/{PARENT_TURN}/unblock", {"choice": "SQLite"},
                                  DASHBOARD)
    assert status == 409, body


def test_a_turn_is_quiet_only_while_its_sessions_are(temporal, server, push):
    with database.connection_context():
        database.execute_sql("UPDATE alert_rules SET delay_ms = 1000 WHERE id = 'idle-all'")
    post(server, oc.session("ses_quiet"), oc.status("ses_quiet", "busy"))
    turn = "ses_quiet.turn-1"

    def idle_alerts():
        return [n for n in notifications(turn) if n.trigger == "idle_too_long"]

    first = wait_for(idle_alerts, timeout=30, what="the idle_too_long alert of a quiet turn")
    assert first[0].title == "Idle: New session - 2026-12-02T10:00:00.000Z"
    next_second(after=first[0].created_at)  # news in a later second starts a new quiet spell
    # The model streams its answer: no status, no heartbeat, only the session's own events.
    post(server, oc.oc("message.part.updated", {"part": {"id": "prt_quiet", "sessionID": "ses_quiet",
                                                         "messageID": "msg_reply", "type": "text",
                                                         "text": "Looking at the failing test"}}))
    wait_for(lambda: len(idle_alerts()) == 2, timeout=30, what="a new quiet spell counted from the session's news")
