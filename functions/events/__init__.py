"""The events function: agents' ingest (`POST /api/events`) and the session/message/todo reads."""

from __future__ import annotations

import falcon

from functions.events.resources import EventsResource, MessagesResource, SessionsResource, TodosResource
from shared.config import Settings
from shared.web.webapp import function_app

ROUTE_PREFIXES = ("/api/events", "/api/todos", "/api/msgs", "/api/messages", "/api/sess", "/api/sessions")


def create_app(settings: Settings | None = None) -> falcon.App:
    settings = settings or Settings.from_env()
    app = function_app(settings)
    app.add_route("/api/events", EventsResource(settings))
    app.add_route("/api/todos", TodosResource())
    messages = MessagesResource(settings.max_body_bytes)
    sessions = SessionsResource()
    for path in ("/api/msgs", "/api/messages"):  # v2 path and its v1 alias
        app.add_route(path, messages)
    for path in ("/api/sess", "/api/sessions"):
        app.add_route(path, sessions)
        app.add_route(path + "/{session_id}", sessions, suffix="item")
    return app
