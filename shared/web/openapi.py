"""The building blocks of the OpenAPI document: what every function's part of it is made of.

Each function documents its own routes beside them, in `functions/<name>/openapi.py`:

    PATHS = {"/api/things/{thing_id}": {"get": operation("One thing", ..., responses={200: ...})}}
    SCHEMAS = {"Thing": {...}}

and `deploy/openapi.py` composes those parts (no function imports another) into the one document
served at `GET /api/openapi.json`. What every route shares lives here: the one error shape, the
credentials, the paging parameters, and `operation()`, which adds the answers the house middleware
gives on every route (401 without a credential, 413 over the body limit, 503 when the database is
busy) so no part has to repeat them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Schema = dict[str, Any]

OPENAPI_VERSION = "3.1.0"


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """`schema` or JSON null (OpenAPI 3.1 spells it as a type list)."""
    kind = schema.get("type")
    if kind is None:
        return {"anyOf": [schema, {"type": "null"}]}
    kinds = kind if isinstance(kind, list) else [kind]
    return {**schema, "type": [*kinds, "null"]}


def obj(properties: Mapping[str, Schema], *, optional: Iterable[str] = (), extra: bool = False) -> Schema:
    """A JSON object with exactly these properties (all required unless named `optional`)."""
    optional = set(optional)
    return {"type": "object", "properties": dict(properties),
            "required": [name for name in properties if name not in optional],
            "additionalProperties": extra}


TEXT: Schema = {"type": "string"}
OPTIONAL_TEXT: Schema = {"type": ["string", "null"]}
TIME: Schema = {"type": ["string", "null"], "format": "date-time",
                "description": "ISO 8601 UTC, e.g. 2026-11-24T10:00:00Z"}
ANY_JSON: Schema = {"description": "any JSON value, as it was sent"}

# The project's one error shape (shared/web/errors.py), for every status of every route.
ERROR: Schema = obj({
    "error": obj({
        "code": {"type": "string", "minLength": 1, "examples": ["unprocessable", "not_found", "unauthorized"]},
        "message": {"type": "string", "minLength": 1},
        "field": {"type": "string", "description": "the input at fault, e.g. events[3].data.todos[0].status"},
    }, optional=["field"]),
})

ERROR_STATUSES = {
    400: ("BadRequest", "A malformed request: a body that is not JSON, or a query parameter out of range "
                        "(codes `malformed_json`, `invalid_parameter`)."),
    401: ("Unauthorized", "No credential, or not the one this route takes (codes `unauthorized`, "
                          "`token_expired`, `invalid_webhook`)."),
    403: ("Forbidden", "The credential may not do this (code `csrf`: a cookie-authenticated write whose "
                       "Origin/Referer is not this server)."),
    404: ("NotFound", "No such thing (code `not_found`)."),
    409: ("Conflict", "The request conflicts with the current state (it names the field or the state)."),
    413: ("PayloadTooLarge", "The body is larger than DASHBOARD_MAX_BODY_BYTES (code `payload_too_large`)."),
    415: ("UnsupportedMediaType", "The body is not `application/json` (code `unsupported_media_type`)."),
    422: ("Unprocessable", "The body is JSON but a field is missing or wrong; `field` names it."),
    429: ("TooManyRequests", "Too many attempts; wait as `Retry-After` says."),
    502: ("BadGateway", "An outside service (Linear) refused or failed (code `linear_error`)."),
    503: ("Unavailable", "The database is busy past its timeout (`database_unavailable`, with `Retry-After`), "
                        "or a dependency this route needs is not configured."),
}

RESPONSE_HEADERS = {
    401: {"WWW-Authenticate": {"description": "`Bearer`", "schema": TEXT}},
    429: {"Retry-After": {"description": "seconds to wait", "schema": TEXT}},
}


def error_ref(status: int) -> Schema:
    return {"$ref": f"#/components/responses/{ERROR_STATUSES[status][0]}"}


def error_response(status: int) -> Schema:
    description = ERROR_STATUSES[status][1]
    response: Schema = {"description": description, "content": {"application/json": {"schema": ref("Error")}}}
    if status in RESPONSE_HEADERS:
        response["headers"] = RESPONSE_HEADERS[status]
    return response


# Credentials (shared/web/auth.py). An operation lists the schemes it accepts; any one of them will do.
SECURITY_SCHEMES: dict[str, Schema] = {
    "agentKey": {"type": "http", "scheme": "bearer",
                 "description": "The agents' API key (DASHBOARD_API_KEY, or the one `make run` generated)."},
    "agentKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                       "description": "The agents' API key, for senders that cannot set Authorization."},
    "dashboardToken": {"type": "http", "scheme": "bearer",
                       "description": "DASHBOARD_TOKEN (or the generated one), or a sign-in session's token."},
    "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "ocd_session",
                      "description": "A browser's sign-in session (POST /api/auth/login). For anything but "
                                     "GET/HEAD/OPTIONS the request must also carry an Origin (or Referer) "
                                     "of this server's own origin, else 403 `csrf`."},
    "linearSignature": {"type": "apiKey", "in": "header", "name": "Linear-Signature",
                        "description": "Linear's webhooks: the hex HMAC-SHA256 of the exact body with "
                                       "LINEAR_WEBHOOK_SECRET."},
    "streamToken": {"type": "apiKey", "in": "query", "name": "token",
                    "description": "A short-lived token from POST /api/stream/token (EventSource sends no headers)."},
}

AGENT_AUTH = [{"agentKey": []}, {"agentKeyHeader": []}]
# The session cookie opens every dashboard route, writes included (behind the same-origin check).
DASHBOARD_AUTH = [{"dashboardToken": []}, {"sessionCookie": []}]
DASHBOARD_READ_AUTH = DASHBOARD_AUTH
NO_AUTH: list[dict[str, list]] = []


# Parameters -------------------------------------------------------------------------------------------

def path_param(name: str, description: str, schema: Schema | None = None, example: Any = None) -> Schema:
    param: Schema = {"name": name, "in": "path", "required": True, "description": description,
                     "schema": schema or {"type": "string", "minLength": 1}}
    if example is not None:
        param["example"] = example
    return param


def query_param(name: str, description: str, schema: Schema | None = None) -> Schema:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or TEXT}


def list_param(name: str, description: str, choices: Iterable[str] | None = None) -> Schema:
    """`?name=a,b` (shared/query.list_param; `?name=a&name=b` works too). With `choices`, other values
    are a 400: add 400 to the operation's responses."""
    # Empty parts (`?status=a,,b`) are skipped, so any string is a valid item where no choices are set.
    items: Schema = {"type": "string", "enum": list(choices)} if choices is not None else {"type": "string"}
    return {"name": name, "in": "query", "required": False, "description": description, "style": "form",
            "explode": False, "schema": {"type": "array", "items": items}}


