"""The agents function's part of the OpenAPI document: agents, tasks, Unblock / Cancel and answers, the
agents' inbox, alert rules, notifications."""

from __future__ import annotations

from functions.agents.alert_rules import MAX_DELAY_MS, RULE_ID
from functions.agents.inbox import MAX_WAIT_S
from functions.agents.resources import AGENT_STATUSES, AGENT_TYPES, MAX_TITLE, PRIORITIES, TASK_STATUSES
from shared.agents.alerts import CHANNELS, PRIORITY_FILTERS, TRIGGERS
from shared.agents.questions import MAX_RESPONSE, QUESTION_TYPES
from shared.store.db import MAX_INTEGER
from shared.web.openapi import (
    AGENT_AUTH,
    ANY_JSON,
    DASHBOARD_AUTH,
    DASHBOARD_READ_AUTH,
    OPTIONAL_TEXT,
    PAGE,
    TEXT,
    TIME,
    Schema,
    bool_param,
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

TAG = "agents"
ID = {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"}

AGENT_ID = path_param("agent_id", "The agent's id", example="openclaw-main")
TASK_ID = path_param("task_id", "The task's id", example="task-blocked")
RULE_ID_PARAM = path_param("rule_id", "The alert rule's id", example="blocked-high")

# An answer to a question, one field by the question's type (shared/questions.parse_answer).
ANSWER: Schema = {"anyOf": [
    obj({"response": {"type": "string", "minLength": 1, "maxLength": MAX_RESPONSE}}),
    obj({"permission": {"type": "boolean", "description": "true: allow, false: deny"}}),
    obj({"choice": {"type": "string", "description": "one of the question's choices"}})]}
ANSWERED_BY: Schema = {"type": ["string", "null"],
                       "description": "the signed-in user's login, `dashboard-token`, or `terminal` (answered in "
                                      "opencode itself); null when it timed out"}
REQUEST_ID: Schema = {"type": ["string", "null"],
                      "description": "opencode's request id when the question is its permission or question prompt"}

SCHEMAS: dict[str, Schema] = {
    "Answer": ANSWER,
    "Question": obj({
        "id": {"type": "integer"}, "type": {"enum": list(QUESTION_TYPES)}, "text": TEXT,
        "choices": {"type": ["array", "null"], "items": TEXT}, "timeout_s": {"type": ["integer", "null"]},
        "asked_at": TIME, "status": {"enum": ["pending", "queued", "answered", "timed_out", "withdrawn"],
                                     "description": "queued: asked while another question of the task waits; "
                                                    "it waits next"},
        "answer": nullable(ref("Answer")), "answered_by": ANSWERED_BY,
        "answered_at": {**TIME, "description": "when it was answered, timed out or withdrawn"},
        "request_id": REQUEST_ID}),
    "InboxEntry": obj({
        "id": {"type": "integer", "description": "acknowledge it with POST .../inbox/{id}/ack"},
        "task_id": TEXT, "question_id": {"type": "integer"}, "status": {"enum": ["answered", "timed_out"]},
        "answer": nullable(ref("Answer")), "answered_by": ANSWERED_BY, "answered_at": TIME,
        "request_id": REQUEST_ID}),
    "Agent": obj({
        "id": TEXT, "name": TEXT, "type": {"enum": list(AGENT_TYPES)}, "parent_agent_id": OPTIONAL_TEXT,
        "status": {"enum": list(AGENT_STATUSES)}, "status_reason": OPTIONAL_TEXT, "soul_md": OPTIONAL_TEXT,
        "skills": ANY_JSON, "config": ANY_JSON, "current_task_id": OPTIONAL_TEXT, "created_at": TIME,
        "last_heartbeat": TIME, "updated_at": TIME}),
    "Task": obj({
        "id": TEXT, "agent_id": TEXT, "linear_issue_id": OPTIONAL_TEXT, "project_id": OPTIONAL_TEXT, "title": TEXT,
        "status": {"enum": list(TASK_STATUSES)}, "priority": {"enum": list(PRIORITIES)},
        "blocked_reason": OPTIONAL_TEXT, "blocked_at": TIME, "started_at": TIME, "completed_at": TIME,
        "created_at": TIME, "updated_at": TIME, "workflow_id": OPTIONAL_TEXT, "workflow_started_at": TIME,
        "session_id": {**OPTIONAL_TEXT, "description": "the opencode session whose turn this task is "
                                                       "(docs/monitoring.md); null for other tasks"},
        "workflow_waiting": {"type": "boolean", "description": "true while its Temporal workflow has not started"},
        "question": nullable(ref("Question"))}),
    "WorkflowView": obj({
        "reachable": {"type": "boolean", "description": "whether Temporal answered"},
        "view": nullable(obj({
            "status": {"enum": ["working", "blocked", "sleeping", "done", "cancelled"]},
            "blocked_since": TIME, "blocked_reason": OPTIONAL_TEXT, "runs": {"type": "integer"},
            "ticks": {"type": "integer"}, "sleeping": {"type": "boolean"}}, extra=True))}),
    "AlertRule": obj({
        "id": TEXT, "trigger": {"enum": list(TRIGGERS)}, "priority_filter": {"enum": list(PRIORITY_FILTERS)},
        "delay_ms": {"type": "integer", "minimum": 0}, "channel": {"enum": list(CHANNELS)},
        "enabled": {"type": "boolean"}}),
    "Notification": obj({
        "id": {"type": "integer"}, "rule_id": OPTIONAL_TEXT, "trigger": TEXT, "channel": TEXT, "title": TEXT,
        "body": OPTIONAL_TEXT, "agent_id": OPTIONAL_TEXT, "task_id": OPTIONAL_TEXT, "created_at": TIME,
        "delivered_at": TIME, "read_at": TIME, "priority": OPTIONAL_TEXT, "read": {"type": "boolean"}}),
}

RULE_FIELDS: dict[str, Schema] = {
    "trigger": {"enum": list(TRIGGERS)},
    "priority_filter": {"enum": [*PRIORITY_FILTERS, None]},
    "delay_ms": {"type": "integer", "minimum": 0, "maximum": MAX_DELAY_MS},
    "channel": {"enum": list(CHANNELS)},
    "enabled": {"type": "boolean"},
}
TASK_ANSWER = obj({"task": ref("Task"), "signalled": {
    "type": "boolean", "description": "false: Temporal did not take the signal; the workflow sees the change later"}})

PATHS: dict[str, Schema] = {
    "/api/agents": {"get": operation(
        "Agents, by id", tag=TAG, security=DASHBOARD_READ_AUTH,
        parameters=[list_param("status", "Only agents in these statuses.", AGENT_STATUSES),
                    list_param("type", "Only agents of these types.", AGENT_TYPES),
                    query_param("parent", "Only this agent's sub-agents."), *PAGE],
        responses={200: json_response("A page of agents", page_of("agents", ref("Agent"))), 400: 400})},
    "/api/agent/{agent_id}/profile": {"get": operation(
        "An agent with its parent, sub-agents and current task", tag=TAG, security=DASHBOARD_READ_AUTH,
        parameters=[AGENT_ID],
        responses={200: json_response("The profile", obj({
            "agent": ref("Agent"), "parent": nullable(ref("Agent")),
            "children": {"type": "array", "items": ref("Agent")}, "current_task": nullable(ref("Task")),
            "last_heartbeat": TIME})), 404: 404})},
    "/api/agent/{agent_id}/tasks": {
        "get": operation(
            "An agent's tasks, newest first", tag=TAG, security=DASHBOARD_READ_AUTH,
            parameters=[AGENT_ID, list_param("status", "Only tasks in these statuses.", TASK_STATUSES), *PAGE],
            responses={200: json_response("A page of tasks", page_of("tasks", ref("Task"))), 400: 400, 404: 404}),
        "post": operation(
            "Give an agent a task (its Temporal workflow starts after the commit)", tag=TAG, security=DASHBOARD_AUTH,
            parameters=[AGENT_ID],
            body=json_body(obj({
                "title": {"type": "string", "minLength": 1, "maxLength": MAX_TITLE, "pattern": r"\S"},
                "priority": {"enum": list(PRIORITIES), "default": "medium"},
                "id": ID, "linear_issue_id": OPTIONAL_TEXT, "project_id": OPTIONAL_TEXT},
                optional=["priority", "id", "linear_issue_id", "project_id"])),
            responses={201: json_response("The task", obj({"task": ref("Task"), "workflow_started": {
                "type": "boolean"}})), 404: 404, 409: 409, 422: 422}),
    },
    "/api/agent/{agent_id}/tasks/{task_id}": {"get": operation(
        "One task, with its workflow's own view", tag=TAG, security=DASHBOARD_READ_AUTH,
        parameters=[AGENT_ID, TASK_ID],
        responses={200: json_response("The task", obj({"task": ref("Task"), "workflow": ref("WorkflowView")})),
                   404: 404})},
    "/api/agent/{agent_id}/tasks/{task_id}/unblock": {"post": operation(
        "Unblock a blocked task, answering its question if it asked one", tag=TAG, security=DASHBOARD_AUTH,
        parameters=[AGENT_ID, TASK_ID],
        body=json_body(obj({"reason": {"type": ["string", "null"], "maxLength": 2000},
                            "response": {"type": "string", "minLength": 1, "maxLength": MAX_RESPONSE},
                            "permission": {"type": "boolean"}, "choice": {"type": "string"}},
                           optional=["reason", "response", "permission", "choice"]),
                       required=False, description="optional: no body at all is fine for a task that asked nothing; "
                                                   "a pending question needs its answer (the field its type takes)",
                       example={"reason": "Tag it v1.2.3"}),
        responses={202: json_response("Unblocked (answered); the workflow is signalled", TASK_ANSWER), 404: 404,
                   409: 409, 422: 422})},
    "/api/agent/{agent_id}/inbox": {"get": operation(
        "The agent's answers not yet acknowledged, oldest first; long-polls while there are none", tag=TAG,
        security=AGENT_AUTH, parameters=[AGENT_ID, query_param(
            "wait", f"Seconds to wait for an entry when there is none (0 to {MAX_WAIT_S}).",
            {"type": "number", "minimum": 0, "maximum": MAX_WAIT_S, "default": 0}),
            query_param("task_id", "Only this task's entries (waiting for one question's answer)."),
            query_param("request_id", "Only the entry for this opencode prompt (its permission or question id).")],
        responses={200: json_response("The entries (empty when none came within `wait`)", obj({
            "answers": {"type": "array", "items": ref("InboxEntry")}})), 400: 400, 404: 404})},
    "/api/agent/{agent_id}/inbox/{entry_id}/ack": {"post": operation(
        "Acknowledge an inbox entry: it is not returned again", tag=TAG, security=AGENT_AUTH,
        parameters=[AGENT_ID, path_param("entry_id", "The inbox entry's id",
                                         {"type": "integer", "minimum": 1, "maximum": MAX_INTEGER}, example=1)],
        responses={204: {"description": "Acknowledged (again is fine)"}, 404: 404})},
    "/api/agent/{agent_id}/tasks/{task_id}/cancel": {"post": operation(
        "Cancel a task", tag=TAG, security=DASHBOARD_AUTH, parameters=[AGENT_ID, TASK_ID],
        responses={202: json_response("Cancelled; the workflow is signalled", TASK_ANSWER), 404: 404, 409: 409})},
    "/api/alert-rules": {
        "get": operation("Alert rules", tag=TAG, security=DASHBOARD_READ_AUTH, responses={
            200: json_response("Every rule", obj({"alert_rules": {"type": "array", "items": ref("AlertRule")}}))}),
        "post": operation(
            "Add an alert rule", tag=TAG, security=DASHBOARD_AUTH,
            body=json_body(obj({"id": {"type": "string", "pattern": RULE_ID.pattern}, **RULE_FIELDS},
                               optional=["priority_filter", "delay_ms", "enabled"])),
            responses={201: json_response("The rule", obj({"alert_rule": ref("AlertRule")})), 409: 409, 422: 422}),
    },
    "/api/alert-rules/{rule_id}": {
        "get": operation("One alert rule", tag=TAG, security=DASHBOARD_READ_AUTH, parameters=[RULE_ID_PARAM],
                         responses={200: json_response("The rule", obj({"alert_rule": ref("AlertRule")})),
                                    404: 404}),
        "patch": operation(
            "Change an alert rule", tag=TAG, security=DASHBOARD_AUTH, parameters=[RULE_ID_PARAM],
            body=json_body(obj(RULE_FIELDS, optional=RULE_FIELDS)),
            responses={200: json_response("The rule", obj({"alert_rule": ref("AlertRule")})), 404: 404, 422: 422}),
        "delete": operation("Delete an alert rule", tag=TAG, security=DASHBOARD_AUTH, parameters=[RULE_ID_PARAM],
                            responses={204: {"description": "Deleted"}, 404: 404}),
    },
    "/api/notifications": {"get": operation(
        "Notifications, newest first", tag=TAG, security=DASHBOARD_READ_AUTH,
        parameters=[bool_param("unread_only", "Only unread notifications."),
                    list_param("trigger", "Only these triggers.", TRIGGERS),
                    list_param("channel", "Only these channels.", CHANNELS),
                    query_param("agent_id", "Only this agent's."), query_param("task_id", "Only this task's."), *PAGE],
        responses={200: json_response("A page of notifications", page_of("notifications", ref("Notification"))),
                   400: 400})},
    "/api/notifications/{notification_id}/read": {"post": operation(
        "Mark a notification read", tag=TAG, security=DASHBOARD_AUTH,
        parameters=[path_param("notification_id", "The notification's id",
                               {"type": "integer", "minimum": 1, "maximum": MAX_INTEGER}, example=1)],
        responses={200: json_response("The notification", obj({"notification": ref("Notification")})),
                   404: 404})},
    "/api/notifications/read": {"post": operation(
        "Mark every unread notification read", tag=TAG, security=DASHBOARD_AUTH,
        description="Open pages hear it on the feed as `notification` `read_many` {ids, read_at}, as they do "
                    "when a task's blocked notifications settle because the task was answered or unblocked.",
        responses={200: json_response("How many were unread and are now read",
                                      obj({"marked_read": {"type": "integer", "minimum": 0}}))})},
}
