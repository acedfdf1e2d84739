"""The SSE function: every change in the feed, live, to browsers (`GET /api/stream`)."""

from __future__ import annotations

import falcon

from functions.sse.credentials import StreamCredentials
from functions.sse.hub import FeedHub
from functions.sse.resources import StreamResource, StreamTokenResource
from shared.config import Settings
from shared.web.auth import Authentication
from shared.web.webapp import function_app

ROUTE_PREFIXES = ("/api/stream",)


def create_app(settings: Settings | None = None, hub: FeedHub | None = None) -> falcon.App:
    settings = settings or Settings.from_env()
    app = function_app(settings)
    credentials = StreamCredentials(settings, Authentication(settings))
    # One hub (one poller thread) per app, and gunicorn builds the app once per worker process.
    hub = hub or FeedHub(settings.sse_poll_interval_s, settings.sse_queue_size)
    hub.dead_credentials = credentials.dead  # the hub ends the streams whose credential has ended
    app.add_route("/api/stream", StreamResource(settings, hub, credentials))
    app.add_route("/api/stream/token", StreamTokenResource(settings, credentials))
    return app
