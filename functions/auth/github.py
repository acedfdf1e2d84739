"""GitHub's side of the sign-in: the authorize URL, the code exchange and the user's profile.

GitHub's token endpoint answers errors (an expired or reused code, a wrong secret) with HTTP 200 and
an `error` field, so every answer's body is checked, not just its status. The access token is used
once, to read who signed in, and never stored.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

import requests

from shared.config import Settings
from shared.web.errors import ApiError

log = logging.getLogger(__name__)

AUTHORIZE_URL = "https://github.com/login/oauth/authorize"
TOKEN_URL = "https://github.com/login/oauth/access_token"
USER_URL = "https://api.github.com/user"
TIMEOUT = (5.0, 10.0)


def callback_url(settings: Settings) -> str:
    return f"{settings.dashboard_public_url}/api/auth/github/callback"


def authorize_url(settings: Settings, state: str) -> str:
    # No scope: the public profile (login, id, avatar) is all a sign-in needs.
    return AUTHORIZE_URL + "?" + urlencode({"client_id": settings.github_client_id,
                                            "redirect_uri": callback_url(settings), "state": state,
                                            "allow_signup": "false"})


def exchange_code(http: requests.Session, settings: Settings, code: str) -> str:
    """GitHub's access token for an authorization code."""
    body = _json(_call(http, "POST", TOKEN_URL, headers={"Accept": "application/json"}, data={
        "client_id": settings.github_client_id, "client_secret": settings.github_client_secret,
        "code": code, "redirect_uri": callback_url(settings)}))
    if "error" in body:
        # bad_verification_code (expired or reused: codes live 10 minutes, once), incorrect_client_credentials, ...
        log.warning("GitHub refused the code exchange: %s", body.get("error"))
        raise ApiError(400, "github_refused", f"GitHub refused the sign-in: "
                       f"{body.get('error_description') or body['error']} Start again at /api/auth/github/login.")
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise _unexpected("its token endpoint answered without an access_token")
    return token


def fetch_user(http: requests.Session, token: str) -> dict[str, Any]:
    """The signed-in GitHub user's profile: `id`, `login`, `avatar_url`, ..."""
    response = _call(http, "GET", USER_URL, headers={"Authorization": f"Bearer {token}",
                                                     "Accept": "application/vnd.github+json",
                                                     "X-GitHub-Api-Version": "2022-11-28"})
    if response.status_code != 200:
        raise _unexpected(f"GET /user answered {response.status_code}")
    profile = _json(response)
    if not isinstance(profile.get("id"), int) or not isinstance(profile.get("login"), str):
        raise _unexpected("GET /user answered without an id and a login")
    return profile


def _call(http: requests.Session, method: str, url: str, **options: Any) -> requests.Response:
    try:
        response = http.request(method, url, timeout=TIMEOUT, **options)
    except requests.RequestException as error:
        log.warning("GitHub could not be reached (%s %s): %s", method, url, error.__class__.__name__)
        raise ApiError(503, "github_unavailable", "GitHub could not be reached; try signing in again shortly.",
                       headers={"Retry-After": "30"}) from None
    if response.status_code >= 500:
        log.warning("GitHub answered %d to %s %s", response.status_code, method, url)
        raise ApiError(503, "github_unavailable", f"GitHub is having trouble (it answered "
                       f"{response.status_code}); try signing in again shortly.", headers={"Retry-After": "30"})
    return response


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise _unexpected(f"it answered {response.status_code} without a JSON object")
    return body


def _unexpected(what: str) -> ApiError:
    log.warning("GitHub sign-in failed: %s", what)
    return ApiError(502, "github_error", f"GitHub sign-in failed: {what}.")
