"""`python -m shared.jobs.retention` keeps the database small: the feed after FEED_RETENTION_DAYS, the
bookkeeping records (raw events, webhook deliveries, ended sessions, old failed sign-ins) after
RECORD_RETENTION_DAYS or once they no longer count."""

from __future__ import annotations

from shared.clock import now
from shared.jobs import retention
from shared.store.db import write_transaction
from shared.store.models import AuthSession, InboundEvent, SignInFailure, User, WebhookDelivery
from tests.support import AGENT, event

DAY = 86_400


def run_retention(monkeypatch, settings, capsys, **env: str) -> str:
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert retention.main() == 0
    return capsys.readouterr().out.strip()


def post_events(events_client, *ids: str) -> dict:
    response = events_client.simulate_post(
        "/api/events", json={"events": [event("todo.updated", {"sessionID": "s1", "todos": []}, id=i)
                                        for i in ids]}, headers=AGENT)
    assert response.status_code == 202, response.text
    return response.json


def test_raw_events_older_than_the_record_retention_go_and_recent_ones_still_deduplicate(
        events_client, settings, monkeypatch, capsys):
    post_events(events_client, "old-1", "old-2", "recent")
    InboundEvent.update(received_at=now() - 31 * DAY).where(InboundEvent.id.startswith("old")).execute()

    result = run_retention(monkeypatch, settings, capsys)

    assert [row.id for row in InboundEvent.select()] == ["recent"]
    assert "removed 2 raw events and 0 webhook deliveries older than 30 days" in result
    # A retry of the event still inside the window is still recognised.
    assert post_events(events_client, "recent")["duplicates"] == 1


def test_the_record_window_is_configurable(events_client, settings, monkeypatch, capsys):
    post_events(events_client, "two-days-old")
    InboundEvent.update(received_at=now() - 2 * DAY).execute()

    run_retention(monkeypatch, settings, capsys, RECORD_RETENTION_DAYS="3")
    assert InboundEvent.select().count() == 1
    run_retention(monkeypatch, settings, capsys, RECORD_RETENTION_DAYS="1")
    assert InboundEvent.select().count() == 0


def test_old_webhook_deliveries_go(db, settings, monkeypatch, capsys):
    with write_transaction():
        for delivery, age in [("old", 40 * DAY), ("new", 60)]:
            WebhookDelivery.create(id=delivery, source="linear", payload={}, received_at=now() - age)

    run_retention(monkeypatch, settings, capsys)

    assert [row.id for row in WebhookDelivery.select()] == ["new"]


def test_sessions_that_ended_long_ago_go_and_live_or_recently_ended_ones_stay(db, settings, monkeypatch, capsys):
    long_ago, recently = now() - 31 * DAY, now() - DAY
    sessions = {
        "live": {"expires_at": now() + DAY},
        "expired-long-ago": {"expires_at": long_ago},
        "revoked-long-ago": {"expires_at": now() + DAY, "revoked_at": long_ago},
        "expired-recently": {"expires_at": recently},
        "revoked-recently": {"expires_at": now() + DAY, "revoked_at": recently},
    }
    with write_transaction():
        User.create(id="u1", github_id="1", github_username="ada", provider="github")
        for session_id, times in sessions.items():
            AuthSession.create(id=session_id, user_id="u1", token_hash=session_id, **times)

    run_retention(monkeypatch, settings, capsys)

    assert sorted(row.id for row in AuthSession.select()) == ["expired-recently", "live", "revoked-recently"]


def test_failed_sign_ins_go_once_they_no_longer_count(db, settings, monkeypatch, capsys):
    with write_transaction():
        SignInFailure.create(client="10.0.0.1", failed_at=now() - settings.auth_failure_window_s - 10)
        SignInFailure.create(client="10.0.0.1", failed_at=now() - 10)

    result = run_retention(monkeypatch, settings, capsys)

    assert SignInFailure.select().count() == 1
    assert result.endswith("0 ended sessions, 1 old failed sign-ins")


def test_a_big_clean_up_goes_in_batches_and_misses_nothing(events_client, settings, monkeypatch, capsys):
    monkeypatch.setattr(retention, "BATCH_ROWS", 4)
    post_events(events_client, *[f"e{n}" for n in range(10)])
    InboundEvent.update(received_at=now() - 31 * DAY).execute()

    run_retention(monkeypatch, settings, capsys)

    assert InboundEvent.select().count() == 0
