"""Connecting Linear over OAuth2: the redirect, the code exchange, tokens encrypted at rest, refresh
before expiry, and the sync and the card move using the connection in place of the API key.

`responses` stands in for linear.app and api.linear.app: the token endpoint takes a form body and
answers as Linear does (`scope` as a list, a 24-hour `expires_in` and a refresh token); the GraphQL
API is tests/fake_linear.py, which refuses any other Authorization than the one it is given."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import itsdangerous
import pytest
import requests
import responses
from falcon import testing
from responses import matchers

import functions.auth
import functions.linear_sync
from functions.linear_sync.graphql_client import LinearClient, LinearError
from functions.linear_sync.sync import run_sync
from shared.config import Settings
from shared.encryption import decrypt, fernet_key
from shared.linear import oauth as linear_oauth
from shared.logs import configured_secrets
from shared.store.models import Change, LinearIssue, LinearOAuthToken
from shared.web.auth import SESSION_COOKIE
from tests.database_rows import stored_bytes
from tests.fake_linear import FakeLinear
from tests.linear_support import LINEAR_API_KEY, LINEAR_URL, STATES, issue_node, project_node, state_node
from tests.support import DASHBOARD_TOKEN, assert_canonical_error

CLIENT_ID = "5c1f0b6a8e2d4c7b9a3f1e0d2c4b6a8e"
CLIENT_SECRET = "b7e2c9d1a4f6083e5b2d7c1a9f4e6b3d"
SECRET_KEY = "dashboard-secret-key-for-tests-0123456789"
TOKEN_URL = "https://api.linear.app/oauth/token"
REVOKE_URL = "https://api.linear.app/oauth/revoke"
PUBLIC_URL = "http://127.0.0.1:3000"
ACCESS_TOKEN = "lin_oauth_7d0c4e2375114e49c067dfb81eb0d2076f48354714cd5df984d87b67cc00a21d8b"
REFRESH_TOKEN = "lin_refresh_3a9c1e5b7d2f4a6c8e0b1d3f5a7c9e2b4d6f8a0c1e3b5d7f9a2c4e6b8d0f1a3c"
NEW_ACCESS_TOKEN = "lin_oauth_new_1f2e3d4c5b6a79880716253443526170819a0b1c2d3e4f5a6b7c8d9e0f1a2b3c"
NEW_REFRESH_TOKEN = "lin_refresh_new_9e8d7c6b5a49382716051f2e3d4c5b6a798a7b6c5d4e3f2a1b0c9d8e7f6a5b4c"
CODE = "a7f3c81e0b2d4f6a8c0e2b4d6f8a0c2e"
# falcon.testing's host (falconframework.org) is a name another site could have pointed at us, so the
# dashboard takes itself to be at DASHBOARD_PUBLIC_URL (shared.web.proxies).
SAME_ORIGIN = {"Origin": PUBLIC_URL}


def token_answer(access=ACCESS_TOKEN, refresh=REFRESH_TOKEN, expires_in=86399):
    return {"access_token": access, "token_type": "Bearer", "expires_in": expires_in, "scope": ["read", "write"],
            "refresh_token": refresh}


@pytest.fixture
def oauth_settings(settings) -> Settings:
    return settings.with_overrides(linear_client_id=CLIENT_ID, linear_client_secret=CLIENT_SECRET,
                                   secret_key=SECRET_KEY, dashboard_public_url=PUBLIC_URL)


@pytest.fixture
def client(oauth_settings, db) -> testing.TestClient:
    return testing.TestClient(functions.auth.create_app(oauth_settings))


@pytest.fixture
def browser(client) -> dict[str, str]:
    """A signed-in browser's cookies."""
    signed_in = client.simulate_post("/api/auth/login", json={"token": DASHBOARD_TOKEN})
    return {SESSION_COOKIE: signed_in.cookies[SESSION_COOKIE].value}


def begin(client, browser) -> tuple[str, dict[str, str]]:
    response = client.simulate_get("/api/auth/linear/login", cookies=browser)
    assert response.status_code == 302, response.text
    state = parse_qs(urlsplit(response.headers["location"]).query)["state"][0]
    return state, browser | {"ocd_linear_state": response.cookies["ocd_linear_state"].value}


