"""Reading JSON request bodies safely: the right content type, a size limit, strict parsing."""

from __future__ import annotations

import json
import re
from typing import Any

import falcon

from shared.web.errors import ApiError


class BodyLimit:
    """Falcon middleware: refuse a declared body over the limit before anyone reads it."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.content_length is not None and req.content_length > self.max_bytes:
            raise too_large(self.max_bytes)


def too_large(max_bytes: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"The request body is larger than the limit of {max_bytes} bytes.")


def read_json(req: falcon.Request, max_bytes: int) -> Any:
    """The request's JSON document. 415 for another content type, 413 over `max_bytes` (also for a
    chunked body, which declares no length), 400 for bytes that are not UTF-8 JSON."""
    if not req.content_type or req.content_type.split(";")[0].strip().lower() != falcon.MEDIA_JSON:
        raise ApiError(415, "unsupported_media_type", "Send the body as application/json.")
    return parse_json(read_raw_body(req, max_bytes))


def read_raw_body(req: falcon.Request, max_bytes: int) -> bytes:
    """The request body's exact bytes, for a caller that must see them before parsing (a signature
    check). 413 over `max_bytes`, also for a chunked body; 400 when it cannot be read (a broken
    chunked encoding)."""
    try:
        raw = _body_stream(req).read(max_bytes + 1)
    except Exception as error:  # whatever the server's input stream raises: a broken upload, not our bug
        raise ApiError(400, "malformed_body", f"The request body could not be read: {error}") from None
    if len(raw) > max_bytes:
        raise too_large(max_bytes)
    return raw


def parse_json(raw: bytes) -> Any:
    """Strictly parse a JSON document: 400 for empty, non-UTF-8 or invalid JSON (NaN included, and
    text holding half of a surrogate pair)."""
    if not raw:
        raise ApiError(400, "malformed_json", "The request body is empty; send a JSON document.")
    try:
        document = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise ApiError(400, "malformed_json", "The request body is not valid UTF-8.") from None
    except (ValueError, RecursionError) as error:
        raise ApiError(400, "malformed_json", f"The request body is not valid JSON: {error}") from None
    if _SURROGATE_ESCAPE.search(raw) and _holds_lone_surrogate(document):
        raise ApiError(400, "malformed_json", "The request body escapes a lone UTF-16 surrogate (\\ud800 to "
                       "\\udfff without its pair): that is no character, and it cannot be stored.")
    return document


# "\ud83d\ude00" is how an ASCII-only encoder writes one emoji; the parser joins such a pair, but an
# unpaired half stays in the text as a surrogate that UTF-8 (and so the database) cannot hold.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _holds_lone_surrogate(document: Any) -> bool:
    try:
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _body_stream(req: falcon.Request):
    # Falcon's bounded_stream reads nothing when no Content-Length is given; a chunked upload has none,
    # but gunicorn marks its input as terminated (a PEP 3333 extension), so it is safe to read to EOF.
    if req.content_length is None and req.env.get("wsgi.input_terminated"):
        return req.stream
    return req.bounded_stream


def _reject_constant(name: str) -> None:
    # NaN and Infinity are not JSON; Python's parser accepts them unless told otherwise.
    raise ValueError(f"{name} is not allowed in JSON")
