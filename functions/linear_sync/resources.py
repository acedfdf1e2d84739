"""The Linear routes of the dashboard: projects and their boards, workflow states, cycles, the card move
and the sync trigger. Every one answers 503 `linear_not_configured` until a Linear credential is set."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import falcon
import peewee

from functions.linear_sync.background import BackgroundSync
from functions.linear_sync.card_move import move_issue
from functions.linear_sync.graphql_client import LinearClient
from functions.linear_sync.lock import SyncAlreadyRunning, SyncLock
from shared.clock import iso_from_unix
from shared.linear import cache as linear_cache
from shared.store.db import write_transaction
from shared.store.feed import record_change
from shared.store.models import Agent, AgentTask, LinearCycle, LinearIssue, LinearProject, LinearWorkflowState
from shared.store.pagination import page_request, paginate
from shared.web.errors import ApiError, invalid
from shared.web.json_body import read_json
from shared.web.query import list_param

MAX_URL_LENGTH = 2048
PROJECT_STATES = ("backlog", "planned", "started", "paused", "completed", "canceled")  # Linear's status types


def linear_required(req: falcon.Request, resp: falcon.Response, resource: Any, params: dict) -> None:
    """Falcon hook: without a Linear credential the cache would only go stale; say so instead."""
    if not resource.linear_configured():
        raise ApiError(503, "linear_not_configured",
                       "Linear is not configured: connect it (GET /api/auth/linear/login), or set LINEAR_API_KEY "
                       "(a personal API key) or LINEAR_OAUTH_TOKEN and restart.")


def _project_or_404(project_id: str) -> LinearProject:
    project = LinearProject.get_or_none(LinearProject.id == project_id)
    if project is None:
        raise ApiError(404, "not_found", f"No project {project_id!r} in the Linear cache.")
    return project


def _with_issue_summary(projects: list[LinearProject]) -> list[dict[str, Any]]:
    """Each project's JSON with its cached issue count and its last activity (the newest update of the
    project or any of its issues: the page opens the board that moved last)."""
    query = (LinearIssue.select(LinearIssue.project_id, peewee.fn.COUNT(LinearIssue.id).alias("count"),
                                peewee.fn.MAX(LinearIssue.updated_at).alias("latest"))
             .where(LinearIssue.project_id.in_([project.id for project in projects]))
             .group_by(LinearIssue.project_id))
    issues = {row.project_id: (row.count, row.latest) for row in query}
    summaries = []
    for project in projects:
        count, latest = issues.get(project.id, (0, None))
        last_activity = max((at for at in (project.updated_at, latest) if at is not None), default=None)
        summaries.append(linear_cache.project_json(project) | {
            "issue_count": count, "last_activity_at": iso_from_unix(last_activity)})
    return summaries


@falcon.before(linear_required)
class ProjectsResource:
    """GET /api/projects, GET|PATCH /api/projects/{id}, GET /api/projects/{id}/board."""

    def __init__(self, linear_configured: Callable[[], bool], max_body_bytes: int):
        self.linear_configured = linear_configured
        self.max_body_bytes = max_body_bytes

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = LinearProject.select()
        if states := list_param(req, "state", PROJECT_STATES):
            query = query.where(LinearProject.state.in_(states))
        if team_id := req.get_param("team_id"):
            query = query.where(LinearProject.team_id == team_id)
        rows, cursor = paginate(query, (LinearProject.name, LinearProject.id), page_request(req), newest_first=False)
        resp.media = {"projects": _with_issue_summary(rows), "next_cursor": cursor}

    def on_get_item(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        resp.media = {"project": _with_issue_summary([_project_or_404(project_id)])[0]}

    def on_patch_item(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        body = read_json(req, self.max_body_bytes)
        if not isinstance(body, dict) or set(body) != {"prod_url"}:
            raise invalid("body", "Send {\"prod_url\": \"https://...\"} (or null); the other fields come from Linear.")
        prod_url = _prod_url(body["prod_url"])
        with write_transaction():
            project = _project_or_404(project_id)
            if project.prod_url != prod_url:
                LinearProject.update(prod_url=prod_url).where(LinearProject.id == project_id).execute()
                project = LinearProject.get_by_id(project_id)
                record_change(linear_cache.PROJECT_TOPIC, "updated", linear_cache.project_json(project))
        resp.media = {"project": linear_cache.project_json(project)}

    def on_get_board(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        project = _project_or_404(project_id)
        resp.media = board(project)


def _prod_url(value: Any) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or len(value) > MAX_URL_LENGTH:
        raise invalid("prod_url", f"prod_url must be an http(s) URL of at most {MAX_URL_LENGTH} characters, or null.")
    return value


def board(project: LinearProject) -> dict[str, Any]:
    """The kanban: the project's issues in its teams' workflow-state columns, columns in Linear's
    `position` order and cards in Linear's `sortOrder`. An issue whose state is not cached still shows,
    in a column made from what the issue says of its state."""
    issues = list(LinearIssue.select().where(LinearIssue.project_id == project.id)
                  .order_by(LinearIssue.sort_order.asc(nulls="LAST"), LinearIssue.identifier, LinearIssue.id))
    team_ids = list(dict.fromkeys([*(project.team_ids or []), *(i.team_id for i in issues if i.team_id)]))
    states = list(LinearWorkflowState.select().where(LinearWorkflowState.team_id.in_(team_ids))
                  .order_by(LinearWorkflowState.position.asc(nulls="LAST"), LinearWorkflowState.name))
    team_order = {team_id: index for index, team_id in enumerate(team_ids)}
    states.sort(key=lambda state: team_order[state.team_id])  # stable: keeps position order within a team
    columns = {state.id: {"state": linear_cache.state_json(state), "issues": []} for state in states}
    for issue in issues:
        key = issue.state_id or f"unknown:{issue.state_name}"
        if key not in columns:
            columns[key] = {"state": {"id": issue.state_id, "team_id": issue.team_id, "name": issue.state_name,
                                      "type": issue.state_type, "color": None, "position": None}, "issues": []}
        columns[key]["issues"].append(linear_cache.issue_json(issue))
    workers = _agents_on_tasks([issue.agent_task_id for issue in issues if issue.agent_task_id])
    for column in columns.values():
        for card in column["issues"]:
            card["agent"] = workers.get(card["agent_task_id"])
    return {"project": linear_cache.project_json(project), "columns": list(columns.values())}


def _agents_on_tasks(task_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The agent behind each task (what a card shows of who works on it)."""
    query = (AgentTask.select(AgentTask.id, AgentTask.status, Agent.id, Agent.name, Agent.status)
             .join(Agent, on=(AgentTask.agent_id == Agent.id)).where(AgentTask.id.in_(task_ids)))
    return {task.id: {"id": task.agent.id, "name": task.agent.name, "status": task.agent.status,
                      "task_status": task.status} for task in query}


