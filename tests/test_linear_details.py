"""Linear's details on the dashboard: cycles (synced and listed), the agent working on a card, and which
board moved last."""

from __future__ import annotations

import pytest
import responses
from falcon import testing

import functions.linear_sync
from functions.linear_sync.graphql_client import LinearClient
from functions.linear_sync.sync import run_sync
from shared.store.models import Change
from tests.fake_linear import FakeLinear
from tests.linear_support import (
    LINEAR_API_KEY,
    LINEAR_URL,
    OTHER_TEAM,
    STATES,
    TEAM,
    issue_node,
    project_node,
    state_node,
)
from tests.support import AGENT, DASHBOARD, event


def cycle_node(cycle_id: str, number: int, *, team: dict = TEAM, starts_at: str = "2026-11-17T00:00:00.000Z",
               progress: float = 0.4, updated_at: str = "2026-11-24T10:00:00.000Z", archived: bool = False) -> dict:
    """A cycle as Linear's GraphQL API answers it (the fields the sync asks for)."""
    return {"id": cycle_id, "number": number, "name": f"Cycle {number}", "startsAt": starts_at,
            "endsAt": "2026-12-01T00:00:00.000Z", "completedAt": None, "progress": progress,
            "updatedAt": updated_at, "archivedAt": "2026-11-25T00:00:00.000Z" if archived else None,
            "team": {"id": team["id"]}}


@pytest.fixture
def linear(db):
    fake = FakeLinear(
        states=[state_node(state) for state in STATES],
        projects=[project_node("proj-1", "Dashboard v3", updated_at="2026-11-20T10:00:00.000Z"),
                  project_node("proj-2", "Sync engine", updated_at="2026-11-10T10:00:00.000Z")],
        issues=[issue_node("issue-1", number=1, updated_at="2026-11-12T10:00:00.000Z"),
                issue_node("issue-2", number=2, project_id="proj-2", project_name="Sync engine",
                           updated_at="2026-11-28T10:00:00.000Z")],
        cycles=[cycle_node("cycle-7", 7), cycle_node("cycle-8", 8, starts_at="2026-12-01T00:00:00.000Z"),
                cycle_node("cycle-ops", 3, team=OTHER_TEAM)],
        api_key=LINEAR_API_KEY)
    with responses.RequestsMock() as mock:
        mock.add_callback(responses.POST, LINEAR_URL, callback=fake.responses_callback)
        yield fake


@pytest.fixture
def sync(linear):
    client = LinearClient(LINEAR_URL, LINEAR_API_KEY, sleep=lambda seconds: None)
    return lambda **options: run_sync(client, **options)


@pytest.fixture
def routes(settings, db) -> testing.TestClient:
    return testing.TestClient(functions.linear_sync.create_app(settings.with_overrides(linear_api_key=LINEAR_API_KEY)),
                              headers=DASHBOARD)


def test_the_sync_brings_cycles_and_the_route_lists_them_newest_first_with_their_issues(sync, routes):
    report = sync()

    assert report.fetched["cycles"] == 3 and report.counts["cycles"].created == 3
    cycles = routes.simulate_get("/api/linear/cycles").json["cycles"]
    assert [cycle["id"] for cycle in cycles] == ["cycle-8", "cycle-7", "cycle-ops"]
    seven = cycles[1]
    assert seven["name"] == "Cycle 7" and seven["number"] == 7 and seven["team_id"] == TEAM["id"]
    assert seven["starts_at"] == "2026-11-17T00:00:00Z" and seven["progress"] == 0.4
    assert seven["issue_count"] == 2  # both cached issues are in cycle-7 (issue_node's default)
    assert cycles[0]["issue_count"] == 0
    only_ops = routes.simulate_get("/api/linear/cycles", params={"team_id": OTHER_TEAM["id"]}).json["cycles"]
    assert [cycle["id"] for cycle in only_ops] == ["cycle-ops"]
    assert Change.select().where(Change.topic == "linear.cycle").count() == 3


def test_a_changed_cycle_is_updated_by_the_next_sync_and_a_cycle_gone_from_linear_leaves(linear, sync, routes):
    sync()
    linear.data["cycles"][0] = cycle_node("cycle-7", 7, progress=0.9, updated_at="2099-01-01T00:00:00.000Z")
    report = sync()
    assert report.mode == "incremental" and report.counts["cycles"].updated == 1
    assert routes.simulate_get("/api/linear/cycles").json["cycles"][1]["progress"] == 0.9

    linear.data["cycles"] = [cycle for cycle in linear.data["cycles"] if cycle["id"] != "cycle-ops"]
    sync(full=True)
    assert [cycle["id"] for cycle in routes.simulate_get("/api/linear/cycles").json["cycles"]] == ["cycle-8", "cycle-7"]
    assert Change.select().where((Change.topic == "linear.cycle") & (Change.action == "removed")).count() == 1


def test_an_archived_cycle_leaves_the_cache_on_an_incremental_sync(linear, sync, routes):
    sync()
    linear.data["cycles"][1] = cycle_node("cycle-8", 8, archived=True, updated_at="2099-01-01T00:00:00.000Z")
    sync()
    assert "cycle-8" not in [cycle["id"] for cycle in routes.simulate_get("/api/linear/cycles").json["cycles"]]


def test_a_task_naming_an_issue_puts_its_agent_on_the_card(sync, routes, events_client):
    sync()
    response = events_client.simulate_post("/api/events", headers=AGENT, json={"events": [
        event("agent.registered", {"id": "builder", "name": "Builder", "type": "primary"}, agent_id="builder"),
        event("task.created", {"id": "t-1", "agent_id": "builder", "title": "Fix the board",
                               "linear_issue_id": "issue-1"}, agent_id="builder")]})
    assert response.status_code == 202, response.text

    cards = [card for column in routes.simulate_get("/api/projects/proj-1/board").json["columns"]
             for card in column["issues"]]
    assert cards[0]["agent_task_id"] == "t-1"
    assert cards[0]["agent"] == {"id": "builder", "name": "Builder", "status": "idle", "task_status": "pending"}
    announced = Change.select().where((Change.topic == "linear.issue") & (Change.action == "updated")).order_by(
        Change.id.desc()).first()
    assert announced.payload["id"] == "issue-1" and announced.payload["agent_task_id"] == "t-1"


def test_an_issue_that_reaches_the_cache_after_its_task_is_linked_to_it(linear, sync, routes, events_client):
    events_client.simulate_post("/api/events", headers=AGENT, json={"events": [
        event("task.created", {"id": "t-early", "agent_id": "builder", "title": "Ahead of the sync",
                               "linear_issue_id": "issue-1"}, agent_id="builder")]})
    sync()
    cards = [card for column in routes.simulate_get("/api/projects/proj-1/board").json["columns"]
             for card in column["issues"]]
    assert cards[0]["agent_task_id"] == "t-early" and cards[0]["agent"]["id"] == "builder"


def test_projects_say_when_they_last_moved_so_the_page_can_open_the_busiest(sync, routes):
    sync()
    projects = {project["id"]: project for project in routes.simulate_get("/api/projects").json["projects"]}
    # proj-1: its own update (20 Nov) is newer than its issue's; proj-2: its issue moved on 28 Nov.
    assert projects["proj-1"]["last_activity_at"] == "2026-11-20T10:00:00Z"
    assert projects["proj-2"]["last_activity_at"] == "2026-11-28T10:00:00Z"
    assert routes.simulate_get("/api/projects/proj-2").json["project"]["last_activity_at"] == "2026-11-28T10:00:00Z"
