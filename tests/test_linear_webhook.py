"""POST /api/linear/webhook: signed deliveries, applied once, never a 500."""

from __future__ import annotations

import io
import json
import time

import pytest
from falcon import testing

import functions.linear_webhook
from shared.store.models import (
    Change,
    LinearCycle,
    LinearIssue,
    LinearProject,
    LinearWorkflowState,
    Message,
    WebhookDelivery,
)
from tests.linear_support import (
    LINEAR_API_KEY,
    LINEAR_WEBHOOK_SECRET,
    OTHER_TEAM,
    STATES,
    comment_data,
    cycle_data,
    deliver,
    issue_data,
    project_data,
    sign,
    webhook,
)
from tests.support import assert_canonical_error


@pytest.fixture
def linear_settings(settings):
    return settings.with_overrides(linear_api_key=LINEAR_API_KEY, linear_webhook_secret=LINEAR_WEBHOOK_SECRET)


@pytest.fixture
def client(linear_settings, db) -> testing.TestClient:
    return testing.TestClient(functions.linear_webhook.create_app(linear_settings))


def stored() -> dict[str, int]:
    return {model.__name__: model.select().count()
            for model in (WebhookDelivery, Change, LinearIssue, LinearProject, Message, LinearCycle)}


def changes(topic: str) -> list[Change]:
    return list(Change.select().where(Change.topic == topic).order_by(Change.id))


def test_a_signed_issue_create_is_cached_with_state_assignee_and_labels(client):
    response = deliver(client, webhook("Issue", "create", issue_data()), delivery="delivery-1")

    assert response.status_code == 200
    assert response.json == {"ok": True, "delivery": "delivery-1", "duplicate": False, "applied": True}
    issue = LinearIssue.get_by_id("issue-1")
    assert (issue.identifier, issue.title, issue.priority, issue.project_id, issue.team_id) == (
        "ENG-1", "Fix the board", 1, "proj-1", "team-eng")
    assert (issue.state_id, issue.state_name, issue.state_type) == ("state-todo", "Todo", "unstarted")
    assert (issue.assignee_id, issue.assignee_name, issue.assignee_avatar) == (
        "user-ada", "Ada Lovelace", "https://avatars.example/ada.png")
    assert issue.label_names == ["bug", "frontend"]
    assert (issue.sort_order, issue.estimate, issue.cycle_id) == (-42.5, 2, "cycle-7")
    change = changes("linear.issue")[-1]
    assert (change.action, change.payload["id"], change.payload["priority_label"]) == ("created", "issue-1", "urgent")
    delivery = WebhookDelivery.get_by_id("delivery-1")
    assert (delivery.source, delivery.resource_type, delivery.action) == ("linear", "Issue", "create")
    assert delivery.applied_at is not None and delivery.payload["data"]["id"] == "issue-1"


def test_an_issue_that_arrives_before_its_project_gets_a_stub_project(client):
    deliver(client, webhook("Issue", "create", issue_data()))
    assert LinearProject.get_by_id("proj-1").name == "Dashboard v3"


def test_an_issue_update_overwrites_the_row_and_records_an_updated_change(client):
    deliver(client, webhook("Issue", "create", issue_data()))
    moved = issue_data(state=STATES[2], title="Fix the board, really")
    assert deliver(client, webhook("Issue", "update", moved)).status_code == 200

    issue = LinearIssue.get_by_id("issue-1")
    assert (issue.state_name, issue.title) == ("In Progress", "Fix the board, really")
    assert [c.action for c in changes("linear.issue")] == ["created", "updated"]


def test_an_issue_remove_deletes_the_row(client):
    deliver(client, webhook("Issue", "create", issue_data()))
    assert deliver(client, webhook("Issue", "remove", issue_data())).status_code == 200

    assert LinearIssue.get_or_none(LinearIssue.id == "issue-1") is None
    removed = changes("linear.issue")[-1]
    assert (removed.action, removed.payload) == ("removed", {"id": "issue-1", "identifier": "ENG-1",
                                                             "project_id": "proj-1"})


