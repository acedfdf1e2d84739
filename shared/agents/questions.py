"""Human in the loop: the questions agents ask about their tasks, a person's answers, the agents' inbox.

An agent asks with a `task.updated` (status `blocked`, `question`); the question is stored with the
task (`task_questions`), at most one pending per task. A person answers through the agents function:
the answer is checked against the question, recorded with who gave it and when, and put in the
agent's inbox (`agent_inbox`) in the same transaction, before anyone signals the workflow (an
outbox). A question with `timeout_s` that nobody answers in time is timed out by the task's workflow,
which also puts word of it in the inbox. The agent picks entries up with a long poll and acknowledges
them; an entry is returned until it is acknowledged, so it is delivered at least once, restarts or not.

Every function here that writes runs inside the caller's write transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NamedTuple

from shared.clock import iso_from_unix
from shared.store.db import execute, insert_returning_id
from shared.store.feed import record_change
from shared.store.models import AgentTask, InboxEntry, TaskQuestion
from shared.web.errors import ApiError, invalid

QUESTION_TYPES = ("question", "permission", "choice")
# The one field of an answer, by question type: {"response": "..."}, {"permission": true}, {"choice": "b"}.
ANSWER_FIELDS = {"question": "response", "permission": "permission", "choice": "choice"}
QUESTION_FIELDS = {"type", "text", "choices", "timeout_s"}
MAX_TEXT = 2000
MAX_CHOICES = 20
MAX_CHOICE = 200
MAX_RESPONSE = 10_000
MAX_TIMEOUT_S = 7 * 24 * 3600
INBOX_PAGE = 100
ANSWERED_IN_TERMINAL = "terminal"  # who answered an opencode prompt that was answered in opencode itself

# A question's own fields as the task JSON shows them (its task and agent are the task's).
SHOWN = ("id", "type", "text", "choices", "timeout_s", "asked_at", "status", "answer", "answered_by",
         "answered_at", "request_id")

# The question a task shows: the one waiting for an answer, else its most recent (a queued question is
# newer than the one waiting, and waits behind it).
SHOWN_QUESTION = "COALESCE(MAX(CASE WHEN status = 'pending' THEN id END), MAX(id))"


# Asking ------------------------------------------------------------------------------------------------

def parse_question(value: Any, where: str) -> dict[str, Any]:
    """A `question` as an agent sends it, checked; a 422 naming `where.<field>` otherwise."""
    if not isinstance(value, dict):
        raise invalid(where, f"{where} must be an object: {{\"type\", \"text\", \"choices\"?, \"timeout_s\"?}}.")
    for name in value:
        if name not in QUESTION_FIELDS:
            raise invalid(f"{where}.{name}", f"{where}.{name} is not a question field; send "
                                             f"{', '.join(sorted(QUESTION_FIELDS))}.")
    kind = value.get("type")
    if kind not in QUESTION_TYPES:
        raise invalid(f"{where}.type", f"{where}.type must be one of {', '.join(QUESTION_TYPES)}.")
    text = value.get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
        raise invalid(f"{where}.text", f"{where}.text must be text of 1 to {MAX_TEXT} characters.")
    choices = value.get("choices")
    if kind == "choice":
        if (not isinstance(choices, list) or not 1 <= len(choices) <= MAX_CHOICES
                or not all(isinstance(c, str) and c.strip() and len(c) <= MAX_CHOICE for c in choices)
                or len(set(choices)) != len(choices)):
            raise invalid(f"{where}.choices", f"{where}.choices must list 1 to {MAX_CHOICES} different choices,"
                                              f" each text of 1 to {MAX_CHOICE} characters.")
    elif choices is not None:
        raise invalid(f"{where}.choices", f"{where}.choices only goes with type choice.")
    timeout_s = value.get("timeout_s")
    if timeout_s is not None and (not isinstance(timeout_s, int) or isinstance(timeout_s, bool)
                                  or not 1 <= timeout_s <= MAX_TIMEOUT_S):
        raise invalid(f"{where}.timeout_s", f"{where}.timeout_s must be whole seconds from 1 to {MAX_TIMEOUT_S}.")
    return {"type": kind, "text": text.strip(), "choices": choices, "timeout_s": timeout_s}


def ask(task_id: str, agent_id: str, question: dict[str, Any], now: int, *, request_id: str | None = None,
        session_id: str | None = None) -> str | None:
    """Store the task's new question; its status (`pending`, or `queued` behind another), None when it
    was stored already.

    An agent's own question: the same one asked again while it waits (a resent event) stays the one
    question; a different one replaces it (the old one is withdrawn). opencode's prompts (`request_id`)
    can be several at once (tools run in parallel): each is its own question, and one asked while
    another waits is queued behind it, to wait next (`promote_queued`)."""
    pending = _pending_row(task_id)
    if request_id is not None:
        if execute("SELECT 1 FROM task_questions WHERE task_id = ? AND request_id = ?",
                   (task_id, request_id)).fetchone():
            return None
        status = "queued" if pending is not None else "pending"
    else:
        if pending is not None:
            if (pending["type"], pending["text"], pending["choices"], pending["timeout_s"]) == (
                    question["type"], question["text"], question["choices"], question["timeout_s"]):
                return None
            withdraw_pending(task_id, now)
        status = "pending"
    execute("INSERT INTO task_questions (task_id, agent_id, type, text, choices, timeout_s, asked_at, status,"
            " request_id, session_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (task_id, agent_id, question["type"], question["text"], TaskQuestion.choices.db_value(question["choices"]),
             question["timeout_s"], now, status, request_id, session_id))
    return status


def withdraw_pending(task_id: str, now: int) -> None:
    """The task moved on without an answer (the agent resumed, finished, or asked something else)."""
    execute("UPDATE task_questions SET status = 'withdrawn', answered_at = ? WHERE task_id = ?"
            " AND status IN ('pending', 'queued')", (now, task_id))


def promote_queued(task_id: str, now: int) -> dict[str, Any] | None:
    """Once no question of the task waits, the oldest queued one does; that question, or None."""
    if _pending_row(task_id) is not None:
        return None
    queued = TaskQuestion.fetch_json("task_id = ? AND status = 'queued' ORDER BY id LIMIT 1", (task_id,))
    if queued is None:
        return None
    # Its wait for a person starts now: its timeout and the task's blocked episode count from here.
    execute("UPDATE task_questions SET status = 'pending', asked_at = ? WHERE id = ?", (now, queued["id"]))
    return {**queued, "status": "pending", "asked_at": now}


def settle_request(request_id: str, now: int,
                   answer_for: Callable[[dict[str, Any]], dict[str, Any] | None]) -> dict[str, Any] | None:
    """opencode's prompt `request_id` was answered in the terminal, `answer_for(question)` being that
    answer in the question's shape, or dismissed there (it gives None): the question, waiting or queued,
    is closed, so an answer from the dashboard now is a 409. The question as it was before, or None when
    none waited."""
    question = TaskQuestion.fetch_json("request_id = ? AND status IN ('pending', 'queued') ORDER BY id LIMIT 1",
                                       (request_id,))
    if question is None:
        return None
    answer = answer_for(question)
    if answer is None:
        execute("UPDATE task_questions SET status = 'withdrawn', answered_at = ? WHERE id = ?", (now, question["id"]))
    else:
        execute("UPDATE task_questions SET status = 'answered', answer = ?, answered_by = ?, answered_at = ?"
                " WHERE id = ?", (TaskQuestion.answer.db_value(answer), ANSWERED_IN_TERMINAL, now, question["id"]))
    return question


# Reading ----------------------------------------------------------------------------------------------

def _pending_row(task_id: str) -> dict[str, Any] | None:
    return TaskQuestion.fetch_json("task_id = ? AND status = 'pending'", (task_id,))


def latest_question(task_id: str) -> dict[str, Any] | None:
    """The task's question as the task JSON shows it: the one waiting, else its most recent."""
    row = TaskQuestion.fetch_json(f"id = (SELECT {SHOWN_QUESTION} FROM task_questions WHERE task_id = ?)", (task_id,))
    return None if row is None else _shown(row)


