"""The task workflow's activities: every read and write it makes, through shared/ only.

Each activity is idempotent (a retry after a crash changes nothing twice), runs in a short
transaction of its own, records a change for every status it changes, and is registered under the
name the workflow calls. They are synchronous (peewee), so the worker runs them on a thread pool.
"""

from __future__ import annotations

import logging
from typing import Any

from temporalio import activity

from shared.agents.alerts import fire_rules, rules_pending
from shared.agents.push import send_push
from shared.agents.questions import latest_question, question_timing, task_with_question, time_out
from shared.agents.task_workflow import (
    ACTIVITY_APPLY_ALERT_RULES,
    ACTIVITY_FINISH_TASK,
    ACTIVITY_MARK_BLOCKED,
    ACTIVITY_OBSERVE_TASK,
    ACTIVITY_PUSH_NOTIFICATION,
    ACTIVITY_RESUME_TASK,
    ACTIVITY_START_TASK,
    ACTIVITY_TIME_OUT_QUESTION,
    FINISHED,
    AlertInput,
    BlockedInput,
    FinishInput,
    QuestionRef,
    ResumeInput,
    TaskObservation,
    TaskRef,
)
from shared.agents.tasks import ensure_agent, set_agent_status, set_task_status
from shared.clock import now as clock_now
from shared.config import Settings
from shared.store.db import database, execute, write_transaction
from shared.store.feed import record_change
from shared.store.models import Agent, AgentTask, Notification

log = logging.getLogger(__name__)


def _task(task_id: str) -> dict[str, Any] | None:
    return AgentTask.fetch_json("id = ?", (task_id,))


def _raw_task(task_id: str) -> tuple | None:
    return execute("SELECT status, priority, blocked_at, blocked_reason, agent_id FROM agent_tasks WHERE id = ?",
                   (task_id,)).fetchone()


