"""Where a request was served and where it came from: HTTPS detection and the same-origin (CSRF) check.

A browser sends the session cookie with any request to us, whoever's page makes it. For writes we
therefore also want proof the request came from one of our own pages: the `Origin` header (or, when a
browser leaves it out, `Referer`), which a page on another site cannot forge. This server's own scheme
and host are the request's as `shared.web.proxies` settled them: a trusted proxy's X-Forwarded-Proto
and -Host, else the connection's and the Host header; never a forwarding header from anyone else.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import falcon

from shared.web.errors import ApiError

DEFAULT_PORTS = {"http": 80, "https": 443}


def served_over_https(req: falcon.Request) -> bool:
    """Whether the browser reached us over https: directly, or through a trusted proxy that says so."""
    return req.scheme == "https"


def origin_of(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of a URL, the port filled in; None for `null` or anything unparseable."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


def request_origin(req: falcon.Request) -> tuple[str, str, int] | None:
    """This server's origin as the browser sees it: the Host (or a trusted proxy's X-Forwarded-Host) and port."""
    return origin_of(f"{req.scheme}://{req.netloc}")


def require_same_origin(req: falcon.Request) -> None:
    """403 `csrf` unless the request's Origin (else Referer) is this server's own scheme://host:port."""
    source = req.get_header("Origin") or req.get_header("Referer")
    own = request_origin(req)
    if source is None or own is None or origin_of(source) != own:
        raise ApiError(403, "csrf", "A request authenticated by the session cookie, or a sign-in form, must come "
                       "from this dashboard's own pages (its Origin or Referer must be this server); send "
                       "`Authorization: Bearer ...` from anywhere else. Behind a proxy, set "
                       "DASHBOARD_TRUSTED_PROXIES and DASHBOARD_PUBLIC_URL (docs/security.md).")
