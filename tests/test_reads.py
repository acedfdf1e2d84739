"""The read paths browsers use: /api/todos, /api/msgs, /api/sess (and their v1 aliases)."""

from __future__ import annotations

import base64
import json

import pytest

from shared.store.models import Message, Todo
from tests.support import AGENT, DASHBOARD, assert_canonical_error, event


def send(client, *events):
    assert client.simulate_post("/api/events", json={"events": list(events)}, headers=AGENT).status_code == 202


def get(client, path, **params):
    return client.simulate_get(path, params=params, headers=DASHBOARD)


def todos(session, *statuses):
    return event("todo.updated", {"sessionID": session, "todos": [
        {"id": str(n), "content": f"{session} #{n}", "status": status} for n, status in enumerate(statuses)]})


def test_reads_need_the_dashboard_token_not_the_api_key(events_client):
    assert_canonical_error(events_client.simulate_get("/api/todos"), 401, "unauthorized")
    assert_canonical_error(events_client.simulate_get("/api/todos", headers=AGENT), 401)
    assert get(events_client, "/api/todos").status_code == 200


def test_an_event_posted_with_the_key_shows_up_in_todos(events_client):
    send(events_client, todos("ses_1", "pending", "completed"))
    body = get(events_client, "/api/todos").json
    assert sorted(t["content"] for t in body["todos"]) == ["ses_1 #0", "ses_1 #1"]
    assert body["next_cursor"] is None
    assert body["todos"][0]["created_at"].endswith("Z")


def test_todos_filter_by_session_status_and_since(events_client):
    send(events_client, todos("a", "pending", "completed", "in_progress"), todos("b", "pending"))
    assert len(get(events_client, "/api/todos", session_id="a").json["todos"]) == 3
    pending_or_done = get(events_client, "/api/todos", session_id="a", status="pending,completed").json["todos"]
    assert sorted(t["status"] for t in pending_or_done) == ["completed", "pending"]
    assert get(events_client, "/api/todos", since="2999-01-01T00:00:00Z").json["todos"] == []
    assert len(get(events_client, "/api/todos", since="0").json["todos"]) == 4


def test_pages_follow_the_cursor_without_repeats_or_gaps(events_client):
    send(events_client, todos("a", *["pending"] * 7))
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        body = get(events_client, "/api/todos", **params).json
        seen += [t["id"] for t in body["todos"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert sorted(seen) == sorted(t.id for t in Todo.select())
    assert len(seen) == len(set(seen)) == 7


@pytest.mark.parametrize(("params", "field"), [
    ({"limit": "0"}, "limit"), ({"limit": "501"}, "limit"), ({"limit": "ten"}, "limit"),
    ({"cursor": "!!garbage!!"}, "cursor"), ({"cursor": "WzFd"}, "cursor"), ({"since": "last week"}, "since"),
    ({"since": "9" * 40}, "since"),  # more than a database integer holds (was a 500)
])
def test_bad_query_parameters_are_400_naming_them(events_client, params, field):
    assert_canonical_error(get(events_client, "/api/todos", **params), 400, "invalid_parameter", field)


def test_messages_on_the_v2_path_and_the_v1_alias(events_client):
    send(events_client, event("message.updated", {"info": {"id": "m1", "sessionID": "s", "role": "user"}}),
         event("session.error", {"sessionID": "s", "error": {"name": "Boom"}}))
    v2 = get(events_client, "/api/msgs").json["messages"]
    v1 = get(events_client, "/api/messages").json["messages"]
    assert v1 == v2
    assert {m["type"] for m in v2} == {"chat", "error"}
    assert [m["type"] for m in get(events_client, "/api/msgs", type="error").json["messages"]] == ["error"]


def test_messages_can_be_marked_read(events_client):
    send(events_client, event("session.error", {"sessionID": "s", "error": {"name": "Boom"}}))
    message_id = Message.get().id
    assert len(get(events_client, "/api/messages", unread_only="true").json["messages"]) == 1
    response = events_client.simulate_post("/api/messages", json={"ids": [message_id]}, headers=DASHBOARD)
    assert response.json == {"marked_read": 1}
    assert get(events_client, "/api/messages", unread_only="true").json["messages"] == []
    assert get(events_client, "/api/messages").json["messages"][0]["read"] is True


@pytest.mark.parametrize("ids", ["all", [True], [1.5], [0], [2**63]])  # 2**63 does not fit SQL (was a 500)
def test_marking_read_needs_a_list_of_ids(events_client, ids):
    response = events_client.simulate_post("/api/messages", json={"ids": ids}, headers=DASHBOARD)
    assert_canonical_error(response, 422, field="ids")


@pytest.mark.parametrize("ids", [[1, 2**63], [-(2**80)], [0], list(range(1, 1002))])
def test_marking_read_refuses_ids_no_row_can_have_without_a_server_error(events_client, ids):
    # Found by schemathesis: an id past SQLite's 64-bit integers was a 500 (OverflowError).
    send(events_client, event("session.error", {"sessionID": "s", "error": {"name": "Boom"}}))
    response = events_client.simulate_post("/api/messages", json={"ids": ids}, headers=DASHBOARD)
    assert_canonical_error(response, 422, field="ids")
    assert Message.get().read == 0


def test_sessions_list_and_one_session_with_its_messages_and_todos(events_client):
    send(events_client,
         event("session.created", {"info": {"id": "ses_1", "title": "One"}}),
         event("session.created", {"info": {"id": "ses_2", "title": "Two"}}),
         event("message.updated", {"info": {"id": "m1", "sessionID": "ses_1", "role": "user"}}),
         todos("ses_1", "pending"))
    listed = get(events_client, "/api/sess").json["sessions"]
    assert {s["id"] for s in listed} == {"ses_1", "ses_2"}
    assert get(events_client, "/api/sessions").json["sessions"] == listed
    one = get(events_client, "/api/sess/ses_1").json
    assert one["session"]["name"] == "One"
    assert [m["external_id"] for m in one["messages"]] == ["m1"]
    assert [t["content"] for t in one["todos"]] == ["ses_1 #0"]


def test_an_unknown_session_is_404(events_client):
    assert_canonical_error(get(events_client, "/api/sess/nope"), 404, "not_found")


def _cursor(values) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


@pytest.mark.parametrize(("path", "field"), [
    ("/api/todos?since=99999999999999999999999", "since"),
    ("/api/todos?since=%C2%B2", "since"),  # '²' is a digit to str.isdigit(), not to int()
    ("/api/msgs?limit=%C2%B2", "limit"),
    ("/api/sess?limit=99999999999999999999999", "limit"),
    (f"/api/todos?cursor={_cursor([2**70, 'x'])}", "cursor"),
    (f"/api/msgs?cursor={_cursor([{'a': 1}, 1])}", "cursor"),
    (f"/api/sess?cursor={_cursor([True, 'x'])}", "cursor"),
])
def test_query_parameters_a_column_cannot_hold_are_a_400_not_a_500(events_client, path, field):
    # Found while running schemathesis: each of these reached SQLite (OverflowError, a bad binding) or
    # int() ('²'), and was answered as a 500.
    response = events_client.simulate_get(path, headers=DASHBOARD)
    assert_canonical_error(response, 400, "invalid_parameter", field=field)


def test_a_todo_status_filter_that_can_never_match_is_a_400(events_client):
    response = get(events_client, "/api/todos", status="pending,done")
    assert "'done'" in assert_canonical_error(response, 400, "invalid_parameter", field="status")["message"]
