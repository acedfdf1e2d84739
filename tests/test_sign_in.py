"""Signing in with the dashboard token: the session cookie, what it opens, CSRF, expiry, sign-out, the limit."""

from __future__ import annotations

import time

import pytest
from falcon import testing

import functions.auth
from shared.store.models import Agent, AgentTask, AuthSession, SignInFailure, User
from shared.web.auth import SESSION_COOKIE, digest
from tests.support import DASHBOARD, DASHBOARD_TOKEN, assert_canonical_error

# falcon.testing's requests go to http://falconframework.org unless told otherwise: a name another site
# could have pointed at us, so the dashboard takes itself to be at DASHBOARD_PUBLIC_URL (the default's).
OWN_ORIGIN = "http://127.0.0.1:3000"
THIRTY_DAYS = 30 * 24 * 3600


@pytest.fixture
def auth_client(settings, db) -> testing.TestClient:
    return testing.TestClient(functions.auth.create_app(settings))


def sign_in(client, token=DASHBOARD_TOKEN, **options):
    return client.simulate_post("/api/auth/login", json={"token": token}, **options)


def session_cookie(client) -> dict[str, str]:
    response = sign_in(client)
    assert response.status_code == 200, response.text
    return {SESSION_COOKIE: response.cookies[SESSION_COOKIE].value}


def new_task(client, cookies, **headers):
    Agent.insert(id="openclaw-main", name="Main", type="primary").on_conflict_ignore().execute()
    return client.simulate_post("/api/agent/openclaw-main/tasks", json={"id": "t1", "title": "Ship it"},
                                cookies=cookies, headers=headers)


# Signing in ---------------------------------------------------------------------------------------------------

def test_providers_say_which_sign_ins_exist(settings, db):
    plain = testing.TestClient(functions.auth.create_app(settings))
    assert plain.simulate_get("/api/auth/providers").json == {"github": False, "token": True}
    with_github = settings.with_overrides(github_client_id="Iv1.0123456789abcdef",
                                          github_client_secret="0123456789abcdef0123456789abcdef01234567")
    client = testing.TestClient(functions.auth.create_app(with_github))
    assert client.simulate_get("/api/auth/providers").json == {"github": True, "token": True}


def test_signing_in_sets_an_httponly_lax_cookie_for_thirty_days(auth_client):
    response = sign_in(auth_client)
    assert response.status_code == 200
    assert response.json["user"]["id"] == "local" and response.json["user"]["login"] == "dashboard"
    cookie = response.cookies[SESSION_COOKIE]
    assert cookie.http_only and cookie.same_site == "Lax" and cookie.path == "/"
    assert not cookie.secure  # served over plain http (an SSH tunnel to 127.0.0.1)
    assert cookie.max_age == THIRTY_DAYS
    # Only the token's digest is stored, with its expiry.
    session = AuthSession.get()
    assert session.token_hash == digest(cookie.value) and cookie.value not in session.token_hash
    assert abs(session.expires_at - (time.time() + THIRTY_DAYS)) < 5
    assert session.user_id == "local" and session.revoked_at is None


def test_the_cookie_is_secure_when_served_over_https(auth_client):
    assert sign_in(auth_client, protocol="https").cookies[SESSION_COOKIE].secure


def test_a_form_body_signs_in_too(auth_client):
    response = auth_client.simulate_post("/api/auth/login", body=f"token={DASHBOARD_TOKEN}",
                                         headers={"Content-Type": "application/x-www-form-urlencoded",
                                                  "Origin": OWN_ORIGIN})
    assert response.status_code == 200 and SESSION_COOKIE in response.cookies


def test_a_wrong_token_is_401_and_starts_no_session(auth_client):
    response = sign_in(auth_client, token="not-the-dashboard-token")
    assert_canonical_error(response, 401, "unauthorized")
    assert SESSION_COOKIE not in response.cookies and AuthSession.select().count() == 0


def test_the_agents_api_key_does_not_sign_in(auth_client):
    from tests.support import API_KEY

    assert_canonical_error(sign_in(auth_client, token=API_KEY), 401)


