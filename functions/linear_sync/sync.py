"""The sync: Linear's workflow states, projects, issues and cycles pulled into the local cache over GraphQL.

- **Full** (`--full`, the first run, or when the last full sync is a day old): every state, project and
  in-project issue, paged 250 at a time with every unfinished connection in the same request; then
  whatever the cache holds that Linear no longer listed (deleted, archived, moved out of a project) is
  removed.
- **Incremental** (otherwise): only what changed since the last successful sync (`updatedAt` greater
  than its start, less a minute of overlap for clock skew and late commits), archived items included
  so that they can leave the cache. An idle tick is one request; when issues changed, one more
  re-reads their projects' `progress`, which Linear does not send in webhooks.

Each page is written in its own transaction (rows and their changes together), so a failed sync
keeps what it had written and the next run resumes from the last successful watermark.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from functions.linear_sync.graphql_client import LinearClient, LinearError
from functions.linear_sync.queries import (
    CYCLES,
    ISSUES,
    PAGE_SIZE,
    PROJECTS,
    STATES,
    PageCursor,
    connections_query,
    page_of,
    team_filter,
)
from shared.clock import iso_from_unix
from shared.linear import cache as linear_cache
from shared.linear.cache import WriteCounts
from shared.store.db import write_transaction
from shared.store.feed import record_change
from shared.store.models import LinearCycle, LinearIssue, LinearProject, LinearWorkflowState

log = logging.getLogger(__name__)

FULL_SYNC_EVERY_S = 24 * 60 * 60
# Re-read what changed in the minute before the last sync began: covers clock skew between this
# machine and Linear and writes that committed late. Unchanged rows cost nothing to re-read.
OVERLAP_S = 60
# Most ticks find nothing: ask for small first pages (cheaper in Linear's complexity budget), then
# full pages if there is more.
INCREMENTAL_FIRST_PAGE = 50
SYNC_TOPIC = "linear.sync"


@dataclass
class SyncReport:
    """What one sync did: its mode, the requests it cost and the rows it wrote."""

    mode: str
    started_at: int
    requests: int = 0
    seconds: float = 0.0
    counts: dict[str, WriteCounts] = field(
        default_factory=lambda: {name: WriteCounts() for name in ("states", "projects", "issues", "cycles")})
    fetched: dict[str, int] = field(default_factory=lambda: {"states": 0, "projects": 0, "issues": 0, "cycles": 0})

    def summary(self) -> str:
        issues, projects, states = self.counts["issues"], self.counts["projects"], self.counts["states"]
        requests = f"{self.requests} request" + ("" if self.requests == 1 else "s")
        return (f"linear sync ({self.mode}): {requests}, {self.fetched['issues']} issues read "
                f"({issues.created} new, {issues.updated} updated, {issues.removed} removed), "
                f"{self.fetched['projects']} projects ({projects.written} written), "
                f"{self.fetched['states']} states ({states.written} written), "
                f"{self.fetched['cycles']} cycles ({self.counts['cycles'].written} written) in {self.seconds:.1f} s")

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "started_at": iso_from_unix(self.started_at), "requests": self.requests,
                "seconds": round(self.seconds, 3), "fetched": dict(self.fetched),
                "written": {name: vars(counts) for name, counts in self.counts.items()}}


def choose_mode(state: dict[str, Any], now: int, force_full: bool) -> str:
    last_full = state.get("last_full_at")
    if force_full or not isinstance(last_full, int) or not isinstance(state.get("last_success_at"), int):
        return "full"
    return "full" if now - last_full >= FULL_SYNC_EVERY_S else "incremental"


def run_sync(client: LinearClient, *, full: bool = False, team_ids: Sequence[str] = (),
             clock: Callable[[], float] = time.time) -> SyncReport:
    """Sync once; record the outcome in the settings table (and on the feed). Raises LinearError."""
    started = time.monotonic()
    state = linear_cache.sync_state()
    now = int(clock())
    report = SyncReport(mode=choose_mode(state, now, full), started_at=now)
    requests_before = client.requests_made
    try:
        if report.mode == "full":
            _full_sync(client, report, team_ids)
        else:
            _incremental_sync(client, report, team_ids, since=state["last_success_at"] - OVERLAP_S)
    except LinearError as error:
        report.requests = client.requests_made - requests_before
        _record_failure(state, report, error)
        raise
    report.requests = client.requests_made - requests_before
    report.seconds = time.monotonic() - started
    _record_success(state, report)
    return report


def _full_sync(client: LinearClient, report: SyncReport, team_ids: Sequence[str]) -> None:
    cursors = [
        PageCursor(STATES, team_filter(STATES.field, team_ids)),
        PageCursor(PROJECTS, team_filter(PROJECTS.field, team_ids)),
        # Only issues in a project are on a board.
        PageCursor(ISSUES, {"project": {"null": False}} | team_filter(ISSUES.field, team_ids)),
        PageCursor(CYCLES, team_filter(CYCLES.field, team_ids)),
    ]
    cached = _cached_ids()
    seen = _read_pages(client, cursors, report)
    with write_transaction():
        _remove_unlisted(cached, seen, report)


def _incremental_sync(client: LinearClient, report: SyncReport, team_ids: Sequence[str], since: int) -> None:
    changed = {"updatedAt": {"gt": _linear_time(since)}}
    cursors = [
        PageCursor(connection, changed | team_filter(connection.field, team_ids), include_archived=True,
                   first=INCREMENTAL_FIRST_PAGE)
        for connection in (STATES, PROJECTS, ISSUES, CYCLES)
    ]
    seen = _read_pages(client, cursors, report)
    # Progress moves when issues do, but a project's updatedAt does not: re-read the touched projects.
    touched = sorted(_projects_of(seen[ISSUES.field]) - seen[PROJECTS.field])
    for start in range(0, len(touched), PAGE_SIZE):
        chunk = touched[start:start + PAGE_SIZE]
        _read_pages(client, [PageCursor(PROJECTS, {"id": {"in": chunk}}, first=len(chunk))], report)


def _read_pages(client: LinearClient, cursors: list[PageCursor], report: SyncReport) -> dict[str, set[str]]:
    """Read every page of every connection, writing each response as it comes; the ids seen."""
    seen: dict[str, set[str]] = {cursor.connection.field: set() for cursor in cursors}
    pending = list(cursors)
    while pending:
        query, variables = connections_query(pending)
        data = client.execute(query, variables)
        following: list[PageCursor] = []
        pages: dict[str, list[dict[str, Any]]] = {}
        for cursor in pending:
            nodes, has_next, end_cursor = page_of(data, cursor.connection)
            pages[cursor.connection.field] = nodes
            seen[cursor.connection.field].update(node["id"] for node in nodes if isinstance(node.get("id"), str))
            if has_next:
                cursor.after, cursor.first = end_cursor, PAGE_SIZE
                following.append(cursor)
        _write_page(pages, report)
        pending = following
    return seen


def _write_page(pages: dict[str, list[dict[str, Any]]], report: SyncReport) -> None:
    # States and projects first: the issues of the same response refer to them.
    with write_transaction():
        for connection, name, apply, remove in (
            (STATES, "states", linear_cache.apply_states, linear_cache.remove_states),
            (PROJECTS, "projects", linear_cache.apply_projects, linear_cache.remove_projects),
            (ISSUES, "issues", linear_cache.apply_issues, linear_cache.remove_issues),
            (CYCLES, "cycles", linear_cache.apply_cycles, linear_cache.remove_cycles),
        ):
            nodes = pages.get(connection.field, [])
            report.fetched[name] += len(nodes)
            live = [node for node in nodes if not node.get("archivedAt")]
            archived = [node["id"] for node in nodes if node.get("archivedAt") and isinstance(node.get("id"), str)]
            report.counts[name].add(apply(live))
            report.counts[name].add(remove(archived))


def _cached_ids() -> dict[str, set[str]]:
    return {
        ISSUES.field: {row.id for row in LinearIssue.select(LinearIssue.id)},
        PROJECTS.field: {row.id for row in LinearProject.select(LinearProject.id)},
        STATES.field: {row.id for row in LinearWorkflowState.select(LinearWorkflowState.id)},
        CYCLES.field: {row.id for row in LinearCycle.select(LinearCycle.id)},
    }


def _remove_unlisted(cached: dict[str, set[str]], seen: dict[str, set[str]], report: SyncReport) -> None:
    """After a full read: drop what was cached before it began and Linear no longer lists. A row that
    arrived meanwhile (a webhook during the sync) is not in `cached`, so it stays; so does a project
    that still has issues."""
    report.counts["issues"].add(linear_cache.remove_issues(sorted(cached[ISSUES.field] - seen[ISSUES.field])))
    in_use = {row.project_id for row in LinearIssue.select(LinearIssue.project_id).distinct()}
    unlisted = cached[PROJECTS.field] - seen[PROJECTS.field] - in_use
    report.counts["projects"].add(linear_cache.remove_projects(sorted(unlisted)))
    report.counts["states"].add(linear_cache.remove_states(sorted(cached[STATES.field] - seen[STATES.field])))
    report.counts["cycles"].add(linear_cache.remove_cycles(sorted(cached[CYCLES.field] - seen[CYCLES.field])))


def _projects_of(issue_ids: set[str]) -> set[str]:
    projects: set[str] = set()
    ids = sorted(issue_ids)
    for start in range(0, len(ids), 500):
        query = LinearIssue.select(LinearIssue.project_id).where(LinearIssue.id.in_(ids[start:start + 500]))
        projects.update(issue.project_id for issue in query if issue.project_id)
    return projects


def _linear_time(unix: int) -> str:
    return iso_from_unix(unix).replace("Z", ".000Z")


def _record_success(state: dict[str, Any], report: SyncReport) -> None:
    updated = state | {"last_success_at": report.started_at, "last_error": None, "last_error_at": None,
                       "last_result": report.to_json()}
    if report.mode == "full":
        updated["last_full_at"] = report.started_at
    with write_transaction():
        linear_cache.save_sync_state(updated)
        record_change(SYNC_TOPIC, "completed", report.to_json())


def _record_failure(state: dict[str, Any], report: SyncReport, error: LinearError) -> None:
    log.warning("linear sync (%s) failed: %s", report.mode, error)
    updated = state | {"last_error": error.message, "last_error_at": int(time.time())}
    with write_transaction():
        linear_cache.save_sync_state(updated)
        record_change(SYNC_TOPIC, "failed", {"mode": report.mode, "error": error.message})
