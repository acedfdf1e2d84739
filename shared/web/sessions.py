"""Sign-in sessions: starting and ending them, the `ocd_session` cookie, and the users behind them.

A session's token is random and lives only in the browser (the cookie) or the caller's hands; the
`auth_sessions` row keeps its SHA-256, when it expires (30 days) and when it was revoked (sign-out).
`shared.web.auth.find_session` looks a live one up on every request.

Every session belongs to a `users` row. A GitHub sign-in has its GitHub account's row; a sign-in with
the dashboard token belongs to the one local user, `local` (provider `token`).
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import falcon

from shared.clock import iso_from_unix, now
from shared.store.models import AuthSession, User
from shared.web.auth import SESSION_COOKIE, digest
from shared.web.same_origin import served_over_https

SESSION_TTL_S = 30 * 24 * 3600
LOCAL_USER_ID = "local"
LOCAL_USER_LOGIN = "dashboard"


def start_session(user_id: str) -> str:
    """A new session for `user_id`, who is marked as just signed in; return its token (shown once).
    Must run inside a write transaction."""
    token = secrets.token_urlsafe(32)
    signed_in_at = now()
    AuthSession.create(id=uuid.uuid4().hex, user_id=user_id, token_hash=digest(token),
                       expires_at=signed_in_at + SESSION_TTL_S, created_at=signed_in_at)
    User.update(last_login=signed_in_at).where(User.id == user_id).execute()
    return token


def revoke_session(session: AuthSession) -> None:
    """End a session for good (sign-out): its token is refused from now on, in every process."""
    AuthSession.update(revoked_at=now()).where(
        (AuthSession.id == session.id) & AuthSession.revoked_at.is_null()).execute()


def ensure_local_user() -> str:
    """The local user that dashboard-token sign-ins belong to, created on first use; its id.
    Must run inside a write transaction."""
    User.insert(id=LOCAL_USER_ID, github_id=f"token:{LOCAL_USER_ID}", github_username=LOCAL_USER_LOGIN,
                provider="token", created_at=now()).on_conflict_ignore().execute()
    return LOCAL_USER_ID


def user_json(user: User | None) -> dict[str, Any]:
    """A user as `/api/auth/me` shows them. None stands for the local user before its first sign-in
    (someone using the dashboard token as a bearer token)."""
    if user is None:
        return {"id": LOCAL_USER_ID, "login": LOCAL_USER_LOGIN, "avatar_url": None, "last_login": None}
    return {"id": user.id, "login": user.github_username, "avatar_url": user.github_avatar_url,
            "last_login": iso_from_unix(user.last_login)}


def set_session_cookie(req: falcon.Request, resp: falcon.Response, token: str) -> None:
    # HttpOnly: page scripts never see it. SameSite=Lax: other sites' requests don't carry it, except
    # top-level navigations (GETs), which change nothing. Secure whenever the browser came over https.
    resp.set_cookie(SESSION_COOKIE, token, max_age=SESSION_TTL_S, path="/", secure=served_over_https(req),
                    http_only=True, same_site="Lax")


def clear_session_cookie(resp: falcon.Response) -> None:
    resp.unset_cookie(SESSION_COOKIE, path="/", same_site="Lax")


# Who acted, for the record, when the dashboard token itself (not a sign-in session) made the request.
TOKEN_ACTOR = "dashboard-token"


def actor(req: falcon.Request) -> str:
    """Who made this dashboard request, for the record (who answered a question): the signed-in
    user's login when it came with a session (Authentication put it in `req.context.session`), else
    "dashboard-token"."""
    session = getattr(req.context, "session", None)
    user = User.get_or_none(User.id == session.user_id) if session is not None else None
    return user.github_username if user is not None else TOKEN_ACTOR
