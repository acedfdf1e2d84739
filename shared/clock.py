"""Time conversions: the database keeps integer Unix seconds, JSON speaks ISO 8601 (UTC)."""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime


def now() -> int:
    return int(time.time())


# Remembered: a page or a batch shows the same few seconds (a row's `updated_at` is its write's `now`)
# over and over, and making the text costs more than the rest of a row's JSON.
@functools.lru_cache(maxsize=4096)
def iso_from_unix(seconds: int | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def unix_from_iso(text: str) -> int:
    """Parse an ISO 8601 date-time; a value without a zone is taken as UTC. Raises ValueError."""
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())
