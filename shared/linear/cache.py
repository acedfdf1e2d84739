"""The local cache of Linear: Linear's payloads turned into rows, written with their change-feed entries.

The webhook (`data` of a delivery) and the sync (GraphQL nodes) describe the same entities in two
shapes: a webhook issue carries `stateId` beside `state {...}` and `labels` as a list, a GraphQL issue
only `state {...}` and `labels {nodes}`. Both go through the functions here, so an issue looks the
same whichever way it arrived, and a write that changes nothing records no change.

Every `apply_*` / `remove_*` function must run inside `shared.store.db.write_transaction()`: the rows and
their changes (topics `linear.issue`, `linear.project`, `linear.state`, `linear.cycle`,
`linear.comment`) commit together.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import peewee

from shared.clock import now, unix_from_iso
from shared.linear import versions
from shared.store.feed import record_change
from shared.store.models import (
    AgentTask,
    LinearCycle,
    LinearIssue,
    LinearProject,
    LinearWorkflowState,
    Message,
    Setting,
)

ISSUE_TOPIC = "linear.issue"
PROJECT_TOPIC = "linear.project"
STATE_TOPIC = "linear.state"
CYCLE_TOPIC = "linear.cycle"
COMMENT_TOPIC = "linear.comment"

# Linear's priority scale (upside down in the original dashboard: 1 is the most urgent, 0 is unset).
PRIORITY_LABELS = {0: "none", 1: "urgent", 2: "high", 3: "medium", 4: "low"}

COMMENT_MESSAGE_TYPE = "linear_comment"

# Well under SQLite's bound-variable limit, so `id IN (...)` never fails on a big page.
_ID_CHUNK = 500

ISSUE_COLUMNS = (
    "project_id", "identifier", "title", "description", "priority", "state_id", "state_name", "state_type",
    "team_id", "assignee_id", "assignee_name", "assignee_avatar", "label_names", "estimate", "url",
    "cycle_id", "sort_order", "created_at", "updated_at",
)


@dataclass
class WriteCounts:
    """What one apply/remove call did to the cache."""

    created: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0

    def add(self, other: WriteCounts) -> None:
        self.created += other.created
        self.updated += other.updated
        self.removed += other.removed
        self.unchanged += other.unchanged

    @property
    def written(self) -> int:
        return self.created + self.updated + self.removed


# Reading Linear's payloads defensively: a field may be missing or of another type; never crash. ----------

def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _integer(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _time(value: Any) -> int | None:
    """Linear's DateTime (`2026-11-24T10:00:00.000Z`) as Unix seconds; None when absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        return unix_from_iso(value)
    except (ValueError, OverflowError):
        return None


def _nodes(value: Any) -> list[Mapping[str, Any]]:
    """A webhook's plain list or a GraphQL connection's `nodes`, as a list of objects."""
    items = value.get("nodes") if isinstance(value, Mapping) else value
    return [item for item in items if isinstance(item, Mapping)] if isinstance(items, list) else []


def _ref(data: Mapping[str, Any], name: str) -> str | None:
    """The id of a related entity: `<name>Id` (webhooks) or `<name> {id}` (both)."""
    return _text(data.get(f"{name}Id")) or _text(_object(data.get(name)).get("id"))


def entity_id(data: Any) -> str | None:
    return _text(data.get("id")) if isinstance(data, Mapping) else None


# Rows from payloads -------------------------------------------------------------------------------------

def issue_row(data: Mapping[str, Any]) -> dict[str, Any]:
    """The linear_issues columns for an issue payload (webhook `data` or GraphQL node). Linear sends the
    whole issue either way, so a missing field means "none", not "unchanged"."""
    state = _object(data.get("state"))
    assignee = _object(data.get("assignee"))
    labels = [name for name in (_text(label.get("name")) for label in _nodes(data.get("labels"))) if name]
    return {
        "id": entity_id(data),
        "project_id": _ref(data, "project"),
        "identifier": _text(data.get("identifier")),
        "title": _text(data.get("title")) or "",
        "description": _text(data.get("description")),
        "priority": _integer(data.get("priority")),
        "state_id": _ref(data, "state"),
        "state_name": _text(state.get("name")),
        "state_type": _text(state.get("type")),
        "team_id": _ref(data, "team"),
        "assignee_id": _ref(data, "assignee"),
        "assignee_name": _text(assignee.get("name")) or _text(assignee.get("displayName")),
        "assignee_avatar": _text(assignee.get("avatarUrl")),
        "label_names": sorted(labels),
        "estimate": _integer(data.get("estimate")),
        "url": _text(data.get("url")),
        "cycle_id": _ref(data, "cycle"),
        "sort_order": _number(data.get("sortOrder")),
        "created_at": _time(data.get("createdAt")),
        "updated_at": _time(data.get("updatedAt")),
    }