@falcon.before(linear_required)
class StatesResource:
    """GET /api/linear/states?team_id= — workflow states, per team in Linear's column order."""

    def __init__(self, linear_configured: Callable[[], bool]):
        self.linear_configured = linear_configured

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = LinearWorkflowState.select().order_by(LinearWorkflowState.team_id, LinearWorkflowState.position,
                                                      LinearWorkflowState.name)
        if team_ids := list_param(req, "team_id"):
            query = query.where(LinearWorkflowState.team_id.in_(team_ids))
        resp.media = {"states": [linear_cache.state_json(state) for state in query]}


@falcon.before(linear_required)
class CyclesResource:
    """GET /api/linear/cycles?team_id= — cycles, newest first, each with the number of cached issues in it."""

    def __init__(self, linear_configured: Callable[[], bool]):
        self.linear_configured = linear_configured

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = LinearCycle.select().order_by(LinearCycle.starts_at.desc(nulls="LAST"), LinearCycle.id)
        if team_ids := list_param(req, "team_id"):
            query = query.where(LinearCycle.team_id.in_(team_ids))
        cycles = list(query)
        counts = _cycle_issue_counts([cycle.id for cycle in cycles])
        resp.media = {"cycles": [cycle.to_json() | {"issue_count": counts.get(cycle.id, 0)} for cycle in cycles]}


def _cycle_issue_counts(cycle_ids: list[str]) -> dict[str, int]:
    query = (LinearIssue.select(LinearIssue.cycle_id, peewee.fn.COUNT(LinearIssue.id).alias("count"))
             .where(LinearIssue.cycle_id.in_(cycle_ids)).group_by(LinearIssue.cycle_id))
    return {row.cycle_id: row.count for row in query}


@falcon.before(linear_required)
class SyncResource:
    """POST /api/linear/sync: `{issue_id, state_id}` moves a card; `{"full": true}` starts a sync.
    GET /api/linear/sync: how the last syncs went."""

    def __init__(self, linear_configured: Callable[[], bool], max_body_bytes: int,
                 client_factory: Callable[[], LinearClient], background: BackgroundSync,
                 sync_lock: Callable[[], SyncLock]):
        self.linear_configured = linear_configured
        self.max_body_bytes = max_body_bytes
        self.client_factory = client_factory
        self.background = background
        self.sync_lock = sync_lock

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        state = linear_cache.sync_state()
        resp.media = {
            "running": self._running(),
            "last_success_at": iso_from_unix(state.get("last_success_at")),
            "last_full_at": iso_from_unix(state.get("last_full_at")),
            "last_error": state.get("last_error"),
            "last_error_at": iso_from_unix(state.get("last_error_at")),
            "last_result": state.get("last_result"),
        }

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = read_json(req, self.max_body_bytes)
        if not isinstance(body, dict):
            raise invalid("body", "Send {\"issue_id\", \"state_id\"} to move a card, or {\"full\": true} to sync.")
        if "issue_id" in body or "state_id" in body:
            issue = move_issue(self.client_factory(), _id(body, "issue_id"), _id(body, "state_id"))
            resp.media = {"issue": linear_cache.issue_json(issue) if issue is not None else None}
            return
        if not isinstance(body.get("full"), bool):
            raise invalid("full", "Send {\"full\": true} for a full sync, {\"full\": false} for changes only, "
                                  "or {\"issue_id\", \"state_id\"} to move a card.")
        try:
            self.background.start(full=body["full"])
        except SyncAlreadyRunning:
            raise ApiError(409, "sync_in_progress", "A Linear sync is already running; try again when it ends.") \
                from None
        resp.status = falcon.HTTP_202
        resp.media = {"sync": "started", "full": body["full"]}

    def _running(self) -> bool:
        lock = self.sync_lock()
        try:
            lock.acquire()
        except SyncAlreadyRunning:
            return True
        lock.release()
        return False


def _id(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not 1 <= len(value) <= 200:
        raise invalid(name, f"{name} is required: a Linear id (string).")
    return value
