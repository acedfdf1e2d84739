"""The mount serves the two Linear functions side by side: the webhook and everything else."""

from __future__ import annotations

import pytest
from falcon import testing

from deploy import mount
from shared.store.models import LinearIssue
from tests.linear_support import LINEAR_API_KEY, LINEAR_WEBHOOK_SECRET, deliver, issue_data, webhook
from tests.support import DASHBOARD, assert_canonical_error


def test_the_webhook_and_the_sync_routes_are_different_functions(mounted_client):
    webhook_error = assert_canonical_error(mounted_client.simulate_post("/api/linear/webhook", json={}), 503)
    assert "LINEAR_WEBHOOK_SECRET" in webhook_error["message"]
    for path in ("/api/linear/states", "/api/linear/sync", "/api/projects", "/api/projects/p/board"):
        sync_error = assert_canonical_error(mounted_client.simulate_get(path, headers=DASHBOARD), 503)
        assert "LINEAR_API_KEY" in sync_error["message"]


@pytest.mark.parametrize("path", ["/api/linear", "/api/linear/nothing", "/api/linear/webhookx", "/api/projectsx"])
def test_unknown_linear_paths_are_json_404s(mounted_client, path):
    assert_canonical_error(mounted_client.simulate_get(path, headers=DASHBOARD), 404, "not_found")


def test_a_delivery_through_the_mount_reaches_the_board(settings, db):
    linear = settings.with_overrides(linear_api_key=LINEAR_API_KEY, linear_webhook_secret=LINEAR_WEBHOOK_SECRET)
    client = testing.TestClient(mount.create_app(linear))
    assert deliver(client, webhook("Issue", "create", issue_data())).status_code == 200
    assert LinearIssue.get_by_id("issue-1").title == "Fix the board"
    board = client.simulate_get("/api/projects/proj-1/board", headers=DASHBOARD).json
    assert [issue["id"] for column in board["columns"] for issue in column["issues"]] == ["issue-1"]


def test_health_says_how_the_last_linear_sync_went_but_stays_200(settings, db):
    from shared.linear import cache as linear_cache
    from shared.store.db import write_transaction

    linear = settings.with_overrides(linear_api_key=LINEAR_API_KEY)
    client = testing.TestClient(mount.create_app(linear))
    assert client.simulate_get("/api/health").json["linear"] == {
        "configured": True, "webhook": False, "ok": True, "last_sync_at": None, "last_sync_age_s": None,
        "last_result": None, "last_error": None, "last_error_at": None}
    with write_transaction():
        linear_cache.save_sync_state({"last_success_at": 1_800_000_000, "last_error_at": 1_800_000_060,
                                      "last_error": "Authentication required, not authenticated"})
    response = client.simulate_get("/api/health")
    assert response.status_code == 200
    linear_status = response.json["linear"]
    assert isinstance(linear_status.pop("last_sync_age_s"), int)
    assert linear_status == {"configured": True, "webhook": False, "ok": False,
                             "last_sync_at": "2027-01-15T08:00:00Z", "last_result": None,
                             "last_error": "Authentication required, not authenticated",
                             "last_error_at": "2027-01-15T08:01:00Z"}
