"""Every periodic job, declared once: its name, the command it runs, and how often.

    python -m deploy.jobs            # the table
    python -m deploy.jobs --check    # `make run`, deploy/crontab, deploy/launchd and deploy/systemd all run
                                     # exactly these jobs, the same way (exit 1 naming each difference)
    python -m deploy.jobs --write    # rewrite those files from this table after changing it

`make run` (deploy/run.py) schedules `JOBS` itself. The crontab, each job's launchd agent and its systemd
service and timer are generated from the same entries, so the four cannot drift apart: `make test` runs
the check. (The long-running processes — gunicorn, Temporal, the worker — are not periodic and keep their
hand-written files.)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shared.config import Settings

REPO = Path(__file__).resolve().parent.parent
APP = "/opt/opencode-dashboard"  # the placeholder for the checkout that the install steps replace
HOURLY_MINUTE = 17  # cron's minute for an hourly job: away from the top of the hour, when everything else runs


@dataclass(frozen=True)
class Job:
    name: str  # data/logs/<name>.log, dev.opencode-dashboard.<name>, opencode-dashboard-<name>
    module: str  # run as `python -m <module>`
    summary: str  # what it does, for the people reading the service files
    every_s: int | None = None  # seconds between runs, the first at start-up; or
    daily_at: tuple[int, int] | None = None  # (hour, minute), once a day
    under_make_run: bool = True
    # Under `make run`: the setting that overrides `every_s`, and why the job does not run (None: it does).
    interval_setting: str | None = None
    off_reason: Callable[[Settings], str | None] = lambda settings: None
    cron_note: str = ""  # what the crontab adds to the summary

    @property
    def schedule(self) -> str:
        if self.daily_at is not None:
            return "daily at {:02d}:{:02d}".format(*self.daily_at)
        return "every minute" if self.every_s == 60 else "hourly" if self.every_s == 3600 else f"every {self.every_s} s"

    def interval_s(self, settings: Settings) -> float:
        return getattr(settings, self.interval_setting) if self.interval_setting else float(self.every_s)


JOBS: tuple[Job, ...] = (
    Job("linear-sync", "functions.linear_sync",
        "The Linear sync (changes only; a full sync by itself once a day). Does nothing without a Linear "
        "credential (LINEAR_API_KEY, or Linear connected over OAuth).",
        every_s=60, interval_setting="linear_sync_interval_s",
        off_reason=lambda settings: None if settings.linear_configured or settings.linear_oauth_configured
        else "no LINEAR_API_KEY, LINEAR_OAUTH_TOKEN or LINEAR_CLIENT_ID is set",
        cron_note="It never overlaps itself (a lock beside the database)."),
    Job("feed-retention", "shared.jobs.retention",
        "The change feed's retention: deletes changes older than FEED_RETENTION_DAYS, and raw events, webhook "
        "deliveries and ended sign-in sessions older than RECORD_RETENTION_DAYS.",
        every_s=3600),
    Job("alert-digests", "shared.jobs.digests",
        "Digest alert rules (a delayed `completed` rule): one notification per window.",
        every_s=60),
    Job("workflow-starts", "shared.jobs.workflow_starts",
        "Starts the workflows of tasks created while Temporal was down.",
        every_s=60, off_reason=lambda settings: None if settings.temporal_address else "TEMPORAL_ADDRESS is off",
        cron_note="The worker itself runs as a service: `.venv/bin/python -m worker`."),
    Job("backup", "shared.jobs.backup",
        "A daily online backup of the database to data/backups/ (the newest 14 kept).",
        daily_at=(3, 30), under_make_run=False),
)


def command(job: Job) -> list[str]:
    """The job's command as the services run it, from the checkout."""
    return [f"{APP}/deploy/with-env", ".venv/bin/python", "-m", job.module]


# --- deploy/crontab --------------------------------------------------------------------------------------

CRONTAB_HEAD = f"""\
# The periodic jobs as cron lines, for a machine where they run neither under `make run` (which runs them
# itself) nor as the launchd agents / systemd timers in deploy/launchd and deploy/systemd (preferred: see
# docs/operations.md). Generated from deploy/jobs.py: edit that, then `python -m deploy.jobs --write`.
#
# Replace {APP} with the checkout and put the server's settings (LINEAR_API_KEY,
# DATABASE_URL, ...) in its `.env` file: cron starts with an empty environment, and deploy/with-env
# exports that file before it runs the command. JSON log lines go to data/logs/<job>.log.
# Install with `crontab -e`.
"""


