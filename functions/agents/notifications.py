"""The notifications alert rules leave: GET /api/notifications, POST /api/notifications/{id}/read, and
POST /api/notifications/read (every unread one)."""

from __future__ import annotations

import falcon

from shared.agents.alerts import CHANNELS, TRIGGERS, mark_read
from shared.clock import now
from shared.store.db import write_transaction
from shared.store.feed import record_change
from shared.store.models import Notification
from shared.store.pagination import page_request, paginate
from shared.web.errors import ApiError
from shared.web.query import list_param


def notification_json(notification: Notification) -> dict:
    body = notification.to_json()
    body.pop("dedup_key", None)  # internal: how one alert per episode is kept
    body["read"] = body["read_at"] is not None
    return body


class NotificationsResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """?unread_only=&trigger=a,b&channel=a,b&agent_id=&task_id= — newest first."""
        query = Notification.select()
        if req.get_param_as_bool("unread_only", default=False):
            query = query.where(Notification.read_at.is_null())
        for name, column, choices in (("trigger", Notification.trigger, TRIGGERS),
                                      ("channel", Notification.channel, CHANNELS)):
            if values := list_param(req, name, choices):
                query = query.where(column.in_(values))
        for name, column in (("agent_id", Notification.agent_id), ("task_id", Notification.task_id)):
            if value := req.get_param(name):
                query = query.where(column == value)
        rows, cursor = paginate(query, (Notification.created_at, Notification.id), page_request(req))
        resp.media = {"notifications": [notification_json(row) for row in rows], "next_cursor": cursor}

    def on_post_read(self, req: falcon.Request, resp: falcon.Response, notification_id: int) -> None:
        with write_transaction():
            notification = Notification.get_or_none(Notification.id == notification_id)
            if notification is None:
                raise ApiError(404, "not_found", f"No notification {notification_id}.")
            if notification.read_at is None:
                Notification.update(read_at=now()).where(Notification.id == notification_id).execute()
                notification = Notification.get_by_id(notification_id)
                record_change("notification", "read", notification_json(notification))
        resp.media = {"notification": notification_json(notification)}

    def on_post_read_all(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Every unread notification is read now."""
        with write_transaction():
            ids = [row.id for row in Notification.select(Notification.id).where(Notification.read_at.is_null())
                   .order_by(Notification.id)]
            mark_read(ids, now())
        resp.media = {"marked_read": len(ids)}
