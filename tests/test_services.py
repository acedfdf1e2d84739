"""The launchd agents and systemd units: valid, and in step with what `make run` starts.

The long-running processes are compared here; the periodic jobs are generated from deploy/jobs.py and
checked by `python -m deploy.jobs --check`, which the last tests run and try to fool."""

from __future__ import annotations

import configparser
import grp
import os
import plistlib
import pwd
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deploy import jobs, run
from shared.config import Settings
from tests.processes import REPO

APP = "/opt/opencode-dashboard"  # the placeholder docs/operations.md's install steps replace
LAUNCHD = REPO / "deploy" / "launchd"
SYSTEMD = REPO / "deploy" / "systemd"
WITH_ENV = f"{APP}/deploy/with-env"


def make_run_processes() -> dict[str, list[str]]:
    """The long-running processes `make run` starts with the default settings: name -> argv as in the checkout."""
    return {spec.name: [_relative(part) for part in spec.argv] for spec in run.children(Settings())}


def _relative(part: str) -> str:
    """The interpreter and the temporal binary as the services name them, from the checkout."""
    if part == sys.executable:
        return ".venv/bin/python"
    if part.endswith("/temporal") and Path(part).is_file():
        return ".venv/bin/temporal"
    return part


def plist(name: str) -> dict:
    with (LAUNCHD / f"dev.opencode-dashboard.{name}.plist").open("rb") as file:
        return plistlib.load(file)


