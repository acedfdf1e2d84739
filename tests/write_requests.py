"""Requests that write, one of each kind a client makes, as raw (method, path, body, headers) tuples for
`Server.send`: the reliability tests send them while the database cannot take them, then again after."""

from __future__ import annotations

import json

from tests.support import API_KEY, DASHBOARD, event

JSON = {"Content-Type": "application/json"}
AGENT_JSON = JSON | {"Authorization": f"Bearer {API_KEY}"}
DASHBOARD_JSON = JSON | DASHBOARD


def one_of_each_write(round_: str) -> list[tuple[str, str, bytes, dict[str, str]]]:
    """One of each kind of write a client makes: a batch and a single event, a new task, a new alert
    rule, a rule changed. `round_` keeps the ids of two rounds apart. Each one changes something, so
    each has something to write."""
    todo = {"sessionID": f"ses-{round_}", "todos": [{"id": "1", "content": "Write it", "status": "pending"}]}
    batch = {"events": [event("todo.updated", todo, id=f"{round_}-batch-1"),
                        event("session.error", {"sessionID": f"ses-{round_}", "error": {"name": "Boom"}},
                              id=f"{round_}-batch-2")]}
    single = event("agent.registered", {"id": "openclaw-main", "name": "Main", "type": "primary"},
                   id=f"{round_}-single")
    return [
        ("POST", "/api/events", json.dumps(batch).encode(), AGENT_JSON),
        ("POST", "/api/events", json.dumps(single).encode(), AGENT_JSON),
        ("POST", "/api/agent/openclaw-main/tasks", json.dumps({"id": f"task-{round_}", "title": "Ship"}).encode(),
         DASHBOARD_JSON),
        ("POST", "/api/alert-rules", json.dumps({"id": f"rule-{round_}", "trigger": "blocked",
                                                 "channel": "in_app"}).encode(), DASHBOARD_JSON),
        ("PATCH", "/api/alert-rules/blocked-low", json.dumps({"delay_ms": 60_000}).encode(),
         DASHBOARD_JSON),
    ]

# What those writes answer when the database takes them.
SUCCESS_STATUSES = [202, 202, 201, 201, 200]
