"""The sign-in function: dashboard-token and GitHub sign-in, sessions, sign-out, and connecting Linear."""

from __future__ import annotations

import logging

import falcon

from functions.auth.github_resources import GitHubSignInResource
from functions.auth.linear_resources import LinearConnectionResource
from functions.auth.resources import LoginResource, LogoutResource, MeResource, ProvidersResource
from shared.config import Settings
from shared.web.auth import Authentication
from shared.web.webapp import function_app

ROUTE_PREFIXES = ("/api/auth",)

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> falcon.App:
    settings = settings or Settings.from_env()
    app = function_app(settings)
    app.add_route("/api/auth/providers", ProvidersResource(settings))
    app.add_route("/api/auth/login", LoginResource(settings, Authentication(settings)))
    app.add_route("/api/auth/me", MeResource())
    app.add_route("/api/auth/logout", LogoutResource())
    github = GitHubSignInResource(settings)
    app.add_route("/api/auth/github/login", github, suffix="login")
    app.add_route("/api/auth/github/callback", github, suffix="callback")
    linear = LinearConnectionResource(settings)
    app.add_route("/api/auth/linear", linear)
    app.add_route("/api/auth/linear/login", linear, suffix="login")
    app.add_route("/api/auth/linear/callback", linear, suffix="callback")
    if settings.github_configured and not settings.github_allowed_users:
        log.warning("GitHub sign-in is configured but GITHUB_ALLOWED_USERS is empty: nobody may sign in with GitHub")
    return app
