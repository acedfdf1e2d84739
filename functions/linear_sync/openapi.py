"""The Linear sync function's part of the OpenAPI document: projects, boards, workflow states, cycles,
the card move and the sync trigger. Every route answers 503 `linear_not_configured` without a Linear credential."""

from __future__ import annotations

from functions.linear_sync.resources import MAX_URL_LENGTH, PROJECT_STATES
from shared.web.openapi import (
    ANY_JSON,
    DASHBOARD_AUTH,
    DASHBOARD_READ_AUTH,
    OPTIONAL_TEXT,
    PAGE,
    TEXT,
    TIME,
    Schema,
    json_body,
    json_response,
    list_param,
    nullable,
    obj,
    operation,
    page_of,
    path_param,
    query_param,
    ref,
)

TAG = "linear"
PROJECT_ID = path_param("project_id", "The Linear project's id", example="proj-1")

PROJECT_FIELDS: dict[str, Schema] = {
    "id": TEXT, "name": TEXT, "description": OPTIONAL_TEXT, "state": OPTIONAL_TEXT,
    "progress": {"type": ["number", "null"]}, "start_date": OPTIONAL_TEXT, "target_date": OPTIONAL_TEXT,
    "url": OPTIONAL_TEXT, "team_id": OPTIONAL_TEXT, "team_name": OPTIONAL_TEXT, "prod_url": OPTIONAL_TEXT,
    "synced_at": TIME, "status_name": OPTIONAL_TEXT, "team_ids": nullable({"type": "array", "items": TEXT}),
    "updated_at": TIME,
}
ISSUE_COUNT = {"issue_count": {"type": "integer", "minimum": 0}}
ISSUE_FIELDS: dict[str, Schema] = {
    "id": TEXT, "project_id": OPTIONAL_TEXT, "identifier": OPTIONAL_TEXT, "title": TEXT,
    "description": OPTIONAL_TEXT, "priority": {"type": ["integer", "null"], "description": "0 none ... 4 low"},
    "priority_label": {"enum": ["none", "urgent", "high", "medium", "low", None]},
    "state_name": OPTIONAL_TEXT, "state_type": OPTIONAL_TEXT, "assignee_name": OPTIONAL_TEXT,
    "assignee_avatar": OPTIONAL_TEXT, "label_names": nullable({"type": "array", "items": TEXT}),
    "estimate": {"type": ["integer", "null"]}, "url": OPTIONAL_TEXT, "agent_task_id": OPTIONAL_TEXT,
    "synced_at": TIME, "team_id": OPTIONAL_TEXT, "state_id": OPTIONAL_TEXT, "assignee_id": OPTIONAL_TEXT,
    "cycle_id": OPTIONAL_TEXT, "sort_order": {"type": ["number", "null"]}, "created_at": TIME,
    "updated_at": TIME}

SCHEMAS: dict[str, Schema] = {
    "LinearProject": obj(PROJECT_FIELDS),
    "LinearProjectWithCount": obj(PROJECT_FIELDS | ISSUE_COUNT | {"last_activity_at": TIME}),
    "LinearIssue": obj(ISSUE_FIELDS),
    "LinearState": obj({"id": TEXT, "team_id": TEXT, "name": TEXT, "type": TEXT, "color": OPTIONAL_TEXT,
                        "position": {"type": ["number", "null"]}}),
    "LinearCycle": obj({
        "id": TEXT, "team_id": OPTIONAL_TEXT, "number": {"type": ["integer", "null"]}, "name": OPTIONAL_TEXT,
        "starts_at": TIME, "ends_at": TIME, "completed_at": TIME, "progress": {"type": ["number", "null"]},
        "updated_at": TIME, "synced_at": TIME} | ISSUE_COUNT),
    "BoardColumn": obj({
        "state": obj({"id": OPTIONAL_TEXT, "team_id": OPTIONAL_TEXT, "name": OPTIONAL_TEXT, "type": OPTIONAL_TEXT,
                      "color": OPTIONAL_TEXT, "position": {"type": ["number", "null"]}},
                     ),
        "issues": {"type": "array", "items": ref("BoardCard")}}),
    "BoardCard": obj(ISSUE_FIELDS | {"agent": nullable(obj({
        "id": TEXT, "name": TEXT, "status": TEXT, "task_status": TEXT}))}),
    "LinearSyncStatus": obj({
        "running": {"type": "boolean"}, "last_success_at": TIME, "last_full_at": TIME,
        "last_error": OPTIONAL_TEXT, "last_error_at": TIME, "last_result": ANY_JSON}),
}

