"""Push notifications to an ntfy-compatible server (ntfy.sh or your own): one HTTP POST each.

PUSH_URL is a topic URL (`https://ntfy.sh/<topic>`); the message is published as ntfy's JSON
(`POST <server>` with `topic`), which carries a title, a priority, tags and a click URL back to the
dashboard, and any text (headers would not). Failures raise, so the caller (a Temporal activity) retries.
"""

from __future__ import annotations

from typing import Any

import requests

from shared.config import Settings

# ntfy's priorities: 1 min .. 5 max.
NTFY_PRIORITY = {"urgent": 5, "high": 4, "medium": 3, "low": 2}
TAGS = {"blocked": "warning", "completed": "white_check_mark", "error": "rotating_light", "idle_too_long": "zzz"}
TIMEOUT_S = (3.0, 10.0)


class PushFailed(RuntimeError):
    """The push server refused or could not be reached; retrying may help."""


def ntfy_message(settings: Settings, notification: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Where to POST, and ntfy's JSON for the notification."""
    server, _, topic = settings.push_url.rstrip("/").rpartition("/")
    tags = [TAGS.get(notification["trigger"], "bell")]
    if notification.get("priority"):
        tags.append(notification["priority"])
    click = settings.dashboard_public_url  # a digest is about no one agent: the dashboard itself
    if notification.get("agent_id"):
        click += f"/agents/{notification['agent_id']}"
    if notification.get("task_id"):
        click += f"?task={notification['task_id']}"
    return server, {"topic": topic, "title": notification["title"],
                    "message": notification.get("body") or notification["title"],
                    "priority": NTFY_PRIORITY.get(notification.get("priority") or "medium", 3), "tags": tags,
                    "click": click}


def send_push(settings: Settings, notification: dict[str, Any]) -> None:
    """POST one notification; raise PushFailed on a network error or a non-2xx answer."""
    server, message = ntfy_message(settings, notification)
    headers = {"Authorization": f"Bearer {settings.push_token}"} if settings.push_token else {}
    try:
        response = requests.post(server, json=message, headers=headers, timeout=TIMEOUT_S)
    except requests.RequestException as error:
        raise PushFailed(f"push server unreachable: {type(error).__name__}") from None
    if not response.ok:
        raise PushFailed(f"push server answered {response.status_code}")
