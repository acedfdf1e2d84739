"""What a stored JSON value may be, checked (and long text cut) at ingest, so that every read can return
whatever was accepted: a value nested past `MAX_DEPTH`, a number no column or JSON reader can hold, or a
key longer than `MAX_KEY_LENGTH` is a 422 naming the field; text is kept, cut to `MAX_STRING_CHARS`
(and to a common shorter length when an event's strings add up to more than `MAX_EVENT_CHARS`) with the
original length said at the cut; a NUL character (which PostgreSQL's text cannot hold) becomes U+FFFD.
"""

from __future__ import annotations

import math
from typing import Any

from shared.store.db import MAX_INTEGER
from shared.web.errors import invalid

# Deeper than anything opencode sends (its events nest about 8 levels) and far below what Python's
# JSON reader and writer can recurse through (~1 000), with room for the levels a read wraps around a
# stored value (a message's parts inside a page of messages, a change inside a stream event).
MAX_DEPTH = 64
MAX_KEY_LENGTH = 1024
MAX_STRING_CHARS = 32_768
MAX_EVENT_CHARS = 262_144  # one event's strings together, after each is cut to MAX_STRING_CHARS
MIN_CUT_CHARS = 1_024  # sharing MAX_EVENT_CHARS out never cuts a string shorter than this
MIN_INTEGER = -MAX_INTEGER - 1

# What the OpenAPI document says of every event's data.
DESCRIPTION = (f"Fields not named here are kept as sent. Anywhere inside: nesting at most {MAX_DEPTH} levels (data "
               f"itself is the first), integers within ±(2^63 - 1), every number finite, keys "
               f"of at most {MAX_KEY_LENGTH} characters; otherwise a 422 names the field. Text longer than "
               f"{MAX_STRING_CHARS} characters (or sharing {MAX_EVENT_CHARS} in all) is kept cut, ending with "
               f"\"… [cut by the dashboard: N characters in all]\"; a NUL character is kept as U+FFFD.")


def cut_marker(length: int) -> str:
    return f"\n… [cut by the dashboard: {length} characters in all]"


def checked(data: dict[str, Any], where: str) -> dict[str, Any]:
    """`data` as it will be stored: checked (422 naming the field at fault) and its long text cut."""
    lengths: list[int] = []
    try:
        nul = _check(data, 1, lengths)
    except _Refused as refused:
        field = where + "".join(reversed(refused.steps))
        raise invalid(field, f"{field} {refused.reason}") from None
    cap = _share(lengths)
    if not nul and (not lengths or max(lengths) <= cap):
        return data  # the common case: nothing to change, nothing copied
    return _cut(data, cap)


class _Refused(Exception):
    """A value that cannot be stored; the path to it is gathered on the way out (`.key`, `[3]`), so
    the walk builds no path for the values that are fine."""

    def __init__(self, reason: str):
        self.reason = reason
        self.steps: list[str] = []


def _check(value: Any, depth: int, lengths: list[int]) -> bool:
    """Raise for what cannot be stored; note each string's length. True when some text holds a NUL."""
    if depth > MAX_DEPTH:
        raise _Refused(f"is nested deeper than {MAX_DEPTH} levels of objects and lists.")
    nul = False
    is_object = isinstance(value, dict)
    # The ingest's hottest loop: leaves are checked here rather than in a call of their own, by their exact
    # type first (JSON gives nothing else), anything else (a subclass) through `_leaf`.
    for key, item in value.items() if is_object else enumerate(value):
        if is_object and (len(key) > MAX_KEY_LENGTH or "\x00" in key):
            if len(key) > MAX_KEY_LENGTH:
                raise _Refused(f"has a key longer than {MAX_KEY_LENGTH} characters.")
            nul = True
        kind = type(item)
        try:
            if kind is str:
                lengths.append(len(item))
                nul = nul or "\x00" in item
            elif kind is dict or kind is list:
                nul = _check(item, depth + 1, lengths) or nul
            elif kind is not bool and item is not None:
                nul = _leaf(item, depth + 1, lengths) or nul
        except _Refused as refused:
            refused.steps.append(f".{key}" if is_object else f"[{key}]")
            raise
    return nul


def _leaf(value: Any, depth: int, lengths: list[int]) -> bool:
    """A number (or a subclass of any JSON type, checked as its type)."""
    if isinstance(value, str):
        lengths.append(len(value))
        return "\x00" in value
    if isinstance(value, dict | list):
        return _check(value, depth, lengths)
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int) and not MIN_INTEGER <= value <= MAX_INTEGER:
        raise _Refused(f"is out of range: integers must lie within ±{MAX_INTEGER}.")
    if isinstance(value, float) and not math.isfinite(value):
        raise _Refused("must be a finite number.")
    return False


def _share(lengths: list[int]) -> int:
    """The length every string is cut to: MAX_STRING_CHARS, or less, shared out evenly, when the event's
    strings together would hold more than MAX_EVENT_CHARS (the short ones are kept whole)."""
    if sum(lengths) <= MAX_EVENT_CHARS:  # the common case, told without sorting
        return MAX_STRING_CHARS
    capped = sorted(min(length, MAX_STRING_CHARS) for length in lengths)
    if sum(capped) <= MAX_EVENT_CHARS:
        return MAX_STRING_CHARS
    budget = MAX_EVENT_CHARS
    for position, length in enumerate(capped):
        share = budget // (len(capped) - position)
        if length > share:
            return max(share, MIN_CUT_CHARS)
        budget -= length
    return MAX_STRING_CHARS  # not reached: the sum was over the budget


def _cut(value: Any, cap: int) -> Any:
    if isinstance(value, str):
        text = value.replace("\x00", "\ufffd")
        return text if len(text) <= cap else text[:cap] + cut_marker(len(text))
    if isinstance(value, dict):
        return {key.replace("\x00", "\ufffd"): _cut(item, cap) for key, item in value.items()}
    if isinstance(value, list):
        return [_cut(item, cap) for item in value]
    return value
