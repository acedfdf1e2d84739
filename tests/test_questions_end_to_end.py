"""Human in the loop over real HTTP: real gunicorn processes, the test run's Temporal dev server and a
worker. An agent asks, a person answers, the workflow resumes and the agent's long poll returns the
answer at once — from another process, across a restart, and when nobody answers in time."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from tests.processes import gunicorn
from tests.support import AGENT, API_KEY, DASHBOARD, DASHBOARD_TOKEN, event
from tests.temporal_support import notifications, wait_for

QUESTIONS = {
    "question": ({"type": "question", "text": "Which database?"}, {"response": "the staging one"}),
    "permission": ({"type": "permission", "text": "May I delete build/?"}, {"permission": True}),
    "choice": ({"type": "choice", "text": "Which tag?", "choices": ["v1", "v2"]}, {"choice": "v2"}),
}


@pytest.fixture
def fast(temporal, settings, db):
    """Settings on the dev server, with thresholds of seconds, and a worker for the test."""
    fast = temporal.settings_for(settings, blocked_after_high_s=1.0, blocked_after_low_s=3.0,
                                 monitor_interval_s=0.2)
    with temporal.worker(fast):
        yield fast


@pytest.fixture
def env(fast):
    return {"DASHBOARD_API_KEY": API_KEY, "DASHBOARD_TOKEN": DASHBOARD_TOKEN,
            "TEMPORAL_ADDRESS": fast.temporal_address, "TEMPORAL_TASK_QUEUE": fast.temporal_task_queue,
            "MONITOR_INTERVAL_S": "0.2", "BLOCKED_AFTER_HIGH_S": "1", "BLOCKED_AFTER_LOW_S": "3"}


def send(server, type_, data):
    status, body = server.request("POST", "/api/events", event(type_, data, timestamp=datetime.now(UTC).isoformat()),
                                  AGENT)
    assert status == 202, body


def start_task(server, task_id, agent_id="agent-q"):
    send(server, "task.created", {"id": task_id, "agent_id": agent_id, "title": f"Task {task_id}",
                                  "priority": "high"})
    wait_for(lambda: task(server, task_id, agent_id)["status"] == "in_progress", what=f"{task_id} started")


def task(server, task_id, agent_id="agent-q"):
    status, body = server.request("GET", f"/api/agent/{agent_id}/tasks/{task_id}", headers=DASHBOARD)
    assert status == 200, body
    return body["task"]


def inbox(server, agent_id="agent-q", wait=0):
    status, body = server.request("GET", f"/api/agent/{agent_id}/inbox?wait={wait}", headers=AGENT)
    assert status == 200, body
    return body["answers"]


def answer(server, task_id, body, agent_id="agent-q"):
    return server.request("POST", f"/api/agent/{agent_id}/tasks/{task_id}/unblock", body, DASHBOARD)


def test_each_kind_of_question_is_answered_delivered_and_its_workflow_resumes(temporal, settings, env):
    with gunicorn(settings.database_url, env, workers=2) as server:
        for kind, (question, given) in QUESTIONS.items():
            start_task(server, f"t-{kind}")
            send(server, "task.updated", {"id": f"t-{kind}", "status": "blocked", "question": question})
            wait_for(lambda k=kind: temporal.view("agent-q", f"t-{k}")["status"] == "blocked", what="BLOCKED")
            # The BLOCKED notification is written by an activity after the workflow shows BLOCKED: answered
            # before it, the question is no longer waiting, and the notification says only why it was blocked.
            wait_for(lambda k=kind: notifications(f"t-{k}"), what="the BLOCKED notification")
            status, body = answer(server, f"t-{kind}", given)
            assert status == 202 and body["signalled"] is True, body
            view = wait_for(lambda k=kind: (v := temporal.view("agent-q", f"t-{k}"))["status"] == "working" and v,
                            what="the workflow resumed")
            question_id = body["task"]["question"]["id"]
            assert view["last_answer"] == {"question_id": question_id, "answer": given,
                                           "answered_by": "dashboard-token"}
            [entry] = inbox(server)
            assert (entry["task_id"], entry["question_id"], entry["status"], entry["answer"]) == (
                f"t-{kind}", question_id, "answered", given)
            assert server.request("POST", f"/api/agent/agent-q/inbox/{entry['id']}/ack", headers=AGENT)[0] == 204
        assert inbox(server) == []
        notified = notifications("t-choice")
        assert notified and notified[0].body.endswith("asks: Which tag? (choose v1 / v2)")


def test_a_long_poll_returns_as_soon_as_another_process_records_the_answer(settings, env):
    # Two servers on one database: the agent waits on one, the person answers on the other, so the
    # wake-up can only have come through the database.
    with gunicorn(settings.database_url, env, workers=1) as agent_side, \
            gunicorn(settings.database_url, env, workers=1) as person_side:
        start_task(person_side, "t-poll")
        send(person_side, "task.updated", {"id": "t-poll", "status": "blocked",
                                           "question": QUESTIONS["permission"][0]})
        wait = 30  # the longest poll: one that only returned when its wait ran out would miss the join below
        head_start = 1.0
        returned: dict = {}

        def poll():
            started = time.monotonic()
            returned["answers"] = inbox(agent_side, wait=wait)
            returned["after"] = time.monotonic() - started

        poller = threading.Thread(target=poll)
        poller.start()
        poller.join(head_start)  # the poll's head start: the answer comes while it waits
        assert answer(person_side, "t-poll", {"permission": False})[0] == 202
        poller.join(wait / 2)
        assert not poller.is_alive(), "the long poll was not woken by the answer"
        assert [entry["answer"] for entry in returned["answers"]] == [{"permission": False}]
        assert returned["after"] >= head_start  # it was held open until the answer, not answered empty


def test_two_answers_at_once_over_http_one_wins_the_other_is_a_conflict(settings, env):
    with gunicorn(settings.database_url, env, workers=2) as server:
        start_task(server, "t-race")
        send(server, "task.updated", {"id": "t-race", "status": "blocked", "question": QUESTIONS["choice"][0]})
        barrier = threading.Barrier(2)

        def give(choice):
            barrier.wait()
            return answer(server, "t-race", {"choice": choice})

        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(give, ["v1", "v2"]))
        assert sorted(status for status, _ in results) == [202, 409]
        winner = next(body for status, body in results if status == 202)["task"]["question"]["answer"]
        [entry] = inbox(server)
        assert entry["answer"] == winner == task(server, "t-race")["question"]["answer"]


def test_an_answer_waits_in_the_inbox_across_a_restart_until_acknowledged(settings, env):
    with gunicorn(settings.database_url, env, workers=2) as server:
        start_task(server, "t-restart")
        send(server, "task.updated", {"id": "t-restart", "status": "blocked", "question": QUESTIONS["question"][0]})
        assert answer(server, "t-restart", {"response": "keep it"})[0] == 202
    with gunicorn(settings.database_url, env, workers=2) as restarted:
        [entry] = inbox(restarted)
        assert entry["answer"] == {"response": "keep it"}
        assert inbox(restarted) == [entry]  # read, not acknowledged: still there
    with gunicorn(settings.database_url, env, workers=2) as again:
        assert inbox(again) == [entry]
        assert again.request("POST", f"/api/agent/agent-q/inbox/{entry['id']}/ack", headers=AGENT)[0] == 204
        assert inbox(again) == []


def test_a_question_nobody_answers_times_out_tells_the_agent_and_escalates(temporal, settings, env):
    with gunicorn(settings.database_url, env, workers=2) as server:
        start_task(server, "t-late")
        send(server, "task.updated", {"id": "t-late", "status": "blocked",
                                      "question": {**QUESTIONS["permission"][0], "timeout_s": 2}})
        asked = time.monotonic()
        [entry] = inbox(server, wait=30)  # the long poll returns when the workflow times the question out
        waited = time.monotonic() - asked
        assert (entry["task_id"], entry["status"], entry["answer"], entry["answered_by"]) == (
            "t-late", "timed_out", None, None)
        assert waited >= 1.0, waited  # not before its 2 s (counted in whole seconds from when it arrived)
        shown = task(server, "t-late")
        assert (shown["status"], shown["question"]["status"]) == ("blocked", "timed_out")
        status, body = answer(server, "t-late", {"permission": True})
        assert (status, body["error"]["code"]) == (409, "question_closed")
        escalated = wait_for(lambda: [n for n in notifications("t-late") if n.trigger == "question_timeout"],
                             what="the question_timeout rule")
        assert [(n.rule_id, n.title) for n in escalated] == [("question-timeout", "No answer: Task t-late")]
        assert "nobody answered within 2 s" in escalated[0].body
        temporal.ticks_later("agent-q", "t-late")  # more ticks while still blocked: it fired once for this timeout
        assert len([n for n in notifications("t-late") if n.trigger == "question_timeout"]) == 1
        send(server, "task.updated", {"id": "t-late", "status": "completed"})
        assert temporal.result("agent-q", "t-late") == "done"
