"""Search, usage and ingest with the index on, at a million messages (SQLite).

One run, on a fresh SQLite database in a temporary directory:
  1. generates --messages messages (default 1 000 000) straight into SQLite, through the real schema
     and its triggers (so the index and the rollup fill as in life): a few hundred agents and sessions
     over 30 days, chat messages of realistic lengths (a few words to a few pages) over a Zipf-shaped
     vocabulary, tool calls with their input and output, assistant messages with tokens and cost;
  2. times GET /api/search (a mix: common, middling and rare words, two words, a prefix, a phrase,
     by agent, by session) and GET /api/usage (every group_by, with and without filters) in-process
     (falcon.testing: the app, its middleware and the database; no HTTP), and reports p50/p95 against
     the targets (search p95 <= 50 ms, usage p95 <= 20 ms);
  3. measures ingest through the real ingest path (POST /api/events, in-process: parsing, the write
     transaction, the projections, the triggers) on that same million-message database, with the
     index and rollup triggers on and with them dropped, in alternating rounds, and reports the rate
     of each and their ratio (target: on >= 0.5 x off), for two mixes: "streaming" (the worst case
     for the index: 3 of 5 events re-send a growing message text, which is re-indexed each time) and
     bench/ingest.py's (todo lists, message updates with figures, heartbeats). Rates are per CPU
     second of the process: on a shared machine the wall clock measures the neighbours too.

Run from the repository root: `.venv/bin/python bench/search.py [--messages N] [--keep]` (`make bench`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from falcon import testing  # noqa: E402

import functions.events  # noqa: E402
import functions.search  # noqa: E402
from bench.ingest import make_event  # noqa: E402
from bench.servers import percentile, verdict  # noqa: E402
from shared.config import Settings  # noqa: E402
from shared.store.db import database, open_database  # noqa: E402
from shared.store.migrations import migrate  # noqa: E402

API_KEY = "bench-agent-key-0123456789abcdef"
TOKEN = "bench-dashboard-token-0123456789"
AGENTS = 300
SESSIONS = 600
DAYS = 30
VOCABULARY = 30_000
SEARCH_TARGET_MS = 50.0
USAGE_TARGET_MS = 20.0
INGEST_TARGET_RATIO = 0.5
INSERT_BATCH = 20_000
RUN = uuid.uuid4().hex[:8]  # event ids of this run: never duplicates of an earlier run's on a kept database
MODELS = ("claude-sonnet-4", "claude-opus-4", "gpt-5", "gemini-2.5-pro")
TOOLS = ("bash", "read", "edit", "grep", "glob", "write", "webfetch")
SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "ta", "vo", "zi", "pe", "sha", "qu", "tor", "ban", "el", "in", "ox",
             "ard", "est", "ul", "ym")


def words(generator: random.Random) -> list[str]:
    """A vocabulary of made-up words, most common first."""
    vocabulary: dict[str, None] = {}
    while len(vocabulary) < VOCABULARY:
        vocabulary["".join(generator.choice(SYLLABLES) for _ in range(generator.randint(2, 4)))] = None
    return list(vocabulary)


class Text:
    """Runs of Zipf-distributed words, cut from one long pre-drawn stream (drawing per word is too slow)."""

    def __init__(self, generator: random.Random, vocabulary: list[str]):
        weights = [1 / (rank + 1) for rank in range(len(vocabulary))]
        self.stream = generator.choices(vocabulary, weights=weights, k=2_000_000)
        self.generator = generator

    def chars(self, length: int) -> str:
        start = self.generator.randrange(len(self.stream) - length // 3 - 2)
        text = " ".join(self.stream[start:start + max(1, length // 6)])
        return text[:length]


def message_length(generator: random.Random) -> int:
    """Chat messages: median ~300 characters, a long tail to several pages."""
    return min(20_000, max(8, int(generator.lognormvariate(5.7, 1.1))))


def generate(connection: sqlite3.Connection, messages: int, seed: int = 14) -> dict:
    """Fill the database straight through SQLite (the triggers fill the index and the rollup)."""
    generator = random.Random(seed)
    vocabulary = words(generator)
    text = Text(generator, vocabulary)
    end = int(time.time())
    start = end - DAYS * 86_400
    agents = [f"agent-{n:03d}" for n in range(AGENTS)]
    sessions = []
    connection.execute("BEGIN")
    connection.executemany("INSERT INTO agents (id, name, type, created_at) VALUES (?, ?, 'primary', ?)",
                           [(agent, agent, start) for agent in agents])
    for n in range(SESSIONS):
        began = generator.randrange(start, end - 3600)
        span = generator.randrange(2 * 3600, 12 * 3600)
        session = (f"ses-{n:04d}", agents[n % AGENTS], began, min(end, began + span), generator.choice(MODELS))
        sessions.append(session)
    connection.executemany("INSERT INTO sessions (id, name, agent_id, started_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                           [(s[0], text.chars(40), s[1], s[2], s[3]) for s in sessions])
    connection.execute("COMMIT")
    rows = []
    for n in range(messages):
        session_id, agent_id, began, ended, model = sessions[n % SESSIONS]
        created = began + (ended - began) * (n // SESSIONS) // max(1, messages // SESSIONS)
        kind = generator.random()
        if kind < 0.3:  # a tool call: its title, input and output
            tool = generator.choice(TOOLS)
            part = {"tool": tool, "callID": f"call-{n}", "args": {"command": text.chars(60)},
                    "output": text.chars(message_length(generator) * 2), "state": "completed"}
            rows.append((f"tool:call-{n}", "tool", text.chars(30), json.dumps([part]), session_id, "tool", agent_id,
                         None, None, None, created))
        elif kind < 0.45:
            rows.append((f"msg-{n}", "chat", text.chars(message_length(generator) // 2), "[]", session_id, "user",
                         agent_id, None, None, None, created))
        else:
            figures = {"input": generator.randrange(200, 60_000), "output": generator.randrange(10, 4000),
                       "reasoning": generator.randrange(0, 2000),
                       "cache": {"read": generator.randrange(0, 50_000), "write": generator.randrange(0, 5000)}}
            rows.append((f"msg-{n}", "chat", text.chars(message_length(generator)), "[]", session_id, "assistant",
                         agent_id, model, round(generator.uniform(0.0001, 0.2), 6), json.dumps(figures), created))
        if len(rows) == INSERT_BATCH or n == messages - 1:
            rows.sort(key=lambda row: row[-1])
            connection.execute("BEGIN")
            connection.executemany(
                "INSERT INTO messages (external_id, type, content, parts, session_id, role, agent, model_id, cost,"
                " tokens, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(*row, row[-1]) for row in rows])
            connection.execute("COMMIT")
            rows.clear()
            if (n + 1) % 100_000 == 0:
                print(f"  {n + 1:,} messages", flush=True)
    return {"vocabulary": vocabulary, "agents": agents, "sessions": [s[0] for s in sessions], "text": text}


# Timing requests ----------------------------------------------------------------------------------------

def timed(client: testing.TestClient, path: str, params: dict) -> tuple[float, float]:
    """The request's wall-clock and CPU milliseconds. Both are reported: on a busy machine the wall clock
    also counts the time the neighbours had the CPU; the CPU time is what the request itself cost."""
    began, began_cpu = time.perf_counter(), time.thread_time()
    response = client.simulate_get(path, params=params, headers={"Authorization": f"Bearer {TOKEN}"})
    elapsed, cpu = (time.perf_counter() - began) * 1000, (time.thread_time() - began_cpu) * 1000
    if response.status_code != 200:
        raise SystemExit(f"{path} {params}: {response.status_code} {response.text}")
    return elapsed, cpu


def search_queries(world: dict, generator: random.Random, count: int) -> list[dict]:
    vocabulary, agents, sessions = world["vocabulary"], world["agents"], world["sessions"]
    makers = [
        lambda: {"q": vocabulary[generator.randrange(20)]},  # in a third of all messages
        lambda: {"q": vocabulary[generator.randrange(200, 2000)]},
        lambda: {"q": vocabulary[generator.randrange(10_000, VOCABULARY)]},  # rare
        lambda: {"q": f"{vocabulary[generator.randrange(50)]} {vocabulary[generator.randrange(500, 3000)]}"},
        lambda: {"q": vocabulary[generator.randrange(100, 1000)][:5] + "*"},  # a prefix
        lambda: {"q": '"' + " ".join(world["text"].chars(30).split()[1:3]) + '"'},  # a phrase
        lambda: {"q": vocabulary[generator.randrange(100, 1000)], "agent_id": generator.choice(agents)},
        lambda: {"q": vocabulary[generator.randrange(100, 1000)], "session_id": generator.choice(sessions)},
    ]
    return [makers[n % len(makers)]() for n in range(count)]


def usage_queries(world: dict, generator: random.Random, count: int) -> list[dict]:
    now = int(time.time())
    makers = [
        lambda: {"group_by": "agent"},
        lambda: {"group_by": "model", "since": now - 7 * 86_400},
        lambda: {"group_by": "session", "agent_id": generator.choice(world["agents"])},
        lambda: {"group_by": "day"},
        lambda: {"group_by": "hour", "since": now - 86_400},
        lambda: {"group_by": "model", "session_id": generator.choice(world["sessions"])},
    ]
    return [makers[n % len(makers)]() for n in range(count)]


def latencies(client: testing.TestClient, path: str, queries: list[dict]) -> tuple[list[float], list[float]]:
    for params in queries[:10]:  # warm the page cache and the pooled connection
        timed(client, path, params)
    wall, cpu = zip(*(timed(client, path, params) for params in queries), strict=True)
    return list(wall), list(cpu)


# Ingest with and without the index --------------------------------------------------------------------

def stream_batch(round_number: int, batch: int, size: int) -> dict:
    """A batch as opencode sends it while agents work: parts streamed and re-sent, message updates with
    growing figures, tool calls."""
    events = []
    now_ms = int(time.time() * 1000)
    for n in range(size):
        serial = f"{RUN}-{round_number}-{batch}-{n}"
        session = f"ses-{(batch * 7 + n) % SESSIONS:04d}"
        message_id = f"bench-{RUN}-{round_number}-{batch}-{n // 5}"
        kind = n % 5
        base = {"id": f"ev-{serial}", "timestamp": now_ms, "agent_id": "bench"}
        if kind in (0, 1, 2):  # the same part, re-sent as it grows
            text = "streamed reply about the walrus migration " * (kind + 1) * 4
            events.append({**base, "type": "message.part.updated", "data": {"part": {
                "id": f"part-{message_id}", "messageID": message_id, "sessionID": session, "type": "text",
                "text": text}}})
        elif kind == 3:
            events.append({**base, "type": "message.updated", "data": {"info": {
                "id": message_id, "sessionID": session, "role": "assistant", "modelID": "claude-sonnet-4",
                "time": {"created": now_ms}, "cost": 0.002 * n,
                "tokens": {"input": 1200 + n, "output": 40 * n, "reasoning": 0, "cache": {"read": 500, "write": 0}}}}})
        else:
            events.append({**base, "type": "tool.execute.after", "data": {
                "tool": "bash", "sessionID": session, "callID": f"call-{serial}", "title": "run the tests",
                "output": "collected 214 items; 214 passed in 12.5s " * 6}})
    return {"events": events}


def ingest_mix_batch(round_number: int, batch: int, size: int) -> dict:
    """bench/ingest.py's mix: todo lists, message updates with figures, heartbeats."""
    now_ms = int(time.time() * 1000)
    return {"events": [make_event(batch * size + n, now_ms) for n in range(size)]}


