"""`make run`'s supervisor (deploy/run.py): the server, plus the Linear sync every interval, one Ctrl-C."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from deploy.run import ChildSpec, PeriodicSpec, Supervisor, periodic
from shared.config import Settings
from tests.fake_linear import FakeLinear
from tests.linear_support import LINEAR_API_KEY, STATES, issue_node, project_node, state_node
from tests.processes import REPO, free_port
from tests.support import DASHBOARD, DASHBOARD_TOKEN

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def appender(path: Path, then: str = "") -> list[str]:
    """A job that appends a line to `path` each time it starts, then runs `then`."""
    return [sys.executable, "-c", f"open({str(path)!r}, 'a').write('run\\n')\n{then}"]


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def runs(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def supervise(supervisor: Supervisor) -> tuple[threading.Thread, list[int]]:
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(supervisor.run()), daemon=True)
    thread.start()
    return thread, result


def test_the_periodic_job_runs_at_once_and_then_every_interval_until_stopped(tmp_path):
    log = tmp_path / "runs.log"
    supervisor = Supervisor([ChildSpec("server", SLEEPER)], [PeriodicSpec("job", appender(log), 0.3)], grace_s=5)
    thread, result = supervise(supervisor)
    wait_for(lambda: runs(log) >= 3)
    server = supervisor.running["server"]
    supervisor.request_stop()
    thread.join(timeout=10)
    assert result == [0]
    assert server.returncode == -signal.SIGTERM  # the stop reached the child as SIGTERM


def test_a_job_still_running_is_not_started_again(tmp_path):
    log, release = tmp_path / "runs.log", tmp_path / "release"
    slow = appender(log, then=f"import os, time\nwhile not os.path.exists({str(release)!r}): time.sleep(0.01)")
    clock = Clock()
    supervisor = Supervisor([], [PeriodicSpec("job", slow, 1.0)], clock=clock, grace_s=5)
    supervisor.next_run = {"job": 0.0}
    try:
        supervisor._tick_jobs()
        wait_for(lambda: runs(log) == 1)
        for _ in range(5):  # five intervals pass while the first run is still going
            clock.now += 1.0
            supervisor._tick_jobs()
        assert runs(log) == 1
        release.touch()
        supervisor.job_runs["job"].wait(timeout=10)
        supervisor._tick_jobs()
        wait_for(lambda: runs(log) == 2)
    finally:
        release.touch()
        supervisor._stop_all()


def test_a_crashing_job_does_not_take_the_server_down(tmp_path):
    log = tmp_path / "runs.log"
    crash = appender(log, then="raise SystemExit(1)")
    supervisor = Supervisor([ChildSpec("server", SLEEPER)], [PeriodicSpec("job", crash, 0.1)], grace_s=5)
    thread, _ = supervise(supervisor)
    wait_for(lambda: runs(log) >= 3)
    assert supervisor.running["server"].poll() is None
    supervisor.request_stop()
    thread.join(timeout=10)


def test_when_a_child_dies_the_others_are_stopped_and_its_code_returned(tmp_path):
    dying = [sys.executable, "-c", "import time; time.sleep(0.3); raise SystemExit(3)"]
    supervisor = Supervisor([ChildSpec("server", SLEEPER), ChildSpec("worker", dying)], [], grace_s=5)
    thread, result = supervise(supervisor)
    thread.join(timeout=20)
    assert result == [3]
    assert supervisor.running["server"].returncode == -signal.SIGTERM


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path):
    ready = tmp_path / "ready"
    stubborn = [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                                      f"open({str(ready)!r}, 'w').close(); time.sleep(60)"]
    supervisor = Supervisor([ChildSpec("stubborn", stubborn)], [], grace_s=0.5)
    thread, result = supervise(supervisor)
    wait_for(ready.exists)
    supervisor.request_stop()
    thread.join(timeout=10)
    assert result == [0] and supervisor.running["stubborn"].returncode == -signal.SIGKILL


def test_without_a_linear_credential_the_sync_is_off_with_a_reason():
    job = periodic(Settings())[0]
    assert job.off_reason == "no LINEAR_API_KEY, LINEAR_OAUTH_TOKEN or LINEAR_CLIENT_ID is set"
    job = periodic(Settings(linear_api_key=LINEAR_API_KEY, linear_sync_interval_s=30))[0]
    assert (job.off_reason, job.interval_s) == (None, 30)
    # Linear can be connected over OAuth at any time: the job runs, and skips until it is.
    job = periodic(Settings(linear_client_id="lin-client", linear_client_secret="0123456789abcdef0123"))[0]
    assert job.off_reason is None
    assert job.argv[1:] == ["-m", "functions.linear_sync"]


def get(port: int, path: str) -> tuple[int, dict | None]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers=DASHBOARD)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    except OSError:
        return 0, None
    finally:
        connection.close()


def test_make_run_serves_syncs_linear_and_stops_cleanly_on_sigterm(tmp_path, database_url):
    fake = FakeLinear(states=[state_node(state) for state in STATES], projects=[project_node()],
                      issues=[issue_node(f"issue-{n}", number=n) for n in range(1, 21)], api_key=LINEAR_API_KEY)
    port = free_port()
    with fake.serve() as url, (tmp_path / "run.log").open("wb") as log:
        env = os.environ | {"DATABASE_URL": database_url, "DASHBOARD_PORT": str(port),
                            "DASHBOARD_TOKEN": DASHBOARD_TOKEN, "DASHBOARD_WORKERS": "1",
                            "LINEAR_API_KEY": LINEAR_API_KEY, "LINEAR_API_URL": url, "LINEAR_SYNC_INTERVAL_S": "5",
                            "TEMPORAL_ADDRESS": "off"}
        process = subprocess.Popen([sys.executable, "-m", "deploy.run"], cwd=REPO, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: get(port, "/api/projects/proj-1")[0] == 200 and
                     get(port, "/api/projects/proj-1")[1]["project"]["issue_count"] == 20, timeout=30)
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=30)
    output = (tmp_path / "run.log").read_text(errors="replace")
    assert code == 0, output
    assert "linear sync (full): 1 request, 20 issues read (20 new" in output
    assert get(port, "/api/health")[0] == 0  # nothing listens any more
