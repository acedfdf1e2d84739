"""Linear: an older description of an entity never overwrites a newer one (webhook and sync), and the
same signed body re-sent under a new `Linear-Delivery` id is a duplicate."""

from __future__ import annotations

import json

import pytest
import responses
from falcon import testing

import functions.linear_webhook
from functions.linear_sync.graphql_client import LinearClient
from functions.linear_sync.sync import run_sync
from shared.linear import cache as linear_cache
from shared.store.db import write_transaction
from shared.store.models import (
    Change,
    LinearCycle,
    LinearIssue,
    LinearProject,
    LinearWorkflowState,
    Message,
    WebhookDelivery,
)
from tests.fake_linear import FakeLinear
from tests.linear_support import (
    LINEAR_API_KEY,
    LINEAR_URL,
    LINEAR_WEBHOOK_SECRET,
    STATES,
    TEAM,
    comment_data,
    cycle_data,
    deliver,
    issue_data,
    issue_node,
    project_data,
    project_node,
    sign,
    state_node,
    webhook,
)

OLDER, NEWER = "2026-11-24T10:00:00.100Z", "2026-11-24T10:00:00.900Z"  # the same second: milliseconds decide


@pytest.fixture
def client(settings, db) -> testing.TestClient:
    linear = settings.with_overrides(linear_api_key=LINEAR_API_KEY, linear_webhook_secret=LINEAR_WEBHOOK_SECRET)
    return testing.TestClient(functions.linear_webhook.create_app(linear))


def at(data: dict, updated_at: str, **fields) -> dict:
    return data | {"updatedAt": updated_at} | fields


# Each kind the cache holds: its payload with a field that tells two versions apart, and how to read it back.
KINDS = {
    "Issue": (lambda **f: issue_data(**({"title": f["mark"]})), lambda: LinearIssue.get_by_id("issue-1").title),
    "Project": (lambda **f: project_data(name=f["mark"]), lambda: LinearProject.get_by_id("proj-1").name),
    "Cycle": (lambda **f: cycle_data() | {"name": f["mark"]}, lambda: LinearCycle.get_by_id("cycle-7").name),
    "WorkflowState": (lambda **f: {"id": "state-todo", "name": f["mark"], "type": "unstarted", "color": "#e2e2e2",
                                   "position": 1, "teamId": TEAM["id"]},
                      lambda: LinearWorkflowState.get_by_id("state-todo").name),
    "Comment": (lambda **f: comment_data(body=f["mark"]), lambda: Message.get().content),
}


@pytest.mark.parametrize("kind", KINDS)
def test_an_older_delivery_arriving_late_does_not_overwrite_a_newer_one(client, kind):
    payload, shown = KINDS[kind]
    assert deliver(client, webhook(kind, "update", at(payload(mark="newer"), NEWER))).status_code == 200
    late = deliver(client, webhook(kind, "update", at(payload(mark="older"), OLDER)))
    assert late.status_code == 200 and late.json["duplicate"] is False
    assert shown() == "newer"


@pytest.mark.parametrize("kind", KINDS)
def test_a_newer_delivery_still_replaces_an_older_one(client, kind):
    payload, shown = KINDS[kind]
    deliver(client, webhook(kind, "update", at(payload(mark="older"), OLDER)))
    deliver(client, webhook(kind, "update", at(payload(mark="newer"), NEWER)))
    assert shown() == "newer"


def test_an_update_sent_before_a_removal_does_not_bring_the_issue_back(client):
    deliver(client, webhook("Issue", "create", at(issue_data(), OLDER)))
    deliver(client, webhook("Issue", "remove", at(issue_data(), NEWER)))
    announced = Change.select().where(Change.topic == "linear.issue").count()
    deliver(client, webhook("Issue", "update", at(issue_data(title="stale"), OLDER)))  # retried late
    assert LinearIssue.get_or_none(LinearIssue.id == "issue-1") is None
    assert Change.select().where(Change.topic == "linear.issue").count() == announced  # nothing announced


