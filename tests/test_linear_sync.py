"""The sync: full and incremental, paged, bulk (no N+1), and honest about failures."""

from __future__ import annotations

import json

import pytest
import responses

from functions.linear_sync.graphql_client import LinearClient, LinearError
from functions.linear_sync.sync import FULL_SYNC_EVERY_S, OVERLAP_S, run_sync
from shared.linear import cache as linear_cache
from shared.store.db import write_transaction
from shared.store.models import Change, LinearIssue, LinearProject, LinearWorkflowState
from tests.fake_linear import FakeLinear
from tests.linear_support import (
    LINEAR_API_KEY,
    LINEAR_URL,
    OTHER_TEAM,
    OTHER_TEAM_STATE,
    STATES,
    TEAM,
    connection,
    iso,
    issue_node,
    project_node,
    state_node,
)

PROJECTS = [project_node("proj-1", "Dashboard v3"), project_node("proj-2", "Sync engine", progress=0.5),
            project_node("proj-3", "Docs", progress=1.0, status_type="completed")]


def linear_world(issue_count: int = 600) -> FakeLinear:
    """Linear with a team's five states, three projects and `issue_count` issues spread over them."""
    issues = [issue_node(f"issue-{n}", number=n, project_id=f"proj-{n % 3 + 1}", state=STATES[n % 5],
                         sort_order=float(n)) for n in range(1, issue_count + 1)]
    states = [state_node(state) for state in STATES]
    return FakeLinear(states=states, projects=[dict(project) for project in PROJECTS], issues=issues,
                      api_key=LINEAR_API_KEY)


class Sleeper:
    def __init__(self):
        self.slept: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)


@pytest.fixture
def sleeper() -> Sleeper:
    return Sleeper()


@pytest.fixture
def client(sleeper) -> LinearClient:
    return LinearClient(LINEAR_URL, LINEAR_API_KEY, sleep=sleeper)


@pytest.fixture
def linear(db):
    fake = linear_world()
    with responses.RequestsMock() as mock:
        mock.add_callback(responses.POST, LINEAR_URL, callback=fake.responses_callback)
        yield fake


def issue_changes() -> list[Change]:
    return list(Change.select().where(Change.topic == "linear.issue").order_by(Change.id))


def test_a_first_sync_is_full_and_pages_every_connection_in_few_requests(linear, client):
    report = run_sync(client)

    assert report.mode == "full"
    # 600 issues at 250 a page: 3 requests, the states and projects riding along in the first.
    assert report.requests == len(linear.requests) == 3
    assert (LinearWorkflowState.select().count(), LinearProject.select().count(), LinearIssue.select().count()) == (
        5, 3, 600)
    assert report.fetched == {"states": 5, "projects": 3, "issues": 600, "cycles": 0}
    assert report.counts["issues"].created == 600
    cursors = [request["variables"]["issuesAfter"] for request in linear.requests]
    assert cursors == [None, "issue-250", "issue-500"]
    assert "workflowStates" not in linear.requests[1]["query"]  # finished connections are not asked again


def test_synced_rows_carry_what_the_board_needs(linear, client):
    run_sync(client)
    issue = LinearIssue.get_by_id("issue-7")
    assert (issue.project_id, issue.team_id, issue.state_id, issue.state_name, issue.state_type) == (
        "proj-2", "team-eng", "state-progress", "In Progress", "started")
    assert (issue.assignee_name, issue.label_names, issue.sort_order, issue.priority) == (
        "Ada Lovelace", ["bug"], 7.0, 2)
    project = LinearProject.get_by_id("proj-3")
    assert (project.name, project.progress, project.state, project.status_name) == ("Docs", 1.0, "completed",
                                                                                    "Completed")
    assert (project.team_id, project.team_name, project.team_ids) == ("team-eng", "Engineering", ["team-eng"])


def test_every_synced_issue_is_announced_on_the_feed_once(linear, client):
    run_sync(client)
    assert len(issue_changes()) == 600
    run_sync(client, full=True)
    assert len(issue_changes()) == 600  # nothing changed, nothing announced
    sync_changes = Change.select().where(Change.topic == "linear.sync")
    assert [change.action for change in sync_changes] == ["completed", "completed"]


def test_an_idle_incremental_tick_costs_one_request_and_writes_nothing(linear, client):
    run_sync(client)
    before = Change.select().count()
    linear.requests.clear()

    report = run_sync(client)
    assert report.mode == "incremental"
    assert report.requests == 1
    assert Change.select().count() == before + 1  # only the sync's own "completed"
    variables = linear.requests[0]["variables"]
    assert variables["issuesFilter"] == {"updatedAt": {"gt": variables["issuesFilter"]["updatedAt"]["gt"]}}
    assert variables["issuesIncludeArchived"] is True and variables["issuesFirst"] == 50


