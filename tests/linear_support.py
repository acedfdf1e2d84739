"""Linear as the tests see it: payloads shaped exactly as Linear sends them, and real signatures.

Webhook `data` and GraphQL nodes describe the same entities in Linear's two shapes (see
shared/linear/cache.py); the builders here produce each, with the fields Linear really sends.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import uuid
from typing import Any

LINEAR_API_KEY = "lin_api_test0123456789abcdefghijklmnopqrstuvwxyz"
LINEAR_WEBHOOK_SECRET = "lin_wh_test0123456789abcdefghijklmnopqrstuvwxyz"
LINEAR_URL = "https://api.linear.app/graphql"

TEAM = {"id": "team-eng", "key": "ENG", "name": "Engineering"}
OTHER_TEAM = {"id": "team-ops", "key": "OPS", "name": "Operations"}

# A team's default workflow, as Linear creates it.
STATES = [
    {"id": "state-backlog", "name": "Backlog", "type": "backlog", "color": "#bec2c8", "position": 0},
    {"id": "state-todo", "name": "Todo", "type": "unstarted", "color": "#e2e2e2", "position": 1},
    {"id": "state-progress", "name": "In Progress", "type": "started", "color": "#f2c94c", "position": 2},
    {"id": "state-done", "name": "Done", "type": "completed", "color": "#5e6ad2", "position": 3},
    {"id": "state-canceled", "name": "Canceled", "type": "canceled", "color": "#95a2b3", "position": 4},
]
OTHER_TEAM_STATE = {"id": "state-ops-todo", "name": "Todo", "type": "unstarted", "color": "#e2e2e2",
                    "position": 1}

_numbers = itertools.count(1)


def iso(seconds: float) -> str:
    """Linear's DateTime format: UTC with milliseconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds * 1000) % 1000:03d}Z"


# GraphQL nodes ------------------------------------------------------------------------------------------

def state_node(state: dict[str, Any], team: dict[str, Any] = TEAM) -> dict[str, Any]:
    return {**state, "updatedAt": "2026-11-01T09:00:00.000Z", "archivedAt": None, "team": {"id": team["id"]}}


def project_node(project_id: str = "proj-1", name: str = "Dashboard v3", *, progress: float = 0.25,
                 team: dict[str, Any] = TEAM, status_type: str = "started", archived: bool = False,
                 updated_at: str = "2026-11-20T10:00:00.000Z") -> dict[str, Any]:
    return {
        "id": project_id, "name": name, "description": f"{name} description", "url": f"https://linear.app/acme/project/{project_id}",
        "progress": progress, "startDate": "2026-11-01", "targetDate": "2026-12-15",
        "updatedAt": updated_at, "archivedAt": "2026-11-21T10:00:00.000Z" if archived else None,
        "status": {"id": f"status-{status_type}", "name": status_type.title(), "type": status_type,
                   "color": "#f2c94c"},
        "teams": {"nodes": [{"id": team["id"], "key": team["key"], "name": team["name"]}]},
    }


def issue_node(issue_id: str | None = None, *, project_id: str | None = "proj-1", project_name: str = "Dashboard v3",
               state: dict[str, Any] = STATES[1], team: dict[str, Any] = TEAM, title: str = "Fix the board",
               number: int | None = None, priority: int = 2, sort_order: float = 10.0,
               updated_at: str = "2026-11-20T10:00:00.000Z", archived: bool = False,
               labels: tuple[str, ...] = ("bug",)) -> dict[str, Any]:
    number = number or next(_numbers)
    return {
        "id": issue_id or f"issue-{number}", "identifier": f"{team['key']}-{number}", "number": number,
        "title": title, "description": "Steps to reproduce", "priority": priority, "estimate": 3,
        "sortOrder": sort_order, "url": f"https://linear.app/acme/issue/{team['key']}-{number}",
        "createdAt": "2026-11-02T08:00:00.000Z", "updatedAt": updated_at,
        "archivedAt": "2026-11-21T08:00:00.000Z" if archived else None,
        "state": {"id": state["id"], "name": state["name"], "type": state["type"], "color": state["color"]},
        "team": {"id": team["id"]},
        "project": {"id": project_id, "name": project_name} if project_id else None,
        "assignee": {"id": "user-ada", "name": "Ada Lovelace", "avatarUrl": "https://avatars.example/ada.png"},
        "cycle": {"id": "cycle-7"},
        "labels": {"nodes": [{"id": f"label-{name}", "name": name, "color": "#eb5757"} for name in labels]},
    }


def connection(nodes: list[dict[str, Any]], *, has_next_page: bool = False, end_cursor: str | None = None) -> dict:
    return {"nodes": nodes, "pageInfo": {"hasNextPage": has_next_page,
                                         "endCursor": end_cursor or (nodes[-1]["id"] if nodes else None)}}


# Webhook payloads -------------------------------------------------------------------------------------------

