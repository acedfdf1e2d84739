"""The change feed: the bus between every writer (web functions, worker, cron) and every browser.

A writer calls `record_change` inside the same transaction as the state change it describes (an
outbox), so a change is visible in the feed exactly when the data is. Readers page through the feed
by id with `changes_since`; ids only grow, and they become visible in id order (one writer at a
time, on SQLite by design, on PostgreSQL through the writer lock), so `id > last_id` never skips or
repeats a change.

Within one ingest request (a batch), a row that several events change — a session, an agent, a task,
a message — gets one change, not one per event: the row as the batch left it, under its last action,
in the order the rows were first changed (`record_row_change`, `publish_rows`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import peewee

from shared.clock import now
from shared.store.db import (
    changes_recorded,
    database,
    execute_many,
    hold_writer_lock,
    insert_returning_id,
    memo_in_batch,
    write_transaction,
)
from shared.store.models import Change, Setting, compact_json

# The id of the newest change ever pruned: a reader that last saw an older id has missed changes.
PRUNED_THROUGH_KEY = "feed_pruned_through"


class ChangeOutsideTransaction(RuntimeError):
    """record_change was called with no transaction open: the change could be seen without its data."""


INSERT_CHANGE = "INSERT INTO changes (topic, action, payload, created_at) VALUES (?, ?, ?, ?)"


def record_change(topic: str, action: str, payload: dict[str, Any]) -> int:
    """Append a change to the feed inside the caller's transaction; return its id."""
    _about_to_record(topic, action)
    # Plain SQL: every write path in the project comes through here, often several times a request.
    return insert_returning_id(INSERT_CHANGE, (topic, action, _dumps(payload), now()))


class RowChange(NamedTuple):
    action: str
    read_row: Callable[[], dict[str, Any] | None]
    whole: bool


def record_row_change(topic: str, key: str, action: str, read_row: Callable[[], dict[str, Any] | None], *,
                      whole: bool = True) -> None:
    """A change of the row `key` of `topic`, its payload what `read_row` reads: the whole row, or only the
    part that changed (`whole=False`, such as a heartbeat's time).

    Outside a batch, recorded now. Inside one (`shared.store.db.batch_memo`), recorded by `publish_rows`
    when the batch ends, once per row: the row read then, under the last action — except that a part
    never replaces a whole row pending, which holds it. A batch of a session's events sends one change."""
    pending = memo_in_batch("rows to publish")
    if pending is None:
        record_change(topic, action, read_row())
        return
    held = pending.get((topic, key))
    if held is None or whole or not held.whole:
        pending[(topic, key)] = RowChange(action, read_row, whole)


def publish_rows() -> None:
    """Record the batch's pending row changes (`record_row_change`), in the order the rows first changed."""
    pending = memo_in_batch("rows to publish")
    if not pending:
        return
    for (topic, _), change in pending.items():
        record_change(topic, change.action, change.read_row())
    pending.clear()


def record_changes(topic: str, changes: list[tuple[str, dict[str, Any]]]) -> None:
    """Append several changes of `topic` ((action, payload), in order) in one statement."""
    record_encoded_changes(topic, [(action, _dumps(payload)) for action, payload in changes])


def record_encoded_changes(topic: str, changes: list[tuple[str, str]]) -> None:
    """`record_changes` of payloads already made JSON text (a JSON object each)."""
    if not changes:
        return
    _about_to_record(topic, changes[0][0])
    at = now()
    execute_many(INSERT_CHANGE, [(topic, action, payload, at) for action, payload in changes])


def _about_to_record(topic: str, action: str) -> None:
    if not database.obj.in_transaction():
        raise ChangeOutsideTransaction(
            f"record_change({topic!r}, {action!r}) must run inside the transaction that makes the change"
        )
    # On PostgreSQL, ids must commit in order for `id > last_id` readers (see shared.store.db.WRITER_LOCK_KEY);
    # inside a write_transaction this costs nothing, the lock is already held.
    hold_writer_lock()
    changes_recorded()  # the readers are woken once the transaction commits


def _dumps(payload: dict[str, Any]) -> str:
    return compact_json(payload)


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


def latest_change_id() -> int:
    return Change.select(peewee.fn.MAX(Change.id)).scalar() or 0


def pruned_through() -> int:
    row = Setting.get_or_none(Setting.key == PRUNED_THROUGH_KEY)
    return int(row.value) if row is not None and row.value else 0


def prune_changes(older_than_s: float) -> int:
    """Delete changes older than `older_than_s` seconds; return how many went.

    Remembers the newest pruned id so that a browser resuming from before it is told to reload
    instead of silently missing changes."""
    cutoff = now() - int(older_than_s)
    with write_transaction():
        newest_pruned = Change.select(peewee.fn.MAX(Change.id)).where(Change.created_at < cutoff).scalar()
        if newest_pruned is None:
            return 0
        deleted = Change.delete().where(Change.id <= newest_pruned).execute()
        Setting.put(PRUNED_THROUGH_KEY, str(newest_pruned))
    return deleted
