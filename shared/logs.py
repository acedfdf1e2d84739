"""Logging set-up shared by every process: the web functions, the worker and the periodic jobs.

Two formats (DASHBOARD_LOG_FORMAT): `json`, one object a line for machines (the default under gunicorn
and in the launchd/systemd services), and `text` for a person at a terminal (the default for commands).
Every line passes through `redact` first, so a secret that slips into a message (a bearer token, a
`?token=` query, a configured key) is replaced before it is written. The request id of the request a
line belongs to (`shared.web.request_log`) is added to it.
"""

from __future__ import annotations

import contextvars
import dataclasses
import datetime
import functools
import json
import logging
import logging.handlers
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from shared.config import Settings

# The id of the request this thread is serving, set by shared.web.request_log for the request's duration.
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

REDACTED = "[redacted]"
# Credentials by shape, wherever they appear in a line: an Authorization value, a token-like query or
# form parameter, a Linear API key. Each keeps its lead-in (`Bearer `, `token=`) and loses the value.
_SECRET_SHAPES = (
    r"(?P<scheme>\b(?i:bearer|basic)\s+)[^\s\"',;]+",
    r"(?P<param>(?:^|[?&;\s\"'])(?i:token|access_token|api_key|apikey|key|secret|password|signature)=)[^&\s\"']+",
    r"\blin_(?:api|oauth)_[A-Za-z0-9]+",
)
# A LogRecord's own attributes; anything else on a record came in through `extra=` and is a field.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


@functools.lru_cache(maxsize=8)
def _secret_pattern(secrets: tuple[str, ...]) -> re.Pattern:
    """One pattern for the known secrets and the shapes: a line is scanned once (an access line in ~2 µs)."""
    return re.compile("|".join([*map(re.escape, secrets), *_SECRET_SHAPES]))


def _replacement(match: re.Match) -> str:
    return (match.group("scheme") or match.group("param") or "") + REDACTED


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    return _secret_pattern(secrets).sub(_replacement, text)


def configured_secrets(settings: Settings) -> tuple[str, ...]:
    """Every secret the settings hold — the fields kept out of their repr, which is how config.py marks a
    secret, so a new one is covered without a change here — longest first (one that contains another
    goes whole). A tuple of secrets (DASHBOARD_SECRET_KEY_PREVIOUS) counts each of its members."""
    values = [getattr(settings, field.name) for field in dataclasses.fields(settings) if not field.repr]
    flat = [item for value in values for item in (value if isinstance(value, tuple) else (value,))]
    return tuple(sorted({value for value in flat if isinstance(value, str) and value}, key=len, reverse=True))


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the request id, then any `extra=` fields."""

    def __init__(self, secrets: Iterable[str] = ()):
        super().__init__()
        self.secrets = tuple(secrets)

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": _utc_iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage(), self.secrets),
            "pid": record.process,
        }
        current = getattr(record, "request_id", None) or request_id.get()
        if current:
            line["request_id"] = current
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and key != "request_id":
                line[key] = redact(value, self.secrets) if isinstance(value, str) else value
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info), self.secrets)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [request id]: message`, redacted like the JSON lines."""

    def __init__(self, secrets: Iterable[str] = ()):
        super().__init__("%(asctime)s %(levelname)s %(name)s%(request_tag)s: %(message)s")
        self.secrets = tuple(secrets)

    def format(self, record: logging.LogRecord) -> str:
        current = getattr(record, "request_id", None) or request_id.get()
        record.request_tag = f" [{current}]" if current else ""
        return redact(super().format(record), self.secrets)


def _utc_iso(created: float) -> str:
    moment = datetime.datetime.fromtimestamp(created, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def make_handler(settings: Settings) -> logging.Handler:
    """Where lines go: DASHBOARD_LOG_FILE if set, else stderr.

    A file is written through WatchedFileHandler, which notices when newsyslog or logrotate has moved
    the file away and opens a new one: no signal, no restart."""
    if settings.log_file:
        Path(settings.log_file).parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.handlers.WatchedFileHandler(settings.log_file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    formatter = JsonFormatter if settings.log_format == "json" else TextFormatter
    handler.setFormatter(formatter(configured_secrets(settings)))
    handler._dashboard = True  # see configure_logging
    return handler


def configure_logging(settings: Settings) -> None:
    """Send this process's log lines through the dashboard's handler at the configured level.

    Idempotent (every function's create_app may call it). Leaves alone a root logger that something
    else set up first — pytest's capture — so tests still see the lines."""
    root = logging.getLogger()
    ours = [handler for handler in root.handlers if getattr(handler, "_dashboard", False)]
    if not root.handlers:
        root.addHandler(make_handler(settings))
    elif ours:
        for handler in ours:  # the same process, maybe new settings (format, secrets)
            root.removeHandler(handler)
            handler.close()
        root.addHandler(make_handler(settings))
    root.setLevel(settings.log_level)
    global _json_results
    _json_results = settings.log_format == "json" and any(
        getattr(handler, "_dashboard", False) for handler in root.handlers)


_json_results = False


def report(logger: str, message: str, *, failed: bool = False) -> None:
    """A command's one-line result: a log line in the JSON log under a service, else printed (stdout,
    or stderr when it failed) for the person who ran it."""
    if _json_results:
        logging.getLogger(logger).log(logging.ERROR if failed else logging.INFO, message)
    else:
        print(message, file=sys.stderr if failed else sys.stdout)
