"""Ingest throughput over real HTTP, against the bare stack and against raw SQLite.

What one run measures, each on a fresh SQLite database in a temporary directory:
  a. bare stack    - req/s of a hello-world Falcon app (bench/hello.py) under the production gunicorn
                     config (deploy/gunicorn.conf.py), POSTed the same bodies as (b);
  b. single ingest - events/s of POST /api/events, one event per request, on the real mount; both
                     servers run side by side, and a and b take turns (`--turns`, 5 of 1 s each), so
                     that the machine's drift weighs on both alike;
  c. batch ingest  - events/s of POST /api/events with {"events": [1000 events]};
  d. raw SQLite    - rows/s of sqlite3 executemany into `inbound_events` (same schema, same pragmas),
                     1000 rows per transaction: the ceiling no HTTP ingest can pass. As many rows as
                     (c) stored: 64 000 by default, enough for the WAL to fill to its checkpoint backstop
                     and restart three times, as it does under sustained ingest. A shorter run measures a
                     burst that SQLite pays for later: 20 000 rows went in at 100 000-136 000 rows/s
                     where 64 000 went in at 65 000-80 000, while (c) kept the same rate
                     (docs/benchmarks.md, "How long the batch phase runs").
It prints rates, per-request latency (p50/p99), server CPU per event (gunicorn master + workers, from
/proc), the ratios b/a (target >= 0.50) and c/d (target >= 0.30), and checks that `inbound_events`
holds exactly the events answered with 202. Exit status 1 on any failed request or a row mismatch.

Events get ids as the shipped clients make them, the time first (`--random-ids`: 128 random bits, as
before 2026-12-03). Both servers run with the same config and are hit by the same client: `--clients`
processes, each holding one keep-alive http.client connection, so the Python client is not one GIL-bound
bottleneck.

Run from the repository root:
    .venv/bin/python bench/ingest.py [--seconds 5] [--turns 5] [--batches 64] [--clients 8]
(`make bench` does the same). The servers always run on .venv's Python when it exists.
`--profile N` instead cProfiles N single-event requests in-process (falcon.testing, no HTTP) and
prints the hot spots.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.pool import Pool
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from falcon.testing import TestClient

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # so `python bench/ingest.py` can import the project for --profile

from bench.servers import (  # noqa: E402
    GUNICORN_CONFIG,
    SERVER_PYTHON,
    bench_env,
    configured_capacity,
    free_port,
    get,
    gunicorn,
    percentile,
    prepare_database,
    verdict,
    worker_pids,
)
from shared.emit import new_event_id  # noqa: E402

HELLO_APP = "bench.hello:app"
HELLO_PATH = "/hello"
EVENTS_PATH = "/api/events"
BATCH_SIZE = 1000  # the contract's MAX_BATCH
BATCHES = 64  # 8 a client; and the WAL fills to its checkpoint backstop three times (see above)
SESSIONS = 50
WARMUP_SECONDS = 0.5
TURNS = 5  # phases a and b alternate, 1 s each by default
SINGLE_TARGET = 0.50
BATCH_TARGET = 0.30
RAW_REPEATS = 3


# Events ------------------------------------------------------------------------------------------------

def random_event_id(now_ms: int) -> str:
    """128 random bits: the ids the shipped clients made before 2026-12-03 (`--random-ids`)."""
    return f"evt_{uuid.uuid4().hex}"


# The ids the events get: as the shipped clients make them (the time first), unless `--random-ids`. Set
# before the client processes fork, so they make the same.
event_id: Callable[[int], str] = new_event_id


def make_event(n: int, now_ms: int) -> dict[str, Any]:
    """Event number `n` of a realistic mix: a todo list, a streamed message update, a heartbeat."""
    session = f"s-{n % SESSIONS}"
    base = {"id": event_id(now_ms), "timestamp": now_ms, "agent_id": "bench"}
    kind = n % 3
    if kind == 0:
        todos = [{"id": "1", "content": "write the bench", "status": "in_progress", "priority": "high"},
                 {"id": "2", "content": "read the numbers", "status": "pending", "priority": "medium"}]
        return {**base, "type": "todo.updated", "data": {"sessionID": session, "todos": todos}}
    if kind == 1:
        # Message ids repeat, as opencode re-sends a message while it streams.
        info = {"id": f"msg-{session}-{n % 7}", "sessionID": session, "role": "assistant",
                "modelID": "claude", "providerID": "anthropic", "time": {"created": now_ms},
                "tokens": {"input": 1200, "output": 340}, "cost": 0.0021}
        return {**base, "type": "message.updated", "data": {"info": info}}
    return {**base, "type": "agent.heartbeat", "data": {"id": "bench"}}


def event_body(n: int) -> bytes:
    return json.dumps(make_event(n, int(time.time() * 1000))).encode()


def batch_body(first: int) -> bytes:
    now_ms = int(time.time() * 1000)
    events = [make_event(first + i, now_ms) for i in range(BATCH_SIZE)]
    return json.dumps({"events": events}).encode()


# The client (runs in its own process) -------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """Where the clients POST, what they expect back, and the gunicorn workers to spread them over."""

    port: int
    path: str
    headers: dict[str, str]
    expected_status: int
    workers: tuple[int, ...] = ()  # worker pids; empty: take whichever worker accepts


@dataclass(frozen=True)
class Job:
    """What one client process does: POST until `seconds` pass, or send its `batches`."""

    target: Target
    client: int
    start_at: float  # time.monotonic(): a shared start line, so all clients load the server together
    seconds: float = 0.0
    batches: int = 0


@dataclass
class ClientResult:
    requests: int = 0
    events: int = 0  # events in requests answered with the expected status
    failures: int = 0
    why_failed: Counter[str] = field(default_factory=Counter)  # status code, or the exception's name
    latencies: list[float] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0
    cpu_seconds: float = 0.0
    worker: int | None = None  # the gunicorn worker that served this client's connection


def run_client(job: Job) -> ClientResult:
    if job.batches:
        bodies = [batch_body(job.client * 10_000_000 + i * BATCH_SIZE) for i in range(job.batches)]
        return send_all(job, iter(bodies), BATCH_SIZE)
    return send_all(job, bodies_until(job.start_at + job.seconds, job.client * 10_000_000), 1)


def bodies_until(deadline: float, first: int) -> Iterator[bytes]:
    """Single-event bodies, made one at a time, until `deadline` (time.monotonic())."""
    n = first
    while time.monotonic() < deadline:
        yield event_body(n)
        n += 1


def send_all(job: Job, bodies: Iterator[bytes], events_per_body: int) -> ClientResult:
    """POST each body over one keep-alive connection, timing each request."""
    result = ClientResult()
    target = job.target
    connection, result.worker = connect_pinned(target, job.client)
    time.sleep(max(0.0, job.start_at - time.monotonic()))
    cpu_start = time.process_time()
    result.started = time.monotonic()
    for body in bodies:
        began = time.perf_counter()
        try:
            connection.request("POST", target.path, body, target.headers)
            response = connection.getresponse()
            response.read()
            outcome = str(response.status)
        except (OSError, http.client.HTTPException) as error:
            outcome = type(error).__name__
            connection.close()  # http.client reconnects on the next request
        result.latencies.append(time.perf_counter() - began)
        result.requests += 1
        if outcome == str(target.expected_status):
            result.events += events_per_body
        else:
            result.failures += 1
            result.why_failed[outcome] += 1
    result.finished = time.monotonic()
    result.cpu_seconds = time.process_time() - cpu_start
    connection.close()
    return result


# Spreading connections evenly over the workers (Linux /proc) ------------------------------------------

PIN_ATTEMPTS = 40


def connect_pinned(target: Target, client: int) -> tuple[http.client.HTTPConnection, int | None]:
    """A keep-alive connection served by worker number `client % workers`, and that worker's pid.

    gthread workers race to accept, and one often takes all 8 connections (about half of our tries),
    which halves req/s at random; reconnecting until the spread is even gives both servers the same
    fair, reproducible load. Without /proc it takes whatever worker accepts."""
    wanted = target.workers[client % len(target.workers)] if target.workers else None
    connection, owner = open_connection(target)
    for _ in range(PIN_ATTEMPTS):
        if wanted is None or owner in (None, wanted):
            break
        connection.close()
        connection, owner = open_connection(target)
    return connection, owner


def open_connection(target: Target) -> tuple[http.client.HTTPConnection, int | None]:
    connection = http.client.HTTPConnection("127.0.0.1", target.port, timeout=120)
    connection.connect()
    return connection, accepting_worker(target, connection.sock.getsockname()[1])


def accepting_worker(target: Target, client_port: int, limit: float = 10.0) -> int | None:
    """The worker whose file table holds the server end of our connection, once it has accepted it
    (a worker still loading the app accepts nothing, hence the generous limit)."""
    deadline = time.monotonic() + limit
    while target.workers and time.monotonic() < deadline:
        inode = server_socket_inode(target.port, client_port)
        owner = next((worker for worker in target.workers if inode and inode in socket_inodes(worker)), None)
        if owner is not None:
            return owner
        time.sleep(0.002)
    return None


def server_socket_inode(server_port: int, client_port: int) -> int:
    """The inode of the server's socket for the connection from `client_port`; 0 until accepted."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            local_port, remote_port = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)
            if (local_port, remote_port) == (server_port, client_port):
                return int(fields[9])
    return 0


