"""Keeping the database small: `python -m shared.jobs.retention`, run from cron (deploy/crontab) and by
`make run` every hour.

- Changes older than FEED_RETENTION_DAYS (default 7) go. A browser that resumes from a pruned id is
  told to reload (an SSE `reset` event), never left with a gap.
- The bookkeeping records older than RECORD_RETENTION_DAYS (default 30) go too: raw inbound events
  and Linear webhook deliveries (kept only so that a retry is recognised as a duplicate: an agent's
  or Linear's retries come within minutes or hours, not weeks), and sign-in sessions that expired or
  were revoked that long ago. Failed sign-ins go once they no longer count towards the rate limit.

Records are deleted in small batches, each its own write transaction, so ingest never waits long
behind a big clean-up.
"""

from __future__ import annotations

import sys

import peewee

from shared.clock import now
from shared.config import Settings, settings_for_command
from shared.logs import configure_logging, report
from shared.store.db import database, open_database, write_transaction
from shared.store.feed import prune_changes
from shared.store.models import AuthSession, Change, InboundEvent, SignInFailure, WebhookDelivery

SECONDS_PER_DAY = 86_400
BATCH_ROWS = 5_000


def main() -> int:
    settings = settings_for_command()
    configure_logging(settings)
    open_database(settings)
    with database.connection_context():
        pruned = prune_changes(settings.feed_retention_days * SECONDS_PER_DAY)
        kept = Change.select().count()
        removed = prune_records(settings)
    report("feed-retention",
           f"feed retention: pruned {pruned} changes older than {settings.feed_retention_days:g} days; {kept} kept; "
           f"removed {removed['inbound_events']} raw events and {removed['webhook_deliveries']} webhook deliveries "
           f"older than {settings.record_retention_days:g} days, {removed['auth_sessions']} ended sessions, "
           f"{removed['sign_in_failures']} old failed sign-ins")
    return 0


def prune_records(settings: Settings) -> dict[str, int]:
    """Delete the bookkeeping rows nobody needs any more; how many went, by table."""
    record_cutoff = now() - int(settings.record_retention_days * SECONDS_PER_DAY)
    ended_long_ago = (AuthSession.expires_at < record_cutoff) | (AuthSession.revoked_at < record_cutoff)
    return {
        "inbound_events": delete_in_batches(InboundEvent, InboundEvent.received_at < record_cutoff),
        "webhook_deliveries": delete_in_batches(WebhookDelivery, WebhookDelivery.received_at < record_cutoff),
        "auth_sessions": delete_in_batches(AuthSession, ended_long_ago),
        "sign_in_failures": delete_in_batches(
            SignInFailure, SignInFailure.failed_at < now() - settings.auth_failure_window_s),
    }


def delete_in_batches(model: type[peewee.Model], condition: peewee.Expression) -> int:
    """Delete `model`'s rows matching `condition`, BATCH_ROWS per write transaction; how many went."""
    key = model._meta.primary_key
    deleted = 0
    while True:
        with write_transaction():
            batch = model.delete().where(key.in_(model.select(key).where(condition).limit(BATCH_ROWS))).execute()
        deleted += batch
        if batch < BATCH_ROWS:
            return deleted


if __name__ == "__main__":
    sys.exit(main())
