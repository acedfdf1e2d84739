"""The launchd agents and systemd units: valid, and in step with what `make run` starts."""

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

from deploy import run
from shared.config import Settings
from tests.processes import REPO

APP = "/opt/opencode-dashboard"  # the placeholder docs/operations.md's install steps replace
LAUNCHD = REPO / "deploy" / "launchd"
SYSTEMD = REPO / "deploy" / "systemd"
WITH_ENV = f"{APP}/deploy/with-env"
EXTRA = {"backup"}  # runs as a service but not under `make run`: a daily backup


def make_run_processes() -> dict[str, tuple[list[str], float | None]]:
    """What `make run` starts with the default settings: name -> (argv as in the checkout, interval)."""
    settings = Settings()
    processes = {spec.name: (list(spec.argv), None) for spec in run.children(settings)}
    processes |= {job.name: (list(job.argv), job.interval_s) for job in run.periodic(settings)}
    return {name: ([_relative(part) for part in argv], interval) for name, (argv, interval) in processes.items()}


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


@pytest.mark.parametrize(("name", "argv", "interval"), [(name, *spec) for name, spec in make_run_processes().items()])
def test_every_process_make_run_starts_has_a_launchd_agent_that_runs_it_the_same_way(name, argv, interval):
    agent = plist(name)
    assert agent["ProgramArguments"][1:len(argv) + 1] == argv
    if interval is None:
        assert agent["KeepAlive"] == {"SuccessfulExit": False}  # restarted when it crashes
    else:
        assert agent["StartInterval"] == interval and agent["RunAtLoad"] is True
    if name != "temporal":  # the dev server logs by itself, in JSON
        assert agent["EnvironmentVariables"] == {"DASHBOARD_LOG_FORMAT": "json",
                                                 "DASHBOARD_LOG_FILE": f"{APP}/data/logs/{name}.log"}


@pytest.mark.parametrize(("name", "argv", "interval"), [(name, *spec) for name, spec in make_run_processes().items()])
def test_every_process_make_run_starts_has_a_systemd_unit_that_runs_it_the_same_way(name, argv, interval):
    service = unit(f"opencode-dashboard-{name}.service")["Service"]
    exec_start = shlex.split(service["ExecStart"])
    assert exec_start[0] == WITH_ENV and exec_start[1:len(argv) + 1] == argv
    assert service["WorkingDirectory"] == APP
    if interval is None:
        assert service["Restart"] == "on-failure"
        assert unit(f"opencode-dashboard-{name}.service")["Install"]["WantedBy"] == "opencode-dashboard.target"
    else:
        assert service["Type"] == "oneshot"
        timer = unit(f"opencode-dashboard-{name}.timer")["Timer"]
        assert timer["OnUnitActiveSec"] == f"{interval:g}s"
        assert timer["Unit"] == f"opencode-dashboard-{name}.service"


def test_there_is_no_service_for_a_process_make_run_does_not_know():
    known = set(make_run_processes()) | EXTRA
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


def test_the_crontab_has_a_line_for_every_periodic_job_through_with_env():
    entries = [line.split() for line in (REPO / "deploy" / "crontab").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    by_log = {}
    for fields in entries:
        command = fields[5:]
        assert command[0] == "env" and command[3] == WITH_ENV
        by_log[command[2].removeprefix(f"DASHBOARD_LOG_FILE={APP}/data/logs/").removesuffix(".log")] = command[4:7]
    jobs = {name: argv for name, (argv, interval) in make_run_processes().items() if interval is not None}
    assert by_log == jobs | {"backup": [".venv/bin/python", "-m", "shared.jobs.backup"]}
