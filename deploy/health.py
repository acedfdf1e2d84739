"""GET /api/health: is the bundle able to serve? Public, so a monitor needs no credential."""

from __future__ import annotations

import logging

import falcon
import peewee

from shared.auth import PUBLIC
from shared.config import Settings
from shared.migrations import LATEST_VERSION, current_version
from shared.webapp import function_app

log = logging.getLogger(__name__)


class HealthResource:
    auth = PUBLIC

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        database = database_health()
        resp.media = {"status": "ok" if database["ok"] else "unavailable", "database": database}
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


def create_app(settings: Settings | None = None) -> falcon.App:
    app = function_app(settings or Settings.from_env())
    app.add_route("/api/health", HealthResource())
    return app
