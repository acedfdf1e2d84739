"""The change feed: written in the writer's transaction, read back in order."""

from __future__ import annotations

import pytest

from shared.store.db import database, write_transaction
from shared.store.feed import ChangeOutsideTransaction, changes_since, prune_changes, pruned_through, record_change
from shared.store.models import Change


def test_changes_are_read_back_in_order_after_an_id(db):
    with write_transaction():
        ids = [record_change("todo", "replaced", {"n": n}) for n in range(5)]
    assert [c["payload"]["n"] for c in changes_since(0)] == [0, 1, 2, 3, 4]
    assert [c["id"] for c in changes_since(ids[2])] == ids[3:]
    assert changes_since(ids[-1]) == []


def test_changes_can_be_filtered_by_topic_and_limited(db):
    with write_transaction():
        for topic in ["agent", "todo", "agent", "task", "agent"]:
            record_change(topic, "x", {})
    assert [c["topic"] for c in changes_since(0, topics=["agent", "task"])] == ["agent", "agent", "task", "agent"]
    assert len(changes_since(0, limit=2)) == 2


def test_a_change_shows_its_shape(db):
    with write_transaction():
        record_change("agent", "status", {"id": "a1", "status": "blocked"})
    (change,) = changes_since(0)
    assert change.keys() == {"id", "topic", "action", "payload", "created_at"}
    assert change["payload"] == {"id": "a1", "status": "blocked"}
    assert change["created_at"].endswith("Z")


def test_a_rolled_back_transaction_leaves_no_change(db):
    with pytest.raises(RuntimeError), write_transaction():
        record_change("todo", "replaced", {})
        raise RuntimeError("the write failed")
    assert Change.select().count() == 0


def test_recording_a_change_outside_a_transaction_is_refused(db):
    with database.connection_context(), pytest.raises(ChangeOutsideTransaction):
        record_change("todo", "replaced", {})


def test_pruning_removes_only_old_changes_and_remembers_how_far_it_went(db):
    with write_transaction():
        old, recent = record_change("todo", "x", {}), record_change("todo", "y", {})
    Change.update(created_at=0).where(Change.id == old).execute()
    with database.connection_context():
        assert prune_changes(older_than_s=3600) == 1
        assert pruned_through() == old
        assert [c["id"] for c in changes_since(0)] == [recent]
        assert prune_changes(older_than_s=3600) == 0
        assert pruned_through() == old


def test_the_retention_job_prunes_by_the_configured_age(db, settings, monkeypatch, capsys):
    from shared.jobs import retention
    with write_transaction():
        old, _ = record_change("todo", "x", {}), record_change("todo", "y", {})
    Change.update(created_at=0).where(Change.id == old).execute()
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("FEED_RETENTION_DAYS", "1")
    assert retention.main() == 0
    assert capsys.readouterr().out.startswith("feed retention: pruned 1 changes older than 1 days; 1 kept;")
