"""CRUD for alert rules at /api/alert-rules (the seed's `alert_rules`; defaults seeded by migration 5)."""

from __future__ import annotations

import re
from typing import Any

import falcon

from shared.agents.alerts import CHANNELS, PRIORITY_FILTERS, TRIGGERS
from shared.store.db import write_transaction
from shared.store.feed import record_change
from shared.store.models import AlertRule
from shared.web.errors import ApiError, invalid
from shared.web.json_body import read_json

TOPIC = "alert_rule"
RULE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAX_DELAY_MS = 7 * 24 * 3600 * 1000
EDITABLE = ("trigger", "priority_filter", "delay_ms", "channel", "enabled")


def rule_json(rule: AlertRule) -> dict[str, Any]:
    body = rule.to_json()
    body["enabled"] = bool(body["enabled"])
    body["priority_filter"] = body["priority_filter"] or "all"
    return body


def rule_or_404(rule_id: str) -> AlertRule:
    rule = AlertRule.get_or_none(AlertRule.id == rule_id)
    if rule is None:
        raise ApiError(404, "not_found", f"No alert rule {rule_id!r}.")
    return rule


def parse_rule(body: Any, *, partial: bool) -> dict[str, Any]:
    """The rule's fields from a request body; 422 naming the first wrong field."""
    if not isinstance(body, dict):
        raise invalid("body", "Send a JSON object with trigger, channel and optionally priority_filter, delay_ms, "
                              "enabled.")
    allowed = EDITABLE if partial else ("id", *EDITABLE)
    for name in body:
        if name not in allowed:
            raise invalid(name, f"{name} is not an alert rule field you can set; use {', '.join(allowed)}.")
    fields: dict[str, Any] = {}
    for name, choices in (("trigger", TRIGGERS), ("channel", CHANNELS)):
        if name in body or not partial:
            if body.get(name) not in choices:
                raise invalid(name, f"{name} must be one of {', '.join(choices)}.")
            fields[name] = body[name]
    if "priority_filter" in body:
        if body["priority_filter"] is not None and body["priority_filter"] not in PRIORITY_FILTERS:
            raise invalid("priority_filter", f"priority_filter must be one of {', '.join(PRIORITY_FILTERS)}.")
        fields["priority_filter"] = body["priority_filter"] or "all"
    if "delay_ms" in body:
        delay = body["delay_ms"]
        if not isinstance(delay, int) or isinstance(delay, bool) or not 0 <= delay <= MAX_DELAY_MS:
            raise invalid("delay_ms", f"delay_ms must be a whole number of milliseconds from 0 to {MAX_DELAY_MS}.")
        fields["delay_ms"] = delay
    if "enabled" in body:
        if not isinstance(body["enabled"], bool):
            raise invalid("enabled", "enabled must be true or false.")
        fields["enabled"] = int(body["enabled"])
    if not partial:
        rule_id = body.get("id")
        if not isinstance(rule_id, str) or not RULE_ID.match(rule_id):
            raise invalid("id", "id is required: 1 to 64 lowercase letters, digits, '-' or '_' (e.g. blocked-urgent).")
        fields["id"] = rule_id
    return fields


class AlertRulesResource:
    """GET/POST /api/alert-rules; GET/PATCH/DELETE /api/alert-rules/{id}."""

    def __init__(self, max_body_bytes: int):
        self.max_body_bytes = max_body_bytes

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"alert_rules": [rule_json(rule) for rule in AlertRule.select().order_by(AlertRule.id)]}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        fields = parse_rule(read_json(req, self.max_body_bytes), partial=False)
        with write_transaction():
            if AlertRule.get_or_none(AlertRule.id == fields["id"]) is not None:
                raise ApiError(409, "conflict", f"An alert rule {fields['id']!r} exists already.", field="id")
            AlertRule.insert(**{"priority_filter": "all", "delay_ms": 0, "enabled": 1, **fields}).execute()
            body = rule_json(AlertRule.get_by_id(fields["id"]))
            record_change(TOPIC, "created", body)
        resp.media = {"alert_rule": body}
        resp.status = falcon.HTTP_201

    def on_get_item(self, req: falcon.Request, resp: falcon.Response, rule_id: str) -> None:
        resp.media = {"alert_rule": rule_json(rule_or_404(rule_id))}

    def on_patch_item(self, req: falcon.Request, resp: falcon.Response, rule_id: str) -> None:
        fields = parse_rule(read_json(req, self.max_body_bytes), partial=True)
        with write_transaction():
            rule_or_404(rule_id)
            if fields:
                AlertRule.update(**fields).where(AlertRule.id == rule_id).execute()
            body = rule_json(AlertRule.get_by_id(rule_id))
            if fields:
                record_change(TOPIC, "updated", body)
        resp.media = {"alert_rule": body}

    def on_delete_item(self, req: falcon.Request, resp: falcon.Response, rule_id: str) -> None:
        with write_transaction():
            rule_or_404(rule_id)
            AlertRule.delete().where(AlertRule.id == rule_id).execute()
            record_change(TOPIC, "deleted", {"id": rule_id})
        resp.status = falcon.HTTP_204
