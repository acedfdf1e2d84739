"""The search function's part of the OpenAPI document: search, usage, the timeline and activity."""

from __future__ import annotations

from functions.search.terms import MAX_QUERY_CHARS, MAX_TERMS
from functions.search.timeline import BUCKETS, MAX_BUCKETS
from functions.search.usage import GROUPS
from shared.store.search_schema import FIGURES, KINDS
from shared.web.openapi import (
    ANY_JSON,
    DASHBOARD_READ_AUTH,
    OPTIONAL_TEXT,
    PAGE,
    TEXT,
    TIME,
    Schema,
    json_response,
    list_param,
    obj,
    operation,
    page_of,
    query_param,
    ref,
)

TAG = "search"
MOMENT: Schema = {"anyOf": [{"type": "string", "pattern": "^[0-9]{1,12}$"}, {"type": "string", "format": "date-time"}]}
SINCE = query_param("since", "From this moment on: Unix seconds or an ISO 8601 date-time.", MOMENT)
UNTIL = query_param("until", "Before this moment (Unix seconds or ISO 8601); not before `since` (else 400).", MOMENT)
AGENT_ID = query_param("agent_id", "Only this agent's.")
SESSION_ID = query_param("session_id", "Only this session's.")
FIGURE_SCHEMAS: dict[str, Schema] = {
    **{name: {"type": "integer"} for name in FIGURES if name != "cost"},
    "cost": {"type": "number"}, "messages": {"type": "integer", "minimum": 0}}

SCHEMAS: dict[str, Schema] = {
    "SearchHit": obj({
        "kind": {"enum": list(KINDS)},
        "id": {"type": "string", "description": "the thing's id (a message's is its row id)"},
        "session_id": OPTIONAL_TEXT, "agent_id": OPTIONAL_TEXT, "time": TIME,
        "snippet": {"type": "array", "description": "the text around the first match; `match` marks the terms",
                    "items": obj({"text": TEXT, "match": {"type": "boolean"}})},
        "link": {"type": "string", "description": "where the page shows it, e.g. /?session=s1&message=42"}}),
    "UsageFigures": obj(FIGURE_SCHEMAS),
    "UsageGroup": obj({"key": {"type": ["string", "null"],
                               "description": "the agent, model or session id (null: none), or the hour or day"},
                       **FIGURE_SCHEMAS}),
    "TimelineEvent": obj({
        "id": TEXT, "type": TEXT, "agent_id": OPTIONAL_TEXT, "session_id": OPTIONAL_TEXT,
        "known": {"type": "boolean"}, "occurred_at": TIME, "received_at": TIME, "data": ANY_JSON}),
}

PATHS: dict[str, Schema] = {
    "/api/search": {"get": operation(
        "Full-text search: messages (with tool input and output), todos, tasks, questions, Linear issues",
        tag=TAG, security=DASHBOARD_READ_AUTH,
        description="Every word must match (words are runs of letters and digits); `word*` (3 letters or more) "
                    "also matches longer words; \"quoted words\" match as a phrase. Anything else typed is "
                    "punctuation, never query syntax. Newest first.",
        parameters=[
            {**query_param("q", f"The words to find (at most {MAX_QUERY_CHARS} characters, {MAX_TERMS} words or "
                                "phrases); text with no letter or digit is a 400.",
                           {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_CHARS}), "required": True},
            list_param("kind", "Only these kinds of things.", KINDS), AGENT_ID, SESSION_ID, SINCE, UNTIL, *PAGE],
        responses={200: json_response("A page of hits", page_of("hits", ref("SearchHit"))), 400: 400})},
    "/api/usage": {"get": operation(
        "Tokens and cost of assistant messages, per group, with totals", tag=TAG, security=DASHBOARD_READ_AUTH,
        description="Each message counts once, with its latest figures, in the hour it was created; "
                    "`since`/`until` select whole hours.",
        parameters=[query_param("group_by", "What to group by.", {"enum": list(GROUPS), "default": "agent"}),
                    AGENT_ID, SESSION_ID, SINCE, UNTIL],
        responses={200: json_response("The groups and the totals", obj({
            "group_by": {"enum": list(GROUPS)}, "since": TIME, "until": TIME,
            "groups": {"type": "array", "items": ref("UsageGroup")}, "totals": ref("UsageFigures")})),
            400: 400})},
    "/api/timeline": {"get": operation(
        "The accepted events, newest first", tag=TAG, security=DASHBOARD_READ_AUTH,
        parameters=[AGENT_ID, SESSION_ID, list_param("type", "Only events of these types."), SINCE, UNTIL, *PAGE],
        responses={200: json_response("A page of events", page_of("events", ref("TimelineEvent"))), 400: 400})},
    "/api/activity": {"get": operation(
        "Events accepted per agent per time bucket", tag=TAG, security=DASHBOARD_READ_AUTH,
        parameters=[query_param("bucket", "The bucket's width.", {"enum": list(BUCKETS), "default": "1m"}),
                    query_param("since", f"From this moment (default: 60 buckets back); at most {MAX_BUCKETS} "
                                         "buckets back, else 400.", MOMENT), UNTIL],
        responses={200: json_response("Counts per agent, oldest bucket first (empty buckets left out)", obj({
            "bucket": {"enum": list(BUCKETS)}, "bucket_s": {"type": "integer"}, "since": TIME, "until": TIME,
            "agents": {"type": "array", "items": obj({"agent_id": OPTIONAL_TEXT, "buckets": {
                "type": "array", "items": obj({"at": TIME, "events": {"type": "integer", "minimum": 1}})}})},
            "total": {"type": "integer", "minimum": 0}})), 400: 400})},
}
