"""Is this delivery from Linear, and fresh? The HMAC of the exact bytes received, and the body's timestamp.

Linear signs the raw body with the webhook's signing secret (HMAC-SHA256, hex, in `Linear-Signature`)
and puts the send time in the body's `webhookTimestamp` (Unix milliseconds). The newer
`Linear-Timestamp` header is not covered by the signature, so only the body's timestamp is trusted.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from shared.web.errors import ApiError

# Linear's own SDK rejects deliveries more than a minute from the receiver's clock.
REPLAY_WINDOW_MS = 60_000


def linear_signature(secret: str, body: bytes) -> str:
    """The signature Linear sends for `body`: lowercase hex HMAC-SHA256 keyed with the signing secret."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_linear_signature(secret: str, body: bytes, presented: str | None) -> None:
    """401 unless `presented` is the signature of exactly these bytes (compared in constant time)."""
    if not presented:
        raise invalid_delivery("The Linear-Signature header is missing.")
    expected = linear_signature(secret, body).encode("ascii")
    # Encoded first: compare_digest refuses non-ASCII str, and a header can hold anything.
    if not hmac.compare_digest(expected, presented.strip().lower().encode("utf-8", "replace")):
        raise invalid_delivery("The Linear-Signature does not match the body.")


def check_webhook_timestamp(payload: Any, now_ms: int) -> None:
    """401 unless the signed body's `webhookTimestamp` is within a minute of now: a captured delivery
    replayed later is refused even though its signature is valid."""
    sent = payload.get("webhookTimestamp") if isinstance(payload, dict) else None
    if not isinstance(sent, int | float) or isinstance(sent, bool):
        raise invalid_delivery("The body has no webhookTimestamp (Unix milliseconds).")
    if abs(now_ms - sent) > REPLAY_WINDOW_MS:
        raise invalid_delivery("The webhookTimestamp is more than 60 s from now: a stale or replayed delivery.")


def invalid_delivery(message: str) -> ApiError:
    return ApiError(401, "invalid_webhook", message)
