"""A loopback HTTP proxy in front of the real server that misbehaves on cue, for the delivery tests.

Each request takes the next step of `plan` (then plain forwarding once the plan is used up):
- "forward": pass it to the server and its answer back;
- "lose_answer": pass it to the server (which applies it), then hang up without answering — what a
  client sees when a connection drops after the server committed;
- `(status, headers)`: answer that status in the project's error shape without asking the server.
Besides, a batch of events holding one of `failing_ids` is answered 500 `internal_error` every time, as
the server answers an event it fails on (whatever the plan says; the plan is not used up by it).
Every request that reached the proxy is kept in `seen`, as (path, parsed JSON body), when it came in
`seen_at` (time.monotonic()) and its body's size in bytes in `seen_bytes`.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FlakyProxy:
    def __init__(self, target_port: int, plan: list[Any] | None = None, failing_ids: frozenset[str] = frozenset()):
        self.target_port = target_port
        self.plan = list(plan or [])
        self.failing_ids = failing_ids
        self.seen: list[tuple[str, Any]] = []
        self.seen_at: list[float] = []
        self.seen_bytes: list[int] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FlakyProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def next_step(self, path: str, body: bytes) -> Any:
        document = json.loads(body) if body else None
        with self._lock:
            self.seen.append((path, document))
            self.seen_at.append(time.monotonic())
            self.seen_bytes.append(len(body))
            if self.failing_ids & set(event_ids(document)):
                return (500, {})
            return self.plan.pop(0) if self.plan else "forward"

    def _handler_class(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet: the test reports what matters
                pass

            def do_GET(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                step = proxy.next_step(self.path, body)
                if isinstance(step, tuple):
                    status, headers = step
                    code = "internal_error" if status == 500 else "unavailable"
                    self._answer(status, headers, json.dumps(
                        {"error": {"code": code, "message": "the proxy says so"}}).encode())
                    return
                status, headers, answer = self._forward(body)
                if step == "lose_answer":
                    self.close_connection = True  # the server applied it; the client never hears back
                    return
                self._answer(status, headers, answer)

            def _forward(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
                connection = http.client.HTTPConnection("127.0.0.1", proxy.target_port, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() in (
                        "authorization", "x-api-key", "content-type")}
                    connection.request(self.command, self.path, body=body or None, headers=headers)
                    response = connection.getresponse()
                    kept = {k: v for k, v in response.getheaders() if k.lower() in ("content-type", "retry-after")}
                    return response.status, kept, response.read()
                finally:
                    connection.close()

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in ({"Content-Type": "application/json"} | headers).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


def event_ids(document: Any) -> list[str]:
    """The ids of the events in a request body: a batch's or a single event's."""
    if not isinstance(document, dict):
        return []
    events = document.get("events", [document])
    return [event.get("id") for event in events if isinstance(event, dict)] if isinstance(events, list) else []