def socket_inodes(pid: int) -> set[int]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                link = os.readlink(fd)
                if link.startswith("socket:["):
                    inodes.add(int(link[len("socket:["):-1]))
    return inodes


# Measuring a phase ------------------------------------------------------------------------------------

@dataclass
class Phase:
    name: str
    unit: str
    requests: int
    events: int
    failures: int
    why_failed: Counter[str]
    seconds: float
    latencies: list[float]
    server_cpu: float
    client_cpu: float
    spread: str = "-"  # client connections per gunicorn worker, e.g. 4+4

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def measure(pool: Pool, jobs: list[Job], name: str, unit: str, server_pid: int) -> Phase:
    cpu_before = tree_cpu_seconds(server_pid)
    results: list[ClientResult] = pool.map(run_client, jobs, chunksize=1)
    server_cpu = quiet_cpu_seconds(server_pid) - cpu_before
    return Phase(
        name=name,
        unit=unit,
        requests=sum(r.requests for r in results),
        events=sum(r.events for r in results),
        failures=sum(r.failures for r in results),
        why_failed=sum((r.why_failed for r in results), Counter()),
        seconds=max(r.finished for r in results) - min(r.started for r in results),
        latencies=sorted(latency for r in results for latency in r.latencies),
        server_cpu=server_cpu,
        client_cpu=sum(r.cpu_seconds for r in results),
        spread=connection_spread(jobs[0].target.workers, [r.worker for r in results]),
    )


