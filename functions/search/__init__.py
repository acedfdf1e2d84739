"""The search function: full-text search, token and cost usage, the raw event timeline and activity counts.

Everything it reads is kept by the database itself (triggers, shared/search_schema.py) as the other
functions write: it only reads.
"""

from __future__ import annotations

import falcon

from functions.search.search import SearchResource
from functions.search.timeline import ActivityResource, TimelineResource
from functions.search.usage import UsageResource
from shared.config import Settings
from shared.web.webapp import function_app

ROUTE_PREFIXES = ("/api/search", "/api/usage", "/api/timeline", "/api/activity")


def create_app(settings: Settings | None = None) -> falcon.App:
    settings = settings or Settings.from_env()
    app = function_app(settings)
    app.add_route("/api/search", SearchResource())
    app.add_route("/api/usage", UsageResource())
    app.add_route("/api/timeline", TimelineResource())
    app.add_route("/api/activity", ActivityResource())
    return app
