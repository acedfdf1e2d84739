"""The opencode hook's delivery (hooks/dashboard-client.mjs) and the plugin over it, run by `node`, against
the real bundle under gunicorn: batching, retries, the spool across a dashboard outage and a restart of
the agent's process, and what is never retried."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.databases import long_writer, only_on_sqlite
from tests.flaky_proxy import FlakyProxy
from tests.processes import REPO, free_port, gunicorn
from tests.support import API_KEY, DASHBOARD, DASHBOARD_TOKEN

DRIVER = REPO / "hooks" / "test" / "drive.mjs"
SERVER_ENV = {"DASHBOARD_API_KEY": API_KEY, "DASHBOARD_TOKEN": DASHBOARD_TOKEN}
FAST_RETRIES = {"retryBaseMs": 50, "retryMaxMs": 300}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    database = tmp_path_factory.mktemp("hook") / "dashboard.db"
    with gunicorn(f"sqlite:///{database}", SERVER_ENV) as s:
        s.database = database
        yield s


def drive_env(url: str, spool: Path, key: str = API_KEY) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "HOME": str(spool.parent), "DASHBOARD_URL": url, "DASHBOARD_API_KEY": key,
            "DASHBOARD_SPOOL_DIR": str(spool)}


def start_driver(node: str, env: dict[str, str], steps: list, plugin: bool = False, **options) -> subprocess.Popen:
    """The driver with a DashboardClient of these options, or with none when the steps load the plugin."""
    plan = {"steps": steps} if plugin else {"client": options, "steps": steps}
    return subprocess.Popen([node, str(DRIVER), json.dumps(plan)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(driver: subprocess.Popen, timeout: float = 60) -> tuple[dict, str]:
    stdout, stderr = driver.communicate(timeout=timeout)
    assert driver.returncode == 0, stderr
    return json.loads(stdout.strip().splitlines()[-1]), stderr


def drive(node: str, env: dict[str, str], steps: list, timeout: float = 60, **options) -> tuple[dict, str]:
    return finish(start_driver(node, env, steps, **options), timeout)


def stored_ids(database: Path, ids: list[str]) -> list[str]:
    """The given events' ids as the dashboard stored them, in the order it received them."""
    with sqlite3.connect(database) as db:
        marks = ",".join("?" * len(ids))
        return [row[0] for row in db.execute(f"SELECT id FROM inbound_events WHERE id IN ({marks}) ORDER BY rowid",
                                              ids)]


def segments(spool: Path) -> list[Path]:
    """The spool's segment files (`<start ms>-<pid>-<n>.jsonl`), oldest first; not the dead-letter file."""
    return sorted(spool.glob("[0-9]*-*-*.jsonl"))


def spooled_lines(spool: Path) -> int:
    return sum(len(segment.read_text().splitlines()) for segment in segments(spool))


def error_event(session: str) -> list:
    return ["session.error", {"sessionID": session, "error": {"name": "APIError", "data": {"message": "step $n"}}}]


def posts(proxy: FlakyProxy) -> list[list[str]]:
    return [[event["id"] for event in body["events"]] for path, body in proxy.seen if path == "/api/events"]


def test_many_events_go_in_a_few_batched_requests_and_all_are_stored(node, server, tmp_path):
    with FlakyProxy(server.port) as proxy:
        result, _ = drive(node, drive_env(proxy.url, tmp_path / "spool"),
                          [["repeat", 200, *error_event("ses-batch")], ["close", 10_000]], batchMax=50)

    assert result["results"] == [["close", True]]
    assert [len(batch) for batch in posts(proxy)] == [50, 50, 50, 50]
    assert stored_ids(server.database, result["ids"]) == result["ids"]
    assert result["stats"]["accepted"] == 200


