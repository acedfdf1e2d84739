"""Capacity under hostile load: is the server still there for API calls while it is full of streams?

One run, on a fresh SQLite database in a temporary directory, against the production gunicorn config
with its default capacity (docs/capacity.md), all over loopback:
  - `--streams` (default 300) live streams are opened, 20 at a time, and held, read as browsers
    would; a stream refused with 503 (its worker's budget is taken) is tried again after its
    Retry-After, as the page does, until all are open or `--open-within` seconds have passed;
  - `--half-open` (default 200) connections each send half a request head and stop; the server drops
    them after its header timeout, and each dropped one is replaced at once, so that many are always
    pending;
  (the streams and stalled heads come from a process of their own, so that reading them does not slow
  down the client that measures);
  - meanwhile one client asks `GET /api/health` `--probes` times (default 600, one every 20 ms), and
    another makes ordinary API calls (list agents, post an event, read an inbox) `--calls` times.
It prints /api/health's latency (p50 / p99 / max), how many API calls succeeded, and "met" or
"NOT met" against the targets: p99 <= 100 ms, no failed call. Exit status 1 when a target is missed.

Run from the repository root:  .venv/bin/python bench/capacity.py [--streams 300] [--half-open 200]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import random
import selectors
import socket
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.servers import bench_env, free_port, gunicorn, percentile, prepare_database, verdict  # noqa: E402

P99_TARGET_S = 0.100
PROBE_INTERVAL_S = 0.020
OPENERS = 20
HALF_HEAD = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: half-open"


# The load ---------------------------------------------------------------------------------------------------

def open_stream(port: int, token: str) -> tuple[socket.socket | None, float]:
    """A live stream's socket once the server answered 200, or (None, seconds to wait) when refused."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=30)
    connection.sendall(f"GET /api/stream?topics=agent HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = connection.recv(4096)
        if not chunk:
            raise SystemExit("the server closed a stream before answering")
        head += chunk
    status = int(head.split(b" ", 2)[1])
    if status == 200:
        return connection, 0.0
    connection.close()
    if status != 503:
        raise SystemExit(f"a stream was answered {status}: {head[:300]!r}")
    retry_after = next((line.split(b":", 1)[1] for line in head.split(b"\r\n")
                        if line.lower().startswith(b"retry-after:")), b"1")
    return None, float(retry_after)


def open_streams(port: int, token: str, count: int, within_s: float) -> tuple[list[socket.socket], int]:
    """`count` open streams (fewer if `within_s` runs out), and how many refusals it took. Opened by
    OPENERS clients at once, as a crowd of tabs would, each waiting out its Retry-After (plus up to a
    quarter, as the page does) when refused."""
    deadline = time.monotonic() + within_s
    streams: list[socket.socket] = []
    refusals = [0]
    lock = threading.Lock()

    def opener(quota: int) -> None:
        opened = 0
        while opened < quota and time.monotonic() < deadline:
            stream, retry_after = open_stream(port, token)
            if stream is None:
                with lock:
                    refusals[0] += 1
                time.sleep(min(retry_after * (1 + random.random() / 4), max(0.0, deadline - time.monotonic())))
                continue
            opened += 1
            with lock:
                streams.append(stream)

    quotas = [count // OPENERS + (n < count % OPENERS) for n in range(OPENERS)]
    with ThreadPoolExecutor(max_workers=OPENERS) as pool:
        for done in [pool.submit(opener, quota) for quota in quotas]:
            done.result()
    return streams, refusals[0]


class Background:
    """One thread that reads every stream (as browsers do) and keeps `half_open` stalled heads pending,
    opening a new one for each the server drops."""

    def __init__(self, port: int, streams: list[socket.socket], half_open: int):
        self.port = port
        self.selector = selectors.DefaultSelector()
        self.stopping = threading.Event()
        self.dropped = 0  # stalled heads the server answered (408) and closed
        for stream in streams:
            stream.setblocking(False)
            self.selector.register(stream, selectors.EVENT_READ, "stream")
        self.streams_closed = 0
        for _ in range(half_open):
            self.stall()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def stall(self) -> None:
        connection = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        connection.sendall(HALF_HEAD)
        connection.setblocking(False)
        self.selector.register(connection, selectors.EVENT_READ, "stalled")

    def run(self) -> None:
        while not self.stopping.is_set():
            for key, _ in self.selector.select(timeout=0.2):
                try:
                    data = key.fileobj.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if data:
                    continue  # a stream's frames, or a stalled head's 408 before its close
                self.selector.unregister(key.fileobj)
                key.fileobj.close()
                if key.data == "stalled":
                    self.dropped += 1
                    self.stall()
                else:
                    self.streams_closed += 1

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()


# The measurements -------------------------------------------------------------------------------------------

def timed_request(port: int, method: str, path: str, body: bytes | None = None,
                  headers: dict[str, str] | None = None) -> tuple[int, float]:
    """(status, seconds) of one request on a new connection (0 for no answer within 30 s)."""
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        response.read()
        status = response.status
    except OSError:
        status = 0
    finally:
        connection.close()
    return status, time.monotonic() - started


def probe_health(port: int, probes: int, results: dict) -> None:
    latencies, failed = [], 0
    started = time.monotonic()
    for n in range(probes):
        if (pause := started + n * PROBE_INTERVAL_S - time.monotonic()) > 0:
            time.sleep(pause)
        status, seconds = timed_request(port, "GET", "/api/health")
        latencies.append(seconds)
        failed += status != 200
    results["health"] = (latencies, failed)


def api_calls(port: int, env: dict[str, str], calls: int, results: dict) -> None:
    dashboard = {"Authorization": f"Bearer {env['DASHBOARD_TOKEN']}"}
    agent = {"Authorization": f"Bearer {env['DASHBOARD_API_KEY']}", "Content-Type": "application/json"}
    succeeded, failures = 0, []
    for n in range(calls):
        kind = n % 3
        if kind == 0:
            status, _ = timed_request(port, "GET", "/api/agents", headers=dashboard)
            ok = status == 200
        elif kind == 1:
            body = json.dumps({"id": f"capacity-{n}", "type": "agent.heartbeat", "timestamp": int(time.time() * 1000),
                               "agent_id": "capacity", "data": {"id": "capacity"}}).encode()
            status, _ = timed_request(port, "POST", "/api/events", body, agent)
            ok = status == 202
        else:
            status, _ = timed_request(port, "GET", "/api/agent/capacity/inbox?wait=0", headers=agent)
            ok = status == 200
        succeeded += ok
        if not ok:
            failures.append(status)
        time.sleep(PROBE_INTERVAL_S)
    results["api"] = (succeeded, failures)


# The run --------------------------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> bool:
    with tempfile.TemporaryDirectory(prefix="bench-capacity-") as tmp:
        env = bench_env(Path(tmp))
        prepare_database(env)
        port = free_port()
        with gunicorn(env, port, app=None, log_path=Path(tmp) / "gunicorn.log"):
            return measure(port, env, args)


def load_process(port: int, token: str, args: argparse.Namespace, ready, stop, done) -> None:
    """The hostile crowd, in a process of its own so that reading 300 streams does not slow down the
    client that measures: open the streams, stall the heads, hold them until told to stop."""
    opened_at = time.monotonic()
    streams, refused = open_streams(port, token, args.streams, args.open_within)
    background = Background(port, streams, args.half_open)
    background.thread.start()
    ready.put((len(streams), refused, time.monotonic() - opened_at))
    stop.wait()
    background.stop()
    done.put((background.streams_closed, background.dropped))


def measure(port: int, env: dict[str, str], args: argparse.Namespace) -> bool:
    context = multiprocessing.get_context("spawn")
    ready, stop, done = context.Queue(), context.Event(), context.Queue()
    crowd = context.Process(target=load_process, args=(port, env["DASHBOARD_TOKEN"], args, ready, stop, done))
    crowd.start()
    streams, refused, seconds = ready.get(timeout=args.open_within + 120)
    print(f"{streams} of {args.streams} streams open in {seconds:.1f} s ({refused} refusals with 503 + "
          f"Retry-After on the way), {args.half_open} stalled heads pending; measuring ...", flush=True)
    results: dict = {}
    workers = [threading.Thread(target=probe_health, args=(port, args.probes, results)),
               threading.Thread(target=api_calls, args=(port, env, args.calls, results))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    stop.set()
    closed, dropped = done.get(timeout=60)
    crowd.join(timeout=30)
    return report(args, streams, closed, dropped, results)


def report(args: argparse.Namespace, streams: int, closed: int, dropped: int, results: dict) -> bool:
    latencies, health_failed = results["health"]
    succeeded, failures = results["api"]
    p50, p99, worst = (percentile(latencies, q) for q in (0.50, 0.99, 1.0))
    print(f"held: {streams} streams ({closed} closed by the server meanwhile), "
          f"{args.half_open} stalled heads ({dropped} dropped by the header timeout and replaced)")
    print(f"/api/health x {len(latencies)}:  p50 {p50 * 1e3:.1f} ms   p99 {p99 * 1e3:.1f} ms   "
          f"max {worst * 1e3:.1f} ms   failed {health_failed}   (target p99 <= {P99_TARGET_S * 1e3:.0f} ms, 0 failed)")
    print(f"API calls: {succeeded} of {args.calls} succeeded"
          + (f"; failed with {sorted(set(failures))}" if failures else "") + "   (target: all)")
    held = verdict("capacity: streams held", f"{streams} of {args.streams}", "all", streams == args.streams)
    health = verdict("capacity: /api/health p99 beside the streams and stalled heads",
                     f"{p99 * 1e3:.1f} ms, {health_failed} failed", f"<= {P99_TARGET_S * 1e3:.0f} ms, 0 failed",
                     p99 <= P99_TARGET_S and health_failed == 0)
    calls = verdict("capacity: API calls beside them", f"{succeeded} of {args.calls} succeeded", "all",
                    not failures)
    return held and health and calls


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=300, help="live streams held open (default 300)")
    parser.add_argument("--half-open", type=int, default=200, help="stalled request heads (default 200)")
    parser.add_argument("--probes", type=int, default=600, help="GET /api/health probes (default 600)")
    parser.add_argument("--calls", type=int, default=300, help="ordinary API calls (default 300)")
    parser.add_argument("--open-within", type=float, default=120.0,
                        help="seconds allowed to open every stream (default 120)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return 0 if run(parse_args(argv)) else 1


if __name__ == "__main__":
    sys.exit(main())
