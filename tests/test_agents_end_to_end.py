"""The agents' story through real gunicorn workers (forked processes, each with its own Temporal
client thread) against the test run's Temporal dev server."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.processes import gunicorn
from tests.support import AGENT, API_KEY, DASHBOARD, DASHBOARD_TOKEN, event
from tests.temporal_support import FAST, wait_for


def test_gunicorn_workers_start_workflows_and_signal_them_across_processes(temporal, settings, db):
    fast = temporal.settings_for(settings, **FAST)
    env = {"DASHBOARD_API_KEY": API_KEY, "DASHBOARD_TOKEN": DASHBOARD_TOKEN, "TEMPORAL_ADDRESS": fast.temporal_address,
           "TEMPORAL_TASK_QUEUE": fast.temporal_task_queue, "MONITOR_INTERVAL_S": "0.2",
           "BLOCKED_AFTER_HIGH_S": "1", "BLOCKED_AFTER_LOW_S": "3"}
    now = datetime.now(UTC).isoformat()
    with temporal.worker(fast), gunicorn(settings.database_url, env, workers=2) as server:
        for n in range(6):  # spread over both gunicorn workers
            status, _ = server.request("POST", "/api/events", event(
                "task.created", {"id": f"t-e2e-{n}", "agent_id": f"agent-e2e-{n}", "title": f"Task {n}",
                                 "priority": "high"}, timestamp=now), AGENT)
            assert status == 202

        def tasks_in_progress() -> bool:
            bodies = [server.request("GET", f"/api/agent/agent-e2e-{n}/tasks", headers=DASHBOARD)[1]
                      for n in range(6)]
            return all(body["tasks"][0]["status"] == "in_progress" for body in bodies)

        wait_for(tasks_in_progress, what="every workflow started and marking its task in progress")
        server.request("POST", "/api/events", event("task.updated", {"id": "t-e2e-0", "status": "blocked",
                                                                     "blocked_reason": "?"}, timestamp=now), AGENT)
        wait_for(lambda: temporal.view("agent-e2e-0", "t-e2e-0")["status"] == "blocked")
        status, body = server.request("POST", "/api/agent/agent-e2e-0/tasks/t-e2e-0/cancel", headers=DASHBOARD)
        assert status == 202 and body["signalled"] is True
        assert temporal.result("agent-e2e-0", "t-e2e-0") == "cancelled"
        health = server.request("GET", "/api/health")[1]
        assert health["temporal"]["reachable"] is True
