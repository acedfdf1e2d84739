"""A stand-in for Linear's GraphQL API: answers the sync's queries and the card move from memory.

It implements the part of Linear's contract the dashboard uses — the `issues`, `projects`,
`workflowStates` and `cycles` connections with `first`/`after` cursor pagination, `pageInfo`, `includeArchived` and
the filters the sync sends (`updatedAt: {gt}`, `project: {null}`, `team`/`accessibleTeams`, `id: {in}`),
and `issueUpdate(id:, input: {stateId})` — and answers in Linear's shape (`{"data": {...}}`, errors in
`errors[]`). Tests mount it with `responses`; bench/linear_sync.py serves it over HTTP on loopback.
"""

from __future__ import annotations

import http.server
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

ROOTS = ("workflowStates", "projects", "issues", "cycles")
_ROOT_PATTERN = re.compile(r"\b(workflowStates|projects|issues|cycles)\(first:")


class FakeLinear:
    def __init__(self, states: list[dict] | None = None, projects: list[dict] | None = None,
                 issues: list[dict] | None = None, api_key: str | None = None, cycles: list[dict] | None = None):
        self.data: dict[str, list[dict[str, Any]]] = {
            "workflowStates": list(states or []), "projects": list(projects or []), "issues": list(issues or []),
            "cycles": list(cycles or [])}
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []  # every request body received
        self.lock = threading.Lock()

    # What a request asks for ----------------------------------------------------------------------------

    def answer(self, body: dict[str, Any], authorization: str | None = None) -> tuple[int, dict[str, str], Any]:
        """(status, headers, JSON body) for one GraphQL request, as Linear would answer it."""
        with self.lock:
            self.requests.append(body)
            headers = {"Content-Type": "application/json; charset=utf-8", "X-RateLimit-Requests-Limit": "5000",
                       "X-RateLimit-Requests-Remaining": str(max(0, 5000 - len(self.requests)))}
            if self.api_key is not None and authorization != self.api_key:
                return 400, headers, {"errors": [{"message": "Authentication required, not authenticated",
                                                  "extensions": {"code": "AUTHENTICATION_ERROR"}}]}
            query, variables = body.get("query", ""), body.get("variables") or {}
            if "issueUpdate(" in query:
                return 200, headers, {"data": {"issueUpdate": self._move(variables)}}
            roots = _ROOT_PATTERN.findall(query)
            return 200, headers, {"data": {root: self._page(root, variables) for root in roots}}

    def _page(self, root: str, variables: dict[str, Any]) -> dict[str, Any]:
        nodes = [node for node in self.data[root]
                 if _matches(node, variables.get(f"{root}Filter") or {})
                 and (variables.get(f"{root}IncludeArchived") or not node.get("archivedAt"))]
        after = variables.get(f"{root}After")
        start = next((index + 1 for index, node in enumerate(nodes) if node["id"] == after), 0) if after else 0
        first = variables.get(f"{root}First") or 50
        page = nodes[start:start + first]
        return {"nodes": page, "pageInfo": {"hasNextPage": start + first < len(nodes),
                                            "endCursor": page[-1]["id"] if page else None}}

    def _move(self, variables: dict[str, Any]) -> dict[str, Any]:
        issue = next((node for node in self.data["issues"] if node["id"] == variables.get("id")), None)
        state = next((node for node in self.data["workflowStates"] if node["id"] == variables.get("stateId")), None)
        if issue is None or state is None:
            return {"success": False, "issue": None, "lastSyncId": 0}
        issue["state"] = {key: state[key] for key in ("id", "name", "type", "color")}
        return {"success": True, "issue": issue, "lastSyncId": 1}

    # Serving it --------------------------------------------------------------------------------------------

    def responses_callback(self, request) -> tuple[int, dict[str, str], str]:
        """For `responses.add_callback(responses.POST, url, callback=fake.responses_callback)`."""
        status, headers, body = self.answer(json.loads(request.body), request.headers.get("Authorization"))
        return status, headers, json.dumps(body)

    @contextmanager
    def serve(self) -> Iterator[str]:
        """Serve over HTTP on 127.0.0.1 (a free port) in a thread; yields the GraphQL URL."""
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status, headers, body = fake.answer(json.loads(self.rfile.read(length)),
                                                    self.headers.get("Authorization"))
                payload = json.dumps(body).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/graphql"
        finally:
            server.shutdown()
            server.server_close()


def _matches(node: dict[str, Any], condition: dict[str, Any]) -> bool:
    """The subset of Linear's filter language the sync uses."""
    for key, test in condition.items():
        if key == "updatedAt" and not node.get("updatedAt", "") > test["gt"]:
            return False
        if key == "project" and "null" in test and (node.get("project") is None) != test["null"]:
            return False
        if key == "team" and node.get("team", {}).get("id") not in test["id"]["in"]:
            return False
        if key == "accessibleTeams":
            team_ids = {team["id"] for team in node.get("teams", {}).get("nodes", [])}
            if not team_ids & set(test["some"]["id"]["in"]):
                return False
        if key == "id" and node["id"] not in test["in"]:
            return False
    return True
