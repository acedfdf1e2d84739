"""GET (and HEAD) of the page and its assets, with the caching and security headers a page needs."""

from __future__ import annotations

import falcon

from functions.dashboard.bundle import Bundle, StaticFile
from shared.web.auth import PUBLIC
from shared.web.errors import ApiError

# Versioned asset URLs never change content; everything else is revalidated (a cheap 304) on each use.
CACHE_FOREVER = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"

SECURITY_HEADERS = {
    # Everything comes from this origin; avatars may come from GitHub (or any https host).
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: https:; object-src 'none'; "
                               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    # The CSRF check falls back on Referer when a browser sends no Origin: keep it for this origin only.
    "Referrer-Policy": "same-origin",
}


def send(req: falcon.Request, resp: falcon.Response, file: StaticFile, cache_control: str) -> None:
    resp.set_headers(SECURITY_HEADERS)
    resp.set_header("Cache-Control", cache_control)
    body, etag, encoding = file.body, file.etag, None
    if file.gzipped is not None:
        resp.set_header("Vary", "Accept-Encoding")  # a shared cache must not hand gzip to a client that asked plain
        if accepts_gzip(req.get_header("Accept-Encoding")):
            body, etag, encoding = file.gzipped, file.gzip_etag, "gzip"
    resp.set_header("ETag", etag)
    if matches(req.get_header("If-None-Match"), etag):
        resp.status = falcon.HTTP_304  # no body, hence no Content-Type either
        return
    if encoding:
        resp.set_header("Content-Encoding", encoding)
    resp.content_type = file.content_type
    resp.data = body


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether Accept-Encoding names gzip with a weight above zero ("gzip;q=0" refuses it)."""
    for item in (accept_encoding or "").split(","):
        coding, _, parameters = item.partition(";")
        if coding.strip().lower() != "gzip":
            continue
        weight = parameters.strip().lower()
        if not weight.startswith("q="):
            return True
        try:
            return float(weight[2:]) > 0
        except ValueError:
            return False
    return False


def matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return etag in tags or "*" in tags


class PageResource:
    """GET / and GET /agents/{id}: the page (it shows the agent a deep link names)."""

    auth = PUBLIC

    def __init__(self, bundle: Bundle):
        self.bundle = bundle

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        send(req, resp, self.bundle.index, REVALIDATE)

    def on_get_agent(self, req: falcon.Request, resp: falcon.Response, agent_id: str) -> None:
        send(req, resp, self.bundle.index, REVALIDATE)

    on_head = on_get
    on_head_agent = on_get_agent


class AssetResource:
    """GET /assets/[<version>/]<path>."""

    auth = PUBLIC

    def __init__(self, bundle: Bundle):
        self.bundle = bundle

    def on_get(self, req: falcon.Request, resp: falcon.Response, path: str) -> None:
        file, versioned = self.bundle.asset(path)
        if file is None:
            raise ApiError(404, "not_found", f"Nothing is served at {req.path}.")
        send(req, resp, file, CACHE_FOREVER if versioned else REVALIDATE)

    on_head = on_get
