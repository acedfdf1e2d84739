"""`Host` and `X-Forwarded-*` are believed only from the proxies DASHBOARD_TRUSTED_PROXIES names.

From any other client they change nothing: not the address the sign-in limit counts, not the origin
the same-origin check compares with, not whether the session cookie is Secure. A Host header that
another site could have chosen (DNS rebinding) is not believed either.
"""

from __future__ import annotations

import ipaddress

import pytest
from falcon import testing

from deploy import mount
from shared.config import ConfigError, Settings
from shared.store.models import AgentTask, SignInFailure
from shared.web.auth import SESSION_COOKIE
from tests.processes import gunicorn
from tests.support import AGENT, DASHBOARD_TOKEN, assert_canonical_error, event

PUBLIC_URL = "https://dash.example.ts.net"
PROXY = "10.0.0.2"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def client(settings, db):
    """The mount, published at PUBLIC_URL; no proxy trusted (the default)."""
    return testing.TestClient(mount.create_app(settings.with_overrides(dashboard_public_url=PUBLIC_URL)))


@pytest.fixture
def proxied(settings, db):
    """The mount behind a proxy at PROXY, which the operator named."""
    return testing.TestClient(mount.create_app(settings.with_overrides(
        dashboard_public_url=PUBLIC_URL, trusted_proxies=(ipaddress.ip_network("10.0.0.0/24"),))))


def sign_in(client, token=DASHBOARD_TOKEN, **options):
    return client.simulate_post("/api/auth/login", json={"token": token}, **options)


def cookie_of(response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    return {SESSION_COOKIE: response.cookies[SESSION_COOKIE].value}


def new_task(client, cookies, **options):
    registered = event("agent.registered", {"id": "main", "name": "Main", "type": "primary"})
    assert client.simulate_post("/api/events", json=registered, headers=AGENT).status_code == 202
    return client.simulate_post("/api/agent/main/tasks", json={"id": "t1", "title": "Ship"}, cookies=cookies,
                                **options)


# From a client that is not a trusted proxy -------------------------------------------------------------------

@pytest.mark.parametrize("claims", [{"X-Forwarded-Proto": "https"}, {"X-Forwarded-Ssl": "on"},
                                    {"Forwarded": "proto=https"}, {"X-Forwarded-Protocol": "ssl"}])
def test_a_client_cannot_claim_https_to_get_a_secure_cookie(client, claims):
    response = sign_in(client, headers=claims, remote_addr="192.0.2.7")
    assert response.status_code == 200 and not response.cookies[SESSION_COOKIE].secure


def test_a_client_cannot_pick_another_host_for_the_same_origin_check(client):
    cookies = cookie_of(sign_in(client))
    claimed = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https", "Origin": "https://evil.example"}
    assert_canonical_error(new_task(client, cookies, headers=claimed, remote_addr="192.0.2.7"), 403, "csrf")
    assert AgentTask.select().count() == 0


@pytest.mark.parametrize("host", ["evil.example", "evil.example:3000", "dash.example.ts.net.evil.example"])
def test_a_host_another_site_chose_does_not_pass_the_same_origin_check(client, host):
    # DNS rebinding: another site's name pointed at our address; its page's Origin matches its Host.
    cookies = cookie_of(sign_in(client))
    response = new_task(client, cookies, headers={"Host": host, "Origin": f"http://{host}"})
    assert_canonical_error(response, 403, "csrf")
    form = client.simulate_post("/api/auth/login", body="token=guess", headers=FORM | {
        "Host": host, "Origin": f"http://{host}"})
    assert_canonical_error(form, 403, "csrf")
    assert SignInFailure.select().count() == 0


@pytest.mark.parametrize(("host", "origin"), [
    ("127.0.0.1:3000", "http://127.0.0.1:3000"), ("localhost:8080", "http://localhost:8080"),
    ("[::1]:3000", "http://[::1]:3000"), ("192.168.1.20:3000", "http://192.168.1.20:3000"),
    ("dash.example.ts.net", "http://dash.example.ts.net"),
])
def test_a_host_no_other_site_can_choose_is_believed(client, host, origin):
    # An address, localhost (an SSH tunnel's), or DASHBOARD_PUBLIC_URL's own host.
    cookies = cookie_of(sign_in(client))
    assert new_task(client, cookies, headers={"Host": host, "Origin": origin}).status_code == 201


def test_a_client_cannot_pick_the_address_the_sign_in_limit_counts(settings, db):
    client = testing.TestClient(mount.create_app(settings.with_overrides(auth_max_failures=3)))
    for number in range(3):
        spoofed = {"X-Forwarded-For": f"198.51.100.{number}", "X-Real-IP": f"198.51.100.{number}"}
        assert sign_in(client, token="guess-guess", headers=spoofed, remote_addr="192.0.2.7").status_code == 401
    assert_canonical_error(sign_in(client, headers={"X-Forwarded-For": "198.51.100.99"}, remote_addr="192.0.2.7"),
                           429, "too_many_attempts")
    assert {failure.client for failure in SignInFailure.select()} == {"192.0.2.7"}


# From a trusted proxy --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("peer", [PROXY, f"::ffff:{PROXY}"])  # the second: a server listening on ::
def test_a_trusted_proxy_says_the_browser_used_https(proxied, peer):
    response = sign_in(proxied, headers={"X-Forwarded-Proto": "https"}, remote_addr=peer)
    assert response.cookies[SESSION_COOKIE].secure


def test_a_trusted_proxy_keeps_the_same_origin_check_working(proxied):
    cookies = cookie_of(sign_in(proxied, remote_addr=PROXY))
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "dash.example.ts.net",
                 "Origin": "https://dash.example.ts.net", "Host": "10.0.0.1:3000"}
    assert new_task(proxied, cookies, headers=forwarded, remote_addr=PROXY).status_code == 201


