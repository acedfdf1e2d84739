"""Search, usage, the timeline and activity, through HTTP over what the ingest wrote (tests/test_search.py).

The index and the rollup are kept by database triggers, so these tests write the way every writer
does (events through POST /api/events, Linear's rows and retention's deletions as plain SQL) and read
only through the API. They run on PostgreSQL too (tests/with_postgres.sh).
"""

from __future__ import annotations

import random

import pytest

from shared.store.db import database, execute, write_transaction
from shared.store.migrations import migrate
from tests.support import AGENT, DASHBOARD, assert_canonical_error, event

T0 = 1764000000000  # epoch ms, as opencode reports times (2025-11-24T16:00:00Z)
HOUR_MS = 3_600_000


def send(client, *events):
    response = client.simulate_post("/api/events", json={"events": list(events)}, headers=AGENT)
    assert response.status_code == 202, response.text
    return response.json


def get(client, path, **params):
    response = client.simulate_get(path, params=params, headers=DASHBOARD)
    assert response.status_code == 200, response.text
    return response.json


def search(client, q, **params):
    return get(client, "/api/search", q=q, **params)["hits"]


def session(session_id, agent_id="openclaw-main"):
    return event("session.created", {"info": {"id": session_id, "title": f"session {session_id}",
                                              "time": {"created": T0}}}, agent_id=agent_id)


def message(message_id, session_id, *, role="assistant", model="claude-sonnet", tokens=None, cost=None,
            created=T0, agent_id="openclaw-main"):
    info = {"id": message_id, "sessionID": session_id, "role": role, "modelID": model, "providerID": "anthropic",
            "time": {"created": created}}
    if tokens is not None:
        info["tokens"] = tokens
    if cost is not None:
        info["cost"] = cost
    return event("message.updated", {"info": info}, agent_id=agent_id)


def text_part(message_id, session_id, text, part_id=None):
    return event("message.part.updated", {"part": {"id": part_id or f"prt-{message_id}", "messageID": message_id,
                                                   "sessionID": session_id, "type": "text", "text": text}})


def tokens(input=0, output=0, reasoning=0, read=0, write=0):
    return {"input": input, "output": output, "reasoning": reasoning, "cache": {"read": read, "write": write}}


def marked(hit):
    return [segment["text"] for segment in hit["snippet"] if segment["match"]]


def message_row_id(external_id):
    return str(execute("SELECT id FROM messages WHERE external_id = ?", (external_id,)).fetchone()[0])


# Search ---------------------------------------------------------------------------------------------------

def test_search_finds_a_messages_text_and_opens_the_session_at_it(mounted_client):
    send(mounted_client, session("ses_a"), message("msg_1", "ses_a"),
         text_part("msg_1", "ses_a", "The flaky login test fails because the session cookie expires early."))
    [hit] = search(mounted_client, "cookie expires")
    row_id = message_row_id("msg_1")
    assert hit["kind"] == "message" and hit["id"] == row_id
    assert (hit["session_id"], hit["agent_id"]) == ("ses_a", "openclaw-main")
    assert hit["time"] == "2025-11-24T16:00:00Z"
    assert hit["link"] == f"/?session=ses_a&message={row_id}"
    assert marked(hit) == ["cookie", "expires"]
    assert "".join(segment["text"] for segment in hit["snippet"]).startswith("The flaky login test")


def test_search_finds_tool_input_and_output(mounted_client):
    send(mounted_client, session("ses_a"),
         event("tool.execute.before", {"tool": "bash", "sessionID": "ses_a", "callID": "call_1",
                                       "args": {"command": "grep -rn frobnicate src/"}}),
         event("tool.execute.after", {"tool": "bash", "sessionID": "ses_a", "callID": "call_1", "title": "grep",
                                      "output": "src/widget.py:12: def frobnicate(): quuxified"}))
    assert [hit["kind"] for hit in search(mounted_client, "frobnicate")] == ["message"]
    assert marked(search(mounted_client, "quuxified")[0]) == ["quuxified"]
    # opencode's own tool parts keep their input and output under `state`
    send(mounted_client, message("msg_2", "ses_a"), event("message.part.updated", {"part": {
        "id": "prt_t", "messageID": "msg_2", "sessionID": "ses_a", "type": "tool", "tool": "read",
        "callID": "c2", "state": {"status": "completed", "input": {"filePath": "/repo/zebrafish.md"},
                                  "output": "striped vertebrate"}}}))
    assert [hit["id"] for hit in search(mounted_client, "zebrafish")] == [message_row_id("msg_2")]
    assert [hit["id"] for hit in search(mounted_client, "striped vertebrate")] == [message_row_id("msg_2")]


