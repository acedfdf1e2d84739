"""GET /api/health: is the bundle able to serve? Public, so a monitor needs no credential."""

from __future__ import annotations

import logging

import falcon
import peewee

from shared import linear_cache
from shared.auth import PUBLIC
from shared.clock import iso_from_unix
from shared.config import Settings
from shared.migrations import LATEST_VERSION, current_version
from shared.openapi import NO_AUTH, OPTIONAL_TEXT, TIME, Schema, json_response, nullable, obj, operation, ref
from shared.temporal import temporal_health
from shared.webapp import function_app

log = logging.getLogger(__name__)


class HealthResource:
    auth = PUBLIC

    def __init__(self, settings: Settings):
        self.settings = settings

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        database = database_health()
        resp.media = {"status": "ok" if database["ok"] else "unavailable", "database": database,
                      "linear": linear_health(self.settings) if database["ok"] else None,
                      "temporal": temporal_health(self.settings)}
        # Linear and Temporal are optional: their failures show here but never make the bundle unhealthy.
        resp.status = falcon.HTTP_200 if database["ok"] else falcon.HTTP_503


def database_health() -> dict:
    try:
        version = current_version()
    except peewee.PeeweeException as error:
        log.warning("health check: database unusable: %s", error)
        return {"ok": False, "error": "the database cannot be read"}
    if version < LATEST_VERSION:
        return {"ok": False, "schema_version": version, "latest_version": LATEST_VERSION,
                "error": "the schema is behind: run `python -m shared.migrations`"}
    return {"ok": True, "schema_version": version}


def linear_health(settings: Settings) -> dict:
    """Whether Linear is set up, and how the last sync went (`ok` is false after a failed sync)."""
    if not settings.linear_configured:
        return {"configured": False, "webhook": bool(settings.linear_webhook_secret)}
    state = linear_cache.sync_state()
    failed = (state.get("last_error_at") or 0) > (state.get("last_success_at") or 0)
    return {"configured": True, "webhook": bool(settings.linear_webhook_secret), "ok": not failed,
            "last_sync_at": iso_from_unix(state.get("last_success_at")),
            "last_error": state.get("last_error") if failed else None}


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
                         "latest_version": {"type": "integer"}, "error": {"type": "string"}},
                        optional=["schema_version", "latest_version", "error"]),
        "linear": nullable(obj({"configured": {"type": "boolean"}, "webhook": {"type": "boolean"},
                                "ok": {"type": "boolean"}, "last_sync_at": TIME, "last_error": OPTIONAL_TEXT},
                               optional=["ok", "last_sync_at", "last_error"])),
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
                   503: json_response("The database is not usable (the error shape when it cannot even connect)",
                                      {"anyOf": [ref("Health"), ref("Error")]})})},
}