MIXES = {"streaming": stream_batch, "ingest.py": ingest_mix_batch}


def ingest_rate(client: testing.TestClient, mix: str, round_number: int, batches: int, size: int) -> float:
    """Events per CPU second of this process (which runs the app and SQLite): on a shared machine the
    wall clock measures the neighbours as much as the ingest."""
    bodies = [MIXES[mix](round_number, batch, size) for batch in range(batches)]
    began = time.process_time()
    for body in bodies:
        response = client.simulate_post("/api/events", json=body, headers={"Authorization": f"Bearer {API_KEY}"})
        if response.status_code != 202:
            raise SystemExit(f"ingest: {response.status_code} {response.text}")
    return batches * size / (time.process_time() - began)


def index_ddl(connection: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """What keeps the index and the rollup (the triggers on the source tables, the timeline's indexes)."""
    return connection.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE (type = 'trigger' AND tbl_name <> 'search_documents'"
        " AND (name LIKE 'search\\_%' ESCAPE '\\' OR name LIKE 'usage\\_%' ESCAPE '\\'))"
        " OR name IN ('inbound_events_agent', 'inbound_events_session')"
    ).fetchall()


def set_index(connection: sqlite3.Connection, ddl: list[tuple[str, str, str]], on: bool) -> None:
    connection.execute("BEGIN IMMEDIATE")
    for kind, name, sql in ddl:
        connection.execute(f"DROP {kind.upper()} IF EXISTS {name}")
        if on:
            connection.execute(sql)
    connection.execute("COMMIT")


# The run ------------------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--searches", type=int, default=400)
    parser.add_argument("--usages", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=4, help="ingest rounds each way (on, off, on, off, ...)")
    parser.add_argument("--keep", action="store_true", help="keep the database (its path is printed)")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="bench-search-"))
    path = directory / "bench.db"
    settings = Settings(database_url=f"sqlite:///{path}", api_key=API_KEY, dashboard_token=TOKEN,
                        max_body_bytes=8 * 1024 * 1024, temporal_address=None)
    open_database(settings)
    migrate()
    database.close()
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode = wal")
    connection.execute("PRAGMA synchronous = 1")
    print(f"generating {args.messages:,} messages in {path} ...", flush=True)
    began = time.perf_counter()
    world = generate(connection, args.messages)
    generated_s = time.perf_counter() - began
    documents = connection.execute("SELECT COUNT(*) FROM search_documents").fetchone()[0]
    rollup_rows = connection.execute("SELECT COUNT(*) FROM usage_rollup").fetchone()[0]
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size_mb = path.stat().st_size / 1e6
    print(f"generated in {generated_s:.0f} s: {documents:,} search documents, {rollup_rows:,} rollup rows, "
          f"{size_mb:,.0f} MB", flush=True)

    generator = random.Random(1)
    search_client = testing.TestClient(functions.search.create_app(settings))
    searches = latencies(search_client, "/api/search", search_queries(world, generator, args.searches))
    usages = latencies(search_client, "/api/usage", usage_queries(world, generator, args.usages))

    events_client = testing.TestClient(functions.events.create_app(settings))
    ddl = index_ddl(connection)
    rates: dict[tuple[str, bool], list[float]] = {(mix, on): [] for mix in MIXES for on in (True, False)}
    ingest_rate(events_client, "streaming", 0, 5, 100)  # warm up
    for round_number in range(1, args.rounds * 2 + 1):
        on = round_number % 2 == 1
        set_index(connection, ddl, on)
        for mix in MIXES:
            rates[mix, on].append(ingest_rate(events_client, mix, round_number, 40, 100))
    set_index(connection, ddl, True)
    connection.close()
    database.close()

    (searches, search_cpu), (usages, usage_cpu) = searches, usages
    search_p95, usage_p95 = percentile(searches, 0.95), percentile(usages, 0.95)
    print()
    print(f"messages: {args.messages:,} ({AGENTS} agents, {SESSIONS} sessions, {DAYS} days); "
          f"database {size_mb:,.0f} MB")
    print(f"search  ({len(searches)} queries): p50 {percentile(searches, 0.5):.1f} ms, p95 {search_p95:.1f} ms, "
          f"max {max(searches):.1f} ms  (target p95 <= {SEARCH_TARGET_MS:.0f} ms: "
          f"{'met' if search_p95 <= SEARCH_TARGET_MS else 'MISSED'}); CPU p50 {percentile(search_cpu, 0.5):.1f} ms,"
          f" p95 {percentile(search_cpu, 0.95):.1f} ms")
    verdict("search p95", f"{search_p95:.1f} ms", f"<= {SEARCH_TARGET_MS:.0f} ms", search_p95 <= SEARCH_TARGET_MS)
    print(f"usage   ({len(usages)} queries): p50 {percentile(usages, 0.5):.1f} ms, p95 {usage_p95:.1f} ms  "
          f"(target p95 <= {USAGE_TARGET_MS:.0f} ms: {'met' if usage_p95 <= USAGE_TARGET_MS else 'MISSED'});"
          f" CPU p50 {percentile(usage_cpu, 0.5):.1f} ms, p95 {percentile(usage_cpu, 0.95):.1f} ms")
    verdict("usage p95", f"{usage_p95:.1f} ms", f"<= {USAGE_TARGET_MS:.0f} ms", usage_p95 <= USAGE_TARGET_MS)
    print(f"load average during the run: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}"
          f" on {os.cpu_count()} CPUs")
    for mix in MIXES:
        on_rate, off_rate = statistics.median(rates[mix, True]), statistics.median(rates[mix, False])
        ratio = on_rate / off_rate
        print(f"ingest  ({mix} mix, batches of 100, in-process, events per CPU second, median of {args.rounds}):"
              f" {on_rate:,.0f}/s with the index and rollup, {off_rate:,.0f}/s without; ratio {ratio:.2f}"
              f" (target >= {INGEST_TARGET_RATIO}: {'met' if ratio >= INGEST_TARGET_RATIO else 'MISSED'})")
        verdict(f"ingest with the search index / without ({mix} mix)", f"{ratio:.2f}", f">= {INGEST_TARGET_RATIO}",
                ratio >= INGEST_TARGET_RATIO)
    if args.keep:
        print(f"kept: {path}")
    else:
        for file in directory.iterdir():
            file.unlink()
        directory.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
