"""A commit in one process wakes the feed's readers of every process (shared/store/wakeup.py).

The readers here poll once a minute, so a change that reaches them within the tests' deadline came by
a poke from the writer's process. A reader that misses its pokes still gets every change at its poll.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from functions.sse.hub import FeedHub
from shared.store.commit_watch import CommitWatch
from shared.store.db import database, write_transaction
from shared.store.feed import record_change
from shared.store.wakeup import Wakeups
from tests.databases import ON_POSTGRES

pytestmark = pytest.mark.skipif(ON_POSTGRES, reason="PostgreSQL's readers poll (docs/postgresql.md)")

REPO_ROOT = Path(__file__).resolve().parent.parent
SLOW_POLL_S = 60.0

# Another process (as a cron job or the Temporal worker would) commits one change to the feed.
RECORD_IN_ANOTHER_PROCESS = """
import sys
from shared.config import Settings
from shared.store.db import database, open_database, write_transaction
from shared.store.feed import record_change
open_database(Settings(database_url=sys.argv[1]))
with database.connection_context(), write_transaction():
    record_change("file", "test", {"from": "another process"})
"""


def record_in_another_process(database_url: str) -> None:
    subprocess.run([sys.executable, "-c", RECORD_IN_ANOTHER_PROCESS, database_url], cwd=REPO_ROOT,
                   check=True, timeout=60)


def registrations() -> list[str]:
    return os.listdir(database.obj.wakeups.directory) if database.obj.wakeups.directory.exists() else []


def wait_for(condition, limit_s: float = 20.0) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_commit_in_another_process_reaches_a_stream_before_the_poll(settings, db):
    hub = FeedHub(poll_interval_s=SLOW_POLL_S, queue_size=10)
    try:
        subscription = hub.subscribe(["file"])
        wait_for(lambda: registrations())  # the poller listens
        record_in_another_process(settings.database_url)
        change = subscription.queue.get(timeout=SLOW_POLL_S / 3)
        assert change["payload"] == {"from": "another process"}
    finally:
        hub.stop()


def test_a_commit_in_another_process_wakes_the_commit_watch(settings, db):
    watch = CommitWatch(interval_s=SLOW_POLL_S)
    seen = watch.generation()
    wait_for(lambda: registrations())
    record_in_another_process(settings.database_url)
    assert watch.wait_past(seen, SLOW_POLL_S / 3) > seen


def test_a_stream_that_misses_its_pokes_still_gets_every_change_at_its_poll(db):
    hub = FeedHub(poll_interval_s=0.05, queue_size=10)
    try:
        subscription = hub.subscribe(["file"])
        wait_for(lambda: registrations())
        for name in registrations():  # nobody pokes this poller any more
            (database.obj.wakeups.directory / name).unlink()
        with database.connection_context(), write_transaction():
            ids = [record_change("file", "test", {"n": n}) for n in range(3)]
        assert [subscription.queue.get(timeout=20)["id"] for _ in ids] == ids
    finally:
        hub.stop()


def test_a_reader_whose_process_is_gone_is_forgotten_at_the_next_poke(tmp_path):
    wakeups = Wakeups(str(tmp_path / "dashboard.db"))
    listening = wakeups.listen()
    wakeups.directory.joinpath("4194304-1").touch()  # registered by a process killed before it unregistered
    try:
        wakeups.poke()
        assert sorted(os.listdir(wakeups.directory)) == [listening.name]
    finally:
        listening.close()
    assert os.listdir(wakeups.directory) == []


def test_off_linux_there_is_no_rendezvous_and_the_readers_poll(tmp_path, monkeypatch):
    """macOS has no abstract socket namespace: the database opens without a rendezvous (readers keep their
    timed poll) rather than failing when the first stream subscribes."""
    from shared.config import Settings
    from shared.store.db import open_database

    monkeypatch.setattr(sys, "platform", "darwin")
    db = open_database(Settings(database_url=f"sqlite:///{tmp_path / 'mac.db'}"))
    assert db.wakeups is None
    monkeypatch.setattr(sys, "platform", "linux")
    assert open_database(Settings(database_url=f"sqlite:///{tmp_path / 'linux.db'}")).wakeups is not None
