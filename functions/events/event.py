"""An accepted event, and reading the values inside its `data`."""

from __future__ import annotations

from typing import Any, NamedTuple

# Epoch milliseconds up to the year 9999; larger numbers are a unit mistake, not a date.
MAX_EPOCH_MS = 253_402_300_799_999


class Event(NamedTuple):  # a tuple: made a thousand times a batch, and cheaper to make than a frozen dataclass
    index: int | None  # position in the batch, None for a single event
    id: str
    type: str
    occurred_at: int  # Unix seconds
    agent_id: str | None
    data: dict[str, Any]
    known: bool = True  # a kind of the registry (`kinds.KINDS`); any other kind is only stored raw

    def field(self, name: str) -> str:
        """The path of one of this event's fields as a 422 names it."""
        return name if self.index is None else f"events[{self.index}].{name}"


def lookup(data: dict[str, Any], path: str) -> Any:
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def ms_to_unix(value: Any) -> int | None:
    """opencode's times are epoch milliseconds; anything else is ignored rather than trusted."""
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= MAX_EPOCH_MS:
        return int(value // 1000)
    return None
