"""POST /api/events: the ingest contract agents rely on (docs/events.md)."""

from __future__ import annotations

import io
import json

import pytest

from shared.store.models import Agent, AgentTask, Change, InboundEvent, Message, Session, Todo
from tests.support import AGENT, DASHBOARD, assert_canonical_error, event


def post(client, body, headers=AGENT, **kwargs):
    return client.simulate_post("/api/events", json=body, headers=headers, **kwargs)


def todo_event(session="ses_1", todos=None, **kwargs):
    todos = todos if todos is not None else [{"id": "1", "content": "Write tests", "status": "pending",
                                              "priority": "high"}]
    return event("todo.updated", {"sessionID": session, "todos": todos}, **kwargs)


def stored_counts():
    return {model.__name__: model.select().count()
            for model in (InboundEvent, Change, Todo, Session, Message, Agent, AgentTask)}


def test_single_event_is_accepted_and_projected(events_client):
    response = post(events_client, todo_event())
    assert response.status_code == 202
    assert response.json == {"accepted": 1, "duplicates": 0, "unknown": 0}
    todo = Todo.get()
    assert (todo.session_id, todo.content, todo.status, todo.priority, todo.agent) == (
        "ses_1", "Write tests", "pending", "high", "openclaw-main")


def test_batch_is_accepted_in_order(events_client):
    batch = [todo_event(todos=[{"id": "1", "content": f"v{n}", "status": "pending"}]) for n in range(5)]
    response = post(events_client, {"events": batch})
    assert response.json == {"accepted": 5, "duplicates": 0, "unknown": 0}
    assert Todo.get().content == "v4"


def test_repeated_event_id_is_applied_once(events_client):
    first = todo_event(id="evt-repeat")
    assert post(events_client, first).json == {"accepted": 1, "duplicates": 0, "unknown": 0}
    again = todo_event(id="evt-repeat", todos=[{"id": "1", "content": "changed", "status": "completed"}])
    assert post(events_client, {"events": [again, again]}).json == {"accepted": 0, "duplicates": 2,
                                                                       "unknown": 0}
    assert Todo.get().content == "Write tests"
    assert InboundEvent.select().count() == 1


def test_repeated_id_inside_one_batch_counts_as_duplicate(events_client):
    same = todo_event(id="evt-twice")
    assert post(events_client, {"events": [same, same]}).json == {"accepted": 1, "duplicates": 1, "unknown": 0}


def test_unknown_type_is_stored_raw_and_reported(events_client):
    response = post(events_client, event("lsp.client.diagnostics", {"path": "a.py"}))
    assert response.status_code == 202
    assert response.json == {"accepted": 1, "duplicates": 0, "unknown": 1,
                             "unknown_types": ["lsp.client.diagnostics"]}
    raw = InboundEvent.get()
    assert (raw.type, raw.known, raw.data) == ("lsp.client.diagnostics", 0, {"path": "a.py"})


def test_timestamp_may_be_epoch_milliseconds(events_client):
    post(events_client, todo_event(timestamp=1764000000123))
    assert InboundEvent.get().occurred_at == 1764000000


def test_every_applied_event_records_a_change_in_the_same_transaction(events_client):
    post(events_client, todo_event())
    change = Change.get()
    assert (change.topic, change.action) == ("todo", "replaced")
    assert change.payload["session_id"] == "ses_1"
    assert [t["content"] for t in change.payload["todos"]] == ["Write tests"]


