"""The Linear routes: projects, the board, workflow states, the card move and the sync trigger."""

from __future__ import annotations

import json

import pytest
import responses
from falcon import testing

import functions.linear_sync
from functions.linear_sync.lock import sync_lock
from shared.linear import cache as linear_cache
from shared.store.db import write_transaction
from shared.store.models import Change, LinearIssue, LinearProject
from tests.fake_linear import FakeLinear
from tests.linear_support import (
    LINEAR_API_KEY,
    LINEAR_URL,
    OTHER_TEAM,
    OTHER_TEAM_STATE,
    STATES,
    issue_node,
    project_node,
    state_node,
)
from tests.support import DASHBOARD, assert_canonical_error

LINEAR_ROUTES = [
    ("GET", "/api/projects", None), ("GET", "/api/projects/proj-1", None),
    ("PATCH", "/api/projects/proj-1", {"prod_url": "https://x.example"}), ("GET", "/api/projects/proj-1/board", None),
    ("GET", "/api/linear/states", None), ("GET", "/api/linear/sync", None),
    ("POST", "/api/linear/sync", {"issue_id": "issue-1", "state_id": "state-done"}),
    ("POST", "/api/linear/sync", {"full": True}),
]


@pytest.fixture
def linear_settings(settings):
    return settings.with_overrides(linear_api_key=LINEAR_API_KEY)


@pytest.fixture
def client(linear_settings, db) -> testing.TestClient:
    return testing.TestClient(functions.linear_sync.create_app(linear_settings), headers=DASHBOARD)


@pytest.fixture
def cached(db):
    """A cache as a sync leaves it: two projects, a team's states (and another team's), issues."""
    issues = [
        issue_node("issue-1", number=1, state=STATES[1], sort_order=20.0, title="Second in Todo"),
        issue_node("issue-2", number=2, state=STATES[1], sort_order=10.0, title="First in Todo"),
        issue_node("issue-3", number=3, state=STATES[2], sort_order=5.0),
        issue_node("issue-4", number=4, state=STATES[3], project_id="proj-2", project_name="Sync engine"),
    ]
    with write_transaction():
        linear_cache.apply_states([state_node(state) for state in STATES]
                                  + [state_node(OTHER_TEAM_STATE, OTHER_TEAM)])
        linear_cache.apply_projects([project_node("proj-1", "Dashboard v3", progress=0.25),
                                     project_node("proj-2", "Sync engine", progress=0.5)])
        linear_cache.apply_issues(issues)
    return issues


@pytest.mark.parametrize(("method", "path", "body"), LINEAR_ROUTES)
def test_without_a_linear_key_every_linear_route_is_503(settings, db, method, path, body):
    client = testing.TestClient(functions.linear_sync.create_app(settings), headers=DASHBOARD)
    response = client.simulate_request(method, path, json=body)
    error = assert_canonical_error(response, 503, "linear_not_configured")
    assert "LINEAR_API_KEY" in error["message"]


@pytest.mark.parametrize(("method", "path", "body"), LINEAR_ROUTES)
def test_every_linear_route_needs_the_dashboard_token(linear_settings, db, method, path, body):
    client = testing.TestClient(functions.linear_sync.create_app(linear_settings))
    assert_canonical_error(client.simulate_request(method, path, json=body), 401, "unauthorized")


def test_projects_are_listed_with_progress_state_dates_team_and_issue_counts(client, cached):
    response = client.simulate_get("/api/projects")
    assert response.status_code == 200
    projects = response.json["projects"]
    assert [p["name"] for p in projects] == ["Dashboard v3", "Sync engine"]
    first = projects[0]
    assert {key: first[key] for key in ("id", "progress", "state", "status_name", "start_date", "target_date",
                                        "team_id", "team_name", "prod_url", "issue_count")} == {
        "id": "proj-1", "progress": 0.25, "state": "started", "status_name": "Started", "start_date": "2026-11-01",
        "target_date": "2026-12-15", "team_id": "team-eng", "team_name": "Engineering", "prod_url": None,
        "issue_count": 3}
    assert first["updated_at"] == "2026-11-20T10:00:00Z"
    assert response.json["next_cursor"] is None


