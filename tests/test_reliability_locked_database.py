"""Reliability: a database locked by a long writer in another process.

Another process (a backup tool, a migration, a stuck script) holds SQLite's write lock — `BEGIN
EXCLUSIVE` — for much longer than the busy timeout (here 1 s). Every write waits for the lock up to
the busy timeout, then answers 503 `database_unavailable` with Retry-After: never a 500, never a
half-written request. Reads go on (WAL). When the lock is gone, the same requests succeed.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.database_rows import changed_tables, row_counts
from tests.databases import long_writer, only_on_sqlite
from tests.processes import Answer, gunicorn
from tests.support import API_KEY, DASHBOARD, DASHBOARD_TOKEN, assert_canonical_error
from tests.write_requests import SUCCESS_STATUSES, one_of_each_write

pytestmark = [pytest.mark.reliability,
              only_on_sqlite("another process holds SQLite's lock on the file; PostgreSQL's writer lock is "
                             "tests/test_write_transactions.py's")]

BUSY_TIMEOUT_S = 1.0
# The busy timeout bounds the whole wait, also for a write that first queued behind another request of
# its process waiting for the same lock (it used to wait twice as long); plus time to answer on a busy machine.
LONGEST_WAIT_S = BUSY_TIMEOUT_S + 0.6

def timed(server, request) -> tuple[Answer, float]:
    started = time.monotonic()
    answer = server.send(*request)
    return answer, time.monotonic() - started


def test_writes_wait_for_a_long_writer_then_answer_503_and_succeed_when_it_is_gone(tmp_path, figures):
    database = tmp_path / "dashboard.db"
    env = {"DASHBOARD_API_KEY": API_KEY, "DASHBOARD_TOKEN": DASHBOARD_TOKEN,
           "DATABASE_BUSY_TIMEOUT_MS": str(int(BUSY_TIMEOUT_S * 1000))}
    with gunicorn(f"sqlite:///{database}", env, workers=2) as server:
        assert server.send(*one_of_each_write("setup")[1]).status_code == 202  # the agent the task will belong to
        before = row_counts(database)

        with long_writer(database), ThreadPoolExecutor(max_workers=10) as pool:
            # Ten at once, over both workers: some queue behind their own process's waiting writer.
            locked = list(pool.map(lambda request: timed(server, request), one_of_each_write("locked") * 2))
            read = server.send("GET", "/api/todos", headers=DASHBOARD)
            health = server.send("GET", "/api/health")

        waits = sorted(seconds for _, seconds in locked)
        figures("a long writer holds the lock (busy timeout 1 s)", {
            "writes sent while locked": len(locked),
            "statuses": sorted(answer.status_code for answer, _ in locked),
            "waits (s)": ", ".join(f"{seconds:.2f}" for seconds in waits),
        })
        for answer, seconds in locked:
            assert_canonical_error(answer, 503, "database_unavailable")
            assert "busy" in answer.json["error"]["message"]
            assert answer.headers["retry-after"].isdigit()
            assert BUSY_TIMEOUT_S * 0.9 <= seconds <= LONGEST_WAIT_S, waits
        assert changed_tables(before, row_counts(database)) == {}  # nothing half-written
        assert read.status_code == 200  # WAL: readers do not wait for writers
        assert health.status_code == 200

        # The lock is gone: the same kinds of write succeed, each writing what it should.
        statuses = [server.send(*request).status_code for request in one_of_each_write("after")]
        assert statuses == SUCCESS_STATUSES
        changed = changed_tables(before, row_counts(database))
        assert {"inbound_events", "agent_tasks", "alert_rules", "changes"} <= changed.keys()
        assert changed["inbound_events"] == (before["inbound_events"], before["inbound_events"] + 3)