def test_the_incremental_watermark_is_the_last_sync_start_less_the_overlap(linear, client, db):
    run_sync(client)
    started = linear_cache.sync_state()["last_success_at"]
    linear.requests.clear()
    run_sync(client)
    assert linear.requests[0]["variables"]["projectsFilter"]["updatedAt"]["gt"] == iso(started - OVERLAP_S)


def test_an_incremental_tick_brings_changes_and_refreshes_their_projects_progress(linear, client):
    run_sync(client)
    linear.requests.clear()
    changed = linear.data["issues"][0]
    changed.update(title="Renamed in Linear", updatedAt="2099-01-01T00:00:00.000Z",
                   state={key: STATES[3][key] for key in ("id", "name", "type", "color")})
    linear.data["projects"][1]["progress"] = 0.75  # proj-2: issue-1's project

    report = run_sync(client)
    assert report.requests == 2
    issue = LinearIssue.get_by_id("issue-1")
    assert (issue.title, issue.state_name) == ("Renamed in Linear", "Done")
    assert LinearProject.get_by_id("proj-2").progress == 0.75
    assert linear.requests[1]["variables"]["projectsFilter"] == {"id": {"in": ["proj-2"]}}
    assert issue_changes()[-1].payload["title"] == "Renamed in Linear"


def test_an_issue_archived_in_linear_leaves_the_cache_on_the_next_tick(linear, client):
    run_sync(client)
    linear.data["issues"][4].update(archivedAt="2099-01-01T00:00:00.000Z", updatedAt="2099-01-01T00:00:00.000Z")
    report = run_sync(client)
    assert report.counts["issues"].removed == 1
    assert LinearIssue.get_or_none(LinearIssue.id == "issue-5") is None


def test_a_full_sync_removes_what_linear_no_longer_lists(linear, client, db):
    run_sync(client)
    LinearProject.update(prod_url="https://docs.example").where(LinearProject.id == "proj-3").execute()
    deleted = linear.data["issues"].pop(0)  # issue-1 deleted
    linear.data["issues"][0]["project"] = None  # issue-2 moved out of its project
    linear.data["projects"] = [p for p in linear.data["projects"] if p["id"] != "proj-1"]
    linear.data["issues"] = [i for i in linear.data["issues"] if (i["project"] or {}).get("id") != "proj-1"]

    report = run_sync(client, full=True)
    assert LinearIssue.get_or_none(LinearIssue.id == deleted["id"]) is None
    assert LinearIssue.get_or_none(LinearIssue.id == "issue-2") is None
    assert LinearProject.get_or_none(LinearProject.id == "proj-1") is None
    assert LinearIssue.select().where(LinearIssue.project_id == "proj-1").count() == 0
    assert LinearProject.get_by_id("proj-3").prod_url == "https://docs.example"  # the dashboard's own field stays
    assert report.counts["projects"].removed == 1
    assert LinearIssue.select().count() == len(linear.data["issues"]) - 1  # issue-2 is listed, in no project


def test_a_row_a_webhook_wrote_during_a_full_sync_is_not_removed(linear, client, db):
    fresh = issue_node("issue-webhook", project_id="proj-1")
    original = linear.answer

    def webhook_lands_mid_sync(body, authorization=None):
        if len(linear.requests) == 1:
            with write_transaction():
                linear_cache.apply_issues([fresh])
        return original(body, authorization)

    linear.answer = webhook_lands_mid_sync
    run_sync(client)
    assert LinearIssue.get_or_none(LinearIssue.id == "issue-webhook") is not None


def test_the_last_full_sync_a_day_old_makes_the_next_run_full(linear, client, db):
    run_sync(client)
    state = linear_cache.sync_state()
    with write_transaction():
        linear_cache.save_sync_state(state | {"last_full_at": state["last_full_at"] - FULL_SYNC_EVERY_S})
    assert run_sync(client).mode == "full"


def test_team_ids_narrow_every_connection(db, client):
    fake = linear_world(10)
    fake.data["workflowStates"].append(state_node(OTHER_TEAM_STATE, OTHER_TEAM))
    fake.data["issues"].append(issue_node("issue-ops", team=OTHER_TEAM, state=OTHER_TEAM_STATE))
    with responses.RequestsMock() as mock:
        mock.add_callback(responses.POST, LINEAR_URL, callback=fake.responses_callback)
        run_sync(client, team_ids=(TEAM["id"],))
    variables = fake.requests[0]["variables"]
    assert variables["issuesFilter"] == {"project": {"null": False}, "team": {"id": {"in": ["team-eng"]}}}
    assert variables["projectsFilter"] == {"accessibleTeams": {"some": {"id": {"in": ["team-eng"]}}}}
    assert LinearIssue.get_or_none(LinearIssue.id == "issue-ops") is None
    assert LinearWorkflowState.get_or_none(LinearWorkflowState.id == OTHER_TEAM_STATE["id"]) is None


