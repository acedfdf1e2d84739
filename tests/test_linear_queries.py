"""Every document the dashboard sends to Linear is valid against Linear's real schema.

The schema is the full GraphQL schema from Linear's public SDK repository (github.com/linear/linear), copied into
tests/linear_schema.graphql; replace that file with a newer copy to check the queries against Linear as it is now.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.linear_sync.queries import (
    ISSUE_UPDATE_STATE,
    ISSUES,
    PROJECTS,
    STATES,
    PageCursor,
    connections_query,
    team_filter,
)

graphql = pytest.importorskip("graphql")

SCHEMA_PATH = Path(__file__).resolve().parent / "linear_schema.graphql"


@pytest.fixture(scope="module")
def schema():
    return graphql.build_schema(SCHEMA_PATH.read_text())


def assert_valid(schema, document: str, variables: dict) -> None:
    parsed = graphql.parse(document)
    assert graphql.validate(schema, parsed) == []
    (operation,) = parsed.definitions
    coerced = graphql.execution.values.get_variable_values(schema, operation.variable_definitions, variables)
    assert not isinstance(coerced, list), coerced  # a list is the coercion errors


TEAMS = ("team-eng", "team-ops")
SINCE = {"updatedAt": {"gt": "2026-11-24T10:00:00.000Z"}}


@pytest.mark.parametrize("cursors", [
    pytest.param([PageCursor(STATES, {}), PageCursor(PROJECTS, {}), PageCursor(ISSUES, {"project": {"null": False}})],
                 id="full sync, first request"),
    pytest.param([PageCursor(connection, team_filter(connection.field, TEAMS)) for connection in (STATES, PROJECTS)]
                 + [PageCursor(ISSUES, {"project": {"null": False}} | team_filter(ISSUES.field, TEAMS))],
                 id="full sync narrowed to teams"),
    pytest.param([PageCursor(ISSUES, {"project": {"null": False}}, after="issue-250")], id="a following page"),
    pytest.param([PageCursor(connection, SINCE | team_filter(connection.field, TEAMS), include_archived=True,
                             first=50) for connection in (STATES, PROJECTS, ISSUES)], id="incremental tick"),
    pytest.param([PageCursor(PROJECTS, {"id": {"in": ["proj-1", "proj-2"]}}, first=2)], id="progress refresh"),
])
def test_sync_queries_are_valid_against_linears_schema(schema, cursors):
    assert_valid(schema, *connections_query(cursors))


def test_the_card_move_mutation_is_valid_against_linears_schema(schema):
    assert_valid(schema, ISSUE_UPDATE_STATE, {"id": "issue-1", "stateId": "state-done"})


def test_the_sync_asks_for_linears_maximum_page_size():
    _, variables = connections_query([PageCursor(ISSUES, {})])
    assert variables["issuesFirst"] == 250
