"""Which description of a Linear entity is the newest: an older one never overwrites a newer one.

Linear's descriptions of an entity reach the cache out of order. A delivery that failed is retried a
minute or an hour later, after newer ones; the sync reads a page of issues while a webhook lands a
newer change to one of them. Every description carries the entity's `updatedAt` (milliseconds), and
`linear_versions` keeps the newest one applied per entity — also after a removal, so an update sent
before an issue was deleted, arriving after the deletion, does not bring the issue back.

Descriptions without an `updatedAt` (or an id) are let through: there is nothing to compare.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from shared.store.models import LinearVersion

# Kinds are Linear's type names, as in a webhook's `type`.
ISSUE, PROJECT, STATE, CYCLE, COMMENT = "Issue", "Project", "WorkflowState", "Cycle", "Comment"

_ID_CHUNK = 500


def newest(kind: str, payloads: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The payloads to apply, in their order: per entity the newest of those given (the last, among
    equals), unless the cache has applied a newer one before. Their versions are recorded as applied.
    Must run inside the write transaction that applies them."""
    stamped = [(payload, _id(payload), updated_ms(payload)) for payload in payloads]
    known = _known(kind, [entity for _, entity, ms in stamped if entity is not None and ms is not None])
    chosen: dict[str, int] = {}  # entity id -> position of the payload to apply
    for position, (_, entity, ms) in enumerate(stamped):
        if entity is None or ms is None:
            continue
        if ms < known.get(entity, ms):
            continue  # older than what the cache already holds
        if entity in chosen and ms < stamped[chosen[entity]][2]:
            continue  # an older one of the same batch
        chosen[entity] = position
    _record(kind, {entity: stamped[position][2] for entity, position in chosen.items()})
    keep = set(chosen.values())
    return [payload for position, (payload, entity, ms) in enumerate(stamped)
            if position in keep or entity is None or ms is None]


def updated_ms(payload: Mapping[str, Any]) -> int | None:
    """The payload's `updatedAt` as Unix milliseconds; None when it has none or it cannot be read."""
    value = payload.get("updatedAt")
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            return None  # Linear's times are UTC with a Z; a time of no zone says nothing comparable
        return round(moment.timestamp() * 1000)
    except (ValueError, OverflowError):
        return None


def _id(payload: Mapping[str, Any]) -> str | None:
    entity = payload.get("id")
    return entity if isinstance(entity, str) and entity else None


def _known(kind: str, ids: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), _ID_CHUNK):
        chunk = unique[start:start + _ID_CHUNK]
        found.update((row.entity_id, row.updated_ms) for row in LinearVersion.select().where(
            (LinearVersion.kind == kind) & LinearVersion.entity_id.in_(chunk)))
    return found


def _record(kind: str, versions: dict[str, int]) -> None:
    rows = [{"kind": kind, "entity_id": entity, "updated_ms": ms} for entity, ms in versions.items()]
    for start in range(0, len(rows), _ID_CHUNK):
        (LinearVersion.insert_many(rows[start:start + _ID_CHUNK])
         .on_conflict(conflict_target=[LinearVersion.kind, LinearVersion.entity_id],
                      preserve=[LinearVersion.updated_ms]).execute())