def project_row(data: Mapping[str, Any]) -> dict[str, Any]:
    """The linear_projects columns a project payload tells us. Only what it carries: a webhook's
    Project has no `progress`, so the cached progress stays until the sync brings a new one."""
    row: dict[str, Any] = {"id": entity_id(data)}
    if "name" in data:
        row["name"] = _text(data.get("name")) or ""
    for column, key in (("description", "description"), ("url", "url"), ("start_date", "startDate"),
                        ("target_date", "targetDate")):
        if key in data:
            row[column] = _text(data.get(key))
    if "updatedAt" in data:
        row["updated_at"] = _time(data.get("updatedAt"))
    status = _object(data.get("status"))
    if status:
        row["state"] = _text(status.get("type"))
        row["status_name"] = _text(status.get("name"))
    elif isinstance(data.get("state"), str):  # the deprecated field, if that is all a payload has
        row["state"] = data["state"]
    progress = _number(data.get("progress"))
    if progress is not None:
        row["progress"] = progress
    teams = _nodes(data.get("teams"))
    team_ids = [team_id for team_id in (_text(team.get("id")) for team in teams) if team_id]
    if not team_ids and isinstance(data.get("teamIds"), list):
        team_ids = [team_id for team_id in data["teamIds"] if isinstance(team_id, str)]
    if team_ids or "teams" in data or "teamIds" in data:
        row["team_ids"] = team_ids
        row["team_id"] = team_ids[0] if team_ids else None
        first_team = next((team for team in teams if team.get("id") == row["team_id"]), {})
        row["team_name"] = _text(first_team.get("name"))
    return row


def state_row(data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": entity_id(data),
        "team_id": _ref(data, "team") or "",
        "name": _text(data.get("name")) or "",
        "type": _text(data.get("type")) or "",
        "color": _text(data.get("color")),
        "position": _number(data.get("position")),
    }


CYCLE_COLUMNS = ("team_id", "number", "name", "starts_at", "ends_at", "completed_at", "progress", "updated_at")


def cycle_row(data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": entity_id(data),
        "team_id": _ref(data, "team"),
        "number": _integer(data.get("number")),
        "name": _text(data.get("name")),
        "starts_at": _time(data.get("startsAt")),
        "ends_at": _time(data.get("endsAt")),
        "completed_at": _time(data.get("completedAt")),
        "progress": _number(data.get("progress")),
        "updated_at": _time(data.get("updatedAt")),
    }


# JSON views (the API's and the change feed's) -------------------------------------------------------------

def issue_json(issue: LinearIssue) -> dict[str, Any]:
    body = issue.to_json()
    body["priority_label"] = PRIORITY_LABELS.get(issue.priority) if issue.priority is not None else None
    return body


def project_json(project: LinearProject) -> dict[str, Any]:
    return project.to_json()


def state_json(state: LinearWorkflowState) -> dict[str, Any]:
    return state.to_json()


# Writes ---------------------------------------------------------------------------------------------------

def _newest(kind: str, payloads: Iterable[Mapping[str, Any]], counts: WriteCounts) -> list[Mapping[str, Any]]:
    """The payloads newer than what the cache holds of their entities (shared.linear.versions); the
    others leave the cache as it is, and are counted so."""
    given = [payload for payload in payloads if isinstance(payload, Mapping)]
    kept = versions.newest(kind, given)
    counts.unchanged += len(given) - len(kept)
    return kept


def _chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(ids), _ID_CHUNK):
        yield ids[start:start + _ID_CHUNK]


