"""Every way in counts toward the limit on failed sign-ins: a wrong bearer token or API key on any route,
like a wrong token on the sign-in form; and another site cannot post sign-ins to lock the owner out."""

from __future__ import annotations

import concurrent.futures
import json

import pytest
from falcon import testing

from deploy import mount
from shared.store.models import AuthSession, SignInFailure
from shared.web.auth import SESSION_COOKIE
from tests.database_rows import reading
from tests.processes import gunicorn
from tests.support import AGENT, API_KEY, DASHBOARD, DASHBOARD_TOKEN, assert_canonical_error, event

GUESSER = "192.0.2.66"
OWN_ORIGIN = "http://127.0.0.1:3000"  # DASHBOARD_PUBLIC_URL, the default
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def client(settings, db):
    return testing.TestClient(mount.create_app(settings.with_overrides(auth_max_failures=5,
                                                                       auth_failure_window_s=600)))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# Ways in: (method, path, the credential header for a given token). Reads and writes, both kinds.
WAYS_IN = [
    ("GET", "/api/todos", bearer),
    ("GET", "/api/agents", bearer),
    ("POST", "/api/agent/main/tasks", bearer),
    ("GET", "/api/auth/me", bearer),
    ("GET", "/api/stream", bearer),
    ("POST", "/api/stream/token", bearer),
    ("POST", "/api/events", bearer),
    ("POST", "/api/events", lambda token: {"X-API-Key": token}),
    ("GET", "/api/agent/main/inbox", bearer),
]


@pytest.mark.parametrize(("method", "path", "credential"), WAYS_IN)
def test_wrong_credentials_on_any_route_meet_the_limit(client, method, path, credential):
    answers = [client.simulate_request(method, path, headers=credential(f"guess-{number:04d}-guess"),
                                       remote_addr=GUESSER).status_code for number in range(50)]
    assert answers[:5] == [401] * 5
    assert set(answers[5:]) == {429}
    assert SignInFailure.select().count() == 5  # once refused, a guess is not even counted


def test_bearer_guesses_and_form_guesses_add_up_on_one_limit(client):
    for number in range(2):
        assert client.simulate_get("/api/todos", headers=bearer(f"bearer-{number}-guess"),
                                   remote_addr=GUESSER).status_code == 401
    for number in range(2):
        assert client.simulate_post("/api/events", headers={"X-API-Key": f"key-{number}-guess"},
                                    remote_addr=GUESSER).status_code == 401
    assert client.simulate_post("/api/auth/login", json={"token": "form-guess"}, remote_addr=GUESSER).status_code == 401
    response = client.simulate_post("/api/auth/login", json={"token": DASHBOARD_TOKEN}, remote_addr=GUESSER)
    assert_canonical_error(response, 429, "too_many_attempts")


def test_once_limited_even_the_right_credential_is_refused_so_a_guess_learns_nothing(client):
    for number in range(5):
        client.simulate_get("/api/todos", headers=bearer(f"guess-{number}-guess"), remote_addr=GUESSER)
    for headers, path in ((DASHBOARD, "/api/todos"), (AGENT, "/api/agent/main/inbox")):
        response = client.simulate_get(path, headers=headers, remote_addr=GUESSER)
        assert_canonical_error(response, 429, "too_many_attempts")
        assert 590 <= int(response.headers["retry-after"]) <= 600
    # Another client is not affected, and the guesser's limit lifts as its failures age out.
    assert client.simulate_get("/api/todos", headers=DASHBOARD, remote_addr="192.0.2.1").status_code == 200
    SignInFailure.update(failed_at=SignInFailure.failed_at - 601).execute()
    assert client.simulate_get("/api/todos", headers=DASHBOARD, remote_addr=GUESSER).status_code == 200


def test_right_credentials_from_a_client_with_a_few_failures_still_work(client):
    for number in range(4):
        client.simulate_get("/api/todos", headers=bearer(f"typo-{number}-typo"), remote_addr=GUESSER)
    assert client.simulate_get("/api/todos", headers=DASHBOARD, remote_addr=GUESSER).status_code == 200
    registered = event("agent.registered", {"id": "main", "name": "Main", "type": "primary"})
    assert client.simulate_post("/api/events", json=registered, headers=AGENT, remote_addr=GUESSER).status_code == 202
    # Right credentials do not forgive: an agent's steady traffic must not wipe a guesser's record.
    assert SignInFailure.select().count() == 4