def test_with_its_own_settings_the_hook_sends_up_to_a_thousand_events_a_request_in_order(node, server, tmp_path):
    steps = [["repeat", 1200, *error_event("ses-thousand-$n")], ["close", 60_000]]
    with FlakyProxy(server.port) as proxy:
        result, _ = drive(node, drive_env(proxy.url, tmp_path / "spool"), steps)

    assert result["results"] == [["close", True]]
    assert [len(batch) for batch in posts(proxy)] == [1000, 200]
    assert stored_ids(server.database, result["ids"]) == result["ids"]


def test_a_request_holds_at_most_the_bytes_the_hook_is_told_and_as_many_events_as_fit(node, server, tmp_path):
    limit = 16 * 1024
    event = ["session.error", {"sessionID": "ses-bytes-$n", "error": {"name": "E", "data": {
        "message": {"$repeat": ["long message ", 100]}}}}]
    with FlakyProxy(server.port) as proxy:
        result, _ = drive(node, drive_env(proxy.url, tmp_path / "spool"), [["repeat", 120, *event], ["close", 30_000]],
                          batchMs=60_000, batchMaxBytes=limit)

    assert result["results"] == [["close", True]]
    sizes, batches = proxy.seen_bytes, posts(proxy)
    assert all(size <= limit for size in sizes), sizes
    assert all(size > limit - 1_500 for size in sizes[:-1]), f"each request but the last is full: {sizes}"
    assert [event_id for batch in batches for event_id in batch] == result["ids"]
    assert stored_ids(server.database, result["ids"]) == result["ids"]


def test_a_dashboard_with_a_smaller_body_limit_gets_the_batch_split_and_takes_every_event_in_order(node, tmp_path):
    database, spool = tmp_path / "dashboard.db", tmp_path / "spool"
    event = ["session.error", {"sessionID": "ses-413-$n", "error": {"name": "E", "data": {
        "message": {"$repeat": ["long message ", 100]}}}}]
    with gunicorn(f"sqlite:///{database}", SERVER_ENV | {"DASHBOARD_MAX_BODY_BYTES": "32768"}) as small, \
            FlakyProxy(small.port) as proxy:
        result, _ = drive(node, drive_env(proxy.url, spool), [["repeat", 200, *event], ["close", 60_000]],
                          **FAST_RETRIES)

    assert result["results"] == [["close", True]]
    assert proxy.seen_bytes[0] > 32768, "the hook's own batch is larger than this dashboard takes"
    assert stored_ids(database, result["ids"]) == result["ids"]
    assert dead_letters(spool) == [] and result["stats"]["dropped"] == 0


def test_events_a_moment_apart_wait_for_each_other_and_share_one_request(node, server, tmp_path):
    steps = [["send", *error_event("ses-window")], ["sleep", 30], ["send", *error_event("ses-window")],
             ["sleep", 30], ["send", *error_event("ses-window")], ["flush", 10_000], ["close", 1000]]
    with FlakyProxy(server.port) as proxy:
        result, _ = drive(node, drive_env(proxy.url, tmp_path / "spool"), steps, batchMs=400)

    assert [len(batch) for batch in posts(proxy)] == [3]
    assert stored_ids(server.database, result["ids"]) == result["ids"]


def test_while_the_dashboard_is_down_events_are_spooled_then_delivered_in_order_when_it_starts(node, tmp_path):
    port, spool = free_port(), tmp_path / "spool"
    driver = start_driver(node, drive_env(f"http://127.0.0.1:{port}", spool),
                          [["repeat", 30, *error_event("ses-down")], ["sleep", 300],
                           ["repeat", 10, *error_event("ses-down-later")], ["close", 60_000]], **FAST_RETRIES)
    try:
        deadline = time.monotonic() + 20
        while spooled_lines(spool) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert spooled_lines(spool) == 40, "the events did not reach the spool while the dashboard was down"
        assert driver.poll() is None

        database = tmp_path / "dashboard.db"
        with gunicorn(f"sqlite:///{database}", SERVER_ENV, port=port):
            result, log = finish(driver)
    finally:
        if driver.poll() is None:
            driver.kill()

    assert result["results"] == [["close", True]]
    assert stored_ids(database, result["ids"]) == result["ids"]
    assert not segments(spool), "a delivered spool is removed"
    assert "spooling to" in log and "reachable again" in log