def _existing(model: type[peewee.Model], ids: Sequence[str]) -> dict[str, peewee.Model]:
    found: dict[str, peewee.Model] = {}
    for chunk in _chunks(ids):
        found.update((row.id, row) for row in model.select().where(model.id.in_(list(chunk))))
    return found


def _differs(existing: peewee.Model | None, row: Mapping[str, Any]) -> bool:
    return existing is None or any(getattr(existing, column) != value for column, value in row.items())


def _upsert(model: type[peewee.Model], rows: list[dict[str, Any]], columns: Iterable[str]) -> None:
    """Insert `rows`, or overwrite `columns` of the rows that exist; other columns (prod_url,
    agent_task_id) are the dashboard's own and stay."""
    if rows:
        preserve = [model._meta.fields[column] for column in columns]
        model.insert_many(rows).on_conflict(conflict_target=[model.id], preserve=preserve).execute()


def apply_issues(payloads: Iterable[Mapping[str, Any]]) -> WriteCounts:
    """Upsert issue payloads. An issue in no project is not on any board: it is removed from the cache
    (that is how an issue moved out of a project leaves it)."""
    counts = WriteCounts()
    payloads = _newest(versions.ISSUE, payloads, counts)
    rows = [row for row in (issue_row(payload) for payload in payloads) if row["id"]]
    rows = list({row["id"]: row for row in rows}.values())  # the last word on an id wins
    counts.add(remove_issues([row["id"] for row in rows if not row["project_id"]]))
    rows = [row for row in rows if row["project_id"]]
    if not rows:
        return counts
    _fill_state_names(rows)
    _ensure_projects({row["project_id"] for row in rows}, _project_names(payloads))
    existing = _existing(LinearIssue, [row["id"] for row in rows])
    changed = [row for row in rows if _differs(existing.get(row["id"]), row)]
    counts.unchanged += len(rows) - len(changed)
    if not changed:
        return counts
    synced_at = now()
    _upsert(LinearIssue, [row | {"synced_at": synced_at} for row in changed], (*ISSUE_COLUMNS, "synced_at"))
    _link_tasks([row["id"] for row in changed if row["id"] not in existing])
    saved = _existing(LinearIssue, [row["id"] for row in changed])
    for row in changed:
        created = row["id"] not in existing
        counts.created += created
        counts.updated += not created
        record_change(ISSUE_TOPIC, "created" if created else "updated", issue_json(saved[row["id"]]))
    return counts


def _link_tasks(issue_ids: Sequence[str]) -> None:
    """A task may name an issue before the issue reaches the cache: link new rows to the newest such task."""
    newest_task = (AgentTask.select(AgentTask.id).where(AgentTask.linear_issue_id == LinearIssue.id)
                   .order_by(AgentTask.created_at.desc(), AgentTask.id.desc()).limit(1))
    for chunk in _chunks(list(issue_ids)):
        LinearIssue.update(agent_task_id=newest_task).where(LinearIssue.id.in_(list(chunk))).execute()


def link_task(issue_id: str, task_id: str) -> None:
    """A task names this issue: the card shows the agent working on it (and the board hears of it)."""
    if LinearIssue.update(agent_task_id=task_id).where(
            (LinearIssue.id == issue_id)
            & ((LinearIssue.agent_task_id.is_null()) | (LinearIssue.agent_task_id != task_id))).execute():
        record_change(ISSUE_TOPIC, "updated", issue_json(LinearIssue.get_by_id(issue_id)))


def _fill_state_names(rows: list[dict[str, Any]]) -> None:
    # A payload may name its state only by id; the cached workflow state supplies the column's name.
    missing = list({row["state_id"] for row in rows if row["state_id"] and not row["state_name"]})
    if not missing:
        return
    states = _existing(LinearWorkflowState, missing)
    for row in rows:
        state = states.get(row["state_id"]) if not row["state_name"] else None
        if state is not None:
            row["state_name"], row["state_type"] = state.name, state.type


