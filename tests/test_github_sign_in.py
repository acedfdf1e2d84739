"""Signing in with GitHub: the redirect, the signed state, the code exchange, the allow-list, the errors.

`responses` stands in for github.com and api.github.com, answering as GitHub does (its token endpoint
reports errors with HTTP 200 and an `error` field)."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import itsdangerous.timed
import pytest
import requests
import responses
from falcon import testing
from responses import matchers

import functions.auth
from shared.config import Settings
from shared.logs import configured_secrets
from shared.store.models import AuthSession, User
from shared.web.auth import SESSION_COOKIE, digest
from tests.database_rows import stored_bytes
from tests.support import assert_canonical_error

CLIENT_ID = "Ov23liAbCdEf01234567"
CLIENT_SECRET = "0123456789abcdef0123456789abcdef01234567"
TOKEN_URL = "https://github.com/login/oauth/access_token"
USER_URL = "https://api.github.com/user"
GITHUB_TOKEN = "gho_16C7e42F292c6912E7710c838347Ae178B4a"
PUBLIC_URL = "http://127.0.0.1:3000"

# GET /user as GitHub answers it for an OAuth token without scopes (abridged to the fields that matter
# plus a few neighbours, as they come).
OCTOCAT = {
    "login": "octocat", "id": 583231, "node_id": "MDQ6VXNlcjU4MzIzMQ==",
    "avatar_url": "https://avatars.githubusercontent.com/u/583231?v=4", "gravatar_id": "",
    "url": "https://api.github.com/users/octocat", "html_url": "https://github.com/octocat", "type": "User",
    "site_admin": False, "name": "The Octocat", "company": "@github", "blog": "https://github.blog",
    "location": "San Francisco", "email": None, "hireable": None, "bio": None, "twitter_username": None,
    "public_repos": 8, "public_gists": 8, "followers": 17000, "following": 9,
    "created_at": "2011-01-25T18:44:36Z", "updated_at": "2026-09-22T11:25:21Z",
}


@pytest.fixture
def github_settings(settings) -> Settings:
    return settings.with_overrides(github_client_id=CLIENT_ID, github_client_secret=CLIENT_SECRET,
                                   github_allowed_users=("octocat",), secret_key="signing-key-for-tests-0123456789",
                                   dashboard_public_url=PUBLIC_URL)


@pytest.fixture
def client(github_settings, db) -> testing.TestClient:
    return testing.TestClient(functions.auth.create_app(github_settings))


def begin(client) -> tuple[str, dict[str, str]]:
    """Start a sign-in: the state GitHub will send back, and the browser's state cookie."""
    response = client.simulate_get("/api/auth/github/login")
    assert response.status_code == 302
    state = parse_qs(urlsplit(response.headers["location"]).query)["state"][0]
    return state, {"ocd_github_state": response.cookies["ocd_github_state"].value}


def github_answers(profile=OCTOCAT, token=GITHUB_TOKEN, code="9f2b1c3d4e5f60718293"):
    responses.post(TOKEN_URL, json={"access_token": token, "token_type": "bearer", "scope": ""},
                   match=[matchers.header_matcher({"Accept": "application/json"}),
                          matchers.urlencoded_params_matcher({
                              "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "code": code,
                              "redirect_uri": f"{PUBLIC_URL}/api/auth/github/callback"})])
    responses.get(USER_URL, json=profile, match=[matchers.header_matcher({"Authorization": f"Bearer {token}"})])


def callback(client, state, cookies, code="9f2b1c3d4e5f60718293", **params):
    return client.simulate_get("/api/auth/github/callback", params={"code": code, "state": state, **params},
                               cookies=cookies)


def test_login_redirects_to_github_with_a_signed_state_bound_to_the_browser(client):
    response = client.simulate_get("/api/auth/github/login")
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == "https://github.com/login/oauth/authorize"
    query = parse_qs(location.query)
    assert query["client_id"] == [CLIENT_ID]
    assert query["redirect_uri"] == [f"{PUBLIC_URL}/api/auth/github/callback"]
    assert query["state"][0] and CLIENT_SECRET not in response.headers["location"]
    cookie = response.cookies["ocd_github_state"]
    assert cookie.http_only and cookie.same_site == "Lax" and cookie.path == "/api/auth"
    assert cookie.value == itsdangerous.URLSafeTimedSerializer(
        "signing-key-for-tests-0123456789", salt="opencode-dashboard.github-state").loads(query["state"][0])["nonce"]


@responses.activate
def test_an_allowed_user_is_signed_in_and_sent_home(client, settings):
    github_answers()
    state, cookies = begin(client)
    response = callback(client, state, cookies)
    assert response.status_code == 302 and response.headers["location"] == "/"
    session_cookie = response.cookies[SESSION_COOKIE]
    assert session_cookie.http_only and session_cookie.same_site == "Lax" and session_cookie.path == "/"
    user = User.get(User.github_id == "583231")
    assert (user.github_username, user.provider) == ("octocat", "github")
    assert user.github_avatar_url == OCTOCAT["avatar_url"] and abs(user.last_login - time.time()) < 5
    assert AuthSession.get().token_hash == digest(session_cookie.value)
    me = client.simulate_get("/api/auth/me", cookies={SESSION_COOKIE: session_cookie.value}).json["user"]
    assert me["login"] == "octocat" and me["avatar_url"] == OCTOCAT["avatar_url"] and me["last_login"]
    # GitHub's token was used once and kept nowhere.
    assert GITHUB_TOKEN.encode() not in stored_bytes(settings.database_url)