class TaskActivities:
    """The activities, with the settings they need (the push URL, the dashboard's address)."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def all(self) -> list:
        return [self.start_task, self.observe_task, self.mark_blocked, self.resume_task, self.finish_task,
                self.apply_alert_rules, self.push_notification, self.time_out_question]

    @activity.defn(name=ACTIVITY_START_TASK)
    def start_task(self, ref: TaskRef) -> TaskObservation:
        """Register the agent (if no event did yet) and mark a pending task started."""
        with database.connection_context(), write_transaction():
            now = clock_now()
            ensure_agent(ref.agent_id, now)
            row = _raw_task(ref.task_id)
            if row is not None and row[0] == "pending":
                set_task_status(ref.task_id, ref.agent_id, "in_progress", now, now, action="started")
                agent = Agent.fetch_json("id = ?", (ref.agent_id,))
                if agent and agent["status"] in ("idle", "offline", None):
                    set_agent_status(ref.agent_id, "working", None, now)
            elif row is not None and row[0] == "blocked" and execute(
                    "UPDATE agent_tasks SET started_at = ? WHERE id = ? AND started_at IS NULL",
                    (now, ref.task_id)).rowcount:
                # Blocked before its workflow got to it: started all the same, and its agent's task.
                execute("UPDATE agents SET current_task_id = ? WHERE id = ? AND current_task_id IS NULL",
                        (ref.task_id, ref.agent_id))
                record_change("task", "started", task_with_question(ref.task_id))
        return self.observe_task(ref)

    @activity.defn(name=ACTIVITY_OBSERVE_TASK)
    def observe_task(self, ref: TaskRef) -> TaskObservation:
        """The task's status and, while it (or its agent, working on it) is blocked, since when and why."""
        with database.connection_context():
            row = _raw_task(ref.task_id)
            if row is None:
                return TaskObservation(status="missing")
            status, priority, blocked_at, blocked_reason, agent_id = row
            since, reason = (blocked_at, blocked_reason) if status == "blocked" else (None, None)
            if since is None and status not in FINISHED:
                agent = execute("SELECT status, status_reason, updated_at, current_task_id FROM agents WHERE id = ?",
                                (agent_id,)).fetchone()
                if agent and agent[0] == "blocked" and agent[3] == ref.task_id:
                    since, reason = agent[2], agent[1]
        if since is None:
            return self._with_question(ref, self._idle_observation(ref, status, priority or "medium"))
        return self._with_question(ref, TaskObservation(status=status, priority=priority or "medium",
                                                        blocked_since=since, blocked_reason=reason,
                                                        blocked_for_s=max(0.0, clock_now() - since)))

    def _with_question(self, ref: TaskRef, observed: TaskObservation) -> TaskObservation:
        """Add the task's question: when a pending one runs out, or when the last one timed out while
        the task is still blocked on it."""
        if observed.status in FINISHED:
            return observed
        with database.connection_context():
            timing = question_timing(ref.task_id)
        if timing is None:
            return observed
        if timing.status == "pending" and timing.timeout_s:
            observed.question_id = timing.id
            observed.question_deadline = timing.asked_at + timing.timeout_s
        elif timing.status == "timed_out" and observed.status == "blocked":
            observed.question_timed_out_at = timing.closed_at
        return observed

    def _idle_observation(self, ref: TaskRef, status: str, priority: str) -> TaskObservation:
        """A task in progress and not blocked: when its agent was last heard of, and whether an
        idle_too_long rule is due for this quiet spell. A turn of an opencode session is heard of
        whenever its session or a sub-agent's under it has news (a message, a part, a tool call)."""
        if status != "in_progress":
            return TaskObservation(status=status, priority=priority)
        with database.connection_context():
            row = execute("SELECT a.last_heartbeat, t.updated_at, t.started_at, (SELECT MAX(s.updated_at)"
                          " FROM sessions s WHERE s.id = t.session_id OR s.parent_id = t.session_id)"
                          " FROM agent_tasks t JOIN agents a ON a.id = t.agent_id WHERE t.id = ?",
                          (ref.task_id,)).fetchone()
            idle_since = max((value for value in row or () if value), default=None)
            due = idle_since is not None and rules_pending("idle_too_long", ref.task_id, priority, idle_since,
                                                           clock_now())
        return TaskObservation(status=status, priority=priority, idle_since=idle_since, idle_alert_due=due)

    @activity.defn(name=ACTIVITY_MARK_BLOCKED)
    def mark_blocked(self, blocked: BlockedInput) -> None:
        """The task has been blocked past its threshold: BLOCKED, with its start and reason kept."""
        ref = blocked.task
        with database.connection_context(), write_transaction():
            now = clock_now()
            row = _raw_task(ref.task_id)
            if row is None or row[0] in FINISHED:
                return
            set_task_status(ref.task_id, ref.agent_id, "blocked", blocked.since, now, reason=blocked.reason,
                            action="escalated")
            agent = Agent.fetch_json("id = ?", (ref.agent_id,))
            if agent and agent["status"] != "blocked":
                set_agent_status(ref.agent_id, "blocked", blocked.reason, now)

    @activity.defn(name=ACTIVITY_RESUME_TASK)
    def resume_task(self, resume: ResumeInput) -> None:
        """A person unblocked the task: back to in progress (nothing to do if it already is, or if it
        is blocked again on a question asked since, which only its answer unblocks)."""
        ref = resume.task
        with database.connection_context(), write_transaction():
            now = clock_now()
            row = _raw_task(ref.task_id)
            question = question_timing(ref.task_id)
            if question is not None and question.status == "pending":
                return
            if row is not None and row[0] == "blocked":
                set_task_status(ref.task_id, ref.agent_id, "in_progress", now, now, action="unblocked")
            agent = Agent.fetch_json("id = ?", (ref.agent_id,))
            if agent and agent["status"] == "blocked":
                set_agent_status(ref.agent_id, "working", None, now)

    @activity.defn(name=ACTIVITY_FINISH_TASK)
    def finish_task(self, finish: FinishInput) -> None:
        """Completed or cancelled: the task closed (if it is not yet) and its agent freed."""
        ref = finish.task
        with database.connection_context(), write_transaction():
            now = clock_now()
            row = _raw_task(ref.task_id)
            if row is not None and row[0] != finish.status:
                set_task_status(ref.task_id, ref.agent_id, finish.status, now, now)
            agent = Agent.fetch_json("id = ?", (ref.agent_id,))
            # Free the agent only if this task was what it was on (set_task_status cleared its current
            # task); an agent already on another task, asleep or offline is left as it is, and so is one
            # whose status follows its opencode sessions (the task was a session's turn).
            turn = execute("SELECT session_id FROM agent_tasks WHERE id = ?", (ref.task_id,)).fetchone()
            if (agent and agent["current_task_id"] is None and agent["status"] in ("working", "blocked")
                    and not (turn and turn[0])):
                set_agent_status(ref.agent_id, "idle", None, now)

    @activity.defn(name=ACTIVITY_TIME_OUT_QUESTION)
    def time_out_question(self, ref: QuestionRef) -> int | None:
        """Nobody answered in time: the question is timed out and the agent's inbox says so. When it
        timed out (Unix s), or None if it no longer waited (answered, withdrawn, timed out already)."""
        with database.connection_context(), write_transaction():
            now = clock_now()
            return now if time_out(ref.question_id, now) else None

    @activity.defn(name=ACTIVITY_APPLY_ALERT_RULES)
    def apply_alert_rules(self, alert: AlertInput) -> list[int]:
        """Fire the rules due in this episode; the ids of new notifications to push (none without PUSH_URL)."""
        with database.connection_context():
            # Evaluated every tick of a blocked task: take the write lock only when a rule is due.
            task = _task(alert.task.task_id)
            if task is None or not rules_pending(alert.trigger, task["id"], task["priority"] or "medium",
                                                 alert.episode, clock_now()):
                return []
        with database.connection_context(), write_transaction():
            task = _task(alert.task.task_id)
            title, body = notification_text(alert, task, latest_question(task["id"]))
            to_push = fire_rules(alert.trigger, task, alert.episode, clock_now(), title=title, body=body)
        return to_push if self.settings.push_url else []

    @activity.defn(name=ACTIVITY_PUSH_NOTIFICATION)
    def push_notification(self, notification_id: int) -> None:
        """POST one notification to the push server; raises (so Temporal retries) when it fails."""
        with database.connection_context():
            notification = Notification.fetch_json("id = ?", (notification_id,))
        if notification is None or notification["delivered_at"] is not None:
            return  # delivered by an earlier attempt
        send_push(self.settings, notification)
        with database.connection_context(), write_transaction():
            execute("UPDATE notifications SET delivered_at = ? WHERE id = ?", (clock_now(), notification_id))


