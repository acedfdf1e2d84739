"""A batch leaves exactly what the same events sent one per request leave.

A batch holds a message's rows in memory and writes each once at its end (functions/events/message_rows.py),
and projects only the last of a session's todo lists: nothing a reader can see may depend on that. Each
test sends the same opencode events to two fresh databases — one event per request, then all in one
batch — and compares everything the API shows: sessions, messages, todos, agents, the turns' tasks,
search hits, usage totals, and the feed's last change of each thing (a batch publishes each thing it
changed once, as it left it, where single events publish every step; an agent's under its batch's action).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from falcon import testing

import functions.events.ingest
from deploy import mount
from shared.store.db import open_database
from shared.store.feed import changes_since
from shared.store.migrations import migrate
from tests.databases import close_pool, database_url_in
from tests.support import AGENT, DASHBOARD, event

NOW = 1_764_000_000  # the server's clock, stopped: `updated_at` is the time a row was written
AGENT_ID = "opencode-shop"
WORDS = ("checkout", "rounding", "snapshot0", "snapshot23", "regression", "tests", "gone", "removedpart", "invoice")


def turn(session: str, number: int, snapshots: int = 24) -> list[tuple[str, dict[str, Any]]]:
    """One turn of an opencode session, as the plugin forwards it: busy, the prompt, the assistant's
    message re-sent as its tokens grow, its text part streamed as growing snapshots, a tool call (the tool
    hooks and its part going pending, running, completed), the todo list twice, a part removed, idle."""
    user, assistant, call = f"msg_u_{session}_{number}", f"msg_a_{session}_{number}", f"call_{session}_{number}"
    started = (NOW - 60) * 1000

    def info(tokens: int, completed: bool = False) -> dict[str, Any]:
        return {"info": {"id": assistant, "sessionID": session, "role": "assistant", "parentID": user,
                         "modelID": "claude-sonnet-4", "providerID": "anthropic", "mode": "build",
                         "time": {"created": started, **({"completed": started + 30_000} if completed else {})},
                         "cost": tokens / 100_000, "tokens": {"input": 1000 + tokens, "output": tokens,
                                                               "reasoning": 0, "cache": {"read": 7, "write": 0}}}}

    def text(n: int) -> tuple[str, dict[str, Any]]:
        words = " ".join(["Looking at the checkout flow", *(["and more"] * n), f"snapshot{n}"])
        return "message.part.updated", {"part": {"id": f"prt_text_{session}_{number}", "sessionID": session,
                                                 "messageID": assistant, "type": "text", "text": words}}

    def tool_part(state: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return "message.part.updated", {"part": {"id": f"prt_tool_{session}_{number}", "sessionID": session,
                                                 "messageID": assistant, "type": "tool", "callID": call,
                                                 "tool": "bash", "state": state}}

    command = {"command": "npm test -- checkout"}
    todos = [{"id": "1", "content": "Reproduce the failing checkout test", "status": "completed"},
             {"id": "2", "content": "Fix the rounding in the total", "status": "in_progress", "priority": "high"}]
    return [
        ("message.updated", {"info": {"id": user, "sessionID": session, "role": "user",
                                      "time": {"created": started}}}),
        ("message.part.updated", {"part": {"id": f"prt_prompt_{session}_{number}", "sessionID": session,
                                           "messageID": user, "type": "text",
                                           "text": f"Fix the checkout test, turn {number}\nwith care"}}),
        # Busy after the prompt: the turn's title is the prompt's text, read in the middle of a batch.
        ("session.status", {"sessionID": session, "status": {"type": "busy"}}),
        ("message.updated", info(0)),
        *(text(n) for n in range(snapshots // 2)),
        ("message.updated", info(50)),
        tool_part({"status": "pending", "input": {}}),
        ("tool.execute.before", {"tool": "bash", "sessionID": session, "callID": call, "args": command}),
        tool_part({"status": "running", "input": command}),
        ("tool.execute.after", {"tool": "bash", "sessionID": session, "callID": call, "title": "Run the tests",
                                "output": "PASS checkout.test.js"}),
        tool_part({"status": "completed", "input": command, "output": "PASS checkout.test.js"}),
        ("todo.updated", {"sessionID": session, "todos": todos}),
        ("message.part.updated", {"part": {"id": f"prt_gone_{session}_{number}", "sessionID": session,
                                           "messageID": assistant, "type": "text", "text": "removedpart "}}),
        *(text(n) for n in range(snapshots // 2, snapshots)),
        ("message.part.removed", {"sessionID": session, "messageID": assistant,
                                  "partID": f"prt_gone_{session}_{number}"}),
        ("todo.updated", {"sessionID": session, "todos": [{**todos[1], "status": "completed"}, todos[0]]}),
        ("message.updated", info(340, completed=True)),
        ("session.status", {"sessionID": session, "status": {"type": "idle"}}),
        ("session.idle", {"sessionID": session}),
    ]


def sessions_created() -> list[tuple[str, dict[str, Any]]]:
    return [("session.created", {"info": {"id": session, "title": f"Shop {session}", "directory": "/home/me/shop",
                                          "time": {"created": (NOW - 120) * 1000}}})
            for session in ("ses_a", "ses_b")]


def interleaved(*turns: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """The turns' events taken in turn, as two sessions working at once send them."""
    longest = max(len(events) for events in turns)
    return [events[n] for n in range(longest) for events in turns if n < len(events)]