def test_a_session_cookie_that_stopped_working_is_not_a_guess(client):
    cookie = client.simulate_post("/api/auth/login", json={"token": DASHBOARD_TOKEN}).cookies[SESSION_COOKIE].value
    AuthSession.update(revoked_at=1).execute()  # signed out elsewhere; the page keeps polling
    for _ in range(20):
        assert_canonical_error(client.simulate_get("/api/todos", cookies={SESSION_COOKIE: cookie},
                                                   remote_addr=GUESSER), 401)
    assert SignInFailure.select().count() == 0
    assert client.simulate_get("/api/todos", headers=DASHBOARD, remote_addr=GUESSER).status_code == 200


def test_a_revoked_session_token_sent_as_bearer_is_a_guess(client):
    token = client.simulate_post("/api/auth/login", json={"token": DASHBOARD_TOKEN}).cookies[SESSION_COOKIE].value
    AuthSession.update(revoked_at=1).execute()
    assert_canonical_error(client.simulate_get("/api/todos", headers=bearer(token), remote_addr=GUESSER), 401)
    assert SignInFailure.select().count() == 1


# The sign-in form and other sites --------------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [
    FORM,  # a form posted with neither Origin nor Referer
    FORM | {"Origin": "https://evil.example"},
    FORM | {"Origin": "null"},  # a sandboxed frame, or a page that hid where it came from
    FORM | {"Referer": "https://evil.example/page"},
    {"Content-Type": "application/json", "Origin": "https://evil.example"},
])
def test_another_site_cannot_post_sign_ins_and_none_counts(client, headers):
    body = "token=guess-guess" if headers["Content-Type"] == FORM["Content-Type"] else '{"token": "guess-guess"}'
    for _ in range(10):
        assert_canonical_error(client.simulate_post("/api/auth/login", body=body, headers=headers), 403, "csrf")
    assert SignInFailure.select().count() == 0
    # The owner, on the dashboard's own page, signs in as ever.
    own = client.simulate_post("/api/auth/login", body=f"token={DASHBOARD_TOKEN}", headers=FORM | {
        "Origin": OWN_ORIGIN})
    assert own.status_code == 200


def test_the_dashboards_own_form_and_a_script_without_origin_still_sign_in(client):
    assert client.simulate_post("/api/auth/login", body=f"token={DASHBOARD_TOKEN}",
                                headers=FORM | {"Referer": f"{OWN_ORIGIN}/"}).status_code == 200
    assert client.simulate_post("/api/auth/login", json={"token": DASHBOARD_TOKEN}).status_code == 200  # curl


# Over real gunicorn: several workers, many threads -------------------------------------------------------------

def test_a_burst_of_guesses_across_workers_gets_exactly_the_limit(database_url):
    env = {"DASHBOARD_API_KEY": API_KEY, "DASHBOARD_TOKEN": DASHBOARD_TOKEN, "AUTH_MAX_FAILURES": "10"}
    with gunicorn(database_url, env, workers=3) as server:
        def guess(number: int) -> int:
            return server.send("GET", "/api/todos", headers=bearer(f"guess-{number:04d}-guess")).status_code

        with concurrent.futures.ThreadPoolExecutor(max_workers=24) as pool:
            answers = list(pool.map(guess, range(120)))
        assert answers.count(401) == 10 and answers.count(429) == 110
        with reading(database_url) as db:
            assert db.execute("SELECT COUNT(*) FROM sign_in_failures").fetchone()[0] == 10
        # The agents' key and the dashboard token, right as they are, are refused too from that address.
        assert server.send("GET", "/api/todos", headers=DASHBOARD).status_code == 429
        ingest = server.send("POST", "/api/events", json.dumps(event("session.idle", {"sessionID": "s"})).encode(),
                             headers=AGENT | {"Content-Type": "application/json"})
        assert ingest.status_code == 429