def test_the_client_behind_a_trusted_proxy_is_who_the_limit_counts(settings, db):
    client = testing.TestClient(mount.create_app(settings.with_overrides(
        auth_max_failures=2, trusted_proxies=(ipaddress.ip_network("10.0.0.0/24"),))))

    def guess(forwarded_for):
        return sign_in(client, token="guess-guess", headers={"X-Forwarded-For": forwarded_for}, remote_addr=PROXY)

    # The proxy appends the address it was reached from; what is left of it, the client wrote.
    assert guess("198.51.100.1").status_code == 401
    assert guess("203.0.113.9, 198.51.100.1").status_code == 401  # a made-up hop changes nothing
    assert guess("203.0.113.10, 198.51.100.1").status_code == 429
    # Through two trusted hops, the client is the first untrusted one from the right.
    assert guess("198.51.100.2, 10.0.0.3").status_code == 401
    assert {failure.client for failure in SignInFailure.select()} == {"198.51.100.1", "198.51.100.2"}


# The setting ---------------------------------------------------------------------------------------------------------

def test_the_setting_takes_addresses_and_networks_and_trusts_nobody_by_default():
    assert Settings.from_env({}).trusted_proxies == ()
    settings = Settings.from_env({"DASHBOARD_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8,::1"})
    assert [str(network) for network in settings.trusted_proxies] == ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
    with pytest.raises(ConfigError, match="DASHBOARD_TRUSTED_PROXIES"):
        Settings.from_env({"DASHBOARD_TRUSTED_PROXIES": "my-proxy.internal"})


# Over real gunicorn, which has forwarding rules of its own ------------------------------------------------------------

def test_gunicorn_does_not_believe_a_local_clients_forwarded_https(database_url):
    # gunicorn's own default believes X-Forwarded-Proto from 127.0.0.1 — any local process, then.
    body = f'{{"token": "{DASHBOARD_TOKEN}"}}'.encode()
    json_headers = {"Content-Type": "application/json"}
    with gunicorn(database_url, {"DASHBOARD_TOKEN": DASHBOARD_TOKEN}, workers=1) as server:
        claimed = server.send("POST", "/api/auth/login", body, json_headers | {"X-Forwarded-Proto": "https"})
        assert claimed.status_code == 200 and "secure" not in claimed.headers["set-cookie"].lower()
    trusted = {"DASHBOARD_TOKEN": DASHBOARD_TOKEN, "DASHBOARD_TRUSTED_PROXIES": "127.0.0.1"}
    with gunicorn(database_url, trusted, workers=1) as server:
        forwarded = server.send("POST", "/api/auth/login", body, json_headers | {"X-Forwarded-Proto": "https"})
        assert forwarded.status_code == 200 and "secure" in forwarded.headers["set-cookie"].lower()
