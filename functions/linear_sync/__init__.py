"""The Linear sync function: the cached projects, boards, workflow states and cycles, the card move, and the
sync itself (`python -m functions.linear_sync [--full]` is the cron job)."""

from __future__ import annotations

import falcon

from functions.linear_sync.background import BackgroundSync
from functions.linear_sync.graphql_client import LinearClient
from functions.linear_sync.lock import new_sync_lock
from functions.linear_sync.resources import CyclesResource, ProjectsResource, StatesResource, SyncResource
from shared.config import Settings
from shared.linear.oauth import linear_available
from shared.web.webapp import function_app

# /api/linear/webhook is the webhook function's; the mount picks the longest prefix.
ROUTE_PREFIXES = ("/api/projects", "/api/linear")

# A person is waiting on a card move: fail within seconds rather than wait out a rate limit.
INTERACTIVE_CLIENT = {"timeout": (3.0, 10.0), "max_attempts": 2, "max_rate_limit_wait_s": 0.0}


def create_app(settings: Settings | None = None) -> falcon.App:
    settings = settings or Settings.from_env()
    app = function_app(settings)

    def configured() -> bool:  # a Linear connected over OAuth counts from the moment it is connected
        return linear_available(settings)

    def interactive_client() -> LinearClient:
        return LinearClient.from_settings(settings, **INTERACTIVE_CLIENT)

    def sync_client() -> LinearClient:
        return LinearClient.from_settings(settings)

    projects = ProjectsResource(configured, settings.max_body_bytes)
    app.add_route("/api/projects", projects)
    app.add_route("/api/projects/{project_id}", projects, suffix="item")
    app.add_route("/api/projects/{project_id}/board", projects, suffix="board")
    app.add_route("/api/linear/states", StatesResource(configured))
    app.add_route("/api/linear/cycles", CyclesResource(configured))
    app.add_route("/api/linear/sync", SyncResource(
        configured, settings.max_body_bytes, interactive_client, BackgroundSync(settings, sync_client),
        lambda: new_sync_lock(settings)))
    return app