def test_a_project_state_linear_does_not_have_is_a_400(client, cached):
    response = client.simulate_get("/api/projects", params={"state": "started,begun"})
    assert "'begun'" in assert_canonical_error(response, 400, "invalid_parameter", field="state")["message"]


def test_projects_page_by_name(client, cached):
    page = client.simulate_get("/api/projects", params={"limit": 1}).json
    assert [p["id"] for p in page["projects"]] == ["proj-1"]
    rest = client.simulate_get("/api/projects", params={"limit": 1, "cursor": page["next_cursor"]}).json
    assert [p["id"] for p in rest["projects"]] == ["proj-2"] and rest["next_cursor"] is None


def test_an_unknown_project_is_404(client, cached):
    assert_canonical_error(client.simulate_get("/api/projects/nope"), 404, "not_found")
    assert_canonical_error(client.simulate_get("/api/projects/nope/board"), 404, "not_found")
    assert_canonical_error(client.simulate_patch("/api/projects/nope", json={"prod_url": None}), 404, "not_found")


def test_patching_prod_url_stores_it_and_announces_the_project(client, cached):
    response = client.simulate_patch("/api/projects/proj-1", json={"prod_url": "https://dash.example.com"})
    assert response.status_code == 200
    assert response.json["project"]["prod_url"] == "https://dash.example.com"
    assert LinearProject.get_by_id("proj-1").prod_url == "https://dash.example.com"
    change = Change.select().where(Change.topic == "linear.project").order_by(Change.id.desc()).get()
    assert (change.action, change.payload["prod_url"]) == ("updated", "https://dash.example.com")

    cleared = client.simulate_patch("/api/projects/proj-1", json={"prod_url": None})
    assert cleared.json["project"]["prod_url"] is None


@pytest.mark.parametrize(("body", "field"), [
    ({"prod_url": "javascript:alert(1)"}, "prod_url"),
    ({"prod_url": "not a url"}, "prod_url"),
    ({"prod_url": 42}, "prod_url"),
    ({"prod_url": "https://" + "x" * 2100}, "prod_url"),
    ({"name": "Renamed"}, "body"),
    ({"prod_url": "https://ok.example", "progress": 1}, "body"),
    ([], "body"),
])
def test_a_bad_patch_is_422_naming_the_field_and_changes_nothing(client, cached, body, field):
    before = Change.select().count()
    response = client.simulate_patch("/api/projects/proj-1", json=body)
    assert_canonical_error(response, 422, "unprocessable", field=field)
    assert LinearProject.get_by_id("proj-1").prod_url is None and Change.select().count() == before


def test_the_board_groups_issues_into_the_teams_columns_in_position_order(client, cached):
    response = client.simulate_get("/api/projects/proj-1/board")
    assert response.status_code == 200
    board = response.json
    assert board["project"]["id"] == "proj-1"
    assert [column["state"]["name"] for column in board["columns"]] == [
        "Backlog", "Todo", "In Progress", "Done", "Canceled"]
    todo = board["columns"][1]
    assert [issue["id"] for issue in todo["issues"]] == ["issue-2", "issue-1"]  # Linear's sortOrder
    assert todo["issues"][0]["priority_label"] == "high"
    assert [issue["id"] for issue in board["columns"][2]["issues"]] == ["issue-3"]
    assert all(column["issues"] == [] for column in board["columns"][3:])


def test_an_issue_in_a_state_not_cached_still_shows_in_its_own_column(client, cached, db):
    LinearIssue.update(state_id="state-review", state_name="In Review", state_type="started") \
        .where(LinearIssue.id == "issue-3").execute()
    columns = client.simulate_get("/api/projects/proj-1/board").json["columns"]
    assert columns[-1]["state"]["name"] == "In Review"
    assert [issue["id"] for issue in columns[-1]["issues"]] == ["issue-3"]


