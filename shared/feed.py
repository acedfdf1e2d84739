"""The change feed: the bus between every writer (web functions, worker, cron) and every browser.

A writer calls `record_change` inside the same transaction as the state change it describes (an
outbox), so a change is visible in the feed exactly when the data is. Readers page through the feed
by id with `changes_since`; ids only grow, so `id > last_id` never skips or repeats a change.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shared.clock import now
from shared.db import database
from shared.models import Change


class ChangeOutsideTransaction(RuntimeError):
    """record_change was called with no transaction open: the change could be seen without its data."""


def record_change(topic: str, action: str, payload: dict[str, Any]) -> int:
    """Append a change to the feed inside the caller's transaction; return its id."""
    if not database.in_transaction():
        raise ChangeOutsideTransaction(
            f"record_change({topic!r}, {action!r}) must run inside the transaction that makes the change"
        )
    return Change.insert(topic=topic, action=action, payload=payload, created_at=now()).execute()


def changes_since(
    last_id: int, topics: Iterable[str] | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    """The changes after `last_id`, oldest first, optionally only those of `topics`."""
    query = Change.select().where(Change.id > last_id).order_by(Change.id).limit(limit)
    if topics is not None:
        query = query.where(Change.topic.in_(list(topics)))
    return [change_json(row) for row in query]


def change_json(change: Change) -> dict[str, Any]:
    return {
        "id": change.id,
        "topic": change.topic,
        "action": change.action,
        "payload": change.payload,
        "created_at": change.to_json()["created_at"],
    }
