"""Short-lived stream tokens: what a browser puts in `?token=` because EventSource cannot send headers.

Signed (itsdangerous) and valid for minutes, so the long-lived dashboard token never appears in a URL,
a proxy log or the browser history.
"""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from shared.web.errors import ApiError

SALT = "opencode-dashboard.stream-token"


def issue_stream_token(key: str) -> str:
    return URLSafeTimedSerializer(key, salt=SALT).dumps({"scope": "stream"})


def verify_stream_token(key: str, token: str, max_age_s: int) -> None:
    """Raise 401 unless `token` was issued by us less than `max_age_s` seconds ago."""
    try:
        claims = URLSafeTimedSerializer(key, salt=SALT).loads(token, max_age=max_age_s)
    except SignatureExpired:
        raise ApiError(401, "token_expired", "The stream token has expired; ask POST /api/stream/token "
                       "for a new one.") from None
    except BadSignature:
        raise ApiError(401, "unauthorized", "The stream token is not valid.") from None
    if claims != {"scope": "stream"}:
        raise ApiError(401, "unauthorized", "The stream token is not valid.")