def test_a_batch_projects_only_the_last_todo_list_and_heartbeat_of_each_session_and_agent(events_client):
    """A todo list and a heartbeat replace what was there whole: of a batch's, only the last counts, one
    change each."""
    lists = [todo_event(session, [{"id": "1", "content": f"{session} v{n}", "status": "pending"},
                                  {"id": str(n + 2), "content": f"only in v{n}", "status": "in_progress"}])
             for n in range(3) for session in ("ses_a", "ses_b")]
    beats = [event("agent.heartbeat", {"id": "beater"}, timestamp=f"2026-11-24T10:00:0{n}Z") for n in range(3)]
    message = event("message.updated", {"info": {"id": "msg_1", "sessionID": "ses_a", "role": "user"}})
    batch = [lists[0], beats[0], lists[1], message, *lists[2:4], beats[1], *lists[4:], beats[2]]
    assert post(events_client, {"events": batch}).json == {"accepted": len(batch), "duplicates": 0, "unknown": 0}
    for session in ("ses_a", "ses_b"):
        todos = Todo.select().where(Todo.session_id == session).order_by(Todo.position)
        assert [(t.content, t.status) for t in todos] == [(f"{session} v2", "pending"), ("only in v2", "in_progress")]
    assert Agent.get(Agent.id == "beater").to_json()["last_heartbeat"] == "2026-11-24T10:00:02Z"
    changes = [(c.topic, c.action, c.payload.get("session_id") or c.payload.get("id"))
               for c in Change.select().order_by(Change.id)]
    assert changes.count(("todo", "replaced", "ses_a")) == changes.count(("todo", "replaced", "ses_b")) == 1
    # The agent, first heard of in the batch, gets one change: its whole row as the batch left it.
    assert [c for c in changes if c[0] == "agent"] == [("agent", "registered", "beater")]
    agent_change = Change.get(Change.topic == "agent")
    assert agent_change.payload["last_heartbeat"] == "2026-11-24T10:00:02Z"
    assert Session.select().count() == 2 and InboundEvent.select().count() == len(batch)


def test_a_batch_publishes_each_message_once_as_the_batch_left_it(events_client):
    """opencode re-sends a message while it streams: a batch's updates of one message make one change, with
    the message as the last of them left it, and a message removed in the batch only its removal."""
    info = {"id": "msg_1", "sessionID": "ses_1", "role": "assistant", "tokens": {"input": 1, "output": 1}}
    part = {"id": "prt_1", "messageID": "msg_1", "sessionID": "ses_1", "type": "text", "text": "Hello"}
    gone = {"id": "msg_2", "sessionID": "ses_1", "role": "user"}
    batch = [event("message.updated", {"info": info}),
             event("message.part.updated", {"part": part}),
             event("message.updated", {"info": gone}),
             event("message.updated", {"info": {**info, "tokens": {"input": 5, "output": 9}}}),
             event("message.removed", {"sessionID": "ses_1", "messageID": "msg_2"})]
    assert post(events_client, {"events": batch}).json == {"accepted": 5, "duplicates": 0, "unknown": 0}
    changes = [(c.action, c.payload) for c in Change.select().where(Change.topic == "message").order_by(Change.id)]
    assert [(action, payload.get("external_id")) for action, payload in changes] == [
        ("removed", "msg_2"), ("updated", "msg_1")]
    published = changes[1][1]
    assert (published["content"], published["tokens"]) == ("Hello", {"input": 5, "output": 9})
    assert published == Message.get(Message.external_id == "msg_1").to_json()


def two_turns(session="ses_1"):
    """A session that works twice and waits for its person after each: two turns, each a task."""
    return [event("session.created", {"info": {"id": session, "title": "Fix the build"}}),
            *[event("session.status", {"sessionID": session, "status": {"type": status}})
              for status in ("busy", "idle", "busy", "idle")]]


def test_a_batch_publishes_each_session_agent_and_task_once_as_the_batch_left_it(events_client):
    """A busy session changes its row, its agent's and its turn's at every event; in one batch each of them
    makes one change, its row as the batch left it under its last action, in the order first changed.
    The agent's status is settled once, as the batch left its sessions: idle as it was registered, after two
    turns that were never seen one at a time."""
    assert post(events_client, {"events": two_turns()}).json["accepted"] == 5

    changes = [(c.topic, c.action, c.payload.get("id")) for c in Change.select().order_by(Change.id)]
    assert changes == [("agent", "registered", "openclaw-main"), ("session", "status", "ses_1"),
                       ("task", "completed", "ses_1.turn-1"), ("task", "completed", "ses_1.turn-2")]
    payloads = {c.topic + ":" + c.payload["id"]: c.payload for c in Change.select()}
    assert payloads["session:ses_1"] == Session.get_by_id("ses_1").to_json()
    assert payloads["session:ses_1"]["status"] == "idle"
    assert payloads["agent:openclaw-main"]["status"] == Agent.get_by_id("openclaw-main").status == "idle"
    assert [payloads[f"task:ses_1.turn-{n}"]["status"] for n in (1, 2)] == ["completed", "completed"]


