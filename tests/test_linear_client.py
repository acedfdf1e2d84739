"""The GraphQL client: Linear's auth header, retries, rate limits and errors, with `responses` as Linear."""

from __future__ import annotations

import json

import pytest
import requests
import responses

from functions.linear_sync.graphql_client import (
    LinearClient,
    LinearError,
    LinearRateLimited,
    authorization_header,
)
from shared.config import Settings
from tests.linear_support import LINEAR_API_KEY, LINEAR_URL

QUERY = "query { viewer { id name } }"
VIEWER = {"data": {"viewer": {"id": "user-ada", "name": "Ada Lovelace"}}}
RATELIMITED = {"errors": [{"message": "Rate limit exceeded", "extensions": {
    "code": "RATELIMITED", "type": "ratelimited", "userError": True,
    "userPresentableMessage": "You have exceeded the rate limit. Please try again later."}}]}


class Clock:
    """A clock that only moves when the client sleeps: waits are recorded, never slept."""

    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(clock) -> LinearClient:
    return LinearClient(LINEAR_URL, LINEAR_API_KEY, sleep=clock.sleep, clock=clock)


@responses.activate
def test_a_personal_api_key_is_sent_bare_and_data_is_returned(client):
    responses.post(LINEAR_URL, json=VIEWER)
    assert client.execute(QUERY, {"x": 1}) == VIEWER["data"]
    sent = responses.calls[0].request
    assert sent.headers["Authorization"] == LINEAR_API_KEY
    assert json.loads(sent.body) == {"query": QUERY, "variables": {"x": 1}}
    assert client.requests_made == 1


def test_an_oauth_token_is_sent_as_a_bearer_token_and_the_api_key_wins():
    oauth = Settings(linear_oauth_token="lin_oauth_0123456789abcdef")
    assert authorization_header(oauth) == "Bearer lin_oauth_0123456789abcdef"
    both = oauth.with_overrides(linear_api_key=LINEAR_API_KEY)
    assert authorization_header(both) == LINEAR_API_KEY


@responses.activate
def test_a_graphql_error_becomes_a_linear_error_with_linears_message(client, clock):
    responses.post(LINEAR_URL, status=400, json={"errors": [{
        "message": "Argument Validation Error", "path": ["issueUpdate"],
        "extensions": {"code": "INVALID_INPUT", "type": "invalid input", "userError": True,
                       "userPresentableMessage": "stateId must be a UUID."}}]})
    with pytest.raises(LinearError) as raised:
        client.execute(QUERY)
    assert raised.value.message == "stateId must be a UUID."
    assert (raised.value.status, raised.value.code) == (400, "INVALID_INPUT")
    assert len(responses.calls) == 1 and clock.slept == []


@responses.activate
def test_errors_beside_partial_data_still_raise(client):
    responses.post(LINEAR_URL, json={"data": {"viewer": None},
                                     "errors": [{"message": "Entity not found: Issue", "extensions": {}}]})
    with pytest.raises(LinearError, match="Entity not found"):
        client.execute(QUERY)


@responses.activate
def test_ratelimited_waits_until_the_announced_reset_then_succeeds(client, clock):
    reset_ms = int((clock.now + 42) * 1000)
    responses.post(LINEAR_URL, status=400, json=RATELIMITED, headers={
        "X-RateLimit-Requests-Limit": "5000", "X-RateLimit-Requests-Remaining": "0",
        "X-RateLimit-Requests-Reset": str(reset_ms)})
    responses.post(LINEAR_URL, json=VIEWER)

    assert client.execute(QUERY) == VIEWER["data"]
    assert clock.slept == [42.0]
    assert client.requests_made == 2


@responses.activate
def test_http_429_with_retry_after_is_waited_out(client, clock):
    responses.post(LINEAR_URL, status=429, body="Too Many Requests", headers={"Retry-After": "7"})
    responses.post(LINEAR_URL, json=VIEWER)
    assert client.execute(QUERY) == VIEWER["data"]
    assert clock.slept == [7.0]