def connection_spread(workers: tuple[int, ...], served_by: list[int | None]) -> str:
    counts = Counter(served_by)
    unknown = counts.pop(None, 0)
    return "+".join(str(counts[worker]) for worker in workers) + (f"+{unknown}?" if unknown else "")


def timed_jobs(target: Target, clients: int, seconds: float) -> list[Job]:
    start_at = time.monotonic() + 0.5  # time for every client to connect (and pin) first
    return [Job(target, client, start_at, seconds=seconds) for client in range(clients)]


def batch_jobs(target: Target, clients: int, batches: int) -> list[Job]:
    shares = [batches // clients + (1 if i < batches % clients else 0) for i in range(clients)]
    start_at = time.monotonic() + 1.0  # clients build their 1000-event bodies before the start line
    return [Job(target, client, start_at, batches=share) for client, share in enumerate(shares) if share]


def quiet_cpu_seconds(pid: int, quiet_s: float = 0.1, limit_s: float = 2.0) -> float:
    """The server's CPU once it has done what the phase left it (a WAL checkpoint takes up to ~40 ms
    after the last answer): its CPU unchanged for `quiet_s`, or `limit_s` at most. So that work counts
    as the phase's, and the next phase (the other server's turn) does not pay for it."""
    deadline = time.monotonic() + limit_s
    cpu = tree_cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        cpu, before = tree_cpu_seconds(pid), cpu
        if cpu == before:
            break
    return cpu


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its descendants (the gunicorn master and workers), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(tree_cpu_seconds(child) for child in worker_pids(pid))


# The servers ------------------------------------------------------------------------------------------

def check_serves(port: int, expect_hello: bool) -> None:
    """Prove which app answers: only the hello app has /hello, only the real mount has /api/health."""
    hello = get(port, HELLO_PATH)
    health_status, _ = get(port, "/api/health")
    serves_hello = hello == (200, {"ok": True}) and health_status == 404
    serves_mount = hello[0] == 404 and health_status == 200
    if not (serves_hello if expect_hello else serves_mount):
        wanted = "bench.hello:app" if expect_hello else "deploy.mount:create_app()"
        raise SystemExit(f"the server on port {port} is not {wanted}: {HELLO_PATH} -> {hello}, "
                         f"/api/health -> {health_status}")


# The phases -------------------------------------------------------------------------------------------

def json_headers(api_key: str | None = None) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Connection": "keep-alive"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def bench_single_and_batch(pool: Pool, env: dict[str, str], tmp: Path,
                           args: argparse.Namespace) -> tuple[Phase, Phase, Phase, int]:
    """Phases a and b in turns, then c; also returns the events the warm-up stored."""
    # The same headers for both (the API key too), so both servers parse the same requests.
    headers = json_headers(env["DASHBOARD_API_KEY"])
    with contextlib.ExitStack() as hello_server:  # stopped before c, which has the machine to itself
        hello_port, ingest_port = free_port(), free_port()
        hello_pid = hello_server.enter_context(gunicorn(env, hello_port, HELLO_APP, tmp / "gunicorn-hello.log"))
        with gunicorn(env, ingest_port, None, tmp / "gunicorn-mount.log") as ingest_pid:
            check_serves(hello_port, expect_hello=True)
            check_serves(ingest_port, expect_hello=False)
            hello = Target(hello_port, HELLO_PATH, headers, 200, worker_pids(hello_pid))
            ingest = Target(ingest_port, EVENTS_PATH, headers, 202, worker_pids(ingest_pid))
            pool.map(run_client, timed_jobs(hello, args.clients, WARMUP_SECONDS))
            warmup = pool.map(run_client, timed_jobs(ingest, args.clients, WARMUP_SECONDS))
            bare, single = take_turns(pool, args, (hello, hello_pid), (ingest, ingest_pid))
            hello_server.close()
            jobs = batch_jobs(ingest, args.clients, args.batches)
            batch = measure(pool, jobs, f"c. batch ingest ({BATCH_SIZE}/req)", "events/s", ingest_pid)
    return bare, single, batch, sum(result.events for result in warmup)


