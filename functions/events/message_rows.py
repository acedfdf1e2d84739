"""The messages a batch of events touches, held as rows in memory while the batch is applied.

opencode re-sends a message many times while it streams (its info with new tokens, each part as a
growing snapshot). Written one event at a time, every snapshot would rewrite the row, re-index its
text for search (a trigger) and re-count its usage (another), then read it back to publish it. Instead
a batch reads the rows of all the messages it touches at once, when it starts; each event changes its
message's row in memory, exactly as its SQL would have; and at the end each changed row is written once
(`flush`: one executemany) and published once, as the batch left it, from memory.

A message the batch creates is held back too, and inserted (`insert_new`) as late as its id allows: before
the batch's next event that may write other rows taking ids in the same order (a turn's task and its search
entry, an error message: every kind but those whose `Kind.takes_ids` is False), before a todo list that
adds or removes todos (their search entries), or before a message is removed.
So its id, and its search entry's, fall where one event per request puts them, and a message begun and
streamed between two such events is inserted once, with the text it has by then, instead of inserted
empty and then rewritten: its search text is indexed once and its usage counted once
(docs/benchmarks.md, "New messages inserted once").

A row's JSON columns (`parts`, `tokens`) stay the text the database holds until something reads them
(`json_value`): most re-sends of a message replace its `tokens` whole and never look at its
`parts`, whose text is then written and published as it was read, never decoded or encoded again; a
value that is encoded is encoded once, for both. What the middle of a batch asks of a session's messages
(a turn's title is its prompt's text: `latest_prompt`) is answered from the rows in memory and the
database together, as one event per request would have left them, without writing the rows early.

Everything here runs inside the ingest's write transaction (one writer: no other can change the rows
in between).
"""

from __future__ import annotations

import contextlib
import json
import operator
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from shared.clock import iso_from_unix
from shared.store.db import execute, execute_many, insert_returning_id
from shared.store.feed import record_encoded_changes
from shared.store.models import JSONField, Message, UnixTimeField, compact_json

COLUMNS = tuple(field.column_name for field in Message._meta.sorted_fields)  # the API's order
JSON_ORDER = tuple(field.column_name for field in Message._meta.sorted_fields if isinstance(field, JSONField))
JSON_COLUMNS = frozenset(JSON_ORDER)
TIME_COLUMNS = frozenset(field.column_name for field in Message._meta.sorted_fields
                         if isinstance(field, UnixTimeField))
# What ingest writes; a new row takes the table's defaults for the rest (read 0, no todo).
WRITTEN = ("content", "parts", "session_id", "role", "agent", "model_id", "provider_id", "cost", "tokens",
           "completed_at", "updated_at")
INSERTED = ("external_id", "type", "created_at", *WRITTEN)

INSERT = f"INSERT INTO messages ({', '.join(INSERTED)}) VALUES ({', '.join('?' * len(INSERTED))})"
UPDATE = f"UPDATE messages SET {', '.join(f'{column} = ?' for column in WRITTEN)} WHERE id = ?"

Row = dict[str, Any]  # column -> value as the database holds it, JSON columns decoded or `Encoded`


class Encoded:
    """A JSON column's value as its text, not decoded (yet): what the database holds, or will."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


def json_value(row: Row, column: str) -> Any:
    """A JSON column's value, decoded the first time something reads it."""
    value = row[column]
    if isinstance(value, Encoded):
        value = row[column] = json.loads(value.text)
    return value


