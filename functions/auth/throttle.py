"""The limit on failed dashboard-token sign-ins per client, kept in the database.

gunicorn runs several worker processes, and a limit kept in one process's memory would give a guesser
N times the tries (the v2 dashboard's mistake). Each failure is a `sign_in_failures` row instead; every
process counts the same rows. A client is its network address: behind an SSH tunnel every browser is
127.0.0.1, so the limit then holds for all of them together — the safe way round.
"""

from __future__ import annotations

import peewee

from shared.clock import now
from shared.store.models import SignInFailure
from shared.web.errors import ApiError


class SignInThrottle:
    """At most `max_failures` failed sign-ins per client within `window_s`; then 429 until the oldest
    of them leaves the window. Every method must run inside the write transaction of the sign-in, so
    two processes cannot both let a client's last allowed try through."""

    def __init__(self, max_failures: int, window_s: int):
        self.max_failures = max_failures
        self.window_s = window_s

    def check(self, client: str) -> None:
        """Raise 429 (with Retry-After) when `client` has used up its failures."""
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

    def record_failure(self, client: str) -> None:
        failed_at = now()
        # Forget failures that no longer count for anyone, so the table stays as small as the window.
        SignInFailure.delete().where(SignInFailure.failed_at <= failed_at - self.window_s).execute()
        SignInFailure.create(client=client, failed_at=failed_at)

    def forgive(self, client: str) -> None:
        """A successful sign-in clears the client's record."""
        SignInFailure.delete().where(SignInFailure.client == client).execute()
