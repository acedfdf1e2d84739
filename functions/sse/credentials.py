"""Whose a stream is: the sign-in session, or the dashboard token, that opened it or minted its token.

A stream never outlives that credential. A stream token names it and dies with it; a reconnecting
stream is authenticated again; and the feed hub asks every half second whether the credentials behind
its open streams still hold, ending the streams of any that no longer do (sign-out, expiry, a rotated
dashboard token) — in every worker, since each runs its own hub.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

import falcon

from shared.config import Settings
from shared.web.auth import DASHBOARD, Authentication, live_session_ids, signing_key

SESSION = "session"
DASHBOARD_TOKEN = "dashboard"


@dataclass(frozen=True)
class Credential:
    kind: str  # SESSION or DASHBOARD_TOKEN
    # The session's id; for the dashboard token, a keyed fingerprint of its digest (a stream token's
    # claims are signed, not secret: they must reveal nothing that helps guess the token).
    ident: str

    def claim(self) -> str:
        return f"{self.kind}:{self.ident}"

    @classmethod
    def from_claim(cls, claim: object) -> Credential | None:
        kind, _, ident = claim.partition(":") if isinstance(claim, str) else ("", "", "")
        return cls(kind, ident) if kind in (SESSION, DASHBOARD_TOKEN) and ident else None


class StreamCredentials:
    def __init__(self, settings: Settings, authentication: Authentication):
        self.settings = settings
        self.authentication = authentication

    def of(self, req: falcon.Request) -> Credential:
        """The credential of a request the Authentication middleware (or `require`) let through."""
        session = req.context.session
        return Credential(SESSION, session.id) if session is not None else self.dashboard_token()

    def dashboard_token(self) -> Credential:
        fingerprint = hmac.new((signing_key(self.settings) or "").encode(),
                               self.authentication.expected_digest(DASHBOARD).encode(), hashlib.sha256)
        return Credential(DASHBOARD_TOKEN, fingerprint.hexdigest()[:32])

    def dead(self, credentials: Iterable[Credential]) -> set[Credential]:
        """The credentials among these that no longer hold: signed out, expired, deleted, rotated."""
        credentials = set(credentials)
        live_sessions = live_session_ids(c.ident for c in credentials if c.kind == SESSION)
        current_token = (self.dashboard_token() if any(c.kind == DASHBOARD_TOKEN for c in credentials)
                         else None)
        return {c for c in credentials
                if (c.ident not in live_sessions if c.kind == SESSION else c != current_token)}