class MessageRows:
    """The rows of one batch's messages by external id (None: no such message), and what it changed."""

    def __init__(self, external_ids: Iterable[str]):
        self.rows: dict[str, Row | None] = {}
        # Written at the next flush, in the order first changed: external id -> its session in the database.
        self.changed: dict[str, str | None] = {}
        self.published: dict[str, str] = {}  # external id -> the change's action, in the order first touched
        self.new: list[str] = []  # created by this batch and not inserted yet, in the order created
        self.load(list(dict.fromkeys(external_ids)))

    def load(self, external_ids: list[str]) -> None:
        if not external_ids:
            return
        cursor = execute(f"SELECT {', '.join(COLUMNS)} FROM messages"
                         f" WHERE external_id IN ({', '.join('?' * len(external_ids))})", external_ids)
        self.rows.update(dict.fromkeys(external_ids))
        for values in cursor.fetchall():
            row = dict(zip(COLUMNS, values, strict=True))
            for column in JSON_COLUMNS:
                if isinstance(row[column], str):
                    row[column] = Encoded(row[column])
            self.rows[row["external_id"]] = row

    def get(self, external_id: str) -> Row | None:
        if external_id not in self.rows:
            self.load([external_id])
        return self.rows[external_id]

    def insert(self, external_id: str, type: str, created_at: int, **values: Any) -> None:
        """A message first heard of now: its row, inserted by the next `insert_new`."""
        row: Row = {column: None for column in COLUMNS} | {"read": 0, "external_id": external_id, "type": type,
                                                            "created_at": created_at}
        row.update(stored(values))
        self.rows[external_id] = row
        self.new.append(external_id)

    def insert_new(self) -> None:
        """Insert the messages created since the last call, in the order they were created, as they are now."""
        for external_id in self.new:
            row = self.rows[external_id]
            encode_json_columns(row)
            row["id"] = insert_returning_id(INSERT, [database_value(row[column]) for column in INSERTED])
        self.new.clear()

    def update(self, external_id: str, **values: Any) -> None:
        row = self.rows[external_id]
        if row["id"] is not None:  # else it is inserted as it will be
            self.changed.setdefault(external_id, row["session_id"])
        row.update(stored(values))

    def delete(self, external_id: str) -> None:
        """The row goes now, with whatever it held (its search entry and usage take out what they hold). One
        created by this batch is inserted first, as one event per request would have: its id is used up."""
        self.insert_new()
        execute("DELETE FROM messages WHERE external_id = ?", (external_id,))
        self.rows[external_id] = None
        self.changed.pop(external_id, None)

    def publish(self, external_id: str, action: str) -> None:
        self.published[external_id] = action

    def flush(self) -> None:
        """Write every row created or changed since it was last written, once."""
        self.insert_new()
        rows = [self.rows[external_id] for external_id in self.changed]
        self.changed.clear()
        if rows:
            execute_many(UPDATE, [update_values(row) for row in rows])

    def latest_prompt(self, session_id: str) -> str | None:
        """The text of the session's latest user message that has any (by `created_at`, then id), as the
        messages table will hold it once this batch's changes are written. The rows changed since they were
        last written count as they are in memory; the database answers for the others."""
        self.insert_new()  # none wait where it is asked (an event not about a message); rows compare by id
        stale = [external_id for external_id, stored_in in self.changed.items() if stored_in == session_id]
        held = [row for external_id in self.changed if (row := self.rows[external_id])["session_id"] == session_id
                and row["role"] == "user" and row["content"]]
        candidates = [(row["created_at"], row["id"], row["content"]) for row in held]
        candidates.extend(stored_prompts(session_id, stale))
        return max(candidates)[2] if candidates else None

    def publish_all(self) -> None:
        """One change per message the batch changed, as the batch left it. A message removed since has no
        row, and its `removed` change says so already."""
        record_encoded_changes("message", [(action, api_json_text(row))
                                           for external_id, action in self.published.items()
                                           if (row := self.rows[external_id]) is not None])
        self.published.clear()


def stored(values: dict[str, Any]) -> dict[str, Any]:
    """Values as the database gives them back: a cost is a REAL column (an integer 0 reads 0.0)."""
    if values.get("cost") is not None:
        values["cost"] = float(values["cost"])
    return values


def encode_json_columns(row: Row) -> None:
    """Its JSON columns as the text the database takes (once: what is written is also what is published)."""
    for column in JSON_COLUMNS:
        value = row[column]
        if value is not None and not isinstance(value, Encoded):
            row[column] = Encoded(compact_json(value))


def database_value(value: Any) -> Any:
    return value.text if isinstance(value, Encoded) else value


_UPDATED_VALUES = operator.itemgetter(*WRITTEN, "id")
_WRITTEN_JSON = [position for position, column in enumerate(WRITTEN) if column in JSON_COLUMNS]


def update_values(row: Row) -> list[Any]:
    """UPDATE's parameters for a row: every written column, then its id (only JSON columns hold `Encoded`)."""
    encode_json_columns(row)
    values = list(_UPDATED_VALUES(row))
    for position in _WRITTEN_JSON:
        values[position] = database_value(values[position])
    return values


def api_json_text(row: Row) -> str:
    """The row as the API shows it (`Message.to_json`), as JSON text: the JSON columns' text is put in as
    it is (their keys come last)."""
    encode_json_columns(row)
    body = {column: value for column, value in row.items() if column not in JSON_COLUMNS}
    for column in TIME_COLUMNS:
        body[column] = iso_from_unix(body[column])
    text = compact_json(Message.present(body))
    return text[:-1] + "".join(f',"{column}":{"null" if row[column] is None else row[column].text}'
                               for column in JSON_ORDER) + "}"


# The batch being applied, on this thread ----------------------------------------------------------------

_batch = threading.local()


@contextlib.contextmanager
def batch_messages(external_ids: Iterable[str]) -> Iterator[MessageRows]:
    _batch.rows = MessageRows(external_ids)
    try:
        yield _batch.rows
    finally:
        _batch.rows = None


def messages() -> MessageRows:
    """The batch's messages (projections run only inside a batch)."""
    return _batch.rows


def stored_prompts(session_id: str, except_ids: list[str]) -> list[tuple[int, int, str]]:
    """The session's latest user message with text in the database, unless it is one of `except_ids`:
    [(created_at, id, content)] or []."""
    excepted = f" AND external_id NOT IN ({', '.join('?' * len(except_ids))})" if except_ids else ""
    return execute("SELECT created_at, id, content FROM messages WHERE session_id = ? AND role = 'user'"
                   f" AND content <> ''{excepted} ORDER BY created_at DESC, id DESC LIMIT 1",
                   (session_id, *except_ids)).fetchall()


def latest_prompt(session_id: str) -> str | None:
    """The text of the session's latest user message that has any (see `MessageRows.latest_prompt`)."""
    rows = getattr(_batch, "rows", None)
    if rows is not None:
        return rows.latest_prompt(session_id)
    found = stored_prompts(session_id, [])
    return found[0][2] if found else None
