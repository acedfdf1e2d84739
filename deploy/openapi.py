"""GET /api/openapi.json: the OpenAPI 3.1 document of everything the mount serves. Public.

Each function documents its own routes in `functions/<name>/openapi.py` (`PATHS` and `SCHEMAS`, made
with `shared.web.openapi`), and the mount's own apps do the same in their module (`deploy/health.py`, this
one). Only `deploy/` composes them, so no function imports another. `tests/test_openapi_routes.py`
fails when a route and the document disagree.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import falcon

from shared.config import Settings
from shared.web import openapi
from shared.web.auth import PUBLIC
from shared.web.openapi import Schema, json_response, obj, operation
from shared.web.webapp import function_app

TITLE = "OpenCode Dashboard"
VERSION = "0.1.0"
DESCRIPTION = (
    "Lets one person watch and steer their AI coding agents. Agents POST events with the API key; "
    "everything else under /api takes the dashboard token (or a browser's session). Every error, from "
    "every route, is `{\"error\": {\"code\", \"message\", \"field\"?}}`; an unknown path is a JSON 404 and a "
    "method a route does not serve a JSON 405 (every route also answers OPTIONS with its `Allow` header)."
)


@dataclass(frozen=True)
class Part:
    """One module's part of the document: `source` is the file to edit, for messages."""

    source: str
    paths: dict[str, Schema]
    schemas: dict[str, Schema]


def part_of(module: ModuleType) -> Part:
    """A function package's part is its `openapi` module; any other module (deploy/health.py) is its own."""
    if hasattr(module, "__path__"):
        module = importlib.import_module(f"{module.__name__}.openapi")
    source = module.__name__.replace(".", "/") + ".py"
    return Part(source, module.PATHS, module.SCHEMAS)


def compose(parts: Iterable[Part]) -> dict[str, Any]:
    """The whole document. Two parts may not claim one path or one schema name."""
    components = openapi.components()
    paths: dict[str, Schema] = {}
    owners: dict[str, str] = {}
    for part in parts:
        for path, item in part.paths.items():
            if path in paths:
                raise ValueError(f"{path} is documented twice: in {owners[path]} and {part.source}")
            paths[path], owners[path] = item, part.source
        for name, schema in part.schemas.items():
            if name in components["schemas"]:
                raise ValueError(f"schema {name!r} is defined twice (again in {part.source})")
            components["schemas"][name] = schema
    return {"openapi": openapi.OPENAPI_VERSION,
            "info": {"title": TITLE, "version": VERSION, "description": DESCRIPTION},
            "servers": [{"url": "/"}],
            "paths": dict(sorted(paths.items())),
            "components": components}


SCHEMAS: dict[str, Schema] = {}
PATHS: dict[str, Schema] = {
    "/api/openapi.json": {"get": operation(
        "This document", tag="operations", security=openapi.NO_AUTH,
        responses={200: json_response("The OpenAPI 3.1 document", obj({}, extra=True))})},
}


class OpenApiResource:
    auth = PUBLIC

    def __init__(self, document: dict[str, Any]):
        self.body = json.dumps(document, separators=(",", ":")).encode()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.data = self.body
        resp.content_type = falcon.MEDIA_JSON


def create_app(settings: Settings, modules: Iterable[ModuleType]) -> falcon.App:
    """Serve the document composed of `modules`' parts (the mount passes every app it mounts)."""
    app = function_app(settings)
    app.add_route("/api/openapi.json", OpenApiResource(compose(part_of(module) for module in modules)))
    return app
