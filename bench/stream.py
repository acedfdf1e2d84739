"""Live-stream latency and losslessness over real HTTP: 100 SSE clients, 2 000 events at a steady rate.

One run, on a fresh SQLite database in a temporary directory, against the production gunicorn config
(two gthread workers, threads raised to hold every stream):
  - `--streams` browsers (default 100) hold GET /api/stream open, spread over client processes;
  - a producer POSTs `--events` events (default 2 000) to /api/events at `--rate` per second, one per
    request, each a `file.edited` whose change carries the event's id;
  - every stream records when each event arrived.
It prints the latency from "POST answered 202" to "frame received" (p50 / p99 / max over every
stream x event), and the number of lost and duplicated deliveries. Targets: p99 <= 100 ms, 0 lost,
0 duplicated. Exit status 1 when a target is missed.

Run from the repository root:  .venv/bin/python bench/stream.py [--streams 100] [--events 2000] [--rate 200]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.servers import bench_env, free_port, gunicorn, percentile, prepare_database  # noqa: E402

STREAMS_PER_PROCESS = 25
P99_TARGET_S = 0.100


# The browsers -------------------------------------------------------------------------------------------

def open_stream(port: int, token: str) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", "/api/stream?topics=file", headers={"Authorization": f"Bearer {token}"})
    response = connection.getresponse()
    if response.status != 200:
        raise SystemExit(f"a stream was refused: {response.status} {response.read()[:200]!r}")
    response.readline()  # the retry hint: the stream is subscribed once the server wrote it
    response.readline()
    return response


def read_arrivals(response: http.client.HTTPResponse, expected: int, arrivals: list[tuple[str, float]]) -> None:
    """Record (event id, arrival time) for every change frame until `expected` arrived or the server
    closes the stream."""
    while len(arrivals) < expected:
        line = response.readline()
        if not line:
            return
        if line.startswith(b"data:"):
            arrivals.append((json.loads(line[5:])["payload"]["event_id"], time.monotonic()))


def browser_process(port: int, token: str, streams: int, expected: int, ready, results) -> None:
    """One client process holding `streams` streams, each read by its own thread."""
    responses = [open_stream(port, token) for _ in range(streams)]
    ready.put(streams)
    arrivals: list[list[tuple[str, float]]] = [[] for _ in responses]
    readers = [threading.Thread(target=read_arrivals, args=(response, expected, log))
               for response, log in zip(responses, arrivals, strict=True)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(timeout=60 + expected / 50)
    results.put(arrivals)


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
        # Threads per worker: connections spread unevenly over the two workers, so room for all of them.
        env.update(DASHBOARD_THREADS=str(args.streams + 32), DASHBOARD_SECRET_KEY="bench-" + "k" * 32)
        prepare_database(env)
        port = free_port()
        with gunicorn(env, port, app=None, log_path=Path(tmp) / "gunicorn.log"):
            return measure(port, env, args)


def measure(port: int, env: dict[str, str], args: argparse.Namespace) -> bool:
    context = multiprocessing.get_context("spawn")
    ready, results = context.Queue(), context.Queue()
    sizes = [min(STREAMS_PER_PROCESS, args.streams - first) for first in range(0, args.streams,
                                                                                 STREAMS_PER_PROCESS)]
    browsers = [context.Process(target=browser_process,
                                args=(port, env["DASHBOARD_TOKEN"], size, args.events, ready, results))
                for size in sizes]
    for browser in browsers:
        browser.start()
    opened = sum(ready.get(timeout=60) for _ in browsers)
    print(f"{opened} streams open; producing {args.events} events at {args.rate:g}/s ...", flush=True)
    started = time.monotonic()
    accepted = produce(port, env["DASHBOARD_API_KEY"], args.events, args.rate)
    produced_in = time.monotonic() - started
    streams = [stream for _ in browsers for stream in results.get(timeout=120)]
    for browser in browsers:
        browser.join(timeout=30)
    return report(streams, accepted, produced_in)


def report(streams: list[list[tuple[str, float]]], accepted: dict[str, float], produced_in: float) -> bool:
    latencies, lost, duplicated = [], 0, 0
    for arrivals in streams:
        counts = Counter(event_id for event_id, _ in arrivals)
        duplicated += sum(count - 1 for count in counts.values() if count > 1)
        lost += sum(1 for event_id in accepted if event_id not in counts)
        latencies += [max(0.0, at - accepted[event_id]) for event_id, at in arrivals if event_id in accepted]
    p50, p99, worst = (percentile(latencies, q) for q in (0.50, 0.99, 1.0))
    print(f"streams {len(streams)}, events {len(accepted)} posted in {produced_in:.1f} s, "
          f"deliveries {len(latencies)} of {len(streams) * len(accepted)}")
    print(f"latency POST 202 -> frame received:  p50 {p50 * 1e3:.1f} ms   p99 {p99 * 1e3:.1f} ms   "
          f"max {worst * 1e3:.1f} ms   (target p99 <= {P99_TARGET_S * 1e3:.0f} ms)")
    print(f"lost {lost}   duplicated {duplicated}   (target 0 and 0)")
    met = p99 <= P99_TARGET_S and lost == 0 and duplicated == 0
    print("targets met" if met else "TARGETS NOT MET")
    return met


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=100, help="concurrent SSE clients (default 100)")
    parser.add_argument("--events", type=int, default=2000, help="events to post (default 2000)")
    parser.add_argument("--rate", type=float, default=200.0, help="events posted per second (default 200)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return 0 if run(parse_args(argv)) else 1


if __name__ == "__main__":
    sys.exit(main())