def take_turns(pool: Pool, args: argparse.Namespace, hello: tuple[Target, int],
               ingest: tuple[Target, int]) -> tuple[Phase, Phase]:
    """Phases a and b, each server loaded in turn for `--seconds / --turns`, hello first: whatever else
    the machine does meanwhile weighs on both alike. Run one after the other, the drift of a shared
    machine moved b/a by ±0.05 around its median with the same code (docs/benchmarks.md, "Issue 16,
    the fifth round")."""
    turn_s = args.seconds / args.turns
    hello_turns: list[Phase] = []
    ingest_turns: list[Phase] = []
    for _ in range(args.turns):
        hello_turns.append(measure(pool, timed_jobs(hello[0], args.clients, turn_s), "", "", hello[1]))
        ingest_turns.append(measure(pool, timed_jobs(ingest[0], args.clients, turn_s), "", "", ingest[1]))
    return (combined(hello_turns, "a. bare stack (hello)", "req/s"),
            combined(ingest_turns, "b. single-event ingest", "events/s"))


def combined(turns: list[Phase], name: str, unit: str) -> Phase:
    """One phase out of its turns: their requests, time and CPU added up, their latencies together."""
    return Phase(
        name=name,
        unit=unit,
        requests=sum(p.requests for p in turns),
        events=sum(p.events for p in turns),
        failures=sum(p.failures for p in turns),
        why_failed=sum((p.why_failed for p in turns), Counter()),
        seconds=sum(p.seconds for p in turns),
        latencies=sorted(latency for p in turns for latency in p.latencies),
        server_cpu=sum(p.server_cpu for p in turns),
        client_cpu=sum(p.client_cpu for p in turns),
        spread="/".join(dict.fromkeys(p.spread for p in turns)),  # one entry when every turn spread alike
    )


