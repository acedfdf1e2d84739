"""A seeded generator of malformed and hostile HTTP requests, as the raw bytes that go on the wire.

`hostile_requests(seed, count, routes, ...)` returns the same requests for the same seed. It starts
with every route and method once, path parameters at their limits; each of the others aims at a
route of the mounted app (or at no route) with one kind of trouble: a fuzzed JSON body
(wrong types, huge numbers, NaN/Infinity, null bytes, lone surrogates, deep nesting), bytes that are
not UTF-8 or not JSON, a wrong content type or length, huge or broken headers, a wrong method or
credential, a path trick (dot segments, percent-encoded nonsense, overlong paths, odd queries), or
one of the ingest contract's edge values in an event of a kind it knows.
Raw bytes because http.client refuses to send most of these.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from functions.events.kinds import KINDS
from tests.event_kinds import edge_batch, edge_cases


@dataclass(frozen=True)
class Route:
    template: str  # "/api/agent/{agent_id}/tasks", as Falcon knows it
    methods: tuple[str, ...]
    auth: str = "dashboard"  # the credential its resource asks for (shared.web.auth: agent, dashboard, public)


@dataclass(frozen=True)
class HostileRequest:
    kind: str  # which trouble it carries
    method: str
    target: bytes  # path and query, exactly as sent
    raw: bytes  # the whole request


@dataclass(frozen=True)
class Credentials:
    agent_key: str
    dashboard_token: str
    webhook_secret: str


# Values that break code expecting something else: types, sizes, encodings, injections.
HOSTILE_VALUES: list[Any] = [
    None, True, False, 0, -1, 2**63, -(2**63) - 1, 10**30, 1.5, -0.0, 1e308, "", " ", "x" * 10_000,
    "\u0000", "a\u0000b", "\ud800", "\udfff\ud800", "\u202e\u0645", "😀" * 50, "../../etc/passwd",
    "<script>alert(1)</script>", "'; DROP TABLE agents; --", "NaN", "Infinity", "1e999", "%00", "\r\nX-Injected: 1",
    [], {}, [[]], [None], {"$gt": ""}, {"__proto__": {"admin": True}}, ["x"] * 2000, list(range(100)),
]

# Text that replaces a number in a JSON document, beyond what json.dumps can write.
HOSTILE_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e999999", "-1e999999", "9" * 5000, "1" + "0" * 400,
                   "0.000000000000000000000000000000000001", "-0", "1E+2", "123456789012345678901234567890"]

CONTENT_TYPES = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                 "application/json; charset=utf-16", "APPLICATION/JSON", "application/jsonp", "application/xml",
                 "application/json, text/plain", "", "application/json; charset=latin-1", "*/*"]

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "TRACE", "PROPFIND", "FOO"]

PARAM_VALUES = ["%00", "%ff%fe", "..", "%2e%2e", "..%2f..%2fetc%2fpasswd", "a" * 300, "%c0%af", "-1", "0",
                "99999999999999999999999", "1e9", "%20", "%0d%0aX-Injected:%201", "%E2%80%AE", "null", "[]"]

INT_PARAM_VALUES = ["0", "-1", "99999999999999999999", "9223372036854775808", "9223372036854775807", "1e3",
                    "01", "1.5", "%31"]

QUERIES = ["limit=-1", "limit=0", "limit=1e99", "limit=99999999999999999999", "limit=abc", "limit=%00",
           "cursor=%ff", "cursor=eyJ4IjoxfQ", "cursor=" + "A" * 500, "cursor=..%2f", "since=NaN", "since=-1e309",
           "since=" + "9" * 40, "since=2026-13-45T99:99:99Z", "since=%00", "status=" + "a," * 500,
           "status=", "session_id=%00", "type=chat,%ff", "unread_only=maybe", "topics=%ff", "last_event_id=-5",
           "last_event_id=1e400", "token=x", "state=%00", "team_id=" + "t," * 300, "limit=1&limit=2",
           "parent=%ff%fe", "a" * 3000 + "=1", "=", "&&&", "%"]

PATHS = ["/api/../api/events", "//api//events", "/api/events/", "/api/events%00", "/api/events/..",
         "/api/./health", "/API/EVENTS", "/api/events;x=1", "/api/%65vents", "/api/sess/%ff%fe", "/api/sess/%00",
         "/api/agent/%2e%2e/profile", "/api/agent/..%2f..%2fetc/profile", "/api/agent//profile",
         "/api/notifications/99999999999999999999/read", "/api/notifications/-1/read",
         "/api/notifications/1e3/read", "/api/sess/" + "a" * 5000, "/" + "a/" * 3000, "/api/health/../events",
         "/", "", "*", "/api", "/api/", "/api/events?", "/api/events#frag", "/\\api\\events", "/api/%", "/%zz",
         "http://evil.example/api/events", "/api/\u00e9v\u00e9nements"]


def hostile_requests(seed: int, count: int, routes: list[Route], ids: dict[str, list[str]],
                     credentials: Credentials, port: int, now_ms: int) -> list[HostileRequest]:
    """`count` hostile requests, the same ones for the same seed. `ids` gives real values for path
    parameters (`agent_id` -> ids that exist), so some requests reach the handlers behind them;
    `now_ms` dates signed webhooks (the one thing that differs between runs)."""
    rng = random.Random(seed)
    builder = _Builder(rng, routes, ids, credentials, port, now_ms)
    kinds: list[tuple[str, Callable[[], HostileRequest]]] = [
        ("fuzzed JSON field", builder.fuzzed_field),
        ("fuzzed JSON field", builder.fuzzed_field),
        ("fuzzed JSON field", builder.fuzzed_field),
        ("hostile number", builder.hostile_number),
        ("deep nesting", builder.deep_nesting),
        ("invalid UTF-8", builder.invalid_utf8),
        ("random bytes", builder.random_bytes),
        ("truncated JSON", builder.truncated_json),
        ("wrong content type", builder.wrong_content_type),
        ("huge header", builder.huge_header),
        ("broken headers", builder.broken_headers),
        ("wrong length", builder.wrong_length),
        ("wrong method", builder.wrong_method),
        ("wrong credential", builder.wrong_credential),
        ("path trick", builder.path_trick),
        ("odd query", builder.odd_query),
        ("signed webhook", builder.signed_webhook),
        ("made-up cursor", builder.made_up_cursor),
        ("forged forwarding", builder.forged_forwarding),
        ("cross-site sign-in", builder.cross_site_sign_in),
        ("replayed webhook", builder.replayed_webhook),
        ("hostile text in valid events", builder.hostile_text_in_valid_events),
        ("hostile text in valid events", builder.hostile_text_in_valid_events),
        ("contract edge value", builder.contract_edge_value),
        ("contract edge value", builder.contract_edge_value),
    ]
    requests = builder.boundary_sweep()[:count]
    for _ in range(count - len(requests)):
        kind, make = rng.choice(kinds)
        request = make()
        requests.append(HostileRequest(kind, request.method, request.target, request.raw))
    return requests


class _Builder:
    def __init__(self, rng: random.Random, routes: list[Route], ids: dict[str, list[str]],
                 credentials: Credentials, port: int, now_ms: int):
        self.rng = rng
        self.now_ms = now_ms
        self.routes = routes
        self.ids = ids
        self.credentials = credentials
        self.host = f"127.0.0.1:{port}".encode()
        self.signed_bodies: list[tuple[bytes, str]] = []  # what signed_webhook sent, to replay

    # The pieces ----------------------------------------------------------------------------------------

    def route(self, writing: bool = False) -> tuple[Route, str]:
        candidates = [r for r in self.routes if not writing or set(r.methods) & {"POST", "PATCH", "PUT"}]
        route = self.rng.choice(candidates)
        method = self.rng.choice([m for m in route.methods if m in {"POST", "PATCH", "PUT"}] if writing
                                 else list(route.methods))
        return route, method

    def path(self, route: Route, hostile_params: float = 0.15) -> str:
        def value(match: re.Match) -> str:
            name, _, converter = match.group(1).partition(":")
            if converter.startswith("int") and self.rng.random() < 0.3:  # a number a converter lets through
                return self.rng.choice(INT_PARAM_VALUES)
            if self.rng.random() < hostile_params:
                return self.rng.choice(PARAM_VALUES)
            return quote(self.rng.choice(self.ids.get(name) or ["1"]), safe="")
        return re.sub(r"\{([^}]+)\}", value, route.template)

    def auth_for(self, route: Route) -> list[tuple[bytes, bytes]]:
        """The right credential, so that the trouble reaches the handler behind the route."""
        if route.template in ("/api/linear/webhook", "/api/health"):  # a signature, or nothing
            return []
        token = self.credentials.agent_key if route.auth == "agent" else self.credentials.dashboard_token
        return [(b"Authorization", f"Bearer {token}".encode())]

    def template_body(self, template: str) -> Any:
        return copy.deepcopy(BODIES.get(template, {"x": 1}))

    def request(self, method: str, target: str | bytes, headers: list[tuple[bytes, bytes]],
                body: bytes | None, *, content_length: bool = True) -> HostileRequest:
        target_bytes = target if isinstance(target, bytes) else target.encode("utf-8", "surrogateescape")
        lines = [method.encode() + b" " + target_bytes + b" HTTP/1.1", b"Host: " + self.host, b"Connection: close"]
        lines += [name + b": " + value for name, value in headers]
        if body is not None and content_length:
            lines.append(b"Content-Length: " + str(len(body)).encode())
        raw = b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")
        return HostileRequest("", method, target_bytes, raw)

    def json_request(self, route: Route, method: str, body: bytes,
                     content_type: bytes = b"application/json") -> HostileRequest:
        headers = [(b"Content-Type", content_type), *self.auth_for(route)]
        return self.request(method, self.path(route), headers, body)

    # The kinds of trouble ------------------------------------------------------------------------------

    def boundary_sweep(self) -> list[HostileRequest]:
        """Every route with every method once, its path parameters at their limits: an integer one past
        what a database integer holds, a text one of 300 characters."""
        def at_limit(match: re.Match) -> str:
            return str(2**63) if ":int" in match.group(0) else "x" * 300

        requests = []
        for route in self.routes:
            for method in route.methods:
                body = json.dumps(self.template_body(route.template)).encode() if method in ("POST", "PATCH") else None
                headers = [(b"Content-Type", b"application/json"), *self.auth_for(route)]
                request = self.request(method, re.sub(r"\{[^}]+\}", at_limit, route.template), headers, body)
                requests.append(HostileRequest("path parameters at their limits", method, request.target, request.raw))
        return requests

    def fuzzed_field(self) -> HostileRequest:
        route, method = self.route(writing=True)
        document = self.template_body(route.template)
        _mutate(self.rng, document, self.rng.randint(1, 3))
        return self.json_request(route, method, json.dumps(document, ensure_ascii=self.rng.random() < 0.5)
                                 .encode("utf-8", "surrogatepass"))

    def hostile_number(self) -> HostileRequest:
        route, method = self.route(writing=True)
        document = self.template_body(route.template)
        marker = "__NUMBER__"
        _mutate(self.rng, document, 1, value=marker)
        text = json.dumps(document).replace(f'"{marker}"', self.rng.choice(HOSTILE_NUMBERS))
        return self.json_request(route, method, text.encode())

    def deep_nesting(self) -> HostileRequest:
        route, method = self.route(writing=True)
        depth = self.rng.choice([50, 500, 990, 2_000, 20_000, 200_000])
        opener, closer = self.rng.choice([("[", "]"), ('{"a":', "}")])
        nested = opener * depth + "1" + closer * depth
        if self.rng.random() < 0.5:  # inside an otherwise valid document, where validation looks deeper
            document = self.template_body(route.template)
            marker = "__NESTED__"
            _mutate(self.rng, document, 1, value=marker)
            text = json.dumps(document).replace(f'"{marker}"', nested)
        else:
            text = nested
        return self.json_request(route, method, text.encode())

    def invalid_utf8(self) -> HostileRequest:
        route, method = self.route(writing=True)
        text = json.dumps(self.template_body(route.template)).encode()
        bad = self.rng.choice([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80", b"\xe2\x82"])
        position = self.rng.randint(0, len(text))
        body = self.rng.choice([text[:position] + bad + text[position:], b"\xef\xbb\xbf" + text,
                                text.decode().encode("utf-16"), text.decode().encode("latin-1") + b"\xe9"])
        return self.json_request(route, method, body)

    def random_bytes(self) -> HostileRequest:
        route, method = self.route()
        body = bytes(self.rng.getrandbits(8) for _ in range(self.rng.randint(0, 2_000)))
        return self.json_request(route, method, body)

    def truncated_json(self) -> HostileRequest:
        route, method = self.route(writing=True)
        text = json.dumps(self.template_body(route.template)).encode()
        return self.json_request(route, method, text[:self.rng.randint(0, max(len(text) - 1, 0))])

    def wrong_content_type(self) -> HostileRequest:
        route, method = self.route(writing=True)
        body = json.dumps(self.template_body(route.template)).encode()
        content_type = self.rng.choice(CONTENT_TYPES)
        if not content_type:
            headers = self.auth_for(route)
            return self.request(method, self.path(route), headers, body)
        return self.json_request(route, method, body, content_type.encode())

    def huge_header(self) -> HostileRequest:
        route, method = self.route()
        size = self.rng.choice([1_000, 4_000, 8_000, 9_000, 70_000])
        headers = [(b"Content-Type", b"application/json"), *self.auth_for(route)]
        choice = self.rng.randrange(4)
        if choice == 0:
            headers.append((b"X-Padding", b"a" * size))
        elif choice == 1:
            headers = [(b"Content-Type", b"application/json"), (b"Authorization", b"Bearer " + b"t" * size)]
        elif choice == 2:
            headers += [(f"X-H{n}".encode(), b"v") for n in range(self.rng.choice([50, 101, 500]))]
        else:
            headers.append((b"Cookie", b"ocd_session=" + b"c" * size))
        body = json.dumps(self.template_body(route.template)).encode() if method in ("POST", "PATCH") else None
        return self.request(method, self.path(route), headers, body)

    def broken_headers(self) -> HostileRequest:
        route, method = self.route()
        broken = self.rng.choice([
            (b"X-Bad\x00Name", b"v"), (b"X-Ctl", b"a\x01b"), (b"Bad Name", b"v"), (b"", b"v"),
            (b"Authorization", b"Bearer \xc3\xa9t\xc3\xa9"), (b"Authorization", b"Bearer a\x00b"),
            (b"Content-Type", b"application/json\x00"), (b"X-Fold", b"a\r\n continued"),
            (b"Linear-Signature", b"\xff" * 64), (b"Last-Event-ID", b"-1e400"), (b"Expect", b"100-continue"),
            (b"Transfer-Encoding", b"gzip"), (b"Host", b"\xff"),
        ])
        headers = [(b"Content-Type", b"application/json"), *self.auth_for(route), broken]
        body = json.dumps(self.template_body(route.template)).encode() if method in ("POST", "PATCH") else None
        return self.request(method, self.path(route), headers, body)

    def wrong_length(self) -> HostileRequest:
        route, method = self.route(writing=True)
        body = json.dumps(self.template_body(route.template)).encode()
        headers = [(b"Content-Type", b"application/json"), *self.auth_for(route)]
        choice = self.rng.randrange(6)
        if choice == 0:
            headers.append((b"Content-Length", b"-1"))
        elif choice == 1:
            headers.append((b"Content-Length", b"abc"))
        elif choice == 2:
            headers.append((b"Content-Length", b"99999999999"))  # declares more than the limit, sends less
        elif choice == 3:
            headers += [(b"Content-Length", str(len(body)).encode()), (b"Transfer-Encoding", b"chunked")]
        elif choice == 4:  # a well-formed chunked upload: no length declared
            headers.append((b"Transfer-Encoding", b"chunked"))
            body = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:7], body[7:]) if part) + b"0\r\n\r\n"
        else:  # a broken chunked upload
            headers.append((b"Transfer-Encoding", b"chunked"))
            body = b"zz\r\n" + body + b"\r\n0\r\n\r\n"
        return self.request(method, self.path(route), headers, body, content_length=False)

    def wrong_method(self) -> HostileRequest:
        route, _ = self.route()
        method = self.rng.choice([m for m in METHODS if m not in route.methods] or METHODS)
        body = json.dumps(self.template_body(route.template)).encode() if self.rng.random() < 0.5 else None
        headers = [(b"Content-Type", b"application/json"), *self.auth_for(route)]
        return self.request(method, self.path(route), headers, body)

    def wrong_credential(self) -> HostileRequest:
        route, method = self.route()
        wrong = self.rng.choice([
            b"Bearer", b"Bearer ", b"Basic YWRtaW46YWRtaW4=", b"bearer " + self.credentials.agent_key.encode(),
            b"Bearer " + self.credentials.agent_key.encode(), b"Bearer " + self.credentials.dashboard_token.encode(),
            b"Bearer " + self.credentials.dashboard_token.encode()[:-1], b"Token abc", b"Bearer a b c", None])
        headers = [(b"Content-Type", b"application/json")]
        if wrong is not None:
            headers.append((b"Authorization", wrong))
        if self.rng.random() < 0.3:
            headers.append((b"X-API-Key", self.rng.choice([b"", b"x", self.credentials.dashboard_token.encode()])))
        body = json.dumps(self.template_body(route.template)).encode() if method in ("POST", "PATCH") else None
        return self.request(method, self.path(route), headers, body)

    def path_trick(self) -> HostileRequest:
        method = self.rng.choice(["GET", "POST", "PATCH", "DELETE"])
        target = self.rng.choice(PATHS + [self.path(route, hostile_params=1.0) for route in self.routes[:8]])
        if self.rng.random() < 0.2:
            target = target.encode() + self.rng.choice([b"\xff", b"\x00", b"\x7f", b"\t"])
        token = self.rng.choice([self.credentials.agent_key, self.credentials.dashboard_token])
        headers = [(b"Content-Type", b"application/json"), (b"Authorization", f"Bearer {token}".encode())]
        return self.request(method, target, headers, b"{}" if method != "GET" else None)

    def odd_query(self) -> HostileRequest:
        route, method = self.route()
        query = "&".join(self.rng.sample(QUERIES, self.rng.randint(1, 3)))
        headers = [(b"Content-Type", b"application/json"), *self.auth_for(route)]
        body = json.dumps(self.template_body(route.template)).encode() if method in ("POST", "PATCH") else None
        return self.request(method, f"{self.path(route)}?{query}", headers, body)

    def hostile_text_in_valid_events(self) -> HostileRequest:
        """Events that pass validation but carry hostile text (null bytes, control and bidi characters,
        10 000 characters, SQL and HTML, paths) where strings belong: they are accepted and stored, so
        every read that follows must still answer."""
        events = copy.deepcopy(self.rng.sample(VALID_EVENTS, self.rng.randint(1, 3)))
        for event in events:
            event["id"] = f"{self.rng.choice(HOSTILE_TEXT)[:100]}-{self.rng.randrange(10**9)}"
            if self.rng.random() < 0.3:
                event["agent_id"] = self.rng.choice(HOSTILE_TEXT)[:128] or "a"
            strings = list(_string_fields(event["data"]))
            for _ in range(self.rng.randint(1, 3)):
                container, key = self.rng.choice(strings)
                container[key] = self.rng.choice(HOSTILE_TEXT)
        route = Route("/api/events", ("POST",), auth="agent")
        document = events[0] if len(events) == 1 else {"events": events}
        return self.json_request(route, "POST", json.dumps(document, ensure_ascii=self.rng.random() < 0.5).encode())

    def contract_edge_value(self) -> HostileRequest:
        """One of the contract's edge values (tests/event_kinds.py: past a field's length or 64 bits, not
        finite, nested past the limit, text past the cut, a NUL) in an event of any kind the registry
        knows, behind that kind's prerequisites: stored (text cut) or a 422, and readable afterwards."""
        kind = self.rng.choice(sorted(KINDS))
        case = self.rng.choice(edge_cases(kind))
        ids = (f"edge-{self.rng.randrange(10**12)}" for _ in iter(int, 1))
        batch, _ = edge_batch(kind, case, ids)
        return self.json_request(Route("/api/events", ("POST",), auth="agent"), "POST", batch.encode())

    def signed_webhook(self) -> HostileRequest:
        """A hostile delivery with a valid signature and a fresh timestamp, so it gets past both checks
        to the parser and the cache."""
        document = self.template_body("/api/linear/webhook") | {"webhookTimestamp": self.now_ms}
        _mutate(self.rng, document, self.rng.randint(0, 3))
        body = json.dumps(document).encode("utf-8", "surrogatepass")
        signature = hmac.new(self.credentials.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        self.signed_bodies.append((body, signature))
        return self.signed_delivery(body, signature)

    def signed_delivery(self, body: bytes, signature: str) -> HostileRequest:
        headers = [(b"Content-Type", b"application/json"), (b"Linear-Signature", signature.encode()),
                   (b"Linear-Delivery", f"delivery-{self.rng.randrange(10**9)}".encode())]
        return self.request("POST", "/api/linear/webhook", headers, body)

    def replayed_webhook(self) -> HostileRequest:
        """A signed delivery sent before, again, under a new Linear-Delivery id (a replay within the
        timestamp window): acknowledged as a duplicate, applied never twice."""
        if not self.signed_bodies:
            return self.signed_webhook()
        return self.signed_delivery(*self.rng.choice(self.signed_bodies))


    def made_up_cursor(self) -> HostileRequest:
        """A cursor no server issued, on a route that reads: nested past the recursion limit, huge, not
        UTF-8, keys of the wrong type."""
        route = self.rng.choice([r for r in self.routes if "GET" in r.methods])
        return self.request("GET", f"{self.path(route)}?cursor={self.rng.choice(MADE_UP_CURSORS)}",
                            self.auth_for(route), None)

    def forged_forwarding(self) -> HostileRequest:
        """A proxy's headers from a client no proxy: addresses, schemes and hosts of its choosing, and a
        Host another site could have chosen (believed from nobody here)."""
        route, method = self.route()
        forged = self.rng.sample([
            (b"X-Forwarded-For", self.rng.choice([b"10.0.0.1", b"1.2.3.4, 127.0.0.1", b"not-an-ip", b"::1, x" * 50])),
            (b"X-Forwarded-Proto", self.rng.choice([b"https", b"gopher", b"https, http", b""])),
            (b"X-Forwarded-Host", self.rng.choice([b"evil.example", b"evil.example:99999", b"[::1", b"a" * 300])),
            (b"X-Forwarded-Ssl", b"on"), (b"X-Forwarded-Protocol", b"ssl"), (b"X-Real-IP", b"10.9.8.7"),
            (b"Forwarded", b"for=1.2.3.4;proto=https;host=evil.example"),
            (b"Origin", self.rng.choice([b"https://evil.example", b"http://evil.example", b"null"]))],
            self.rng.randint(1, 4))
        headers = [(b"Content-Type", b"application/json"), *self.auth_for(route), *forged]
        body = json.dumps(self.template_body(route.template)).encode() if method in ("POST", "PATCH") else None
        return self.request(method, self.path(route), headers, body)

    def cross_site_sign_in(self) -> HostileRequest:
        """Another site's page posting sign-ins (to lock the owner out): a form, or JSON, from elsewhere."""
        token = self.rng.choice([b"guess", self.credentials.dashboard_token.encode(), b"%ff%00", b""])
        content_type, body = self.rng.choice([(b"application/x-www-form-urlencoded", b"token=" + token),
                                              (b"application/json", b'{"token": "' + token + b'"}'),
                                              (b"text/plain", b"token=" + token)])
        origin = self.rng.choice([[(b"Origin", b"https://evil.example")], [(b"Referer", b"http://evil.example/")],
                                  [(b"Origin", b"null")], []])
        return self.request("POST", "/api/auth/login", [(b"Content-Type", content_type), *origin], body)


def _b64(text: str | bytes) -> str:
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


MADE_UP_CURSORS = [_b64("[" * 1000 + "]" * 1000), _b64('{"a":' * 500 + "1" + "}" * 500), "A" * 3000,
                   _b64(b"\xff\xfe[1]"), _b64('["\\ud800", 1]'), _b64('["a\\u0000", "b"]'), _b64("[NaN, 1]"),
                   _b64("[1e999, 1]"), _b64(f"[{2**64}, 1]"), _b64('["x", "y"]'), _b64("[1, 2]"),
                   _b64("[true, null]"), _b64('{"id": 1}'), _b64("[]"), _b64("[1, 2, 3]"), _b64("[[1], [2]]")]


def _mutate(rng: random.Random, document: Any, times: int, value: Any = None) -> None:
    """Replace, add or delete `times` fields somewhere in `document` (in place)."""
    for _ in range(times):
        containers = list(_containers(document))
        if not containers:
            return
        container = rng.choice(containers)
        new = value if value is not None else copy.deepcopy(rng.choice(HOSTILE_VALUES))
        if isinstance(container, dict):
            keys = list(container)
            action = rng.random()
            if keys and action < 0.7:
                container[rng.choice(keys)] = new
            elif keys and action < 0.85:
                del container[rng.choice(keys)]
            else:
                container[rng.choice(["id", "type", "data", "events", "extra", "", "\u0000", "__proto__"])] = new
        elif container:
            container[rng.randrange(len(container))] = new
        else:
            container.append(new)


def _string_fields(document: Any):
    """(container, key) of every string value in `document`."""
    for container in _containers(document):
        keys = container.keys() if isinstance(container, dict) else range(len(container))
        yield from ((container, key) for key in keys if isinstance(container[key], str))


def _containers(document: Any):
    if isinstance(document, dict | list):
        yield document
        for child in document.values() if isinstance(document, dict) else document:
            yield from _containers(child)


EVENT = {"id": "evt-fuzz", "type": "todo.updated", "timestamp": "2026-11-24T10:00:00Z", "agent_id": "openclaw-main",
         "data": {"sessionID": "ses-1", "todos": [{"id": "1", "content": "Write", "status": "pending",
                                                   "priority": "high"}]}}
TASK_EVENT = {"id": "evt-task", "type": "task.updated", "timestamp": 1764000000000,
              "data": {"id": "task-1", "status": "blocked", "blocked_reason": "Which tag?"}}
SESSION_EVENT = {"id": "evt-ses", "type": "session.created", "timestamp": "2026-11-24T10:00:00Z",
                 "data": {"info": {"id": "ses-2", "title": "T", "parentID": "ses-1",
                                   "time": {"created": 1764000000000}}}}
MESSAGE_EVENT = {"id": "evt-msg", "type": "message.part.updated", "timestamp": "2026-11-24T10:00:00Z",
                 "data": {"part": {"id": "p1", "messageID": "m1", "sessionID": "ses-1", "type": "text", "text": "hi"}}}

# One valid event of each kind whose projection stores text.
VALID_EVENTS = [
    EVENT, SESSION_EVENT, MESSAGE_EVENT,
    {"id": "e", "type": "session.error", "timestamp": "2026-11-24T10:00:00Z",
     "data": {"sessionID": "ses-1", "error": {"name": "ProviderError", "data": {"message": "quota"}}}},
    {"id": "e", "type": "message.updated", "timestamp": "2026-11-24T10:00:00Z",
     "data": {"info": {"id": "m1", "sessionID": "ses-1", "role": "assistant", "modelID": "m", "providerID": "p"}}},
    {"id": "e", "type": "agent.registered", "timestamp": "2026-11-24T10:00:00Z",
     "data": {"id": "agent-x", "name": "X", "type": "sub-agent", "parent_agent_id": "openclaw-main",
              "soul_md": "# Soul", "skills": ["a"]}},
    {"id": "e", "type": "task.created", "timestamp": "2026-11-24T10:00:00Z",
     "data": {"id": "task-x", "agent_id": "openclaw-main", "title": "Do it", "priority": "low"}},
    {"id": "e", "type": "tool.execute.before", "timestamp": "2026-11-24T10:00:00Z",
     "data": {"tool": "bash", "sessionID": "ses-1", "callID": "c1", "args": {"command": "ls"}}},
    {"id": "e", "type": "question.asked", "timestamp": "2026-11-24T10:00:00Z",
     "data": {"id": "q1", "sessionID": "ses-1", "questions": [{"question": "Which tag?"}]}},
    {"id": "e", "type": "file.edited", "timestamp": "2026-11-24T10:00:00Z", "data": {"file": "src/a.py"}},
    {"id": "e", "type": "some.future.kind", "timestamp": "2026-11-24T10:00:00Z", "data": {"note": "raw"}},
]

# Text a valid event may carry anywhere a string goes.
HOSTILE_TEXT = ["\u0000", "a\u0000b", "x" * 10_000, "\u202e\u0645\u200b", "😀" * 50, "\U0001f600",
                "'; DROP TABLE agents; --", "<script>alert(1)</script>", "../../etc/passwd", "%00%ff",
                "\r\nX-Injected: 1", "\x1b[31mred", "NaN", "null", " ", "\t", "ses-1", "openclaw-main"]

# A plausible body per route: the fuzzer's starting point, so that mutations land deep in what a
# handler really reads.
BODIES: dict[str, Any] = {
    "/api/events": {"events": [EVENT, TASK_EVENT, SESSION_EVENT, MESSAGE_EVENT]},
    "/api/msgs": {"ids": [1, 2]},
    "/api/messages": {"ids": [1]},
    "/api/agent/{agent_id}/tasks": {"id": "task-new", "title": "Ship", "priority": "high",
                                    "linear_issue_id": "i-1", "project_id": "p-1"},
    "/api/agent/{agent_id}/tasks/{task_id}/unblock": {"reason": "Use v2"},
    "/api/agent/{agent_id}/tasks/{task_id}/cancel": {"reason": "Not needed"},
    "/api/alert-rules": {"id": "fuzz-rule", "trigger": "blocked", "priority_filter": "high", "delay_ms": 1000,
                         "channel": "in_app", "enabled": True},
    "/api/alert-rules/{rule_id}": {"delay_ms": 5000, "enabled": False, "channel": "push"},
    "/api/projects/{project_id}": {"prod_url": "https://example.com"},
    "/api/linear/sync": {"issue_id": "issue-1", "state_id": "state-1"},
    "/api/stream/token": {},
    "/api/linear/webhook": {"action": "create", "type": "Issue", "webhookTimestamp": 1764000000000,
                            "data": {"id": "i-1", "title": "T", "projectId": "proj-1", "teamId": "team-1",
                                     "stateId": "state-1", "priority": 2, "labels": [{"name": "bug"}]}},
}