def test_the_spool_outlives_the_agent_process_and_the_next_one_sends_it_first_in_order(node, tmp_path):
    port, spool = free_port(), tmp_path / "spool"
    env = drive_env(f"http://127.0.0.1:{port}", spool)
    # Two runs while the dashboard is down: one that closes (its batch is spooled when delivery fails)
    # and one that just exits with events still waiting in memory (the exit handler spools them).
    first, _ = drive(node, env, [["repeat", 10, *error_event("ses-restart-1")], ["close", 500]], **FAST_RETRIES)
    second, _ = drive(node, env, [["repeat", 5, *error_event("ses-restart-2")], ["exit"]], batchMs=60_000)
    assert first["results"] == [["close", False]]
    assert spooled_lines(spool) == 15

    database = tmp_path / "dashboard.db"
    with gunicorn(f"sqlite:///{database}", SERVER_ENV, port=port):
        third, log = drive(node, env, [["repeat", 5, *error_event("ses-restart-3")], ["close", 20_000]],
                           **FAST_RETRIES)

    assert third["results"] == [["close", True]]
    everything = first["ids"] + second["ids"] + third["ids"]
    assert stored_ids(database, everything) == everything
    assert "adopted" in log
    assert not segments(spool)


def test_a_lost_answer_and_a_503_are_retried_with_the_same_id_after_retry_after(node, server, tmp_path):
    event = ["session.error", {"sessionID": "ses-hook-lost", "error": {"name": "APIError", "data": {"message": "x"}}}]
    with FlakyProxy(server.port, plan=["lose_answer", (503, {"Retry-After": "1"})]) as proxy:
        result, _ = drive(node, drive_env(proxy.url, tmp_path / "spool"), [["send", *event], ["close", 20_000]],
                          **FAST_RETRIES)

    assert result["results"] == [["close", True]]
    assert posts(proxy) == [result["ids"]] * 3
    assert proxy.seen_at[2] - proxy.seen_at[1] >= 1.0, "Retry-After: 1 was not respected"
    assert result["stats"]["duplicates"] == 1
    status, body = server.request("GET", "/api/msgs?type=error&session_id=ses-hook-lost", headers=DASHBOARD)
    assert status == 200 and len(body["messages"]) == 1


def test_a_422_drops_only_the_event_it_names_and_is_not_retried(node, server, tmp_path):
    good = ["session.error", {"sessionID": "ses-hook-422", "error": {"name": "E", "data": {"message": "$n"}}}]
    bad = ["todo.updated", {"sessionID": "ses-hook-422", "todos": [{"id": "1"}]}]  # a todo without content
    with FlakyProxy(server.port) as proxy:
        result, log = drive(node, drive_env(proxy.url, tmp_path / "spool"),
                            [["send", *good], ["send", *bad], ["send", *good], ["close", 10_000]], **FAST_RETRIES)

    first, bad_id, last = result["ids"]
    assert result["results"] == [["close", True]]
    assert posts(proxy) == [[first, bad_id, last], [first, last]]
    assert stored_ids(server.database, result["ids"]) == [first, last]
    assert result["stats"]["dropped"] == 1
    assert "answered 422" in log and "events[1].data.todos[0].content" in log
    assert not segments(tmp_path / "spool")


def test_a_wrong_key_is_logged_and_dropped_not_spooled_and_the_key_is_never_logged(node, server, tmp_path):
    wrong_key = "not-the-agent-key-0123456789"
    with FlakyProxy(server.port) as proxy:
        result, log = drive(node, drive_env(proxy.url, tmp_path / "spool", key=wrong_key),
                            [["repeat", 3, *error_event("ses-hook-401")], ["close", 10_000]], **FAST_RETRIES)

    assert len(posts(proxy)) == 1
    assert result["stats"]["dropped"] == 3
    assert "answered 401" in log and wrong_key not in log
    assert not segments(tmp_path / "spool")