def test_states_are_listed_per_team_in_position_order(client, cached):
    states = client.simulate_get("/api/linear/states", params={"team_id": "team-eng"}).json["states"]
    assert [state["name"] for state in states] == ["Backlog", "Todo", "In Progress", "Done", "Canceled"]
    assert {state["team_id"] for state in states} == {"team-eng"}
    everything = client.simulate_get("/api/linear/states").json["states"]
    assert len(everything) == 6


@pytest.fixture
def linear(cached):
    fake = FakeLinear(states=[state_node(state) for state in STATES], issues=[dict(i) for i in cached],
                      api_key=LINEAR_API_KEY)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.POST, LINEAR_URL, callback=fake.responses_callback)
        yield fake


def test_a_card_move_sends_issue_update_and_updates_the_cache(client, linear):
    response = client.simulate_post("/api/linear/sync", json={"issue_id": "issue-1", "state_id": "state-done"})

    assert response.status_code == 200
    assert (response.json["issue"]["state_id"], response.json["issue"]["state_name"]) == ("state-done", "Done")
    (sent,) = linear.requests
    assert "issueUpdate(id: $id, input: {stateId: $stateId})" in sent["query"]
    assert sent["variables"] == {"id": "issue-1", "stateId": "state-done"}
    assert LinearIssue.get_by_id("issue-1").state_type == "completed"
    change = Change.select().where(Change.topic == "linear.issue").order_by(Change.id.desc()).get()
    assert (change.action, change.payload["id"], change.payload["state_name"]) == ("updated", "issue-1", "Done")


def test_a_move_to_a_state_of_another_team_is_422_and_linear_is_not_asked(client, linear):
    response = client.simulate_post("/api/linear/sync", json={"issue_id": "issue-1",
                                                               "state_id": OTHER_TEAM_STATE["id"]})
    error = assert_canonical_error(response, 422, "unprocessable", field="state_id")
    assert "team-ops" in error["message"]
    assert linear.requests == []


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"issue_id": "issue-404", "state_id": "state-done"}, 404, "issue_id"),
    ({"issue_id": "issue-1", "state_id": "state-404"}, 422, "state_id"),
    ({"issue_id": "issue-1"}, 422, "state_id"),
    ({"issue_id": 7, "state_id": "state-done"}, 422, "issue_id"),
    ({"full": "yes"}, 422, "full"),
    ({}, 422, "full"),
    (["issue-1"], 422, "body"),
])
def test_a_bad_sync_request_names_what_is_wrong(client, linear, body, status, field):
    assert_canonical_error(client.simulate_post("/api/linear/sync", json=body), status, field=field)
    assert linear.requests == []


def test_a_move_linear_refuses_is_502_with_linears_message_and_the_cache_untouched(client, cached):
    before = Change.select().count()
    with responses.RequestsMock() as mock:
        mock.post(LINEAR_URL, status=400, json={"errors": [{
            "message": "Entity not found", "extensions": {"code": "INVALID_INPUT", "userError": True,
                                                          "userPresentableMessage": "Issue is archived."}}]})
        response = client.simulate_post("/api/linear/sync", json={"issue_id": "issue-1", "state_id": "state-done"})
    error = assert_canonical_error(response, 502, "linear_error")
    assert "Issue is archived." in error["message"]
    assert LinearIssue.get_by_id("issue-1").state_id == "state-todo"
    assert Change.select().count() == before


def test_a_move_linear_does_not_confirm_is_502(client, cached):
    with responses.RequestsMock() as mock:
        mock.post(LINEAR_URL, json={"data": {"issueUpdate": {"success": False, "issue": None, "lastSyncId": 0}}})
        response = client.simulate_post("/api/linear/sync", json={"issue_id": "issue-1", "state_id": "state-done"})
    assert_canonical_error(response, 502, "linear_error")
    assert LinearIssue.get_by_id("issue-1").state_id == "state-todo"