def latest_questions(task_ids: list[str]) -> dict[str, dict[str, Any]]:
    """task id -> its question as shown (latest_question), for a page of tasks in one query."""
    if not task_ids:
        return {}
    marks = ", ".join("?" * len(task_ids))
    cursor = execute(f"SELECT * FROM task_questions WHERE id IN (SELECT {SHOWN_QUESTION} FROM task_questions"
                     f" WHERE task_id IN ({marks}) GROUP BY task_id)", task_ids)
    columns = [d[0] for d in cursor.description]
    rows = [TaskQuestion.json_from_db(columns, row) for row in cursor.fetchall()]
    return {row["task_id"]: _shown(row) for row in rows}


class QuestionTiming(NamedTuple):
    id: int
    status: str
    asked_at: int  # Unix seconds
    timeout_s: int | None
    closed_at: int | None  # answered, timed out or withdrawn


def question_timing(task_id: str) -> QuestionTiming | None:
    """The clock of the task's question as shown, in Unix seconds (for its workflow's timeout)."""
    row = execute("SELECT id, status, asked_at, timeout_s, answered_at FROM task_questions"
                  f" WHERE id = (SELECT {SHOWN_QUESTION} FROM task_questions WHERE task_id = ?)", (task_id,)).fetchone()
    return None if row is None else QuestionTiming(*row)


def task_with_question(task_id: str) -> dict[str, Any] | None:
    """The task as the API and the feed show it: its row plus `question` (its latest, or null)."""
    task = AgentTask.fetch_json("id = ?", (task_id,))
    if task is not None:
        task["question"] = latest_question(task_id)
    return task


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    return {name: row[name] for name in SHOWN}


# Answering --------------------------------------------------------------------------------------------