def test_the_opencode_plugin_maps_bus_events_and_tool_hooks_into_the_ingest_contract(node, server, tmp_path):
    session = {"id": "ses_plugin", "title": "Fix the build", "directory": "/work/shop",
               "time": {"created": 1764064800000, "updated": 1764064800000}}

    def part(text: str) -> dict:
        return {"event": {"type": "message.part.updated", "properties": {"part": {
            "id": "prt_1", "messageID": "msg_1", "sessionID": "ses_plugin", "type": "text", "text": text}}}}

    steps = [
        ["plugin", {"directory": "/work/shop", "worktree": "/work/shop"}],
        ["hook", "event", {"event": {"type": "session.created", "properties": {"info": session}}}],
        *(["hook", "event", part(text)] for text in ("Look", "Looking at", "Looking at it")),
        ["hook", "event", {"event": {"type": "tui.toast.show", "properties": {"message": "hi"}}}],
        ["hook", "event", {"event": {"type": "permission.updated", "properties": {
            "id": "per_1", "sessionID": "ses_plugin", "type": "bash", "title": "Run rm -rf build"}}}],
        ["hook", "tool.execute.before", {"tool": "bash", "sessionID": "ses_plugin", "callID": "call_1"},
         {"args": {"command": "make"}}],
        ["hook", "tool.execute.after", {"tool": "bash", "sessionID": "ses_plugin", "callID": "call_1"},
         {"title": "make", "output": "x" * 20_000, "metadata": {}}],
        ["close", 10_000],
    ]
    with FlakyProxy(server.port) as proxy:
        result, _ = drive(node, drive_env(proxy.url, tmp_path / "spool"), steps, plugin=True)

    assert result["results"] == [["second load hooks", []], ["close", True]]
    sent = [event for _, body in proxy.seen for event in body["events"]]
    assert [event["type"] for event in sent] == [
        "session.created", "message.part.updated", "permission.asked", "tool.execute.before", "tool.execute.after"]
    assert {event["agent_id"] for event in sent} == {"opencode-shop"}
    assert sent[0]["data"] == {"info": session}  # opencode's properties, unchanged
    assert sent[1]["data"]["part"]["text"] == "Looking at it"  # the latest snapshot of the streamed part
    assert len(sent[4]["data"]["output"]) < 8_100
    status, body = server.request("GET", "/api/sess/ses_plugin", headers=DASHBOARD)
    assert status == 200, body
    assert body["session"]["agent_id"] == "opencode-shop"
    assert [m["content"] for m in body["messages"] if m["type"] == "chat"] == ["Looking at it"]


def test_the_spool_is_bounded_by_dropping_the_oldest_events(node, tmp_path):
    spool = tmp_path / "spool"
    result, log = drive(node, drive_env(f"http://127.0.0.1:{free_port()}", spool),
                        [["repeat", 300, *error_event("ses-bounded")], ["close", 300]],
                        spoolMaxBytes=16_384, **FAST_RETRIES)

    kept = [json.loads(line)["id"] for segment in segments(spool) for line in segment.read_text().splitlines()]
    assert sum(segment.stat().st_size for segment in segments(spool)) <= 16_384
    assert 0 < len(kept) < 300
    assert kept == result["ids"][-len(kept):], "the newest events are kept, in order"
    assert result["stats"]["spoolDropped"] == 300 - len(kept)
    assert "dropped" in log and "oldest events" in log


def test_other_calls_to_the_dashboard_get_the_same_retries_and_a_clear_refusal(node, server, tmp_path):
    with FlakyProxy(server.port, plan=[(503, {"Retry-After": "0"}), (429, {})]) as proxy:
        result, _ = drive(node, drive_env(proxy.url, tmp_path / "spool"),
                          [["get", "/api/health", 5], ["get", "/api/agents", 5], ["close", 1000]], **FAST_RETRIES)

    health, refused, _ = result["results"]
    assert health[0] == "get" and health[1]["status"] == "ok"
    assert refused[:2] == ["get failed", 401]  # the agents' key is not the dashboard token: final, not retried
    assert [path for path, _ in proxy.seen] == ["/api/health"] * 3 + ["/api/agents"]


