"""Live-stream latency and losslessness over real HTTP: SSE clients, events posted at a steady rate.

One run, on a fresh SQLite database in a temporary directory, against the production gunicorn config
(four workers; each stream, once live, is written by its worker's feed poller and holds no thread):
  - `--clients` browsers (default 100) hold GET /api/stream open, spread over client processes that
    each read their streams with one selector loop (a thread per stream would measure the client);
  - a producer POSTs `--events` events (default 2 000) to /api/events at `--rate` per second, one per
    request, each a `file.edited` whose change carries the event's id;
  - meanwhile another process makes ordinary API calls (GET /api/agents, one every 20 ms);
  - every stream records when each event arrived.
It prints the latency from "POST answered 202" to "frame received" (p50 / p99 / max over every
stream x event), the lost and duplicated deliveries, and the API calls' p99. Targets: p99 <= 15 ms
with one client, <= 100 ms with more, 0 lost, 0 duplicated. Exit status 1 when a target is missed.

Run from the repository root:  .venv/bin/python bench/stream.py [--clients 100] [--events 2000] [--rate 200]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import re
import selectors
import socket
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.ingest import tree_cpu_seconds  # noqa: E402
from bench.servers import bench_env, free_port, gunicorn, percentile, prepare_database, verdict  # noqa: E402

STREAMS_PER_PROCESS = 25
P99_TARGET_ONE_CLIENT_S = 0.015
P99_TARGET_S = 0.100
API_CALL_EVERY_S = 0.020
EVENT_ID = re.compile(rb'"event_id": ?"(bench-[0-9]+)"')


# The browsers -------------------------------------------------------------------------------------------

def open_stream(port: int, token: str) -> socket.socket:
    """A subscribed stream: its response head and the retry hint (written once subscribed) are read."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=60)
    connection.sendall(f"GET /api/stream?topics=file HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       f"Authorization: Bearer {token}\r\n\r\n".encode())
    received = b""
    while b"retry:" not in received:
        chunk = connection.recv(4096)
        if not chunk:
            raise SystemExit(f"a stream was refused: {received[:200]!r}")
        received += chunk
    if not received.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"a stream was refused: {received[:200]!r}")
    connection.setblocking(False)
    return connection


def browser_process(port: int, token: str, streams: int, expected: int, ready, results) -> None:
    """One client process holding `streams` streams, read by one selector loop: records (event id,
    arrival time) for every change frame until each stream has `expected` or the run's deadline."""
    connections = [open_stream(port, token) for _ in range(streams)]
    ready.put(streams)
    arrivals: list[list[tuple[str, float]]] = [[] for _ in connections]
    pending = {connection: b"" for connection in connections}
    selector = selectors.DefaultSelector()
    for n, connection in enumerate(connections):
        selector.register(connection, selectors.EVENT_READ, n)
    deadline = time.monotonic() + 60 + expected / 20
    while selector.get_map() and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=1.0):
            data = key.fileobj.recv(65536)
            at = time.monotonic()
            if not data:
                selector.unregister(key.fileobj)
                continue
            # Whole lines only (a frame's data line is one write, but a read may end inside it).
            lines, _, pending[key.fileobj] = (pending[key.fileobj] + data).rpartition(b"\n")
            arrivals[key.data] += [(match.group(1).decode(), at) for match in EVENT_ID.finditer(lines)]
            if len(arrivals[key.data]) >= expected:
                selector.unregister(key.fileobj)
    for connection in connections:
        connection.close()
    results.put(arrivals)


# Ordinary API calls during the run --------------------------------------------------------------------------

def api_caller(port: int, token: str, stop, results) -> None:
    """GET /api/agents every API_CALL_EVERY_S until told to stop; put (latencies, failures)."""
    latencies, failures = [], 0
    while not stop.is_set():
        started = time.monotonic()
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/api/agents", headers={"Authorization": f"Bearer {token}"})
            response = connection.getresponse()
            response.read()
            connection.close()
            if response.status == 200:
                latencies.append(time.monotonic() - started)
            else:
                failures += 1
        except OSError:
            failures += 1
        stop.wait(max(0.0, API_CALL_EVERY_S - (time.monotonic() - started)))
    results.put((latencies, failures))


# The producer ---------------------------------------------------------------------------------------------

