"""python -m shared.jobs.backup: an online, atomic, checked copy of the SQLite database."""

from __future__ import annotations

import importlib.util
import logging
import os
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from shared.jobs import backup
from shared.store.migrations import LATEST_VERSION
from tests.databases import only_on_sqlite
from tests.processes import REPO

pytestmark = only_on_sqlite("the backup uses SQLite's backup API; PostgreSQL is backed up with pg_dump")

ROWS = 40_000


def database_file(settings):
    from pathlib import Path

    return Path(settings.database_url.removeprefix("sqlite:///"))


def count(path, table="changes") -> int:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    finally:
        connection.close()


@pytest.fixture
def filled(settings, db):
    """The migrated database with enough feed rows that the copy takes many steps."""
    path = database_file(settings)
    connection = sqlite3.connect(path)
    connection.executemany("INSERT INTO changes (topic, action, payload, created_at) VALUES (?, ?, ?, ?)",
                           (("task", "updated", '{"padding": "' + "x" * 200 + '"}', n) for n in range(ROWS)))
    connection.commit()
    connection.close()
    return path


class Writer(threading.Thread):
    """Keeps committing one row at a time, as the server does, until stopped."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path = path
        self.stop = threading.Event()
        self.written = 0

    def run(self) -> None:
        connection = sqlite3.connect(self.path, timeout=5, isolation_level=None)
        while not self.stop.is_set():
            connection.execute("INSERT INTO changes (topic, action, payload, created_at) "
                               "VALUES ('agent', 'x', '{}', 1)")
            self.written += 1
        connection.close()


def test_a_backup_while_a_writer_keeps_inserting_is_whole_and_consistent(filled, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(backup, "PAGES_PER_STEP", 32)  # many steps, many commits in between
    writer = Writer(filled)
    writer.start()
    while writer.written < 50:
        time.sleep(0.01)
    before = count(filled)
    with caplog.at_level(logging.INFO, logger="backup"):
        result = backup.backup(filled, tmp_path / "backups" / "copy.db", progress_every_s=0)
    written_during = writer.written
    after = count(filled)
    writer.stop.set()
    writer.join()

    copy = sqlite3.connect(result.path)
    assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # one self-contained file
    assert copy.execute("SELECT MAX(version) FROM schema_migrations").fetchone() == (LATEST_VERSION,)
    copied = copy.execute("SELECT COUNT(*) FROM changes").fetchone()[0]
    # Whole rows only, from one instant: nothing from before the start missing, nothing half-written.
    assert before <= copied <= after and copied >= ROWS
    assert copy.execute("SELECT COUNT(*) FROM changes WHERE topic = 'task'").fetchone() == (ROWS,)
    copy.close()
    assert after - before > 10 and written_during > 0  # the writer was never held up for the whole copy
    assert result.pages > 32 and result.bytes == result.path.stat().st_size
    assert [path.name for path in (tmp_path / "backups").iterdir()] == ["copy.db"]  # no partial file left
    assert any("backup: " in message and "pages)" in message for message in caplog.messages)


def test_the_command_writes_a_dated_copy_beside_the_database_and_says_so(filled):
    env = os.environ | {"DATABASE_URL": f"sqlite:///{filled}"}
    done = subprocess.run([sys.executable, "-m", "shared.jobs.backup"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    (copy,) = (filled.parent / "backups").glob("dashboard-*.db")
    assert done.stdout.startswith(f"backup: {copy} (") and "integrity ok" in done.stdout
    assert count(copy) == ROWS


def test_the_command_with_an_output_path_writes_there(filled, tmp_path):
    env = os.environ | {"DATABASE_URL": f"sqlite:///{filled}"}
    target = tmp_path / "elsewhere" / "nightly.db"
    done = subprocess.run([sys.executable, "-m", "shared.jobs.backup", "--output", str(target)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert count(target) == ROWS


def test_only_the_newest_default_backups_are_kept(tmp_path):
    names = ["dashboard-20261101T030000Z.db", "dashboard-20261102T030000Z.db", "dashboard-20261103T030000Z.db",
             "other-20261101T030000Z.db"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    removed = backup.prune_backups(tmp_path, "dashboard", keep=2)
    assert [path.name for path in removed] == ["dashboard-20261101T030000Z.db"]
    assert sorted(path.name for path in tmp_path.iterdir()) == names[1:]


@pytest.mark.skipif(importlib.util.find_spec("psycopg2") is None,
                    reason="without PostgreSQL's driver a PostgreSQL URL is refused before the backup runs "
                           "(test_config covers that); make test-postgres installs the driver")
def test_postgresql_is_refused_with_a_clear_message(tmp_path):
    env = os.environ | {"DATABASE_URL": "postgresql://dashboard:hunter2-password@db.internal/dashboard"}
    done = subprocess.run([sys.executable, "-m", "shared.jobs.backup"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "SQLite" in done.stderr and "pg_dump" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout


def test_a_file_that_is_no_database_fails_and_leaves_nothing(tmp_path):
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"not a database" * 100)
    with pytest.raises(backup.BackupError, match="failed"):
        backup.backup(broken, tmp_path / "out" / "copy.db")
    assert list((tmp_path / "out").iterdir()) == []


def test_a_missing_database_is_said_plainly(tmp_path):
    with pytest.raises(backup.BackupError, match="there is no database at"):
        backup.backup(tmp_path / "nowhere.db", tmp_path / "copy.db")
