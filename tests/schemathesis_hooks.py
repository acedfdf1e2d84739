"""schemathesis hooks for tests/test_openapi_conformance.py (named by tests/schemathesis.toml).

Linear signs each webhook delivery with an HMAC of its exact bytes, which no generator can guess. So
a generated delivery is sent as the bytes it serializes to, with a real `Linear-Signature` of them and
a fresh `webhookTimestamp`: the webhook is exercised past its 401. A request from which a check took
the signature header away is left without one.

`GET /api/agent/{id}/inbox?wait=N` long-polls up to N (≤ 30) seconds on an empty inbox; a valid wait is
cut to a fifth of a second so a run stays short (tests/test_questions.py times the real wait).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time

import schemathesis
from schemathesis.core import NotSet

WEBHOOK = "/api/linear/webhook"
INBOX = "/api/agent/{agent_id}/inbox"
SHORT_WAIT_S = 0.2


@schemathesis.hook
def before_call(context, case, kwargs) -> None:
    if case.operation.path == WEBHOOK:
        sign_webhook(case)
    elif case.operation.path == INBOX:
        shorten_wait(case)


def shorten_wait(case) -> None:
    wait = (case.query or {}).get("wait")
    if isinstance(wait, bool) or not isinstance(wait, int | float | str):
        return
    try:  # the coverage phase sends the query as text already
        seconds = float(wait)
    except ValueError:
        return
    if SHORT_WAIT_S < seconds <= 30:
        case.query["wait"] = SHORT_WAIT_S


def sign_webhook(case) -> None:
    if "Linear-Signature" not in (case.headers or {}):
        return
    body = case.body
    sent = body.get("webhookTimestamp") if isinstance(body, dict) else None
    if isinstance(sent, int | float) and not isinstance(sent, bool):  # a timestamp, but an old one
        body = {**body, "webhookTimestamp": int(time.time() * 1000)}
    if isinstance(body, NotSet):  # no body at all: the signature is of no bytes
        raw = b""
    else:
        raw = case.body = body if isinstance(body, bytes) else json.dumps(body).encode()
    secret = os.environ["OCD_TEST_LINEAR_WEBHOOK_SECRET"].encode()
    case.headers["Linear-Signature"] = hmac.new(secret, raw, hashlib.sha256).hexdigest()
