"""The base every function's `create_app` starts from: the same middleware, errors and options."""

from __future__ import annotations

import falcon

from shared.config import Settings
from shared.store.db import DatabaseSession, open_database
from shared.web.auth import Authentication
from shared.web.errors import install_error_handling
from shared.web.json_body import BodyLimit
from shared.web.proxies import TrustedProxies


def function_app(settings: Settings) -> falcon.App:
    """A Falcon app with the house rules: the client, scheme and host settled (proxies believed only when
    trusted), body limit, a connection per request, authentication, and every error in the one JSON
    shape. The caller adds its routes."""
    open_database(settings)
    app = falcon.App(middleware=[
        TrustedProxies(settings.trusted_proxies, settings.dashboard_public_url),
        BodyLimit(settings.max_body_bytes), DatabaseSession(), Authentication(settings),
    ])
    app.req_options.strip_url_path_trailing_slash = True
    install_error_handling(app)
    return app
