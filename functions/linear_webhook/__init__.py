"""The Linear webhook function: `POST /api/linear/webhook`, signed deliveries applied to the cache."""

from __future__ import annotations

import falcon

from functions.linear_webhook.resources import LinearWebhookResource
from shared.config import Settings
from shared.web.webapp import function_app

ROUTE_PREFIXES = ("/api/linear/webhook",)


def create_app(settings: Settings | None = None) -> falcon.App:
    settings = settings or Settings.from_env()
    app = function_app(settings)
    app.add_route("/api/linear/webhook", LinearWebhookResource(settings))
    return app
