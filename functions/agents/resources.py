"""Agents and their tasks: the list, a profile, an agent's tasks, a new task, and a person's Unblock / Cancel.

A task's state lives in the database; its workflow is told afterwards. So Unblock and Cancel change
the task at once (and answer 202), then signal the workflow, which finds the change even if the
signal is lost (Temporal down): nothing a person does waits on Temporal.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import falcon

from shared.agents.questions import (
    ANSWER_FIELDS,
    latest_question,
    latest_questions,
    parse_answer,
    pending_question,
    record_answer,
)
from shared.agents.task_workflow import FINISHED, SIGNAL_CANCEL, SIGNAL_UNBLOCK, TASK_STATUSES
from shared.agents.tasks import resume_or_ask_next, set_agent_status, set_task_status, upsert_task
from shared.agents.temporal import TemporalUnavailable, query_task_workflow, signal_task_workflow
from shared.clock import iso_from_unix, now
from shared.config import Settings
from shared.jobs.workflow_starts import start_workflows
from shared.store.db import write_transaction
from shared.store.models import Agent, AgentTask
from shared.store.pagination import page_request, paginate
from shared.web.errors import ApiError, invalid
from shared.web.json_body import read_json
from shared.web.query import list_param
from shared.web.sessions import actor

log = logging.getLogger(__name__)

PRIORITIES = ("urgent", "high", "medium", "low")
AGENT_TYPES = ("primary", "sub-agent")
AGENT_STATUSES = ("idle", "working", "blocked", "sleeping", "offline")
TASK_FIELDS = {"id", "title", "priority", "linear_issue_id", "project_id"}
ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
MAX_TITLE = 500


def agent_or_404(agent_id: str) -> Agent:
    agent = Agent.get_or_none(Agent.id == agent_id)
    if agent is None:
        raise ApiError(404, "not_found", f"No agent {agent_id!r}.")
    return agent


def task_or_404(agent_id: str, task_id: str) -> AgentTask:
    task = AgentTask.get_or_none((AgentTask.id == task_id) & (AgentTask.agent_id == agent_id))
    if task is None:
        raise ApiError(404, "not_found", f"No task {task_id!r} for agent {agent_id!r}.")
    return task


def task_json(task: AgentTask, questions: dict[str, dict] | None = None) -> dict[str, Any]:
    """A task as the API shows it: with its latest question (from `questions`, read ahead for a page,
    or looked up) and whether it still waits for its workflow."""
    body = task.to_json()
    body["question"] = latest_question(task.id) if questions is None else questions.get(task.id)
    body["workflow_waiting"] = body["workflow_started_at"] is None and body["status"] not in FINISHED
    return body


def tasks_json(tasks: list[AgentTask]) -> list[dict[str, Any]]:
    """A page of tasks, their questions read in one query."""
    questions = latest_questions([task.id for task in tasks])
    return [task_json(task, questions) for task in tasks]


class AgentsResource:
    """GET /api/agents?status=a,b&type=&parent= — by id."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = Agent.select()
        if statuses := list_param(req, "status", AGENT_STATUSES):
            query = query.where(Agent.status.in_(statuses))
        if types := list_param(req, "type", AGENT_TYPES):
            query = query.where(Agent.type.in_(types))
        if parent := req.get_param("parent"):
            query = query.where(Agent.parent_agent_id == parent)
        rows, cursor = paginate(query, (Agent.id,), page_request(req), newest_first=False)
        resp.media = {"agents": [row.to_json() for row in rows], "next_cursor": cursor}


