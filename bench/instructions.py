"""Instructions the server spends on the shipped hook's batches, counted by callgrind: a figure that moves
0.02 % between runs of the same code, where timing the same batches in-process moved ±15 % on the shared
2-core reference machine (docs/benchmarks.md, "Issue 16, the sixth round").

1. The hook's requests: bench/hook_driver.mjs feeds the plugin `--events` opencode events, as bench/hook.py
   does, against the real stack behind bench/capture_app.py, which keeps each POST /api/events body.
2. bench/post_batches.py, under `valgrind --tool=callgrind`, makes a fresh SQLite database, posts the
   first `--warm` bodies in-process (falcon.testing, no HTTP, Temporal off), then the next `--batches`
   with callgrind's instrumentation on: only those are counted.
3. `--compare REF` counts the same bodies on REF's code too (a temporary git worktree), alongside, and
   prints the ratio: this checkout's instructions over REF's.

It needs node and valgrind (apt-get install valgrind); it is not part of `make bench`, and has no target.
Run from the repository root:
    .venv/bin/python bench/instructions.py [--events 100000] [--warm 3] [--batches 10] [--compare REF]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.hook import feed_the_plugin  # noqa: E402
from bench.servers import SERVER_PYTHON, bench_env  # noqa: E402

POSTER = REPO_ROOT / "bench" / "post_batches.py"  # the child, under valgrind
COLLECTED = re.compile(r"Collected : (\d+)")


def capture_bodies(events: int, into: Path) -> list[Path]:
    """The bodies of the hook's POST /api/events requests for `events` opencode events, in the order sent."""
    into.mkdir()
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as tmp:
        env = {**bench_env(Path(tmp)), "BENCH_CAPTURE_DIR": str(into)}
        feed_the_plugin(env, Path(tmp), events, app="bench.capture_app:app")
    return sorted(into.iterdir())


def start_count(checkout: Path, bodies: list[Path], warm: int, batches: int, out: Path) -> subprocess.Popen:
    """Count, in the background, the instructions of posting `bodies[warm:warm + batches]` on `checkout`'s code."""
    valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    child = [SERVER_PYTHON, str(POSTER), str(warm), *map(str, bodies[:warm + batches])]
    return subprocess.Popen([*valgrind, *child], cwd=checkout, env={**os.environ, "PYTHONPATH": str(checkout)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def instructions(count: subprocess.Popen) -> int:
    stdout, stderr = count.communicate()
    found = COLLECTED.search(stderr)
    if count.returncode != 0 or found is None:
        raise SystemExit(f"the count failed ({count.returncode}):\n{stdout}{stderr[-3000:]}")
    return int(found.group(1))


def worktree_of(ref: str, tmp: Path) -> Path:
    checkout = tmp / "compare"
    subprocess.run(["git", "worktree", "add", "--detach", str(checkout), ref], cwd=REPO_ROOT, check=True,
                   capture_output=True)
    return checkout


def run(args: argparse.Namespace) -> None:
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("bench/instructions.py needs valgrind (apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as tmp:
        bodies = capture_bodies(args.events, Path(tmp) / "bodies")
        if len(bodies) < args.warm + args.batches:
            raise SystemExit(f"the hook sent {len(bodies)} requests: fewer than --warm + --batches")
        counted = bodies[args.warm:args.warm + args.batches]
        events = sum(len(json.loads(path.read_bytes()).get("events", [None])) for path in counted)
        print(f"the hook sent {len(bodies)} requests; counting {len(counted)} of them ({events} events) "
              f"after {args.warm} ...", flush=True)
        checkouts = {"this checkout": REPO_ROOT}
        if args.compare:
            checkouts[args.compare] = worktree_of(args.compare, Path(tmp))
        try:
            counts = {name: start_count(checkout, bodies, args.warm, args.batches, Path(tmp) / f"callgrind.{n}")
                      for n, (name, checkout) in enumerate(checkouts.items())}
            totals = {name: instructions(count) for name, count in counts.items()}
        finally:
            if args.compare:
                subprocess.run(["git", "worktree", "remove", "--force", str(checkouts[args.compare])],
                               cwd=REPO_ROOT, check=False, capture_output=True)
        for name, total in totals.items():
            print(f"{name}: {total / 1e6:,.0f} M instructions, {total / len(counted) / 1e6:,.1f} M a batch, "
                  f"{total / events:,.0f} an event")
        if args.compare:
            print(f"this checkout / {args.compare}: {totals['this checkout'] / totals[args.compare]:.4f}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events to feed the plugin (default 100000)")
    parser.add_argument("--warm", type=int, default=3, help="requests posted before counting (default 3)")
    parser.add_argument("--batches", type=int, default=10, help="requests counted (default 10)")
    parser.add_argument("--compare", metavar="REF", help="also count the same requests on REF's code")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
