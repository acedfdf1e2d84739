"""The real opencode, end to end: `opencode serve` (the pinned npm release, tests/real_opencode.py) with the
plugin installed exactly as the README tells a user, a scripted model on loopback (tests/scripted_model.py),
the real plugin, the dashboard under real gunicorn and its Temporal worker on a real dev server.

One opencode session is played once for the module (`run`), then each test asserts one thing the dashboard
shows through its API. The script: a todo list written, a script written, a shell command that needs
permission to run it (opencode asks; the dashboard answers; the command runs), a question to the person
(opencode's question tool, answered from the dashboard too), a sub-agent (opencode's task tool) that
reports back, the todo list updated, a closing text; then a second prompt whose model call fails (HTTP 400),
which opencode reports as the session's error.

Measured and printed at the end of the run (`figures`): events opencode emitted, accepted by the
dashboard and visible through its API; from opencode's permission prompt to the dashboard showing it;
from the answer to opencode going on.

`pytest -m opencode` runs these alone. They need opencode (`make opencode`); without it they skip, saying
so — except under CI=1, where they fail.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests import scripted_model as script
from tests.database_rows import reading
from tests.databases import database_url_in
from tests.processes import REPO, Server, gunicorn, temporal_worker
from tests.real_opencode import (
    Opencode,
    Seen,
    install_plugin_as_the_readme_says,
    isolated_env,
    opencode_binary,
    opencode_serve,
    preinstall_plugin_package,
    write_project,
)
from tests.support import API_KEY, DASHBOARD, DASHBOARD_TOKEN

pytestmark = pytest.mark.opencode

PROJECT = "shop"  # the project folder: the plugin reports its events as agent `opencode-shop`
AGENT_ID = f"opencode-{PROJECT}"
PROMPT = "Write a small script, run it, ask me which shell it targets, and have a sub-agent check it."
TURN_TIMEOUT_S = 240  # one model turn of opencode's, on a loaded machine (a few seconds when idle)
SHOWN_TIMEOUT_S = 120  # the dashboard catching up with what the plugin sent (and its workflow noticing)


def plugin_forwards() -> set[str]:
    """The opencode event kinds the plugin sends on, as hooks/dashboard-hook.js lists them (FORWARDED)."""
    source = (REPO / "hooks" / "dashboard-hook.js").read_text()
    listed = re.search(r"const FORWARDED = new Set\(\[(.*?)\]\)", source, flags=re.DOTALL)
    assert listed, "hooks/dashboard-hook.js no longer lists FORWARDED"
    return set(re.findall(r'"([a-z0-9.]+)"', listed.group(1)))


@dataclass
class Run:
    """What one played session left: opencode's events, the dashboard's rows and answers, the timings."""

    dashboard: Server
    opencode: Opencode
    model: script.ScriptedModel
    database_url: str
    session_id: str
    install_commands: list[str]
    timings: dict[str, float] = field(default_factory=dict)
    prompts: dict[str, dict[str, Any]] = field(default_factory=dict)  # permission/question: task, opencode's reply
    notifications: list[dict[str, Any]] = field(default_factory=list)

    def get(self, path: str) -> dict[str, Any]:
        status, body = self.dashboard.request("GET", path, headers=DASHBOARD)
        assert status == 200, (path, status, body)
        return body

    def emitted(self, type_: str | None = None, session_id: str | None = None) -> list[dict[str, Any]]:
        """opencode's own events (its /event stream), of a type and about a session if given."""
        assert self.opencode.events is not None
        return [seen.event for seen in self.opencode.events.events(type_)
                if session_id is None or session_of(seen.event) == session_id]

    def session_messages(self, session_id: str) -> list[dict[str, Any]]:
        return self.get(f"/api/msgs?session_id={session_id}&limit=500")["messages"]

    def child_session_id(self) -> str:
        [child] = {e["properties"]["info"]["id"] for e in self.emitted("session.created")
                   if e["properties"]["info"].get("parentID") == self.session_id}
        return child


def session_of(event: dict[str, Any]) -> str | None:
    properties = event.get("properties") or {}
    return (properties.get("sessionID") or (properties.get("info") or {}).get("sessionID")
            or (properties.get("part") or {}).get("sessionID") or (properties.get("info") or {}).get("id"))


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.1,
             report: Callable[[], Any] | None = None) -> Any:
    """`check()` once it is truthy; after `timeout` s, a failure naming `what` (and what `report()` says)."""
    deadline = time.monotonic() + timeout
    while True:
        if result := check():
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}"
                                 + (f": {report()}" if report else ""))
        time.sleep(interval)


