"""A list route's `cursor` is the client's to send: whatever it holds is a 400 naming `cursor`, never a 500.

A cursor this server issued is base64 of a JSON list, the last row's sort key. These are every other
thing a client can send in its place, on every list route of the mounted app.
"""

from __future__ import annotations

import base64
import json

import pytest

from tests.support import AGENT, DASHBOARD, assert_canonical_error, event

# Every route that pages with ?cursor=, and the sort key its cursor holds.
LIST_ROUTES = ["/api/todos", "/api/msgs", "/api/messages", "/api/sess", "/api/sessions", "/api/agents",
               "/api/agent/openclaw-main/tasks", "/api/notifications", "/api/projects", "/api/search?q=main",
               "/api/timeline"]


def b64(raw: bytes | str) -> str:
    raw = raw.encode() if isinstance(raw, str) else raw
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


HOSTILE_CURSORS = {
    "nested a thousand deep": b64("[" * 1000 + "]" * 1000),
    "nested a hundred thousand deep": b64("[" * 100_000 + "]" * 100_000),
    "nested just under the recursion limit": b64("[" * 900 + "]" * 900),
    "nested objects": b64('{"a":' * 1000 + "1" + "}" * 1000),
    "huge": "A" * 200_000,
    "huge but valid JSON": b64(json.dumps(["x" * 100_000, "y"])),
    "not UTF-8": b64(b"\xff\xfe[1,\"x\"]"),
    "Latin-1 text": b64('["caf\xe9", 1]'.encode("latin-1")),
    "a lone surrogate": b64('["\\ud800", "x"]'),
    "a lone surrogate as the number's partner": b64('[1, "\\udfff"]'),
    "a NUL character": b64('["a\\u0000b", "x"]'),
    "NaN": b64("[NaN, \"x\"]"),
    "Infinity": b64("[Infinity, 1]"),
    "a number past floats": b64("[1e999999, \"x\"]"),
    "an integer past 64 bits": b64(f"[{2**64}, \"x\"]"),
    "an integer too long to parse": b64("[" + "9" * 5000 + ", 1]"),
    "text where a number goes and a number where text goes": b64('["yesterday", 7]'),
    "fractions": b64("[1.5, 2.5]"),
    "true for a number": b64('[true, "x"]'),
    "an integer past 64 bits alone": b64(f"[{2**70}]"),
    "a NUL in a lone key": b64('["a\\u0000"]'),
    "null keys": b64("[null, null]"),
    "booleans": b64("[true, false]"),
    "an object": b64('{"created_at": 1, "id": "x"}'),
    "a string": b64('"x"'),
    "a number": b64("1"),
    "null": b64("null"),
    "an empty list": b64("[]"),
    "too many keys": b64('[1, "x", 2, "y"]'),
    "lists as keys": b64('[[1], ["x"]]'),
    "base64 with junk": "eyJ!!!",
    "percent-encoded bytes": "%ff%fe%00",
    "standard base64 alphabet": base64.b64encode(b'\xfb\xff[1,"x"]').decode(),
}


@pytest.fixture
def settings(settings):
    return settings.with_overrides(linear_api_key="lin_api_for_tests_0123456789")  # /api/projects answers


@pytest.fixture
def client(mounted_client):
    # Something on every list, so each route reaches the cursor: an agent (its task list needs one).
    seed = event("agent.registered", {"id": "openclaw-main", "name": "Main", "type": "primary"})
    assert mounted_client.simulate_post("/api/events", json=seed, headers=AGENT).status_code == 202
    return mounted_client


@pytest.mark.parametrize("route", LIST_ROUTES)
def test_every_list_route_answers_any_made_up_cursor_with_a_400_naming_it(client, route):
    problems = {}
    for name, cursor in HOSTILE_CURSORS.items():
        path, _, query = route.partition("?")
        response = client.simulate_get(path, query_string=f"{query}&cursor={cursor}", headers=DASHBOARD)
        if response.status_code != 400 or (response.json or {}).get("error", {}).get("field") != "cursor":
            problems[name] = (response.status_code, response.text[:200])
        else:
            assert_canonical_error(response, 400, "invalid_parameter", field="cursor")
    assert problems == {}


@pytest.mark.parametrize("route", LIST_ROUTES)
def test_a_cursor_the_route_issued_still_pages(client, route):
    # The checks above refuse only what was not issued: a real cursor of the route goes on paging.
    path, _, query = route.partition("?")
    first = client.simulate_get(path, query_string=f"{query}&limit=1", headers=DASHBOARD)
    assert first.status_code == 200
    cursor = first.json["next_cursor"]
    if cursor is not None:
        following = client.simulate_get(path, query_string=f"{query}&limit=1&cursor={cursor}", headers=DASHBOARD)
        assert following.status_code == 200


def test_ids_of_any_text_page_through_with_their_cursors(client):
    # Issued cursors hold the ids as UTF-8; text from anywhere in Unicode comes back out of them.
    names = ["ünïcødé", "😀 emoji", "漢字", "a\"quote", "back\\slash", "x" * 128]
    for number, name in enumerate(names):
        registered = event("agent.registered", {"id": name, "name": f"Agent {number}", "type": "primary"})
        assert client.simulate_post("/api/events", json=registered, headers=AGENT).status_code == 202
    seen, cursor = [], None
    while True:
        params = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        body = client.simulate_get("/api/agents", params=params, headers=DASHBOARD).json
        seen += [agent["id"] for agent in body["agents"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted([*names, "openclaw-main"])
