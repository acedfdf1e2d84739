"""The agent's side of human in the loop (hooks/dashboard-questions.mjs), run by `node` against the real
bundle under gunicorn: the agent asks, waits on its inbox, and gets the person's answer — as the
result of `askDashboard`, or as opencode's permission decision through the plugin's hook."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime

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


def test_the_plugin_puts_opencodes_permission_prompt_to_the_dashboard(node, settings, tmp_path):
    with gunicorn(settings.database_url, SERVER_ENV) as server:
        start_task(server, "t-perm")
        permission = {"id": "per_1", "type": "bash", "title": "rm -rf build", "pattern": ["rm -rf *"],
                      "sessionID": "ses_1", "messageID": "msg_1"}
        driver = ask(node, agent_env(server, tmp_path, DASHBOARD_TASK_ID="t-perm"), {"permission": permission})
        try:
            question = wait_for(lambda: pending_question(server, "t-perm"), what="the permission on the dashboard")
            assert (question["type"], question["text"]) == ("permission", "rm -rf build (rm -rf *)")
            server.request("POST", f"/api/agent/{AGENT_ID}/tasks/t-perm/unblock", {"permission": False}, DASHBOARD)
            output = outcome(driver)
        finally:
            driver.kill()
        assert output == {"status": "deny"}


def test_a_permission_nobody_answers_in_time_is_left_to_opencode(node, temporal, settings, db, tmp_path):
    fast = temporal.settings_for(settings, monitor_interval_s=0.2)
    env = SERVER_ENV | {"TEMPORAL_ADDRESS": fast.temporal_address, "TEMPORAL_TASK_QUEUE": fast.temporal_task_queue,
                        "MONITOR_INTERVAL_S": "0.2"}
    with temporal.worker(fast), gunicorn(settings.database_url, env) as server:
        start_task(server, "t-late")
        wait_for(lambda: server.request("GET", f"/api/agent/{AGENT_ID}/tasks/t-late", headers=DASHBOARD)[1]["task"]
                 ["status"] == "in_progress", what="the task's workflow started")
        driver = ask(node, agent_env(server, tmp_path, DASHBOARD_TASK_ID="t-late", DASHBOARD_QUESTION_TIMEOUT_S="1"),
                     {"permission": {"type": "edit", "title": "Edit package.json"}})
        try:
            output = outcome(driver)
        finally:
            driver.kill()
        assert output == {"status": "ask"}  # opencode's own prompt decides
        _, body = server.request("GET", f"/api/agent/{AGENT_ID}/tasks/t-late", headers=DASHBOARD)
        assert body["task"]["question"]["status"] == "timed_out"
        assert unread(server) == []
