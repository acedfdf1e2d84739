"""The events function's part of the OpenAPI document: ingest and the session/message/todo reads.

Each event kind's `data` schema comes from the registry (`kinds.KINDS`), made from the same rules
ingest checks, so the document says exactly what `parse_events` accepts.
"""

from __future__ import annotations

from typing import Any

from functions.events.contract import MAX_BATCH, MAX_ID_LENGTH
from functions.events.event import MAX_EPOCH_MS
from functions.events.kinds import KINDS, SESSION_OF_ANY_EVENT, TODO_STATUSES
from functions.events.limits import DESCRIPTION as DATA_LIMITS
from functions.events.resources import MAX_MARKED_READ, ORDERS
from functions.events.rules import data_schema
from shared.store.db import MAX_INTEGER
from shared.web.openapi import (
    AGENT_AUTH,
    ANY_JSON,
    DASHBOARD_AUTH,
    DASHBOARD_READ_AUTH,
    OPTIONAL_TEXT,
    PAGE,
    SINCE,
    TEXT,
    TIME,
    Schema,
    bool_param,
    json_body,
    json_response,
    list_param,
    obj,
    operation,
    page_of,
    path_param,
    query_param,
    ref,
)

TAG = "events"

def event_schema(kind: str | None) -> Schema:
    """One event of a known kind, or (kind None) of any other kind, which is stored raw."""
    if kind is None:
        type_schema: Schema = {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH,
                               "not": {"enum": sorted(KINDS)}}
        data: Schema = {**data_schema(SESSION_OF_ANY_EVENT), "description": DATA_LIMITS}
    else:
        type_schema = {"const": kind}
        data = KINDS[kind].schema
    return obj({
        "id": {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH,
               "description": "chosen by the sender; a repeated id is acknowledged and applied once"},
        "type": type_schema,
        "timestamp": {"anyOf": [{"type": "string", "format": "date-time"},
                                {"type": "integer", "minimum": 0, "maximum": MAX_EPOCH_MS,
                                 "description": "Unix epoch milliseconds"}]},
        "agent_id": {"type": ["string", "null"], "minLength": 1, "maxLength": MAX_ID_LENGTH},
        "data": data,
    }, optional=["agent_id"], extra=True)


EVENT = {"anyOf": [ref(f"Event.{kind}") for kind in sorted(KINDS)] + [ref("Event.other")]}

SESSION = obj({"id": TEXT, "name": OPTIONAL_TEXT, "started_at": TIME, "ended_at": TIME, "agent_id": OPTIONAL_TEXT,
               "parent_id": OPTIONAL_TEXT, "directory": OPTIONAL_TEXT, "status": OPTIONAL_TEXT,
               "updated_at": TIME, "deleted_at": TIME})
TODO = obj({"id": TEXT, "session_id": OPTIONAL_TEXT, "content": TEXT, "status": TEXT, "priority": TEXT,
            "agent": OPTIONAL_TEXT, "created_at": TIME, "updated_at": TIME,
            "position": {"type": ["integer", "null"]}})
SESSION_FILE = obj({"id": {"type": "integer"}, "session_id": TEXT, "file": TEXT,
                    "status": {**OPTIONAL_TEXT, "description": "added, deleted or modified, when opencode said"},
                    "additions": {"type": ["integer", "null"], "minimum": 0},
                    "deletions": {"type": ["integer", "null"], "minimum": 0},
                    "updated_at": TIME})
MESSAGE = obj({"id": {"type": "integer"}, "type": TEXT, "content": TEXT, "todo_id": OPTIONAL_TEXT,
               "session_id": OPTIONAL_TEXT, "read": {"type": "boolean"}, "created_at": TIME,
               "external_id": OPTIONAL_TEXT, "role": OPTIONAL_TEXT, "agent": OPTIONAL_TEXT,
               "model_id": OPTIONAL_TEXT, "provider_id": OPTIONAL_TEXT, "cost": {"type": ["number", "null"]},
               "tokens": ANY_JSON, "parts": ANY_JSON, "completed_at": TIME, "updated_at": TIME})

SCHEMAS: dict[str, Schema] = {
    **{f"Event.{kind}": event_schema(kind) for kind in sorted(KINDS)},
    "Event.other": event_schema(None),
    "Event": EVENT,
    "IngestResult": obj({"accepted": {"type": "integer", "minimum": 0},
                         "duplicates": {"type": "integer", "minimum": 0},
                         "unknown": {"type": "integer", "minimum": 0},
                         "unknown_types": {"type": "array", "items": TEXT}}, optional=["unknown_types"]),
    "Session": SESSION,
    "Todo": TODO,
    "SessionFile": SESSION_FILE,
    "Message": MESSAGE,
}


