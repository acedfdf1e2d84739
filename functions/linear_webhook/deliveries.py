"""Applying a verified Linear delivery to the cache, exactly once.

Each delivery is recorded in `webhook_deliveries` under its `Linear-Delivery` id (Linear retries with
the same payload, so a redelivery finds its id and is only acknowledged) and the SHA-256 of its signed
body (so the same body re-sent under another id — a replay within the timestamp window — is a
duplicate too). A delivery older than what the cache holds of its entity (its `updatedAt`) changes
nothing, a removal included (shared.linear.versions). The raw payload is always
kept; applying it runs in a savepoint, so a payload we cannot make sense of leaves the raw row with
`applied_at` unset and is still acknowledged — Linear would otherwise retry it and then disable the
webhook.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import peewee

from shared.clock import now
from shared.linear import cache as linear_cache
from shared.linear import versions
from shared.store.db import database, write_transaction
from shared.store.feed import record_change
from shared.store.models import WebhookDelivery

log = logging.getLogger(__name__)

SOURCE = "linear"
# Deliveries of resource types the cache does not hold are still announced on the feed.
EVENT_TOPIC = "linear.event"


@dataclass(frozen=True)
class Outcome:
    delivery_id: str
    duplicate: bool = False
    applied: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"ok": True, "delivery": self.delivery_id, "duplicate": self.duplicate, "applied": self.applied}


def delivery_id(header: str | None, payload: Any, body: bytes) -> str:
    """`Linear-Delivery`, or else the webhook's id with the body's digest (a retry sends the same bytes)."""
    if header and header.strip():
        return header.strip()[:200]
    webhook_id = payload.get("webhookId") if isinstance(payload, dict) else None
    prefix = webhook_id if isinstance(webhook_id, str) and webhook_id else "unknown-webhook"
    return f"{prefix[:100]}:{hashlib.sha256(body).hexdigest()}"


def receive(delivery: str, payload: Any, team_ids: tuple[str, ...] = (), raw_body: bytes | None = None) -> Outcome:
    """Record the delivery and apply it, unless it (its id, or its exact signed body) was recorded before."""
    body = payload if isinstance(payload, dict) else {"payload": payload}
    with write_transaction():
        # Ignored on either unique key, the id or the body's digest, on SQLite and PostgreSQL alike.
        insert = WebhookDelivery.insert(
            id=delivery, source=SOURCE, resource_type=_short_text(body.get("type")),
            action=_short_text(body.get("action")), payload=body, received_at=now(),
            body_sha256=hashlib.sha256(raw_body).hexdigest() if raw_body is not None else None,
        ).on_conflict_ignore()
        if database.execute(insert).rowcount == 0:
            return Outcome(delivery, duplicate=True)
        try:
            with database.atomic():  # a savepoint: what fails to apply is undone, the raw row stays
                apply_payload(body, team_ids)
        except peewee.OperationalError:
            raise  # the database is busy: answer 503 so Linear delivers again later
        except Exception:
            log.exception("Linear delivery %s (%s %s) stored raw but not applied",
                          delivery, body.get("type"), body.get("action"))
            record_change(EVENT_TOPIC, "unapplied", {"delivery": delivery, "type": _short_text(body.get("type")),
                                                     "action": _short_text(body.get("action"))})
            return Outcome(delivery)
        WebhookDelivery.update(applied_at=now()).where(WebhookDelivery.id == delivery).execute()
    return Outcome(delivery, applied=True)


def apply_payload(payload: Mapping[str, Any], team_ids: tuple[str, ...]) -> None:
    """Route a delivery to its resource type's handler; a type the cache does not hold is announced."""
    resource, action, data = payload.get("type"), payload.get("action"), payload.get("data")
    handler = HANDLERS.get(resource) if isinstance(data, Mapping) else None
    if handler is None or linear_cache.entity_id(data) is None:
        record_change(EVENT_TOPIC, _short_text(action) or "unknown", {
            "type": _short_text(resource), "id": linear_cache.entity_id(data), "url": _short_text(payload.get("url")),
        })
        return
    if action == "remove" and not versions.newest(resource, [data]):
        return  # removed before the cache's newer version of it: that one stands
    handler(action, data, team_ids)


def _issue(action: Any, data: Mapping[str, Any], team_ids: tuple[str, ...]) -> None:
    if action == "remove":
        linear_cache.remove_issues([data["id"]])
    elif _in_teams(linear_cache.issue_row(data)["team_id"], team_ids):
        linear_cache.apply_issues([data])


def _project(action: Any, data: Mapping[str, Any], team_ids: tuple[str, ...]) -> None:
    if action == "remove":
        linear_cache.remove_projects([data["id"]])
        return
    project_teams = linear_cache.project_row(data).get("team_ids")
    if not team_ids or not project_teams or set(project_teams) & set(team_ids):
        linear_cache.apply_projects([data])


def _comment(action: Any, data: Mapping[str, Any], team_ids: tuple[str, ...]) -> None:
    if action == "remove":
        linear_cache.remove_comment(data["id"])
    else:
        linear_cache.apply_comment(data)


def _cycle(action: Any, data: Mapping[str, Any], team_ids: tuple[str, ...]) -> None:
    if action == "remove":
        linear_cache.remove_cycles([data["id"]])
    elif _in_teams(linear_cache.cycle_row(data)["team_id"], team_ids):
        linear_cache.apply_cycles([data])


def _workflow_state(action: Any, data: Mapping[str, Any], team_ids: tuple[str, ...]) -> None:
    if action == "remove":
        linear_cache.remove_states([data["id"]])
    elif _in_teams(linear_cache.state_row(data)["team_id"], team_ids):
        linear_cache.apply_states([data])


def _in_teams(team_id: str | None, team_ids: tuple[str, ...]) -> bool:
    """LINEAR_TEAM_IDS narrows the cache to some teams; an entity of another team is acknowledged only."""
    return not team_ids or team_id is None or team_id in team_ids


def _short_text(value: Any) -> str | None:
    return value[:100] if isinstance(value, str) else None


HANDLERS: dict[str, Callable[[Any, Mapping[str, Any], tuple[str, ...]], None]] = {
    "Issue": _issue,
    "Project": _project,
    "Comment": _comment,
    "Cycle": _cycle,
    "WorkflowState": _workflow_state,
}