def linear_issues_tokens(answer=None, **form):
    expected = {"grant_type": "authorization_code", "code": CODE, "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET, "redirect_uri": f"{PUBLIC_URL}/api/auth/linear/callback"} | form
    responses.post(TOKEN_URL, json=answer or token_answer(), match=[matchers.urlencoded_params_matcher(expected)])


def connect(client, browser):
    linear_issues_tokens()
    state, cookies = begin(client, browser)
    response = client.simulate_get("/api/auth/linear/callback", params={"code": CODE, "state": state},
                                   cookies=cookies)
    assert response.status_code == 302, response.text
    return response


def database_bytes(settings) -> bytes:
    """Everything the database keeps (tests/database_rows.py)."""
    return stored_bytes(settings.database_url)


def linear_world(authorization: str) -> FakeLinear:
    return FakeLinear(states=[state_node(s) for s in STATES], projects=[project_node()],
                      issues=[issue_node(f"issue-{n}", number=n) for n in range(1, 4)], api_key=authorization)


# Connecting -------------------------------------------------------------------------------------------------

def test_connecting_redirects_to_linear_with_a_signed_state(client, browser):
    response = client.simulate_get("/api/auth/linear/login", cookies=browser)
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == "https://linear.app/oauth/authorize"
    query = {name: values[0] for name, values in parse_qs(location.query).items()}
    assert query["client_id"] == CLIENT_ID and query["response_type"] == "code" and query["scope"] == "read,write"
    assert query["redirect_uri"] == f"{PUBLIC_URL}/api/auth/linear/callback"
    nonce = itsdangerous.URLSafeTimedSerializer(SECRET_KEY, salt="opencode-dashboard.linear-state").loads(
        query["state"])["nonce"]
    assert response.cookies["ocd_linear_state"].value == nonce and response.cookies["ocd_linear_state"].http_only


def test_only_a_signed_in_person_can_connect_linear(client):
    assert_canonical_error(client.simulate_get("/api/auth/linear/login"), 401)
    assert_canonical_error(client.simulate_get("/api/auth/linear/callback", params={"code": CODE}), 401)


@responses.activate
def test_the_callback_stores_the_connection_and_goes_home(client, browser):
    response = connect(client, browser)
    assert response.headers["location"] == "/"
    status = client.simulate_get("/api/auth/linear", cookies=browser).json["linear"]
    assert status["connected"] and status["credential"] == "oauth" and status["scope"] == "read,write"
    assert status["connected_by"] == "local" and status["last_error"] is None
    assert ACCESS_TOKEN not in str(status) and REFRESH_TOKEN not in str(status)
    row = LinearOAuthToken.get()
    assert abs(row.expires_at - (time.time() + 86399)) < 5
    change = Change.select().where(Change.topic == "linear.connection").get()
    assert change.action == "connected" and ACCESS_TOKEN not in str(change.payload)


@responses.activate
def test_the_tokens_are_encrypted_at_rest(client, browser, oauth_settings):
    connect(client, browser)
    stored = database_bytes(oauth_settings)
    assert ACCESS_TOKEN.encode() not in stored and REFRESH_TOKEN.encode() not in stored
    # They are there, as Fernet ciphertexts under the key derived from DASHBOARD_SECRET_KEY.
    from cryptography.fernet import Fernet

    row = LinearOAuthToken.get()
    assert row.access_token.encode() in stored
    assert Fernet(fernet_key(SECRET_KEY)).decrypt(row.access_token.encode()).decode() == ACCESS_TOKEN
    assert Fernet(fernet_key(SECRET_KEY)).decrypt(row.refresh_token.encode()).decode() == REFRESH_TOKEN


@responses.activate
def test_connecting_again_replaces_the_connection(client, browser, oauth_settings):
    connect(client, browser)
    LinearOAuthToken.update(last_error="refresh failed: revoked").execute()
    responses.reset()
    linear_issues_tokens(token_answer(NEW_ACCESS_TOKEN, NEW_REFRESH_TOKEN))
    state, cookies = begin(client, browser)
    client.simulate_get("/api/auth/linear/callback", params={"code": CODE, "state": state}, cookies=cookies)
    row = LinearOAuthToken.get()
    assert LinearOAuthToken.select().count() == 1 and row.generation == 2 and row.last_error is None
    assert linear_oauth.access_token(oauth_settings) == NEW_ACCESS_TOKEN


def test_declining_on_linear_is_a_clear_403(client, browser):
    state, cookies = begin(client, browser)
    response = client.simulate_get("/api/auth/linear/callback", cookies=cookies,
                                   params={"error": "access_denied", "state": state})
    assert_canonical_error(response, 403, "linear_denied")
    assert LinearOAuthToken.select().count() == 0


@responses.activate
def test_a_bad_state_is_refused_before_linear_is_asked(client, browser):
    _, cookies = begin(client, browser)
    forged = itsdangerous.URLSafeTimedSerializer("someone-elses-key-0123456789",
                                                 salt="opencode-dashboard.linear-state").dumps({"nonce": "x"})
    response = client.simulate_get("/api/auth/linear/callback", params={"code": CODE, "state": forged},
                                   cookies=cookies)
    assert_canonical_error(response, 400, "invalid_state", field="state")
    assert len(responses.calls) == 0 and LinearOAuthToken.select().count() == 0


@responses.activate
@pytest.mark.parametrize(("answer", "status", "code"), [
    ({"status": 400, "json": {"error": "invalid_grant", "error_description": "Authorization code is invalid"}},
     400, "linear_refused"),
    ({"body": requests.ConnectionError("connection refused")}, 503, "linear_unavailable"),
    ({"status": 503, "body": "upstream connect error"}, 503, "linear_unavailable"),
    ({"status": 200, "json": {"token_type": "Bearer"}}, 502, "linear_error"),
])
def test_a_failed_code_exchange_is_a_clear_error_and_stores_nothing(client, browser, answer, status, code):
    responses.post(TOKEN_URL, **answer)
    state, cookies = begin(client, browser)
    response = client.simulate_get("/api/auth/linear/callback", params={"code": CODE, "state": state},
                                   cookies=cookies)
    assert_canonical_error(response, status, code)
    assert LinearOAuthToken.select().count() == 0


def test_without_dashboard_secret_key_linear_cannot_be_connected(oauth_settings, db):
    client = testing.TestClient(functions.auth.create_app(oauth_settings.with_overrides(secret_key=None)))
    signed_in = client.simulate_post("/api/auth/login", json={"token": DASHBOARD_TOKEN})
    response = client.simulate_get("/api/auth/linear/login", cookies={SESSION_COOKIE: signed_in.cookies[
        SESSION_COOKIE].value})
    assert "DASHBOARD_SECRET_KEY" in assert_canonical_error(response, 503, "secret_key_required")["message"]


def test_without_an_oauth_application_the_routes_say_what_to_set(settings, db):
    client = testing.TestClient(functions.auth.create_app(settings))
    response = client.simulate_get("/api/auth/linear/login", headers={"Authorization": f"Bearer {DASHBOARD_TOKEN}"})
    assert "LINEAR_CLIENT_ID" in assert_canonical_error(response, 503, "linear_oauth_not_configured")["message"]
    status = client.simulate_get("/api/auth/linear", headers={"Authorization": f"Bearer {DASHBOARD_TOKEN}"}).json
    assert status == {"linear": {"oauth_configured": False, "connected": False, "credential": None}}


# Using the connection -------------------------------------------------------------------------------------------

@responses.activate
def test_the_sync_uses_the_oauth_token_in_place_of_the_api_key(client, browser, oauth_settings):
    connect(client, browser)
    fake = linear_world(authorization=f"Bearer {ACCESS_TOKEN}")  # refuses the API key
    responses.add_callback(responses.POST, LINEAR_URL, callback=fake.responses_callback)
    with_key = oauth_settings.with_overrides(linear_api_key=LINEAR_API_KEY)
    report = run_sync(LinearClient.from_settings(with_key), full=True)
    assert report.requests >= 1 and LinearIssue.select().count() == 3
    graphql_calls = [call for call in responses.calls if call.request.url == LINEAR_URL]
    assert {call.request.headers["Authorization"] for call in graphql_calls} == {f"Bearer {ACCESS_TOKEN}"}


@responses.activate
def test_the_card_move_uses_the_oauth_token_and_linear_routes_open_once_connected(client, browser, oauth_settings):
    linear_app = testing.TestClient(functions.linear_sync.create_app(oauth_settings))  # no API key at all
    auth = {"Authorization": f"Bearer {DASHBOARD_TOKEN}"}
    assert_canonical_error(linear_app.simulate_get("/api/projects", headers=auth), 503, "linear_not_configured")
    connect(client, browser)
    fake = linear_world(authorization=f"Bearer {ACCESS_TOKEN}")
    responses.add_callback(responses.POST, LINEAR_URL, callback=fake.responses_callback)
    run_sync(LinearClient.from_settings(oauth_settings), full=True)
    assert linear_app.simulate_get("/api/projects", headers=auth).status_code == 200
    moved = linear_app.simulate_post("/api/linear/sync", headers=auth,
                                     json={"issue_id": "issue-1", "state_id": STATES[2]["id"]})
    assert moved.status_code == 200, moved.text
    assert moved.json["issue"]["state_id"] == STATES[2]["id"]


@responses.activate
def test_the_token_is_refreshed_before_it_expires(client, browser, oauth_settings, db):
    connect(client, browser)
    generation = LinearOAuthToken.get().generation
    LinearOAuthToken.update(expires_at=int(time.time()) + 300).execute()  # five minutes left
    responses.post(TOKEN_URL, json=token_answer(NEW_ACCESS_TOKEN, NEW_REFRESH_TOKEN), match=[
        matchers.urlencoded_params_matcher({"grant_type": "refresh_token", "refresh_token": REFRESH_TOKEN,
                                            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})])
    fake = linear_world(authorization=f"Bearer {NEW_ACCESS_TOKEN}")  # only the new token works
    responses.add_callback(responses.POST, LINEAR_URL, callback=fake.responses_callback)
    run_sync(LinearClient.from_settings(oauth_settings), full=True)
    assert LinearIssue.select().count() == 3
    row = LinearOAuthToken.get()
    assert row.generation == generation + 1 and abs(row.expires_at - (time.time() + 86399)) < 5
    assert decrypt(oauth_settings, row.access_token) == NEW_ACCESS_TOKEN
    assert decrypt(oauth_settings, row.refresh_token) == NEW_REFRESH_TOKEN  # Linear rotates it each time
    stored = database_bytes(oauth_settings)
    assert NEW_ACCESS_TOKEN.encode() not in stored and NEW_REFRESH_TOKEN.encode() not in stored
    # Not again while the new token is far from expiry.
    token_calls = len([call for call in responses.calls if call.request.url == TOKEN_URL])
    assert linear_oauth.access_token(oauth_settings) == NEW_ACCESS_TOKEN
    assert len([call for call in responses.calls if call.request.url == TOKEN_URL]) == token_calls


@responses.activate
def test_a_token_far_from_expiry_is_not_refreshed(client, browser, oauth_settings):
    connect(client, browser)
    assert linear_oauth.access_token(oauth_settings) == ACCESS_TOKEN
    assert [call.request.url for call in responses.calls] == [TOKEN_URL]  # the code exchange only


@responses.activate
def test_a_refresh_another_process_has_begun_is_not_repeated(client, browser, oauth_settings):
    connect(client, browser)
    LinearOAuthToken.update(expires_at=int(time.time()) + 300, refreshed_at=int(time.time())).execute()
    assert linear_oauth.access_token(oauth_settings) == ACCESS_TOKEN  # still valid: used meanwhile
    assert len(responses.calls) == 1


@responses.activate
def test_a_failed_refresh_keeps_the_valid_token_and_says_why(client, browser, oauth_settings):
    connect(client, browser)
    LinearOAuthToken.update(expires_at=int(time.time()) + 300).execute()
    responses.post(TOKEN_URL, status=400, json={"error": "invalid_grant",
                                                "error_description": "Refresh token has been revoked"})
    assert linear_oauth.access_token(oauth_settings) == ACCESS_TOKEN
    status = client.simulate_get("/api/auth/linear", cookies=browser).json["linear"]
    assert "Refresh token has been revoked" in status["last_error"]


@responses.activate
def test_an_expired_token_that_cannot_be_refreshed_fails_the_sync_with_the_reason(client, browser, oauth_settings):
    connect(client, browser)
    LinearOAuthToken.update(expires_at=int(time.time()) - 10).execute()
    responses.post(TOKEN_URL, status=400, json={"error": "invalid_grant",
                                                "error_description": "Refresh token has been revoked"})
    with pytest.raises(LinearError, match="Refresh token has been revoked"):
        run_sync(LinearClient.from_settings(oauth_settings), full=True)


@responses.activate
def test_disconnecting_revokes_and_forgets_the_token(client, browser, oauth_settings):
    connect(client, browser)
    responses.post(REVOKE_URL, body="", match=[matchers.urlencoded_params_matcher({"token": ACCESS_TOKEN})])
    response = client.simulate_delete("/api/auth/linear", cookies=browser, headers=SAME_ORIGIN)
    assert response.status_code == 204
    assert LinearOAuthToken.select().count() == 0
    assert [call.request.url for call in responses.calls][-1] == REVOKE_URL
    assert linear_oauth.access_token(oauth_settings) is None
    assert_canonical_error(client.simulate_delete("/api/auth/linear", cookies=browser,
                                                  headers=SAME_ORIGIN), 404)


@responses.activate
def test_another_site_cannot_disconnect_linear(client, browser):
    connect(client, browser)
    response = client.simulate_delete("/api/auth/linear", cookies=browser, headers={"Origin": "https://evil.example"})
    assert_canonical_error(response, 403, "csrf")
    assert LinearOAuthToken.select().count() == 1


# Rotating DASHBOARD_SECRET_KEY ----------------------------------------------------------------------------------

@responses.activate
def test_rotating_the_secret_key_with_the_old_one_listed_then_reencrypting(client, browser, oauth_settings,
                                                                           monkeypatch, capsys):
    connect(client, browser)
    rotated = oauth_settings.with_overrides(secret_key="the-new-dashboard-secret-key-0123456789",
                                            previous_secret_keys=(SECRET_KEY,))
    assert linear_oauth.access_token(rotated) == ACCESS_TOKEN  # the old key still decrypts
    new_only = rotated.with_overrides(previous_secret_keys=())
    with pytest.raises(linear_oauth.LinearOAuthError, match="DASHBOARD_SECRET_KEY_PREVIOUS"):
        linear_oauth.access_token(new_only)
    monkeypatch.setenv("DATABASE_URL", oauth_settings.database_url)
    monkeypatch.setenv("DASHBOARD_SECRET_KEY", rotated.secret_key)
    monkeypatch.setenv("DASHBOARD_SECRET_KEY_PREVIOUS", SECRET_KEY)
    assert linear_oauth.main(["--reencrypt"]) == 0
    assert "re-encrypted" in capsys.readouterr().out
    assert linear_oauth.access_token(new_only) == ACCESS_TOKEN  # now the new key alone is enough
    assert decrypt(new_only, LinearOAuthToken.get().refresh_token) == REFRESH_TOKEN


def test_linear_oauth_settings_come_from_the_environment_and_the_secrets_stay_hidden():
    settings = Settings.from_env({"LINEAR_CLIENT_ID": CLIENT_ID, "LINEAR_CLIENT_SECRET": CLIENT_SECRET,
                                  "DASHBOARD_SECRET_KEY": SECRET_KEY,
                                  "DASHBOARD_SECRET_KEY_PREVIOUS": "old-key-0123456789abc"})
    assert settings.linear_oauth_configured and settings.linear_oauth_scope == "read,write"
    assert settings.previous_secret_keys == ("old-key-0123456789abc",)
    for secret in (CLIENT_SECRET, SECRET_KEY, "old-key-0123456789abc"):
        assert secret not in repr(settings) and secret in configured_secrets(settings)  # redacted from logs
    with pytest.raises(ValueError, match="LINEAR_CLIENT_ID and LINEAR_CLIENT_SECRET go together"):
        Settings.from_env({"LINEAR_CLIENT_SECRET": CLIENT_SECRET})
