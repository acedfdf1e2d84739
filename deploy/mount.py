"""The one WSGI app gunicorn serves: every function, each mounted at its route prefixes.

Each function stays an independent Falcon app; this only picks the app by path. A path no function
claims gets the project's JSON 404. Around it all, `RequestLog` gives every request its id and access line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import ModuleType

import falcon

import functions.agents
import functions.auth
import functions.dashboard
import functions.events
import functions.linear_sync
import functions.linear_webhook
import functions.search
import functions.sse
from deploy import health, openapi
from shared.config import Settings
from shared.logs import configure_logging
from shared.web.errors import install_error_handling
from shared.web.request_log import RequestLog

WSGIApp = Callable[..., Iterable[bytes]]

# Each function package has create_app(settings) and the ROUTE_PREFIXES it serves.
FUNCTIONS = (functions.events, functions.sse, functions.linear_webhook, functions.linear_sync, functions.agents,
             functions.auth, functions.dashboard, functions.search)


class PrefixMount:
    """Dispatch each request to the app whose prefix matches the whole leading path segments."""

    def __init__(self, mounts: list[tuple[str, WSGIApp]], fallback: WSGIApp):
        # Longest prefix first, so /api/linear/webhook can live beside /api/linear.
        self.mounts = sorted(mounts, key=lambda mount: len(mount[0]), reverse=True)
        self.fallback = fallback

    def app_for(self, path: str) -> WSGIApp:
        for prefix, app in self.mounts:
            # "/" (the page) is served at itself only: as a prefix it would claim every path.
            if path == prefix or (prefix != "/" and path.startswith(prefix + "/")):
                return app
        return self.fallback

    def __call__(self, environ, start_response):
        return self.app_for(environ.get("PATH_INFO", "/"))(environ, start_response)


def not_found_app() -> falcon.App:
    app = falcon.App()
    install_error_handling(app)
    return app


def mounted_apps(settings: Settings) -> list[tuple[ModuleType, falcon.App, tuple[str, ...]]]:
    """Every app the mount serves: (the module that documents it, the app, its route prefixes)."""
    apps = [(health, health.create_app(settings), ("/api/health",)),
            (openapi, openapi.create_app(settings, (health, openapi, *FUNCTIONS)), ("/api/openapi.json",))]
    return apps + [(function, function.create_app(settings), function.ROUTE_PREFIXES) for function in FUNCTIONS]


def prefix_mount(apps: Iterable[tuple[ModuleType, falcon.App, tuple[str, ...]]]) -> PrefixMount:
    return PrefixMount([(prefix, app) for _, app, prefixes in apps for prefix in prefixes],
                       fallback=not_found_app())


def create_app(settings: Settings | None = None) -> RequestLog:
    settings = settings or Settings.from_env()
    configure_logging(settings)
    return RequestLog(prefix_mount(mounted_apps(settings)))
