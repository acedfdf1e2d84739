"""The ingest contract (EVENTS.md): what a valid event or batch looks like.

`parse_events` turns a request document into `Event`s or raises a 422 naming the first field at
fault (`events[3].data.info.id`). It touches no database, so a bad batch writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shared.clock import unix_from_iso
from shared.errors import invalid
from shared.questions import parse_question

MAX_BATCH = 1000
MAX_ID_LENGTH = 128

TODO_STATUSES = frozenset({"pending", "in_progress", "completed", "cancelled"})
TODO_PRIORITIES = frozenset({"low", "medium", "high"})
AGENT_TYPES = frozenset({"primary", "sub-agent"})
AGENT_STATUSES = frozenset({"idle", "working", "blocked", "sleeping", "offline"})
TASK_STATUSES = frozenset({"pending", "in_progress", "blocked", "completed", "cancelled"})
TASK_PRIORITIES = frozenset({"urgent", "high", "medium", "low"})


@dataclass(frozen=True)
class Rule:
    """One field a kind's `data` must (or may) carry: a dotted path, its JSON type, allowed values."""

    path: str
    kind: type | tuple[type, ...] = str
    required: bool = True
    choices: frozenset[str] | None = None


def need(path: str, kind: type | tuple[type, ...] = str, choices: frozenset[str] | None = None) -> Rule:
    return Rule(path, kind, True, choices)


def may(path: str, kind: type | tuple[type, ...] = str, choices: frozenset[str] | None = None) -> Rule:
    return Rule(path, kind, False, choices)


NUMBER = (int, float)
SESSION_INFO = (need("info", dict), need("info.id"), may("info.title"), may("info.parentID"),
                may("info.directory"), may("info.time", dict))
REPLY = (need("sessionID"),)

# The fields each known kind's projection needs. A kind not listed here is stored raw as `unknown`.
KINDS: dict[str, tuple[Rule, ...]] = {
    "session.created": SESSION_INFO,
    "session.updated": SESSION_INFO,
    "session.deleted": (need("info", dict), need("info.id")),
    "session.idle": (need("sessionID"),),
    "session.error": (may("sessionID"), need("error", dict), may("error.name"), may("error.data", dict)),
    "session.status": (need("sessionID"), need("status", dict), need("status.type")),
    "message.updated": (need("info", dict), need("info.id"), need("info.sessionID"), need("info.role"),
                        may("info.time", dict), may("info.modelID"), may("info.providerID"),
                        may("info.mode"), may("info.cost", NUMBER), may("info.tokens", dict)),
    "message.removed": (need("sessionID"), need("messageID")),
    "message.part.updated": (need("part", dict), need("part.id"), need("part.messageID"),
                             need("part.sessionID"), need("part.type"), may("part.text")),
    "todo.updated": (need("sessionID"), need("todos", list)),
    "tool.execute.before": (need("tool"), need("sessionID"), need("callID"), may("args", dict)),
    "tool.execute.after": (need("tool"), need("sessionID"), need("callID"), may("title"), may("output")),
    "file.edited": (need("file"),),
    "permission.asked": (need("id"), need("sessionID")),
    "question.asked": (need("id"), need("sessionID"), may("questions", list)),
    "permission.replied": REPLY,
    "question.replied": REPLY,
    "question.rejected": REPLY,
    "agent.registered": (need("id"), need("name"), need("type", choices=AGENT_TYPES), may("parent_agent_id"),
                         may("soul_md"), may("skills", list), may("config", dict)),
    "agent.status": (need("id"), need("status", choices=AGENT_STATUSES), may("current_task_id"),
                     may("reason")),
    "agent.heartbeat": (need("id"),),
    "task.created": (need("id"), need("agent_id"), need("title"), may("priority", choices=TASK_PRIORITIES),
                     may("linear_issue_id"), may("project_id")),
    "task.updated": (need("id"), need("status", choices=TASK_STATUSES), may("blocked_reason"),
                     may("question", dict)),
}

TODO_RULES = (need("id"), need("content"), need("status", choices=TODO_STATUSES),
              may("priority", choices=TODO_PRIORITIES))


@dataclass(frozen=True)
class Event:
    index: int | None  # position in the batch, None for a single event
    id: str
    type: str
    occurred_at: int  # Unix seconds
    agent_id: str | None
    data: dict[str, Any]

    @property
    def known(self) -> bool:
        return self.type in KINDS

    def field(self, name: str) -> str:
        """The path of one of this event's fields as a 422 names it."""
        return name if self.index is None else f"events[{self.index}].{name}"


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
    event_id = _string(item, "id", prefix, max_length=MAX_ID_LENGTH)
    event_type = _string(item, "type", prefix, max_length=MAX_ID_LENGTH)
    agent_id = item.get("agent_id")
    if agent_id is not None and (not isinstance(agent_id, str) or not 1 <= len(agent_id) <= MAX_ID_LENGTH):
        raise invalid(f"{prefix}agent_id", f"agent_id must be a string of 1 to {MAX_ID_LENGTH} characters.")
    data = item.get("data")
    if not isinstance(data, dict):
        raise invalid(f"{prefix}data", "data is required and must be a JSON object.")
    event = Event(index, event_id, event_type, _timestamp(item, prefix), agent_id, data)
    check_rules(data, KINDS.get(event_type, ()), f"{prefix}data.")
    if event_type == "todo.updated":
        for position, todo in enumerate(data["todos"]):
            where = f"{prefix}data.todos[{position}]"
            if not isinstance(todo, dict):
                raise invalid(where, "Each todo must be a JSON object.")
            check_rules(todo, TODO_RULES, f"{where}.")
    if event_type == "task.updated" and data.get("question") is not None:
        # Checked here, not at projection, so a bad question fails the batch before anything is written.
        where = f"{prefix}data.question"
        parse_question(data["question"], where)
        if data["status"] != "blocked":
            raise invalid(where, f"{where} goes with status blocked: a task waits on its question.")
    return event


def check_rules(data: dict[str, Any], rules: Iterable[Rule], prefix: str) -> None:
    for rule in rules:
        value = lookup(data, rule.path)
        where = prefix + rule.path
        if value is None:
            if rule.required:
                raise invalid(where, f"{where} is required for this event type.")
            continue
        if not isinstance(value, rule.kind) or (isinstance(value, bool) and rule.kind is not bool):
            raise invalid(where, f"{where} must be {_json_type_name(rule.kind)}.")
        if rule.kind is str and rule.required and not value:
            raise invalid(where, f"{where} must not be empty.")
        if rule.choices is not None and value not in rule.choices:
            raise invalid(where, f"{where} must be one of {', '.join(sorted(rule.choices))}; got {value!r}.")


def lookup(data: dict[str, Any], path: str) -> Any:
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _string(item: dict[str, Any], name: str, prefix: str, *, max_length: int) -> str:
    value = item.get(name)
    if not isinstance(value, str) or not 1 <= len(value) <= max_length:
        raise invalid(f"{prefix}{name}", f"{name} is required: a string of 1 to {max_length} characters.")
    return value


# Epoch milliseconds up to the year 9999; larger numbers are a unit mistake, not a date.
MAX_EPOCH_MS = 253_402_300_799_999


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


def _json_type_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", dict: "an object", list: "a list", int: "a number", float: "a number"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))


def ms_to_unix(value: Any) -> int | None:
    """opencode's times are epoch milliseconds; anything else is ignored rather than trusted."""
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= MAX_EPOCH_MS:
        return int(value // 1000)
    return None