@pytest.fixture(scope="module")
def opencode() -> Path:
    return opencode_binary()


@pytest.fixture(scope="module")
def run(opencode, temporal, postgres_databases, tmp_path_factory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("real-opencode")
    home = tmp / "home"
    home.mkdir()
    database_url = database_url_in(tmp, postgres_databases)
    monitoring = {"TEMPORAL_ADDRESS": temporal.address, "TEMPORAL_TASK_QUEUE": f"test-{uuid.uuid4().hex}",
                  "BLOCKED_AFTER_HIGH_S": "1", "BLOCKED_AFTER_LOW_S": "2", "MONITOR_INTERVAL_S": "0.2"}
    dashboard_env = {"DASHBOARD_API_KEY": API_KEY, "DASHBOARD_TOKEN": DASHBOARD_TOKEN, **monitoring}
    with gunicorn(database_url, dashboard_env) as dashboard, \
            temporal_worker(database_url, dashboard_env, tmp / "worker.log"), \
            script.ScriptedModel() as model:
        env = isolated_env(home)
        commands = install_plugin_as_the_readme_says(env)
        preinstall_plugin_package(home / ".config" / "opencode")
        write_project(tmp / PROJECT, model.base_url, permission={"bash": "ask"})
        env |= {"DASHBOARD_URL": f"http://127.0.0.1:{dashboard.port}", "DASHBOARD_API_KEY": API_KEY}
        with opencode_serve(opencode, tmp / PROJECT, env, tmp / "opencode.log") as server:
            session = server.call("POST", "/session", {})  # untitled, as in the TUI: opencode asks the model
            played = Run(dashboard, server, model, database_url, session["id"], commands)
            try:
                play(played)
            except BaseException:
                print_logs(played, tmp)
                raise
            yield played


def print_logs(played: Run, tmp: Path) -> None:
    for name in ("opencode.log", "worker.log"):
        path = tmp / name
        if path.exists():
            print(f"----- {name} (last 8 000 characters)\n{path.read_text(errors='replace')[-8000:]}")
    print(f"----- gunicorn log (last 8 000 characters)\n{played.dashboard.log()[-8000:]}")
    print(f"----- opencode's events: {Counter(seen.type for seen in played.opencode.events.events())}")
    print(f"----- model replies: {played.model.replies}")


def play(run: Run) -> None:
    """The whole script, each step waiting on what opencode says it did; its prompts answered from the
    dashboard only."""
    events = run.opencode.events
    sid = run.session_id
    run.opencode.call("POST", f"/session/{sid}/prompt_async", {"parts": [{"type": "text", "text": PROMPT}]})

    asked = events.wait_for(lambda e: e.type == "permission.asked" and e.properties.get("sessionID") == sid,
                            TURN_TIMEOUT_S, "the bash permission prompt")
    task, answered_at = answer_from_dashboard(run, asked, {"permission": True}, "permission")
    replied = events.wait_for(lambda e: e.type == "permission.replied"
                              and e.properties.get("requestID") == asked.properties["id"],
                              TURN_TIMEOUT_S, "opencode taking the dashboard's answer to its permission prompt")
    ran = events.wait_for(lambda e: bash_part_completed(e, asked.properties["tool"]["callID"]),
                          TURN_TIMEOUT_S, "the bash command's result")
    run.timings["permission answered on the dashboard → opencode's permission.replied (s)"] = replied.at - answered_at
    run.timings["permission answered on the dashboard → the command's output (s)"] = ran.at - answered_at
    run.prompts["permission"] = {"task": task, "replied": replied.event}

    question = events.wait_for(lambda e: e.type == "question.asked" and e.properties.get("sessionID") == sid,
                               TURN_TIMEOUT_S, "the question to the person")
    task, answered_at = answer_from_dashboard(run, question, {"choice": "bash"}, "question")
    replied = events.wait_for(lambda e: e.type == "question.replied" and e.properties.get("requestID")
                              == question.properties["id"], TURN_TIMEOUT_S,
                              "opencode taking the dashboard's answer to its question")
    run.timings["question answered on the dashboard → opencode's question.replied (s)"] = replied.at - answered_at
    run.prompts["question"] = {"task": task, "replied": replied.event}

    events.wait_for(lambda e: text_part_is(e, sid, script.FINAL_TEXT), TURN_TIMEOUT_S, "the closing text")
    first_turn_done = events.wait_for(lambda e: idle_after(e, sid, question.at), TURN_TIMEOUT_S,
                                      "the session idle after its first turn")

    run.opencode.call("POST", f"/session/{sid}/prompt_async",
                      {"parts": [{"type": "text", "text": f"Now this. {script.FAIL_MARK}"}]})
    events.wait_for(lambda e: e.type == "session.error" and e.properties.get("sessionID") == sid,
                    TURN_TIMEOUT_S, "the failed call's session.error")
    events.wait_for(lambda e: idle_after(e, sid, first_turn_done.at), TURN_TIMEOUT_S,
                    "the session idle after the failed call")
    # The plugin keeps each session's order, and never merges a session.idle with anything: once every
    # session.idle opencode emitted has arrived, so has everything before it.
    wait_for(lambda: idles_missing(run) == {}, SHOWN_TIMEOUT_S,
             "the dashboard accepting every session.idle opencode emitted", report=lambda: idles_missing(run))


def idles_missing(run: Run) -> dict[str, int]:
    """Per session, how many of the session.idle events opencode emitted the dashboard has not accepted."""
    emitted = Counter(e["properties"]["sessionID"] for e in run.emitted("session.idle"))
    with reading(run.database_url) as db:
        rows = db.execute("SELECT data FROM inbound_events WHERE type = 'session.idle'").fetchall()
    accepted = Counter((json.loads(data) if isinstance(data, str) else data).get("sessionID") for (data,) in rows)
    return {session: count for session, count in (emitted - accepted).items() if count > 0}


def answer_from_dashboard(run: Run, asked: Seen, answer: dict[str, Any], what: str) -> tuple[dict[str, Any], float]:
    """Wait for the dashboard to show opencode's prompt as the pending question of the session's task and
    for a new notification, then answer it there, as a person would. The task as the answer left it, and
    when (time.monotonic()) the answer was sent."""
    request_id = asked.properties["id"]
    prompted = run.opencode.asked_at(request_id) or asked.wall  # opencode's log line, else its event
    task = wait_for(lambda: task_asking(run, request_id), SHOWN_TIMEOUT_S,
                    f"the dashboard showing opencode's {what} prompt {request_id} on a blocked task", interval=0.05)
    run.timings[f"{what} prompt → shown on the dashboard (s)"] = time.time() - prompted
    notification = wait_for(lambda: new_blocked_notification(run, task["id"]), SHOWN_TIMEOUT_S,
                            f"a notification that the task waits on the {what}", interval=0.05)
    run.timings[f"{what} prompt → the dashboard's notification (s)"] = time.time() - prompted
    run.notifications.append(notification)
    answered_at = time.monotonic()
    status, body = run.dashboard.request(
        "POST", f"/api/agent/{task['agent_id']}/tasks/{task['id']}/unblock", answer, headers=DASHBOARD)
    assert status == 202, (status, body)
    return body["task"], answered_at


def task_asking(run: Run, request_id: str) -> dict[str, Any] | None:
    """The agent's blocked task whose pending question is opencode's prompt `request_id`."""
    status, body = run.dashboard.request("GET", f"/api/agent/{AGENT_ID}/tasks?status=blocked", headers=DASHBOARD)
    if status != 200:  # the agent not known yet
        return None
    return next((task for task in body["tasks"] if (task.get("question") or {}).get("request_id") == request_id
                 and task["question"]["status"] == "pending"), None)


def new_blocked_notification(run: Run, task_id: str) -> dict[str, Any] | None:
    """A `blocked` notification of the task that was not there for an earlier prompt."""
    seen = {notification["id"] for notification in run.notifications}
    notifications = run.get(f"/api/notifications?task_id={task_id}&trigger=blocked")["notifications"]
    return next((notification for notification in notifications if notification["id"] not in seen), None)


def bash_part_completed(seen: Seen, call_id: str) -> bool:
    part = seen.properties.get("part") or {}
    return (seen.type == "message.part.updated" and part.get("type") == "tool" and part.get("callID") == call_id
            and (part.get("state") or {}).get("status") == "completed")


def text_part_is(seen: Seen, session_id: str, text: str) -> bool:
    part = seen.properties.get("part") or {}
    return (seen.type == "message.part.updated" and part.get("sessionID") == session_id
            and part.get("type") == "text" and part.get("text") == text)


def idle_after(seen: Seen, session_id: str, after: float) -> bool:
    return seen.type == "session.idle" and seen.properties.get("sessionID") == session_id and seen.at > after


def error_messages(run: Run) -> list[dict[str, Any]]:
    return [m for m in run.session_messages(run.session_id) if m["type"] == "error"]


# What the dashboard shows --------------------------------------------------------------------------------

def test_the_plugin_installed_as_the_readme_says_loads_in_opencode_and_every_event_is_taken(run):
    assert any(command.startswith("cp hooks/") for command in run.install_commands), run.install_commands
    log = run.opencode.log()
    assert "failed to load plugin" not in log.lower(), log
    assert not re.search(r"\[dashboard-hook\] (dropped|dead-lettered)", log), log
    assert posts_to_events(run) and all(status == 202 for status in posts_to_events(run)), posts_to_events(run)


def posts_to_events(run: Run) -> list[int]:
    """The status of every `POST /api/events` the dashboard answered, from its access log."""
    statuses = []
    for line in run.dashboard.log().splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict) and entry.get("path") == "/api/events" and entry.get("method") == "POST":
                statuses.append(entry["status"])
    return statuses