def pending_question(task_id: str) -> dict[str, Any]:
    """The task's question waiting for an answer; 409 when there is none (answered, timed out, never asked)."""
    pending = _pending_row(task_id)
    if pending is not None:
        return pending
    latest = latest_question(task_id)
    if latest is None:
        raise ApiError(409, "no_question", f"Task {task_id!r} asked no question; unblock it without an answer.")
    if latest["status"] == "answered":
        raise ApiError(409, "already_answered",
                       f"Task {task_id!r}'s question was answered by {latest['answered_by']} already.")
    raise ApiError(409, "question_closed", f"Task {task_id!r}'s question is {latest['status']}: it takes no answer.")


def parse_answer(answer: dict[str, Any], question: dict[str, Any]) -> dict[str, Any]:
    """The answer (`{"response"}`, `{"permission"}` or `{"choice"}`) checked against the question it
    answers; a 422 naming the field otherwise."""
    expected = ANSWER_FIELDS[question["type"]]
    sent = sorted(answer)
    if sent != [expected]:
        shape = {"response": '{"response": "..."}', "permission": '{"permission": true|false}',
                 "choice": '{"choice": "<one of the choices>"}'}[expected]
        raise invalid(sent[0] if len(sent) == 1 else "body",
                      f"This is a {question['type']} question: answer it with {shape}.")
    value = answer[expected]
    if expected == "response" and (not isinstance(value, str) or not value.strip() or len(value) > MAX_RESPONSE):
        raise invalid("response", f"response must be text of 1 to {MAX_RESPONSE} characters.")
    if expected == "permission" and not isinstance(value, bool):
        raise invalid("permission", "permission must be true (allow) or false (deny).")
    if expected == "choice" and (not isinstance(value, str) or value not in question["choices"]):
        raise invalid("choice", f"choice must be one of the choices offered: {', '.join(question['choices'])}.")
    return {expected: value}


def record_answer(question: dict[str, Any], answer: dict[str, Any], answered_by: str, now: int) -> int:
    """Record the answer and put it in the agent's inbox; the inbox entry's id. 409 if another answer
    got there first (the write lock makes that rare; the status check makes it impossible)."""
    if not execute("UPDATE task_questions SET status = 'answered', answer = ?, answered_by = ?, answered_at = ?"
                   " WHERE id = ? AND status = 'pending'",
                   (TaskQuestion.answer.db_value(answer), answered_by, now, question["id"])).rowcount:
        raise ApiError(409, "already_answered", f"Question {question['id']} was answered already.")
    return _deliver(question, "answered", now)


def time_out(question_id: int, now: int) -> bool:
    """Close a question nobody answered in time and tell its agent; False if it no longer waits."""
    question = TaskQuestion.fetch_json("id = ?", (question_id,))
    if question is None or not execute("UPDATE task_questions SET status = 'timed_out', answered_at = ?"
                                       " WHERE id = ? AND status = 'pending'", (now, question_id)).rowcount:
        return False
    _deliver(question, "timed_out", now)
    record_change("task", "question_timed_out", task_with_question(question["task_id"]))
    return True


def _deliver(question: dict[str, Any], status: str, now: int) -> int:
    return insert_returning_id("INSERT INTO agent_inbox (agent_id, task_id, question_id, status, created_at)"
                               " VALUES (?, ?, ?, ?, ?)",
                               (question["agent_id"], question["task_id"], question["id"], status, now))


# The inbox --------------------------------------------------------------------------------------------

def inbox(agent_id: str, task_id: str | None = None, limit: int = INBOX_PAGE, *,
          request_id: str | None = None) -> list[dict[str, Any]]:
    """The agent's entries not yet acknowledged (only `task_id`'s, or only the one for opencode's prompt
    `request_id`, if given), oldest first."""
    conditions, params = ["i.agent_id = ?", "i.acked_at IS NULL"], [agent_id]
    if task_id is not None:
        conditions.append("i.task_id = ?")
        params.append(task_id)
    if request_id is not None:
        conditions.append("q.request_id = ?")
        params.append(request_id)
    rows = execute("SELECT i.id, i.task_id, i.question_id, q.request_id, i.status, q.answer, q.answered_by,"
                   " q.answered_at FROM agent_inbox i JOIN task_questions q ON q.id = i.question_id"
                   f" WHERE {' AND '.join(conditions)} ORDER BY i.id LIMIT ?", (*params, limit))
    return [{"id": entry_id, "task_id": task_id, "question_id": question_id, "request_id": request_id,
             "status": status, "answer": None if answer is None else json.loads(answer), "answered_by": answered_by,
             "answered_at": iso_from_unix(answered_at)}
            for entry_id, task_id, question_id, request_id, status, answer, answered_by, answered_at
            in rows.fetchall()]


def acknowledge(agent_id: str, entry_id: int, now: int) -> bool:
    """The agent has the entry: it leaves the inbox (acknowledging twice is fine). False if it is not
    this agent's."""
    entry = InboxEntry.fetch_json("id = ? AND agent_id = ?", (entry_id, agent_id))
    if entry is None:
        return False
    if entry["acked_at"] is None:
        execute("UPDATE agent_inbox SET acked_at = ? WHERE id = ?", (now, entry_id))
        record_change("inbox", "acked", {"id": entry_id, "agent_id": agent_id, "task_id": entry["task_id"],
                                         "question_id": entry["question_id"]})
    return True
