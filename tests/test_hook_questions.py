"""The agent's side of human in the loop (hooks/dashboard-questions.mjs), run by `node` against the real
bundle under gunicorn: the agent asks, waits on its inbox, and gets the person's answer — as the
result of `askDashboard`, or, for opencode's own permission and question prompts, as the plugin's call
to opencode's client (a stand-in that records it); the terminal answering first ends the wait."""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import UTC, datetime

from tests import opencode_events as oc
from tests.processes import REPO, gunicorn
from tests.support import AGENT, API_KEY, DASHBOARD, DASHBOARD_TOKEN, event
from tests.temporal_support import wait_for

DRIVER = REPO / "hooks" / "test" / "ask.mjs"
SERVER_ENV = {"DASHBOARD_API_KEY": API_KEY, "DASHBOARD_TOKEN": DASHBOARD_TOKEN}
AGENT_ID = "opencode-hitl"


def agent_env(server, tmp_path, **extra: str) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "DASHBOARD_URL": f"http://127.0.0.1:{server.port}",
            "DASHBOARD_API_KEY": API_KEY, "DASHBOARD_AGENT_ID": AGENT_ID,
            "DASHBOARD_SPOOL_DIR": str(tmp_path / "spool"), **extra}


def ask(node, env, plan) -> subprocess.Popen:
    driver = subprocess.Popen([node, str(DRIVER), json.dumps({"client": {"batchMs": 10}, **plan})], cwd=REPO,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert json.loads(driver.stdout.readline()) == {"asking": True}, driver.stderr.read()
    return driver


def outcome(driver: subprocess.Popen, timeout: float = 30) -> dict:
    stdout, stderr = driver.communicate(timeout=timeout)
    assert driver.returncode == 0, stderr
    return json.loads(stdout.strip().splitlines()[-1])["result"]


def start_task(server, task_id):
    status, _ = server.request("POST", "/api/events", event("task.created", {
        "id": task_id, "agent_id": AGENT_ID, "title": f"Task {task_id}"}, timestamp=datetime.now(UTC).isoformat()),
        AGENT)
    assert status == 202


def pending_question(server, task_id):
    status, body = server.request("GET", f"/api/agent/{AGENT_ID}/tasks/{task_id}", headers=DASHBOARD)
    question = body["task"]["question"] if status == 200 else None
    return question if question and question["status"] == "pending" else None


def unread(server):
    return server.request("GET", f"/api/agent/{AGENT_ID}/inbox", headers=AGENT)[1]["answers"]


def test_an_agent_asks_waits_and_gets_the_answer_as_soon_as_it_is_given(node, settings, tmp_path):
    with gunicorn(settings.database_url, SERVER_ENV) as server:
        start_task(server, "t-ask")
        driver = ask(node, agent_env(server, tmp_path), {"ask": ["t-ask", {
            "type": "choice", "text": "Which tag?", "choices": ["v1.2.0", "v1.3.0-rc1"]}]})
        try:
            question = wait_for(lambda: pending_question(server, "t-ask"), what="the question on the dashboard")
            assert (question["type"], question["choices"]) == ("choice", ["v1.2.0", "v1.3.0-rc1"])
            status, _ = server.request("POST", f"/api/agent/{AGENT_ID}/tasks/t-ask/unblock", {"choice": "v1.3.0-rc1"},
                                       DASHBOARD)
            assert status == 202
            # Before its 30 s long poll would have ended by itself: the answer woke it.
            entry = outcome(driver, timeout=20)
        finally:
            driver.kill()
        assert (entry["task_id"], entry["question_id"], entry["status"], entry["answer"], entry["answered_by"]) == (
            "t-ask", question["id"], "answered", {"choice": "v1.3.0-rc1"}, "dashboard-token")
        assert unread(server) == []  # the hook acknowledged it


def test_an_answer_to_an_earlier_question_is_not_taken_for_the_new_ones(node, settings, tmp_path):
    with gunicorn(settings.database_url, SERVER_ENV) as server:
        start_task(server, "t-twice")
        server.request("POST", "/api/events", event("task.updated", {
            "id": "t-twice", "status": "blocked", "question": {"type": "question", "text": "First?"}},
            agent_id=AGENT_ID, timestamp=datetime.now(UTC).isoformat()), AGENT)
        server.request("POST", f"/api/agent/{AGENT_ID}/tasks/t-twice/unblock", {"response": "old"}, DASHBOARD)
        assert len(unread(server)) == 1  # never picked up (say the agent restarted)
        driver = ask(node, agent_env(server, tmp_path), {"ask": ["t-twice", {"type": "question", "text": "Second?"}]})
        try:
            wait_for(lambda: (q := pending_question(server, "t-twice")) and q["text"] == "Second?")
            server.request("POST", f"/api/agent/{AGENT_ID}/tasks/t-twice/unblock", {"response": "new"}, DASHBOARD)
            entry = outcome(driver)
        finally:
            driver.kill()
        assert entry["answer"] == {"response": "new"}
        assert unread(server) == []


def test_a_question_nobody_answers_in_time_comes_back_timed_out(node, temporal, settings, db, tmp_path):
    fast = temporal.settings_for(settings, monitor_interval_s=0.2)
    env = SERVER_ENV | {"TEMPORAL_ADDRESS": fast.temporal_address, "TEMPORAL_TASK_QUEUE": fast.temporal_task_queue,
                        "MONITOR_INTERVAL_S": "0.2"}
    with temporal.worker(fast), gunicorn(settings.database_url, env) as server:
        start_task(server, "t-late")
        wait_for(lambda: server.request("GET", f"/api/agent/{AGENT_ID}/tasks/t-late", headers=DASHBOARD)[1]["task"]
                 ["status"] == "in_progress", what="the task's workflow started")
        driver = ask(node, agent_env(server, tmp_path), {"ask": ["t-late", {
            "type": "permission", "text": "Edit package.json", "timeout_s": 1}]})
        try:
            entry = outcome(driver)
        finally:
            driver.kill()
        assert (entry["status"], entry["answer"], entry["answered_by"]) == ("timed_out", None, None)
        _, body = server.request("GET", f"/api/agent/{AGENT_ID}/tasks/t-late", headers=DASHBOARD)
        assert body["task"]["question"]["status"] == "timed_out"
        assert unread(server) == []


# opencode's own prompts, relayed by the plugin (hooks/test/plugin.mjs stands in for opencode's client) -----

PLUGIN = REPO / "hooks" / "test" / "plugin.mjs"


class Plugin:
    """The plugin in a node process, its opencode client a stand-in that records what it is asked."""

    def __init__(self, node, env, **options):
        self.process = subprocess.Popen([node, str(PLUGIN), json.dumps(options)], cwd=REPO, env=env, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.read() == {"ready": True}

    def read(self) -> dict:
        line = self.process.stdout.readline()
        assert line, self.process.stderr.read()
        return json.loads(line)

    def command(self, *command):
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self.read()

    def event(self, dashboard_event: dict) -> None:
        """opencode publishes an event (one of tests/opencode_events, as opencode has it) to the plugin."""
        assert self.command("event", {"type": dashboard_event["type"], "properties": dashboard_event["data"]}) == {
            "ok": True}

    def calls(self, count: int) -> list:
        return self.command("calls", count, 30_000)["calls"]

    def close(self) -> None:
        if self.process.poll() is None:
            self.command("close", 10_000)
        self.process.wait(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            self.close()
        finally:
            self.process.kill()
            self.process.stdout.close()
            self.process.stderr.close()
            self.process.stdin.close()


def opencode_turn(plugin: Plugin, session_id: str = "ses_hitl") -> None:
    for event_ in (oc.session(session_id), *oc.prompt(session_id, "msg_hitl", "Clean the build"),
                   oc.status(session_id, "busy")):
        plugin.event(event_)


def blocked_turn(server, request_id: str) -> dict:
    status, body = server.request("GET", f"/api/agent/{AGENT_ID}/tasks?status=blocked", headers=DASHBOARD)
    if status == 404:  # the plugin's first events have not landed yet
        return None
    assert status == 200, body
    return next((task for task in body["tasks"] if (task["question"] or {}).get("request_id") == request_id), None)


def turn(server, task_id: str) -> dict:
    return server.request("GET", f"/api/agent/{AGENT_ID}/tasks/{task_id}", headers=DASHBOARD)[1]["task"]


def test_the_plugin_relays_opencodes_permission_prompt_and_answers_opencode_from_the_dashboard(node, settings,
                                                                                               tmp_path):
    with gunicorn(settings.database_url, SERVER_ENV) as server, Plugin(node, agent_env(server, tmp_path)) as plugin:
        opencode_turn(plugin)
        plugin.event(oc.permission_asked("ses_hitl", "per_hitl", "rm -rf build"))
        task = wait_for(lambda: blocked_turn(server, "per_hitl"), what="the permission on the dashboard")
        assert (task["id"], task["question"]["type"], task["question"]["text"]) == (
            "ses_hitl.turn-1", "permission", "bash: rm -rf build")
        assert plugin.calls(0) == []  # opencode waits for a person

        answered = time.monotonic()
        status, _ = server.request("POST", f"/api/agent/{AGENT_ID}/tasks/{task['id']}/unblock", {"permission": True},
                                   DASHBOARD)
        assert status == 202
        assert plugin.calls(1) == [["postSessionIdPermissionsPermissionId", {
            "path": {"id": "ses_hitl", "permissionID": "per_hitl"}, "body": {"response": "once"}}]]
        print(f"\nthe dashboard's answer to opencode's client: {time.monotonic() - answered:.3f} s")
        assert plugin.command("settled", 30_000) == {"settled": True}
        # opencode's own permission.replied reaches the dashboard too, and changes nothing it decided.
        assert plugin.command("flush", 30_000) == {"flushed": True}
        shown = turn(server, task["id"])
        assert (shown["status"], shown["question"]["status"], shown["question"]["answered_by"]) == (
            "in_progress", "answered", "dashboard-token")
        assert unread(server) == []  # the plugin acknowledged the answer


def test_the_plugin_answers_opencodes_question_with_the_choice_made_on_the_dashboard(node, settings, tmp_path):
    with gunicorn(settings.database_url, SERVER_ENV) as server, Plugin(node, agent_env(server, tmp_path)) as plugin:
        opencode_turn(plugin)
        plugin.event(oc.question_asked("ses_hitl", "que_hitl", oc.question_info("Which database?", "PostgreSQL",
                                                                                 "SQLite")))
        task = wait_for(lambda: blocked_turn(server, "que_hitl"), what="the question on the dashboard")
        assert (task["question"]["type"], task["question"]["choices"]) == ("choice", ["PostgreSQL", "SQLite"])
        server.request("POST", f"/api/agent/{AGENT_ID}/tasks/{task['id']}/unblock", {"choice": "SQLite"}, DASHBOARD)
        [[name, request]] = plugin.calls(1)
        assert (name, request["url"], request["path"], request["body"]) == (
            "_client.post", "/question/{requestID}/reply", {"requestID": "que_hitl"}, {"answers": [["SQLite"]]})
        assert plugin.command("settled", 30_000) == {"settled": True}
        assert turn(server, task["id"])["status"] == "in_progress"


def test_when_the_terminal_answers_first_the_plugin_stops_waiting_and_the_dashboard_refuses_a_late_answer(
        node, settings, tmp_path):
    with gunicorn(settings.database_url, SERVER_ENV) as server, Plugin(node, agent_env(server, tmp_path)) as plugin:
        opencode_turn(plugin)
        plugin.event(oc.permission_asked("ses_hitl", "per_term"))
        task = wait_for(lambda: blocked_turn(server, "per_term"), what="the permission on the dashboard")
        plugin.event(oc.permission_replied("ses_hitl", "per_term", "reject"))  # the person said no in the terminal
        assert plugin.command("settled", 30_000) == {"settled": True}
        settled = wait_for(lambda: (q := turn(server, task["id"])["question"])["status"] == "answered" and q,
                           what="the terminal's reply on the dashboard")
        assert (settled["answered_by"], settled["answer"]) == ("terminal", {"permission": False})
        status, body = server.request("POST", f"/api/agent/{AGENT_ID}/tasks/{task['id']}/unblock",
                                      {"permission": True}, DASHBOARD)
        assert status == 409, body
        assert plugin.calls(0) == []  # opencode was never answered twice
