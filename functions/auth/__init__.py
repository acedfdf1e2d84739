"""The sign-in function: dashboard-token and GitHub sign-in, sessions, sign-out, and connecting Linear."""

from __future__ import annotations

import falcon

from functions.auth.resources import LoginResource, LogoutResource, MeResource, ProvidersResource
from functions.auth.throttle import SignInThrottle
from shared.auth import Authentication
from shared.config import Settings
from shared.webapp import function_app

ROUTE_PREFIXES = ("/api/auth",)


def create_app(settings: Settings | None = None) -> falcon.App:
    settings = settings or Settings.from_env()
    app = function_app(settings)
    throttle = SignInThrottle(settings.auth_max_failures, settings.auth_failure_window_s)
    app.add_route("/api/auth/providers", ProvidersResource(settings))
    app.add_route("/api/auth/login", LoginResource(settings, Authentication(settings), throttle))
    app.add_route("/api/auth/me", MeResource())
    app.add_route("/api/auth/logout", LogoutResource())
    return app