def bench_raw_sqlite(tmp: Path, env: dict[str, str], rows: int, autocheckpoint: int | None = None) -> Phase:
    """executemany of `rows` equivalent rows into freshly migrated files, 1000 per transaction; the
    median of RAW_REPEATS runs, because one run is only a fraction of a second and noisy. A commit
    checkpoints past `autocheckpoint` pages (default: the server's backstop, shared/store/checkpoints.py)."""
    template = migrated_database(tmp / "raw-template.db", env)
    now = int(time.time())
    # Built before timing: this is the storage ceiling, not the cost of making rows.
    values = [raw_row(make_event(n, now * 1000), now) for n in range(rows)]
    runs = []
    for repeat in range(RAW_REPEATS):
        path = tmp / f"raw-{repeat}.db"
        shutil.copyfile(template, path)
        runs.append(time_executemany(path, values, autocheckpoint))
    seconds, cpu, stored = sorted(runs)[RAW_REPEATS // 2]
    return Phase(f"d. raw SQLite (median of {RAW_REPEATS})", "rows/s", rows // BATCH_SIZE, stored, rows - stored,
                 Counter(), seconds, [], server_cpu=cpu, client_cpu=0.0)


def migrated_database(path: Path, env: dict[str, str]) -> Path:
    """A new database file with the project's schema, made by the project's own migrations."""
    migrate = subprocess.run([SERVER_PYTHON, "-m", "shared.store.migrations"], cwd=REPO_ROOT, capture_output=True,
                             text=True, env={**env, "DATABASE_URL": f"sqlite:///{path}"}, check=False)
    if migrate.returncode != 0:
        raise SystemExit(f"migrating {path} failed:\n{migrate.stderr}")
    return path


def time_executemany(path: Path, values: list[tuple[Any, ...]], autocheckpoint: int | None) -> tuple[float, float, int]:
    """Insert `values` into inbound_events with the server's pragmas, a commit checkpointing past
    `autocheckpoint` pages (None: the server's backstop, shared/store/checkpoints.py); (seconds, CPU
    seconds, rows)."""
    from shared.store.checkpoints import BACKSTOP_PAGES

    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute(f"PRAGMA wal_autocheckpoint={autocheckpoint or BACKSTOP_PAGES}")
    started = time.monotonic()
    cpu_start = time.process_time()
    for first in range(0, len(values), BATCH_SIZE):
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(
            "INSERT INTO inbound_events (id, type, agent_id, known, occurred_at, received_at, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)", values[first:first + BATCH_SIZE])
        connection.execute("COMMIT")
    seconds = time.monotonic() - started
    cpu = time.process_time() - cpu_start
    stored = connection.execute("SELECT COUNT(*) FROM inbound_events").fetchone()[0]
    connection.close()
    return seconds, cpu, stored


def raw_row(event: dict[str, Any], now: int) -> tuple[Any, ...]:
    # The row ingest stores: JSONField's compact dump, Unix seconds.
    data = json.dumps(event["data"], separators=(",", ":"), ensure_ascii=False)
    return (event["id"], event["type"], event["agent_id"], 1, event["timestamp"] // 1000, now, data)


def count_rows(database: Path) -> int:
    with contextlib.closing(sqlite3.connect(database)) as connection:
        return connection.execute("SELECT COUNT(*) FROM inbound_events").fetchone()[0]


# The report -------------------------------------------------------------------------------------------

def print_table(phases: list[Phase]) -> None:
    print(f"{'phase':<27} {'requests':>8} {'events':>7} {'fail':>4} {'rate':>16} "
          f"{'p50 ms':>8} {'p99 ms':>8} {'srv CPU/event':>13} {'cli CPU/req':>12} {'CPUs busy':>9} {'conns':>6}")
    for p in phases:
        print(f"{p.name:<27} {p.requests:>8} {p.events:>7} {p.failures:>4} {p.rate:>9.0f} {p.unit:<6} "
              f"{latency_columns(p.latencies)} {micros(p.server_cpu, p.events):>13} "
              f"{micros(p.client_cpu, p.requests):>12} {cpu_busy(p):>9} {p.spread:>6}")
    for p in phases:
        if p.why_failed:
            reasons = ", ".join(f"{reason} x{count}" for reason, count in p.why_failed.most_common())
            print(f"  failures in {p.name}: {reasons}")


def latency_columns(latencies: list[float]) -> str:
    if not latencies:
        return f"{'-':>8} {'-':>8}"
    return f"{percentile(latencies, 0.50) * 1e3:8.2f} {percentile(latencies, 0.99) * 1e3:8.2f}"


def cpu_busy(phase: Phase) -> str:
    # Server + client CPU over the machine's capacity: under 100% means the phase waited, not computed.
    capacity = phase.seconds * (os.cpu_count() or 1)
    return f"{(phase.server_cpu + phase.client_cpu) / capacity:.0%}" if capacity else "-"


def micros(seconds: float, count: int) -> str:
    return f"{seconds / count * 1e6:.0f} µs" if seconds and count else "-"


def print_ratio(label: str, numerator: Phase, denominator: Phase, target: float) -> None:
    ratio = numerator.rate / denominator.rate if denominator.rate else 0.0
    verdict(label, f"{ratio:.3f}", f">= {target:.2f}", ratio >= target)


def report(phases: list[Phase], stored: int, accepted: int, args: argparse.Namespace,
           capacity: tuple[int, int]) -> bool:
    hello, single, batch, raw = phases
    print(f"\n{args.clients} keep-alive client processes; {args.seconds:g} s per timed phase, a and b in "
          f"{args.turns} turns each; "
          f"{args.batches} batches of {BATCH_SIZE}; server: gunicorn -c {GUNICORN_CONFIG} "
          f"(workers={capacity[0]}, threads={capacity[1]}); {os.cpu_count()} CPUs\n")
    print_table(phases)
    print("  (srv CPU: gunicorn master + workers, or this process for d; CPUs busy: server + client CPU over"
          " all CPUs; conns: client connections per worker)\n")
    print_ratio("single-event ingest / bare stack (b/a)", single, hello, SINGLE_TARGET)
    print_ratio("batch ingest / raw SQLite rows (c/d)", batch, raw, BATCH_TARGET)
    correct = stored == accepted
    print(f"\ninbound_events rows: {stored}; events answered 202 (warm-up + b + c): {accepted} -> "
          f"{'OK' if correct else 'MISMATCH'}")
    return correct and not (hello.failures or single.failures or batch.failures)


# Profiling (--profile) --------------------------------------------------------------------------------

def profile_ingest(requests: int, tmp: Path) -> None:
    """Time `requests` POSTs of the hello app and of single-event ingest in-process (falcon.testing: no
    HTTP server, no client, one thread), then cProfile as many more ingest requests. Caveat: with no
    other connection open, every per-request close checkpoints and deletes the WAL, which a busy server
    does less often."""
    import cProfile
    import pstats

    from falcon import testing

    from bench.hello import app as hello_app
    from functions.events import create_app
    from shared.config import Settings
    from shared.store.db import open_database
    from shared.store.migrations import migrate

    settings = Settings(database_url=f"sqlite:///{tmp}/profile.db", api_key=secrets.token_urlsafe(24),
                        dashboard_token=secrets.token_urlsafe(24), log_level="WARNING")
    open_database(settings)
    migrate()
    events = testing.TestClient(create_app(settings))
    hello = testing.TestClient(hello_app)
    headers = json_headers(settings.api_key)
    bodies = [event_body(n) for n in range(requests * 3)]
    per_hello = time_posts(hello, HELLO_PATH, headers, bodies[:requests], 200)
    per_event = time_posts(events, EVENTS_PATH, headers, bodies[requests:2 * requests], 202)
    print(f"\nin-process (falcon.testing): hello {per_hello * 1e6:.0f} µs/req, "
          f"single-event ingest {per_event * 1e6:.0f} µs/req, ratio {per_hello / per_event:.3f}")
    profiler = cProfile.Profile()
    profiler.enable()
    time_posts(events, EVENTS_PATH, headers, bodies[2 * requests:], 202)
    profiler.disable()
    stats = pstats.Stats(profiler).strip_dirs()
    stats.sort_stats("cumulative").print_stats(30)
    stats.sort_stats("tottime").print_stats(15)


def time_posts(client: TestClient, path: str, headers: dict[str, str], bodies: list[bytes], status: int) -> float:
    started = time.perf_counter()
    for body in bodies:
        result = client.simulate_post(path, body=body, headers=headers)
        if result.status_code != status:
            raise SystemExit(f"POST {path} answered {result.status_code}: {result.text}")
    return (time.perf_counter() - started) / len(bodies)


# Main -------------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of phases a and b (default 5)")
    parser.add_argument("--turns", type=int, default=TURNS,
                        help=f"turns phases a and b take, alternately, in their seconds (default {TURNS})")
    parser.add_argument("--batches", type=int, default=BATCHES,
                        help=f"batches of {BATCH_SIZE} in phase c, and as many rows in d (default {BATCHES})")
    parser.add_argument("--clients", type=int, default=8, help="client processes = connections (default 8)")
    parser.add_argument("--random-ids", action="store_true",
                        help="give events ids of 128 random bits, as the clients did before 2026-12-03, instead"
                             " of ids that begin with the time (docs/benchmarks.md, \"Event ids\")")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="instead, cProfile N single-event requests in-process and print the hot spots")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.turns < 1 or args.batches < 1 or args.clients < 1 or args.profile < 0:
        parser.error("--seconds must be > 0, --turns, --batches and --clients >= 1, --profile >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.random_ids:
        global event_id
        event_id = random_event_id
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as name:
        tmp = Path(name)
        if args.profile:
            profile_ingest(args.profile, tmp)
            return 0
        env = bench_env(tmp)
        prepare_database(env)
        with multiprocessing.Pool(args.clients) as pool:
            hello, single, batch, warmup_events = bench_single_and_batch(pool, env, tmp, args)
        # After the servers stopped, so the baseline has the machine to itself, as ingest had.
        raw = bench_raw_sqlite(tmp, env, batch.requests * BATCH_SIZE)
        stored = count_rows(tmp / "bench.db")
        accepted = warmup_events + single.events + batch.events
        ok = report([hello, single, batch, raw], stored, accepted, args, configured_capacity(env))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
