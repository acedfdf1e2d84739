"""Credentials: the agents' key for ingest, a dashboard token or session for the rest, never crossed."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from falcon import testing

import functions.events
from deploy import prepare
from shared.store.models import AuthSession, Setting, User
from shared.web.auth import digest
from tests.support import DASHBOARD, assert_canonical_error, event

TODO = event("todo.updated", {"sessionID": "s", "todos": []})


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def make_session(token, expires_in):
    User.create(id="u1", github_id="1", github_username="octocat")
    AuthSession.create(id="as1", user_id="u1", token_hash=digest(token), expires_at=int(time.time()) + expires_in)


def test_an_unexpired_auth_session_opens_the_dashboard_routes(events_client):
    make_session("browser-session-token", expires_in=3600)
    assert events_client.simulate_get("/api/todos", headers=bearer("browser-session-token")).status_code == 200


def test_an_expired_auth_session_is_refused(events_client):
    make_session("browser-session-token", expires_in=-1)
    assert_canonical_error(events_client.simulate_get("/api/todos", headers=bearer("browser-session-token")), 401)


def test_a_session_token_is_not_an_api_key(events_client):
    make_session("browser-session-token", expires_in=3600)
    response = events_client.simulate_post("/api/events", json=TODO, headers=bearer("browser-session-token"))
    assert_canonical_error(response, 401)


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", "token abc"])
def test_malformed_authorization_headers_are_401(events_client, header):
    assert_canonical_error(events_client.simulate_get("/api/todos", headers={"Authorization": header}), 401)


def test_401_tells_the_client_how_to_authenticate(events_client):
    assert events_client.simulate_get("/api/todos").headers["www-authenticate"] == "Bearer"


# Generated credentials (no key configured) ----------------------------------------------------------------

@pytest.fixture
def unconfigured(settings, monkeypatch):
    """An installation where neither DASHBOARD_API_KEY nor DASHBOARD_TOKEN is set."""
    for name in ("DASHBOARD_API_KEY", "DASHBOARD_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    return settings.with_overrides(api_key=None, dashboard_token=None)


def run_prepare(capsys, *args):
    assert prepare.main(list(args)) == 0
    output = capsys.readouterr().out
    return dict(re.findall(r"(API key|Dashboard token) .*?: (\S+)", output)), output


def test_prepare_generates_credentials_once_and_stores_only_digests(unconfigured, capsys):
    secrets, _ = run_prepare(capsys)
    assert secrets.keys() == {"API key", "Dashboard token"}
    again, output = run_prepare(capsys)
    assert again == {} and "database ready" in output
    stored = {row.key: row.value for row in Setting.select()}
    assert stored["api_key_sha256"] == digest(secrets["API key"])
    assert not any(secrets["API key"] in (value or "") for value in stored.values())
    if unconfigured.database_url.startswith("sqlite:"):  # nor anywhere in the file, e.g. a journal
        database_file = Path(unconfigured.database_url.removeprefix("sqlite:///"))
        assert secrets["API key"].encode() not in database_file.read_bytes()


def test_generated_credentials_work_and_do_not_cross(unconfigured, capsys):
    secrets, _ = run_prepare(capsys)
    client = testing.TestClient(functions.events.create_app(unconfigured))
    key, token = secrets["API key"], secrets["Dashboard token"]
    assert client.simulate_post("/api/events", json=TODO, headers=bearer(key)).status_code == 202
    assert client.simulate_get("/api/todos", headers=bearer(token)).status_code == 200
    assert client.simulate_get("/api/todos", headers=bearer(key)).status_code == 401
    assert client.simulate_post("/api/events", json=TODO, headers=bearer(token)).status_code == 401


def test_a_new_api_key_replaces_the_old_one(unconfigured, capsys):
    first, _ = run_prepare(capsys)
    second, _ = run_prepare(capsys, "--new-api-key")
    assert second.keys() == {"API key"}
    client = testing.TestClient(functions.events.create_app(unconfigured))
    assert client.simulate_post("/api/events", json=TODO, headers=bearer(first["API key"])).status_code == 401
    assert client.simulate_post("/api/events", json=TODO, headers=bearer(second["API key"])).status_code == 202


def test_with_nothing_configured_or_generated_every_credential_is_refused(unconfigured, db):
    client = testing.TestClient(functions.events.create_app(unconfigured))
    assert_canonical_error(client.simulate_post("/api/events", json=TODO, headers=bearer("-" * 64)), 401)
    assert_canonical_error(client.simulate_get("/api/todos", headers=DASHBOARD), 401)


def test_a_configured_key_wins_over_a_generated_one(unconfigured, settings, capsys):
    generated, _ = run_prepare(capsys)
    client = testing.TestClient(functions.events.create_app(settings))  # settings carry a configured key
    assert client.simulate_post("/api/events", json=TODO, headers=bearer(generated["API key"])).status_code == 401
