"""Alert rules turned into notifications: which rules a task's event fires, once per episode.

A rule (`alert_rules`) names a trigger (blocked, completed, error, idle_too_long, question_timeout), a
priority filter, a delay counted from the start of the episode (for question_timeout: from the moment
the question timed out), and a channel (in_app, push, both). Every fired rule
leaves one `notifications` row, keyed by rule, task, trigger and episode, so a rule fires once per
blocked episode however often it is evaluated (and an activity retry inserts nothing twice).
In-app notifications are announced on the change feed (topic `notification`); push ones are sent by
the worker (shared.agents.push).
"""

from __future__ import annotations

from typing import Any

from shared.clock import iso_from_unix
from shared.store.db import execute, insert_returning_id
from shared.store.feed import record_change
from shared.store.models import AlertRule, Notification

MARK_READ_BATCH = 500  # ids per UPDATE: well under SQLite's bound-variable limit

TRIGGERS = ("blocked", "completed", "error", "idle_too_long", "question_timeout")
CHANNELS = ("push", "in_app", "both")
PRIORITY_FILTERS = ("all", "urgent", "high", "medium", "low")
PUSHED = ("push", "both")
IN_APP = ("in_app", "both")


def rule_matches_priority(priority_filter: str | None, priority: str) -> bool:
    """`high` also covers urgent (the seed's rules know no urgent); `all` or none covers everything."""
    if priority_filter in (None, "", "all"):
        return True
    return priority_filter == priority or (priority_filter == "high" and priority == "urgent")


def due_rules(trigger: str, priority: str, elapsed_s: float) -> list[AlertRule]:
    """The enabled rules for `trigger` and `priority` whose delay has passed `elapsed_s` into the episode."""
    rules = AlertRule.select().where((AlertRule.trigger == trigger) & (AlertRule.enabled == 1)).order_by(AlertRule.id)
    return [rule for rule in rules
            if rule_matches_priority(rule.priority_filter, priority) and (rule.delay_ms or 0) <= elapsed_s * 1000]


def dedup_key(rule_id: str, task_id: str, trigger: str, episode: int) -> str:
    return f"{rule_id}:{task_id}:{trigger}:{episode}"


def rules_pending(trigger: str, task_id: str, priority: str, episode: int, now: int) -> bool:
    """Whether a rule is due in this episode and has not fired yet (a read: no write lock taken)."""
    return any(
        not execute("SELECT 1 FROM notifications WHERE dedup_key = ?",
                    (dedup_key(rule.id, task_id, trigger, episode),)).fetchone()
        for rule in due_rules(trigger, priority, now - episode))


def fire_rules(trigger: str, task: dict[str, Any], episode: int, now: int, *, title: str,
               body: str | None) -> list[int]:
    """Record a notification for each due rule not yet fired in this episode; inside the caller's
    write transaction. Returns the ids of the new ones that still have to be pushed."""
    to_push: list[int] = []
    for rule in due_rules(trigger, task["priority"] or "medium", now - episode):
        key = dedup_key(rule.id, task["id"], trigger, episode)
        # The caller's write transaction holds the write lock: nobody can insert the key in between.
        if execute("SELECT 1 FROM notifications WHERE dedup_key = ?", (key,)).fetchone():
            continue  # already fired in this episode
        notification_id = insert_returning_id(
            "INSERT INTO notifications (rule_id, trigger, channel, title, body, agent_id, task_id, priority,"
            " created_at, dedup_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (rule.id, trigger, rule.channel, title, body, task["agent_id"], task["id"], task["priority"], now, key))
        if rule.channel in IN_APP:
            record_change("notification", "created", Notification.fetch_json("id = ?", (notification_id,)))
        if rule.channel in PUSHED:
            to_push.append(notification_id)
    return to_push


BLOCKED_NOTIFICATIONS = ("SELECT id FROM notifications WHERE task_id = ? AND trigger = 'blocked'"
                         " AND read_at IS NULL ORDER BY id")


def settle_blocked_notifications(task_id: str, now: int) -> None:
    """The task is no longer blocked (answered, unblocked, moved on): its unread "blocked" notifications
    are read, since there is nothing left for a person to do about them. Inside the caller's write
    transaction."""
    ids = [row[0] for row in execute(BLOCKED_NOTIFICATIONS, (task_id,)).fetchall()]
    mark_read(ids, now)


def mark_read(ids: list[int], now: int) -> None:
    """Mark these (unread) notifications read, and tell open pages: `read_many` {ids, read_at}."""
    if not ids:
        return
    for start in range(0, len(ids), MARK_READ_BATCH):
        batch = ids[start:start + MARK_READ_BATCH]
        execute(f"UPDATE notifications SET read_at = ? WHERE id IN ({', '.join('?' * len(batch))})", (now, *batch))
    record_change("notification", "read_many", {"ids": ids, "read_at": iso_from_unix(now)})
