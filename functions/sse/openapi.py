"""The SSE function's part of the OpenAPI document: the live change feed and its stream tokens."""

from __future__ import annotations

from shared.web.openapi import (
    DASHBOARD_AUTH,
    DASHBOARD_READ_AUTH,
    TEXT,
    Schema,
    json_response,
    list_param,
    obj,
    operation,
    query_param,
)

TAG = "stream"

SCHEMAS: dict[str, Schema] = {
    "Change": obj({
        "id": {"type": "integer", "description": "the feed id, also the frame's `id:`"},
        "topic": TEXT, "action": TEXT, "payload": {"description": "what changed, as its own route shows it"},
        "created_at": {"type": "string", "format": "date-time"}}),
    "StreamReset": obj({"reason": TEXT, "last_event_id": {"type": "integer", "description": "resume from here"}}),
    "StreamEvent": obj({
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "event": {"type": "string", "description": "the change's topic, or `reset`"},
        "data": {"type": "string", "contentMediaType": "application/json",
                 "contentSchema": {"anyOf": [{"$ref": "#/components/schemas/Change"},
                                             {"$ref": "#/components/schemas/StreamReset"}]}},
    }, optional=["id"], extra=True),
    "StreamToken": obj({"token": TEXT, "expires_in": {"type": "integer", "description": "seconds"},
                        "expires_at": {"type": "string", "format": "date-time"}}),
}

EVENT_STREAM = {
    "description": "Server-Sent Events: `retry: 2000` first, then one frame per change (`id:` the feed id, "
                   "`event:` its topic, `data:` the change as JSON, see the `Change` schema), `: ping` "
                   "comments when idle, and `event: reset` when the changes after Last-Event-ID are gone.",
    # Each event as OpenAPI 3.2's `itemSchema` would say it (tools read a 3.1 `schema` this way too).
    "content": {"text/event-stream": {"schema": {"$ref": "#/components/schemas/StreamEvent"}}},
}

PATHS: dict[str, Schema] = {
    "/api/stream": {"get": operation(
        "The change feed, live (Server-Sent Events)", tag=TAG,
        security=[*DASHBOARD_READ_AUTH, {"streamToken": []}],
        parameters=[
            list_param("topics", "Only changes on these topics (agent, task, session, message, todo, ...)."),
            query_param("last_event_id", "Resume after this feed id (as the Last-Event-ID header does).",
                        {"type": "string", "pattern": "^[0-9]{0,18}$"}),
            {"name": "Last-Event-ID", "in": "header", "required": False, "description":
             "sent by EventSource itself when it reconnects", "schema": {"type": "string", "pattern": "^[0-9]{0,18}$"}},
        ],
        responses={200: EVENT_STREAM, 400: 400})},
    "/api/stream/token": {"post": operation(
        "A short-lived token for `/api/stream?token=`", tag=TAG, security=DASHBOARD_AUTH,
        responses={201: json_response("The token", {"$ref": "#/components/schemas/StreamToken"})})},
}
