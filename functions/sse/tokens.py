"""Short-lived stream tokens: what a client puts in `?token=` when it cannot send headers (EventSource).

Signed (itsdangerous), so the long-lived dashboard token never appears in a URL, a proxy log or the
browser history. A token names the credential that minted it (functions/sse/credentials.py) and is
good only while that credential is, and only until its own expiry, which it carries: a later change
of STREAM_TOKEN_TTL_S never lengthens a token already out.
"""

from __future__ import annotations

import time

from itsdangerous import BadData, URLSafeSerializer

from functions.sse.credentials import Credential
from shared.web.errors import ApiError

SALT = "opencode-dashboard.stream-token.v2"


def issue_stream_token(key: str, credential: Credential, ttl_s: int) -> tuple[str, float]:
    """A token for `credential`, and when it expires (Unix seconds)."""
    expires_at = time.time() + ttl_s
    claims = {"scope": "stream", "credential": credential.claim(), "expires_at": expires_at}
    return URLSafeSerializer(key, salt=SALT).dumps(claims), expires_at


def verify_stream_token(key: str, token: str) -> Credential:
    """The credential a genuine, unexpired token names; 401 for any other token."""
    try:
        claims = URLSafeSerializer(key, salt=SALT).loads(token)
    except BadData:  # a bad signature, or a well-signed payload that is not ours
        raise invalid_token() from None
    if not isinstance(claims, dict) or claims.get("scope") != "stream":
        raise invalid_token()
    credential, expires_at = Credential.from_claim(claims.get("credential")), claims.get("expires_at")
    if credential is None or not isinstance(expires_at, float | int):
        raise invalid_token()
    if time.time() >= expires_at:
        raise ApiError(401, "token_expired", "The stream token has expired; ask POST /api/stream/token "
                       "for a new one.")
    return credential


def invalid_token() -> ApiError:
    return ApiError(401, "unauthorized", "The stream token is not valid.")
