"""What the shape of event ids costs ingest once many events are stored: time-first against random.

The dashboard keeps every stored event's id in `inbound_events`' primary key, to tell a repeat. Ids that
begin with the time (what the opencode hook and `python -m shared.emit` make) go in at one end of that
index; random ones (what they made before 2026-12-03) land all over it, so each batch dirties a page of
the index per event, and the commit writes them all. This bench, in-process (falcon.testing, one
thread, a SQLite file): for each kind of id, a database already holding `--stored` events with such
ids, then `--batches` 1 000-event batches of bench/ingest.py's mix with such ids (after a few untimed),
timing the write-locked part of each request (the projections and the commit: what other writers wait
for) and the commit alone. It prints the medians and the ratio random / time-first, from the same run.

Run from the repository root:  .venv/bin/python bench/event_ids.py [--stored 300000] [--batches 20]
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import bench.ingest as ingest_bench  # noqa: E402
from bench.ingest import BATCH_SIZE, EVENTS_PATH, json_headers, random_event_id, raw_row  # noqa: E402
from shared.emit import new_event_id  # noqa: E402

PREFILL_CHUNK = 10_000
WARMUP_BATCHES = 3  # not timed: the first batches insert the mix's messages, later ones update them


def measure(tmp: Path, event_id: Callable[[int], str], stored: int, batches: int) -> tuple[list[float], list[float]]:
    """(write-locked ms, commit ms) of each batch, into a database holding `stored` events first."""
    import peewee
    from falcon import testing

    import functions.events.ingest as ingest
    from functions.events import create_app
    from shared.config import Settings
    from shared.store.db import database, open_database
    from shared.store.migrations import migrate

    path = tmp / f"{event_id.__name__}.db"
    settings = Settings(database_url=f"sqlite:///{path}", api_key=secrets.token_urlsafe(24),
                        dashboard_token=secrets.token_urlsafe(24), log_level="WARNING")
    open_database(settings)
    migrate()
    ingest_bench.event_id = event_id
    prefill(path, stored)
    client = testing.TestClient(create_app(settings))
    headers = json_headers(settings.api_key)
    locked, commits = [], []
    with timing(ingest, "write_in_group", locked), timing(peewee.SqliteDatabase, "commit", commits):
        for n in range(WARMUP_BATCHES + batches):
            body = ingest_bench.batch_body(stored + n * BATCH_SIZE)
            response = client.simulate_post(EVENTS_PATH, body=body, headers=headers)
            if response.status_code != 202:
                raise SystemExit(f"ingest answered {response.status_code}: {response.text}")
    database.close()
    return locked[WARMUP_BATCHES:], commits[WARMUP_BATCHES:]


def prefill(path: Path, rows: int) -> None:
    """`rows` raw events of the bench's mix, stored as ingest stores them, in chunks."""
    now = int(time.time())
    with contextlib.closing(sqlite3.connect(path)) as connection:
        for first in range(0, rows, PREFILL_CHUNK):
            values = [raw_row(ingest_bench.make_event(n, now * 1000), now - 3600)
                      for n in range(first, min(rows, first + PREFILL_CHUNK))]
            with connection:
                connection.executemany("INSERT INTO inbound_events (id, type, agent_id, known, occurred_at,"
                                       " received_at, data) VALUES (?, ?, ?, ?, ?, ?, ?)", values)


@contextlib.contextmanager
def timing(owner: object, name: str, into: list[float]) -> Iterator[None]:
    """Append the milliseconds of every call of `owner.name` to `into` while inside."""
    original = getattr(owner, name)

    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            into.append((time.perf_counter() - started) * 1000)

    setattr(owner, name, timed)
    try:
        yield
    finally:
        setattr(owner, name, original)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stored", type=int, default=300_000, help="events stored before (default 300000)")
    parser.add_argument("--batches", type=int, default=20, help=f"batches of {BATCH_SIZE} timed (default 20)")
    args = parser.parse_args(argv)
    if args.stored < 0 or args.batches < 1:
        parser.error("--stored must be >= 0 and --batches >= 1")
    figures = {}
    # The checkpoint thread may still be closing a WAL file as the directory goes: not worth failing the run.
    with tempfile.TemporaryDirectory(prefix="bench-event-ids-", ignore_cleanup_errors=True) as name:
        for event_id in (new_event_id, random_event_id):
            print(f"{event_id.__name__}: storing {args.stored} events, then {args.batches} batches ...", flush=True)
            locked, commits = measure(Path(name), event_id, args.stored, args.batches)
            figures[event_id] = (statistics.median(locked), statistics.median(commits))
    print(f"\n{args.batches} batches of {BATCH_SIZE} into {args.stored} stored events, medians per batch:")
    for event_id, (locked, commit) in figures.items():
        label = "time-first ids (new_event_id)" if event_id is new_event_id else "random ids (random_event_id)"
        print(f"  {label:32} write-locked {locked:7.1f} ms, of which the commit {commit:6.1f} ms")
    (time_locked, time_commit), (random_locked, random_commit) = figures[new_event_id], figures[random_event_id]
    print(f"random / time-first: write-locked {random_locked / time_locked:.2f} x, commit "
          f"{random_commit / time_commit:.2f} x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
