"""The `state` of an OAuth round trip (GitHub sign-in, Linear connect): signed, short-lived, and bound
to the browser that started it.

The state is an itsdangerous token signed with the installation's signing key, carrying a random
nonce; the same nonce goes into a short-lived HttpOnly cookie. The callback accepts the state only
when the signature is ours, it is younger than STATE_TTL_S and the browser's cookie holds its nonce:
so a callback link made in someone else's browser (login CSRF) is refused.
"""

from __future__ import annotations

import hmac
import secrets

import falcon
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from shared.config import Settings
from shared.web.auth import require_signing_key
from shared.web.errors import ApiError
from shared.web.same_origin import served_over_https

STATE_TTL_S = 600
COOKIE_PATH = "/api/auth"


def state_cookie(provider: str) -> str:
    return f"ocd_{provider}_state"


def _serializer(settings: Settings, provider: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(require_signing_key(settings), salt=f"opencode-dashboard.{provider}-state")


def begin(settings: Settings, provider: str, req: falcon.Request, resp: falcon.Response) -> str:
    """A new state for `provider`'s authorize URL; its nonce is set as this browser's cookie."""
    nonce = secrets.token_urlsafe(16)
    state = _serializer(settings, provider).dumps({"nonce": nonce})
    resp.set_cookie(state_cookie(provider), nonce, max_age=STATE_TTL_S, path=COOKIE_PATH,
                    secure=served_over_https(req), http_only=True, same_site="Lax")
    return state


def finish(settings: Settings, provider: str, req: falcon.Request, resp: falcon.Response) -> str:
    """The callback's authorization code; 400 unless the callback's `state` is one we issued to this
    browser, minutes ago, and it carries a code."""
    state = req.get_param("state")
    resp.unset_cookie(state_cookie(provider), path=COOKIE_PATH)
    restart = f"start again at /api/auth/{provider}/login"
    if not state:
        raise ApiError(400, "invalid_state", f"The callback carries no state; {restart}.", field="state")
    try:
        claims = _serializer(settings, provider).loads(state, max_age=STATE_TTL_S)
    except SignatureExpired:
        raise ApiError(400, "state_expired", f"The sign-in took longer than {STATE_TTL_S // 60} minutes; "
                       f"{restart}.", field="state") from None
    except BadSignature:
        raise ApiError(400, "invalid_state", f"The state was not issued by this dashboard; {restart}.",
                       field="state") from None
    cookies = req.get_cookie_values(state_cookie(provider))
    nonce = claims.get("nonce") if isinstance(claims, dict) else None
    if not cookies or not isinstance(nonce, str) or not hmac.compare_digest(cookies[0], nonce):
        raise ApiError(400, "invalid_state", "This sign-in was started in another browser (or cookies are off, "
                       "or DASHBOARD_PUBLIC_URL is not the address you opened the dashboard at); "
                       f"{restart}.", field="state")
    code = req.get_param("code")
    if not code:
        raise ApiError(400, "bad_request", f"The callback carries no code; {restart}.", field="code")
    return code
