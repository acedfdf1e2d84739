"""The schema: created fresh, upgraded in place from older versions, never dropping a row."""

from __future__ import annotations

import sqlite3
import time

import pytest

from shared.store import migrations
from shared.store.db import database, open_database
from shared.store.migrations import (
    LATEST_VERSION,
    MIGRATIONS,
    V1_SCHEMA,
    V2_SCHEMA,
    Migration,
    current_version,
    migrate,
)
from shared.store.models import ALL_MODELS, Agent, AgentTask, Message, Session, Setting, Todo
from tests.databases import ON_POSTGRES, only_on_sqlite

SEED_TABLES = {"agents", "agent_tasks", "linear_projects", "linear_issues", "linear_workflow_states",
               "alert_rules", "users", "auth_sessions"}
V1_TABLES = {"todos", "messages", "sessions", "settings"}
OWN_TABLES = {"changes", "inbound_events", "webhook_deliveries", "notifications", "linear_cycles",
              "task_questions", "agent_inbox"}
VERSIONS = [migration.version for migration in MIGRATIONS]


def test_a_fresh_database_gets_every_table(db):
    assert set(database.get_tables()) >= SEED_TABLES | V1_TABLES | OWN_TABLES
    assert current_version() == LATEST_VERSION


def test_every_model_matches_its_table(db):
    for model in ALL_MODELS:
        table = model._meta.table_name
        columns = {column.name for column in database.get_columns(table)}
        assert columns == {field.column_name for field in model._meta.sorted_fields}, table


def test_migrating_again_changes_nothing(db):
    assert migrate() == []


def test_seed_defaults_are_kept(db):
    before = int(time.time())
    database.execute_sql("INSERT INTO todos (id, content) VALUES ('t', 'c')")
    database.execute_sql("INSERT INTO agents (id, name, type) VALUES ('a', 'A', 'primary')")
    database.execute_sql("INSERT INTO alert_rules (id, trigger, channel) VALUES ('r', 'blocked', 'in_app')")
    todo = Todo.get_by_id("t")
    assert (todo.status, todo.priority) == ("pending", "medium")
    assert todo.created_at >= before
    assert Agent.get_by_id("a").status == "idle"
    assert database.execute_sql("SELECT delay_ms, enabled FROM alert_rules").fetchone() == (0, 1)


def test_foreign_keys_are_enforced(db):
    import peewee

    with pytest.raises(peewee.IntegrityError):
        AgentTask.create(id="t", agent_id="nobody", title="orphan")


@only_on_sqlite("WAL, the busy timeout and synchronous are SQLite pragmas")
def test_connections_use_wal_and_a_busy_timeout(db):
    assert database.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    # The configured 5 s less the margin a writer may spend queueing for the write lock (sqlite_busy_timeout_ms).
    assert database.execute_sql("PRAGMA busy_timeout").fetchone()[0] == 4900
    assert database.execute_sql("PRAGMA synchronous").fetchone()[0] == 1


@pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL only: its connections' lock timeout")
def test_postgresql_connections_wait_the_busy_timeout_for_locks(db):
    assert database.execute_sql("SHOW lock_timeout").fetchone()[0] == "5s"


def test_upgrading_from_the_previous_version_keeps_rows(settings, empty_database_url):
    open_database(settings.with_overrides(database_url=empty_database_url))
    assert migrate(target=VERSIONS[-2]) == VERSIONS[:-1]
    database.execute_sql("INSERT INTO sessions (id, name) VALUES ('ses_old', 'Before the upgrade')")
    database.execute_sql("INSERT INTO messages (type, content) VALUES ('custom', 'kept')")
    database.execute_sql("INSERT INTO agents (id, name, type) VALUES ('old-agent', 'Old', 'primary')")

    assert migrate() == [LATEST_VERSION]
    assert Session.get_by_id("ses_old").name == "Before the upgrade"
    assert Message.get().content == "kept"
    assert Agent.get_by_id("old-agent").name == "Old"
    database.close()


