"""Instructions the server spends on the shipped hook's batches, counted by callgrind: a figure that moves
0.02 % between runs of the same code, where timing the same batches in-process moved ±15 % on the shared
2-core reference machine (docs/benchmarks.md, "Issue 16, the sixth round").

1. The hook's requests: bench/hook_driver.mjs feeds the plugin `--events` opencode events, as bench/hook.py
   does, against the real stack behind bench/capture_app.py, which keeps each POST /api/events body.
2. bench/post_batches.py, under `valgrind --tool=callgrind`, makes a fresh SQLite database, posts the
   first `--warm` bodies in-process to the mounted WSGI app (no HTTP, Temporal off), then the next
   `--batches` with callgrind's instrumentation on: only those, and only the thread that posts them, are
   counted (the other threads' count, the WAL checkpoints', is printed apart).
3. `--compare REF` counts the same bodies on REF's code too (a temporary git worktree), alongside, and
   prints the ratio: this checkout's instructions over REF's.

`--single N` counts N single-event requests instead, bench/ingest.py's mix (phase b), after `--warm`
of them (default 300): the app's share of what b/a measures.

It needs node and valgrind (apt-get install valgrind); it is not part of `make bench`, and has no target.
Run from the repository root:
    .venv/bin/python bench/instructions.py [--events 100000] [--warm 3] [--batches 10] [--compare REF]
    .venv/bin/python bench/instructions.py --single 1000 [--warm 300] [--compare REF]
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
TOTALS = re.compile(r"^totals: (\d+)", re.MULTILINE)


def capture_bodies(events: int, into: Path) -> list[Path]:
    """The bodies of the hook's POST /api/events requests for `events` opencode events, in the order sent."""
    into.mkdir()
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as tmp:
        env = {**bench_env(Path(tmp)), "BENCH_CAPTURE_DIR": str(into)}
        feed_the_plugin(env, Path(tmp), events, app="bench.capture_app:app")
    return sorted(into.iterdir())


def single_bodies(count: int, into: Path) -> list[Path]:
    """`count` bodies of one event each, of the ingest bench's mix, in the order to send."""
    from bench.ingest import event_body

    into.mkdir()
    for n in range(count):
        (into / f"{n:07d}.json").write_bytes(event_body(n))
    return sorted(into.iterdir())


def start_count(checkout: Path, bodies: list[Path], warm: int, out: Path) -> subprocess.Popen:
    """Count, in the background, the instructions of posting `bodies[warm:]` on `checkout`'s code: one
    callgrind file per thread, `out`-01 the thread that posts."""
    valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--separate-threads=yes",
                f"--callgrind-out-file={out}"]
    child = [SERVER_PYTHON, str(POSTER), str(warm), *map(str, bodies)]
    return subprocess.Popen([*valgrind, *child], cwd=checkout, env={**os.environ, "PYTHONPATH": str(checkout)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def instructions(count: subprocess.Popen, out: Path) -> tuple[int, int]:
    """The instructions of the requests' own thread, and of every other thread (the WAL checkpoints').
    The other threads wake on the clock, which runs ~50 times faster against code slowed by valgrind:
    their count depends on the machine's speed, and is given apart."""
    stdout, stderr = count.communicate()
    found = COLLECTED.search(stderr)
    if count.returncode != 0 or found is None:
        raise SystemExit(f"the count failed ({count.returncode}):\n{stdout}{stderr[-3000:]}")
    requests = int(TOTALS.search(Path(f"{out}-01").read_text()).group(1))
    return requests, int(found.group(1)) - requests


def worktree_of(ref: str, tmp: Path) -> Path:
    checkout = tmp / "compare"
    subprocess.run(["git", "worktree", "add", "--detach", str(checkout), ref], cwd=REPO_ROOT, check=True,
                   capture_output=True)
    return checkout


def run(args: argparse.Namespace) -> None:
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("bench/instructions.py needs valgrind (apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as tmp:
        if args.single:
            bodies = single_bodies(args.warm + args.single, Path(tmp) / "bodies")
            print(f"counting {args.single} single-event requests after {args.warm} ...", flush=True)
        else:
            bodies = capture_bodies(args.events, Path(tmp) / "bodies")
            if len(bodies) < args.warm + args.batches:
                raise SystemExit(f"the hook sent {len(bodies)} requests: fewer than --warm + --batches")
            print(f"the hook sent {len(bodies)} requests; counting {args.batches} of them after {args.warm} ...",
                  flush=True)
        counted = bodies[args.warm:args.warm + (args.single or args.batches)]
        events = sum(len(json.loads(path.read_bytes()).get("events", [None])) for path in counted)
        checkouts = {"this checkout": REPO_ROOT}
        if args.compare:
            checkouts[args.compare] = worktree_of(args.compare, Path(tmp))
        try:
            posted = bodies[:args.warm + len(counted)]
            outs = {name: Path(tmp) / f"callgrind.{n}" for n, name in enumerate(checkouts)}
            counts = {name: start_count(checkout, posted, args.warm, outs[name])
                      for name, checkout in checkouts.items()}
            totals, others = {}, {}
            for name, count in counts.items():
                totals[name], others[name] = instructions(count, outs[name])
        finally:
            if args.compare:
                subprocess.run(["git", "worktree", "remove", "--force", str(checkouts[args.compare])],
                               cwd=REPO_ROOT, check=False, capture_output=True)
        for name, total in totals.items():
            print(f"{name}: {total / 1e6:,.0f} M instructions, {total / len(counted) / 1e6:,.2f} M a request, "
                  f"{total / events:,.0f} an event ({events} events); other threads {others[name] / 1e6:,.0f} M")
        if args.compare:
            print(f"this checkout / {args.compare}: {totals['this checkout'] / totals[args.compare]:.4f}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events to feed the plugin (default 100000)")
    parser.add_argument("--warm", type=int, help="requests posted before counting (default 3, or 300 with --single)")
    parser.add_argument("--batches", type=int, default=10, help="the hook's requests counted (default 10)")
    parser.add_argument("--single", type=int, default=0, metavar="N",
                        help="count N single-event requests of bench/ingest.py's mix instead of the hook's batches")
    parser.add_argument("--compare", metavar="REF", help="also count the same requests on REF's code")
    args = parser.parse_args(argv)
    if args.warm is None:
        args.warm = 300 if args.single else 3
    return args


def main(argv: list[str] | None = None) -> int:
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