def test_the_library_parts_that_need_no_server(node):
    """hooks/test/*.test.mjs under `node --test`: backoff, Retry-After, the spool's files, and delivery
    against a stand-in in the same process (order, splitting, dead letters, outages, the size cut)."""
    unit_tests = sorted(str(path) for path in (REPO / "hooks" / "test").glob("*.test.mjs"))
    assert len(unit_tests) >= 2
    done = subprocess.run([node, "--test", *unit_tests], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "# fail 0" in done.stdout


def dead_letters(spool: Path) -> list[dict]:
    """The dead-letter file's lines: {"at", "error", "event"}; none when there is no file."""
    path = spool / "dead-letters.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_an_event_the_dashboard_always_fails_on_is_dead_lettered_and_the_later_events_still_arrive(
        node, server, tmp_path):
    # Two sessions, their events interleaved; the dashboard answers 500 to any batch holding `poison`.
    steps, sessions = [], {"ses-poison-a": [], "ses-poison-b": []}
    for n in range(30):
        session = "ses-poison-a" if n % 3 else "ses-poison-b"
        event_id = f"evt_poison_test_{n:02d}"
        sessions[session].append(event_id)
        data = ({"sessionID": session, "error": {"name": "E", "data": {}}} if n % 5 == 3
                else {"sessionID": session, "status": {"type": "busy" if n < 29 else "idle"}})
        steps.append(["send", "session.error" if n % 5 == 3 else "session.status", data, {"id": event_id}])
    poison = "evt_poison_test_13"
    steps.append(["close", 60_000])
    spool = tmp_path / "spool"
    with FlakyProxy(server.port, failing_ids=frozenset({poison})) as proxy:
        result, log = drive(node, drive_env(proxy.url, spool), steps, batchMs=60_000, **FAST_RETRIES)

    assert result["results"] == [["close", True]]
    sent = result["ids"]
    assert sent == [f"evt_poison_test_{n:02d}" for n in range(30)]
    stored = stored_ids(server.database, sent)
    assert stored == [event_id for event_id in sent if event_id != poison], "everything else, in order"
    for session, ids in sessions.items():
        assert [event_id for event_id in stored if event_id in ids] == [i for i in ids if i != poison], session

    [letter] = dead_letters(spool)
    assert letter["event"]["id"] == poison
    assert letter["error"]["status"] == 500 and letter["error"]["code"] == "internal_error"
    assert letter["error"]["tries"] == 5  # DASHBOARD_DEAD_LETTER_TRIES' default
    assert log.count(poison) == 1, log
    assert result["stats"]["deadLettered"] == 1
    alone = [batch for batch in posts(proxy) if batch == [poison]]
    assert len(alone) == 5
    # Found by halving (a few posts for each of log2(30) < 5 levels), not by sending events one by one.
    assert len(posts(proxy)) - len(alone) <= 3 * 5, posts(proxy)
    assert not segments(spool)
    status, body = server.request("GET", "/api/sess/ses-poison-a", headers=DASHBOARD)
    assert status == 200 and body["session"]["status"] == "idle"


def test_a_dashboard_failing_on_every_event_for_a_while_dead_letters_nothing(node, server, tmp_path):
    spool = tmp_path / "spool"
    steps = [["repeat", 12, *error_event("ses-all-500")], ["close", 60_000]]
    with FlakyProxy(server.port, plan=[(500, {})] * 25) as proxy:
        result, _ = drive(node, drive_env(proxy.url, spool), steps, **FAST_RETRIES)

    assert result["results"] == [["close", True]]
    assert len(posts(proxy)) > 25
    assert stored_ids(server.database, result["ids"]) == result["ids"]
    assert dead_letters(spool) == []
    assert result["stats"]["deadLettered"] == 0