def test_search_finds_todos_tasks_questions_and_linear_issues(mounted_client):
    send(mounted_client, session("ses_a"),
         event("todo.updated", {"sessionID": "ses_a", "todos": [
             {"id": "1", "content": "Rotate the walrus credentials", "status": "pending"}]}),
         event("task.created", {"id": "task-1", "agent_id": "openclaw-main", "title": "Migrate walrus storage"}),
         event("task.updated", {"id": "task-1", "status": "blocked", "blocked_reason": "needs the narwhal key",
                                "question": {"type": "question", "text": "Which walrus region?"}}))
    with write_transaction():  # the Linear sync writes its cache with plain SQL
        execute("INSERT INTO linear_issues (id, identifier, title, updated_at) VALUES (?, ?, ?, ?)",
                ("iss-1", "ENG-7", "Walrus dashboard flickers", 1764000000))
    hits = search(mounted_client, "walrus")
    assert sorted(hit["kind"] for hit in hits) == ["linear_issue", "question", "task", "todo"]
    links = {hit["kind"]: hit["link"] for hit in hits}
    assert links["task"] == links["question"] == "/agents/openclaw-main?task=task-1"
    assert links["todo"] == "/?session=ses_a"
    assert links["linear_issue"] == "/?issue=iss-1"
    assert [hit["kind"] for hit in search(mounted_client, "narwhal")] == ["task"]
    assert [hit["kind"] for hit in search(mounted_client, "ENG-7")] == ["linear_issue"]
    assert [hit["kind"] for hit in search(mounted_client, "walrus", kind="todo,task")] in (
        ["task", "todo"], ["todo", "task"])


def test_a_re_sent_message_is_found_by_its_latest_text_only(mounted_client):
    send(mounted_client, session("ses_a"), message("msg_1", "ses_a"), text_part("msg_1", "ses_a", "drafting penguin"))
    send(mounted_client, text_part("msg_1", "ses_a", "final albatross"))
    assert search(mounted_client, "penguin") == []
    [hit] = search(mounted_client, "albatross")
    assert hit["id"] == message_row_id("msg_1")
    send(mounted_client, event("message.removed", {"sessionID": "ses_a", "messageID": "msg_1"}))
    assert search(mounted_client, "albatross") == []


def test_a_star_makes_a_prefix_and_quotes_make_a_phrase(mounted_client):
    send(mounted_client, session("ses_a"),
         message("m1", "ses_a"), text_part("m1", "ses_a", "deploy the staging cluster"),
         message("m2", "ses_a"), text_part("m2", "ses_a", "the cluster staging deploy"))
    assert search(mounted_client, "stag") == []  # words are whole
    [hit_2, hit_1] = search(mounted_client, "stag* deploy")
    assert (hit_1["id"], hit_2["id"]) == (message_row_id("m1"), message_row_id("m2"))
    assert marked(hit_1) == ["deploy", "stag"]
    assert search(mounted_client, "st*") == []  # too short to be a prefix: the whole word "st"
    assert [hit["id"] for hit in search(mounted_client, '"staging cluster"')] == [message_row_id("m1")]
    assert search(mounted_client, '"stag*"') == []  # in quotes, * is punctuation


@pytest.mark.parametrize("q", ['"', '""', "*", "NEAR", "NEAR(a b, 2)", "body:walrus", "((walrus", "walrus)",
                               "a OR b", "AND", "NOT walrus", "-walrus", "^walrus", "walrus*", "'", "\\",
                               "{walrus}", "walrus:*", "!", "&|", "col : x", "🦭", "\u0000x", "a\u00a0b",
                               "x" * 256])