def test_an_issue_moved_out_of_its_project_leaves_the_cache(client):
    deliver(client, webhook("Issue", "create", issue_data()))
    deliver(client, webhook("Issue", "update", issue_data(project_id=None)))
    assert LinearIssue.select().count() == 0


def test_a_redelivery_is_acknowledged_and_applied_once(client):
    payload = webhook("Issue", "create", issue_data())
    first = deliver(client, payload, delivery="delivery-same")
    before = stored()
    again = deliver(client, payload, delivery="delivery-same")

    assert first.status_code == again.status_code == 200
    assert again.json == {"ok": True, "delivery": "delivery-same", "duplicate": True, "applied": False}
    assert stored() == before


def test_without_a_delivery_header_the_webhook_id_and_body_digest_identify_it(client):
    body = json.dumps(webhook("Issue", "create", issue_data())).encode()
    no_header = {"Linear-Delivery": ""}
    first = deliver(client, raw=body, headers=no_header)
    again = deliver(client, raw=body, headers=no_header)

    assert first.json["delivery"] == again.json["delivery"]
    assert first.json["delivery"].startswith("webhook-1:")
    assert (first.json["duplicate"], again.json["duplicate"]) == (False, True)
    assert WebhookDelivery.select().count() == 1


def test_a_tampered_body_is_401_and_writes_nothing(client):
    body = json.dumps(webhook("Issue", "create", issue_data())).encode()
    signature = sign(body)
    tampered = body.replace(b"Fix the board", b"Pwn the board")

    response = deliver(client, raw=tampered, signature=signature)
    assert_canonical_error(response, 401, "invalid_webhook")
    assert stored() == dict.fromkeys(stored(), 0)


def test_a_signature_made_with_another_secret_is_401(client):
    response = deliver(client, webhook("Issue", "create", issue_data()), secret="lin_wh_someone_else_secret_0123")
    assert_canonical_error(response, 401, "invalid_webhook")
    assert WebhookDelivery.select().count() == 0


@pytest.mark.parametrize("signature", ["", "not-hex-at-all", "é" * 64, "0" * 64])
def test_a_missing_or_malformed_signature_is_401(client, signature):
    response = deliver(client, webhook("Issue", "create", issue_data()), signature=signature)
    assert_canonical_error(response, 401, "invalid_webhook")
    assert WebhookDelivery.select().count() == 0


def test_the_signature_is_checked_without_regard_to_hex_case(client):
    body = json.dumps(webhook("Issue", "create", issue_data())).encode()
    assert deliver(client, raw=body, signature=sign(body).upper()).status_code == 200


@pytest.mark.parametrize("offset_ms", [-61_000, 61_000, -3_600_000])
def test_a_stale_or_future_timestamp_is_401_even_with_a_valid_signature(client, offset_ms):
    payload = webhook("Issue", "create", issue_data(), sent_at_ms=int(time.time() * 1000) + offset_ms)
    response = deliver(client, payload)
    error = assert_canonical_error(response, 401, "invalid_webhook")
    assert "60 s" in error["message"]
    assert stored() == dict.fromkeys(stored(), 0)


def test_a_delivery_without_a_timestamp_is_401(client):
    payload = webhook("Issue", "create", issue_data())
    del payload["webhookTimestamp"]
    assert_canonical_error(deliver(client, payload), 401, "invalid_webhook")


def test_an_oversized_body_is_413_and_writes_nothing(client, linear_settings):
    payload = webhook("Issue", "create", issue_data() | {"description": "x" * linear_settings.max_body_bytes})
    assert_canonical_error(deliver(client, payload), 413, "payload_too_large")
    assert WebhookDelivery.select().count() == 0


