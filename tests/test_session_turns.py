"""Monitoring with no set-up, without Temporal: a plain opencode agent's events, shaped as opencode's
types say, make each turn of a session a task, its prompts the task's questions (answerable from the
dashboard, settled by the terminal), and its agent's status follow its sessions."""

from __future__ import annotations

import pytest
from falcon import testing

from deploy import mount
from shared.store.db import database
from shared.store.feed import changes_since
from tests.opencode_events import (
    AGENT_ID,
    idle,
    oc,
    permission_asked,
    permission_replied,
    prompt,
    question_asked,
    question_info,
    question_rejected,
    question_replied,
    session,
    status,
)
from tests.support import AGENT, DASHBOARD, assert_canonical_error, event


@pytest.fixture
def app(settings, db) -> testing.TestClient:
    return testing.TestClient(mount.create_app(settings))


def send(app, *events):
    response = app.simulate_post("/api/events", json={"events": list(events)}, headers=AGENT)
    assert response.status_code == 202, response.text
    assert response.json["unknown"] == 0, response.json


def tasks(app, agent_id=AGENT_ID):
    response = app.simulate_get(f"/api/agent/{agent_id}/tasks", headers=DASHBOARD)
    assert response.status_code == 200, response.text
    return sorted(response.json["tasks"], key=lambda task: task["id"])


def agent(app, agent_id=AGENT_ID):
    return app.simulate_get(f"/api/agent/{agent_id}/profile", headers=DASHBOARD).json["agent"]


def answer(app, task_id, body, agent_id=AGENT_ID):
    return app.simulate_post(f"/api/agent/{agent_id}/tasks/{task_id}/unblock", json=body, headers=DASHBOARD)


def inbox(app, request_id, agent_id=AGENT_ID):
    response = app.simulate_get(f"/api/agent/{agent_id}/inbox", params={"request_id": request_id}, headers=AGENT)
    assert response.status_code == 200, response.text
    return response.json["answers"]


def begin(app, session_id="ses_1", text="Fix the failing checkout test\nIt fails on CI only."):
    send(app, session(session_id), *prompt(session_id, f"msg_{session_id}", text), status(session_id, "busy"))


def test_each_turn_of_a_session_is_a_task_of_its_own_titled_by_the_prompt(app):
    begin(app)
    [task] = tasks(app)
    assert (task["id"], task["title"], task["status"], task["priority"], task["session_id"]) == (
        "ses_1.turn-1", "Fix the failing checkout test", "in_progress", "high", "ses_1")
    assert task["started_at"] is not None and task["started_at"] == task["created_at"]  # at the busy status
    assert [change["action"] for change in changes_since(0, topics=["task"])] == ["started"]
    assert agent(app)["status"] == "working"
    assert agent(app)["current_task_id"] == "ses_1.turn-1"

    send(app, *idle("ses_1"))
    [task] = tasks(app)
    assert (task["status"], task["completed_at"] is not None) == ("completed", True)
    assert (agent(app)["status"], agent(app)["current_task_id"]) == ("idle", None)

    send(app, *prompt("ses_1", "msg_2", "Now add a test for refunds"), status("ses_1", "busy"))
    assert [(t["id"], t["title"], t["status"]) for t in tasks(app)] == [
        ("ses_1.turn-1", "Fix the failing checkout test", "completed"),
        ("ses_1.turn-2", "Now add a test for refunds", "in_progress")]


def test_a_turn_with_no_prompt_seen_takes_the_session_title_and_follows_its_renaming(app):
    send(app, session("ses_t"), status("ses_t", "busy"))
    [task] = tasks(app)
    assert task["title"] == "New session - 2026-12-02T10:00:00.000Z"
    send(app, session("ses_t", title="Checkout flow fixes", kind="session.updated"))
    assert tasks(app)[0]["title"] == "Checkout flow fixes"
    with database.connection_context():
        renamed = [c for c in changes_since(0, topics=["task"]) if c["action"] == "retitled"]
    assert [c["payload"]["title"] for c in renamed] == ["Checkout flow fixes"]  # the page hears of it


def test_a_permission_blocks_the_turn_with_its_question_and_the_dashboards_answer_reaches_the_inbox(app):
    begin(app)
    send(app, permission_asked("ses_1", "per_1", "rm -rf build"))
    [task] = tasks(app)
    assert (task["status"], task["blocked_reason"]) == ("blocked", "Permission requested: bash: rm -rf build")
    question = task["question"]
    assert (question["type"], question["text"], question["status"], question["request_id"]) == (
        "permission", "bash: rm -rf build", "pending", "per_1")
    assert (agent(app)["status"], agent(app)["status_reason"]) == (
        "blocked", "Permission requested: bash: rm -rf build")

    response = answer(app, task["id"], {"permission": True})
    assert response.status_code == 202, response.text
    assert response.json["task"]["status"] == "in_progress"
    [entry] = inbox(app, "per_1")
    assert (entry["request_id"], entry["status"], entry["answer"]) == ("per_1", "answered", {"permission": True})
    assert inbox(app, "per_other") == []

    # The plugin answers opencode, which says so: nothing changes twice, the agent works on.
    send(app, permission_replied("ses_1", "per_1", "once"))
    [task] = tasks(app)
    assert (task["status"], task["question"]["answered_by"]) == ("in_progress", "dashboard-token")
    assert agent(app)["status"] == "working"