@responses.activate
def test_signing_in_again_refreshes_the_same_user(client):
    github_answers()
    callback(client, *begin(client))
    User.update(last_login=1_000).execute()
    responses.reset()
    github_answers(profile=OCTOCAT | {"login": "OctoCat", "avatar_url": "https://avatars.example/new"})
    assert callback(client, *begin(client)).status_code == 302
    user = User.get()  # one row: the GitHub id is the identity, the login may change
    assert user.github_username == "OctoCat" and user.github_avatar_url == "https://avatars.example/new"
    assert user.last_login > 1_000 and AuthSession.select().count() == 2


@responses.activate
def test_a_user_not_on_the_allow_list_is_refused_and_nothing_is_kept(client):
    github_answers(profile=OCTOCAT | {"login": "mallory", "id": 666})
    response = callback(client, *begin(client))
    error = assert_canonical_error(response, 403, "not_allowed")
    assert "mallory" in error["message"] and "GITHUB_ALLOWED_USERS" in error["message"]
    assert SESSION_COOKIE not in response.cookies
    assert User.select().count() == 0 and AuthSession.select().count() == 0


@responses.activate
def test_an_empty_allow_list_lets_nobody_in_and_says_so(github_settings, db):
    client = testing.TestClient(functions.auth.create_app(github_settings.with_overrides(github_allowed_users=())))
    github_answers()
    error = assert_canonical_error(callback(client, *begin(client)), 403, "not_allowed")
    assert "GITHUB_ALLOWED_USERS is empty" in error["message"]
    assert AuthSession.select().count() == 0


def test_declined_consent_is_a_clear_403(client):
    state, cookies = begin(client)
    response = client.simulate_get("/api/auth/github/callback", cookies=cookies, params={
        "error": "access_denied", "state": state,
        "error_description": "The user has denied your application access.",
        "error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#access-denied"})
    assert "declined" in assert_canonical_error(response, 403, "github_denied")["message"]


@responses.activate
def test_a_forged_state_is_refused_before_github_is_asked(client):
    _, cookies = begin(client)
    forged = itsdangerous.URLSafeTimedSerializer("another-key-entirely-0123456789",
                                                 salt="opencode-dashboard.github-state").dumps({"nonce": "x"})
    assert_canonical_error(callback(client, forged, cookies), 400, "invalid_state", field="state")
    assert_canonical_error(callback(client, "", cookies), 400, "invalid_state")
    assert len(responses.calls) == 0


@responses.activate
def test_a_state_from_another_browser_is_refused(client):
    state, _ = begin(client)
    _, other_browser = begin(client)
    assert_canonical_error(callback(client, state, other_browser), 400, "invalid_state")
    assert_canonical_error(callback(client, state, {}), 400, "invalid_state")
    assert len(responses.calls) == 0


@responses.activate
def test_an_expired_state_is_refused(client, monkeypatch):
    with monkeypatch.context() as past:  # the state is issued eleven minutes ago
        past.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 660)
        state, cookies = begin(client)
    error = assert_canonical_error(callback(client, state, cookies), 400, "state_expired")
    assert "start again" in error["message"]
    assert len(responses.calls) == 0


@responses.activate
def test_a_reused_or_expired_code_is_github_refusing(client):
    responses.post(TOKEN_URL, json={
        "error": "bad_verification_code", "error_description": "The code passed is incorrect or expired.",
        "error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code"})
    error = assert_canonical_error(callback(client, *begin(client)), 400, "github_refused")
    assert "incorrect or expired" in error["message"]
    assert AuthSession.select().count() == 0


@responses.activate
@pytest.mark.parametrize("answer", [{"body": requests.ConnectionError("connection refused")},
                                    {"status": 502, "body": "<html>Bad gateway</html>"},
                                    {"body": requests.Timeout("read timed out")}])
def test_github_down_is_503(client, answer):
    responses.post(TOKEN_URL, **answer)
    response = callback(client, *begin(client))
    assert_canonical_error(response, 503, "github_unavailable")
    assert response.headers["retry-after"]


@responses.activate
def test_a_token_github_then_refuses_is_502(client):
    responses.post(TOKEN_URL, json={"access_token": GITHUB_TOKEN, "token_type": "bearer", "scope": ""})
    responses.get(USER_URL, status=401, json={"message": "Bad credentials",
                                              "documentation_url": "https://docs.github.com/rest", "status": "401"})
    assert_canonical_error(callback(client, *begin(client)), 502, "github_error")
    assert AuthSession.select().count() == 0


def test_without_github_configured_both_routes_say_so(settings, db):
    client = testing.TestClient(functions.auth.create_app(settings))
    for path in ("/api/auth/github/login", "/api/auth/github/callback"):
        error = assert_canonical_error(client.simulate_get(path), 503, "github_not_configured")
        assert "GITHUB_CLIENT_ID" in error["message"]


def test_github_settings_come_from_the_environment_and_the_secret_stays_hidden():
    settings = Settings.from_env({"GITHUB_CLIENT_ID": CLIENT_ID, "GITHUB_CLIENT_SECRET": CLIENT_SECRET,
                                  "GITHUB_ALLOWED_USERS": " OctoCat, hubot ,,"})
    assert settings.github_configured and settings.github_allowed_users == ("octocat", "hubot")
    assert CLIENT_SECRET not in repr(settings) and CLIENT_SECRET in configured_secrets(settings)
    with pytest.raises(ValueError, match="GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET go together"):
        Settings.from_env({"GITHUB_CLIENT_ID": CLIENT_ID})
