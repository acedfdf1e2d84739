"""Helpers the tests share: credentials, event builders, and the canonical error check."""

from __future__ import annotations

import itertools
from typing import Any

API_KEY = "agent-key-for-tests-0123456789"
DASHBOARD_TOKEN = "dashboard-token-for-tests-0123456789"
AGENT = {"Authorization": f"Bearer {API_KEY}"}
DASHBOARD = {"Authorization": f"Bearer {DASHBOARD_TOKEN}"}

_ids = itertools.count(1)


def event(type: str, data: dict[str, Any], *, id: str | None = None, agent_id: str | None = "openclaw-main",
          timestamp: Any = "2026-11-24T10:00:00Z") -> dict[str, Any]:
    body = {"id": id or f"evt-{next(_ids)}", "type": type, "timestamp": timestamp, "data": data}
    if agent_id is not None:
        body["agent_id"] = agent_id
    return body


def assert_canonical_error(response, status: int, code: str | None = None, field: str | None = None) -> dict:
    """Every error from every function has one JSON shape: {"error": {"code", "message", "field"?}}."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) <= {"code", "message", "field"}
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    if field is not None:
        assert error.get("field") == field, error
    return error
