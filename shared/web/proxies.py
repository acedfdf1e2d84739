"""Who is asking and how they reached us: a proxy's forwarding headers are believed only from the proxies
the operator names (DASHBOARD_TRUSTED_PROXIES), never from anyone else.

Behind a reverse proxy (Caddy, nginx, Tailscale serve) every request comes from the proxy's address;
the proxy says who its client was (`X-Forwarded-For`), whether the browser used https
(`X-Forwarded-Proto`) and which host it asked for (`X-Forwarded-Host`). Any client can send those
headers too. Believed from anyone, they would let a client pick its own address (and so escape the
limit on failed sign-ins, or lock someone else out), pass the same-origin check from another host, or
have a Secure cookie set over plain http.

The `Host` header itself is the client's word as well. A page on another site can make a browser send
ours any name it likes (DNS rebinding: its own name, pointed at our address), and that name would then
pass the same-origin check with that page's Origin. So a Host that does not come through a trusted
proxy is believed only when no other site can have chosen it: an IP address, `localhost`, or the host
of DASHBOARD_PUBLIC_URL; any other is taken to be DASHBOARD_PUBLIC_URL's.

`TrustedProxies` runs first in every function: it settles the client's address, the scheme and the
host once, into the WSGI environ (REMOTE_ADDR, wsgi.url_scheme, HTTP_HOST), and removes every
forwarding header. Everything after it (the sign-in limit, the same-origin check, the Secure cookie)
reads `req.remote_addr`, `req.scheme` and `req.netloc`, and nothing can read a forwarding header that
was not believed. (OAuth redirect URLs do not depend on the request at all: DASHBOARD_PUBLIC_URL.)
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

import falcon

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Every header a proxy (or a client pretending to be one) forwards the original request's details in,
# as WSGI names them. `Forwarded` (RFC 7239) is not read, and is removed like the others.
FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST",
                      "HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_PREFIX", "HTTP_X_FORWARDED_SSL",
                      "HTTP_X_FORWARDED_PROTOCOL", "HTTP_X_REAL_IP", "HTTP_FORWARDED")


class TrustedProxies:
    """Falcon middleware: the request's client, scheme and host, from a trusted proxy's headers or else
    from the connection itself; forwarding headers removed either way."""

    def __init__(self, trusted: Iterable[Network], public_url: str):
        self.trusted = tuple(trusted)
        self.public_netloc = urlsplit(public_url).netloc
        self.public_host = _hostname(self.public_netloc)
        # Every request asks about its peer, nearly always one of a few addresses: parsing one costs more
        # than the rest of this middleware. Bounded, as forwarded hops are whatever a proxy was sent.
        self.is_trusted = functools.lru_cache(maxsize=1024)(self._is_trusted)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        env = req.env
        peer = env.get("REMOTE_ADDR", "")
        if self.is_trusted(peer):
            env["REMOTE_ADDR"] = self.client_behind(peer, _values(env.get("HTTP_X_FORWARDED_FOR")))
            scheme = (_values(env.get("HTTP_X_FORWARDED_PROTO")) or [""])[-1].lower()
            if scheme in ("http", "https"):
                env["wsgi.url_scheme"] = scheme
            host = (_values(env.get("HTTP_X_FORWARDED_HOST")) or [""])[-1]
            if host:
                env["HTTP_HOST"] = host
        elif "HTTP_HOST" in env and not self.unforgeable(env["HTTP_HOST"]):
            env["HTTP_HOST"] = self.public_netloc
        for name in FORWARDING_HEADERS:
            env.pop(name, None)

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # ::ffff:10.0.0.2, as a server listening on :: sees 10.0.0.2
        return any(ip in network for network in self.trusted)

    def unforgeable(self, host: str) -> bool:
        """Whether a Host header names us in a way no other site's page can make a browser send."""
        name = _hostname(host)
        if name is None:
            return False
        if name in ("localhost", self.public_host):
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True

    def client_behind(self, peer: str, forwarded_for: list[str]) -> str:
        """The nearest address in the X-Forwarded-For chain that is not a trusted proxy. Each proxy
        appends the address it was reached from, so reading from the right, the first untrusted one is
        the client; what lies left of it the client wrote itself. When a trusted proxy forwards something
        that is not an address, that proxy is the best we know."""
        client = peer
        for hop in reversed(forwarded_for):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                return client
            client = hop
            if not self.is_trusted(hop):
                return client
        return client


def _hostname(netloc: str) -> str | None:
    """The host of `host[:port]` (`[v6]:port` too), lower-cased; None when it is not one."""
    try:
        return urlsplit(f"//{netloc}").hostname
    except ValueError:
        return None


def _values(header: str | None) -> list[str]:
    """The comma-separated values of a header, stripped, empty ones dropped."""
    return [value.strip() for value in (header or "").split(",") if value.strip()]
