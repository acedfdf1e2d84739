"""A request that fails leaves nothing behind on its connection for the next request to trip over.

Connections are pooled: the one a failed request used serves the next request. Whatever the failed one
left open — a statement part way through its rows (on SQLite, a read snapshot), a transaction, one a
failed statement aborted (PostgreSQL) — is reset when the connection goes back to the pool. Before,
a read that failed mid-query on SQLite left its statement open, and the next write on that connection
was a 503 "database is locked" at once, while nobody held the lock.
"""

from __future__ import annotations

import pytest
from falcon import testing

import functions.events
from shared.store.db import database, execute
from shared.store.models import Message
from shared.web.webapp import function_app
from tests.database_rows import writing
from tests.support import AGENT, DASHBOARD, event

# Things that outlived the request that made them (a kept traceback holds a cursor the same way).
kept: list[object] = []


class Misbehaving:
    """Routes that fail, each leaving its connection in another state."""

    def on_get_mid_query(self, req, resp):
        rows = iter(Message.select().order_by(Message.id).execute())
        next(rows)  # one row read; the statement still has rows to give
        kept.append(rows)
        raise RuntimeError("failed part way through the rows")

    def on_get_mid_raw_query(self, req, resp):
        rows = execute("SELECT id FROM messages ORDER BY id")  # the hot paths' own statements
        rows.fetchone()
        kept.append(rows)
        raise RuntimeError("failed part way through the rows")

    def on_get_open_transaction(self, req, resp):
        database.execute_sql("BEGIN")
        kept.append(list(Message.select()))  # a read snapshot, inside a transaction nobody ends
        raise RuntimeError("failed inside a transaction")

    def on_get_aborted_transaction(self, req, resp):
        database.execute_sql("BEGIN")
        try:
            execute("SELECT * FROM no_such_table")  # PostgreSQL aborts the transaction; SQLite keeps it
        except Exception as error:  # swallowed, as a careless handler would
            kept.append(error)
        raise RuntimeError("failed after a failed statement")


@pytest.fixture
def clients(settings, db):
    kept.clear()
    broken = function_app(settings)
    misbehaving = Misbehaving()
    for route in ("mid_query", "mid_raw_query", "open_transaction", "aborted_transaction"):
        broken.add_route(f"/api/broken/{route}", misbehaving, suffix=route)
    yield testing.TestClient(broken), testing.TestClient(functions.events.create_app(settings))
    kept.clear()


def send(events, *items):
    return events.simulate_post("/api/events", json={"events": list(items)}, headers=AGENT)


def error(name: str) -> dict:
    return event("session.error", {"sessionID": "ses", "error": {"name": name}})


@pytest.mark.parametrize("route", ["mid_query", "mid_raw_query", "open_transaction", "aborted_transaction"])
def test_a_write_after_a_request_that_failed_with_its_connection_in_any_state_is_accepted(clients, database_url,
                                                                                          route):
    broken, events = clients
    assert send(events, *(error(f"before {n}") for n in range(5))).status_code == 202
    assert broken.simulate_get(f"/api/broken/{route}", headers=DASHBOARD).status_code == 500
    with writing(database_url) as other:  # someone else commits meanwhile: an old snapshot is now stale
        other.execute("INSERT INTO settings (key, value) VALUES ('elsewhere', 'committed')")

    after = send(events, error("after"))

    assert after.status_code == 202, after.text
    assert Message.select().count() == 6


@pytest.mark.parametrize("stored", ["{not json", "[" * 5000 + "]" * 5000], ids=["not JSON", "nested too deep"])
def test_a_write_after_a_list_read_that_failed_on_a_stored_row_is_accepted(clients, database_url, stored):
    # The case seen live: a row the list cannot decode (written before ingest refused such values) sits
    # among others; the list fails on it part way through its rows, and the next write on that
    # worker was a 503.
    _, events = clients
    assert send(events, *(error(f"row {n}") for n in range(5))).status_code == 202
    with writing(database_url) as other:
        other.execute("UPDATE messages SET parts = ? WHERE id = (SELECT MAX(id) - 1 FROM messages)", (stored,))
    events.simulate_get("/api/msgs", headers=DASHBOARD)  # fails on that row (its own problem: item 1)
    with writing(database_url) as other:
        other.execute("INSERT INTO settings (key, value) VALUES ('elsewhere', 'committed')")

    after = send(events, error("after"))

    assert after.status_code == 202, after.text
    assert Message.select().count() == 6