def bool_param(name: str, description: str) -> Schema:
    return query_param(name, description, {"type": "boolean"})


SINCE = query_param("since", "Only rows changed at or after this moment: Unix seconds or an ISO 8601 date-time.",
                    {"anyOf": [{"type": "string", "pattern": "^[0-9]{1,12}$"},
                               {"type": "string", "format": "date-time"}]})

PAGE = [
    {"$ref": "#/components/parameters/limit"},
    {"$ref": "#/components/parameters/cursor"},
]

PARAMETERS: dict[str, Schema] = {
    "limit": query_param("limit", "Rows per page (shared/store/pagination.py).",
                         {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}),
    "cursor": query_param("cursor", "The previous page's `next_cursor`; omit it for the first page."),
}

NEXT_CURSOR: Schema = {"type": ["string", "null"], "description": "the next page's cursor; null on the last page"}


def page_of(name: str, item: Schema) -> Schema:
    """A list answer: `{"<name>": [...], "next_cursor": ...}`."""
    return obj({name: {"type": "array", "items": item}, "next_cursor": NEXT_CURSOR})


# Operations -------------------------------------------------------------------------------------------

def json_response(description: str, schema: Schema) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def json_body(schema: Schema, *, required: bool = True, description: str | None = None,
              example: Any = None) -> Schema:
    media: Schema = {"schema": schema} if example is None else {"schema": schema, "example": example}
    body: Schema = {"required": required, "content": {"application/json": media}}
    if description:
        body["description"] = description
    return body


def operation(summary: str, *, tag: str, security: list[dict[str, list]], responses: Mapping[int, Schema | int],
              parameters: Iterable[Schema] = (), body: Schema | None = None, description: str | None = None,
              json_request: bool = True) -> Schema:
    """One operation. `responses` maps a status to its response, or to itself for an error status
    (`{200: json_response(...), 404: 404}`). Added for you: 401 and 429 unless the route is public (a
    client past the limit on failed sign-ins, shared.web.throttle), 503 (every request opens a database
    connection), and for a JSON body 400, 413 and 415."""
    answers: dict[int, Schema | int] = dict(responses)
    if security:
        answers.setdefault(401, 401)
        answers.setdefault(429, 429)
    if body is not None:
        answers.setdefault(413, 413)
        if json_request:
            answers.setdefault(400, 400)
            answers.setdefault(415, 415)
    answers.setdefault(503, 503)
    op: Schema = {"tags": [tag], "summary": summary, "security": security,
                  "responses": {str(status): error_ref(answer) if isinstance(answer, int) else answer
                                for status, answer in sorted(answers.items())}}
    if description:
        op["description"] = description
    if parameters:
        op["parameters"] = list(parameters)
    if body is not None:
        op["requestBody"] = body
    return op


def components() -> Schema:
    """What the document shares across functions; each function adds its own schemas."""
    return {"schemas": {"Error": ERROR}, "parameters": PARAMETERS, "securitySchemes": SECURITY_SCHEMES,
            "responses": {name: error_response(status) for status, (name, _) in ERROR_STATUSES.items()}}
