"""The one JSON error shape, for every status, from every function.

    {"error": {"code": "unprocessable", "message": "events[3].type is required", "field": "events[3].type"}}

Handlers raise `ApiError` (or Falcon's own HTTP errors); `install_error_handling` makes the app render
all of them, its own 404/405/415 and any uncaught exception in this shape. An uncaught exception is
logged with its traceback and answered as a bare 500: no traceback, no setting, no secret in the body.
"""

from __future__ import annotations

import logging

import falcon
import peewee

log = logging.getLogger(__name__)

CODES_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    417: "expectation_failed",
    422: "unprocessable",
    429: "too_many_requests",
    431: "headers_too_large",
    500: "internal_error",
    501: "not_implemented",
    503: "unavailable",
}


class ApiError(falcon.HTTPError):
    """An error with the project's code and, where one input is to blame, the field that names it."""

    def __init__(self, status: int, code: str, message: str, *, field: str | None = None, headers=None):
        super().__init__(falcon.code_to_http_status(status), title=code, description=message, headers=headers)
        self.code = code
        self.field = field


def invalid(field: str, message: str) -> ApiError:
    return ApiError(422, "unprocessable", message, field=field)


def bad_query(field: str, message: str) -> ApiError:
    return ApiError(400, "invalid_parameter", message, field=field)


def error_body(error: falcon.HTTPError, req: falcon.Request | None = None) -> dict:
    status = falcon.http_status_to_code(error.status)
    body = {
        "code": getattr(error, "code", None) or CODES_BY_STATUS.get(status, f"http_{status}"),
        "message": error.description or _default_message(status, req) or error.title,
    }
    field = getattr(error, "field", None)
    if field:
        body["field"] = field
    return {"error": body}


def _default_message(status: int, req: falcon.Request | None) -> str | None:
    # Falcon's own 404/405 carry no description; say what the client can do about it.
    if req is not None and status == 404:
        return f"Nothing is served at {req.path}."
    if req is not None and status == 405:
        return f"{req.method} is not allowed on {req.path}."
    return None


def serialize_error(req: falcon.Request, resp: falcon.Response, error: falcon.HTTPError) -> None:
    # Always JSON, whatever the client's Accept header says: clients parse one shape.
    resp.media = error_body(error, req)
    resp.content_type = falcon.MEDIA_JSON


def _handle_database_unavailable(req, resp, ex, params) -> None:
    log.warning("database unavailable for %s %s: %s", req.method, req.path, ex)
    message, retry_after_s = unavailable_reason(ex)
    raise ApiError(503, "database_unavailable", message, headers={"Retry-After": str(retry_after_s)})


def unavailable_reason(error: Exception) -> tuple[str, int]:
    """What to tell a client whose request the database could not take, and when to try again: a lock
    passes in moments, a full or read-only disk waits for a person."""
    text = str(error).lower()
    if "locked" in text or "busy" in text or "lock timeout" in text:  # the last: PostgreSQL's lock_timeout
        return "The database is busy: another writer held it past the busy timeout; retry shortly.", 1
    if any(sign in text for sign in ("full", "i/o", "readonly", "read-only")):
        return "The database cannot be written: its disk is full, read-only or failing; retry later.", 30
    return "The database is unavailable; retry shortly.", 1


# What psycopg2 raises for a text value with a NUL character, which PostgreSQL's text type cannot hold
# (SQLite's can). The input is at fault, not the server; the write it was part of is rolled back.
POSTGRESQL_NUL_MESSAGE = "cannot contain NUL (0x00) characters"


def _handle_unexpected(req, resp, ex, params) -> None:
    if isinstance(ex, falcon.HTTPError):  # Falcon's own errors keep their status
        raise ex
    if isinstance(ex, ValueError) and POSTGRESQL_NUL_MESSAGE in str(ex):
        raise ApiError(422, "unprocessable", "Text may not contain NUL (\\u0000) characters.")
    log.exception("unhandled error on %s %s", req.method, req.path)
    raise ApiError(500, "internal_error", "Something went wrong on our side; it has been logged.")


def install_error_handling(app: falcon.App) -> None:
    app.set_error_serializer(serialize_error)
    # Falcon picks the most specific handler, so HTTPError keeps its default handling.
    app.add_error_handler(Exception, _handle_unexpected)
    app.add_error_handler(peewee.OperationalError, _handle_database_unavailable)
