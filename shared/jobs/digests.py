"""Digest alerts: a `completed` rule with a delay sends one notification per window, not one per task.

The seed's `completed-batch` rule (delay 15 min) means "every 15 minutes, tell me what got done". A
task's workflow ends when the task does, so it cannot wait for its siblings; this periodic job does:
`python -m shared.jobs.digests`, run every minute by `make run` (and deploy/crontab). Each rule keeps the
end of its last window in `settings`, so a window is reported once however often the job runs, and a
restart picks up where it left off.
"""

from __future__ import annotations

import logging
import sys

from shared.agents.alerts import IN_APP, PUSHED, rule_matches_priority
from shared.agents.push import PushFailed, send_push
from shared.clock import now as clock_now
from shared.config import Settings, settings_for_command
from shared.logs import configure_logging, report
from shared.store.db import database, execute, insert_returning_id, open_database, write_transaction
from shared.store.feed import record_change
from shared.store.models import AgentTask, AlertRule, Notification

log = logging.getLogger(__name__)

WINDOW_KEY = "alert_digest_window_end:{rule_id}"
TITLES_SHOWN = 10


def digest_rules() -> list[AlertRule]:
    return list(AlertRule.select().where((AlertRule.trigger == "completed") & (AlertRule.enabled == 1)
                                         & (AlertRule.delay_ms > 0)).order_by(AlertRule.id))


def send_due_digests(settings: Settings, now: int | None = None) -> list[int]:
    """Close every digest window that has run its length; return the ids of the notifications made."""
    now = clock_now() if now is None else now
    made: list[int] = []
    with write_transaction():
        for rule in digest_rules():
            notification_id = close_window(rule, now)
            if notification_id is not None:
                made.append(notification_id)
    for notification_id in made:
        push_if_wanted(settings, notification_id)
    return made


def close_window(rule: AlertRule, now: int) -> int | None:
    """If the rule's window is over, move it on and notify what was completed in it (if anything)."""
    key = WINDOW_KEY.format(rule_id=rule.id)
    row = execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
    if row is None:  # a new rule (or a first run): its first window starts now
        execute("INSERT INTO settings (key, value) VALUES (?, ?)", (key, str(now)))
        return None
    start, length = int(row[0]), rule.delay_ms // 1000
    if now - start < length:
        return None
    execute("UPDATE settings SET value = ? WHERE key = ?", (str(now), key))
    done = [task for task in AgentTask.select().where(
                (AgentTask.status == "completed") & (AgentTask.completed_at >= start) & (AgentTask.completed_at < now))
            .order_by(AgentTask.completed_at)
            if rule_matches_priority(rule.priority_filter, task.priority or "medium")]
    if not done:
        return None
    title = f"{len(done)} task{'s' if len(done) > 1 else ''} completed"
    lines = [f"{task.agent_id}: {task.title}" for task in done[:TITLES_SHOWN]]
    if len(done) > TITLES_SHOWN:
        lines.append(f"... and {len(done) - TITLES_SHOWN} more")
    notification_id = insert_returning_id(
        "INSERT INTO notifications (rule_id, trigger, channel, title, body, created_at, dedup_key)"
        " VALUES (?, 'completed', ?, ?, ?, ?, ?)",
        (rule.id, rule.channel, title, "\n".join(lines), now, f"{rule.id}:digest:{start}"))
    if rule.channel in IN_APP:
        record_change("notification", "created", Notification.fetch_json("id = ?", (notification_id,)))
    return notification_id


def push_if_wanted(settings: Settings, notification_id: int) -> None:
    """Push a digest once; a failure is logged and the notification stays undelivered (in-app still shows
    it). A digest is a summary, so it is not worth holding the next window back for."""
    notification = Notification.fetch_json("id = ?", (notification_id,))
    if notification["channel"] not in PUSHED or not settings.push_url:
        return
    try:
        send_push(settings, notification)
    except PushFailed as error:
        log.warning("digest %s not pushed: %s", notification_id, error)
        return
    with write_transaction():
        execute("UPDATE notifications SET delivered_at = ? WHERE id = ?", (clock_now(), notification_id))


def main() -> int:
    settings = settings_for_command()
    configure_logging(settings)
    open_database(settings)
    with database.connection_context():
        made = send_due_digests(settings)
    report("alert-digests", f"alert digests: {len(made)} sent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
