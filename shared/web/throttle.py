"""The limit on failed sign-ins per client, kept in the database.

A failed sign-in is any wrong credential presented: a wrong dashboard token on the sign-in form, and a
wrong bearer token or agents' API key on any route (shared.web.auth) — each is a guess at a secret.
A session cookie that no longer works is not counted: a browser keeps sending the one it has after
sign-out, and guessing a session token (32 random bytes) is hopeless anyway.

gunicorn runs several worker processes, and a limit kept in one process's memory would give a guesser
N times the tries (the v2 dashboard's mistake). Each failure is a `sign_in_failures` row instead; every
process counts the same rows. A client is its network address (behind a proxy, as shared.web.proxies
settled it): behind an SSH tunnel every browser and agent is 127.0.0.1, so the limit then holds for
all of them together — the safe way round.
"""

from __future__ import annotations

import logging

import peewee

from shared.clock import now
from shared.config import Settings
from shared.store.db import execute
from shared.store.models import SignInFailure
from shared.web.errors import ApiError

log = logging.getLogger(__name__)


class SignInThrottle:
    """At most `max_failures` failed sign-ins per client within `window_s`; then 429 until the oldest
    of them leaves the window. `check`, `record_failure` and `forgive` must run inside the write
    transaction of the sign-in, so two processes cannot both let a client's last allowed try through."""

    def __init__(self, max_failures: int, window_s: int):
        self.max_failures = max_failures
        self.window_s = window_s

    @classmethod
    def from_settings(cls, settings: Settings) -> SignInThrottle:
        return cls(settings.auth_max_failures, settings.auth_failure_window_s)

    def has_failures(self, client: str) -> bool:
        """Whether `client` failed within the window at all: a read, outside any transaction, so that a
        client with a clean record pays no more than this for every request it makes."""
        # Fixed SQL, not the query builder: this runs on every authenticated request (ingest included),
        # and building the statement would cost ten times what running it does.
        return execute("SELECT 1 FROM sign_in_failures WHERE client = ? AND failed_at > ? LIMIT 1",
                       (client, now() - self.window_s)).fetchone() is not None

    def check(self, client: str) -> int:
        """Raise 429 (with Retry-After) when `client` has used up its failures; else how many it has."""
        since = now() - self.window_s
        count, oldest = (SignInFailure
                         .select(peewee.fn.COUNT(SignInFailure.id), peewee.fn.MIN(SignInFailure.failed_at))
                         .where((SignInFailure.client == client) & (SignInFailure.failed_at > since))
                         .scalar(as_tuple=True))
        if count >= self.max_failures:
            retry_after = max(1, oldest + self.window_s - now())
            raise ApiError(429, "too_many_attempts",
                           f"Too many failed sign-ins from {client}; try again in {retry_after} s.",
                           headers={"Retry-After": str(retry_after)})
        return count

    def record_failure(self, client: str, failures_before: int) -> None:
        """Count one more failure of `client`, which had `failures_before` (what `check` returned)."""
        failed_at = now()
        # Forget failures that no longer count for anyone, so the table stays as small as the window.
        SignInFailure.delete().where(SignInFailure.failed_at <= failed_at - self.window_s).execute()
        SignInFailure.create(client=client, failed_at=failed_at)
        if failures_before + 1 == self.max_failures:  # once per lock-out: for the operator (fail2ban, eyes)
            log.warning("failed sign-ins from %s reached the limit (%d in %d s): refused until they age out",
                        client, self.max_failures, self.window_s)

    def forgive(self, client: str) -> None:
        """A successful sign-in clears the client's record."""
        SignInFailure.delete().where(SignInFailure.client == client).execute()