def unit(filename: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(SYSTEMD / filename)
    return parser


def test_every_plist_is_a_valid_property_list_named_for_its_label():
    plists = sorted(LAUNCHD.glob("*.plist"))
    assert plists
    for path in plists:
        with path.open("rb") as file:
            agent = plistlib.load(file)
        assert agent["Label"] == path.stem
        assert agent["ProgramArguments"][0] == WITH_ENV  # the secrets come from .env, not the plist
        assert agent["WorkingDirectory"] == APP
        assert agent["StandardOutPath"] == agent["StandardErrorPath"]
        assert agent["StandardOutPath"].startswith(f"{APP}/data/logs/")
        assert "LINEAR_API_KEY" not in agent.get("EnvironmentVariables", {})


@pytest.mark.parametrize(("name", "argv"), make_run_processes().items())
def test_every_process_make_run_starts_has_a_launchd_agent_that_runs_it_the_same_way(name, argv):
    agent = plist(name)
    assert agent["ProgramArguments"][1:len(argv) + 1] == argv
    assert agent["KeepAlive"] == {"SuccessfulExit": False}  # restarted when it crashes
    if name != "temporal":  # the dev server logs by itself, in JSON
        assert agent["EnvironmentVariables"] == {"DASHBOARD_LOG_FORMAT": "json",
                                                 "DASHBOARD_LOG_FILE": f"{APP}/data/logs/{name}.log"}


@pytest.mark.parametrize(("name", "argv"), make_run_processes().items())
def test_every_process_make_run_starts_has_a_systemd_unit_that_runs_it_the_same_way(name, argv):
    service = unit(f"opencode-dashboard-{name}.service")["Service"]
    exec_start = shlex.split(service["ExecStart"])
    assert exec_start[0] == WITH_ENV and exec_start[1:len(argv) + 1] == argv
    assert service["WorkingDirectory"] == APP
    assert service["Restart"] == "on-failure"
    assert unit(f"opencode-dashboard-{name}.service")["Install"]["WantedBy"] == "opencode-dashboard.target"


def test_there_is_no_service_for_a_process_make_run_or_deploy_jobs_does_not_know():
    known = set(make_run_processes()) | {job.name for job in jobs.JOBS}
    agents = {path.stem.removeprefix("dev.opencode-dashboard.") for path in LAUNCHD.glob("*.plist")}
    units = {path.stem.removeprefix("opencode-dashboard-") for path in SYSTEMD.glob("*.service")}
    assert agents == known and units == known


def test_newsyslog_rotates_every_log_file_the_agents_write():
    lines = [line.split() for line in (LAUNCHD / "newsyslog-opencode-dashboard.conf").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert {fields[0] for fields in lines} == {f"{APP}/data/logs/*.log", f"{APP}/data/logs/*.out"}
    for _path, owner, mode, count, size, _when, flags in lines:
        assert owner == "YOUR_USER:staff" and mode == "640" and int(count) > 0 and int(size) > 0
        assert "G" in flags and "N" in flags  # a glob; no signal (the processes reopen by themselves)
    for path in LAUNCHD.glob("*.plist"):
        with path.open("rb") as file:
            agent = plistlib.load(file)
        assert agent["StandardOutPath"].endswith(".out")
        assert agent.get("EnvironmentVariables", {}).get("DASHBOARD_LOG_FILE", ".log").endswith(".log")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verifies_the_units(tmp_path):
    # As installed: the checkout's path for the placeholder, and a user that exists here.
    user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    for path in SYSTEMD.iterdir():
        text = path.read_text().replace(APP, str(REPO))
        text = text.replace("User=opencode-dashboard", f"User={user}").replace("Group=opencode-dashboard",
                                                                               f"Group={group}")
        (tmp_path / path.name).write_text(text)
    verified = subprocess.run(["systemd-analyze", "verify", "--man=no", *sorted(map(str, tmp_path.iterdir()))],
                              capture_output=True, text=True, timeout=120)
    assert verified.returncode == 0, verified.stderr
    assert "opencode-dashboard" not in verified.stderr, verified.stderr  # no warning about our units either


def test_with_env_runs_a_command_from_the_checkout_with_the_env_file_exported(tmp_path):
    (tmp_path / "deploy").mkdir()
    shutil.copy(REPO / "deploy" / "with-env", tmp_path / "deploy" / "with-env")
    (tmp_path / ".env").write_text("DATABASE_URL=sqlite:////srv/d.db\nLINEAR_TEAM_IDS='a b'\n")
    done = subprocess.run([str(tmp_path / "deploy" / "with-env"), "sh", "-c",
                           'printf "%s|%s|%s" "$PWD" "$DATABASE_URL" "$LINEAR_TEAM_IDS"'],
                          cwd="/", capture_output=True, text=True, timeout=30, env={"PATH": os.environ["PATH"]})
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{tmp_path.resolve()}|sqlite:////srv/d.db|a b"


@pytest.mark.parametrize("job", jobs.JOBS, ids=lambda job: job.name)
def test_each_job_runs_its_command_on_its_schedule_under_cron_launchd_and_systemd(job):
    argv = [WITH_ENV, ".venv/bin/python", "-m", job.module]
    agent = plist(job.name)
    service = unit(f"opencode-dashboard-{job.name}.service")["Service"]
    timer = unit(f"opencode-dashboard-{job.name}.timer")["Timer"]
    [cron] = [line.split() for line in (REPO / "deploy" / "crontab").read_text().splitlines()
              if f"data/logs/{job.name}.log " in line and not line.startswith("#")]
    assert agent["ProgramArguments"] == argv and shlex.split(service["ExecStart"]) == argv
    assert cron[5:7] == ["env", "DASHBOARD_LOG_FORMAT=json"] and cron[8:12] == argv
    assert service["Type"] == "oneshot" and timer["Unit"] == f"opencode-dashboard-{job.name}.service"
    if job.daily_at is None:
        assert agent["StartInterval"] == job.every_s and agent["RunAtLoad"] is True
        assert timer["OnUnitActiveSec"] == f"{job.every_s}s"
        assert cron[:5] == (["*"] * 5 if job.every_s == 60 else [str(jobs.HOURLY_MINUTE), "*", "*", "*", "*"])
    else:
        hour, minute = job.daily_at
        assert agent["StartCalendarInterval"] == {"Hour": hour, "Minute": minute}
        assert timer["OnCalendar"] == f"*-*-* {hour:02d}:{minute:02d}:00"
        assert cron[:5] == [str(minute), str(hour), "*", "*", "*"]


def test_make_run_schedules_every_job_but_the_backup_from_the_same_table():
    settings = Settings(linear_api_key="lin_api_0123456789abcdef", linear_sync_interval_s=30)
    assert {spec.name: (list(spec.argv)[1:], spec.interval_s, spec.off_reason) for spec in run.periodic(settings)} == {
        "linear-sync": (["-m", "functions.linear_sync"], 30, None),
        "feed-retention": (["-m", "shared.jobs.retention"], 3600, None),
        "alert-digests": (["-m", "shared.jobs.digests"], 60, None),
        "workflow-starts": (["-m", "shared.jobs.workflow_starts"], 60, None)}


def test_the_check_passes_on_the_checkout():
    checked = subprocess.run([sys.executable, "-m", "deploy.jobs", "--check"], cwd=REPO, capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr
    assert "agree" in checked.stdout


def test_the_check_names_a_schedule_edited_by_hand_and_a_job_it_does_not_know(tmp_path):
    shutil.copytree(REPO / "deploy", tmp_path / "deploy")
    assert jobs.differences(tmp_path) == []
    timer = tmp_path / "deploy" / "systemd" / "opencode-dashboard-alert-digests.timer"
    timer.write_text(timer.read_text().replace("OnUnitActiveSec=60s", "OnUnitActiveSec=300s"))
    crontab = tmp_path / "deploy" / "crontab"
    crontab.write_text(crontab.read_text().replace("17 * * * *", "0 * * * *"))
    stray = tmp_path / "deploy" / "systemd" / "opencode-dashboard-reindex.timer"
    stray.write_text("[Timer]\nOnUnitActiveSec=60s\n")
    assert jobs.differences(tmp_path) == [
        "deploy/crontab: differs from deploy/jobs.py (python -m deploy.jobs --write)",
        "deploy/systemd/opencode-dashboard-alert-digests.timer: differs from deploy/jobs.py"
        " (python -m deploy.jobs --write)",
        "deploy/systemd/opencode-dashboard-reindex.service: a periodic job deploy/jobs.py does not declare",
        "deploy/systemd/opencode-dashboard-reindex.timer: a periodic job deploy/jobs.py does not declare"]