def test_the_session_and_its_sub_agent_are_shown_as_a_tree(run):
    body = run.get(f"/api/sess/{run.session_id}")
    assert body["session"]["name"] == script.TITLE  # the title opencode asked the model for
    assert body["session"]["agent_id"] == AGENT_ID
    child_id = run.child_session_id()
    child = run.get(f"/api/sess/{child_id}")["session"]
    assert child["parent_id"] == run.session_id
    assert child["name"].startswith(script.SUBAGENT_TASK["description"])
    profile = run.get(f"/api/agent/{AGENT_ID}/profile")
    assert child["agent_id"] in [agent["id"] for agent in profile["children"]]
    sub_agent = run.get(f"/api/agent/{child['agent_id']}/profile")
    assert sub_agent["agent"]["type"] == "sub-agent" and sub_agent["parent"]["id"] == AGENT_ID
    sessions = run.get(f"/api/sess?agent_id={AGENT_ID}")["sessions"]
    assert run.session_id in [session["id"] for session in sessions]


def test_messages_carry_their_model_tokens_and_cost_as_opencode_counted_them(run):
    chats = {m["external_id"]: m for m in run.session_messages(run.session_id) if m["type"] == "chat"}
    assert PROMPT in [m["content"] for m in chats.values() if m["role"] == "user"]
    assistant = latest_infos(run, run.session_id, role="assistant")
    answered = {message_id: info for message_id, info in assistant.items() if info.get("finish")}
    assert len(answered) >= 5, assistant  # one per step of the script, each with the model's usage
    for message_id, info in assistant.items():
        shown = chats[message_id]
        assert shown["role"] == "assistant"
        assert (shown["provider_id"], shown["model_id"]) == ("scripted", "scripted-1")
        assert shown["tokens"] == info["tokens"]
        assert shown["cost"] == pytest.approx(info["cost"])
    for info in answered.values():  # the model's usage, priced as opencode.json says
        assert info["tokens"]["output"] == script.REPLY_USAGE["completion_tokens"]
        assert info["tokens"]["input"] > 0 and info["cost"] > 0
    assert script.FINAL_TEXT in [m["content"] for m in chats.values()]


