"""Requests that hold a thread for long — a live stream, a long poll — share one budget per process.

A gunicorn worker has `threads` threads. A stream holds one for as long as its browser tab is open, a
long poll (the agents' inbox) for up to 30 s; left alone, 150 open tabs took every thread and
`/api/health` timed out. So at most `settings.long_request_slots` such requests run at once in a worker
(the other `api_threads` threads are always left for ordinary calls), and one more is refused at once:
503 with Retry-After, in the project's JSON error shape. The page and the opencode hook both wait as
long as Retry-After says before they try again. docs/capacity.md has the figures.
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

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


def too_busy() -> ApiError:
    return ApiError(503, "too_busy", "This server is serving as many live streams and long polls as it can; "
                    f"try again in {RETRY_AFTER_S} s.", headers={"Retry-After": str(RETRY_AFTER_S)})


_budgets: dict[int, LongRequestBudget] = {}
_budgets_lock = threading.Lock()


def long_request_budget() -> LongRequestBudget:
    """This process's budget (one per pid: every forked gunicorn worker has its own threads)."""
    with _budgets_lock:
        return _budgets.setdefault(os.getpid(), LongRequestBudget())
