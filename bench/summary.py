"""The closing summary of `make bench`: every figure the benchmarks printed with its target and verdict.

Each benchmark prints its verdict lines (bench.servers.verdict) and appends them to the file BENCH_SUMMARY
names; this prints that file's lines together, and how many targets were met.

Run:  .venv/bin/python bench/summary.py FILE
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else None
    lines = path.read_text(encoding="utf-8").splitlines() if path and path.exists() else []
    met = sum(1 for line in lines if line.endswith("-- met"))
    print(f"\n== make bench: {met} of {len(lines)} targets met ==")
    for line in lines:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
