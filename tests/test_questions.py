"""Human in the loop without Temporal: an agent's question is checked, stored with its task and shown;
a person's answer is checked against it, recorded with who gave it, and waits in the agent's inbox."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from falcon import testing

from deploy import mount
from shared.agents.questions import time_out
from shared.clock import now
from shared.store.db import database, write_transaction
from shared.store.feed import changes_since
from shared.store.models import AuthSession, InboxEntry, TaskQuestion, User
from shared.web.auth import SESSION_COOKIE, digest
from tests.support import AGENT, DASHBOARD, DASHBOARD_TOKEN, assert_canonical_error, event

PERMISSION = {"type": "permission", "text": "May I force-push to main?"}
CHOICE = {"type": "choice", "text": "Which tag?", "choices": ["v1.2.0", "v1.3.0-rc1"]}
QUESTION = {"type": "question", "text": "What is the staging password's vault path?"}


@pytest.fixture
def app(settings, db) -> testing.TestClient:
    return testing.TestClient(mount.create_app(settings))


def send(app, *events, status=202):
    response = app.simulate_post("/api/events", json={"events": list(events)}, headers=AGENT)
    assert response.status_code == status, response.text
    return response


def ask(app, task_id, question, **extra):
    send(app, event("task.updated", {"id": task_id, "status": "blocked", "question": question, **extra}))


def task(app, task_id="t1", agent_id="main"):
    return app.simulate_get(f"/api/agent/{agent_id}/tasks/{task_id}", headers=DASHBOARD).json["task"]


def answer(app, body, task_id="t1", agent_id="main", headers=DASHBOARD):
    return app.simulate_post(f"/api/agent/{agent_id}/tasks/{task_id}/unblock", json=body, headers=headers)


def inbox(app, agent_id="main", wait=None):
    query = "" if wait is None else f"?wait={wait}"
    response = app.simulate_get(f"/api/agent/{agent_id}/inbox{query}", headers=AGENT)
    assert response.status_code == 200, response.text
    return response.json["answers"]


@pytest.fixture
def working(app):
    send(app, event("task.created", {"id": "t1", "agent_id": "main", "title": "Release", "priority": "high"}),
         event("task.updated", {"id": "t1", "status": "in_progress"}))
    return app


# Asking -------------------------------------------------------------------------------------------------

def test_a_question_is_stored_with_its_task_and_shown_in_the_task_json(working):
    ask(working, "t1", {**CHOICE, "timeout_s": 600})
    shown = task(working)
    assert shown["status"] == "blocked" and shown["blocked_reason"] == "Which tag?"
    question = shown["question"]
    assert set(question) == {"id", "type", "text", "choices", "timeout_s", "asked_at", "status", "answer",
                             "answered_by", "answered_at", "request_id"}
    assert question["request_id"] is None  # an agent's own question, not an opencode prompt
    assert (question["type"], question["text"], question["choices"], question["timeout_s"], question["status"]) == (
        "choice", "Which tag?", ["v1.2.0", "v1.3.0-rc1"], 600, "pending")
    assert question["asked_at"].endswith("Z") and question["answer"] is None
    listed = working.simulate_get("/api/agent/main/tasks", headers=DASHBOARD).json["tasks"]
    assert listed[0]["question"] == question
    profile = working.simulate_get("/api/agent/main/profile", headers=DASHBOARD).json
    assert profile["current_task"]["question"] == question


def test_the_question_is_on_the_stream_with_its_task(working):
    ask(working, "t1", PERMISSION)
    with database.connection_context():
        latest = changes_since(0, topics=["task"])[-1]
    assert latest["action"] == "blocked"
    assert latest["payload"]["id"] == "t1" and latest["payload"]["question"]["text"] == PERMISSION["text"]


def test_a_task_without_a_question_shows_null(working):
    send(working, event("task.updated", {"id": "t1", "status": "blocked", "blocked_reason": "thinking"}))
    assert task(working)["question"] is None


@pytest.mark.parametrize("question, field", [
    ("Which?", "events[0].data.question"),
    ({"type": "quiz", "text": "?"}, "events[0].data.question.type"),
    ({"type": "question", "text": ""}, "events[0].data.question.text"),
    ({"type": "question", "text": "x" * 2001}, "events[0].data.question.text"),
    ({"type": "choice", "text": "Which?"}, "events[0].data.question.choices"),
    ({"type": "choice", "text": "Which?", "choices": []}, "events[0].data.question.choices"),
    ({"type": "choice", "text": "Which?", "choices": ["a", "a"]}, "events[0].data.question.choices"),
    ({"type": "choice", "text": "Which?", "choices": ["a", 2]}, "events[0].data.question.choices"),
    ({"type": "permission", "text": "May I?", "choices": ["yes"]}, "events[0].data.question.choices"),
    ({"type": "question", "text": "?", "timeout_s": 0}, "events[0].data.question.timeout_s"),
    ({"type": "question", "text": "?", "timeout_s": 1.5}, "events[0].data.question.timeout_s"),
    ({"type": "question", "text": "?", "timeout_s": True}, "events[0].data.question.timeout_s"),
    ({"type": "question", "text": "?", "urgent": True}, "events[0].data.question.urgent"),
])
def test_a_malformed_question_is_refused_naming_the_field_and_writes_nothing(working, question, field):
    response = working.simulate_post("/api/events", json={"events": [
        event("task.updated", {"id": "t1", "status": "blocked", "question": question})]}, headers=AGENT)
    assert_canonical_error(response, 422, "unprocessable", field)
    assert task(working)["status"] == "in_progress" and task(working)["question"] is None


def test_a_question_needs_status_blocked(working):
    response = working.simulate_post("/api/events", json=event(
        "task.updated", {"id": "t1", "status": "in_progress", "question": QUESTION}), headers=AGENT)
    assert_canonical_error(response, 422, "unprocessable", "data.question")


def test_the_same_question_resent_stays_one_question_and_a_new_one_replaces_it(working):
    ask(working, "t1", QUESTION)
    first = task(working)["question"]
    ask(working, "t1", QUESTION)  # a resend under a new event id
    assert task(working)["question"] == first
    ask(working, "t1", CHOICE)
    second = task(working)["question"]
    assert second["id"] != first["id"] and second["status"] == "pending"
    with database.connection_context():
        assert TaskQuestion.get_by_id(first["id"]).status == "withdrawn"


def test_a_task_that_moves_on_withdraws_its_question_and_takes_no_answer(working):
    ask(working, "t1", PERMISSION)
    send(working, event("task.updated", {"id": "t1", "status": "in_progress"}))
    assert task(working)["question"]["status"] == "withdrawn"
    send(working, event("task.updated", {"id": "t1", "status": "blocked", "blocked_reason": "again"}))
    assert_canonical_error(answer(working, {"permission": True}), 409, "question_closed")


# Answering --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("question, given", [
    (QUESTION, {"response": "secret/staging/db"}),
    (PERMISSION, {"permission": False}),
    (CHOICE, {"choice": "v1.3.0-rc1"}),
])
def test_each_kind_of_question_is_answered_recorded_and_put_in_the_inbox(working, question, given):
    ask(working, "t1", question)
    before = now()
    response = answer(working, given)
    assert response.status_code == 202, response.text
    body = response.json
    assert body["task"]["status"] == "in_progress" and body["signalled"] is False  # Temporal is off here
    recorded = body["task"]["question"]
    assert (recorded["status"], recorded["answer"], recorded["answered_by"]) == ("answered", given, "dashboard-token")
    assert recorded["answered_at"] >= time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(before))
    [entry] = inbox(working)
    assert entry == {"id": entry["id"], "task_id": "t1", "question_id": recorded["id"], "request_id": None,
                     "status": "answered",
                     "answer": given, "answered_by": "dashboard-token", "answered_at": recorded["answered_at"]}
    with database.connection_context():
        latest = changes_since(0, topics=["task"])[-1]
    assert latest["action"] == "answered" and latest["payload"]["question"]["answer"] == given


@pytest.mark.parametrize("question, given, field", [
    (QUESTION, {"permission": True}, "permission"),
    (QUESTION, {"response": ""}, "response"),
    (QUESTION, {"response": 42}, "response"),
    (PERMISSION, {"permission": "yes"}, "permission"),
    (PERMISSION, {"response": "yes"}, "response"),
    (PERMISSION, {"permission": True, "choice": "a"}, "body"),
    (CHOICE, {"choice": "v9"}, "choice"),
    (CHOICE, {"choice": ["v1.2.0"]}, "choice"),
    (CHOICE, {"response": "v1.2.0"}, "response"),
    (CHOICE, {"pick": "v1.2.0"}, "body"),
    (CHOICE, {"reason": "no answer given"}, "choice"),
])
def test_an_answer_of_the_wrong_shape_is_refused_and_changes_nothing(working, question, given, field):
    ask(working, "t1", question)
    assert_canonical_error(answer(working, given), 422, "unprocessable", field)
    shown = task(working)
    assert shown["status"] == "blocked" and shown["question"]["status"] == "pending"
    assert inbox(working) == []


def test_a_second_answer_is_a_conflict(working):
    ask(working, "t1", CHOICE)
    assert answer(working, {"choice": "v1.2.0"}).status_code == 202
    assert_canonical_error(answer(working, {"choice": "v1.3.0-rc1"}), 409, "not_blocked")
    send(working, event("task.updated", {"id": "t1", "status": "blocked", "blocked_reason": "one more thing"}))
    assert_canonical_error(answer(working, {"choice": "v1.3.0-rc1"}), 409, "already_answered")
    assert task(working)["question"]["answer"] == {"choice": "v1.2.0"}
    assert len(inbox(working)) == 1


def test_concurrent_answers_one_wins_the_others_conflict(working):
    ask(working, "t1", CHOICE)
    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(lambda n: answer(working, {"choice": CHOICE["choices"][n % 2]}).status_code,
                                 range(6)))
    assert sorted(statuses) == [202] + [409] * 5
    assert len(inbox(working)) == 1


def test_an_answer_to_a_task_that_asked_nothing_or_is_not_blocked_is_a_conflict(working):
    assert_canonical_error(answer(working, {"response": "hi"}), 409, "not_blocked")
    send(working, event("task.updated", {"id": "t1", "status": "blocked", "blocked_reason": "stuck"}))
    assert_canonical_error(answer(working, {"response": "hi"}), 409, "no_question")
    assert answer(working, {"reason": "go on"}).status_code == 202  # a plain unblock still works


def test_a_timed_out_question_takes_no_answer(working):
    ask(working, "t1", {**PERMISSION, "timeout_s": 60})
    question_id = task(working)["question"]["id"]
    with database.connection_context(), write_transaction():
        assert time_out(question_id, now()) is True
    with database.connection_context(), write_transaction():
        assert time_out(question_id, now()) is False  # once only
    assert_canonical_error(answer(working, {"permission": True}), 409, "question_closed")
    [entry] = inbox(working)
    assert (entry["status"], entry["answer"], entry["answered_by"]) == ("timed_out", None, None)
    assert task(working)["question"]["status"] == "timed_out"


def test_the_answer_records_the_signed_in_persons_login(working, db):
    token = "session-token-for-tests-0123456789"
    with database.connection_context(), write_transaction():
        User.create(id="u1", github_id="1", github_username="octocat")
        AuthSession.create(id="s1", user_id="u1", token_hash=digest(token),
                           expires_at=now() + 3600)
    ask(working, "t1", PERMISSION)
    response = answer(working, {"permission": True}, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 202, response.text
    assert response.json["task"]["question"]["answered_by"] == "octocat"
    assert inbox(working)[0]["answered_by"] == "octocat"


def test_an_answer_from_a_signed_in_browser_records_its_login(working):
    signed_in = working.simulate_post("/api/auth/login", json={"token": DASHBOARD_TOKEN})
    cookies = {SESSION_COOKIE: signed_in.cookies[SESSION_COOKIE].value}
    ask(working, "t1", QUESTION)
    own_origin = {"Origin": "http://127.0.0.1:3000"}  # DASHBOARD_PUBLIC_URL's (shared.web.proxies)
    response = working.simulate_post("/api/agent/main/tasks/t1/unblock", json={"response": "from the page"},
                                     cookies=cookies, headers=own_origin)
    assert response.status_code == 202, response.text
    assert response.json["task"]["question"]["answered_by"] == signed_in.json["user"]["login"] == "dashboard"


# The inbox --------------------------------------------------------------------------------------------

def test_the_inbox_keeps_an_entry_until_it_is_acknowledged(working):
    ask(working, "t1", QUESTION)
    answer(working, {"response": "yes"})
    [entry] = inbox(working)
    assert inbox(working) == [entry]  # read again: still there
    acked = working.simulate_post(f"/api/agent/main/inbox/{entry['id']}/ack", headers=AGENT)
    assert acked.status_code == 204
    assert inbox(working) == []
    assert working.simulate_post(f"/api/agent/main/inbox/{entry['id']}/ack", headers=AGENT).status_code == 204
    # An id past what a database integer holds is no entry either (it was a 500).
    assert working.simulate_post(f"/api/agent/main/inbox/{2**64}/ack", headers=AGENT).status_code == 404
    with database.connection_context():
        assert InboxEntry.get_by_id(entry["id"]).acked_at is not None


def test_the_inbox_returns_entries_oldest_first_and_only_the_agents_own(working):
    send(working, event("task.created", {"id": "t2", "agent_id": "main", "title": "Second"}),
         event("task.created", {"id": "t3", "agent_id": "other", "title": "Not mine"}))
    for task_id in ("t2", "t1", "t3"):
        ask(working, task_id, QUESTION)
    answer(working, {"response": "two"}, task_id="t2")
    answer(working, {"response": "one"}, task_id="t1")
    answer(working, {"response": "three"}, task_id="t3", agent_id="other")
    assert [(e["task_id"], e["answer"]["response"]) for e in inbox(working)] == [("t2", "two"), ("t1", "one")]
    theirs = inbox(working, "other")[0]
    assert_canonical_error(working.simulate_post(f"/api/agent/main/inbox/{theirs['id']}/ack", headers=AGENT),
                           404, "not_found")


def test_the_inbox_can_be_narrowed_to_one_task(working):
    send(working, event("task.created", {"id": "t2", "agent_id": "main", "title": "Second"}))
    for task_id in ("t1", "t2"):
        ask(working, task_id, QUESTION)
        answer(working, {"response": task_id}, task_id=task_id)
    only = working.simulate_get("/api/agent/main/inbox?task_id=t2&wait=0", headers=AGENT).json["answers"]
    assert [(e["task_id"], e["answer"]) for e in only] == [("t2", {"response": "t2"})]
    started = time.monotonic()
    assert working.simulate_get("/api/agent/main/inbox?task_id=t3&wait=0.3", headers=AGENT).json["answers"] == []
    assert time.monotonic() - started >= 0.25  # it waited: the other tasks' entries do not count


def test_an_empty_inbox_waits_then_answers_empty(working):
    started = time.monotonic()
    assert inbox(working, wait=0.5) == []
    assert time.monotonic() - started >= 0.45  # it waited out its wait


def test_the_inbox_takes_the_agents_key_only_and_checks_wait(working):
    assert_canonical_error(working.simulate_get("/api/agent/main/inbox", headers=DASHBOARD), 401, "unauthorized")
    assert_canonical_error(working.simulate_get("/api/agent/main/inbox"), 401, "unauthorized")
    assert_canonical_error(working.simulate_post("/api/agent/main/inbox/1/ack", headers=DASHBOARD), 401)
    for bad in ("31", "-1", "soon"):
        assert_canonical_error(working.simulate_get(f"/api/agent/main/inbox?wait={bad}", headers=AGENT), 400,
                               "invalid_parameter", "wait")
    assert_canonical_error(working.simulate_get("/api/agent/nobody/inbox", headers=AGENT), 404, "not_found")
    assert_canonical_error(working.simulate_post("/api/agent/main/inbox/999/ack", headers=AGENT), 404, "not_found")
