"""Agent and task state changes that more than one writer makes: ingest, the agents routes, the worker.

Each function runs inside the caller's write transaction and records a change for what it changed,
so every writer moves agents and tasks the same way. Plain SQL, because ingest is a hot path.
"""

from __future__ import annotations

from typing import Any

from shared.agents.alerts import settle_blocked_notifications
from shared.agents.questions import promote_queued, task_with_question, withdraw_pending
from shared.agents.task_workflow import FINISHED, task_workflow_id
from shared.linear.cache import link_task
from shared.store.db import execute, first_in_batch
from shared.store.feed import record_row_change
from shared.store.models import Agent, compact_json


def as_json(value: Any) -> str | None:
    return None if value is None else compact_json(value)


def ensure_agent(agent_id: str, now: int, *, name: str | None = None, type: str = "primary",
                 parent_agent_id: str | None = None) -> None:
    """Make sure the agent exists, so tasks and sub-agents can point at it. An existing agent is left
    as it is: what it said about itself in agent.registered wins over what we infer."""
    if parent_agent_id:
        ensure_agent(parent_agent_id, now)
    if not first_in_batch(("agent", agent_id)):
        return  # made sure of already by an earlier event of the batch
    inserted = execute(
        "INSERT INTO agents (id, name, type, parent_agent_id, status, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, 'idle', ?, ?) ON CONFLICT (id) DO NOTHING",
        (agent_id, name or agent_id, type, parent_agent_id, now, now)).rowcount
    if inserted:
        publish_agent(agent_id, "registered")


def publish_agent(agent_id: str, action: str) -> None:
    record_row_change("agent", agent_id, action, lambda: Agent.fetch_json("id = ?", (agent_id,)))


def set_agent_status(agent_id: str, status: str, reason: str | None, now: int) -> None:
    execute("UPDATE agents SET status = ?, status_reason = ?, updated_at = ? WHERE id = ?",
            (status, reason, now, agent_id))
    publish_agent(agent_id, "status")


def upsert_task(task: dict[str, Any], created_at: int, now: int) -> None:
    """Create the task (or update what its creator may restate), registering an unknown agent. A turn
    of an opencode session names its `session_id` (set once, at creation)."""
    _insert_task(task, created_at, now, started_at=None)
    publish_task(task["id"], "created")


def begin_task(task: dict[str, Any], at: int, now: int) -> None:
    """Create a new task already in progress, its agent's current task: what `upsert_task` and then
    `set_task_status(..., "in_progress")` leave, in two statements rather than five (a turn of an opencode
    session begins so at each of its busy statuses, the ingest's hot path)."""
    _insert_task(task, at, now, started_at=at)
    make_current(task["agent_id"], task["id"])
    publish_task(task["id"], "started")


def _insert_task(task: dict[str, Any], created_at: int, now: int, *, started_at: int | None) -> None:
    """Insert the task's row, pending (or in progress since `started_at`); of a task that exists, update
    only what its creator may restate."""
    ensure_agent(task["agent_id"], now)
    execute(
        "INSERT INTO agent_tasks (id, agent_id, title, priority, linear_issue_id, project_id, status,"
        " created_at, started_at, updated_at, workflow_id, session_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET agent_id = excluded.agent_id, title = excluded.title,"
        " priority = excluded.priority, linear_issue_id = excluded.linear_issue_id,"
        " project_id = excluded.project_id, updated_at = excluded.updated_at",
        (task["id"], task["agent_id"], task["title"], task.get("priority") or "medium",
         task.get("linear_issue_id"), task.get("project_id"), "pending" if started_at is None else "in_progress",
         created_at, started_at, now, task_workflow_id(task["agent_id"], task["id"]), task.get("session_id")))
    if task.get("linear_issue_id"):
        link_task(task["linear_issue_id"], task["id"])


def set_task_status(task_id: str, agent_id: str, status: str, at: int, now: int, *,
                    reason: str | None = None, action: str | None = None,
                    new_episode: bool = False) -> None:
    """Move a task to `status`, keeping its timestamps and its agent's current task in step.

    `action` names the change on the feed (default: the status). A blocked task stays in its blocked
    episode (the time it started is kept) unless `new_episode`."""
    if status == "blocked":
        # One blocked episode keeps the time it started; a new reason replaces the old one.
        started = "?" if new_episode else "COALESCE(blocked_at, ?)"
        execute(f"UPDATE agent_tasks SET status = ?, blocked_at = {started},"
                " blocked_reason = COALESCE(?, blocked_reason), updated_at = ? WHERE id = ?",
                (status, at, reason, now, task_id))
    else:
        withdraw_pending(task_id, now)  # moved on without an answer: nobody can answer it any more
        # Leaving blocked settles its notifications (looked for only then: the table has no task index).
        if execute("SELECT status FROM agent_tasks WHERE id = ?", (task_id,)).fetchone() == ("blocked",):
            settle_blocked_notifications(task_id, now)
        finished = at if status in FINISHED else None
        execute("UPDATE agent_tasks SET status = ?, blocked_at = NULL, blocked_reason = NULL,"
                " started_at = CASE WHEN ? = 'in_progress' THEN COALESCE(started_at, ?) ELSE started_at END,"
                " completed_at = COALESCE(?, completed_at), updated_at = ? WHERE id = ?",
                (status, status, at, finished, now, task_id))
    if status == "in_progress":
        make_current(agent_id, task_id)
    elif status in FINISHED:
        execute("UPDATE agents SET current_task_id = NULL WHERE id = ? AND current_task_id = ?",
                (agent_id, task_id))
    publish_task(task_id, action or status)


def make_current(agent_id: str, task_id: str) -> None:
    execute("UPDATE agents SET current_task_id = ? WHERE id = ?", (task_id, agent_id))


def publish_task(task_id: str, action: str) -> None:
    """The task's change, as the API shows it (`task_with_question`)."""
    record_row_change("task", task_id, action, lambda: task_with_question(task_id))


def resume_or_ask_next(task_id: str, agent_id: str, at: int, now: int, *, action: str) -> dict[str, Any] | None:
    """A question of the blocked task was closed (answered, here or in opencode's terminal): the next
    queued question waits now, in a blocked episode of its own, or else the task is back in progress
    (`action` names that change). The question that waits now, or None."""
    question = promote_queued(task_id, now)
    if question is None:
        set_task_status(task_id, agent_id, "in_progress", at, now, action=action)
    else:
        set_task_status(task_id, agent_id, "blocked", now, now, reason=question["text"], action="asked",
                        new_episode=True)
    return question
