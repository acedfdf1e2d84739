"""The Linear integration under load, with no network: a full sync and 2 000 webhook deliveries.

What one run measures, on a fresh SQLite database in a temporary directory:
  a. full sync   - 10 000 issues across 20 projects (two teams, ten workflow states) served by a local
                   stand-in for Linear's GraphQL API (tests/fake_linear.py: real cursor pagination, Linear's
                   response shape) on 127.0.0.1, reached through LINEAR_API_URL like the real thing.
                   Prints GraphQL requests (target <= 45), wall time and issues/s; then an idle incremental
                   tick's requests (target <= 2).
  b. webhooks    - 2 000 deliveries (issue updates moving cards, issue creates, comments), each signed
                   with a real HMAC over its bytes, through the webhook function in-process
                   (falcon.testing), one at a time. Prints p50/p99/max latency (target p99 <= 20 ms).

Run from the repository root:
    .venv/bin/python bench/linear_sync.py [--issues 10000] [--projects 20] [--deliveries 2000]
Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
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

import functions.linear_webhook  # noqa: E402
from bench.servers import verdict  # noqa: E402
from functions.linear_sync.graphql_client import LinearClient  # noqa: E402
from functions.linear_sync.sync import run_sync  # noqa: E402
from shared.config import Settings  # noqa: E402
from shared.store.db import database, open_database  # noqa: E402
from shared.store.migrations import migrate  # noqa: E402
from shared.store.models import LinearIssue  # noqa: E402
from tests.fake_linear import FakeLinear  # noqa: E402
from tests.linear_support import (  # noqa: E402
    OTHER_TEAM,
    STATES,
    TEAM,
    comment_data,
    issue_data,
    issue_node,
    project_node,
    state_node,
    webhook,
)

API_KEY = "lin_api_bench0123456789abcdefghijklmnopqrstuvwxyz"
WEBHOOK_SECRET = "lin_wh_bench0123456789abcdefghijklmnopqrstuvwxyz"
MAX_REQUESTS = 45
MAX_IDLE_REQUESTS = 2
MAX_P99_MS = 20.0


def linear_world(issue_count: int, project_count: int) -> FakeLinear:
    teams = [TEAM, OTHER_TEAM]
    other_states = [{**state, "id": f"ops-{state['id']}"} for state in STATES]
    states = [state_node(state, TEAM) for state in STATES] + [state_node(s, OTHER_TEAM) for s in other_states]
    projects = [project_node(f"proj-{p}", f"Project {p}", team=teams[p % 2], progress=(p % 10) / 10)
                for p in range(project_count)]
    issues = []
    for n in range(issue_count):
        project = n % project_count
        team = teams[project % 2]
        state = (STATES if team is TEAM else other_states)[n % 5]
        issues.append(issue_node(f"issue-{n}", number=n + 1, project_id=f"proj-{project}",
                                 project_name=f"Project {project}", team=team, state=state, sort_order=float(n),
                                 labels=("bug", "backend") if n % 3 else ("feature",)))
    return FakeLinear(states=states, projects=projects, issues=issues, api_key=API_KEY)


def bench_full_sync(settings: Settings, fake: FakeLinear) -> bool:
    client = LinearClient.from_settings(settings)
    started = time.perf_counter()
    with database.connection_context():
        report = run_sync(client, full=True)
    wall = time.perf_counter() - started
    cached = LinearIssue.select().count()
    print(f"full sync: {report.requests} GraphQL requests (server saw {len(fake.requests)}; target <= {MAX_REQUESTS}), "
          f"{report.fetched['issues']} issues + {report.fetched['projects']} projects + "
          f"{report.fetched['states']} states in {wall:.2f} s = {report.fetched['issues'] / wall:,.0f} issues/s "
          f"({cached} issues cached)")
    fake.requests.clear()
    with database.connection_context():
        idle = run_sync(client)
    print(f"idle incremental tick: {idle.requests} request(s) (target <= {MAX_IDLE_REQUESTS}), "
          f"{idle.seconds * 1000:.0f} ms")
    every_issue = cached == len(fake.data["issues"])
    full = verdict("Linear full sync, GraphQL requests", f"{report.requests} ({cached} issues cached)",
                   f"<= {MAX_REQUESTS}, every issue", report.requests <= MAX_REQUESTS and every_issue)
    tick = verdict("Linear idle tick, GraphQL requests", str(idle.requests), f"<= {MAX_IDLE_REQUESTS}",
                   idle.requests <= MAX_IDLE_REQUESTS)
    return full and tick


def deliveries(count: int, issue_count: int) -> list[bytes]:
    """Realistic traffic: mostly card moves on synced issues, some new issues, some comments."""
    bodies = []
    for n in range(count):
        if n % 10 == 0:
            payload = webhook("Comment", "create", comment_data(f"comment-{n}", body=f"Comment {n}"))
        elif n % 10 == 1:
            payload = webhook("Issue", "create", issue_data(f"new-issue-{n}", number=100_000 + n,
                                                            project_id=f"proj-{n % 20 * 2}"))
        else:
            payload = webhook("Issue", "update", issue_data(f"issue-{(n * 7) % issue_count}", number=n,
                                                            project_id=f"proj-{(n * 7) % issue_count % 20}",
                                                            state=STATES[n % 5]))
        bodies.append(json.dumps(payload).encode())
    return bodies


def bench_webhooks(settings: Settings, count: int, issue_count: int) -> bool:
    client = testing.TestClient(functions.linear_webhook.create_app(settings))
    bodies = deliveries(count, issue_count)
    latencies = []
    statuses: dict[int, int] = {}
    for body in bodies:
        headers = {"Content-Type": "application/json; charset=utf-8", "Linear-Delivery": str(uuid.uuid4()),
                   "Linear-Signature": hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()}
        started = time.perf_counter()
        response = client.simulate_post("/api/linear/webhook", body=body, headers=headers)
        latencies.append((time.perf_counter() - started) * 1000)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    cuts = statistics.quantiles(latencies, n=100)
    p50, p99 = cuts[49], cuts[98]
    print(f"webhooks: {count} signed deliveries, statuses {statuses}, p50 {p50:.2f} ms, p99 {p99:.2f} ms "
          f"(target <= {MAX_P99_MS:.0f} ms), max {max(latencies):.2f} ms, "
          f"{count / (sum(latencies) / 1000):,.0f} deliveries/s one at a time")
    return verdict("Linear webhooks p99", f"{p99:.2f} ms, statuses {statuses}", f"<= {MAX_P99_MS:.0f} ms, all 200",
                   p99 <= MAX_P99_MS and statuses == {200: count})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=10_000)
    parser.add_argument("--projects", type=int, default=20)
    parser.add_argument("--deliveries", type=int, default=2_000)
    args = parser.parse_args()
    fake = linear_world(args.issues, args.projects)
    with tempfile.TemporaryDirectory() as directory, fake.serve() as url:
        settings = Settings(database_url=f"sqlite:///{Path(directory) / 'bench.db'}", linear_api_key=API_KEY,
                            linear_webhook_secret=WEBHOOK_SECRET, linear_api_url=url)
        open_database(settings)
        migrate()
        sync_ok = bench_full_sync(settings, fake)
        webhooks_ok = bench_webhooks(settings, args.deliveries, args.issues)
        database.close()
    print("targets met" if sync_ok and webhooks_ok else "TARGET MISSED")
    return 0 if sync_ok and webhooks_ok else 1


if __name__ == "__main__":
    sys.exit(main())