def test_an_oversized_chunked_body_is_413_and_writes_nothing(client, linear_settings):
    # A chunked upload declares no length; the bounded read stops one byte past the limit.
    raw = json.dumps(webhook("Issue", "create", issue_data() | {"description": "x" * linear_settings.max_body_bytes}))
    headers = {"Content-Type": "application/json", "Linear-Signature": sign(raw.encode())}
    response = client.simulate_request("POST", "/api/linear/webhook", headers=headers, extras={
        "wsgi.input": io.BytesIO(raw.encode()), "wsgi.input_terminated": True, "CONTENT_LENGTH": ""})
    assert_canonical_error(response, 413, "payload_too_large")
    assert WebhookDelivery.select().count() == 0


def test_malformed_json_with_a_valid_signature_is_400(client):
    response = deliver(client, raw=b'{"action": "create", "type": "Issue", ')
    assert_canonical_error(response, 400, "malformed_json")
    assert WebhookDelivery.select().count() == 0


def test_malformed_json_with_a_bad_signature_is_401_first(client):
    assert_canonical_error(deliver(client, raw=b"{nope", signature="0" * 64), 401, "invalid_webhook")


def test_without_a_webhook_secret_the_webhook_is_503(settings, db):
    client = testing.TestClient(functions.linear_webhook.create_app(settings))
    error = assert_canonical_error(deliver(client, webhook("Issue", "create", issue_data())), 503,
                                   "linear_not_configured")
    assert "LINEAR_WEBHOOK_SECRET" in error["message"]


def test_a_project_update_stores_its_status_and_keeps_the_synced_progress(client, db):
    LinearProject.create(id="proj-1", name="Dashboard v3", progress=0.6, prod_url="https://dash.example")
    deliver(client, webhook("Project", "update", project_data(status_type="completed", name="Dashboard v3.1")))

    project = LinearProject.get_by_id("proj-1")
    assert (project.name, project.state, project.status_name) == ("Dashboard v3.1", "completed", "Completed")
    assert (project.progress, project.prod_url) == (0.6, "https://dash.example")
    assert (project.team_ids, project.team_id) == (["team-eng"], "team-eng")
    assert changes("linear.project")[-1].payload["state"] == "completed"


def test_a_project_remove_deletes_it_and_its_issues(client):
    deliver(client, webhook("Issue", "create", issue_data()))
    deliver(client, webhook("Project", "remove", project_data()))
    assert (LinearProject.select().count(), LinearIssue.select().count()) == (0, 0)


def test_a_comment_create_becomes_a_linear_comment_message(client):
    deliver(client, webhook("Comment", "create", comment_data()))

    message = Message.get()
    assert (message.type, message.content, message.agent) == ("linear_comment", "Looks good to me", "Ada Lovelace")
    assert message.external_id == "linear:comment:comment-1"
    assert message.parts[0]["issue_identifier"] == "ENG-1"
    change = changes("linear.comment")[-1]
    assert (change.action, change.payload["id"]) == ("created", message.id)


def test_a_comment_edit_and_remove_follow_the_message(client):
    deliver(client, webhook("Comment", "create", comment_data()))
    deliver(client, webhook("Comment", "update", comment_data(body="Edited")))
    assert Message.get().content == "Edited"
    deliver(client, webhook("Comment", "remove", comment_data()))
    assert Message.select().count() == 0


def test_a_cycle_update_is_stored(client):
    deliver(client, webhook("Cycle", "update", cycle_data()))
    cycle = LinearCycle.get_by_id("cycle-7")
    assert (cycle.number, cycle.name, cycle.team_id, cycle.progress) == (7, "Cycle 7", "team-eng", 0.4)
    assert cycle.to_json()["ends_at"] == "2026-12-01T00:00:00Z"
    assert changes("linear.cycle")[-1].action == "created"


def test_a_workflow_state_update_is_stored(client):
    state = {**STATES[0], "teamId": "team-eng", "team": {"id": "team-eng"}}
    deliver(client, webhook("WorkflowState", "create", state))
    assert LinearWorkflowState.get_by_id("state-backlog").name == "Backlog"


