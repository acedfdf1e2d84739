"""Reading filter parameters from the query string the same way in every function."""

from __future__ import annotations

from collections.abc import Sequence

import falcon

from shared.clock import unix_from_iso
from shared.store.db import MAX_INTEGER
from shared.web.errors import bad_query

LAST_UNIX_SECOND = 253_402_300_799  # 9999-12-31T23:59:59Z


def whole_number(raw: str) -> int | None:
    """`raw` as a whole number a database column can hold, else None. ASCII digits only: str.isdigit()
    also takes '²', which int() refuses; and SQLite refuses integers past 64 bits (OverflowError)."""
    if not (raw.isascii() and raw.isdigit()):
        return None
    value = int(raw)
    return value if value <= MAX_INTEGER else None


def list_param(req: falcon.Request, name: str, choices: Sequence[str] | None = None) -> list[str]:
    """`?status=a,b` and `?status=a&status=b` both mean [a, b]. With `choices`, any other value is a
    400 naming the parameter: a filter that can never match is a mistake, not an empty answer."""
    values = req.get_param_as_list(name) or []
    parts = [part.strip() for value in values for part in value.split(",") if part.strip()]
    if choices is not None and (unknown := [part for part in parts if part not in choices]):
        raise bad_query(name, f"{name} must be among {', '.join(choices)}; {unknown[0]!r} is not")
    return parts


def since_param(req: falcon.Request) -> int | None:
    """`?since=` as Unix seconds or an ISO 8601 date-time."""
    return time_param(req, "since")


def time_param(req: falcon.Request, name: str) -> int | None:
    """A moment in the query string (`?since=`, `?until=`): Unix seconds or an ISO 8601 date-time."""
    raw = req.get_param(name)
    if raw is None:
        return None
    if (seconds := whole_number(raw)) is not None:
        if seconds > LAST_UNIX_SECOND:  # no date anyway
            raise bad_query(name, f"{name} is past the year 9999; send Unix seconds or an ISO 8601 date-time")
        return seconds
    try:
        return unix_from_iso(raw)
    except (ValueError, OverflowError):
        raise bad_query(name, f"{name} must be Unix seconds or an ISO 8601 date-time") from None


def time_range(req: falcon.Request) -> tuple[int | None, int | None]:
    """`?since=&until=` (from `since`, up to but not including `until`); `until` before `since` is a 400."""
    since, until = time_param(req, "since"), time_param(req, "until")
    if since is not None and until is not None and until < since:
        raise bad_query("until", "until is before since: the range is empty")
    return since, until
