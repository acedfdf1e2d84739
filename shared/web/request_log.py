"""Every request gets an id and one access log line: WSGI middleware around the mounted functions.

The id is the caller's `X-Request-Id` when it is a sane token (so a proxy's or an agent's id carries
through), else a fresh one; it is returned as `X-Request-Id` on every response — errors and the
mount's own 404s included — and added to every log line written while the request is served. The
access line carries the method, the path (never the query string: a stream token travels there), the
status and the duration; no header is ever logged.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator

from shared.logs import request_id

access_log = logging.getLogger("access")

HEADER = "X-Request-Id"
# Letters, digits and . _ : - only, at most 128: anything else could forge or break log lines.
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")

WSGIApp = Callable[..., Iterable[bytes]]


def request_id_from(environ: dict) -> str:
    offered = environ.get("HTTP_X_REQUEST_ID", "")
    return offered if _SANE_ID.fullmatch(offered) else secrets.token_hex(16)


class RequestLog:
    def __init__(self, app: WSGIApp):
        self.app = app

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        current = request_id_from(environ)
        token = request_id.set(current)
        outcome = {"status": 500}

        def start_with_id(status: str, headers: list, exc_info=None):
            outcome["status"] = int(status[:3])
            headers = [(name, value) for name, value in headers if name.lower() != HEADER.lower()]
            return start_response(status, [*headers, (HEADER, current)], exc_info)

        try:
            body = self.app(environ, start_with_id)
        except BaseException:
            self._finish(environ, outcome, started, token)
            raise
        # The body may be a stream read long after this returns (Server-Sent Events): the line is
        # written, and the id let go, when the server closes it.
        return LoggedBody(body, lambda: self._finish(environ, outcome, started, token))

    def _finish(self, environ, outcome: dict, started: float, token) -> None:
        self._log(environ, outcome["status"], started)
        try:
            request_id.reset(token)
        except ValueError:  # closed from another thread than the one that served it
            request_id.set(None)

    @staticmethod
    def _log(environ, status: int, started: float) -> None:
        method = environ.get("REQUEST_METHOD", "")
        path = environ.get("PATH_INFO", "")
        duration_ms = round((time.perf_counter() - started) * 1000, 2)
        access_log.info("%s %s %d %.1f ms", method, path, status, duration_ms,
                        extra={"method": method, "path": path, "status": status, "duration_ms": duration_ms})


class LoggedBody:
    """A response body that runs `on_close` once, when the server closes it (as WSGI promises)."""

    def __init__(self, body: Iterable[bytes], on_close: Callable[[], None]):
        self.body = body
        self.on_close = on_close

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.body)

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self.on_close()
