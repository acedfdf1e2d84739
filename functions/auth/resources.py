"""Signing in and out with the dashboard token, who is signed in, and which ways to sign in exist."""

from __future__ import annotations

from urllib.parse import parse_qs

import falcon

from shared.config import Settings
from shared.store.db import write_transaction
from shared.store.models import User
from shared.web.auth import DASHBOARD, PUBLIC, Authentication, digest
from shared.web.errors import ApiError, invalid
from shared.web.json_body import parse_json, read_raw_body
from shared.web.same_origin import require_same_origin
from shared.web.sessions import (
    LOCAL_USER_ID,
    clear_session_cookie,
    ensure_local_user,
    revoke_session,
    set_session_cookie,
    start_session,
    user_json,
)

FORM = "application/x-www-form-urlencoded"


class ProvidersResource:
    """GET /api/auth/providers — which sign-in methods this installation offers."""

    auth = PUBLIC

    def __init__(self, settings: Settings):
        self.settings = settings

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        # The dashboard token always works: whoever holds it can already call every route with it.
        resp.media = {"github": self.settings.github_configured, "token": True}


class LoginResource:
    """POST /api/auth/login — the dashboard token (JSON `{"token"}` or form `token=`) for a session cookie."""

    auth = PUBLIC

    def __init__(self, settings: Settings, authentication: Authentication):
        self.settings = settings
        self.authentication = authentication
        self.throttle = authentication.throttle

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        refuse_other_sites(req)
        presented = digest(sign_in_token(req, self.settings.max_body_bytes))
        client = req.remote_addr
        with write_transaction():
            failures = self.throttle.check(client)
            accepted = self.authentication.matches(DASHBOARD, presented)
            if accepted:
                self.throttle.forgive(client)
                token = start_session(ensure_local_user())
            else:
                self.throttle.record_failure(client, failures)
        if not accepted:  # raised after the commit: the failure must stay counted
            raise ApiError(401, "unauthorized", "That is not the dashboard token.")
        set_session_cookie(req, resp, token)
        resp.media = {"user": user_json(User.get_by_id(LOCAL_USER_ID))}


def refuse_other_sites(req: falcon.Request) -> None:
    """403 for a sign-in another site's page sent, before it can count as a failure: else any page its
    owner visits could post wrong tokens from the owner's own browser, locking the owner out.

    A form is what a page on any site can make a browser post without asking, so a form sign-in must
    come from our own pages (Origin or Referer), like every cookie write. A JSON body cannot be sent
    across sites without a CORS preflight (never granted), so a script or curl may sign in with JSON and
    no Origin; but whatever says where it comes from must be us. (Other bodies are a 415, uncounted.)"""
    media_type = (req.content_type or "").split(";")[0].strip().lower()
    if media_type == FORM or req.get_header("Origin") or req.get_header("Referer"):
        require_same_origin(req)


def sign_in_token(req: falcon.Request, max_bytes: int) -> str:
    """The `token` a sign-in request carries, from a JSON or an HTML form body."""
    media_type = (req.content_type or "").split(";")[0].strip().lower()
    if media_type == falcon.MEDIA_JSON:
        body = parse_json(read_raw_body(req, max_bytes))
        token = body.get("token") if isinstance(body, dict) else None
    elif media_type == FORM:
        try:
            fields = parse_qs(read_raw_body(req, max_bytes).decode("utf-8"), errors="strict")
        except UnicodeDecodeError:
            raise ApiError(400, "bad_request", "The form body is not valid UTF-8.") from None
        token = fields.get("token", [None])[0]
    else:
        raise ApiError(415, "unsupported_media_type", f"Send the token as application/json or {FORM}.")
    if not isinstance(token, str) or not token.strip():
        raise invalid("token", "token is required: the dashboard token, as a string.")
    return token.strip()


class MeResource:
    """GET /api/auth/me — the signed-in user."""

    auth = DASHBOARD

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        session = req.context.session
        user = User.get_or_none(User.id == (session.user_id if session is not None else LOCAL_USER_ID))
        resp.media = {"user": user_json(user)}


class LogoutResource:
    """POST /api/auth/logout — revoke this session and clear the cookie (204)."""

    auth = DASHBOARD

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        session = req.context.session
        if session is not None:  # the dashboard token itself has no session to end
            with write_transaction():
                revoke_session(session)
        clear_session_cookie(resp)
        resp.status = falcon.HTTP_204