def produce(port: int, api_key: str, events: int, rate: float) -> dict[str, float]:
    """POST `events` events at a steady `rate`; return each event id's 202 time."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    accepted: dict[str, float] = {}
    started = time.monotonic()
    for n in range(events):
        due = started + n / rate
        if (pause := due - time.monotonic()) > 0:
            time.sleep(pause)
        event_id = f"bench-{n}"
        body = json.dumps({"id": event_id, "type": "file.edited", "timestamp": int(time.time() * 1000),
                           "agent_id": "bench", "data": {"file": f"src/module_{n}.py"}})
        connection.request("POST", "/api/events", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status != 202:
            raise SystemExit(f"event {n} was answered {response.status}")
        accepted[event_id] = time.monotonic()
    connection.close()
    return accepted


# The run --------------------------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> bool:
    with tempfile.TemporaryDirectory(prefix="bench-stream-") as tmp:
        env = bench_env(Path(tmp))
        # Open streams per worker: connections spread unevenly over the workers, so room for all of them.
        env.update(DASHBOARD_STREAMS=str(max(args.clients, 1000)), DASHBOARD_SECRET_KEY="bench-" + "k" * 32)
        prepare_database(env)
        port = free_port()
        with gunicorn(env, port, app=None, log_path=Path(tmp) / "gunicorn.log") as server_pid:
            return measure(port, server_pid, env, args)


def measure(port: int, server_pid: int, env: dict[str, str], args: argparse.Namespace) -> bool:
    context = multiprocessing.get_context("spawn")
    ready, results = context.Queue(), context.Queue()
    sizes = [min(STREAMS_PER_PROCESS, args.clients - first) for first in range(0, args.clients,
                                                                                 STREAMS_PER_PROCESS)]
    browsers = [context.Process(target=browser_process,
                                args=(port, env["DASHBOARD_TOKEN"], size, args.events, ready, results))
                for size in sizes]
    for browser in browsers:
        browser.start()
    opened = sum(ready.get(timeout=120) for _ in browsers)
    stop_calls, call_results = context.Event(), context.Queue()
    caller = context.Process(target=api_caller, args=(port, env["DASHBOARD_TOKEN"], stop_calls, call_results))
    caller.start()
    print(f"{opened} streams open; producing {args.events} events at {args.rate:g}/s ...", flush=True)
    started, cpu_before = time.monotonic(), tree_cpu_seconds(server_pid)
    accepted = produce(port, env["DASHBOARD_API_KEY"], args.events, args.rate)
    produced_in = time.monotonic() - started
    streams = [stream for _ in browsers for stream in results.get(timeout=180 + args.events / 20)]
    server_cpu = tree_cpu_seconds(server_pid) - cpu_before
    stop_calls.set()
    api_latencies, api_failures = call_results.get(timeout=30)
    for process in [*browsers, caller]:
        process.join(timeout=30)
    print(f"server CPU (gunicorn master + workers) while producing and delivering: {server_cpu:.1f} s, "
          f"{server_cpu / len(accepted) * 1e3:.2f} ms per event posted, "
          f"{server_cpu / (len(accepted) * args.clients) * 1e6:.0f} µs per event and stream")
    return report(args.clients, streams, accepted, produced_in, api_latencies, api_failures)


def report(clients: int, streams: list[list[tuple[str, float]]], accepted: dict[str, float], produced_in: float,
           api_latencies: list[float], api_failures: int) -> bool:
    latencies, lost, duplicated = [], 0, 0
    for arrivals in streams:
        counts = Counter(event_id for event_id, _ in arrivals)
        duplicated += sum(count - 1 for count in counts.values() if count > 1)
        lost += sum(1 for event_id in accepted if event_id not in counts)
        latencies += [max(0.0, at - accepted[event_id]) for event_id, at in arrivals if event_id in accepted]
    p50, p99, worst = (percentile(latencies, q) for q in (0.50, 0.99, 1.0))
    target_s = P99_TARGET_ONE_CLIENT_S if clients == 1 else P99_TARGET_S
    api_p50, api_p99 = (percentile(api_latencies, q) for q in (0.50, 0.99))
    print(f"streams {len(streams)}, events {len(accepted)} posted in {produced_in:.1f} s, "
          f"deliveries {len(latencies)} of {len(streams) * len(accepted)}")
    print(f"latency POST 202 -> frame received:  p50 {p50 * 1e3:.1f} ms   p99 {p99 * 1e3:.1f} ms   "
          f"max {worst * 1e3:.1f} ms")
    print(f"API calls meanwhile (GET /api/agents): {len(api_latencies)} answered, {api_failures} failed, "
          f"p50 {api_p50 * 1e3:.1f} ms, p99 {api_p99 * 1e3:.1f} ms")
    fan_out = verdict(f"fan-out, {clients} client{'s' if clients > 1 else ''}: POST -> stream p99",
                      f"{p99 * 1e3:.1f} ms", f"<= {target_s * 1e3:.0f} ms", p99 <= target_s)
    whole = verdict(f"fan-out, {clients} client{'s' if clients > 1 else ''}: lost / duplicated",
                    f"{lost} / {duplicated}", "0 / 0", lost == 0 and duplicated == 0)
    return fan_out and whole


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", "--streams", type=int, default=100, help="concurrent SSE clients (default 100)")
    parser.add_argument("--events", type=int, default=2000, help="events to post (default 2000)")
    parser.add_argument("--rate", type=float, default=200.0, help="events posted per second (default 200)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return 0 if run(parse_args(argv)) else 1


if __name__ == "__main__":
    sys.exit(main())
