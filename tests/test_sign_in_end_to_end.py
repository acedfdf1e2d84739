"""Signing in over real HTTP: gunicorn with the project's config and two workers, a browser's cookie
carried by hand, the same-origin rule, sign-out, and the failed sign-in limit shared by the workers."""

from __future__ import annotations

import json
from http.cookies import SimpleCookie

from tests.processes import gunicorn
from tests.support import API_KEY, DASHBOARD_TOKEN, assert_canonical_error


def json_body(payload) -> dict:
    return {"body": json.dumps(payload).encode(), "headers": {"Content-Type": "application/json"}}


def test_a_browser_signs_in_writes_from_its_own_origin_and_signs_out(tmp_path):
    # A proxy on this machine (tailscale serve, say) is named as trusted, so its X-Forwarded-Proto counts.
    env = {"DASHBOARD_API_KEY": API_KEY, "DASHBOARD_TOKEN": DASHBOARD_TOKEN, "DASHBOARD_TRUSTED_PROXIES": "127.0.0.1"}
    with gunicorn(f"sqlite:///{tmp_path / 'dashboard.db'}", env) as server:
        origin = f"http://127.0.0.1:{server.port}"
        signed_in = server.send("POST", "/api/auth/login", body=b"token=" + DASHBOARD_TOKEN.encode(),
                                headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": origin})
        assert signed_in.status_code == 200, signed_in.text
        set_cookie = signed_in.headers["set-cookie"]
        attributes = {part.strip().split("=")[0].lower() for part in set_cookie.split(";")}
        assert {"httponly", "path", "max-age"} <= attributes and "secure" not in attributes
        assert "SameSite=Lax" in set_cookie and "Path=/" in set_cookie and "Max-Age=2592000" in set_cookie
        cookie = {"Cookie": f"ocd_session={SimpleCookie(set_cookie)['ocd_session'].value}"}

        # Behind a proxy that terminated https, the cookie is Secure.
        proxied = server.send("POST", "/api/auth/login", body=json.dumps({"token": DASHBOARD_TOKEN}).encode(),
                              headers={"Content-Type": "application/json", "X-Forwarded-Proto": "https"})
        assert "Secure" in proxied.headers["set-cookie"]

        assert server.send("GET", "/api/agents", headers=cookie).status_code == 200
        server.send("POST", "/api/events", headers={"Authorization": f"Bearer {API_KEY}",
                                                     "Content-Type": "application/json"},
                    body=json.dumps({"id": "e1", "type": "agent.registered", "timestamp": "2026-11-25T10:00:00Z",
                                     "data": {"id": "main", "name": "Main", "type": "primary"}}).encode())
        task = json.dumps({"id": "t1", "title": "Ship it"}).encode()
        headers = {"Content-Type": "application/json"} | cookie
        assert_canonical_error(server.send("POST", "/api/agent/main/tasks", body=task, headers=headers), 403, "csrf")
        assert_canonical_error(server.send("POST", "/api/agent/main/tasks", body=task,
                                           headers=headers | {"Origin": "https://evil.example"}), 403, "csrf")
        created = server.send("POST", "/api/agent/main/tasks", body=task, headers=headers | {"Origin": origin})
        assert created.status_code == 201, created.text

        assert server.send("POST", "/api/auth/logout", headers=cookie | {"Origin": origin}).status_code == 204
        assert_canonical_error(server.send("GET", "/api/agents", headers=cookie), 401)


def test_the_failed_sign_in_limit_holds_across_workers(tmp_path):
    env = {"DASHBOARD_API_KEY": API_KEY, "DASHBOARD_TOKEN": DASHBOARD_TOKEN, "AUTH_MAX_FAILURES": "4"}
    with gunicorn(f"sqlite:///{tmp_path / 'dashboard.db'}", env, workers=2) as server:
        guess = json_body({"token": "a-wrong-guess-0123456789"})
        # Each request on a new connection: the two workers take them as the kernel hands them out.
        statuses = [server.send("POST", "/api/auth/login", **guess).status_code for _ in range(8)]
        assert statuses == [401] * 4 + [429] * 4
        limited = server.send("POST", "/api/auth/login", **json_body({"token": DASHBOARD_TOKEN}))
        assert_canonical_error(limited, 429, "too_many_attempts")
        assert 1 <= int(limited.headers["retry-after"]) <= 900