def issue_data(issue_id: str = "issue-1", *, project_id: str | None = "proj-1", state: dict[str, Any] = STATES[1],
               team: dict[str, Any] = TEAM, title: str = "Fix the board", number: int = 1,
               labels: tuple[str, ...] = ("bug", "frontend")) -> dict[str, Any]:
    """An Issue webhook's `data`: ids beside the embedded objects, labels as a plain list."""
    return {
        "id": issue_id, "createdAt": "2026-11-02T08:00:00.000Z", "updatedAt": "2026-11-24T10:00:00.000Z",
        "archivedAt": None, "number": number, "title": title, "description": "Steps to reproduce",
        "priority": 1, "priorityLabel": "Urgent", "boardOrder": 0, "sortOrder": -42.5, "estimate": 2,
        "teamId": team["id"], "stateId": state["id"], "assigneeId": "user-ada", "creatorId": "user-ada",
        "projectId": project_id, "cycleId": "cycle-7", "labelIds": [f"label-{name}" for name in labels],
        "subscriberIds": ["user-ada"], "previousIdentifiers": [], "identifier": f"{team['key']}-{number}",
        "url": f"https://linear.app/acme/issue/{team['key']}-{number}/fix-the-board",
        "state": {"id": state["id"], "color": state["color"], "name": state["name"], "type": state["type"]},
        "team": {"id": team["id"], "key": team["key"], "name": team["name"]},
        "labels": [{"id": f"label-{name}", "color": "#eb5757", "name": name} for name in labels],
        "project": {"id": project_id, "name": "Dashboard v3", "url": "https://linear.app/acme/project/x"}
        if project_id else None,
        "assignee": {"id": "user-ada", "name": "Ada Lovelace", "email": "ada@example.com",
                     "avatarUrl": "https://avatars.example/ada.png", "url": "https://linear.app/acme/profiles/ada"},
    }


def project_data(project_id: str = "proj-1", *, status_type: str = "completed", name: str = "Dashboard v3") -> dict:
    """A Project webhook's `data`: `status`, `teamIds`, and no `progress`."""
    return {
        "id": project_id, "createdAt": "2026-11-01T08:00:00.000Z", "updatedAt": "2026-11-24T10:00:00.000Z",
        "name": name, "description": "The third dashboard", "slugId": "abc123", "color": "#bec2c8",
        "statusId": f"status-{status_type}",
        "status": {"id": f"status-{status_type}", "name": status_type.title(), "type": status_type,
                   "color": "#5e6ad2"},
        "startDate": "2026-11-01", "targetDate": "2026-12-15", "url": f"https://linear.app/acme/project/{project_id}",
        "teamIds": [TEAM["id"]], "leadId": "user-ada", "memberIds": ["user-ada"], "health": "onTrack",
        "sortOrder": 1.0, "priority": 2,
    }


def comment_data(comment_id: str = "comment-1", body: str = "Looks good to me") -> dict[str, Any]:
    return {
        "id": comment_id, "createdAt": "2026-11-24T10:00:00.000Z", "updatedAt": "2026-11-24T10:00:00.000Z",
        "body": body, "issueId": "issue-1", "userId": "user-ada", "reactionData": [],
        "issue": {"id": "issue-1", "identifier": "ENG-1", "title": "Fix the board", "teamId": TEAM["id"],
                  "url": "https://linear.app/acme/issue/ENG-1"},
        "user": {"id": "user-ada", "name": "Ada Lovelace", "email": "ada@example.com"},
        "url": "https://linear.app/acme/issue/ENG-1#comment-1",
    }


def cycle_data(cycle_id: str = "cycle-7") -> dict[str, Any]:
    return {
        "id": cycle_id, "createdAt": "2026-11-01T00:00:00.000Z", "updatedAt": "2026-11-24T10:00:00.000Z",
        "number": 7, "name": "Cycle 7", "startsAt": "2026-11-17T00:00:00.000Z", "endsAt": "2026-12-01T00:00:00.000Z",
        "completedAt": None, "teamId": TEAM["id"], "progress": 0.4,
        "issueCountHistory": [3, 5], "completedIssueCountHistory": [0, 2], "scopeHistory": [6, 9],
        "completedScopeHistory": [0, 3],
    }


def webhook(type_: str, action: str, data: Any, *, sent_at_ms: int | None = None, **extra: Any) -> dict[str, Any]:
    """A whole delivery body as Linear posts it."""
    body = {
        "action": action, "type": type_, "data": data,
        "actor": {"id": "user-ada", "type": "user", "name": "Ada Lovelace"},
        "createdAt": "2026-11-24T10:00:00.000Z", "url": "https://linear.app/acme/issue/ENG-1",
        "organizationId": "org-acme", "webhookId": "webhook-1",
        "webhookTimestamp": sent_at_ms if sent_at_ms is not None else int(time.time() * 1000),
    }
    if action == "update":
        body["updatedFrom"] = {"updatedAt": "2026-11-23T10:00:00.000Z"}
    return body | extra


def sign(body: bytes, secret: str = LINEAR_WEBHOOK_SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver(client, payload: Any = None, *, raw: bytes | None = None, secret: str = LINEAR_WEBHOOK_SECRET,
            signature: str | None = None, delivery: str | None = None, headers: dict[str, str] | None = None):
    """POST a delivery signed over exactly the bytes sent, with Linear's headers."""
    body = raw if raw is not None else json.dumps(payload).encode()
    all_headers = {
        "Content-Type": "application/json; charset=utf-8", "User-Agent": "Linear-Webhook",
        "Linear-Delivery": delivery or str(uuid.uuid4()),
        "Linear-Event": payload.get("type", "") if isinstance(payload, dict) else "",
        "Linear-Signature": signature if signature is not None else sign(body, secret),
    }
    return client.simulate_post("/api/linear/webhook", body=body, headers=all_headers | (headers or {}))
