"""Accepting a batch of events: store each new one raw, project it, all in one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field

from functions.events.event import Event
from functions.events.kinds import KINDS
from functions.events.message_rows import batch_messages
from functions.events.projections import as_json, message_of
from functions.events.session_turns import settle_agents
from shared.clock import now as clock_now
from shared.store.db import batch_memo, execute, execute_many
from shared.store.feed import publish_rows
from shared.store.group_commit import write_in_group


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    unknown: int = 0
    unknown_types: list[str] = field(default_factory=list)
    applied: list[Event] = field(default_factory=list, repr=False)  # the events seen for the first time

    def to_json(self) -> dict:
        body = {"accepted": self.accepted, "duplicates": self.duplicates, "unknown": self.unknown}
        if self.unknown_types:
            body["unknown_types"] = self.unknown_types
        return body


def ingest(events: list[Event]) -> IngestResult:
    """Apply the events that were never seen before, in order; count the rest as duplicates.

    All or nothing: if one projection fails, the request's writes roll back and nothing is stored. They
    share a transaction with the writes of requests that came meanwhile (shared/store/group_commit.py),
    each request in a savepoint of its own."""
    now = clock_now()
    # The raw events' JSON is made before the write lock is taken: other requests wait while it is held.
    stored = [as_json(event.data) if not event.known or KINDS[event.type].stored else None for event in events]
    return write_in_group(lambda: apply(events, stored, now), weight=len(events))


def apply(events: list[Event], stored: list[str | None], now: int) -> IngestResult:
    result = IngestResult()
    with batch_memo():
        # Inside the write transaction, so two requests carrying the same id cannot both apply it.
        ids = [event.id for event in events]
        seen = {row[0] for row in execute(
            f"SELECT id FROM inbound_events WHERE id IN ({', '.join('?' * len(ids))})", ids)}
        fresh: list[Event] = []
        raw_rows = []
        for event, data in zip(events, stored, strict=True):
            if event.id in seen:
                result.duplicates += 1
                continue
            seen.add(event.id)
            fresh.append(event)
            if data is not None:
                raw_rows.append((event.id, event.type, event.agent_id, int(event.known), event.occurred_at, now, data))
        if not fresh:
            return result
        if raw_rows:
            execute_many("INSERT INTO inbound_events (id, type, agent_id, known, occurred_at, received_at, data)"
                         " VALUES (?, ?, ?, ?, ?, ?, ?)", raw_rows)
        last = last_of_each_state(fresh)
        message_ids = [message_of(event) if event.known else None for event in fresh]
        with batch_messages(filter(None, message_ids)) as messages:
            for position, event in enumerate(fresh):
                if event.known:
                    kind = KINDS[event.type]
                    if message_ids[position] is None and kind.takes_ids:
                        messages.insert_new()  # before whatever this event writes takes the ids after theirs
                    if kind.replaces is not None and last[(event.type, kind.replaces(event))] != position:
                        kind.superseded(event, now)
                    else:
                        kind.project(event, now)
                else:
                    result.unknown += 1
                    if event.type not in result.unknown_types:
                        result.unknown_types.append(event.type)
            messages.flush()
            messages.publish_all()
        settle_agents(now)
        publish_rows()  # the batch's sessions, agents and tasks: one change each
    result.accepted = len(fresh)
    result.applied = fresh
    return result


def last_of_each_state(events: list[Event]) -> dict[tuple[str, str], int]:
    """For kinds whose events replace a state whole (`Kind.replaces`): the position of the last event
    of each (kind, state) in the batch, the one that is projected."""
    last: dict[tuple[str, str], int] = {}
    for position, event in enumerate(events):
        if event.known and (replaces := KINDS[event.type].replaces) is not None:
            last[(event.type, replaces(event))] = position
    return last
