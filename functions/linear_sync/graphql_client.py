"""A small client for Linear's GraphQL API over `requests`: auth, timeouts, retries, rate limits, clear errors.

- Auth: a personal API key goes bare in `Authorization` (Linear's convention); an OAuth access token as
  `Bearer <token>`. A Linear connected over OAuth (shared.linear.oauth) wins over both environment
  credentials; its token is read (and refreshed when near expiry) before each request.
- Retries: 5xx answers and network errors are retried with exponential backoff.
- Rate limits: Linear reports them as HTTP 400 with `errors[].extensions.code == "RATELIMITED"` (its SDK
  reads `extensions.type == "ratelimited"`), or as HTTP 429 with `Retry-After`. The client waits until
  the reset the headers announce (capped), and also pauses before a request when the last answer said
  no requests remain, so it never hammers a limited API.
- Errors: any GraphQL `errors` become a `LinearError` carrying Linear's own message.

The sleeping function and the clock are injectable, so tests never sleep.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from shared.config import Settings
from shared.linear import oauth as linear_oauth

# Connect quickly or give up; Linear answers a 250-issue page in well under 30 s.
DEFAULT_TIMEOUT = (5.0, 30.0)
RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})


class LinearError(Exception):
    """Linear refused a request or could not be reached; the message is Linear's own where it gave one."""

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


class LinearRateLimited(LinearError):
    """Linear's rate limit holds for longer than this client is willing to wait."""


@dataclass(frozen=True)
class RateLimit:
    """What Linear's `X-RateLimit-*` headers said on the last answer (None where a header was absent)."""

    requests_limit: int | None = None
    requests_remaining: int | None = None
    requests_reset_at: float | None = None  # Unix seconds
    complexity_remaining: int | None = None
    complexity_reset_at: float | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimit:
        return cls(
            requests_limit=_int_header(headers, "X-RateLimit-Requests-Limit"),
            requests_remaining=_int_header(headers, "X-RateLimit-Requests-Remaining"),
            requests_reset_at=_epoch_header(headers, "X-RateLimit-Requests-Reset"),
            complexity_remaining=_int_header(headers, "X-RateLimit-Complexity-Remaining"),
            complexity_reset_at=_epoch_header(headers, "X-RateLimit-Complexity-Reset"),
        )

    def exhausted_until(self) -> float | None:
        """When the spent budget(s) refill; None while requests and complexity both remain."""
        resets = [reset for remaining, reset in ((self.requests_remaining, self.requests_reset_at),
                                                 (self.complexity_remaining, self.complexity_reset_at))
                  if remaining is not None and remaining <= 0 and reset is not None]
        return max(resets) if resets else None

    def reset_at(self) -> float | None:
        resets = [reset for reset in (self.requests_reset_at, self.complexity_reset_at) if reset is not None]
        return max(resets) if resets else None


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    try:
        return int(float(headers[name]))
    except (KeyError, TypeError, ValueError):
        return None


def _epoch_header(headers: Mapping[str, str], name: str) -> float | None:
    value = _int_header(headers, name)
    if value is None:
        return None
    # Linear documents its reset times in epoch milliseconds; accept seconds too rather than wait 1000x.
    return value / 1000 if value > 100_000_000_000 else float(value)


def authorization_header(settings: Settings) -> str:
    """A personal API key is sent bare (no `Bearer`), an OAuth token as a bearer token. The key wins."""
    if settings.linear_api_key:
        return settings.linear_api_key
    if settings.linear_oauth_token:
        return f"Bearer {settings.linear_oauth_token}"
    raise LinearError("Linear is not configured: set LINEAR_API_KEY or LINEAR_OAUTH_TOKEN.")


def current_authorization(settings: Settings) -> str:
    """The connected OAuth token (refreshed if due) as a bearer token, else the environment's credential."""
    try:
        token = linear_oauth.access_token(settings)
    except linear_oauth.LinearOAuthError as error:
        raise LinearError(error.message, code=error.code) from error
    return f"Bearer {token}" if token else authorization_header(settings)


