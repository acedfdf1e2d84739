"""GET /api/auth/github/login and /api/auth/github/callback: signing in with a GitHub account.

Only the GitHub logins in GITHUB_ALLOWED_USERS may sign in; with an empty list nobody may. A refused
login leaves nothing behind (no user row, no session).
"""

from __future__ import annotations

from typing import Any

import falcon
import requests

from functions.auth import github, oauth_state
from shared.clock import now
from shared.config import Settings
from shared.store.db import write_transaction
from shared.store.models import User
from shared.web.auth import PUBLIC
from shared.web.errors import ApiError
from shared.web.sessions import set_session_cookie, start_session

PROVIDER = "github"


class GitHubSignInResource:
    auth = PUBLIC

    def __init__(self, settings: Settings, http: requests.Session | None = None):
        self.settings = settings
        self.http = http or requests.Session()

    def on_get_login(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.require_configured()
        state = oauth_state.begin(self.settings, PROVIDER, req, resp)
        resp.status = falcon.HTTP_302
        resp.location = github.authorize_url(self.settings, state)

    def on_get_callback(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.require_configured()
        if error := req.get_param("error"):
            raise refused_by_github(error, req.get_param("error_description"))
        code = oauth_state.finish(self.settings, PROVIDER, req, resp)
        profile = github.fetch_user(self.http, github.exchange_code(self.http, self.settings, code))
        self.require_allowed(profile["login"])
        with write_transaction():
            token = start_session(upsert_github_user(profile))
        set_session_cookie(req, resp, token)
        resp.status = falcon.HTTP_302
        resp.location = "/"

    def require_configured(self) -> None:
        if not self.settings.github_configured:
            raise ApiError(503, "github_not_configured", "GitHub sign-in is not configured: set GITHUB_CLIENT_ID "
                           "and GITHUB_CLIENT_SECRET (and GITHUB_ALLOWED_USERS), or sign in with the dashboard "
                           "token.")

    def require_allowed(self, login: str) -> None:
        allowed = self.settings.github_allowed_users
        if not allowed:
            raise ApiError(403, "not_allowed", "Nobody may sign in with GitHub yet: GITHUB_ALLOWED_USERS is empty. "
                           f"Add your login ({login}) to it and restart.")
        if login.lower() not in allowed:
            raise ApiError(403, "not_allowed", f"The GitHub user {login} may not sign in here (not in "
                           "GITHUB_ALLOWED_USERS).")


def refused_by_github(error: str, description: str | None) -> ApiError:
    if error == "access_denied":
        return ApiError(403, "github_denied", "You declined to let the dashboard see your GitHub account, so "
                        "you are not signed in.")
    # redirect_uri_mismatch, application_suspended, ...: the OAuth App's setup, not the person.
    return ApiError(400, "github_refused", f"GitHub refused the sign-in ({error}): {description or 'no reason given'}.")


def upsert_github_user(profile: dict[str, Any]) -> str:
    """The `users` row of this GitHub account, created or refreshed (login and avatar change); its id.
    Must run inside a write transaction."""
    github_id = str(profile["id"])
    User.insert(id=f"github:{github_id}", github_id=github_id, github_username=profile["login"],
                github_avatar_url=profile.get("avatar_url"), provider="github", created_at=now()).on_conflict(
        conflict_target=[User.github_id],
        update={User.github_username: profile["login"], User.github_avatar_url: profile.get("avatar_url")},
    ).execute()
    return User.get(User.github_id == github_id).id
