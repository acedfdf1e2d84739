"""A commit's pages reach the database file from a thread of their own, not inside a writer's COMMIT
(shared/store/checkpoints.py), so no writer waits behind a checkpoint's fsyncs."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from shared.store import checkpoints
from shared.store.checkpoints import BACKSTOP_PAGES, Checkpointer
from shared.store.db import database
from tests.databases import ON_POSTGRES
from tests.support import AGENT, event
from tests.temporal_support import wait_for

pytestmark = pytest.mark.skipif(ON_POSTGRES, reason="WAL checkpoints are SQLite's")


def database_file(settings) -> Path:
    return Path(settings.database_url.removeprefix("sqlite:///"))


def checkpoint_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "wal-checkpoints"]


def post(client, n: int) -> None:
    response = client.simulate_post("/api/events", json=event("agent.heartbeat", {"id": f"agent-{n}"}), headers=AGENT)
    assert response.status_code == 202, response.text


def test_committed_pages_reach_the_database_file_with_no_further_write(events_client, settings):
    path = database_file(settings)
    post(events_client, 1)  # the migrations' pages and this event's are in the WAL, far below the backstop
    before = path.stat().st_size
    post(events_client, 2)
    # Nothing else writes: only the checkpoint thread can move the pages into the file.
    wait_for(lambda: path.stat().st_size > before, timeout=30, what="the checkpoint")
    assert path.stat().st_size > 4096
    with sqlite3.connect(path) as reader:
        assert reader.execute("SELECT COUNT(*) FROM inbound_events").fetchone() == (2,)


def test_connections_commit_without_checkpointing_below_the_backstop(events_client):
    post(events_client, 1)
    assert database.execute_sql("PRAGMA wal_autocheckpoint").fetchone() == (BACKSTOP_PAGES,)


def test_the_thread_ends_when_idle_and_comes_back_with_the_next_commit(events_client, settings, monkeypatch):
    monkeypatch.setattr(checkpoints, "IDLE_S", 0.2)
    monkeypatch.setattr(checkpoints, "INTERVAL_S", 0.05)
    post(events_client, 1)
    wait_for(lambda: not checkpoint_threads(), timeout=30, what="the idle thread to end")
    size = database_file(settings).stat().st_size
    for n in range(2, 60):  # enough pages that the file must grow once they are checkpointed
        post(events_client, n)
    wait_for(lambda: database_file(settings).stat().st_size > size, timeout=30,
             what="a checkpoint after the thread came back")


def test_a_database_file_removed_meanwhile_is_not_made_again(tmp_path):
    gone = tmp_path / "gone.db"
    Checkpointer(str(gone)).checkpoint()
    assert not gone.exists()