def test_in_one_batch_the_agent_ends_as_its_sessions_leave_it_blocked_for_the_prompt(app):
    """The hook sends a turn's events together: the agent's status is the one the batch leaves, and a
    person waited on is still named after the session's later events (which give no reason)."""
    send(app, session("ses_1"), *prompt("ses_1", "msg_1", "Clean the build"), status("ses_1", "busy"),
         permission_asked("ses_1", "per_1", "rm -rf build"), status("ses_1", "busy"))
    assert (agent(app)["status"], agent(app)["status_reason"]) == (
        "blocked", "Permission requested: bash: rm -rf build")

    send(app, permission_replied("ses_1", "per_1", "once"), *idle("ses_1"))
    assert (agent(app)["status"], agent(app)["status_reason"]) == ("idle", None)


def test_in_one_batch_the_agents_own_status_holds_until_its_sessions_change_again(app):
    """agent.status states the agent's status (and its heartbeat): it stands over the batch's events before
    it, and the session events after it set the status from the sessions again, as one event a request would."""
    begin(app)
    stated = event("agent.status", {"id": AGENT_ID, "status": "sleeping", "reason": "night"}, agent_id=AGENT_ID,
                   timestamp="2026-12-02T09:00:00Z")  # before the session's status, sent now
    send(app, status("ses_1", "busy"), stated)
    assert (agent(app)["status"], agent(app)["status_reason"]) == ("sleeping", "night")
    assert agent(app)["last_heartbeat"] == "2026-12-02T09:00:00Z"

    send(app, {**stated, "id": "evt-stated-again"}, status("ses_1", "busy"))
    assert (agent(app)["status"], agent(app)["status_reason"]) == ("working", None)


def test_the_terminal_answering_first_settles_the_question_and_a_later_dashboard_answer_is_409(app):
    begin(app)
    send(app, permission_asked("ses_1", "per_1"), permission_replied("ses_1", "per_1", "reject"))
    [task] = tasks(app)
    assert task["status"] == "in_progress"
    assert (task["question"]["status"], task["question"]["answer"], task["question"]["answered_by"]) == (
        "answered", {"permission": False}, "terminal")
    assert agent(app)["status"] == "working"
    send(app, permission_asked("ses_1", "per_2"))
    send(app, permission_replied("ses_1", "per_2", "always"))
    response = answer(app, "ses_1.turn-1", {"permission": True})
    assert_canonical_error(response, 409, "not_blocked")
    assert inbox(app, "per_2") == []


def test_a_dashboard_answer_to_a_prompt_the_terminal_answered_while_still_blocked_is_409(app):
    begin(app)
    send(app, permission_asked("ses_1", "per_1"), permission_asked("ses_1", "per_2", "git push"))
    send(app, permission_replied("ses_1", "per_1", "once"))  # the terminal took the first; the second waits
    [task] = tasks(app)
    assert (task["status"], task["question"]["request_id"], task["question"]["status"]) == (
        "blocked", "per_2", "pending")
    answered = answer(app, task["id"], {"permission": False})
    assert answered.status_code == 202, answered.text
    assert_canonical_error(answer(app, task["id"], {"permission": True}), 409)


def test_prompts_asked_at_once_wait_in_turn_on_the_dashboard(app):
    begin(app)
    send(app, permission_asked("ses_1", "per_1", "make build"), permission_asked("ses_1", "per_2", "make test"))
    [task] = tasks(app)
    assert (task["question"]["request_id"], task["question"]["status"]) == ("per_1", "pending")
    response = answer(app, task["id"], {"permission": True})
    assert response.status_code == 202, response.text
    following = response.json["task"]
    assert (following["status"], following["question"]["request_id"], following["question"]["status"]) == (
        "blocked", "per_2", "pending")
    assert following["blocked_reason"] == "bash: make test"
    assert agent(app)["status"] == "blocked"
    assert answer(app, task["id"], {"permission": False}).status_code == 202
    assert [entry["answer"] for entry in inbox(app, "per_1") + inbox(app, "per_2")] == [
        {"permission": True}, {"permission": False}]
    assert tasks(app)[0]["status"] == "in_progress"


