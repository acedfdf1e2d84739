"""The cron job: `python -m functions.linear_sync [--full]`.

Prints one line (what the sync did, or why it did nothing) and exits 0, or 1 when the sync failed,
2 on a configuration error. A run that finds another sync holding the lock skips (exit 0): with a
60 s schedule a long full sync simply absorbs the ticks that fall inside it.
"""

from __future__ import annotations

import argparse
import sys

import peewee

from functions.linear_sync.graphql_client import LinearClient, LinearError
from functions.linear_sync.lock import SyncAlreadyRunning, sync_lock
from functions.linear_sync.sync import run_sync
from shared.config import settings_for_command
from shared.linear.oauth import linear_available
from shared.logs import configure_logging, report
from shared.store.db import database, open_database
from shared.store.migrations import LATEST_VERSION, current_version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m functions.linear_sync",
                                     description="Pull Linear's workflow states, projects and issues into the cache.")
    parser.add_argument("--full", action="store_true",
                        help="read everything and drop what Linear no longer lists (default: changes only, "
                             "unless the last full sync is a day old)")
    args = parser.parse_args(argv)
    settings = settings_for_command()
    configure_logging(settings)
    if not (settings.linear_configured or settings.linear_oauth_configured):
        report("linear-sync", "linear sync skipped: LINEAR_API_KEY or LINEAR_OAUTH_TOKEN is not set, and Linear "
               "cannot be connected over OAuth (no LINEAR_CLIENT_ID)")
        return 0
    open_database(settings)
    try:
        with database.connection_context():
            if current_version() < LATEST_VERSION:
                report("linear-sync", "linear sync failed: the database schema is behind; "
                       "run `python -m deploy.prepare`", failed=True)
                return 1
            if not linear_available(settings):
                report("linear-sync", "linear sync skipped: Linear is not connected yet (GET /api/auth/linear/login)")
                return 0
            with sync_lock(settings):
                sync_report = run_sync(LinearClient.from_settings(settings), full=args.full,
                                  team_ids=settings.linear_team_ids)
    except SyncAlreadyRunning:
        report("linear-sync", "linear sync skipped: another sync is still running")
        return 0
    except LinearError as error:
        report("linear-sync", f"linear sync failed: {error.message}", failed=True)
        return 1
    except peewee.OperationalError as error:
        report("linear-sync", f"linear sync failed: the database is unavailable ({error})", failed=True)
        return 1
    report("linear-sync", sync_report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