def latest_infos(run: Run, session_id: str, role: str) -> dict[str, dict[str, Any]]:
    """opencode's last word on each of the session's messages of that role, by message id."""
    infos = {}
    for event in run.emitted("message.updated", session_id):
        info = event["properties"]["info"]
        if info["role"] == role:
            infos[info["id"]] = info
    return infos


def test_the_todo_list_is_shown_as_opencode_last_wrote_it(run):
    todos = run.get(f"/api/todos?session_id={run.session_id}")["todos"]
    shown = sorted((todo["position"], todo["content"], todo["status"], todo["priority"]) for todo in todos)
    assert [row[1:] for row in shown] == [(todo["content"], todo["status"], todo["priority"])
                                          for todo in script.FINAL_TODOS]


def test_each_tool_call_is_shown_with_its_outcome(run):
    shown = {m["external_id"]: m for m in run.session_messages(run.session_id) if m["type"] == "tool"}
    calls = {part["callID"]: part for part in latest_parts(run, run.session_id).values() if part["type"] == "tool"}
    assert sorted(part["tool"] for part in calls.values()) == sorted(step.name for step in script.MAIN_SCRIPT)
    for call_id, part in calls.items():
        [call] = shown[f"tool:{call_id}"]["parts"]
        assert (call["tool"], call["state"]) == (part["tool"], "completed"), call
        assert shown[f"tool:{call_id}"]["completed_at"] is not None
        if part["tool"] == "bash":  # the command ran: it was allowed
            assert "scripted-bash-ran" in call["output"], call
            assert call["args"]["command"] == script.BASH_COMMAND


