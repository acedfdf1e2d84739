"""gunicorn's own error answers in the project's JSON error shape.

A request gunicorn cannot parse — a broken request line, a header over its size limits, a bad chunk
size, a path over 4 094 bytes — is answered by gunicorn itself before any function sees it, and
gunicorn writes those answers as HTML pages. `answer_in_json()` (called from gunicorn.conf.py, so the
forked workers inherit it) replaces the one function that writes them, so a client parses one error
shape whatever went wrong.
"""

from __future__ import annotations

import json

from gunicorn import util

from shared.web.errors import CODES_BY_STATUS


def json_error_response(status: int, reason: str, message: str) -> bytes:
    """The bytes of a complete HTTP response carrying `{"error": {"code", "message"}}`."""
    body = json.dumps({"error": {"code": CODES_BY_STATUS.get(status, f"http_{status}"),
                                 "message": message or reason}}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


def _write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    # The signature of gunicorn.util.write_error, which gunicorn's workers call for these answers.
    util.write_nonblock(sock, json_error_response(status_int, reason, mesg))


def answer_in_json() -> None:
    util.write_error = _write_json_error
