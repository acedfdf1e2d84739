"""`python -m worker` as a real process, and how `make run` starts Temporal and the worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from falcon import testing

import functions.events
from deploy.run import children, periodic
from shared.config import Settings
from tests.processes import REPO
from tests.temporal_support import FAST, post, task_row, wait_for


def start_worker(settings: Settings, log_path) -> subprocess.Popen:
    env = os.environ | {"DATABASE_URL": settings.database_url, "TEMPORAL_ADDRESS": settings.temporal_address,
                        "TEMPORAL_TASK_QUEUE": settings.temporal_task_queue}
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "worker"], cwd=REPO, env=env, stdout=log,
                                stderr=subprocess.STDOUT)


def test_a_killed_worker_process_is_replaced_and_the_workflow_completes_then_sigterm_stops_it(
        temporal, settings, db, tmp_path):
    # Ticks 2 s apart: the kill lands on a timer, almost surely, not on a running activity (whose 10 s
    # timeout would have to pass before another worker retried it).
    fast = temporal.settings_for(settings, **(FAST | {"monitor_interval_s": 2.0}))
    client = testing.TestClient(functions.events.create_app(fast))
    log_path = tmp_path / "worker.log"
    first = start_worker(fast, log_path)
    try:
        post(client, "task.created", {"id": "t-proc", "agent_id": "agent-proc", "title": "Outlive the worker"})
        wait_for(lambda: task_row("t-proc").status == "in_progress", timeout=30, what="the worker process starts it")
    finally:
        first.kill()  # mid-workflow, no goodbye
        first.wait(10)
    post(client, "task.updated", {"id": "t-proc", "status": "completed"})
    second = start_worker(fast, log_path)
    try:
        assert temporal.result("agent-proc", "t-proc", timeout=45) == "done"
    finally:
        second.send_signal(signal.SIGTERM)
        code = second.wait(20)
    assert code == 0, log_path.read_text(errors="replace")


def test_make_run_starts_a_dev_server_on_loopback_then_the_worker_by_default():
    specs = children(Settings())
    assert [spec.name for spec in specs] == ["gunicorn", "temporal", "temporal-worker"]
    server = specs[1]
    assert server.argv[1:] == ["server", "start-dev", "--db-filename", "data/temporal.db", "--ip", "127.0.0.1",
                               "--port", "7233", "--headless"]  # its state beside the dashboard's database
    assert os.access(server.argv[0], os.X_OK) and server.ready_port == 7233
    assert specs[2].argv[1:] == ["-m", "worker"]
    assert [job.name for job in periodic(Settings()) if job.off_reason is None] == [
        "feed-retention", "alert-digests", "workflow-starts"]


def test_the_dev_servers_state_lives_beside_the_dashboards_database(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'db' / 'dashboard.db'}")
    server = children(settings)[1]
    assert server.argv[server.argv.index("--db-filename") + 1] == str(tmp_path / "db" / "temporal.db")


def test_a_temporal_address_of_your_own_runs_only_the_worker_and_off_runs_neither():
    own = Settings.from_env({"TEMPORAL_ADDRESS": "temporal.internal:7233"})
    assert [spec.name for spec in children(own)] == ["gunicorn", "temporal-worker"]
    off = Settings.from_env({"TEMPORAL_ADDRESS": "off"})
    assert [spec.name for spec in children(off)] == ["gunicorn"]
    assert {job.name: job.off_reason for job in periodic(off)}["workflow-starts"] == "TEMPORAL_ADDRESS is off"