PATHS: dict[str, Schema] = {
    "/api/projects": {"get": operation(
        "Cached Linear projects, by name", tag=TAG, security=DASHBOARD_READ_AUTH,
        parameters=[list_param("state", "Only projects in these states.", PROJECT_STATES),
                    query_param("team_id", "Only this team's projects."), *PAGE],
        responses={200: json_response("A page of projects", page_of("projects", ref("LinearProjectWithCount"))),
                   400: 400})},
    "/api/projects/{project_id}": {
        "get": operation("One project", tag=TAG, security=DASHBOARD_READ_AUTH, parameters=[PROJECT_ID],
                         responses={200: json_response("The project", obj({"project": ref("LinearProjectWithCount")})),
                                    404: 404}),
        "patch": operation(
            "Set a project's production URL (the one field not from Linear)", tag=TAG, security=DASHBOARD_AUTH,
            parameters=[PROJECT_ID],
            body=json_body(obj({"prod_url": {"type": ["string", "null"], "pattern": "^https?://[^/?#]",
                                             "maxLength": MAX_URL_LENGTH}})),
            responses={200: json_response("The project", obj({"project": ref("LinearProject")})), 404: 404,
                       422: 422}),
    },
    "/api/projects/{project_id}/board": {"get": operation(
        "A project's kanban board", tag=TAG, security=DASHBOARD_READ_AUTH, parameters=[PROJECT_ID],
        responses={200: json_response("The board", obj({
            "project": ref("LinearProject"), "columns": {"type": "array", "items": ref("BoardColumn")}})), 404: 404})},
    "/api/linear/states": {"get": operation(
        "Workflow states, per team in Linear's order", tag=TAG, security=DASHBOARD_READ_AUTH,
        parameters=[list_param("team_id", "Only these teams' states.")],
        responses={200: json_response("The states", obj({"states": {"type": "array", "items": ref("LinearState")}}))})},
    "/api/linear/cycles": {"get": operation(
        "Cycles, newest first, with their cached issue counts", tag=TAG, security=DASHBOARD_READ_AUTH,
        parameters=[list_param("team_id", "Only these teams' cycles.")],
        responses={200: json_response("The cycles", obj({"cycles": {"type": "array", "items": ref("LinearCycle")}}))})},
    "/api/linear/sync": {
        "get": operation("How the last syncs went", tag=TAG, security=DASHBOARD_READ_AUTH,
                         responses={200: json_response("The sync state", ref("LinearSyncStatus"))}),
        "post": operation(
            "Move a card, or start a sync", tag=TAG, security=DASHBOARD_AUTH,
            description="`{issue_id, state_id}` moves the issue in Linear first, then in the cache (200); "
                        "`{full}` starts a sync in the background (202).",
            body=json_body({"anyOf": [
                obj({"issue_id": {"type": "string", "minLength": 1, "maxLength": 200},
                     "state_id": {"type": "string", "minLength": 1, "maxLength": 200}}, extra=True),
                {**obj({"full": {"type": "boolean"}}, extra=True), "not": {"anyOf": [
                    {"required": ["issue_id"]}, {"required": ["state_id"]}]}}]}),
            responses={200: json_response("The moved card", obj({"issue": nullable(ref("LinearIssue"))})),
                       202: json_response("A sync started", obj({"sync": {"const": "started"},
                                                                  "full": {"type": "boolean"}})),
                       404: 404, 409: 409, 422: 422, 502: 502}),
    },
}