def _project_names(payloads: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    projects = (_object(payload.get("project")) for payload in payloads if isinstance(payload, Mapping))
    return {project["id"]: _text(project.get("name")) or "" for project in projects if _text(project.get("id"))}


def _ensure_projects(project_ids: set[str], names: Mapping[str, str]) -> None:
    # linear_issues.project_id references linear_projects: an issue can arrive (by webhook, or on a
    # page before its project's page) before its project does, so a stub row stands in until then.
    known = set(_existing(LinearProject, list(project_ids)))
    stubs = [{"id": project_id, "name": names.get(project_id, ""), "synced_at": now()}
             for project_id in project_ids - known]
    if stubs:
        LinearProject.insert_many(stubs).on_conflict_ignore().execute()


def remove_issues(ids: Iterable[str]) -> WriteCounts:
    ids = list(dict.fromkeys(ids))
    counts = WriteCounts()
    if not ids:
        return counts
    existing = _existing(LinearIssue, ids)
    for chunk in _chunks(list(existing)):
        LinearIssue.delete().where(LinearIssue.id.in_(list(chunk))).execute()
    for issue in existing.values():
        record_change(ISSUE_TOPIC, "removed", {"id": issue.id, "identifier": issue.identifier,
                                               "project_id": issue.project_id})
    counts.removed = len(existing)
    return counts


def apply_projects(payloads: Iterable[Mapping[str, Any]]) -> WriteCounts:
    counts = WriteCounts()
    rows = [row for row in (project_row(payload) for payload in _newest(versions.PROJECT, payloads, counts))
            if row["id"]]
    existing = _existing(LinearProject, [row["id"] for row in rows])
    for row in rows:
        old = existing.get(row["id"])
        if not _differs(old, row):
            counts.unchanged += 1
            continue
        columns = [column for column in row if column != "id"]
        insert = {"name": "", **row, "synced_at": now()}
        _upsert(LinearProject, [insert], (*columns, "synced_at"))
        counts.created += old is None
        counts.updated += old is not None
        saved = LinearProject.get_by_id(row["id"])
        record_change(PROJECT_TOPIC, "created" if old is None else "updated", project_json(saved))
    return counts


def remove_projects(ids: Iterable[str]) -> WriteCounts:
    """Remove projects and, first, their issues (which reference them)."""
    ids = list(dict.fromkeys(ids))
    counts = WriteCounts()
    existing = _existing(LinearProject, ids)
    if not existing:
        return counts
    issue_ids = [issue.id for issue in LinearIssue.select(LinearIssue.id)
                 .where(LinearIssue.project_id.in_(list(existing)))]
    counts.add(remove_issues(issue_ids))
    LinearProject.delete().where(LinearProject.id.in_(list(existing))).execute()
    for project in existing.values():
        record_change(PROJECT_TOPIC, "removed", {"id": project.id, "name": project.name})
    counts.removed += len(existing)
    return counts


def apply_states(payloads: Iterable[Mapping[str, Any]]) -> WriteCounts:
    counts = WriteCounts()
    rows = [state_row(payload) for payload in _newest(versions.STATE, payloads, counts)]
    rows = [row for row in rows if row["id"] and row["team_id"]]
    existing = _existing(LinearWorkflowState, [row["id"] for row in rows])
    changed = [row for row in rows if _differs(existing.get(row["id"]), row)]
    counts.unchanged += len(rows) - len(changed)
    _upsert(LinearWorkflowState, changed, ("team_id", "name", "type", "color", "position"))
    for row in changed:
        created = row["id"] not in existing
        counts.created += created
        counts.updated += not created
        record_change(STATE_TOPIC, "created" if created else "updated", state_json(LinearWorkflowState(**row)))
    return counts


def remove_states(ids: Iterable[str]) -> WriteCounts:
    existing = _existing(LinearWorkflowState, list(dict.fromkeys(ids)))
    for chunk in _chunks(list(existing)):
        LinearWorkflowState.delete().where(LinearWorkflowState.id.in_(list(chunk))).execute()
    for state in existing.values():
        record_change(STATE_TOPIC, "removed", {"id": state.id, "team_id": state.team_id})
    return WriteCounts(removed=len(existing))


def apply_cycles(payloads: Iterable[Mapping[str, Any]]) -> WriteCounts:
    counts = WriteCounts()
    rows = [cycle_row(payload) for payload in _newest(versions.CYCLE, payloads, counts)]
    rows = [row for row in rows if row["id"]]
    existing = _existing(LinearCycle, [row["id"] for row in rows])
    changed = [row for row in rows if _differs(existing.get(row["id"]), row)]
    counts.unchanged += len(rows) - len(changed)
    synced_at = now()
    _upsert(LinearCycle, [row | {"synced_at": synced_at} for row in changed],
            (*CYCLE_COLUMNS, "synced_at"))
    for row in changed:
        created = row["id"] not in existing
        counts.created += created
        counts.updated += not created
        record_change(CYCLE_TOPIC, "created" if created else "updated",
                      LinearCycle(**row, synced_at=synced_at).to_json())
    return counts


def remove_cycles(ids: Iterable[str]) -> WriteCounts:
    existing = _existing(LinearCycle, list(dict.fromkeys(ids)))
    for chunk in _chunks(list(existing)):
        LinearCycle.delete().where(LinearCycle.id.in_(list(chunk))).execute()
    for cycle in existing.values():
        record_change(CYCLE_TOPIC, "removed", {"id": cycle.id, "team_id": cycle.team_id})
    return WriteCounts(removed=len(existing))


def comment_external_id(comment_id: str) -> str:
    return f"linear:comment:{comment_id}"


def apply_comment(data: Mapping[str, Any]) -> WriteCounts:
    """A Linear comment becomes a message of type `linear_comment` in the dashboard's message list."""
    comment_id = entity_id(data)
    if not comment_id:
        return WriteCounts()
    if not versions.newest(versions.COMMENT, [data]):
        return WriteCounts(unchanged=1)  # an older edit than the one shown
    issue = _object(data.get("issue"))
    user = _object(data.get("user"))
    external_id = comment_external_id(comment_id)
    created_at = _time(data.get("createdAt")) or now()
    part = {
        "type": COMMENT_MESSAGE_TYPE, "id": comment_id, "issue_id": _ref(data, "issue"),
        "issue_identifier": _text(issue.get("identifier")), "issue_title": _text(issue.get("title")),
        "url": _text(data.get("url")), "user": {"id": _ref(data, "user"), "name": _text(user.get("name"))},
    }
    fields = {"content": _text(data.get("body")) or "", "agent": part["user"]["name"], "parts": [part],
              "updated_at": _time(data.get("updatedAt")) or created_at}
    old = Message.get_or_none(Message.external_id == external_id)
    if old is not None and all(getattr(old, key) == value for key, value in fields.items()):
        return WriteCounts(unchanged=1)
    Message.insert(type=COMMENT_MESSAGE_TYPE, external_id=external_id, role="user", created_at=created_at,
                   **fields).on_conflict(conflict_target=[Message.external_id],
                                         preserve=[Message.content, Message.agent, Message.parts,
                                                   Message.updated_at]).execute()
    message = Message.get(Message.external_id == external_id)
    record_change(COMMENT_TOPIC, "created" if old is None else "updated", message.to_json())
    return WriteCounts(created=int(old is None), updated=int(old is not None))


def remove_comment(comment_id: str) -> WriteCounts:
    external_id = comment_external_id(comment_id)
    removed = Message.delete().where(Message.external_id == external_id).execute()
    if removed:
        record_change(COMMENT_TOPIC, "removed", {"external_id": external_id})
    return WriteCounts(removed=removed)


# Sync bookkeeping (a settings row) ---------------------------------------------------------------------------

SYNC_STATE_KEY = "linear_sync"


def sync_state() -> dict[str, Any]:
    """What the last syncs left: `last_full_at`, `last_success_at` (Unix seconds, each run's start),
    `last_error`, `last_result`. Empty before the first sync."""
    row = Setting.get_or_none(Setting.key == SYNC_STATE_KEY)
    if row is None or not row.value:
        return {}
    try:
        state = json.loads(row.value)
    except ValueError:
        return {}
    return state if isinstance(state, dict) else {}


def save_sync_state(state: Mapping[str, Any]) -> None:
    Setting.put(SYNC_STATE_KEY, json.dumps(dict(state), separators=(",", ":")))
