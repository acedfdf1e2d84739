"""GET /api/health: is the bundle able to serve? Public, so a monitor needs no credential.

`200` whenever the database answers; `503` when it does not (unreadable, locked past the busy
timeout, schema behind). Linear and Temporal are optional: their trouble shows in the body, never in
the status. It exposes no secret: versions, ages, counts, Temporal's address, and Linear's own error
message (which names the problem, never the credential).
"""

from __future__ import annotations

import logging
import time

import falcon
import peewee

from shared.agents.temporal import temporal_health
from shared.clock import iso_from_unix
from shared.config import Settings
from shared.linear import cache as linear_cache
from shared.linear.oauth import linear_available
from shared.store.db import database
from shared.store.migrations import LATEST_VERSION, current_version
from shared.web.auth import PUBLIC
from shared.web.openapi import NO_AUTH, OPTIONAL_TEXT, TIME, Schema, json_response, nullable, obj, operation, ref
from shared.web.webapp import function_app

log = logging.getLogger(__name__)


class HealthResource:
    auth = PUBLIC
    connects_itself = True  # a database it cannot connect to is reported, not raised

    def __init__(self, settings: Settings, clock=time.time):
        self.settings = settings
        self.clock = clock

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        database_status = database_health()
        usable = database_status["ok"]
        resp.media = {"status": "ok" if usable else "unavailable", "database": database_status,
                      "feed": feed_health() if usable else None,
                      "linear": linear_health(self.settings, self.clock()) if usable else None,
                      "temporal": temporal_health(self.settings)}
        resp.status = falcon.HTTP_200 if usable else falcon.HTTP_503


def database_health() -> dict:
    """Connect and read the schema version (waiting at most the busy timeout); how long that took."""
    started = time.perf_counter()
    try:
        database.connect(reuse_if_open=True)
        version = current_version()
    except peewee.PeeweeException as error:
        log.warning("health check: database unusable: %s", error)
        return {"ok": False, "error": "the database cannot be read", "latency_ms": _ms_since(started)}
    latency_ms = _ms_since(started)
    if version < LATEST_VERSION:
        return {"ok": False, "schema_version": version, "latest_version": LATEST_VERSION, "latency_ms": latency_ms,
                "error": "the schema is behind: run `python -m deploy.prepare`"}
    return {"ok": True, "schema_version": version, "latency_ms": latency_ms}


# The change feed's size. MIN and MAX as two subqueries: each is then one index probe, where one
# SELECT MIN(id), MAX(id) scans the table. COUNT(*) walks the smallest index (~6 ms a million rows).
FEED_SIZE = "SELECT (SELECT COUNT(*) FROM changes), (SELECT MIN(id) FROM changes), (SELECT MAX(id) FROM changes)"


def feed_health() -> dict:
    """The change feed's size: how many changes it holds, and the oldest and newest ids."""
    rows, oldest, newest = database.execute_sql(FEED_SIZE).fetchone()
    return {"rows": rows, "oldest_id": oldest, "newest_id": newest}


def linear_health(settings: Settings, now: float) -> dict:
    """Whether Linear is set up, and how the last sync went (`ok` is false after a failed sync)."""
    if not linear_available(settings):
        return {"configured": False, "webhook": bool(settings.linear_webhook_secret)}
    state = linear_cache.sync_state()
    last_success = state.get("last_success_at")
    failed = (state.get("last_error_at") or 0) > (last_success or 0)
    return {"configured": True, "webhook": bool(settings.linear_webhook_secret), "ok": not failed,
            "last_sync_at": iso_from_unix(last_success),
            "last_sync_age_s": round(now - last_success) if last_success else None,
            "last_result": state.get("last_result"),
            "last_error": state.get("last_error") if failed else None,
            "last_error_at": iso_from_unix(state.get("last_error_at")) if failed else None}


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def create_app(settings: Settings | None = None) -> falcon.App:
    settings = settings or Settings.from_env()
    app = function_app(settings)
    app.add_route("/api/health", HealthResource(settings))
    return app


# Its part of the OpenAPI document (deploy/openapi.py composes it with the functions' parts).
SCHEMAS: dict[str, Schema] = {
    "Health": obj({
        "status": {"enum": ["ok", "unavailable"]},
        "database": obj({"ok": {"type": "boolean"}, "schema_version": {"type": "integer"},
                         "latest_version": {"type": "integer"}, "error": {"type": "string"},
                         "latency_ms": {"type": "number", "description": "how long the check's read took"}},
                        optional=["schema_version", "latest_version", "error"]),
        "feed": nullable(obj({"rows": {"type": "integer"}, "oldest_id": {"type": ["integer", "null"]},
                              "newest_id": {"type": ["integer", "null"]}})),
        "linear": nullable(obj({"configured": {"type": "boolean"}, "webhook": {"type": "boolean"},
                                "ok": {"type": "boolean"}, "last_sync_at": TIME,
                                "last_sync_age_s": {"type": ["integer", "null"]},
                                "last_result": {"type": ["object", "null"],
                                                "description": "what the last successful sync did"},
                                "last_error": OPTIONAL_TEXT, "last_error_at": TIME},
                               optional=["ok", "last_sync_at", "last_sync_age_s", "last_result", "last_error",
                                         "last_error_at"])),
        "temporal": obj({"configured": {"type": "boolean"}, "reachable": {"type": "boolean"},
                         "address": {"type": "string"}, "namespace": {"type": "string"}, "error": {"type": "string"}},
                        optional=["address", "namespace", "error"]),
    }),
}

PATHS: dict[str, Schema] = {
    "/api/health": {"get": operation(
        "Is the bundle able to serve?", tag="operations", security=NO_AUTH,
        description="Linear and Temporal trouble shows in their sections but stays 200.",
        responses={200: json_response("Healthy", ref("Health")),
                   503: json_response("The database is not usable: unreadable, locked past the busy timeout, "
                                      "or its schema behind",
                                      {"anyOf": [ref("Health"), ref("Error")]})})},
}
