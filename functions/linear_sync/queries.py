"""The GraphQL documents the sync and the card move send, in Linear's own field and argument names.

The sync reads four connections (workflow states, projects, issues, cycles). Rather than one query per
connection per page, `connections_query` puts every connection that still has a page to fetch into
one document, so a full sync of 10 000 issues costs ~40 requests and an idle incremental tick one.
Each connection's arguments are variables prefixed with its field name (`$issuesFirst`,
`$issuesAfter`, `$issuesFilter`, `$issuesIncludeArchived`).

Complexity: Linear caps one query at 10 000 points (0.1 per field, 1 per object, times `first` for a
connection). At 250 per page an issue node costs ~19 points (~4 750 a page), a project ~9, a state and a
cycle ~3 each: all four in one document stay near 8 250. `labels(first: 10)` keeps the nested connection cheap.
tests/test_linear_queries.py checks every document against Linear's schema.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PAGE_SIZE = 250  # Linear's maximum page size

ISSUE_FIELDS = """
      id identifier number title description priority estimate sortOrder url createdAt updatedAt archivedAt
      state { id name type color }
      team { id }
      project { id name }
      assignee { id name avatarUrl }
      cycle { id }
      labels(first: 10) { nodes { id name color } }"""

PROJECT_FIELDS = """
      id name description url progress startDate targetDate updatedAt archivedAt
      status { id name type color }
      teams(first: 5) { nodes { id key name } }"""

STATE_FIELDS = """
      id name type color position updatedAt archivedAt
      team { id }"""

CYCLE_FIELDS = """
      id number name startsAt endsAt completedAt progress updatedAt archivedAt
      team { id }"""


@dataclass(frozen=True)
class Connection:
    """A root connection of Linear's Query type and how we read its nodes."""

    field: str
    filter_type: str
    fields: str


STATES = Connection("workflowStates", "WorkflowStateFilter", STATE_FIELDS)
PROJECTS = Connection("projects", "ProjectFilter", PROJECT_FIELDS)
ISSUES = Connection("issues", "IssueFilter", ISSUE_FIELDS)
CYCLES = Connection("cycles", "CycleFilter", CYCLE_FIELDS)


@dataclass
class PageCursor:
    """Where one connection's reading stands: its filter and the cursor of the next page."""

    connection: Connection
    filter: dict[str, Any]
    include_archived: bool = False
    first: int = PAGE_SIZE
    after: str | None = None


def connections_query(cursors: Sequence[PageCursor]) -> tuple[str, dict[str, Any]]:
    """One document reading the next page of each connection in `cursors`, and its variables."""
    declarations: list[str] = []
    selections: list[str] = []
    variables: dict[str, Any] = {}
    for cursor in cursors:
        name, connection = cursor.connection.field, cursor.connection
        declarations += [f"${name}First: Int!", f"${name}After: String", f"${name}Filter: {connection.filter_type}",
                         f"${name}IncludeArchived: Boolean"]
        selections.append(
            f"  {name}(first: ${name}First, after: ${name}After, filter: ${name}Filter, "
            f"includeArchived: ${name}IncludeArchived) {{\n"
            f"    nodes {{{connection.fields}\n    }}\n"
            f"    pageInfo {{ hasNextPage endCursor }}\n  }}"
        )
        variables |= {f"{name}First": cursor.first, f"{name}After": cursor.after, f"{name}Filter": cursor.filter,
                      f"{name}IncludeArchived": cursor.include_archived}
    document = f"query LinearSync({', '.join(declarations)}) {{\n" + "\n".join(selections) + "\n}"
    return document, variables


ISSUE_UPDATE_STATE = f"""mutation LinearMoveIssue($id: String!, $stateId: String!) {{
  issueUpdate(id: $id, input: {{stateId: $stateId}}) {{
    success
    issue {{{ISSUE_FIELDS}
    }}
  }}
}}"""


def team_filter(field: str, team_ids: Sequence[str]) -> dict[str, Any]:
    """The filter narrowing a connection to LINEAR_TEAM_IDS (empty: no narrowing)."""
    if not team_ids:
        return {}
    ids = {"id": {"in": list(team_ids)}}
    # A project can belong to several teams: keep it when any of them is ours.
    return {"accessibleTeams": {"some": ids}} if field == PROJECTS.field else {"team": ids}


def page_of(data: Mapping[str, Any], connection: Connection) -> tuple[list[dict[str, Any]], bool, str | None]:
    """The nodes of a connection in a response, whether another page follows, and its cursor."""
    page = data.get(connection.field)
    if not isinstance(page, Mapping):
        return [], False, None
    nodes = [node for node in page.get("nodes") or [] if isinstance(node, dict)]
    info = page.get("pageInfo") if isinstance(page.get("pageInfo"), Mapping) else {}
    end_cursor = info.get("endCursor") if isinstance(info.get("endCursor"), str) else None
    return nodes, bool(info.get("hasNextPage")) and end_cursor is not None, end_cursor