@pytest.mark.parametrize(("body", "content_type", "status", "field"), [
    ('{"tok": "x"}', "application/json", 422, "token"),
    ('{"token": 42}', "application/json", 422, "token"),
    ("token=", "application/x-www-form-urlencoded", 422, "token"),
    ("[1", "application/json", 400, None),
    ("token=x", "text/plain", 415, None),
])
def test_a_malformed_sign_in_is_refused_and_not_counted(auth_client, body, content_type, status, field):
    response = auth_client.simulate_post("/api/auth/login", body=body, headers={"Content-Type": content_type,
                                                                                "Origin": OWN_ORIGIN})
    assert_canonical_error(response, status, field=field)
    assert SignInFailure.select().count() == 0


def test_signing_in_updates_last_login(auth_client):
    sign_in(auth_client)
    User.update(last_login=1_000_000).where(User.id == "local").execute()
    cookies = session_cookie(auth_client)
    me = auth_client.simulate_get("/api/auth/me", cookies=cookies).json["user"]
    assert me["id"] == "local" and me["avatar_url"] is None
    assert abs(User.get_by_id("local").last_login - time.time()) < 5
    assert me["last_login"] is not None and not me["last_login"].startswith("1970")


def test_me_without_a_session_is_401(auth_client):
    assert_canonical_error(auth_client.simulate_get("/api/auth/me"), 401, "unauthorized")


# What the cookie opens ----------------------------------------------------------------------------------------

def test_the_cookie_opens_reads_everywhere(mounted_client):
    cookies = session_cookie(mounted_client)
    assert mounted_client.simulate_get("/api/todos", cookies=cookies).status_code == 200
    assert mounted_client.simulate_get("/api/agents", cookies=cookies).status_code == 200
    assert_canonical_error(mounted_client.simulate_get("/api/todos"), 401)


def test_a_cookie_write_from_our_own_origin_is_allowed(mounted_client):
    response = new_task(mounted_client, session_cookie(mounted_client), Origin=OWN_ORIGIN)
    assert response.status_code == 201, response.text
    assert AgentTask.select().count() == 1


def test_a_cookie_write_with_a_same_origin_referer_is_allowed(mounted_client):
    response = new_task(mounted_client, session_cookie(mounted_client), Referer=f"{OWN_ORIGIN}/board?x=1")
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("headers", [
    {},
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Origin": "http://falconframework.org:8080"},
    {"Origin": "https://falconframework.org"},
    {"Referer": "https://evil.example/falconframework.org"},
])
def test_a_cookie_write_without_a_matching_origin_is_403_and_writes_nothing(mounted_client, headers):
    response = new_task(mounted_client, session_cookie(mounted_client), **headers)
    assert_canonical_error(response, 403, "csrf")
    assert AgentTask.select().count() == 0


def test_bearer_writes_need_no_origin(mounted_client, db):
    Agent.create(id="openclaw-main", name="Main", type="primary")
    response = mounted_client.simulate_post("/api/agent/openclaw-main/tasks", json={"id": "t1", "title": "x"},
                                            headers=DASHBOARD)
    assert response.status_code == 201


