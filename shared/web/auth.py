"""Who may call what: the agents' API key for ingest, a dashboard token or session for the rest.

Each resource says what it needs with a class attribute `auth`:
    AGENT  - `Authorization: Bearer <api key>` or `X-API-Key: <api key>` (the agents' credential)
    PUBLIC - nothing (only /api/health)
and anything else under /api takes `Authorization: Bearer <token>`, where the token is DASHBOARD_TOKEN,
the token `make run` generated, or a live sign-in session's token; or a browser's session cookie
(`ocd_session`), which for anything but GET/HEAD must come with a same-origin `Origin`/`Referer` (the
CSRF defence, shared.web.same_origin). The two kinds never stand in for each other. Credentials are
compared as SHA-256 digests in constant time; the database only ever holds digests.

A wrong bearer token or API key is a failed sign-in, on every route, counted per client with the
sign-in form's failures (shared.web.throttle): past the limit, every credential the client presents —
the right one too, so the answer tells a guesser nothing — is a 429 until its failures age out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

import falcon

from shared.clock import now
from shared.config import Settings
from shared.store.db import write_transaction
from shared.store.models import AuthSession, Setting
from shared.web.errors import ApiError
from shared.web.same_origin import require_same_origin
from shared.web.throttle import SignInThrottle

AGENT = "agent"
DASHBOARD = "dashboard"
PUBLIC = "public"

SESSION_COOKIE = "ocd_session"
SIGNING_KEY_SETTING = "signing_key"
# Methods a browser's cookie may use without proving it came from our own page: they change nothing.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Settings rows that hold the digests of generated credentials.
GENERATED_DIGEST_KEYS = {AGENT: "api_key_sha256", DASHBOARD: "dashboard_token_sha256"}


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Authentication:
    """Falcon middleware enforcing each resource's `auth` requirement (dashboard by default)."""

    def __init__(self, settings: Settings):
        self.configured = {
            AGENT: digest(settings.api_key) if settings.api_key else None,
            DASHBOARD: digest(settings.dashboard_token) if settings.dashboard_token else None,
        }
        self.throttle = SignInThrottle.from_settings(settings)

    def process_resource(self, req: falcon.Request, resp, resource, params) -> None:
        if req.method == "OPTIONS":
            return
        needed = getattr(resource, "auth", DASHBOARD)
        if needed != PUBLIC:
            self.require(req, needed)

    def require(self, req: falcon.Request, needed: str) -> None:
        """Raise 401 unless the request carries a valid credential of kind `needed` (403 for a cookie
        write from another site). Sets `req.context.auth`, and `req.context.session` (the sign-in
        session, or None for the dashboard token itself)."""
        token, from_cookie = presented_token(req, needed)
        if token is None:
            raise unauthorized(needed, "missing")
        if from_cookie:
            session = find_session(digest(token)) if needed == DASHBOARD else None
            if session is None:
                raise unauthorized(needed, "invalid")
            if req.method not in SAFE_METHODS:
                require_same_origin(req)
        else:
            session = self.bearer(req, needed, digest(token))
        req.context.auth = needed
        req.context.session = session

    def bearer(self, req: falcon.Request, needed: str, presented: str) -> AuthSession | None:
        """What a presented credential (bearer token, API key) stands for: a sign-in session, or None
        for the configured credential itself. A wrong one is a failed sign-in of the client: 401, or 429
        once it has failed too often — and then the right one is a 429 as well.

        A client with no recent failure is let through on one read. Otherwise the check takes the write
        transaction that failures are recorded in, so the answer to a right credential is decided in one
        order with every concurrent wrong one: a burst of guesses gets no more than the limit's worth."""
        client = req.remote_addr
        session = None
        if self.matches(needed, presented) or (needed == DASHBOARD and (session := find_session(presented))):
            if self.throttle.has_failures(client):
                with write_transaction():
                    self.throttle.check(client)
            return session
        with write_transaction():
            self.throttle.record_failure(client, self.throttle.check(client))
        raise unauthorized(needed, "invalid")  # raised after the commit: the failure must stay counted

    def matches(self, kind: str, presented: str) -> bool:
        """Whether `presented` is the digest of the configured (or generated) credential of `kind`."""
        return hmac.compare_digest(self.expected_digest(kind), presented)

    def expected_digest(self, kind: str) -> str:
        """The environment's credential wins; the generated one counts only when none is configured."""
        configured = self.configured[kind]
        if configured is not None:
            return configured
        stored = Setting.get_or_none(Setting.key == GENERATED_DIGEST_KEYS[kind])
        # An impossible digest when nothing is set up, so the comparison still runs in constant time.
        return stored.value if stored is not None and stored.value else "-" * 64


