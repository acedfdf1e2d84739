"""Requests that hold a thread for long share one budget per process; live streams have one of their own.

A gunicorn worker has `threads` threads. A long poll (the agents' inbox) holds one for up to 30 s, and a
stream holds one while it authenticates and replays what its client missed (then its connection is
handed to the process's stream writer, functions/sse/socket_stream.py; under a server that cannot hand
it over, for as long as it is open). Left alone, 150 open tabs took every thread and `/api/health`
timed out. So at most `settings.long_request_slots` such requests run at once in a worker (the other
`api_threads` threads are always left for ordinary calls). A stream that no longer holds a thread
still holds a connection, a file descriptor: at most `settings.streams` are open at once in a worker.
One more of either is refused at once: 503 with Retry-After, in the project's JSON error shape. The
page and the opencode hook both wait as long as Retry-After says before they try again.
docs/capacity.md has the figures.
"""

from __future__ import annotations

import os
import threading

from shared.web.errors import ApiError

RETRY_AFTER_S = 5


class LongRequestBudget:
    def __init__(self) -> None:
        self._held = 0
        self._lock = threading.Lock()

    def hold(self, limit: int) -> Slot:
        """A slot for one long request, or 503 when `limit` are already held."""
        with self._lock:
            if self._held >= limit:
                raise too_busy()
            self._held += 1
        return Slot(self)

    @property
    def held(self) -> int:
        with self._lock:
            return self._held

    def _release(self) -> None:
        with self._lock:
            self._held -= 1


class Slot:
    """One held place in the budget; `release()` gives it back (once, however often it is called)."""

    def __init__(self, budget: LongRequestBudget):
        self._budget: LongRequestBudget | None = budget

    def release(self) -> None:
        budget, self._budget = self._budget, None
        if budget is not None:
            budget._release()

    def transfer(self) -> Slot:
        """The same place, for a new owner to release: this one no longer releases anything."""
        budget, self._budget = self._budget, None
        return Slot(budget)

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


def too_busy() -> ApiError:
    return ApiError(503, "too_busy", "This server is serving as many live streams and long polls as it can; "
                    f"try again in {RETRY_AFTER_S} s.", headers={"Retry-After": str(RETRY_AFTER_S)})


_budgets: dict[tuple[int, str], LongRequestBudget] = {}
_budgets_lock = threading.Lock()


def long_request_budget() -> LongRequestBudget:
    """This process's budget of threads for long requests (one per pid: every forked gunicorn worker has
    its own threads)."""
    return _budget("threads")


def stream_budget() -> LongRequestBudget:
    """This process's budget of open live streams (one per pid: every gunicorn worker has its own)."""
    return _budget("streams")


def _budget(name: str) -> LongRequestBudget:
    with _budgets_lock:
        return _budgets.setdefault((os.getpid(), name), LongRequestBudget())