def test_a_session_token_sent_as_bearer_needs_no_origin(mounted_client):
    token = session_cookie(mounted_client)[SESSION_COOKIE]
    Agent.create(id="openclaw-main", name="Main", type="primary")
    response = mounted_client.simulate_post("/api/agent/openclaw-main/tasks", json={"id": "t1", "title": "x"},
                                            headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201


def test_the_dashboard_token_itself_is_not_a_cookie(mounted_client):
    cookies = {SESSION_COOKIE: DASHBOARD_TOKEN}
    assert_canonical_error(mounted_client.simulate_get("/api/todos", cookies=cookies), 401)


def test_the_cookie_opens_the_stream(settings, db):
    from deploy import mount

    client = testing.TestClient(mount.create_app(settings.with_overrides(sse_max_stream_s=0.3)))
    response = client.simulate_get("/api/stream", cookies=session_cookie(client))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")


# Expiry and sign-out ------------------------------------------------------------------------------------------

def test_an_expired_session_cookie_is_refused(mounted_client):
    cookies = session_cookie(mounted_client)
    AuthSession.update(expires_at=int(time.time()) - 1).execute()
    assert_canonical_error(mounted_client.simulate_get("/api/todos", cookies=cookies), 401)


def test_signing_out_revokes_the_session_and_clears_the_cookie(mounted_client):
    cookies = session_cookie(mounted_client)
    response = mounted_client.simulate_post("/api/auth/logout", cookies=cookies, headers={"Origin": OWN_ORIGIN})
    assert response.status_code == 204
    cleared = response.cookies[SESSION_COOKIE]
    assert cleared.value == "" and cleared.path == "/"
    assert cleared.expires.timestamp() <= time.time()  # already expired: the browser drops it
    assert AuthSession.get().revoked_at is not None
    assert_canonical_error(mounted_client.simulate_get("/api/todos", cookies=cookies), 401)
    token = cookies[SESSION_COOKIE]
    assert_canonical_error(mounted_client.simulate_get("/api/todos", headers={"Authorization": f"Bearer {token}"}),
                           401)


def test_another_site_cannot_sign_you_out(mounted_client):
    cookies = session_cookie(mounted_client)
    response = mounted_client.simulate_post("/api/auth/logout", cookies=cookies,
                                            headers={"Origin": "https://evil.example"})
    assert_canonical_error(response, 403, "csrf")
    assert mounted_client.simulate_get("/api/todos", cookies=cookies).status_code == 200


def test_signing_out_one_session_leaves_the_others(mounted_client):
    first, second = session_cookie(mounted_client), session_cookie(mounted_client)
    mounted_client.simulate_post("/api/auth/logout", cookies=first, headers={"Origin": OWN_ORIGIN})
    assert mounted_client.simulate_get("/api/todos", cookies=second).status_code == 200


# The limit on failed sign-ins ----------------------------------------------------------------------------------

@pytest.fixture
def limited(settings, db):
    """Two separate app instances (as two gunicorn workers have) over one database, 3 failures allowed."""
    limited = settings.with_overrides(auth_max_failures=3, auth_failure_window_s=600)
    return (testing.TestClient(functions.auth.create_app(limited)),
            testing.TestClient(functions.auth.create_app(limited)))


def test_failed_sign_ins_are_limited_per_client_across_processes(limited):
    first, second = limited
    for client in (first, second, first):  # the failures land on different instances
        assert_canonical_error(sign_in(client, token="guess-guess-guess", remote_addr="10.0.0.7"), 401)
    for client in (second, first):
        response = sign_in(client, token="guess-guess-guess", remote_addr="10.0.0.7")
        assert_canonical_error(response, 429, "too_many_attempts")
        assert 590 <= int(response.headers["retry-after"]) <= 600
    # Even the right token is refused while the limit holds: a guesser learns nothing.
    assert_canonical_error(sign_in(second, remote_addr="10.0.0.7"), 429)
    # Another client is not affected.
    assert sign_in(first, remote_addr="10.0.0.8").status_code == 200


def test_the_limit_lifts_when_the_failures_leave_the_window(limited):
    first, _ = limited
    for _ in range(3):
        sign_in(first, token="guess-guess-guess", remote_addr="10.0.0.7")
    assert sign_in(first, remote_addr="10.0.0.7").status_code == 429
    SignInFailure.update(failed_at=SignInFailure.failed_at - 601).execute()
    assert sign_in(first, remote_addr="10.0.0.7").status_code == 200


def test_a_successful_sign_in_forgives_earlier_failures(limited):
    first, second = limited
    for _ in range(2):
        sign_in(first, token="guess-guess-guess", remote_addr="10.0.0.7")
    assert sign_in(second, remote_addr="10.0.0.7").status_code == 200
    for _ in range(2):
        assert sign_in(first, token="guess-guess-guess", remote_addr="10.0.0.7").status_code == 401