def test_a_move_during_a_rate_limit_fails_fast_with_502(client, cached):
    with responses.RequestsMock() as mock:
        mock.post(LINEAR_URL, status=400, headers={"X-RateLimit-Requests-Reset": "9999999999999"}, json={
            "errors": [{"message": "Rate limit exceeded", "extensions": {"code": "RATELIMITED"}}]})
        response = client.simulate_post("/api/linear/sync", json={"issue_id": "issue-1", "state_id": "state-done"})
    assert "Rate limit exceeded" in assert_canonical_error(response, 502, "linear_error")["message"]


def test_a_move_to_the_state_it_is_in_asks_linear_nothing(client, linear):
    response = client.simulate_post("/api/linear/sync", json={"issue_id": "issue-1", "state_id": "state-todo"})
    assert response.status_code == 200 and linear.requests == []


def test_a_move_survives_one_linear_500(client, linear, monkeypatch):
    monkeypatch.setitem(functions.linear_sync.INTERACTIVE_CLIENT, "sleep", lambda seconds: None)
    calls = {"count": 0}
    answer = linear.responses_callback

    def once_500(request):
        calls["count"] += 1
        return (500, {}, "oops") if calls["count"] == 1 else answer(request)

    with responses.RequestsMock() as mock:
        mock.add_callback(responses.POST, LINEAR_URL, callback=once_500)
        response = client.simulate_post("/api/linear/sync", json={"issue_id": "issue-1", "state_id": "state-done"})
    assert response.status_code == 200 and calls["count"] == 2


def test_posting_full_true_starts_a_sync_in_the_background(linear_settings, client, linear):
    app = client.app
    linear.data["projects"] = [project_node("proj-1", "Dashboard v3", progress=0.9)]
    response = client.simulate_post("/api/linear/sync", json={"full": True})

    assert response.status_code == 202
    assert response.json == {"sync": "started", "full": True}
    sync_resource = app._router.find("/api/linear/sync")[0]
    sync_resource.background.last_thread.join(timeout=10)
    assert LinearProject.get_by_id("proj-1").progress == 0.9
    status = client.simulate_get("/api/linear/sync").json
    assert status["running"] is False and status["last_error"] is None
    assert status["last_result"]["mode"] == "full" and status["last_full_at"] is not None


def test_a_sync_while_another_runs_is_409(linear_settings, client, linear):
    with sync_lock(linear_settings):
        assert client.simulate_get("/api/linear/sync").json["running"] is True
        response = client.simulate_post("/api/linear/sync", json={"full": True})
    assert_canonical_error(response, 409, "sync_in_progress")
    assert linear.requests == []


def test_a_failed_background_sync_is_reported_by_the_status(client, cached):
    with responses.RequestsMock() as mock:
        mock.post(LINEAR_URL, status=400, json={"errors": [{"message": "Authentication required, not authenticated",
                                                            "extensions": {"code": "AUTHENTICATION_ERROR"}}]})
        client.simulate_post("/api/linear/sync", json={"full": False})
        client.app._router.find("/api/linear/sync")[0].background.last_thread.join(timeout=10)
    status = client.simulate_get("/api/linear/sync").json
    assert status["last_error"] == "Authentication required, not authenticated"
    assert status["last_error_at"] is not None


def test_an_oauth_token_moves_cards_as_a_bearer(settings, cached):
    oauth = settings.with_overrides(linear_oauth_token="lin_oauth_0123456789abcdef")
    client = testing.TestClient(functions.linear_sync.create_app(oauth), headers=DASHBOARD)
    with responses.RequestsMock() as mock:
        mock.post(LINEAR_URL, json={"data": {"issueUpdate": {"success": True, "lastSyncId": 5, "issue": {
            **issue_node("issue-1", number=1), "state": {key: STATES[3][key] for key in ("id", "name", "type",
                                                                                         "color")}}}}})
        response = client.simulate_post("/api/linear/sync", json={"issue_id": "issue-1", "state_id": "state-done"})
        assert mock.calls[0].request.headers["Authorization"] == "Bearer lin_oauth_0123456789abcdef"
    assert response.status_code == 200
    assert json.loads(response.text)["issue"]["state_name"] == "Done"