def find_session(token_digest: str) -> AuthSession | None:
    """The live sign-in session whose token has this digest: not expired, not revoked."""
    # Looked up by digest: the lookup reveals nothing about the token itself.
    return AuthSession.get_or_none((AuthSession.token_hash == token_digest) & (AuthSession.expires_at > now())
                                   & AuthSession.revoked_at.is_null())


def live_session_ids(ids: Iterable[str]) -> set[str]:
    """Which of these sessions are still live (neither expired, revoked nor deleted)."""
    wanted = list(ids)
    if not wanted:
        return set()
    query = AuthSession.select(AuthSession.id).where(
        AuthSession.id.in_(wanted) & (AuthSession.expires_at > now()) & AuthSession.revoked_at.is_null())
    return {session.id for session in query}


def presented_token(req: falcon.Request, kind: str) -> tuple[str | None, bool]:
    """The credential the request carries, and whether it came in the session cookie."""
    header = req.get_header("Authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip(), False
        return None, False
    if kind == AGENT:
        return req.get_header("X-API-Key") or None, False
    values = req.get_cookie_values(SESSION_COOKIE)
    return (values[0], True) if values else (None, False)


def unauthorized(kind: str, reason: str) -> ApiError:
    credential = "the agents' API key" if kind == AGENT else "a dashboard token or session"
    if reason != "missing":
        message = f"The credential is not {credential}, or it has expired or been revoked."
    elif kind == AGENT:
        message = f"This route needs {credential} as `Authorization: Bearer ...`"
    else:
        message = f"This route needs {credential}: `Authorization: Bearer ...`, or sign in (POST /api/auth/login)."
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def ensure_credentials(settings: Settings, *, rotate: frozenset[str] = frozenset()) -> dict[str, str]:
    """Generate the API key and the dashboard token when neither the environment nor the database has
    one (or when asked to rotate them). Only the digest is stored; the new secrets are returned so the
    caller can show them once. Must run inside a write transaction."""
    configured = {AGENT: settings.api_key, DASHBOARD: settings.dashboard_token}
    created: dict[str, str] = {}
    for kind, key in GENERATED_DIGEST_KEYS.items():
        if configured[kind] and kind not in rotate:
            continue
        if kind not in rotate and Setting.get_or_none(Setting.key == key) is not None:
            continue
        secret = secrets.token_urlsafe(32)
        Setting.put(key, digest(secret))
        created[kind] = secret
    return created


def signing_key(settings: Settings) -> str | None:
    """The key that signs short-lived tokens: DASHBOARD_SECRET_KEY, else the one `prepare` generated."""
    if settings.secret_key:
        return settings.secret_key
    stored = Setting.get_or_none(Setting.key == SIGNING_KEY_SETTING)
    return stored.value if stored is not None else None


def require_signing_key(settings: Settings) -> str:
    """The signing key, or 503 for a route that cannot work without one."""
    key = signing_key(settings)
    if key is None:
        raise ApiError(503, "not_configured", "No signing key yet: run `python -m deploy.prepare` "
                       "(make run does) or set DASHBOARD_SECRET_KEY.")
    return key


def ensure_signing_key(settings: Settings) -> None:
    """Generate and store a signing key when none is configured. Must run inside a write transaction."""
    if not settings.secret_key:
        Setting.insert(key=SIGNING_KEY_SETTING, value=secrets.token_urlsafe(32)).on_conflict_ignore().execute()