def test_a_batch_of_heartbeats_alone_publishes_the_last_one_only(events_client):
    """A status that changes nothing but the agent's heartbeat: one `{id, last_heartbeat}` change a batch."""
    assert post(events_client, two_turns()[1]).status_code == 202  # busy: the agent works
    first_change = Change.select().order_by(Change.id.desc()).get().id
    statuses = [event("session.status", {"sessionID": "ses_1", "status": {"type": "busy"}},
                      timestamp=f"2026-11-24T10:00:0{n}Z") for n in range(3)]
    assert post(events_client, {"events": statuses}).json["accepted"] == 3

    agent_changes = [(c.action, c.payload) for c in Change.select().where(
        (Change.id > first_change) & (Change.topic == "agent"))]
    assert agent_changes == [("heartbeat", {"id": "openclaw-main", "last_heartbeat": "2026-11-24T10:00:02Z"})]


def test_one_event_a_request_publishes_every_step(events_client):
    """The same events one a request: each request's changes, so every step shows (a turn begun by a
    request is created and started by it: one change)."""
    for sent in two_turns():
        assert post(events_client, sent).status_code == 202

    changes = [(c.topic, c.action, c.payload) for c in Change.select().order_by(Change.id)]
    assert [(topic, action) for topic, action, _ in changes if topic == "session"] == [
        ("session", "created"), *[("session", "status")] * 4]
    assert [payload["status"] for topic, _, payload in changes if topic == "session"] == [
        None, "busy", "idle", "busy", "idle"]
    assert [(action, payload["status"]) for topic, action, payload in changes if topic == "agent"] == [
        ("registered", "idle"), ("status", "working"), ("status", "idle"), ("status", "working"), ("status", "idle")]
    assert [(action, payload["id"]) for topic, action, payload in changes if topic == "task"] == [
        ("started", "ses_1.turn-1"), ("completed", "ses_1.turn-1"), ("started", "ses_1.turn-2"),
        ("completed", "ses_1.turn-2")]


# Bad input: the right status, the one error shape, and nothing written ---------------------------------

@pytest.mark.parametrize(("body", "field"), [
    ({"type": "todo.updated", "timestamp": 1, "data": {}}, "id"),
    ({"id": "", "type": "x", "timestamp": 1, "data": {}}, "id"),
    ({"id": "x" * 129, "type": "x", "timestamp": 1, "data": {}}, "id"),
    ({"id": "e", "timestamp": 1, "data": {}}, "type"),
    ({"id": "e", "type": 7, "timestamp": 1, "data": {}}, "type"),
    ({"id": "e", "type": "x", "data": {}}, "timestamp"),
    ({"id": "e", "type": "x", "timestamp": "yesterday", "data": {}}, "timestamp"),
    ({"id": "e", "type": "x", "timestamp": True, "data": {}}, "timestamp"),
    ({"id": "e", "type": "x", "timestamp": 1}, "data"),
    ({"id": "e", "type": "x", "timestamp": 1, "data": []}, "data"),
    ({"id": "e", "type": "x", "timestamp": 1, "agent_id": 5, "data": {}}, "agent_id"),
    ({"id": "e", "type": "todo.updated", "timestamp": 1, "data": {"todos": []}}, "data.sessionID"),
    ({"id": "e", "type": "todo.updated", "timestamp": 1, "data": {"sessionID": "s", "todos": [
        {"id": "1", "content": "c", "status": "done"}]}}, "data.todos[0].status"),
    ({"id": "e", "type": "agent.registered", "timestamp": 1, "data": {"id": "a", "name": "A",
                                                                        "type": "robot"}}, "data.type"),
    ({"id": "e", "type": "message.updated", "timestamp": 1, "data": {"info": {
        "id": "m", "sessionID": "s", "role": "assistant", "cost": "cheap"}}}, "data.info.cost"),
    ({"id": "e", "type": "task.created", "timestamp": 1, "data": {"id": "t", "agent_id": "a"}}, "data.title"),
    ({"id": "e", "type": "session.created", "timestamp": 1, "data": {"info": {}}}, "data.info.id"),
])
def test_missing_or_mistyped_field_is_422_naming_it(events_client, body, field):
    assert_canonical_error(post(events_client, body), 422, "unprocessable", field)
    assert InboundEvent.select().count() == 0