@only_on_sqlite("the TypeScript dashboard only ever wrote SQLite files")
def test_a_database_left_by_the_typescript_dashboard_is_upgraded_in_place(tmp_path, settings):
    # The original app created its tables itself and kept no version: build such a file by hand.
    path = tmp_path / "legacy.db"
    legacy = sqlite3.connect(path)
    for statement in V1_SCHEMA.statements + V2_SCHEMA.statements:
        legacy.execute(statement)
    legacy.execute("INSERT INTO todos (id, session_id, content, status) VALUES ('1', 's', 'legacy todo', 'completed')")
    legacy.execute("INSERT INTO settings (key, value) VALUES ('theme', 'dark')")
    legacy.commit()
    legacy.close()

    open_database(settings.with_overrides(database_url=f"sqlite:///{path}"))
    assert current_version() == 2
    assert migrate() == VERSIONS[2:]
    assert Todo.get_by_id("1").content == "legacy todo"
    assert Setting.get_by_id("theme").value == "dark"
    database.close()


def test_a_migration_numbered_below_one_already_applied_is_still_applied(db, monkeypatch):
    # Numbers are reserved ahead: a database may get version 7 before 6 lands; it must still get 6.
    late = Migration(0, "landed late", ("CREATE TABLE landed_late (id INTEGER PRIMARY KEY)",))
    monkeypatch.setattr(migrations, "MIGRATIONS", tuple(sorted((*MIGRATIONS, late), key=lambda m: m.version)))
    assert migrate() == [late.version]
    assert "landed_late" in database.get_tables()
    assert migrate() == []


@only_on_sqlite("the query plan is SQLite's")
def test_what_ingest_asks_at_every_turn_reads_an_index_not_every_row(db):
    """An agent's status is worked out from its sessions at every busy and idle, and a task's blocked
    notifications are looked for whenever it leaves blocked: with months of sessions and notifications,
    a scan of the whole table each time would make every event slower than the last."""
    from functions.events.session_turns import BUSY, FOLLOWED
    from shared.agents.alerts import BLOCKED_NOTIFICATIONS

    plans = {
        "agent status": database.execute_sql(f"EXPLAIN QUERY PLAN {FOLLOWED}", ("a", "a", *BUSY, "a")).fetchall(),
        "blocked notifications": database.execute_sql(
            f"EXPLAIN QUERY PLAN {BLOCKED_NOTIFICATIONS}", ("task",)).fetchall(),
    }
    for question, plan in plans.items():
        steps = [row[-1] for row in plan]
        assert not [step for step in steps if step.startswith("SCAN")], (question, steps)


@only_on_sqlite("the query plan is SQLite's")
def test_what_every_status_change_asks_reads_only_what_is_still_open(db):
    """A session's open turn, and whether an agent's sessions wait on a person, are asked at every busy and
    idle: they read the unfinished turns and the waiting prompts, not every turn a session ever had nor
    every session an agent ever had, which would grow with each."""
    from functions.events.session_turns import BUSY, FOLLOWED, OPEN

    open_turn = database.execute_sql(f"EXPLAIN QUERY PLAN SELECT * FROM agent_tasks WHERE session_id = ? AND {OPEN}",
                                     ("session",)).fetchall()
    assert [row[-1] for row in open_turn] == [
        "SEARCH agent_tasks USING INDEX agent_tasks_session (session_id=? AND status=?)"]
    agent_status = [row[-1] for row in database.execute_sql(f"EXPLAIN QUERY PLAN {FOLLOWED}",
                                                             ("a", "a", *BUSY, "a")).fetchall()]
    assert [step for step in agent_status if "task_questions" in step] == [
        "SEARCH q USING INDEX task_questions_waiting (status=?)"]


@only_on_sqlite("the query plan is SQLite's")
def test_the_turns_waiting_for_their_workflow_are_found_by_session_not_by_reading_every_waiting_task(db):
    """After every ingest request that may begin a turn, its sessions' turns still waiting for a workflow
    are looked up: while Temporal is down every task waits, and reading them all would make each request
    slower than the last."""
    from functions.events.session_turns import waiting_turns

    plan = database.execute_sql(f"EXPLAIN QUERY PLAN {waiting_turns(2)}", ("a", "b")).fetchall()
    assert [row[-1] for row in plan] == [
        "SEARCH agent_tasks USING INDEX agent_tasks_session_workflow (session_id=? AND workflow_started_at=?)"]
