"""Reading filter parameters from the query string the same way in every function."""

from __future__ import annotations

import falcon

from shared.clock import unix_from_iso
from shared.errors import bad_query

LAST_UNIX_SECOND = 253_402_300_799  # 9999-12-31T23:59:59Z


def list_param(req: falcon.Request, name: str) -> list[str]:
    """`?status=a,b` and `?status=a&status=b` both mean [a, b]."""
    values = req.get_param_as_list(name) or []
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def since_param(req: falcon.Request) -> int | None:
    """`?since=` as Unix seconds or an ISO 8601 date-time."""
    raw = req.get_param("since")
    if raw is None:
        return None
    if raw.isdigit():
        if int(raw) > LAST_UNIX_SECOND:  # more than SQLite's integers hold, and no date anyway
            raise bad_query("since", "since is past the year 9999; send Unix seconds or an ISO 8601 date-time")
        return int(raw)
    try:
        return unix_from_iso(raw)
    except (ValueError, OverflowError):
        raise bad_query("since", "since must be Unix seconds or an ISO 8601 date-time") from None