def test_whatever_is_typed_the_answer_is_hits_or_a_400_naming_q(mounted_client, q):
    send(mounted_client, session("ses_a"), message("m1", "ses_a"),
         text_part("m1", "ses_a", "the walrus said NEAR body and x"))
    response = mounted_client.simulate_get("/api/search", params={"q": q}, headers=DASHBOARD)
    if response.status_code == 400:
        assert_canonical_error(response, 400, "invalid_parameter", "q")
    else:
        assert response.status_code == 200, response.text
        assert isinstance(response.json["hits"], list)


@pytest.mark.parametrize("q", ["", "   ", '"*"', "(((", "-- !!", "x" * 257, " ".join(["w"] * 17)])
def test_a_query_with_no_word_or_too_long_is_a_400_naming_q(mounted_client, q):
    response = mounted_client.simulate_get("/api/search", params={"q": q}, headers=DASHBOARD)
    assert_canonical_error(response, 400, "invalid_parameter", "q")
    assert_canonical_error(mounted_client.simulate_get("/api/search", headers=DASHBOARD), 400, field="q")


def test_search_filters_by_agent_session_kind_and_time_and_pages(mounted_client):
    send(mounted_client, session("ses_a"), session("ses_b", agent_id="builder"),
         *[e for n in range(5) for e in (message(f"a{n}", "ses_a", created=T0 + n * HOUR_MS),
                                         text_part(f"a{n}", "ses_a", f"otter number {n}"))],
         message("b0", "ses_b", agent_id="builder"), text_part("b0", "ses_b", "otter elsewhere"))
    assert len(search(mounted_client, "otter")) == 6
    assert [hit["session_id"] for hit in search(mounted_client, "otter", agent_id="builder")] == ["ses_b"]
    assert {hit["session_id"] for hit in search(mounted_client, "otter", session_id="ses_a")} == {"ses_a"}
    assert search(mounted_client, "otter", kind="todo") == []
    since = (T0 + 2 * HOUR_MS) // 1000
    timed = search(mounted_client, "otter", session_id="ses_a", since=since, until=since + 7200)
    assert sorted(marked_text(hit) for hit in timed) == ["otter number 2", "otter number 3"]
    pages, cursor = [], None
    while True:
        body = get(mounted_client, "/api/search", q="otter", limit=4, **({"cursor": cursor} if cursor else {}))
        pages.append([hit["id"] for hit in body["hits"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert [len(page) for page in pages] == [4, 2]
    assert len({hit_id for page in pages for hit_id in page}) == 6


def marked_text(hit):
    return "".join(segment["text"] for segment in hit["snippet"])


@pytest.mark.parametrize(("params", "field"), [
    ({"q": "x", "kind": "emails"}, "kind"), ({"q": "x", "since": "yesterday"}, "since"),
    ({"q": "x", "since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
    ({"q": "x", "limit": "0"}, "limit"), ({"q": "x", "cursor": "bm90IG1pbmU"}, "cursor"),
    ({"q": "x", "cursor": "WyJhIl0"}, "cursor")])
def test_bad_search_parameters_are_a_400_naming_them(mounted_client, params, field):
    response = mounted_client.simulate_get("/api/search", params=params, headers=DASHBOARD)
    assert_canonical_error(response, 400, "invalid_parameter", field)


def test_search_needs_the_dashboard_credential(mounted_client):
    for path in ("/api/search?q=x", "/api/usage", "/api/timeline", "/api/activity"):
        assert_canonical_error(mounted_client.simulate_get(path), 401)
        assert_canonical_error(mounted_client.simulate_get(path, headers=AGENT), 401)


def test_rows_deleted_by_any_writer_leave_the_index_with_them(mounted_client):
    """Retention, or anything else that deletes rows with plain SQL, takes their index entries along."""
    send(mounted_client, session("ses_a"), message("m1", "ses_a", tokens=tokens(input=5), cost=0.5),
         text_part("m1", "ses_a", "ephemeral heron"),
         event("todo.updated", {"sessionID": "ses_a", "todos": [{"id": "1", "content": "heron", "status": "pending"}]}))
    assert len(search(mounted_client, "heron")) == 2
    with write_transaction():
        execute("DELETE FROM messages WHERE session_id = ?", ("ses_a",))
        execute("DELETE FROM todos WHERE session_id = ?", ("ses_a",))
    assert search(mounted_client, "heron") == []
    assert get(mounted_client, "/api/usage")["groups"] == []
    assert execute("SELECT COUNT(*) FROM search_documents").fetchone()[0] == 0


def test_retentions_batched_deletes_take_index_entries_figures_and_timeline_rows_with_them(mounted_client, settings):
    from shared.jobs.retention import delete_in_batches, prune_records
    from shared.store.models import Message

    send(mounted_client, session("ses_a"), message("m1", "ses_a", tokens=tokens(output=9), cost=0.1),
         text_part("m1", "ses_a", "retained cormorant"))
    assert search(mounted_client, "cormorant") and get(mounted_client, "/api/usage")["totals"]["messages"] == 1
    delete_in_batches(Message, Message.session_id == "ses_a")  # how retention deletes rows, a batch at a time
    assert search(mounted_client, "cormorant") == []
    assert get(mounted_client, "/api/usage")["totals"]["messages"] == 0
    with write_transaction():  # the events are past RECORD_RETENTION_DAYS
        execute("UPDATE inbound_events SET received_at = 1000")
    prune_records(settings)
    assert get(mounted_client, "/api/timeline")["events"] == []


def test_the_migration_indexes_and_counts_what_was_there_before_it(settings, empty_database_url):
    from shared.store.db import open_database

    open_database(settings.__class__(**{**settings.__dict__, "database_url": empty_database_url}))
    migrate(target=7)
    with write_transaction():
        execute("INSERT INTO sessions (id, agent_id) VALUES ('ses_old', 'veteran')")
        execute("INSERT INTO messages (type, content, parts, session_id, role, model_id, cost, tokens, created_at)"
                " VALUES ('chat', 'archived pelican notes', '[]', 'ses_old', 'assistant', 'm', 0.25, ?, 1764000000)",
                ('{"input": 10, "output": 20, "reasoning": 0, "cache": {"read": 1, "write": 2}}',))
        execute("INSERT INTO linear_issues (id, title) VALUES ('iss-old', 'pelican roadmap')")
    migrate()
    documents = execute("SELECT kind, agent_id FROM search_documents ORDER BY kind").fetchall()
    assert documents == [("linear_issue", None), ("message", "veteran")]
    assert execute("SELECT input, output, cache_read, cache_write, cost, messages FROM usage_rollup").fetchall() \
        == [(10, 20, 1, 2, 0.25, 1)]
    database.close()


# Usage ----------------------------------------------------------------------------------------------------

def test_usage_counts_a_streamed_message_once_with_its_latest_figures(mounted_client):
    send(mounted_client, session("ses_a"), session("ses_b", agent_id="builder"))
    for n in range(1, 6):  # re-sent while it streams: the figures grow
        send(mounted_client, message("m1", "ses_a", tokens=tokens(input=100, output=10 * n, read=7), cost=0.01 * n))
    send(mounted_client, message("m2", "ses_b", model="gpt-5", tokens=tokens(input=1, output=2, reasoning=3,
                                                                             write=4), cost=0.5, agent_id="builder"),
         message("u1", "ses_a", role="user"))
    body = get(mounted_client, "/api/usage", group_by="agent")
    assert body["groups"] == [
        {"key": "builder", "input": 1, "output": 2, "reasoning": 3, "cache_read": 0, "cache_write": 4, "cost": 0.5,
         "messages": 1},
        {"key": "openclaw-main", "input": 100, "output": 50, "reasoning": 0, "cache_read": 7, "cache_write": 0,
         "cost": 0.05, "messages": 1}]
    assert body["totals"] == {"input": 101, "output": 52, "reasoning": 3, "cache_read": 7, "cache_write": 4,
                              "cost": 0.55, "messages": 2}
    assert [group["key"] for group in get(mounted_client, "/api/usage", group_by="model")["groups"]] == [
        "gpt-5", "claude-sonnet"]
    assert [group["key"] for group in get(mounted_client, "/api/usage", group_by="session",
                                          agent_id="openclaw-main")["groups"]] == ["ses_a"]
    assert get(mounted_client, "/api/usage", group_by="day")["groups"][0]["key"] == "2025-11-24T00:00:00Z"
    assert get(mounted_client, "/api/usage", group_by="hour", session_id="ses_b")["totals"]["messages"] == 1


def test_usage_selects_whole_hours(mounted_client):
    send(mounted_client, session("ses_a"), *[
        message(f"m{n}", "ses_a", tokens=tokens(output=1), created=T0 + n * HOUR_MS + 60_000) for n in range(4)])
    start = T0 // 1000
    hours = get(mounted_client, "/api/usage", group_by="hour", since=start + 3600 + 1800, until=start + 3 * 3600)
    assert [group["key"] for group in hours["groups"]] == ["2025-11-24T17:00:00Z", "2025-11-24T18:00:00Z"]
    assert hours["totals"]["output"] == 2


@pytest.mark.parametrize(("params", "field"), [
    ({"group_by": "colour"}, "group_by"), ({"since": "10", "until": "5"}, "until"), ({"until": "soon"}, "until")])
def test_bad_usage_parameters_are_a_400_naming_them(mounted_client, params, field):
    assert_canonical_error(mounted_client.simulate_get("/api/usage", params=params, headers=DASHBOARD), 400,
                           "invalid_parameter", field)


def recomputed_usage():
    """The rollup as a full scan of the messages would compute it."""
    totals: dict[tuple, list[float]] = {}
    rows = execute("SELECT session_id, model_id, created_at, tokens, cost FROM messages WHERE role = 'assistant'")
    import json

    for session_id, model_id, created_at, stored_tokens, cost in rows.fetchall():
        figures = json.loads(stored_tokens) if stored_tokens else {}
        cache = figures.get("cache") or {}
        key = (session_id or "", model_id or "", created_at // 3600 * 3600)
        entry = totals.setdefault(key, [0.0] * 7)
        for index, value in enumerate((figures.get("input"), figures.get("output"), figures.get("reasoning"),
                                       cache.get("read"), cache.get("write"), cost, 1)):
            entry[index] += value or 0
    return totals


def stored_rollup():
    rows = execute("SELECT session_id, model_id, hour, input, output, reasoning, cache_read, cache_write, cost,"
                   " messages FROM usage_rollup").fetchall()
    return {tuple(row[:3]): list(row[3:]) for row in rows}


def test_the_rollup_equals_a_recomputation_after_random_re_sends_and_deletions(mounted_client):
    generator = random.Random(14)
    sessions = ["ses_a", "ses_b", "ses_c"]
    send(mounted_client, *[session(s) for s in sessions])
    message_ids = [f"m{n}" for n in range(25)]
    for _ in range(300):
        choice = generator.random()
        message_id = generator.choice(message_ids)
        if choice < 0.75:  # a (re-)send with new figures, sometimes another model, role or hour
            send(mounted_client, message(
                message_id, generator.choice(sessions), role=generator.choice(["assistant"] * 4 + ["user"]),
                model=generator.choice(["claude", "gpt"]), cost=round(generator.uniform(0, 2), 4),
                created=T0 + generator.randrange(3) * HOUR_MS,
                tokens=tokens(*(generator.randrange(5000) for _ in range(5)))))
        elif choice < 0.85:
            send(mounted_client, text_part(message_id, generator.choice(sessions), "part text"))
        elif choice < 0.95:
            send(mounted_client, event("message.removed", {"sessionID": "ses_a", "messageID": message_id}))
        else:  # retention or a person deleting with plain SQL
            with write_transaction():
                execute("DELETE FROM messages WHERE external_id = ?", (message_id,))
    expected, stored = recomputed_usage(), stored_rollup()
    assert stored.keys() == expected.keys()
    for key, figures in expected.items():
        assert stored[key][:5] == figures[:5], key
        assert stored[key][5] == pytest.approx(figures[5]), key
        assert stored[key][6] == figures[6], key
    assert sum(figures[6] for figures in expected.values()) == get(mounted_client, "/api/usage")["totals"]["messages"]


def test_absurd_figures_count_as_nothing_and_never_fail_the_write(mounted_client):
    send(mounted_client, session("ses_a"),
         message("m1", "ses_a", tokens={"input": "many", "output": 1e300, "cache": "none"}, cost=1e300),
         message("m2", "ses_a", tokens={"input": 3, "output": [1], "reasoning": None}, cost=0.5))
    totals = get(mounted_client, "/api/usage")["totals"]
    assert (totals["input"], totals["output"], totals["cost"], totals["messages"]) == (3, 0, 0.5, 2)


# Timeline and activity ------------------------------------------------------------------------------------

def test_the_timeline_lists_accepted_events_newest_first_with_filters(mounted_client):
    send(mounted_client, session("ses_a"), message("m1", "ses_a"), text_part("m1", "ses_a", "hi"),
         event("agent.heartbeat", {"id": "builder"}, agent_id="builder"))
    events = get(mounted_client, "/api/timeline")["events"]
    assert len(events) == 4
    assert {event["type"] for event in events} == {"session.created", "message.updated", "message.part.updated",
                                                    "agent.heartbeat"}
    part = next(event for event in events if event["type"] == "message.part.updated")
    assert (part["session_id"], part["agent_id"], part["known"]) == ("ses_a", "openclaw-main", True)
    assert part["data"]["part"]["text"] == "hi"
    assert [e["type"] for e in get(mounted_client, "/api/timeline", agent_id="builder")["events"]] == [
        "agent.heartbeat"]
    assert len(get(mounted_client, "/api/timeline", session_id="ses_a")["events"]) == 3
    assert {e["type"] for e in get(mounted_client, "/api/timeline", type="session.created,agent.heartbeat")[
        "events"]} == {"session.created", "agent.heartbeat"}


def test_the_timeline_pages_newest_first_without_repeats(mounted_client):
    for n in range(7):
        send(mounted_client, event("agent.heartbeat", {"id": "a"}, id=f"beat-{n}"))
    with write_transaction():  # spread them over time, as they arrive in life
        for n in range(7):
            execute("UPDATE inbound_events SET received_at = ? WHERE id = ?", (1764000000 + n, f"beat-{n}"))
    seen, cursor = [], None
    while True:
        body = get(mounted_client, "/api/timeline", limit=3, **({"cursor": cursor} if cursor else {}))
        seen += [event["id"] for event in body["events"]]
        if (cursor := body["next_cursor"]) is None:
            break
    assert seen == [f"beat-{n}" for n in reversed(range(7))]
    since = get(mounted_client, "/api/timeline", since=1764000002, until=1764000004)["events"]
    assert [event["id"] for event in since] == ["beat-3", "beat-2"]


def test_activity_counts_events_per_agent_per_bucket(mounted_client):
    send(mounted_client, *[event("agent.heartbeat", {"id": "a"}, id=f"a-{n}", agent_id="a") for n in range(5)],
         *[event("agent.heartbeat", {"id": "b"}, id=f"b-{n}", agent_id="b") for n in range(2)])
    base = 1764000000  # a whole hour
    with write_transaction():
        for n in range(5):
            execute("UPDATE inbound_events SET received_at = ? WHERE id = ?", (base + n * 150, f"a-{n}"))
        for n in range(2):
            execute("UPDATE inbound_events SET received_at = ? WHERE id = ?", (base + 30, f"b-{n}"))
    body = get(mounted_client, "/api/activity", bucket="5m", since=base, until=base + 3600)
    assert body["bucket_s"] == 300 and body["total"] == 7
    assert body["agents"] == [
        {"agent_id": "a", "buckets": [{"at": "2025-11-24T16:00:00Z", "events": 2},
                                      {"at": "2025-11-24T16:05:00Z", "events": 2},
                                      {"at": "2025-11-24T16:10:00Z", "events": 1}]},
        {"agent_id": "b", "buckets": [{"at": "2025-11-24T16:00:00Z", "events": 2}]}]
    recent = get(mounted_client, "/api/activity")  # the last hour of minutes: these are older
    assert (recent["bucket"], recent["total"]) == ("1m", 0)


@pytest.mark.parametrize(("path", "params", "field"), [
    ("/api/activity", {"bucket": "2m"}, "bucket"), ("/api/activity", {"since": "0"}, "since"),
    ("/api/activity", {"since": "1764003600", "until": "1764000000"}, "until"),
    ("/api/timeline", {"since": "1764003600", "until": "1764000000"}, "until"),
    ("/api/timeline", {"cursor": "WzFd"}, "cursor"), ("/api/timeline", {"limit": "501"}, "limit")])
def test_bad_timeline_and_activity_parameters_are_a_400_naming_them(mounted_client, path, params, field):
    assert_canonical_error(mounted_client.simulate_get(path, params=params, headers=DASHBOARD), 400,
                           "invalid_parameter", field)