def test_a_bad_event_in_a_batch_names_its_index_and_writes_nothing(events_client):
    batch = [todo_event(), todo_event(), todo_event(), event("agent.status", {"id": "a", "status": "napping"})]
    before = stored_counts()
    error = assert_canonical_error(post(events_client, {"events": batch}), 422, field="events[3].data.status")
    assert "napping" in error["message"]
    assert stored_counts() == before


def test_a_projection_failing_late_in_a_batch_rolls_back_the_whole_batch(events_client):
    # The update names a task that does not exist: only the database can tell, after three events applied.
    batch = [todo_event(), todo_event(session="ses_2"), event("agent.heartbeat", {"id": "a"}),
             event("task.updated", {"id": "no-such-task", "status": "completed"})]
    before = stored_counts()
    assert_canonical_error(post(events_client, {"events": batch}), 422, field="events[3].data.id")
    assert stored_counts() == before


@pytest.mark.parametrize("batch", [[], "not a list"])
def test_events_must_be_a_non_empty_list(events_client, batch):
    assert_canonical_error(post(events_client, {"events": batch}), 422, field="events")


def test_a_batch_over_1000_events_is_refused(events_client):
    batch = [todo_event() for _ in range(1001)]
    assert_canonical_error(post(events_client, {"events": batch}), 422, field="events")
    assert InboundEvent.select().count() == 0


@pytest.mark.parametrize("raw", [b"{not json", b"", b"\xff\xfe{}", b'{"id": NaN}', b"[" * 100_000,
                                 b'{"id": "a\\ud800"}', b'{"\\udfff": 1}'])  # lone surrogates (were a 500)
def test_malformed_json_is_400(events_client, raw):
    response = events_client.simulate_post("/api/events", body=raw,
                                           headers={**AGENT, "Content-Type": "application/json"})
    assert_canonical_error(response, 400, "malformed_json")


def test_a_body_that_is_not_an_object_is_422(events_client):
    assert_canonical_error(post(events_client, ["a"]), 422, field="body")


def test_wrong_content_type_is_415(events_client):
    response = events_client.simulate_post("/api/events", body=json.dumps(todo_event()),
                                           headers={**AGENT, "Content-Type": "text/plain"})
    assert_canonical_error(response, 415, "unsupported_media_type")


def test_body_over_the_limit_is_413_and_writes_nothing(events_client, settings):
    huge = todo_event(todos=[{"id": "1", "content": "x" * settings.max_body_bytes, "status": "pending"}])
    assert_canonical_error(post(events_client, huge), 413, "payload_too_large")
    assert InboundEvent.select().count() == 0


def test_chunked_body_over_the_limit_is_413(events_client, settings):
    # A chunked upload declares no length; gunicorn marks such input as terminated (PEP 3333 extension).
    body = json.dumps(todo_event(todos=[{"id": "1", "content": "x" * settings.max_body_bytes,
                                         "status": "pending"}])).encode()
    response = events_client.simulate_request(
        "POST", "/api/events", headers={**AGENT, "Content-Type": "application/json"},
        extras={"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True, "CONTENT_LENGTH": ""})
    assert_canonical_error(response, 413)


# Credentials ---------------------------------------------------------------------------------------------

def test_ingest_without_a_key_is_401(events_client):
    assert_canonical_error(post(events_client, todo_event(), headers={}), 401, "unauthorized")


def test_ingest_with_a_wrong_key_is_401(events_client):
    response = post(events_client, todo_event(), headers={"Authorization": "Bearer not-the-key"})
    assert_canonical_error(response, 401)
    assert InboundEvent.select().count() == 0


def test_ingest_accepts_the_key_as_x_api_key(events_client):
    key = AGENT["Authorization"].removeprefix("Bearer ")
    assert post(events_client, todo_event(), headers={"X-API-Key": key}).status_code == 202


def test_the_dashboard_token_is_not_an_api_key(events_client):
    assert_canonical_error(post(events_client, todo_event(), headers=DASHBOARD), 401)