@pytest.mark.parametrize("type_", ["IssueLabel", "Reaction", "Attachment", "ProjectUpdate", "Document", "SomethingNew"])
def test_other_resource_types_are_stored_raw_and_acknowledged(client, type_):
    response = deliver(client, webhook(type_, "create", {"id": "x-1", "name": "whatever"}), delivery="d-other")

    assert response.status_code == 200 and response.json["applied"] is True
    assert WebhookDelivery.get_by_id("d-other").payload["data"] == {"id": "x-1", "name": "whatever"}
    change = changes("linear.event")[-1]
    assert change.payload == {"type": type_, "id": "x-1", "url": "https://linear.app/acme/issue/ENG-1"}


def test_a_delivery_holding_what_no_fast_json_writer_takes_is_stored_as_sent(client):
    """Linear signs what it sends, and the raw delivery is kept whole: integers past 64 bits (which orjson
    does not write, shared/store/models.py) are stored and read back exactly, beside text of every kind."""
    data = {"id": "x-2", "huge": 2**70, "negative": -(2**65), "ünïcode": "é\u2028"}
    response = deliver(client, webhook("Reaction", "create", data), delivery="d-huge")

    assert response.status_code == 200, response.text
    assert WebhookDelivery.get_by_id("d-huge").payload["data"] == data


def test_an_issue_sla_event_with_issue_data_instead_of_data_is_acknowledged(client):
    payload = webhook("IssueSLA", "set", None) | {"issueData": issue_data()}
    assert deliver(client, payload).status_code == 200
    assert LinearIssue.select().count() == 0


@pytest.mark.parametrize("data", [
    [1, 2, 3],
    "a string",
    {"id": 42, "title": ["not", "a", "title"]},
    {"id": "issue-odd", "projectId": {"nested": True}, "labels": "bug", "state": "Todo", "priority": "high",
     "createdAt": "yesterday", "assignee": [], "sortOrder": "first"},
    {"id": "issue-odd-2", "projectId": "proj-1", "teamId": 7, "labels": [None, 3, {"name": 5}]},
])
def test_an_odd_payload_shape_is_stored_raw_and_200_never_500(client, data):
    response = deliver(client, webhook("Issue", "update", data), delivery="odd")
    assert response.status_code == 200
    assert WebhookDelivery.get_by_id("odd").payload["data"] == data


def test_a_non_object_body_with_a_valid_signature_is_refused_as_unsigned_time(client):
    assert_canonical_error(deliver(client, raw=b"[1, 2, 3]"), 401, "invalid_webhook")


def test_an_issue_of_a_team_outside_linear_team_ids_is_acknowledged_but_not_cached(linear_settings, db):
    narrowed = linear_settings.with_overrides(linear_team_ids=("team-eng",))
    client = testing.TestClient(functions.linear_webhook.create_app(narrowed))
    response = deliver(client, webhook("Issue", "create", issue_data(team=OTHER_TEAM)))
    assert response.status_code == 200
    assert LinearIssue.select().count() == 0 and WebhookDelivery.select().count() == 1


def test_a_payload_that_fails_to_apply_is_kept_raw_unapplied_and_still_200(client, monkeypatch, caplog):
    from shared.linear import cache as linear_cache
    def broken(payloads):
        linear_cache.remove_issues([])
        raise KeyError("a shape nobody expected")

    monkeypatch.setattr(linear_cache, "apply_issues", broken)
    response = deliver(client, webhook("Issue", "create", issue_data()), delivery="d-broken")

    assert response.status_code == 200
    assert response.json == {"ok": True, "delivery": "d-broken", "duplicate": False, "applied": False}
    assert WebhookDelivery.get_by_id("d-broken").applied_at is None
    assert LinearIssue.select().count() == 0
    (change,) = Change.select()
    assert (change.topic, change.action, change.payload) == (
        "linear.event", "unapplied", {"delivery": "d-broken", "type": "Issue", "action": "create"})
    assert "stored raw but not applied" in caplog.text