def test_a_removal_older_than_the_cached_issue_leaves_it(client):
    deliver(client, webhook("Issue", "update", at(issue_data(title="restored"), NEWER)))
    deliver(client, webhook("Issue", "remove", at(issue_data(), OLDER)))
    assert LinearIssue.get_by_id("issue-1").title == "restored"


def test_of_two_versions_in_one_batch_the_newer_wins_whatever_their_order(db):
    with write_transaction():
        linear_cache.apply_issues([issue_node("issue-1", title="newer", updated_at=NEWER),
                                   issue_node("issue-1", title="older", updated_at=OLDER)])
    assert LinearIssue.get_by_id("issue-1").title == "newer"


# The sync ------------------------------------------------------------------------------------------------------

@pytest.fixture
def linear(db):
    fake = FakeLinear(states=[state_node(state) for state in STATES], projects=[project_node("proj-1")],
                      issues=[issue_node("issue-1", title="as the sync read it", updated_at=OLDER)],
                      api_key=LINEAR_API_KEY)
    with responses.RequestsMock() as mock:
        mock.add_callback(responses.POST, LINEAR_URL, callback=fake.responses_callback)
        yield fake


def test_a_sync_page_older_than_a_webhook_does_not_overwrite_it(linear, client):
    deliver(client, webhook("Issue", "update", at(issue_data(title="from the webhook"), NEWER)))
    run_sync(LinearClient(LINEAR_URL, LINEAR_API_KEY, sleep=lambda seconds: None))
    assert LinearIssue.get_by_id("issue-1").title == "from the webhook"


def test_a_sync_page_newer_than_a_webhook_replaces_it(linear, client):
    deliver(client, webhook("Issue", "update", at(issue_data(title="from the webhook"), "2026-11-24T09:00:00.000Z")))
    run_sync(LinearClient(LINEAR_URL, LINEAR_API_KEY, sleep=lambda seconds: None))
    assert LinearIssue.get_by_id("issue-1").title == "as the sync read it"


# Replay ------------------------------------------------------------------------------------------------------------

def test_the_same_signed_body_under_a_new_delivery_id_is_a_duplicate(client):
    body = json.dumps(webhook("Comment", "create", comment_data())).encode()
    first = deliver(client, raw=body, delivery="delivery-1")
    again = deliver(client, raw=body, delivery="delivery-2", headers={"Linear-Event": "Comment"})
    assert first.json["duplicate"] is False and first.json["applied"] is True
    assert again.status_code == 200 and again.json["duplicate"] is True and again.json["applied"] is False
    assert [delivery.id for delivery in WebhookDelivery.select()] == ["delivery-1"]
    assert Change.select().where(Change.topic == "linear.comment").count() == 1


def test_a_replayed_removal_does_not_remove_what_came_back(client):
    removal = json.dumps(webhook("Issue", "remove", at(issue_data(), OLDER))).encode()
    deliver(client, raw=removal, delivery="remove-1")
    deliver(client, webhook("Issue", "create", at(issue_data(title="back"), NEWER)))
    deliver(client, raw=removal, delivery="remove-1-replayed")
    assert LinearIssue.get_by_id("issue-1").title == "back"


def test_two_deliveries_of_different_bodies_are_both_applied(client):
    first = deliver(client, webhook("Comment", "create", comment_data("comment-1")))
    second = deliver(client, webhook("Comment", "create", comment_data("comment-2")))
    assert (first.json["applied"], second.json["applied"]) == (True, True)
    assert Message.select().count() == 2


def test_a_replay_is_told_apart_by_its_exact_bytes_which_the_signature_covers(client):
    body = json.dumps(webhook("Comment", "create", comment_data())).encode()
    assert deliver(client, raw=body).json["duplicate"] is False
    # A byte more is another body: it needs a signature of its own, which only Linear can make.
    refused = deliver(client, raw=body + b" ", signature=sign(body))
    assert refused.status_code == 401