def test_an_issue_whose_project_is_not_listed_gets_a_stub_project(db, client):
    fake = FakeLinear(issues=[issue_node("issue-x", project_id="proj-archived", project_name="Old project")])
    with responses.RequestsMock() as mock:
        mock.add_callback(responses.POST, LINEAR_URL, callback=fake.responses_callback)
        run_sync(client)
    assert LinearProject.get_by_id("proj-archived").name == "Old project"
    assert LinearIssue.get_by_id("issue-x").project_id == "proj-archived"


def test_literal_linear_pages_are_followed_by_their_end_cursor(db, client):
    first = [issue_node(f"issue-a{n}", number=100 + n) for n in range(3)]
    second = [issue_node(f"issue-b{n}", number=200 + n) for n in range(2)]
    with responses.RequestsMock() as mock:
        mock.post(LINEAR_URL, json={"data": {
            "workflowStates": connection([state_node(state) for state in STATES]),
            "projects": connection([PROJECTS[0]]),
            "issues": connection(first, has_next_page=True, end_cursor="Y3Vyc29yOjE="),
        }})
        mock.post(LINEAR_URL, json={"data": {"issues": connection(second)}})
        report = run_sync(client)
        follow_up = json.loads(mock.calls[1].request.body)
    assert follow_up["variables"]["issuesAfter"] == "Y3Vyc29yOjE="
    assert set(follow_up["variables"]) == {"issuesFirst", "issuesAfter", "issuesFilter", "issuesIncludeArchived"}
    assert report.requests == 2 and LinearIssue.select().count() == 5


def test_a_ratelimited_page_is_waited_out_and_the_sync_completes(db, client, sleeper):
    fake = linear_world(300)
    calls = {"count": 0}

    def limited_once(request):
        calls["count"] += 1
        if calls["count"] == 2:
            return 400, {"X-RateLimit-Requests-Remaining": "0", "Retry-After": "12"}, json.dumps({"errors": [
                {"message": "Rate limit exceeded", "extensions": {"code": "RATELIMITED"}}]})
        return fake.responses_callback(request)

    with responses.RequestsMock() as mock:
        mock.add_callback(responses.POST, LINEAR_URL, callback=limited_once)
        report = run_sync(client)
    assert sleeper.slept == [12.0]
    assert report.requests == 3 and LinearIssue.select().count() == 300


def test_a_500_then_success_is_retried_and_the_sync_completes(db, client, sleeper):
    fake = linear_world(10)
    with responses.RequestsMock() as mock:
        mock.post(LINEAR_URL, status=500, body="upstream error")
        mock.add_callback(responses.POST, LINEAR_URL, callback=fake.responses_callback)
        report = run_sync(client)
    assert sleeper.slept == [1.0]
    assert report.requests == 2 and LinearIssue.select().count() == 10


def test_a_graphql_error_fails_the_sync_keeps_written_pages_and_records_the_error(db, client):
    fake = linear_world(300)
    calls = {"count": 0}

    def error_on_second_page(request):
        calls["count"] += 1
        if calls["count"] == 2:
            return 200, {}, json.dumps({"data": None, "errors": [
                {"message": "Query too complex", "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}]})
        return fake.responses_callback(request)

    with responses.RequestsMock() as mock:
        mock.add_callback(responses.POST, LINEAR_URL, callback=error_on_second_page)
        with pytest.raises(LinearError, match="Query too complex"):
            run_sync(client)
    assert LinearIssue.select().count() == 250  # the first page stays
    state = linear_cache.sync_state()
    assert state["last_error"] == "Query too complex" and "last_success_at" not in state
    assert Change.select().where(Change.topic == "linear.sync").get().action == "failed"


def test_after_a_failed_first_sync_the_next_run_is_full_again(db, client):
    with responses.RequestsMock() as mock:
        mock.post(LINEAR_URL, status=400, json={"errors": [{"message": "Authentication required, not authenticated",
                                                            "extensions": {"code": "AUTHENTICATION_ERROR"}}]})
        with pytest.raises(LinearError):
            run_sync(client)
    fake = linear_world(5)
    with responses.RequestsMock() as mock:
        mock.add_callback(responses.POST, LINEAR_URL, callback=fake.responses_callback)
        assert run_sync(client).mode == "full"