MESSAGES_GET = operation(
    "Messages, newest first (or oldest first), from any message", tag=TAG, security=DASHBOARD_READ_AUTH,
    description="A session's transcript reads both ways from any message: `from_id` starts the page at "
                "that message (itself included) and `order` says which way it goes; each way's "
                "`next_cursor` goes on in that way.",
    parameters=[query_param("session_id", "Only this session's messages."),
                list_param("type", "Only these message types (`chat`, `tool`, `error`, `linear_comment`, or "
                                   "a v1 database's own)."),
                bool_param("unread_only", "Only messages not yet marked read."), SINCE,
                query_param("order", "`newest_first` (the default) or `oldest_first`.",
                            {"type": "string", "enum": list(ORDERS), "default": ORDERS[0]}),
                query_param("from_id", "Start at this message (included); with `session_id`, one of its "
                                       "messages. A message that is not there is a 400 naming `from_id`.",
                            {"type": "integer", "minimum": 1, "maximum": MAX_INTEGER}),
                *PAGE],
    responses={200: json_response("A page of messages", page_of("messages", ref("Message"))), 400: 400})
MESSAGES_POST = operation(
    "Mark messages read", tag=TAG, security=DASHBOARD_AUTH,
    body=json_body(obj({"ids": {"type": "array", "maxItems": MAX_MARKED_READ,
                                "items": {"type": "integer", "minimum": 1, "maximum": MAX_INTEGER}}}, extra=True)),
    responses={200: json_response("How many were unread and are now read",
                                  obj({"marked_read": {"type": "integer", "minimum": 0}})), 422: 422})
SESSIONS_GET = operation(
    "Sessions, most recently started first", tag=TAG, security=DASHBOARD_READ_AUTH,
    parameters=[list_param("status", "Only sessions in these statuses."),
                query_param("agent_id", "Only this agent's sessions."), SINCE, *PAGE],
    responses={200: json_response("A page of sessions", page_of("sessions", ref("Session"))), 400: 400})
SESSION_GET = operation(
    "One session with its todos, latest 100 messages and the files it changed", tag=TAG,
    security=DASHBOARD_READ_AUTH,
    description="`files`: what opencode's `session.diff` (the session's whole diff, with line counts) and "
                "`file.edited` (one file, counts unknown) said the session changed, by path.",
    parameters=[path_param("session_id", "The session's id", example="ses_1")],
    responses={200: json_response("The session", obj({
        "session": ref("Session"), "todos": {"type": "array", "items": ref("Todo")},
        "messages": {"type": "array", "items": ref("Message")},
        "files": {"type": "array", "items": ref("SessionFile")}})), 404: 404})


def _alias(operation_: dict[str, Any], of: str) -> dict[str, Any]:
    return {**operation_, "summary": f"{operation_['summary']} (v1 alias of {of})"}


PATHS: dict[str, Schema] = {
    "/api/events": {"post": operation(
        "Ingest agents' events", tag=TAG, security=AGENT_AUTH,
        description="One event, or a batch of 1 to 1 000 (all or nothing). Known kinds are projected "
                    "(sessions, messages, todos, agents, tasks); any other kind is stored raw.",
        body=json_body({"anyOf": [
            {"allOf": [ref("Event")], "not": {"required": ["events"]}},  # a body with `events` is a batch
            obj({"events": {"type": "array", "items": ref("Event"), "minItems": 1, "maxItems": MAX_BATCH}},
                extra=True)]}),
        responses={202: json_response("Accepted (duplicates acknowledged, applied once)", ref("IngestResult")),
                   422: 422})},
    "/api/todos": {"get": operation(
        "Todos, most recently updated first", tag=TAG, security=DASHBOARD_READ_AUTH,
        parameters=[query_param("session_id", "Only this session's todos."),
                    list_param("status", "Only todos in these statuses.", sorted(TODO_STATUSES)), SINCE, *PAGE],
        responses={200: json_response("A page of todos", page_of("todos", ref("Todo"))), 400: 400})},
    "/api/msgs": {"get": MESSAGES_GET, "post": MESSAGES_POST},
    "/api/messages": {"get": _alias(MESSAGES_GET, "/api/msgs"), "post": _alias(MESSAGES_POST, "/api/msgs")},
    "/api/sess": {"get": SESSIONS_GET},
    "/api/sessions": {"get": _alias(SESSIONS_GET, "/api/sess")},
    "/api/sess/{session_id}": {"get": SESSION_GET},
    "/api/sessions/{session_id}": {"get": _alias(SESSION_GET, "/api/sess/{session_id}")},
}
