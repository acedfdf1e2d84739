"""One writer at a time, on SQLite and on PostgreSQL alike: what the change feed and the 503 rely on."""

from __future__ import annotations

import sys
import threading
import time

from falcon import testing

import functions.events
from shared.store.db import database, open_database, write_transaction
from shared.store.feed import changes_since, record_change
from shared.store.migrations import migrate
from shared.store.models import Change, InboundEvent
from tests.support import AGENT, assert_canonical_error, event
from tests.temporal_support import wait_for


def hold_a_write_transaction(recorded: dict, name: str, started: threading.Event, finish: threading.Event):
    with database.connection_context(), write_transaction():
        recorded[name] = record_change("test", name, {})
        started.set()
        finish.wait(10)


def waiting_to_write(thread: threading.Thread) -> bool:
    """`thread` is inside write_transaction's entry: waiting for the writer slot (the body runs with the
    context manager's frame suspended, so it is on the stack only while entering or leaving)."""
    frame = sys._current_frames().get(thread.ident)
    while frame is not None:
        if frame.f_code is write_transaction.__wrapped__.__code__:
            return True
        frame = frame.f_back
    return False


def test_a_change_never_becomes_visible_before_an_older_uncommitted_one(db):
    # Ids come from a counter (a sequence on PostgreSQL), drawn before commit: two writers at once could
    # commit id 2 before id 1, and a browser tailing `id > last` that saw 2 would never get 1.
    recorded: dict[str, int] = {}
    first_started, finish_first, second_started, finish_second = (threading.Event() for _ in range(4))
    finish_second.set()  # the second writer commits as soon as it has written
    first = threading.Thread(target=hold_a_write_transaction, args=(recorded, "first", first_started, finish_first))
    second = threading.Thread(target=hold_a_write_transaction,
                              args=(recorded, "second", second_started, finish_second))
    first.start()
    assert first_started.wait(5)
    second.start()
    try:
        wait_for(lambda: waiting_to_write(second) or "second" in recorded, what="the second writer at the lock")
        assert "second" not in recorded  # the second writer waits for the first to finish
        assert changes_since(0) == []  # and a reader sees neither meanwhile
    finally:
        finish_first.set()
        first.join(10)
        second.join(10)
    assert recorded["first"] < recorded["second"]
    assert [change["id"] for change in changes_since(0)] == [recorded["first"], recorded["second"]]


def test_concurrent_writers_never_make_a_tailing_reader_skip_a_change(db):
    writers, per_writer = 4, 40
    seen: list[int] = []
    done = threading.Event()

    def write(n: int) -> None:
        with database.connection_context():
            for step in range(per_writer):
                with write_transaction():
                    record_change("test", "step", {"writer": n, "step": step})

    def tail() -> None:
        with database.connection_context():
            while True:
                finished = done.is_set()  # read before the query: one more pass after the last commit
                for change in changes_since(seen[-1] if seen else 0):
                    seen.append(change["id"])
                if finished:
                    return

    reader = threading.Thread(target=tail)
    reader.start()
    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    done.set()
    reader.join(30)
    assert seen == [change.id for change in Change.select(Change.id).order_by(Change.id)]
    assert len(seen) == writers * per_writer


def test_a_write_waiting_past_the_busy_timeout_is_503_and_writes_nothing(settings):
    quick = settings.with_overrides(busy_timeout_ms=300)
    open_database(quick)
    migrate()
    client = testing.TestClient(functions.events.create_app(quick))
    recorded: dict[str, int] = {}
    holding, release = threading.Event(), threading.Event()
    writer = threading.Thread(target=hold_a_write_transaction, args=(recorded, "long", holding, release))
    writer.start()
    assert holding.wait(5)
    try:
        started = time.monotonic()
        response = client.simulate_post("/api/events", json=event("agent.heartbeat", {"id": "a"}, id="e1"),
                                        headers=AGENT)
        waited = time.monotonic() - started
    finally:
        release.set()
        writer.join(10)
    assert_canonical_error(response, 503, "database_unavailable")
    assert response.headers["retry-after"] == "1"
    assert waited >= 0.25  # it waited for the writer slot, up to the busy timeout
    assert InboundEvent.select().count() == 0
    # Once the long writer is done, the same event goes through.
    retried = client.simulate_post("/api/events", json=event("agent.heartbeat", {"id": "a"}, id="e1"), headers=AGENT)
    assert retried.status_code == 202, retried.text
    assert InboundEvent.select().count() == 1
    database.close()
