"""POST /api/linear/webhook: where Linear delivers its webhooks."""

from __future__ import annotations

import time
from collections.abc import Callable

import falcon

from functions.linear_webhook.deliveries import delivery_id, receive
from functions.linear_webhook.signature import check_webhook_timestamp, verify_linear_signature
from shared.config import Settings
from shared.web.auth import PUBLIC
from shared.web.errors import ApiError
from shared.web.json_body import parse_json, read_raw_body


class LinearWebhookResource:
    """Verify, record once, apply, and answer exactly 200 — Linear counts anything else as a failure."""

    # Linear cannot send the dashboard's token; the HMAC signature over the body authenticates it.
    auth = PUBLIC

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time):
        self.secret = settings.linear_webhook_secret
        self.team_ids = settings.linear_team_ids
        self.max_body_bytes = settings.max_body_bytes
        self.clock = clock

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        if not self.secret:
            raise ApiError(503, "linear_not_configured",
                           "Linear webhooks are off: set LINEAR_WEBHOOK_SECRET to the webhook's signing secret.")
        # The signature covers the exact bytes sent, so they are read (bounded) and checked before any
        # parsing. The content type is not checked: the signature already vouches for the body.
        body = read_raw_body(req, self.max_body_bytes)
        verify_linear_signature(self.secret, body, req.get_header("Linear-Signature"))
        payload = parse_json(body)
        check_webhook_timestamp(payload, int(self.clock() * 1000))
        outcome = receive(delivery_id(req.get_header("Linear-Delivery"), payload, body), payload, self.team_ids,
                          raw_body=body)
        resp.status = falcon.HTTP_200
        resp.media = outcome.to_json()