@only_on_sqlite("another process holds SQLite's lock on the file")
def test_a_locked_database_is_waited_out_in_order_without_splitting_or_dead_letters(node, tmp_path):
    database, spool = tmp_path / "dashboard.db", tmp_path / "spool"
    env = SERVER_ENV | {"DATABASE_BUSY_TIMEOUT_MS": "300"}
    with gunicorn(f"sqlite:///{database}", env) as server, FlakyProxy(server.port) as proxy:
        with long_writer(database):
            driver = start_driver(node, drive_env(proxy.url, spool),
                                  [["repeat", 20, *error_event("ses-locked")], ["close", 60_000]], **FAST_RETRIES)
            deadline = time.monotonic() + 30
            while len(posts(proxy)) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
        result, _ = finish(driver)

    assert result["results"] == [["close", True]]
    batches = posts(proxy)
    # The first two came while the lock was held (503 with Retry-After); the third perhaps too.
    assert len(batches) >= 3 and all(batch == result["ids"] for batch in batches), "the whole batch each time"
    assert stored_ids(database, result["ids"]) == result["ids"]
    assert dead_letters(spool) == []


def test_the_plugin_keeps_a_sessions_order_so_it_ends_in_the_state_opencode_left_it(node, server, tmp_path):
    def status(state: str) -> list:
        return ["hook", "event", {"event": {"type": "session.status", "properties": {
            "sessionID": "ses_order", "status": {"type": state}}}}]

    steps = [["plugin", {"directory": "/work/shop", "worktree": "/work/shop"}],
             ["hook", "event", {"event": {"type": "session.created", "properties": {"info": {
                 "id": "ses_order", "title": "Order", "directory": "/work/shop",
                 "time": {"created": 1764064800000, "updated": 1764064800000}}}}}],
             status("busy"),
             ["hook", "event", {"event": {"type": "session.error", "properties": {
                 "sessionID": "ses_order", "error": {"name": "APIError", "data": {"message": "rate limited"}}}}}],
             status("busy"), status("idle"), ["close", 10_000]]
    with FlakyProxy(server.port) as proxy:
        result, _ = drive(node, drive_env(proxy.url, tmp_path / "spool"), steps, plugin=True)

    assert result["results"][-1] == ["close", True]
    sent = [(event["type"], event["data"].get("status")) for _, body in proxy.seen for event in body["events"]]
    assert sent == [("session.created", None), ("session.status", {"type": "busy"}), ("session.error", None),
                    ("session.status", {"type": "idle"})]
    status, body = server.request("GET", "/api/sess/ses_order", headers=DASHBOARD)
    assert status == 200 and body["session"]["status"] == "idle"


def test_a_two_megabyte_output_is_cut_by_the_hook_with_its_size_kept(node, server, tmp_path):
    line, lines = "line of a huge build log\n", 90_000  # 2.25 MB
    part = {"id": "prt_huge", "messageID": "msg_huge", "sessionID": "ses_huge", "type": "text",
            "text": {"$repeat": [line, lines]}}
    steps = [["send", "message.part.updated", {"part": part}], ["close", 10_000]]
    with FlakyProxy(server.port) as proxy:
        result, _ = drive(node, drive_env(proxy.url, tmp_path / "spool"), steps)

    assert result["results"] == [["close", True]]
    [(_, body)] = proxy.seen
    [event] = body["events"]
    assert event["truncated"] == {"data.part.text": len(line) * lines}
    assert len(json.dumps(body)) < 40_000
    status, session = server.request("GET", "/api/sess/ses_huge", headers=DASHBOARD)
    assert status == 200
    [message] = [m for m in session["messages"] if m["type"] == "chat"]
    assert 32_000 < len(message["content"].encode()) <= 32 * 1024
    assert message["content"].startswith("line of a huge build log")