def latest_parts(run: Run, session_id: str) -> dict[str, dict[str, Any]]:
    """opencode's last word on each of the session's message parts, by part id."""
    return {event["properties"]["part"]["id"]: event["properties"]["part"]
            for event in run.emitted("message.part.updated", session_id)}


def test_the_permission_is_answered_from_the_dashboard_and_opencode_goes_on(run):
    permission = run.prompts["permission"]
    task, asked = permission["task"], permission["task"]["question"]
    assert task["priority"] == "high" and task["agent_id"] == AGENT_ID
    assert asked["request_id"] == permission["replied"]["properties"]["requestID"]
    assert asked["type"] == "permission" and script.BASH_COMMAND in asked["text"]
    assert asked["status"] == "answered" and asked["answer"] == {"permission": True}
    assert asked["answered_by"] == "dashboard-token"  # the dashboard's answer: nobody answered opencode itself
    assert permission["replied"]["properties"]["reply"] == "once"  # what opencode took: allow, this once
    # and because of it the command ran and the session went on (test_each_tool_call_is_shown_with_its_outcome)


def test_the_question_is_answered_from_the_dashboard(run):
    question = run.prompts["question"]
    asked = question["task"]["question"]
    assert asked["request_id"] == question["replied"]["properties"]["requestID"]
    assert asked["type"] == "choice" and asked["choices"] == [o["label"] for o in script.QUESTION["options"]]
    assert asked["answer"] == {"choice": "bash"} and asked["answered_by"] == "dashboard-token"
    assert question["replied"]["properties"]["answers"] == [["bash"]]


def test_the_turn_is_a_task_that_completes_once_opencode_waits_for_the_person(run):
    turn = run.prompts["permission"]["task"]  # both prompts came in the first turn: one task
    assert run.prompts["question"]["task"]["id"] == turn["id"]
    assert turn["title"] == PROMPT  # titled by the person's prompt
    done = wait_for(lambda: task_in(run, turn["id"], "completed"), SHOWN_TIMEOUT_S, "the turn's task completed",
                    report=lambda: run.get(f"/api/agent/{AGENT_ID}/tasks/{turn['id']}")["task"]["status"])
    assert done["completed_at"] is not None
    wait_for(lambda: run.get(f"/api/notifications?task_id={turn['id']}&trigger=completed")["notifications"],
             SHOWN_TIMEOUT_S, "the completed rules fired for the turn")
    wait_for(lambda: run.get(f"/api/agent/{AGENT_ID}/profile")["agent"]["status"] == "idle", SHOWN_TIMEOUT_S,
             "the agent idle, as its sessions are", report=lambda: run.get(f"/api/agent/{AGENT_ID}/profile")["agent"])


def task_in(run: Run, task_id: str, status: str) -> dict[str, Any] | None:
    task = run.get(f"/api/agent/{AGENT_ID}/tasks/{task_id}")["task"]
    return task if task["status"] == status else None


def test_each_prompt_was_notified_while_opencode_waited(run):
    assert len(run.notifications) == 2
    for notification in run.notifications:
        assert notification["agent_id"] == AGENT_ID and notification["trigger"] == "blocked"


