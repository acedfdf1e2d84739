"""The agents function: agents and their tasks, a person's Unblock / Cancel (and answers to their questions),
the agents' inbox, alert rules, notifications."""

from __future__ import annotations

import falcon

from functions.agents.alert_rules import AlertRulesResource
from functions.agents.inbox import InboxResource
from functions.agents.notifications import NotificationsResource
from functions.agents.resources import AgentResource, AgentsResource, TaskActionsResource
from shared.config import Settings
from shared.store.db import MAX_INTEGER
from shared.web.webapp import function_app

ROUTE_PREFIXES = ("/api/agents", "/api/agent", "/api/alert-rules", "/api/notifications")

# A row id in a path: bounded to what a database integer holds, so a larger number is simply no such
# row (404) instead of an OverflowError in the query.
ROW_ID = f"int(min=1, max={MAX_INTEGER})"


def create_app(settings: Settings | None = None) -> falcon.App:
    settings = settings or Settings.from_env()
    app = function_app(settings)
    app.add_route("/api/agents", AgentsResource())
    agent = AgentResource(settings)
    app.add_route("/api/agent/{agent_id}/profile", agent, suffix="profile")
    app.add_route("/api/agent/{agent_id}/tasks", agent, suffix="tasks")
    app.add_route("/api/agent/{agent_id}/tasks/{task_id}", agent, suffix="task")
    actions = TaskActionsResource(settings)
    app.add_route("/api/agent/{agent_id}/tasks/{task_id}/unblock", actions, suffix="unblock")
    app.add_route("/api/agent/{agent_id}/tasks/{task_id}/cancel", actions, suffix="cancel")
    inbox = InboxResource(settings.long_request_slots)
    app.add_route("/api/agent/{agent_id}/inbox", inbox)
    app.add_route(f"/api/agent/{{agent_id}}/inbox/{{entry_id:{ROW_ID}}}/ack", inbox, suffix="ack")
    rules = AlertRulesResource(settings.max_body_bytes)
    app.add_route("/api/alert-rules", rules)
    app.add_route("/api/alert-rules/{rule_id}", rules, suffix="item")
    notifications = NotificationsResource()
    app.add_route("/api/notifications", notifications)
    app.add_route("/api/notifications/read", notifications, suffix="read_all")
    app.add_route(f"/api/notifications/{{notification_id:{ROW_ID}}}/read", notifications, suffix="read")
    return app