class AgentResource:
    """GET /api/agent/{id}/profile; GET and POST /api/agent/{id}/tasks; GET /api/agent/{id}/tasks/{task_id}."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def on_get_profile(self, req: falcon.Request, resp: falcon.Response, agent_id: str) -> None:
        agent = agent_or_404(agent_id)
        parent = Agent.get_or_none(Agent.id == agent.parent_agent_id) if agent.parent_agent_id else None
        children = Agent.select().where(Agent.parent_agent_id == agent_id).order_by(Agent.id)
        current = AgentTask.get_or_none(AgentTask.id == agent.current_task_id) if agent.current_task_id else None
        resp.media = {"agent": agent.to_json(), "parent": parent.to_json() if parent else None,
                      "children": [child.to_json() for child in children],
                      "current_task": task_json(current) if current else None,
                      "last_heartbeat": agent.to_json()["last_heartbeat"]}

    def on_get_tasks(self, req: falcon.Request, resp: falcon.Response, agent_id: str) -> None:
        agent_or_404(agent_id)
        query = AgentTask.select().where(AgentTask.agent_id == agent_id)
        if statuses := list_param(req, "status", TASK_STATUSES):
            query = query.where(AgentTask.status.in_(statuses))
        rows, cursor = paginate(query, (AgentTask.created_at, AgentTask.id), page_request(req))
        resp.media = {"tasks": tasks_json(rows), "next_cursor": cursor}

    def on_get_task(self, req: falcon.Request, resp: falcon.Response, agent_id: str, task_id: str) -> None:
        """One task, with its workflow's own view ("is it stuck?") when Temporal answers."""
        task = task_or_404(agent_id, task_id)
        resp.media = {"task": task_json(task), "workflow": workflow_view(self.settings, agent_id, task_id)}

    def on_post_tasks(self, req: falcon.Request, resp: falcon.Response, agent_id: str) -> None:
        task = parse_new_task(read_json(req, self.settings.max_body_bytes))
        task["agent_id"] = agent_id
        with write_transaction():
            agent_or_404(agent_id)
            if AgentTask.get_or_none(AgentTask.id == task["id"]) is not None:
                raise ApiError(409, "conflict", f"A task {task['id']!r} exists already.", field="id")
            at = now()
            upsert_task(task, at, at)
        started = start_workflows(self.settings, [task["id"]])  # after the commit: the workflow finds its task
        resp.media = {"task": task_json(AgentTask.get_by_id(task["id"])), "workflow_started": bool(started)}
        resp.status = falcon.HTTP_201


def workflow_view(settings: Settings, agent_id: str, task_id: str) -> dict[str, Any]:
    """`{"reachable", "view"}`: the workflow's query answer (status, blocked_since, reason, runs), or
    null when it has none; `reachable` false when Temporal does not answer."""
    if settings.temporal_address is None:
        return {"reachable": False, "view": None}
    try:
        view = query_task_workflow(settings, agent_id, task_id)
    except TemporalUnavailable:
        return {"reachable": False, "view": None}
    if view and view.get("blocked_since") is not None:
        view["blocked_since"] = iso_from_unix(view["blocked_since"])
    return {"reachable": True, "view": view}