def test_the_file_the_session_wrote_is_shown_on_the_session(run):
    edited = {event["properties"]["file"] for event in run.emitted("file.edited")}
    assert [file for file in edited if file.endswith(f"/{PROJECT}/{script.SCRIPT_FILE}")], edited
    shown = {file["file"] for file in run.get(f"/api/sess/{run.session_id}")["files"]}
    assert edited <= shown, (edited, shown)


def test_the_failed_model_call_is_the_sessions_error(run):
    [error] = error_messages(run)
    assert error["content"].startswith("APIError")
    assert "The scripted model refuses this request" in error["content"]


def test_figures_every_event_opencode_emitted_is_accepted_and_visible(run, figures):
    emitted = Counter(e["type"] for e in run.emitted())
    # The plugin leaves out a diff naming no file (1.18.33 sends `"diff": []` whatever it wrote).
    sent_on = Counter(e["type"] for e in run.emitted() if e["type"] in plugin_forwards()
                      and not (e["type"] == "session.diff" and not (e.get("properties") or {}).get("diff")))
    forwarded = dict(sent_on)
    with reading(run.database_url) as db:
        accepted = Counter(dict(db.execute("SELECT type, COUNT(*) FROM inbound_events GROUP BY type").fetchall()))
    visible, total = visible_entities(run)
    figures("real opencode → plugin → dashboard", {  # recorded first: printed even when an assertion fails
        "opencode events emitted (its /event stream)": f"{sum(emitted.values())} ({dict(emitted)})",
        "of the kinds the plugin forwards": f"{sum(forwarded.values())}; not forwarded:"
                                            f" {sorted(set(emitted) - set(forwarded))}",
        "accepted by the dashboard (inbound_events)": f"{sum(accepted.values())} ({dict(accepted)})",
        "things opencode reported, visible through the API": f"{sum(visible.values())}/{sum(total.values())}"
                                                              f" ({dict(visible)} of {dict(total)})",
        **{name: f"{value:.2f}" for name, value in run.timings.items()},
    })
    # Every kind the plugin forwards reaches the dashboard (coalescing merges snapshots of one thing).
    assert set(forwarded) <= set(accepted), (forwarded, accepted)
    assert visible == total, (visible, total)


def visible_entities(run: Run) -> tuple[Counter, Counter]:
    """Of the sessions, messages, message parts, todo lists and errors opencode reported, how many the API
    shows (in their latest state where it has one)."""
    total, visible = Counter(), Counter()
    sessions = {e["properties"]["info"]["id"] for e in run.emitted("session.created")}
    for session_id in sessions:
        total["sessions"] += 1
        status, _ = run.dashboard.request("GET", f"/api/sess/{session_id}", headers=DASHBOARD)
        visible["sessions"] += status == 200
        shown = {m["external_id"]: m for m in run.session_messages(session_id) if m["external_id"]}
        for role in ("user", "assistant"):
            infos = latest_infos(run, session_id, role)
            total["messages"] += len(infos)
            visible["messages"] += sum(message_id in shown and shown[message_id]["tokens"] == info.get("tokens")
                                       for message_id, info in infos.items())
        parts = latest_parts(run, session_id)
        total["message parts"] += len(parts)
        visible["message parts"] += sum(same_part(part, shown.get(part["messageID"])) for part in parts.values())
        todo_lists = run.emitted("todo.updated", session_id)
        if todo_lists:
            total["todo lists"] += 1
            latest = [todo["content"] for todo in todo_lists[-1]["properties"]["todos"]]
            todos = run.get(f"/api/todos?session_id={session_id}")["todos"]
            visible["todo lists"] += sorted(todo["content"] for todo in todos) == sorted(latest)
    edited = {event["properties"]["file"] for event in run.emitted("file.edited")}
    total["files edited"] = len(edited)
    visible["files edited"] = len(edited & {file["file"] for file in run.get(f"/api/sess/{run.session_id}")["files"]})
    total["errors"] = len(run.emitted("session.error"))
    visible["errors"] = len(error_messages(run))
    return visible, total


def same_part(part: dict[str, Any], message: dict[str, Any] | None) -> bool:
    """The message shows the part as opencode last reported it (its text, or its tool call's state)."""
    stored = next((p for p in (message or {}).get("parts") or [] if p.get("id") == part["id"]), None)
    return stored is not None and stored.get("type") == part["type"] and stored.get("text") == part.get("text") \
        and (stored.get("state") or {}).get("status") == (part.get("state") or {}).get("status")
