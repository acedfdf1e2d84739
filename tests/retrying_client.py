"""An agent-like ingest client for the reliability tests: sends its events and retries until each is acked.

It behaves as the ingest contract asks a client to: a request that got no answer (a refused or dropped
connection, a timeout) or a non-2xx answer is sent again, unchanged — the same event ids — until it is
answered 202 or the deadline passes. The server must then store every event once, however many times
it was sent. Runs in its own process (`run_client`), so eight of them really are concurrent.
"""

from __future__ import annotations

import http.client
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504}) | frozenset(range(500, 600))


@dataclass
class ClientReport:
    client: int
    acked: list[str] = field(default_factory=list)  # event ids answered 202
    requests: int = 0  # HTTP requests attempted, retries included
    statuses: Counter = field(default_factory=Counter)  # every answer, by status
    connection_errors: int = 0  # requests that got no answer at all
    retries: int = 0
    acked_as_duplicates: int = 0  # events a 202 reported as already stored (a retry after a lost answer)
    refused: list[tuple[int, str]] = field(default_factory=list)  # 4xx answers: the client's fault, not retried
    unacked: list[str] = field(default_factory=list)  # still unacknowledged at the deadline


def client_events(client: int, count: int) -> list[dict[str, Any]]:
    """`count` events with ids unique across clients, alternating two kinds whose projections show a
    double application: a todo list (one todo row per session) and a session error (which appends an
    error message every time it is applied — applied twice, it leaves two rows)."""
    events = []
    for n in range(count):
        event_id = f"c{client}-{n:05d}"
        session_id = f"ses-{event_id}"
        if n % 2 == 0:
            data = {"sessionID": session_id,
                    "todos": [{"id": "1", "content": event_id, "status": "pending", "priority": "high"}]}
            kind = "todo.updated"
        else:
            data = {"sessionID": session_id, "error": {"name": "ProviderError", "data": {"message": event_id}}}
            kind = "session.error"
        events.append({"id": event_id, "type": kind, "timestamp": "2026-11-24T10:00:00Z",
                       "agent_id": f"client-{client}", "data": data})
    return events


def request_plan(events: list[dict[str, Any]], batch_size: int, singles_per_batch: int) -> list[list[dict]]:
    """Groups of events, one group a request: a batch of `batch_size`, then `singles_per_batch` events
    one by one, and again."""
    plan: list[list[dict]] = []
    position = 0
    while position < len(events):
        plan.append(events[position:position + batch_size])
        position += batch_size
        for _ in range(singles_per_batch):
            if position < len(events):
                plan.append([events[position]])
                position += 1
    return plan


class Connection:
    """One keep-alive connection, replaced after any failure (the server may have closed it)."""

    def __init__(self, port: int, timeout_s: float):
        self.port = port
        self.timeout_s = timeout_s
        self.http: http.client.HTTPConnection | None = None

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if self.http is None:
            self.http = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout_s)
        try:
            self.http.request("POST", path, body=body, headers=headers)
            response = self.http.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    def close(self) -> None:
        if self.http is not None:
            self.http.close()
            self.http = None


def run_client(client: int, port: int, api_key: str, plan: list[list[dict]], deadline_s: float,
               acked_counter, reports) -> None:
    """Send every request of `plan`, retrying each until 202; put a `ClientReport` on `reports`.

    `acked_counter` (a shared integer) counts acked events across clients, so the test can time a crash."""
    report = ClientReport(client)
    connection = Connection(port, timeout_s=10)
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    deadline = time.monotonic() + deadline_s
    try:
        for group in plan:
            ids = [event["id"] for event in group]
            body = json.dumps(group[0] if len(group) == 1 else {"events": group}).encode()
            if send_until_acked(connection, body, headers, report, deadline):
                report.acked += ids
                with acked_counter.get_lock():
                    acked_counter.value += len(ids)
            else:
                report.unacked += ids
    finally:
        connection.close()
        reports.put(report)


def send_until_acked(connection: Connection, body: bytes, headers: dict[str, str], report: ClientReport,
                     deadline: float) -> bool:
    attempt = 0
    while time.monotonic() < deadline:
        if attempt:
            report.retries += 1
            time.sleep(min(0.02 * attempt, 0.5))
        attempt += 1
        report.requests += 1
        try:
            status, answer = connection.post("/api/events", body, headers)
        except (OSError, http.client.HTTPException):
            report.connection_errors += 1
            continue
        report.statuses[status] += 1
        if status == 202:
            report.acked_as_duplicates += json.loads(answer)["duplicates"]
            return True
        if status not in RETRYABLE_STATUSES:
            report.refused.append((status, answer.decode(errors="replace")[:200]))
            return False
    return False
