"""Ingest answers an event's fields with a compiled validator (jsonschema-rs) and explains a refusal with the
rules' own check (`rules.Fields`): the validator must never accept what the rules refuse. For every kind's
every rule, values that break it (or that only look like they might), sent through HTTP: the answer is the
rules' own: 422, naming the same field."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from functions.events.contract import fields_of
from functions.events.kinds import KINDS
from functions.events.rules import Rule, check_rules
from shared.web.errors import ApiError
from tests.event_kinds import kind_data
from tests.support import AGENT, event

OTHER_VALUES = (None, 1, 1.5, True, "", "x", "é" * 129, "tool:x", "linear:x", [], [1], {}, {"a": 1})


def broken(data: dict[str, Any], rule: Rule) -> Iterator[dict[str, Any]]:
    """`data` with the rule's field (and each object on its path) set to every other kind of value, and
    with the field gone."""
    for depth in range(len(rule.steps)):
        for value in (*OTHER_VALUES, ...):
            changed = copy.deepcopy(data)
            node = changed
            for step in rule.steps[:depth]:
                node = node.setdefault(step, {}) if isinstance(node.get(step), dict) else None
                if node is None:
                    break
            if node is None:
                continue
            if value is ...:
                node.pop(rule.steps[depth], None)
            else:
                node[rule.steps[depth]] = value
            yield changed
    if rule.items is not None:
        for item_rule in rule.items:
            for item in broken(kind_item(rule), item_rule):
                changed = copy.deepcopy(data)
                parent = changed
                for step in rule.steps[:-1]:
                    parent = parent.setdefault(step, {})
                parent[rule.steps[-1]] = [item]
                yield changed


def kind_item(rule: Rule) -> dict[str, Any]:
    from tests.event_kinds import minimal_data

    return minimal_data(rule.items)


def cases() -> Iterator[tuple[str, dict[str, Any]]]:
    for kind in KINDS:
        data = kind_data(kind)
        for rule in fields_of(kind).rules:
            for changed in broken(data, rule):
                yield kind, changed
    for kind in ("session.unheard.of", "lsp.unheard.of"):
        for rule in fields_of(kind).rules:
            for changed in broken({}, rule):
                yield kind, changed


def rules_answer(kind: str, data: dict[str, Any]) -> str | None:
    """The field the rules name, or None when they accept the data."""
    try:
        check_rules(data, fields_of(kind).rules, "data.")
    except ApiError as error:
        return error.field
    return None


@pytest.mark.parametrize("kind", [*KINDS, "session.unheard.of", "lsp.unheard.of"])
def test_what_the_rules_refuse_is_refused_naming_their_field(kind, events_client):
    refused = 0
    for case_kind, data in cases():
        if case_kind != kind or (field := rules_answer(kind, data)) is None:
            continue
        refused += 1
        response = events_client.simulate_post("/api/events", json=event(kind, data), headers=AGENT)
        assert response.status_code == 422, (data, response.text)
        assert response.json["error"]["field"] == field, (data, response.json)
    assert refused