def test_a_question_with_options_is_a_choice_and_the_terminals_reply_settles_it(app):
    begin(app)
    send(app, question_asked("ses_1", "que_1", question_info("Which database?", "PostgreSQL", "SQLite")))
    [task] = tasks(app)
    question = task["question"]
    assert (task["status"], task["blocked_reason"]) == ("blocked", "Question: Which database?")
    assert (question["type"], question["text"], question["choices"], question["request_id"]) == (
        "choice", "Which database?", ["PostgreSQL", "SQLite"], "que_1")
    send(app, question_replied("ses_1", "que_1", ["SQLite"]))
    [task] = tasks(app)
    assert (task["status"], task["question"]["answer"], task["question"]["answered_by"]) == (
        "in_progress", {"choice": "SQLite"}, "terminal")


def test_several_questions_at_once_take_one_typed_line_each(app):
    begin(app)
    send(app, question_asked("ses_1", "que_2", question_info("Which database?", "PostgreSQL", "SQLite"),
                             question_info("Which features?", "auth", "billing", multiple=True)))
    [task] = tasks(app)
    assert (task["question"]["type"], task["question"]["text"]) == (
        "question", "1. Which database?\n2. Which features?\n(Answer each on its own line.)")
    assert answer(app, task["id"], {"response": "SQLite\nauth, billing"}).status_code == 202
    assert inbox(app, "que_2")[0]["answer"] == {"response": "SQLite\nauth, billing"}


def test_a_question_dismissed_in_the_terminal_is_withdrawn(app):
    begin(app)
    send(app, question_asked("ses_1", "que_3", question_info("Go on?")), question_rejected("ses_1", "que_3"))
    [task] = tasks(app)
    assert (task["status"], task["question"]["type"], task["question"]["status"]) == (
        "in_progress", "question", "withdrawn")
    assert_canonical_error(answer(app, task["id"], {"response": "yes"}), 409, "not_blocked")


def test_a_sub_agents_prompt_blocks_its_top_level_sessions_turn_and_both_agents(app):
    begin(app)
    send(app, session("ses_child", title="Explore the tests (@explore subagent)", parent="ses_1"),
         status("ses_child", "busy"), permission_asked("ses_child", "per_c", "pytest -x"))
    [task] = tasks(app)  # no turn task for the sub-agent's session
    assert (task["id"], task["status"], task["question"]["request_id"]) == ("ses_1.turn-1", "blocked", "per_c")
    assert agent(app, "sub-ses_child")["status"] == "blocked"
    assert agent(app)["status"] == "blocked"
    send(app, permission_replied("ses_child", "per_c"), *idle("ses_child"))
    assert agent(app, "sub-ses_child")["status"] == "idle"
    assert agent(app)["status"] == "working"
    assert tasks(app, "sub-ses_child") == []


def test_an_agent_with_several_sessions_works_while_one_is_busy(app):
    begin(app, "ses_a")
    begin(app, "ses_b", "Update the README")
    send(app, *idle("ses_a"))
    assert agent(app)["status"] == "working"
    send(app, *idle("ses_b"))
    assert agent(app)["status"] == "idle"
    assert [task["status"] for task in tasks(app)] == ["completed", "completed"]


def test_a_deleted_session_cancels_its_open_turn(app):
    begin(app)
    send(app, oc("session.deleted", {"info": {"id": "ses_1", "projectID": "prj_shop", "directory": "/home/me/shop",
                                              "title": "x", "version": "1.18.33",
                                              "time": {"created": 1, "updated": 2}}}))
    assert tasks(app)[0]["status"] == "cancelled"
    assert agent(app)["status"] == "idle"


def test_an_agent_on_a_task_it_declared_has_its_prompts_block_that_task_and_no_turns(app):
    send(app, oc("task.created", {"id": "release", "agent_id": AGENT_ID, "title": "Release 1.2", "priority": "low"}),
         oc("task.updated", {"id": "release", "status": "in_progress"}))
    begin(app)
    send(app, permission_asked("ses_1", "per_r"))
    [task] = tasks(app)
    assert (task["id"], task["status"], task["question"]["request_id"]) == ("release", "blocked", "per_r")


def test_a_terminal_reply_is_recorded_in_the_shape_its_question_takes(app):
    begin(app)
    send(app, question_asked("ses_1", "que_t", question_info("Name the release?")),
         question_replied("ses_1", "que_t", ["v1.3 Pelican"]))
    assert tasks(app)[0]["question"]["answer"] == {"response": "v1.3 Pelican"}
    send(app, question_asked("ses_1", "que_c", question_info("Which database?", "PostgreSQL", "SQLite")),
         question_replied("ses_1", "que_c", ["MySQL"]))  # typed in the terminal instead of picked
    assert tasks(app)[0]["question"]["answer"] == {"response": "MySQL"}