def duration(seconds: float) -> str:
    """2 s, 10 min, 1 h 30 min: how long, as a person reads it."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def question_summary(question: dict[str, Any]) -> str:
    """What the agent asks, as a notification says it: the text and what answer it takes."""
    if question["type"] == "permission":
        return f"asks permission: {question['text']} (allow or deny)"
    if question["type"] == "choice":
        return f"asks: {question['text']} (choose {' / '.join(question['choices'])})"
    return f"asks: {question['text']}"


def agent_name(agent_id: str) -> str:
    agent = Agent.get_or_none(Agent.id == agent_id)
    return agent.name if agent is not None and agent.name else agent_id


def notification_text(alert: AlertInput, task: dict[str, Any],
                      question: dict[str, Any] | None = None) -> tuple[str, str]:
    """A notification's title and body; `question` is the task's latest question, if it asked one. The
    agent is named as a person knows it (its name), not by its id."""
    agent = agent_name(task["agent_id"])
    if alert.trigger == "blocked":
        blocked_for = duration(clock_now() - alert.episode)
        if question is not None and question["status"] == "pending":
            body = f"{agent} has been blocked for {blocked_for} and {question_summary(question)}"
            return f"Blocked: {task['title']}", body
        reason = alert.reason or task.get("blocked_reason") or "no reason given"
        return f"Blocked: {task['title']}", f"{agent} has been blocked for {blocked_for}: {reason}"
    if alert.trigger == "question_timeout" and question is not None:
        waited = duration(question["timeout_s"] or 0)
        return (f"No answer: {task['title']}",
                f"{agent} {question_summary(question)} — nobody answered within {waited}; it was told so.")
    if alert.trigger == "error":
        return f"Error: {task['title']}", f"{agent}: {alert.reason or 'an error'}"
    if alert.trigger == "idle_too_long":
        quiet_for = duration(clock_now() - alert.episode)
        return f"Idle: {task['title']}", f"Nothing from {agent} for {quiet_for} while on {task['title']!r}."
    if alert.trigger == "completed":
        return f"Done: {task['title']}", f"{agent} completed {task['title']!r}."
    return f"{alert.trigger}: {task['title']}", f"{agent}: {alert.reason or alert.trigger}"