@responses.activate
def test_a_rate_limit_longer_than_the_cap_fails_at_once_without_waiting(clock):
    client = LinearClient(LINEAR_URL, LINEAR_API_KEY, sleep=clock.sleep, clock=clock, max_rate_limit_wait_s=60)
    responses.post(LINEAR_URL, status=400, json=RATELIMITED, headers={
        "X-RateLimit-Requests-Remaining": "0", "X-RateLimit-Requests-Reset": str(int((clock.now + 3600) * 1000))})
    with pytest.raises(LinearRateLimited, match="exceeded the rate limit") as raised:
        client.execute(QUERY)
    assert raised.value.code == "RATELIMITED"
    assert clock.slept == [] and len(responses.calls) == 1


@responses.activate
def test_no_requests_left_means_the_next_request_waits_for_the_reset(client, clock):
    reset_ms = int((clock.now + 30) * 1000)
    responses.post(LINEAR_URL, json=VIEWER, headers={"X-RateLimit-Requests-Remaining": "0",
                                                      "X-RateLimit-Requests-Reset": str(reset_ms)})
    responses.post(LINEAR_URL, json=VIEWER)
    client.execute(QUERY)
    assert clock.slept == []
    client.execute(QUERY)
    assert clock.slept == [30.0]
    assert client.rate_limit.requests_remaining is None  # the second answer carried no rate-limit headers


@responses.activate
def test_a_500_is_retried_with_backoff_then_succeeds(client, clock):
    responses.post(LINEAR_URL, status=500, body="<html>Internal Server Error</html>")
    responses.post(LINEAR_URL, status=502, body="Bad Gateway")
    responses.post(LINEAR_URL, json=VIEWER)
    assert client.execute(QUERY) == VIEWER["data"]
    assert clock.slept == [1.0, 2.0]


@responses.activate
def test_a_network_error_is_retried(client, clock):
    responses.post(LINEAR_URL, body=requests.ConnectionError("connection refused"))
    responses.post(LINEAR_URL, json=VIEWER)
    assert client.execute(QUERY) == VIEWER["data"]
    assert clock.slept == [1.0]


@responses.activate
def test_persistent_5xx_gives_up_after_the_last_attempt(client, clock):
    responses.post(LINEAR_URL, status=503, body="Service Unavailable")
    with pytest.raises(LinearError, match="HTTP 503") as raised:
        client.execute(QUERY)
    assert raised.value.status == 503
    assert len(responses.calls) == 4 and clock.slept == [1.0, 2.0, 4.0]


@responses.activate
def test_an_unreachable_linear_is_a_clear_error(client):
    responses.post(LINEAR_URL, body=requests.ConnectTimeout("timed out"))
    with pytest.raises(LinearError, match="could not be reached: ConnectTimeout"):
        client.execute(QUERY)


@responses.activate
def test_a_bad_api_key_is_reported_in_linears_words(client):
    responses.post(LINEAR_URL, status=400, json={"errors": [{
        "message": "Authentication required, not authenticated",
        "extensions": {"code": "AUTHENTICATION_ERROR", "type": "authentication error", "userError": True}}]})
    with pytest.raises(LinearError, match="Authentication required"):
        client.execute(QUERY)


@responses.activate
def test_only_a_spent_budget_is_waited_for(client, clock):
    headers = {"X-RateLimit-Requests-Remaining": "0", "X-RateLimit-Requests-Reset": str(int((clock.now + 5) * 1000)),
               "X-RateLimit-Complexity-Remaining": "90000",
               "X-RateLimit-Complexity-Reset": str(int((clock.now + 600) * 1000))}
    responses.post(LINEAR_URL, json=VIEWER, headers=headers)
    responses.post(LINEAR_URL, json=VIEWER)
    client.execute(QUERY)
    client.execute(QUERY)
    assert clock.slept == [5.0]
