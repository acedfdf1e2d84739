"""Reliability: the disk fills up under a running server.

How the disk is "filled": the server's worker processes get a file-size limit of one byte
(RLIMIT_FSIZE, set from outside with prlimit(2)). From then on every write SQLite makes to the database
or its WAL fails inside the kernel — short (SQLITE_FULL, "database or disk is full") or refused with
EFBIG (SQLITE_IOERR, "disk I/O error") — exactly the errors a full disk gives, through the server's real
SQLite calls, and it works as root (CI runs as root, where chmod, a read-only directory or
`chattr +i` on an overlay filesystem stop nothing, and mounting a small tmpfs needs privileges a
container may lack). Raising the limit again is the disk freed. Linux only (prlimit), like CI.

Every write answers 503 `database_unavailable` with Retry-After, writes nothing, the workers stay up,
reads go on, and once there is room again the same writes succeed on an intact database.
"""

from __future__ import annotations

import contextlib
import resource
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.database_rows import changed_tables, reading, row_counts
from tests.databases import only_on_sqlite
from tests.processes import gunicorn
from tests.support import API_KEY, DASHBOARD, DASHBOARD_TOKEN, assert_canonical_error
from tests.write_requests import SUCCESS_STATUSES, one_of_each_write

pytestmark = [pytest.mark.reliability,
              pytest.mark.skipif(not hasattr(resource, "prlimit"), reason="needs Linux's prlimit(2)"),
              only_on_sqlite("fills the disk under the server's SQLite file; PostgreSQL's disk is its server's")]


@contextlib.contextmanager
def disk_full(pids: set[int]) -> Iterator[None]:
    """No file can grow past one byte in these processes until the block ends."""
    limits = {pid: resource.prlimit(pid, resource.RLIMIT_FSIZE) for pid in pids}
    for pid, (_, hard) in limits.items():
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (1, hard))  # the soft limit: any user may raise it back
    try:
        yield
    finally:
        for pid, previous in limits.items():
            resource.prlimit(pid, resource.RLIMIT_FSIZE, previous)


def test_a_full_disk_answers_503_keeps_serving_and_recovers_when_there_is_room(tmp_path, figures):
    database = tmp_path / "dashboard.db"
    env = {"DASHBOARD_API_KEY": API_KEY, "DASHBOARD_TOKEN": DASHBOARD_TOKEN}
    with gunicorn(f"sqlite:///{database}", env, workers=2) as server:
        assert server.send(*one_of_each_write("setup")[1]).status_code == 202  # the agent the task needs
        before = row_counts(database)
        workers = server.worker_pids()

        with disk_full(workers), ThreadPoolExecutor(max_workers=10) as pool:
            full = list(pool.map(lambda request: server.send(*request), one_of_each_write("full") * 4))
            read = server.send("GET", "/api/todos", headers=DASHBOARD)
            unchanged = changed_tables(before, row_counts(database))
            alive = server.worker_pids()

        messages = sorted({answer.json["error"]["message"] for answer in full if answer.status_code == 503})
        figures("the disk is full (RLIMIT_FSIZE of 1 byte on the workers)", {
            "writes sent while full": len(full),
            "statuses": sorted(answer.status_code for answer in full),
            "messages": messages,
        })
        for answer in full:
            error = assert_canonical_error(answer, 503, "database_unavailable")
            assert "disk is full" in error["message"]
            assert answer.headers["retry-after"] == "30"  # a full disk waits for a person, not a moment
        assert unchanged == {}  # nothing half-written
        assert alive == workers  # no worker died of it
        assert read.status_code == 200

        # Room again: the same writes succeed, and the database is intact.
        assert [server.send(*request).status_code for request in one_of_each_write("after")] == SUCCESS_STATUSES
        assert server.send("GET", "/api/health").status_code == 200
    with reading(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert changed_tables(before, row_counts(database))["inbound_events"] == (
        before["inbound_events"], before["inbound_events"] + 3)