def cron_schedule(job: Job) -> str:
    if job.daily_at is not None:
        hour, minute = job.daily_at
        return f"{minute} {hour} * * *"
    if job.every_s == 60:
        return "* * * * *"
    if job.every_s == 3600:
        return f"{HOURLY_MINUTE} * * * *"
    raise ValueError(f"{job.name}: cron cannot run a job every {job.every_s} s; use every minute, hourly or daily")


def crontab() -> str:
    blocks = [CRONTAB_HEAD]
    for job in JOBS:
        logs = f"{APP}/data/logs/{job.name}"
        note = f"\n# {job.cron_note}" if job.cron_note else ""
        blocks.append(f"# {job.name}, {job.schedule}: {job.summary}{note}\n"
                      f"{cron_schedule(job)} env DASHBOARD_LOG_FORMAT=json DASHBOARD_LOG_FILE={logs}.log "
                      f"{' '.join(command(job))} >> {logs}.out 2>&1\n")
    return "\n".join(blocks)


# --- deploy/launchd --------------------------------------------------------------------------------------

def plist(job: Job) -> str:
    arguments = "".join(f"    <string>{part}</string>\n" for part in command(job))
    if job.daily_at is not None:
        when = ("  <key>StartCalendarInterval</key>\n  <dict>\n"
                f"    <key>Hour</key>\n    <integer>{job.daily_at[0]}</integer>\n"
                f"    <key>Minute</key>\n    <integer>{job.daily_at[1]}</integer>\n  </dict>\n")
    else:
        when = f"  <key>RunAtLoad</key>\n  <true/>\n  <key>StartInterval</key>\n  <integer>{job.every_s}</integer>\n"
    logs = f"{APP}/data/logs/{job.name}"
    return f"""\
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!--
  {job.summary}
  Installed as described in docs/operations.md, "Services on a Mac mini (launchd)": the settings and secrets
  come from {APP}/.env through deploy/with-env. JSON log lines go to data/logs/{job.name}.log;
  anything printed outside logging (a crash before logging starts) to data/logs/{job.name}.out.
  Generated from the table in deploy/jobs.py: change it there and regenerate (its docstring says how).
-->
<plist version="1.0">
<dict>
  <key>Label</key>
  <string>dev.opencode-dashboard.{job.name}</string>
  <key>ProgramArguments</key>
  <array>
{arguments}  </array>
  <key>WorkingDirectory</key>
  <string>{APP}</string>
  <key>EnvironmentVariables</key>
  <dict>
    <key>DASHBOARD_LOG_FORMAT</key>
    <string>json</string>
    <key>DASHBOARD_LOG_FILE</key>
    <string>{logs}.log</string>
  </dict>
{when}  <key>StandardOutPath</key>
  <string>{logs}.out</string>
  <key>StandardErrorPath</key>
  <string>{logs}.out</string>
</dict>
</plist>
"""


# --- deploy/systemd --------------------------------------------------------------------------------------

def service(job: Job) -> str:
    unit = f"opencode-dashboard-{job.name}"
    return f"""\
# {job.summary}
# Installed as described in docs/operations.md, "Services on Linux (systemd)". Logs: journalctl -u {unit}
# Generated from deploy/jobs.py: edit that, then `python -m deploy.jobs --write`.
[Unit]
Description=OpenCode Dashboard: {job.name}
PartOf=opencode-dashboard.target
After=network.target

[Service]
Type=oneshot
# Run by its timer; a failed run is simply retried at the next tick.
TimeoutStartSec=1h
User=opencode-dashboard
Group=opencode-dashboard
WorkingDirectory={APP}
Environment=DASHBOARD_LOG_FORMAT=json
ExecStart={' '.join(command(job))}
# One JSON object a line to the journal, which rotates it (SystemMaxUse= in journald.conf). No rate
# limit: the access log writes a line per request, more than journald's default burst allows.
StandardOutput=journal
StandardError=journal
SyslogIdentifier={unit}
LogRateLimitIntervalSec=0
NoNewPrivileges=yes
PrivateTmp=yes
ProtectSystem=strict
ProtectHome=yes
ReadWritePaths={APP}/data
UMask=0027
"""


