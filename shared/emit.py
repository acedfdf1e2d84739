"""Post events to a dashboard's `/api/events` from scripts and tests: `python -m shared.emit`.

    python -m shared.emit task.created --agent a1 --data '{"id": "t1", "agent_id": "a1", "title": "Ship it"}'
    echo '{"type": "agent.heartbeat", "data": {"id": "a1"}}' | python -m shared.emit

Same delivery rules as the opencode hook (hooks/dashboard-client.mjs): every event gets its id once, before
the first attempt, so a retry of a request whose answer was lost is acknowledged as a duplicate, not applied
twice; network errors, 408, 429 and 5xx are retried with exponential backoff and full jitter (never sooner
than a `Retry-After`); any other 4xx is final. It is a client of the dashboard, not part of it: it reads
only DASHBOARD_URL and DASHBOARD_API_KEY, and never prints the key.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests

DEFAULT_URL = "http://127.0.0.1:3000"
MAX_BATCH = 1000  # the ingest contract's limit per request
RETRYABLE_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))

ID_TIME_LIMIT = 16**12  # milliseconds in 12 hex digits: until the year 10889

EXIT_OK, EXIT_USAGE, EXIT_REJECTED, EXIT_GAVE_UP = 0, 2, 3, 4


class EmitError(Exception):
    """The events were not delivered."""


class NoApiKey(EmitError):
    """Nothing was sent: there is no key to send."""


class Rejected(EmitError):
    """The dashboard answered a final 4xx: sending the same events again would fail the same way."""

    def __init__(self, message: str, status: int, body: Any = None):
        super().__init__(message)
        self.status = status
        self.body = body


class GaveUp(EmitError):
    """Every attempt met a network error, 408, 429 or 5xx."""


def new_event_id(now_ms: int | None = None) -> str:
    """`evt_`, the time in milliseconds (12 hex digits, as a UUIDv7 begins) and 80 random bits, as the
    opencode hook makes them: ids that begin with the time keep the dashboard's index of event ids
    written at one end (docs/events.md, "A request")."""
    at = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    return f"evt_{at % ID_TIME_LIMIT:012x}{secrets.token_hex(10)}"


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def make_event(type: str, data: dict[str, Any], *, agent_id: str | None = None, id: str | None = None,
               timestamp: str | int | None = None) -> dict[str, Any]:
    """An event in the ingest contract's shape, with its id and timestamp fixed now, once."""
    event: dict[str, Any] = {"id": id or new_event_id(), "type": type, "timestamp": timestamp or now_iso(),
                             "data": data}
    if agent_id:
        event["agent_id"] = agent_id
    return event


def complete_event(event: dict[str, Any]) -> dict[str, Any]:
    """An event read from a file or stdin, given the id and timestamp it lacks (the rest is the server's to judge)."""
    return {"id": new_event_id(), "timestamp": now_iso()} | event


def backoff_delay(attempt: int, base_s: float, max_s: float, retry_after_s: float | None = None) -> float:
    """Full jitter: a random delay up to base·2^attempt (capped), but never before the server's Retry-After."""
    delay = random.uniform(0, min(max_s, base_s * 2 ** attempt))
    return max(delay, retry_after_s or 0.0)


def retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` as seconds, whether the server sent a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def emit(events: dict[str, Any] | Sequence[dict[str, Any]], *, url: str | None = None, api_key: str | None = None,
         attempts: int = 5, base_delay_s: float = 0.5, max_delay_s: float = 10.0, timeout_s: float = 10.0,
         session: requests.Session | None = None, sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """POST one event or a list of them (in batches of at most 1 000) and return the summed answer
    `{"accepted", "duplicates", "unknown"}`. Raises EmitError when refused or when `attempts` are used up."""
    batch = [events] if isinstance(events, dict) else list(events)
    url = (url or os.environ.get("DASHBOARD_URL") or DEFAULT_URL).rstrip("/") + "/api/events"
    api_key = api_key if api_key is not None else os.environ.get("DASHBOARD_API_KEY", "")
    if not api_key:
        raise NoApiKey("no API key: set DASHBOARD_API_KEY (the agents' key printed by `make run`)")
    http = session or requests.Session()
    total = {"accepted": 0, "duplicates": 0, "unknown": 0}
    for start in range(0, len(batch), MAX_BATCH):
        answer = _post_with_retries(http, url, api_key, batch[start:start + MAX_BATCH], attempts,
                                    base_delay_s, max_delay_s, timeout_s, sleep)
        for key in total:
            total[key] += answer.get(key, 0)
    return total


def _post_with_retries(http: requests.Session, url: str, api_key: str, events: list[dict[str, Any]],
                       attempts: int, base_delay_s: float, max_delay_s: float, timeout_s: float,
                       sleep: Callable[[float], None]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    body = json.dumps({"events": events})
    for attempt in range(attempts):
        retry_after = None
        try:
            response = http.post(url, data=body, headers=headers, timeout=timeout_s)
        except requests.RequestException as error:
            # The exception's text names the URL and the cause, never the headers (the key).
            problem = f"cannot reach {url}: {type(error).__name__}"
        else:
            if response.status_code < 300:
                return response.json()
            problem = f"{url} answered {response.status_code}: {_error_message(response)}"
            if response.status_code not in RETRYABLE_STATUSES:
                raise Rejected(problem, response.status_code, _json_or_none(response))
            retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        if attempt + 1 < attempts:
            sleep(backoff_delay(attempt, base_delay_s, max_delay_s, retry_after))
    raise GaveUp(f"gave up after {attempts} attempts; last: {problem}")


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error_message(response: requests.Response) -> str:
    """The project's error shape's message, else the status line's reason (a proxy's HTML page says nothing)."""
    body = _json_or_none(response)
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return error["message"]
    return response.reason or "no explanation"


# The command line --------------------------------------------------------------------------------------------

def read_events(text: str) -> list[dict[str, Any]]:
    """Events from stdin: one JSON event, a JSON list, `{"events": [...]}`, or one event per line."""
    text = text.strip()
    if not text:
        raise ValueError("no events on stdin")
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        document = [json.loads(line) for line in text.splitlines() if line.strip()]
    if isinstance(document, dict):
        document = document["events"] if isinstance(document.get("events"), list) else [document]
    if not all(isinstance(event, dict) for event in document):
        raise ValueError("every event must be a JSON object")
    return [complete_event(event) for event in document]


def parse_args(argv: Iterable[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m shared.emit",
        description="Post events to the dashboard's /api/events (DASHBOARD_URL, DASHBOARD_API_KEY from the "
                    "environment). With no TYPE, events are read as JSON from stdin.",
        epilog="exit status: 0 delivered (the answer is printed), 2 bad input or no key, 3 refused by the "
               "dashboard (4xx other than 408/429), 4 gave up (unreachable, 408, 429 or 5xx on every attempt)")
    parser.add_argument("type", nargs="?", help="the event's kind, e.g. task.created (omit to read stdin)")
    parser.add_argument("--data", default="{}", help="the event's data as a JSON object (default {})")
    parser.add_argument("--agent", help="the agent_id that produced the event")
    parser.add_argument("--id", help="the event's id (default: a new one; reuse it to make a resend a no-op)")
    parser.add_argument("--timestamp", help="ISO 8601 or epoch milliseconds (default: now)")
    parser.add_argument("--url", help=f"the dashboard (default: $DASHBOARD_URL or {DEFAULT_URL})")
    parser.add_argument("--attempts", type=int, default=5, help="tries before giving up (default 5)")
    return parser.parse_args(list(argv) if argv is not None else None)


def main(argv: Iterable[str] | None = None, stdin=None) -> int:
    args = parse_args(argv)
    try:
        if args.type:
            data = json.loads(args.data)
            if not isinstance(data, dict):
                raise ValueError("--data must be a JSON object")
            timestamp = int(args.timestamp) if args.timestamp and args.timestamp.isdigit() else args.timestamp
            events = [make_event(args.type, data, agent_id=args.agent, id=args.id, timestamp=timestamp)]
        else:
            events = read_events((stdin or sys.stdin).read())
    except (ValueError, KeyError) as error:
        print(f"emit: bad input: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        answer = emit(events, url=args.url, attempts=max(1, args.attempts))
    except EmitError as error:
        print(f"emit: {error}", file=sys.stderr)
        return {NoApiKey: EXIT_USAGE, Rejected: EXIT_REJECTED}.get(type(error), EXIT_GAVE_UP)
    print(json.dumps(answer))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