def a_message_removed_and_sent_again() -> list[tuple[str, dict[str, Any]]]:
    info = {"id": "msg_again", "sessionID": "ses_a", "role": "user", "time": {"created": (NOW - 10) * 1000}}
    part = {"id": "prt_again", "sessionID": "ses_a", "messageID": "msg_again", "type": "text", "text": "gone soon"}
    return [("message.updated", {"info": info}), ("message.part.updated", {"part": part}),
            ("message.removed", {"sessionID": "ses_a", "messageID": "msg_again"}),
            ("message.part.updated", {"part": {**part, "text": "back again"}})]


def as_events(steps: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [event(kind, data, id=f"evt-{n}", agent_id=AGENT_ID, timestamp=(NOW - 30) * 1000)
            for n, (kind, data) in enumerate(steps)]


@pytest.fixture
def clock(monkeypatch):
    monkeypatch.setattr(functions.events.ingest, "clock_now", lambda: NOW)


@pytest.fixture
def two_databases(tmp_path, settings, postgres_databases, clock) -> Iterator[tuple[Any, Any]]:
    """`open(n)`: a client of the whole app over fresh database number n (0 or 1), the other one closed."""
    urls = [settings.database_url, database_url_in(tmp_path, postgres_databases, name="batched.db")]

    def client(number: int) -> testing.TestClient:
        close_pool(urls[1 - number])
        numbered = settings.__class__(**{**vars(settings), "database_url": urls[number]})
        open_database(numbered)
        migrate()
        return testing.TestClient(mount.create_app(numbered))

    yield client
    close_pool(urls[1])
    if postgres_databases is not None:
        postgres_databases.release(urls[1])


def what_the_api_shows(client: testing.TestClient) -> dict[str, Any]:
    def get(path: str) -> Any:
        response = client.simulate_get(path, headers=DASHBOARD)
        assert response.status_code == 200, (path, response.text)
        return response.json

    shown = {
        "sessions": get("/api/sess?limit=100"),
        "messages": get("/api/msgs?order=oldest_first&limit=500"),
        "todos": get("/api/todos?limit=100"),
        "agents": get("/api/agents"),
        "tasks": get(f"/api/agent/{AGENT_ID}/tasks"),
        "usage": {group: get(f"/api/usage?group_by={group}") for group in ("agent", "session", "model", "hour")},
        "search": {word: search_hits(get(f"/api/search?q={word}")) for word in WORDS},
    }
    last_changes: dict[tuple[str, str], dict[str, Any]] = {}
    for change in changes_since(0, limit=100_000):
        payload = change["payload"]
        key = payload.get("external_id") or payload.get("id") or payload.get("session_id")
        # An agent's status is settled once a batch, as the batch leaves its sessions: a batch whose turns
        # leave it as they found it publishes it under its registration, where one event per request ends
        # on the status it changed back to. The row published is the same.
        action = None if change["topic"] == "agent" else change["action"]
        last_changes[(change["topic"], str(key))] = {"action": action, "payload": payload}
    shown["feed"] = last_changes
    return shown


def search_hits(found: dict[str, Any]) -> dict[str, Any]:
    """The hits, newest first, except todos: a batch projects only a session's last todo list, so its
    todos are indexed where that list comes, after things one event per request indexes later than them."""
    hits = found["hits"]
    todos = sorted((hit for hit in hits if hit["kind"] == "todo"), key=lambda hit: hit["id"])
    return {"hits": [hit for hit in hits if hit["kind"] != "todo"], "todos": todos, "more": found["next_cursor"]}


def one_by_one_and_batched(two_databases, steps: list[tuple[str, dict[str, Any]]]) -> tuple[dict, dict]:
    events = as_events(steps)
    single = two_databases(0)
    for one in events:
        response = single.simulate_post("/api/events", json=one, headers=AGENT)
        assert response.status_code == 202, response.text
    by_one = what_the_api_shows(single)
    batched = two_databases(1)
    response = batched.simulate_post("/api/events", json={"events": events}, headers=AGENT)
    assert response.json == {"accepted": len(events), "duplicates": 0, "unknown": 0}
    return by_one, what_the_api_shows(batched)


def test_a_batch_of_two_sessions_turns_leaves_what_one_event_per_request_leaves(two_databases):
    steps = [*sessions_created(), *interleaved(turn("ses_a", 1), turn("ses_b", 1)), *turn("ses_a", 2),
             *a_message_removed_and_sent_again()]
    by_one, batched = one_by_one_and_batched(two_databases, steps)
    # What is compared is there to compare: the texts' last snapshots, the turns, usage, search hits.
    assert sorted(task["title"] for task in by_one["tasks"]["tasks"]) == ["Fix the checkout test, turn 1",
                                                                         "Fix the checkout test, turn 1",
                                                                         "Fix the checkout test, turn 2"]
    assert by_one["usage"]["session"]["totals"]["messages"] == 3
    assert by_one["search"]["snapshot23"]["hits"] and not by_one["search"]["snapshot0"]["hits"]
    assert not by_one["search"]["removedpart"]["hits"] and by_one["search"]["rounding"]["todos"]
    assert by_one["messages"]["messages"][-1]["content"] == "back again"
    for what in by_one:
        assert batched[what] == by_one[what], what


def test_a_message_sent_in_many_batches_ends_as_in_one(two_databases):
    """The same events cut into batches of every size in between leave the same as one per request."""
    steps = [*sessions_created()[:1], *turn("ses_a", 1, snapshots=10)]
    events = as_events(steps)
    single = two_databases(0)
    for one in events:
        assert single.simulate_post("/api/events", json=one, headers=AGENT).status_code == 202
    by_one = what_the_api_shows(single)
    batched = two_databases(1)
    for first in range(0, len(events), 7):
        response = batched.simulate_post("/api/events", json={"events": events[first:first + 7]}, headers=AGENT)
        assert response.status_code == 202, response.text
    shown = what_the_api_shows(batched)
    for what in by_one:
        assert shown[what] == by_one[what], what


def test_a_turn_is_titled_by_the_prompt_as_the_batch_left_it(two_databases):
    """A turn's title is read in the middle of a batch, from messages some of which the batch has changed
    and not yet written: an edited prompt counts as edited, an emptied one not at all, whichever is newer."""
    prompt = {"id": "prt_prompt_ses_a_1", "sessionID": "ses_a", "messageID": "msg_u_ses_a_1", "type": "text"}
    older = {"id": "msg_older", "sessionID": "ses_a", "role": "user", "time": {"created": (NOW - 90) * 1000}}
    busy, idle = ({"sessionID": "ses_a", "status": {"type": kind}} for kind in ("busy", "idle"))
    first = [*sessions_created()[:1], *turn("ses_a", 1, snapshots=2)]
    second = [
        ("message.part.updated", {"part": {**prompt, "text": "Rename the cart\nthen test"}}),  # the prompt edited
        ("session.status", busy), ("session.status", idle),
        ("message.updated", {"info": older}),  # a prompt older than the edited one: not the title
        ("message.part.updated", {"part": {"id": "prt_older", "sessionID": "ses_a", "messageID": "msg_older",
                                           "type": "text", "text": "An older prompt"}}),
        ("session.status", busy), ("session.status", idle),
        ("message.part.removed", {"sessionID": "ses_a", "messageID": "msg_u_ses_a_1", "partID": prompt["id"]}),
        ("session.status", busy),  # the edited prompt has no text left: the older one titles the turn
    ]
    events = as_events([*first, *second])
    single = two_databases(0)
    for one in events:
        assert single.simulate_post("/api/events", json=one, headers=AGENT).status_code == 202
    by_one = what_the_api_shows(single)
    batched = two_databases(1)
    for batch in (events[:len(first)], events[len(first):]):
        response = batched.simulate_post("/api/events", json={"events": batch}, headers=AGENT)
        assert response.status_code == 202, response.text
    shown = what_the_api_shows(batched)
    titles = [task["title"] for task in sorted(by_one["tasks"]["tasks"], key=lambda task: task["id"])]
    assert titles == ["Fix the checkout test, turn 1", "Rename the cart", "Rename the cart", "An older prompt"]
    for what in by_one:
        assert shown[what] == by_one[what], what


def message_info(message: str, role: str) -> tuple[str, dict[str, Any]]:
    """A message of ses_a begun (its info), created 50 s before the server's clock."""
    return "message.updated", {"info": {"id": message, "sessionID": "ses_a", "role": role,
                                        "time": {"created": (NOW - 50) * 1000}}}


def message_text(message: str, words: str) -> tuple[str, dict[str, Any]]:
    """The text part of a message of ses_a, as it stands now."""
    return "message.part.updated", {"part": {"id": f"prt_{message}", "sessionID": "ses_a", "messageID": message,
                                             "type": "text", "text": words}}


def test_messages_begun_between_other_writes_keep_their_places(two_databases):
    """A batch inserts the messages it creates only before its next event that is not about a message
    (functions/events/message_rows.py): ids and search entries still come in the order one event per
    request gives them — around an error message, a task and todos written in between, and a message
    removed before it was ever written."""
    steps = [
        *sessions_created()[:1],
        message_text("msg_prompt", "Ship the invoice export"),  # a part before its message: the part creates it
        ("session.error", {"sessionID": "ses_a", "error": {"name": "APIError", "data": {"message": "invoice API"}}}),
        message_info("msg_prompt", "user"),
        ("task.created", {"id": "task-invoice", "agent_id": AGENT_ID, "title": "Invoice export"}),
        message_info("msg_answer", "assistant"), message_text("msg_answer", "Reading the invoice module"),
        ("todo.updated", {"sessionID": "ses_a", "todos": [{"id": "1", "content": "Test the invoice totals",
                                                           "status": "pending"}]}),
        message_text("msg_answer", "Reading the invoice module, then its tests"),
        message_info("msg_dropped", "assistant"), message_text("msg_dropped", "invoice draft"),
        ("message.removed", {"sessionID": "ses_a", "messageID": "msg_dropped"}),
        message_info("msg_last", "assistant"), message_text("msg_last", "The invoice export ships"),
    ]
    by_one, batched = one_by_one_and_batched(two_databases, steps)
    shown = sorted(by_one["messages"]["messages"], key=lambda message: message["id"])
    assert [(message["type"], message["content"]) for message in shown] == [
        ("chat", "Ship the invoice export"), ("error", "APIError: invoice API"),
        ("chat", "Reading the invoice module, then its tests"), ("chat", "The invoice export ships")]
    assert shown[-1]["id"] - shown[-2]["id"] == 2  # the removed message used up the id between them
    hits = by_one["search"]["invoice"]
    assert [hit["kind"] for hit in hits["hits"]] == ["message", "message", "task", "message", "message"]
    assert len(hits["todos"]) == 1
    for what in by_one:
        assert batched[what] == by_one[what], what


def test_heartbeats_and_todo_lists_between_messages_begun_leave_ids_as_one_by_one(two_databases, postgres_databases):
    """A heartbeat, or a todo list that only moves its todos on, writes no row that takes an id, so the
    messages a batch began before it wait to be inserted once. A list that adds a todo indexes it for
    search, and one that removes a todo takes its entry out: the messages begun before either are inserted
    first, as one event per request would have. The search pages show it: newest first, and on SQLite
    their cursors (the entries' ids, the greatest one's taken again once removed)."""
    def todos(session: str, **statuses: str) -> tuple[str, dict[str, Any]]:
        return "todo.updated", {"sessionID": session, "todos": [
            {"id": number, "content": f"invoice step {number}", "status": status}
            for number, status in statuses.items()]}

    before = [*sessions_created(), ("session.created", {"info": {"id": "ses_c", "title": "Shop ses_c"}}),
              message_info("msg_start", "user"), message_text("msg_start", "Start the invoice work"),
              todos("ses_a", s1="pending", s2="pending"), todos("ses_b", s1="pending"),
              todos("ses_c", s1="pending", s2="pending")]  # ses_c's second todo: the newest search entry
    steps = [
        message_info("msg_prompt", "user"), message_text("msg_prompt", "Export the invoice"),
        todos("ses_c", s1="completed"),  # removes the newest entry
        ("agent.heartbeat", {"id": AGENT_ID}),
        todos("ses_a", s1="completed", s2="in_progress"),  # the same todos, moved on
        message_info("msg_answer", "assistant"), message_text("msg_answer", "Reading the invoice totals"),
        todos("ses_b", s1="completed", s2="pending"),  # adds one
        message_info("msg_last", "assistant"), message_text("msg_last", "The invoice export ships"),
    ]
    shown = []
    for number, batched in ((0, False), (1, True)):
        client = two_databases(number)
        for one in as_events(before):
            assert client.simulate_post("/api/events", json=one, headers=AGENT).status_code == 202
        events = [{**one, "id": f"{one['id']}-then"} for one in as_events(steps)]
        for body in [{"events": events}] if batched else events:
            assert client.simulate_post("/api/events", json=body, headers=AGENT).status_code == 202
        pages, cursor = [], ""
        while cursor is not None:
            page = client.simulate_get(f"/api/search?q=invoice&limit=1{cursor}", headers=DASHBOARD).json
            pages.append((page["hits"][0]["kind"], page["hits"][0]["id"], page["next_cursor"]))
            cursor = page["next_cursor"] and f"&cursor={page['next_cursor']}"
        if postgres_databases is not None:  # its sequences skip a value at every upsert that updates
            pages = [(kind, hit) for kind, hit, _ in pages]
        shown.append({"search pages": pages, **what_the_api_shows(client)})
    by_one, batched = shown
    assert [page[:2] for page in by_one["search pages"]] == [  # newest first
        ("message", "4"), ("todo", "ses_b:s2"), ("message", "3"), ("message", "2"), ("todo", "ses_c:s1"),
        ("todo", "ses_b:s1"), ("todo", "ses_a:s2"), ("todo", "ses_a:s1"), ("message", "1")]
    assert [message["content"] for message in by_one["messages"]["messages"]] == [
        "Start the invoice work", "Export the invoice", "Reading the invoice totals", "The invoice export ships"]
    for what in by_one:
        assert batched[what] == by_one[what], what