def parse_new_task(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid("body", "Send a JSON object: {\"title\": \"...\", \"priority\": \"high\"}.")
    for name in body:
        if name not in TASK_FIELDS:
            raise invalid(name, f"{name} is not a task field; send {', '.join(sorted(TASK_FIELDS))}.")
    title = body.get("title")
    if not isinstance(title, str) or not title.strip() or len(title) > MAX_TITLE:
        raise invalid("title", f"title is required: text of 1 to {MAX_TITLE} characters.")
    priority = body.get("priority", "medium")
    if priority not in PRIORITIES:
        raise invalid("priority", f"priority must be one of {', '.join(PRIORITIES)}.")
    task_id = body.get("id", f"task-{uuid.uuid4().hex[:16]}")
    if not isinstance(task_id, str) or not ID_PATTERN.match(task_id):
        raise invalid("id", "id must be 1 to 128 letters, digits, '.', '_', ':' or '-'.")
    for name in ("linear_issue_id", "project_id"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise invalid(name, f"{name} must be a string id or null.")
    return {"id": task_id, "title": title.strip(), "priority": priority,
            "linear_issue_id": body.get("linear_issue_id"), "project_id": body.get("project_id")}


class TaskActionsResource:
    """POST /api/agent/{id}/tasks/{task_id}/unblock and .../cancel — a person steps in."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def on_post_unblock(self, req: falcon.Request, resp: falcon.Response, agent_id: str, task_id: str) -> None:
        """Unblock, answering the task's question if it asked one: the answer is recorded (with who gave
        it) and put in the agent's inbox in this transaction, then the workflow is signalled with it."""
        reason, answer = unblock_body(req, self.settings.max_body_bytes)
        with write_transaction():
            task = task_or_404(agent_id, task_id)
            if task.status != "blocked":
                raise ApiError(409, "not_blocked", f"Task {task_id!r} is {task.status}, not blocked.")
            at = now()
            answered = None
            if answer is not None:
                question = pending_question(task_id)
                answered = {"question_id": question["id"], "answer": parse_answer(answer, question),
                            "answered_by": actor(req)}
                record_answer(question, answered["answer"], answered["answered_by"], at)
            elif (question := latest_question(task_id)) is not None and question["status"] == "pending":
                field = ANSWER_FIELDS[question["type"]]
                raise invalid(field, f"Task {task_id!r} asks a {question['type']} question: unblock it with"
                                     f" its answer, {{\"{field}\": ...}}.")
            waiting = resume_or_ask_next(task_id, agent_id, at, at, action="answered" if answered else "unblocked")
            if waiting is None and Agent.get_by_id(agent_id).status == "blocked":
                set_agent_status(agent_id, "working", None, at)
        # The answer rides on the unblock signal (a second argument: a workflow that predates it still
        # takes the one-argument signal); the database has it already, whatever happens to the signal.
        self.answer(resp, agent_id, task_id, SIGNAL_UNBLOCK, reason, *([answered] if answered else []))

    def on_post_cancel(self, req: falcon.Request, resp: falcon.Response, agent_id: str, task_id: str) -> None:
        with write_transaction():
            task = task_or_404(agent_id, task_id)
            if task.status in FINISHED:
                raise ApiError(409, "already_finished", f"Task {task_id!r} is {task.status} already.")
            at = now()
            set_task_status(task_id, agent_id, "cancelled", at, at)
        self.answer(resp, agent_id, task_id, SIGNAL_CANCEL)

    def answer(self, resp: falcon.Response, agent_id: str, task_id: str, signal: str, *args: Any) -> None:
        signalled = False
        if self.settings.temporal_address is not None:
            try:
                signalled = signal_task_workflow(self.settings, agent_id, task_id, signal, *args)
            except TemporalUnavailable as error:
                log.info("%s of %s recorded; its workflow will see it when Temporal is back (%s)", signal, task_id,
                         error)
        resp.media = {"task": task_json(AgentTask.get_by_id(task_id)), "signalled": signalled}
        resp.status = falcon.HTTP_202


def unblock_body(req: falcon.Request, max_body_bytes: int) -> tuple[str | None, dict[str, Any] | None]:
    """Unblock takes no body, or `{"reason"?}` plus at most one answer field (`response`, `permission`,
    `choice`); the answer is checked against the question later. (reason, the answer fields or None)."""
    if not req.content_length:
        return None, None
    body = read_json(req, max_body_bytes)
    allowed = {"reason", *ANSWER_FIELDS.values()}
    if not isinstance(body, dict) or set(body) - allowed:
        raise invalid("body", "Send no body, or {\"reason\"?: \"...\"} with the answer: {\"response\": \"...\"},"
                              " {\"permission\": true|false} or {\"choice\": \"...\"}.")
    reason = body.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 2000):
        raise invalid("reason", "reason must be text of at most 2000 characters.")
    answer = {name: value for name, value in body.items() if name != "reason"}
    return reason, answer or None