def timer(job: Job) -> str:
    if job.daily_at is not None:
        description = f"{job.name}, daily"
        when = "OnCalendar=*-*-* {:02d}:{:02d}:00\nPersistent=true\n".format(*job.daily_at)
    else:
        description = f"{job.name}, every {job.every_s} s"
        when = f"OnActiveSec=10s\nOnUnitActiveSec={job.every_s}s\nAccuracySec=1s\n"
    return f"""\
# {job.summary}
# Generated from deploy/jobs.py: edit that, then `python -m deploy.jobs --write`.
[Unit]
Description=OpenCode Dashboard: {description}
PartOf=opencode-dashboard.target

[Timer]
{when}Unit=opencode-dashboard-{job.name}.service

[Install]
WantedBy=opencode-dashboard.target
"""


def generated_files(root: Path = REPO) -> dict[Path, str]:
    """Every file generated from JOBS, by its path in the checkout at `root`."""
    files = {root / "deploy" / "crontab": crontab()}
    for job in JOBS:
        files[root / "deploy" / "launchd" / f"dev.opencode-dashboard.{job.name}.plist"] = plist(job)
        files[root / "deploy" / "systemd" / f"opencode-dashboard-{job.name}.service"] = service(job)
        files[root / "deploy" / "systemd" / f"opencode-dashboard-{job.name}.timer"] = timer(job)
    return files


def periodic_service_files(root: Path = REPO) -> set[Path]:
    """The service files that run something periodically: the ones JOBS must account for."""
    agents = {path for path in (root / "deploy" / "launchd").glob("*.plist")
              if any(f"<key>{key}</key>" in path.read_text() for key in ("StartInterval", "StartCalendarInterval"))}
    timers = set((root / "deploy" / "systemd").glob("*.timer"))
    return agents | timers | {path.with_suffix(".service") for path in timers}


# --- the check -------------------------------------------------------------------------------------------

def differences(root: Path = REPO) -> list[str]:
    """Where `make run`, the crontab, launchd and systemd (of the checkout at `root`) disagree with JOBS;
    empty when they agree."""
    from deploy.run import periodic  # here, not at the top: deploy.run imports this module

    found = []
    generated = generated_files(root)
    for path, text in generated.items():
        name = path.relative_to(root)
        if not path.exists():
            found.append(f"{name}: missing (python -m deploy.jobs --write)")
        elif path.read_text() != text:
            found.append(f"{name}: differs from deploy/jobs.py (python -m deploy.jobs --write)")
    for path in sorted(periodic_service_files(root) - set(generated)):
        found.append(f"{path.relative_to(root)}: a periodic job deploy/jobs.py does not declare")
    settings = Settings()
    scheduled = {spec.name: (list(spec.argv)[1:], spec.interval_s) for spec in periodic(settings)}
    declared = {job.name: (["-m", job.module], job.interval_s(settings)) for job in JOBS if job.under_make_run}
    if scheduled != declared:
        found.append(f"deploy/run.py schedules {scheduled}, deploy/jobs.py declares {declared}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.jobs", description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--check", action="store_true", help="exit 1 if a schedule disagrees with this table")
    action.add_argument("--write", action="store_true", help="rewrite the crontab, launchd and systemd files")
    args = parser.parse_args(argv)
    if args.write:
        for path, text in generated_files().items():
            path.write_text(text)
        print(f"wrote {len(generated_files())} files from deploy/jobs.py")
        return 0
    if args.check:
        found = differences()
        for difference in found:
            print(difference, file=sys.stderr)
        if found:
            return 1
        print(f"{len(JOBS)} periodic jobs: make run, deploy/crontab, deploy/launchd and deploy/systemd agree")
        return 0
    for job in JOBS:
        where = "" if job.under_make_run else " (services and cron only, not `make run`)"
        print(f"{job.name:16} python -m {job.module:30} {job.schedule}{where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
