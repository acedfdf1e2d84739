"""The text/event-stream wire format (the WHATWG Server-Sent Events spec), one frame at a time."""

from __future__ import annotations

import json
from typing import Any


def change_frame(change: dict[str, Any]) -> bytes:
    """A change as an SSE event: `id` is the feed id (what Last-Event-ID returns), `event` its topic."""
    return event_frame(change["topic"], change, event_id=change["id"])


def event_frame(event: str, data: dict[str, Any], *, event_id: int | None = None) -> bytes:
    # json.dumps never emits a raw newline, so the data fits on one `data:` line.
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def retry_frame(milliseconds: int) -> bytes:
    return f"retry: {milliseconds}\n\n".encode()


HEARTBEAT = b": ping\n\n"
