"""What every benchmark needs: a fresh database, the real gunicorn config on a free port, percentiles."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
# The servers need gunicorn and the project's dependencies, which live in .venv, whatever runs this.
VENV_PYTHON = REPO_ROOT / ".venv" / "bin" / "python"
SERVER_PYTHON = str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable
GUNICORN_CONFIG = "deploy/gunicorn.conf.py"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def bench_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"sqlite:///{tmp}/bench.db",
        DASHBOARD_API_KEY=secrets.token_urlsafe(24),
        DASHBOARD_TOKEN=secrets.token_urlsafe(24),
        DASHBOARD_HOST="127.0.0.1",
        # Keeps gunicorn's boot chatter out of the report, and the access lines out of the measurement.
        DASHBOARD_LOG_LEVEL="WARNING",
    )
    return env


def prepare_database(env: dict[str, str]) -> None:
    done = subprocess.run([SERVER_PYTHON, "-m", "deploy.prepare"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"deploy.prepare failed:\n{done.stdout}{done.stderr}")


def configured_capacity(env: dict[str, str]) -> tuple[int, int]:
    """(workers, threads) as the gunicorn config computes them from this environment."""
    code = f"import runpy; c = runpy.run_path({GUNICORN_CONFIG!r}); print(c['workers'], c['threads'])"
    done = subprocess.run([SERVER_PYTHON, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"reading {GUNICORN_CONFIG} failed:\n{done.stderr}")
    workers, threads = done.stdout.split()
    return int(workers), int(threads)


@contextlib.contextmanager
def gunicorn(env: dict[str, str], port: int, app: str | None, log_path: Path,
             checkout: Path = REPO_ROOT) -> Iterator[int]:
    """Serve `app` (None: the config's wsgi_app, the real mount) with the production config; yield
    the master's pid once it answers and all its workers are forked, and stop it with SIGTERM (a
    graceful shutdown) afterwards. `checkout`: the code to serve (another commit's, say)."""
    command = [SERVER_PYTHON, "-m", "gunicorn", "-c", GUNICORN_CONFIG, *([app] if app else [])]
    with log_path.open("w") as log:
        server = subprocess.Popen(command, cwd=checkout, env={**env, "DASHBOARD_PORT": str(port)},
                                  stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_serving(server, port, log_path)
        wait_for_workers(server.pid, configured_capacity(env)[0])
        yield server.pid
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def wait_until_serving(server: subprocess.Popen, port: int, log_path: Path, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with {server.returncode}:\n{log_path.read_text()}")
        with contextlib.suppress(OSError):
            get(port, "/api/health")
            return
        time.sleep(0.1)
    raise SystemExit(f"gunicorn did not answer within {limit:.0f} s:\n{log_path.read_text()}")


def wait_for_workers(master: int, expected: int, limit: float = 30.0) -> None:
    # The master forks its workers with random pauses, so the first can answer before the last exists.
    deadline = time.monotonic() + limit
    while len(worker_pids(master)) < expected and time.monotonic() < deadline:
        time.sleep(0.05)


def worker_pids(master: int) -> tuple[int, ...]:
    """The gunicorn master's children: its workers (all forked before any of them answers)."""
    with contextlib.suppress(OSError):
        return tuple(int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split())
    return ()


def get(port: int, path: str) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    try:
        return response.status, json.loads(body)
    except ValueError:
        return response.status, body


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (fraction 1.0 is the maximum); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def verdict(figure: str, measured: str, target: str, met: bool) -> bool:
    """Print one figure with its target and "met" or "NOT met"; `make bench` collects these lines
    (in the file BENCH_SUMMARY names) and prints them together at the end (bench/summary.py)."""
    line = f"{figure}: {measured} (target {target}) -- {'met' if met else 'NOT met'}"
    print(line, flush=True)
    if summary := os.environ.get("BENCH_SUMMARY"):
        with open(summary, "a", encoding="utf-8") as lines:
            lines.write(line + "\n")
    return met
