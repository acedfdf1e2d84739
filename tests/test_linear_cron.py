"""`python -m functions.linear_sync [--full]`: the cron job's one line, exit codes and lock."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import responses

from functions.linear_sync.__main__ import main
from functions.linear_sync.lock import SyncAlreadyRunning, lock_path, new_sync_lock, sync_lock
from shared.store.models import LinearIssue
from tests.databases import ON_POSTGRES, only_on_sqlite
from tests.fake_linear import FakeLinear
from tests.linear_support import LINEAR_API_KEY, LINEAR_URL, STATES, issue_node, project_node, state_node
from tests.processes import REPO


def linear_world(count: int = 30) -> FakeLinear:
    return FakeLinear(states=[state_node(state) for state in STATES], projects=[project_node()],
                      issues=[issue_node(f"issue-{n}", number=n) for n in range(1, count + 1)], api_key=LINEAR_API_KEY)


@pytest.fixture
def env(settings, db, monkeypatch):
    values = {"DATABASE_URL": settings.database_url, "LINEAR_API_KEY": LINEAR_API_KEY, "LINEAR_API_URL": LINEAR_URL}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("LINEAR_OAUTH_TOKEN", raising=False)
    return values


def test_a_run_prints_one_summary_line_and_exits_0(env, capsys):
    fake = linear_world()
    with responses.RequestsMock() as mock:
        mock.add_callback(responses.POST, LINEAR_URL, callback=fake.responses_callback)
        assert main([]) == 0
        assert main(["--full"]) == 0
    first, second = capsys.readouterr().out.splitlines()
    assert first.startswith("linear sync (full): 1 request, 30 issues read (30 new, 0 updated, 0 removed)")
    assert second.startswith("linear sync (full): 1 request, 30 issues read (0 new, 0 updated, 0 removed)")
    assert LinearIssue.select().count() == 30


def test_a_failed_sync_exits_1_with_linears_message(env, capsys):
    with responses.RequestsMock() as mock:
        mock.post(LINEAR_URL, status=400, json={"errors": [{"message": "Authentication required, not authenticated",
                                                            "extensions": {"code": "AUTHENTICATION_ERROR"}}]})
        assert main([]) == 1
    assert capsys.readouterr().err.strip() == "linear sync failed: Authentication required, not authenticated"


def test_a_run_while_another_holds_the_lock_skips(env, settings, capsys):
    with sync_lock(settings):
        assert main([]) == 0
    assert capsys.readouterr().out.strip() == "linear sync skipped: another sync is still running"


def test_without_a_linear_credential_the_job_says_so_and_does_nothing(env, monkeypatch, capsys):
    monkeypatch.delenv("LINEAR_API_KEY")
    assert main([]) == 0
    assert "skipped: LINEAR_API_KEY or LINEAR_OAUTH_TOKEN is not set" in capsys.readouterr().out


def test_a_bad_setting_exits_2(env, monkeypatch, capsys):
    monkeypatch.setenv("LINEAR_API_URL", "ftp://linear")
    with pytest.raises(SystemExit) as stopped:
        main([])
    assert stopped.value.code == 2
    assert "LINEAR_API_URL" in capsys.readouterr().err


@only_on_sqlite("the lock file sits beside a SQLite file; PostgreSQL's sync lock is an advisory lock")
def test_the_lock_sits_beside_the_database_file(settings):
    assert str(lock_path(settings)) == settings.database_url.removeprefix("sqlite:///") + ".linear-sync.lock"


def test_the_real_command_syncs_from_a_stand_in_linear(settings, db):
    fake = linear_world(300)
    with fake.serve() as url:
        completed = subprocess.run(
            [sys.executable, "-m", "functions.linear_sync", "--full"], cwd=REPO, capture_output=True, text=True,
            timeout=60, env=os.environ | {"DATABASE_URL": settings.database_url, "LINEAR_API_KEY": LINEAR_API_KEY,
                                          "LINEAR_API_URL": url})
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("linear sync (full): 2 requests, 300 issues read (300 new")
    assert len(completed.stdout.strip().splitlines()) == 1
    assert LinearIssue.select().count() == 300


@pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL only: its sync lock is an advisory lock, for every machine")
def test_on_postgresql_the_lock_is_the_databases_and_dies_with_its_holder(settings):
    # Another process (on this machine or another) holds the lock, then is killed mid-sync.
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from shared.config import Settings;"
         " from functions.linear_sync.lock import new_sync_lock;"
         " lock = new_sync_lock(Settings(database_url=sys.argv[1])); lock.acquire();"
         " print('held', flush=True); time.sleep(60)",
         settings.database_url], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(SyncAlreadyRunning):
            new_sync_lock(settings).acquire()
    finally:
        holder.kill()
        holder.wait()
    with sync_lock(settings):  # the server let go of a dead holder's lock: the next sync runs
        pass
