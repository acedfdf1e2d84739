"""The ingest contract (docs/events.md): what a valid event or batch looks like.

`parse_events` turns a request document into `Event`s or raises a 422 naming the first field at
fault (`events[3].data.info.id`). It touches no database, so a bad batch writes nothing. What each
kind's `data` must carry is declared in the registry, `kinds.KINDS`.
"""

from __future__ import annotations

from typing import Any

from functions.events.event import MAX_EPOCH_MS, Event
from functions.events.kinds import KINDS, SESSION_OF_A_SESSION_EVENT, SESSION_OF_ANY_EVENT
from functions.events.limits import checked
from functions.events.rules import MAX_ID_LENGTH, Fields
from shared.clock import unix_from_iso
from shared.web.errors import invalid

MAX_BATCH = 1000


def parse_events(document: Any) -> list[Event]:
    if not isinstance(document, dict):
        raise invalid("body", "The body must be one event object or {\"events\": [...]}.")
    if "events" not in document:
        return [parse_event(document, None)]
    batch = document["events"]
    if not isinstance(batch, list):
        raise invalid("events", "events must be a list of event objects.")
    if not 1 <= len(batch) <= MAX_BATCH:
        raise invalid("events", f"events must hold 1 to {MAX_BATCH} events, got {len(batch)}.")
    return [parse_event(item, index) for index, item in enumerate(batch)]


def parse_event(item: Any, index: int | None) -> Event:
    prefix = "" if index is None else f"events[{index}]."
    if not isinstance(item, dict):
        raise invalid(prefix.rstrip(".") or "body", "An event must be a JSON object.")
    event_id = _string(item, "id", prefix)
    event_type = _string(item, "type", prefix)
    agent_id = _string(item, "agent_id", prefix) if item.get("agent_id") is not None else None
    data = item.get("data")
    if not isinstance(data, dict):
        raise invalid(f"{prefix}data", "data is required and must be a JSON object.")
    data = checked(data, f"{prefix}data")  # what is stored, whatever the kind: readable, long text cut
    fields_of(event_type).check(data, f"{prefix}data.")
    kind = KINDS.get(event_type)
    event = Event(index, event_id, event_type, _timestamp(item, prefix), agent_id, data, known=kind is not None)
    if kind is not None and kind.check is not None:
        kind.check(event)
    return event


def _fields(event_type: str) -> Fields:
    """What an event's data must carry: where the timeline finds its session (any event), then its kind's
    own fields, checked in that order (the first field at fault is the one a 422 names)."""
    kind = KINDS.get(event_type)
    return Fields((*SESSION_OF_ANY_EVENT, *(SESSION_OF_A_SESSION_EVENT if event_type.startswith("session.") else ()),
                   *(kind.rules if kind is not None else ())))


FIELDS = {event_type: _fields(event_type) for event_type in KINDS}
UNKNOWN_SESSION_KIND, UNKNOWN_KIND = _fields("session.*"), _fields("*")


def fields_of(event_type: str) -> Fields:
    return FIELDS.get(event_type) or (UNKNOWN_SESSION_KIND if event_type.startswith("session.") else UNKNOWN_KIND)


def _string(item: dict[str, Any], name: str, prefix: str) -> str:
    """An envelope field: an id kept exactly as sent (so no NUL, which PostgreSQL's text cannot hold)."""
    value = item.get(name)
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_ID_LENGTH or "\x00" in value:
        raise invalid(f"{prefix}{name}", f"{name} must be a string of 1 to {MAX_ID_LENGTH} characters, without NUL.")
    return value


def _timestamp(item: dict[str, Any], prefix: str) -> int:
    value = item.get("timestamp")
    field = f"{prefix}timestamp"
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= MAX_EPOCH_MS:
            raise invalid(field, "timestamp in epoch milliseconds is out of range.")
        return value // 1000
    if isinstance(value, str):
        try:
            return unix_from_iso(value)
        except (ValueError, OverflowError):
            pass
    raise invalid(field, "timestamp is required: an ISO 8601 string or Unix epoch milliseconds.")
