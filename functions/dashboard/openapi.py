"""The dashboard function's part of the OpenAPI document: the page and its static assets (public)."""

from __future__ import annotations

from shared.web.openapi import NO_AUTH, Schema, path_param, query_param

TAG = "page"

NOT_MODIFIED: Schema = {"description": "Not modified: the `If-None-Match` ETag is current."}
PAGE: Schema = {
    "description": "The dashboard page (it signs in and loads everything else through the API). "
                   "`Cache-Control: no-cache` with an ETag.",
    "content": {"text/html": {"schema": {"type": "string"}}},
}
ASSET: Schema = {
    "description": "A static file of the page. Under the current version's path "
                   "(`/assets/<version>/...`, as the page names them) `Cache-Control: public, max-age=31536000, "
                   "immutable`; otherwise `no-cache` with an ETag.",
    "content": {media: {"schema": {"type": "string"}} for media in (
        "text/javascript", "text/css", "image/svg+xml", "image/png", "image/x-icon", "font/woff2")},
}


def static_get(summary: str, ok: Schema, *, not_found: bool, parameters: list[Schema] | None = None,
               description: str | None = None) -> Schema:
    """GET and HEAD (the same answer without its body). The page needs no credential and no database,
    so none of the API's 401 or 503 answers apply."""
    responses: dict[str, Schema] = {"200": ok, "304": NOT_MODIFIED}
    if not_found:
        responses["404"] = {"$ref": "#/components/responses/NotFound"}
    operation: Schema = {"tags": [TAG], "summary": summary, "security": NO_AUTH, "responses": responses}
    if description:
        operation["description"] = description
    if parameters:
        operation["parameters"] = parameters
    return {"get": operation, "head": {**operation, "summary": f"{summary} (headers only)"}}


SCHEMAS: dict[str, Schema] = {}

PATHS: dict[str, Schema] = {
    "/": static_get("The dashboard page", PAGE, not_found=False),
    "/agents/{agent_id}": static_get(
        "The dashboard page, showing one agent (and `?task=`, one of its tasks)", PAGE, not_found=False,
        parameters=[path_param("agent_id", "The agent to show.", example="openclaw-main"),
                    query_param("task", "One of its tasks to show.")],
        description="Where a push notification's click leads (`DASHBOARD_PUBLIC_URL/agents/<agent>?task=<task>`)."),
    "/assets/{path}": static_get(
        "A static file of the page (JavaScript module, stylesheet, icon)", ASSET, not_found=True,
        parameters=[path_param("path", "`<version>/<file>` as the page names it, or `<file>`.",
                               example="app.js")]),
}
