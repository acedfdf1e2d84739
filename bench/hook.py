"""The shipped opencode plugin end to end: 100 000 opencode-shaped events through hooks/dashboard-hook.js and
hooks/dashboard-client.mjs (with node, as opencode loads them) into the real gunicorn stack.

One run, on a fresh SQLite database in a temporary directory, against the production gunicorn config:
bench/hook_driver.mjs feeds the plugin sessions' turns (status changes, messages, text streamed as
snapshots of one part, tool calls through the tool hooks and the tool part, todo lists) as fast as it
takes them, with the client's own settings (batches of up to 1 000 events and 1 MiB, a 200 ms window,
one request at a time, snapshots of the same thing coalesced while they wait), and stops the clock when
the last event is visible through GET /api/timeline. It prints events/s from the first send to the last
visible, against the target: 5 x the 3 422 events/s the best-known peer took one request per event
(issue 16), 17 110 events/s. It also prints the client's own cost: µs per event inside the plugin's
hooks, and node's CPU per event less what making the events costs the driver alone (target <= 20 µs);
how many requests carried the events, how many were stored and how many the client coalesced away (a
newer snapshot replacing one still waiting: the dashboard stores the latest state either way), and the
events stored per second.

The peer's rate was measured on the reference machine on one afternoon; the same machine has since run
about twice as fast at quiet moments (a hello-world or a raw SQLite insert takes half the CPU), which
would make a fixed 17 110 events/s twice as easy. So the run also times the machine itself, as
`bench/ingest.py` phase d does (raw SQLite `executemany` rows/s, the median of 3) but with SQLite's default
checkpoints, as in the issue's run, and the target that
decides is the peer's rate scaled by this machine's speed against the afternoon it was measured
(83 203 rows/s, issue 16). Both targets are printed.

Run from the repository root:  .venv/bin/python bench/hook.py [--events 100000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.ingest import bench_raw_sqlite  # noqa: E402
from bench.servers import bench_env, free_port, gunicorn, prepare_database, verdict  # noqa: E402

PEER_EVENTS_PER_S = 3422
TARGET_EVENTS_PER_S = 5 * PEER_EVENTS_PER_S
# Raw SQLite rows/s (bench/ingest.py phase d) on the machine and day the peer's rate was measured.
RAW_ROWS_PER_S_AT_PEER = 83_203
RAW_ROWS = 20_000
# The client's share of the target's budget on two cores: at 17 110 events/s, 58 µs per event in all.
CLIENT_US_PER_EVENT = 20
DRIVER = REPO_ROOT / "bench" / "hook_driver.mjs"


def run(args: argparse.Namespace) -> bool:
    with tempfile.TemporaryDirectory(prefix="bench-hook-") as tmp:
        env = bench_env(Path(tmp))
        result = feed_the_plugin(env, Path(tmp), args.events)
        # As the run measured it: SQLite's default checkpoint every 1 000 pages.
        raw = bench_raw_sqlite(Path(tmp), env, RAW_ROWS, autocheckpoint=1000)
        return report(result, raw.rate)


def feed_the_plugin(env: dict[str, str], tmp: Path, events: int, app: str | None = None) -> dict:
    """Serve `app` (None: the real mount) with the production config on `env`'s fresh database, feed the
    plugin `events` opencode events through bench/hook_driver.mjs until the last is visible, and return
    the driver's result (its times, CPU and the client's counts)."""
    node = shutil.which("node")
    if node is None:
        raise SystemExit("this benchmark needs node (>= 20) on PATH")
    env["DASHBOARD_SECRET_KEY"] = "bench-" + "k" * 32
    prepare_database(env)
    port = free_port()
    with gunicorn(env, port, app=app, log_path=tmp / "gunicorn.log"):
        driver_env = {**env, "DASHBOARD_URL": f"http://127.0.0.1:{port}", "DASHBOARD_AGENT_ID": "opencode-bench",
                      "DASHBOARD_SPOOL_DIR": str(tmp / "spool")}
        print(f"feeding the plugin {events} opencode events ...", flush=True)
        done = subprocess.run([node, str(DRIVER), str(events)], cwd=REPO_ROOT, env=driver_env,
                              capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the driver failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(result: dict, raw_rows_per_s: float) -> bool:
    events, stats = result["events"], result["stats"]
    seconds = (result["lastVisibleMs"] - result["firstSendMs"]) / 1000
    fed_in = (result["lastSendMs"] - result["firstSendMs"]) / 1000
    stored, requests = stats["accepted"] + stats["duplicates"], stats["posts"]
    client_us = 1000 * (result["cpuMs"] - result["driverCpuMs"]) / events
    print(f"{events} events given to the plugin, first send to last visible in {seconds:.2f} s; "
          f"{requests} requests carried {stored} events ({events - stored} snapshots coalesced "
          f"away while waiting), {stats['deadLettered']} dead-lettered, {stats['spooled']} spooled")
    print(f"the plugin took the {events} events in {fed_in:.2f} s ({events / fed_in:.0f}/s), "
          f"{1000 * result['acceptMs'] / events:.1f} µs per event inside its hooks")
    print(f"the last was visible {seconds - fed_in:.2f} s after the last send; {stored} events stored in "
          f"{requests} requests ({stored / max(1, requests):.0f} a request): {stored / seconds:.0f} stored/s")
    print(f"node's CPU from the first send to the last visible: {1000 * result['cpuMs'] / events:.1f} µs per event, "
          f"of which the driver's making of the events {1000 * result['driverCpuMs'] / events:.1f} µs")
    client_met = verdict("shipped hook, the client's CPU per event (the plugin and its delivery, in node)",
                         f"{client_us:.1f} µs", f"<= {CLIENT_US_PER_EVENT} µs", client_us <= CLIENT_US_PER_EVENT)
    rate = events / seconds
    speed = raw_rows_per_s / RAW_ROWS_PER_S_AT_PEER
    target = TARGET_EVENTS_PER_S * speed
    print(f"this machine: raw SQLite {raw_rows_per_s:.0f} rows/s, {speed:.2f} x the afternoon the peer was measured "
          f"({RAW_ROWS_PER_S_AT_PEER}); unscaled, the rate is {rate / TARGET_EVENTS_PER_S:.2f} x the fixed "
          f"target of {TARGET_EVENTS_PER_S} events/s")
    rate_met = verdict("shipped hook, first send to last visible", f"{rate:.0f} events/s",
                       f">= {target:.0f} events/s, 5 x the peer's {PEER_EVENTS_PER_S} scaled by this machine's "
                       f"speed ({speed:.2f})", rate >= target and stats["deadLettered"] == 0)
    return client_met and rate_met


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events to feed the plugin (default 100000)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return 0 if run(parse_args(argv)) else 1


if __name__ == "__main__":
    sys.exit(main())