class LinearClient:
    """Runs GraphQL documents against Linear and returns their `data`; counts the HTTP requests made."""

    def __init__(self, url: str, authorization: str | Callable[[], str], *, session: requests.Session | None = None,
                 timeout: tuple[float, float] = DEFAULT_TIMEOUT, max_attempts: int = 4, backoff_s: float = 1.0,
                 max_backoff_s: float = 30.0, max_rate_limit_wait_s: float = 300.0,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time):
        self.url = url
        self.authorization = authorization
        self.session = session or requests.Session()
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_rate_limit_wait_s = max_rate_limit_wait_s
        self.sleep = sleep
        self.clock = clock
        self.requests_made = 0
        self.rate_limit = RateLimit()

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> LinearClient:
        return cls(settings.linear_api_url, lambda: current_authorization(settings), **options)

    def execute(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The `data` of `query`; LinearError when Linear answers with errors or cannot be reached."""
        attempt = 0
        while True:
            attempt += 1
            self._wait_if_exhausted()
            try:
                response = self._post(query, variables)
            except requests.RequestException as error:
                if attempt >= self.max_attempts:
                    raise LinearError(f"Linear could not be reached: {error.__class__.__name__}") from error
                self.sleep(self._backoff(attempt))
                continue
            self.rate_limit = RateLimit.from_headers(response.headers)
            body = _json_or_none(response)
            errors = body.get("errors") if isinstance(body, dict) else None
            if _is_rate_limited(response, errors):
                if attempt >= self.max_attempts:
                    raise LinearRateLimited(_message(errors) or "Linear's rate limit was hit too often in a row.",
                                            code="RATELIMITED", status=response.status_code)
                self.sleep(self._rate_limit_wait(response, errors))
                continue
            if response.status_code in RETRYABLE_STATUSES or (response.status_code >= 500 and not errors):
                if attempt >= self.max_attempts:
                    raise LinearError(_message(errors) or f"Linear answered HTTP {response.status_code}.",
                                      status=response.status_code)
                self.sleep(self._backoff(attempt))
                continue
            return _data_or_raise(response, body, errors)

    def _post(self, query: str, variables: Mapping[str, Any] | None) -> requests.Response:
        authorization = self._authorization()
        self.requests_made += 1
        return self.session.post(
            self.url, json={"query": query, "variables": dict(variables or {})}, timeout=self.timeout,
            headers={"Authorization": authorization, "Content-Type": "application/json",
                     "User-Agent": "opencode-dashboard"},
        )

    def _authorization(self) -> str:
        return self.authorization() if callable(self.authorization) else self.authorization

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s)

    def _rate_limit_wait(self, response: requests.Response, errors: Any) -> float:
        """Until the announced reset (Retry-After, else the rate-limit headers), at least the backoff;
        LinearRateLimited when that is longer than the cap."""
        retry_after = _int_header(response.headers, "Retry-After")
        reset_at = self.rate_limit.reset_at()
        wait = float(retry_after) if retry_after is not None else (
            reset_at - self.clock() if reset_at is not None else self.backoff_s)
        wait = max(wait, self.backoff_s)
        if wait > self.max_rate_limit_wait_s:
            raise LinearRateLimited(
                f"{_message(errors) or 'Linear rate limit reached'}; it resets in {wait:.0f} s, "
                f"longer than the {self.max_rate_limit_wait_s:.0f} s this client waits.",
                code="RATELIMITED", status=response.status_code)
        return wait

    def _wait_if_exhausted(self) -> None:
        # Linear said nothing is left in this window: wait for the reset instead of spending a request
        # on a certain RATELIMITED answer.
        reset_at = self.rate_limit.exhausted_until()
        if reset_at is None:
            return
        wait = reset_at - self.clock()
        if wait > self.max_rate_limit_wait_s:
            raise LinearRateLimited(f"Linear's rate limit is spent until it resets in {wait:.0f} s.",
                                    code="RATELIMITED")
        if wait > 0:
            self.sleep(wait)
        self.rate_limit = RateLimit()


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except (ValueError, json.JSONDecodeError):
        return None


def _codes(errors: Any) -> set[str]:
    codes = set()
    for error in errors if isinstance(errors, list) else []:
        extensions = error.get("extensions") if isinstance(error, dict) else None
        if isinstance(extensions, dict):
            codes.update(str(extensions[key]).upper() for key in ("code", "type") if extensions.get(key))
    return codes


def _first_code(errors: Any) -> str | None:
    """The first error's `extensions.code` (Linear's documented field), else its SDK's `type`."""
    for error in errors if isinstance(errors, list) else []:
        extensions = error.get("extensions") if isinstance(error, dict) else None
        if isinstance(extensions, dict):
            for key in ("code", "type"):
                if isinstance(extensions.get(key), str):
                    return extensions[key]
    return None


def _is_rate_limited(response: requests.Response, errors: Any) -> bool:
    return response.status_code == 429 or "RATELIMITED" in _codes(errors)


def _message(errors: Any) -> str | None:
    """Linear's words for the first error: its user-presentable message where it has one."""
    for error in errors if isinstance(errors, list) else []:
        if not isinstance(error, dict):
            continue
        extensions = error.get("extensions") if isinstance(error.get("extensions"), dict) else {}
        for candidate in (extensions.get("userPresentableMessage"), error.get("message")):
            if isinstance(candidate, str) and candidate:
                return candidate
    return None


def _data_or_raise(response: requests.Response, body: Any, errors: Any) -> dict[str, Any]:
    if errors:
        raise LinearError(_message(errors) or "Linear answered with an error it did not describe.",
                          code=_first_code(errors), status=response.status_code)
    data = body.get("data") if isinstance(body, dict) else None
    if response.status_code != 200 or not isinstance(data, dict):
        raise LinearError(f"Linear answered HTTP {response.status_code} without data.", status=response.status_code)
    return data
