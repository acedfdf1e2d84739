"""The registry of event kinds: every kind declares its rules, its projection and its OpenAPI schema, and
the three agree — what the rules accept is what the document describes and what the projection applies."""

from __future__ import annotations

from pathlib import Path

import jsonschema_rs
import pytest

from deploy import health, mount, openapi
from functions.events.kinds import KINDS, Kind
from functions.events.rules import Rule
from shared.store.models import InboundEvent
from tests.event_kinds import kind_data, prerequisites
from tests.support import AGENT, assert_canonical_error, event


@pytest.fixture(scope="module")
def document():
    return openapi.compose(openapi.part_of(module) for module in (health, openapi, *mount.FUNCTIONS))


def validator(document, kind: str):
    return jsonschema_rs.validator_for({"$ref": f"#/components/schemas/Event.{kind}",
                                        "components": document["components"]})


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_declares_rules_a_projection_and_a_schema(kind, document):
    entry = KINDS[kind]
    assert isinstance(entry, Kind)
    assert entry.rules and all(isinstance(rule, Rule) for rule in entry.rules)
    assert callable(entry.project)
    assert document["components"]["schemas"][f"Event.{kind}"]["properties"]["data"] == entry.schema


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_smallest_event_the_rules_allow_is_documented_and_applied(kind, document, events_client):
    before = [event(name, kind_data(name)) for name in prerequisites(kind)]
    sent = event(kind, kind_data(kind))
    assert validator(document, kind).is_valid(sent)
    response = events_client.simulate_post("/api/events", json={"events": [*before, sent]}, headers=AGENT)
    assert response.status_code == 202, response.text
    assert (response.json["accepted"], response.json["unknown"]) == (len(before) + 1, 0)
    stored = InboundEvent.get_or_none(InboundEvent.id == sent["id"])
    assert stored.known if KINDS[kind].stored else stored is None


def required_paths(kind: str) -> list[str]:
    return [rule.path for rule in KINDS[kind].rules if rule.required]


@pytest.mark.parametrize("kind, path", [(kind, path) for kind in sorted(KINDS) for path in required_paths(kind)])
def test_a_required_field_missing_is_refused_by_ingest_and_by_the_schema(kind, path, document, events_client):
    data = kind_data(kind)
    *parents, last = path.split(".")
    node = data
    for parent in parents:
        node = node[parent]
    del node[last]
    sent = event(kind, data)
    assert not validator(document, kind).is_valid(sent)
    response = events_client.simulate_post("/api/events", json={"events": [sent]}, headers=AGENT)
    assert_canonical_error(response, 422, "unprocessable", f"events[0].data.{path}")
    assert InboundEvent.select().count() == 0


def test_every_kind_is_described_in_the_ingest_contract():
    contract = (Path(__file__).parent.parent / "docs" / "events.md").read_text()
    assert [kind for kind in KINDS if f"`{kind}`" not in contract] == []
