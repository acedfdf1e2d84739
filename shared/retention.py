"""Keeping the change feed small: `python -m shared.retention` deletes changes older than
FEED_RETENTION_DAYS (default 7). Run from cron (deploy/crontab) and by `make run` every hour.

A browser that resumes from a pruned id is told to reload (an SSE `reset` event), never left with a gap.
"""

from __future__ import annotations

import sys

from shared.config import settings_for_command
from shared.db import database, open_database
from shared.feed import prune_changes
from shared.logs import configure_logging, report
from shared.models import Change

SECONDS_PER_DAY = 86_400


def main() -> int:
    settings = settings_for_command()
    configure_logging(settings)
    open_database(settings)
    with database.connection_context():
        pruned = prune_changes(settings.feed_retention_days * SECONDS_PER_DAY)
        kept = Change.select().count()
    report("feed-retention",
           f"feed retention: pruned {pruned} changes older than {settings.feed_retention_days:g} days; {kept} kept")
    return 0


if __name__ == "__main__":
    sys.exit(main())
