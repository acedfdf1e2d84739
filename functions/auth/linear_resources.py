"""Connecting Linear over OAuth2 (`/api/auth/linear...`): the authorize redirect, the callback that
stores the tokens encrypted, the connection's status, and disconnecting.

Only someone signed in to the dashboard can connect or disconnect Linear; the connection then serves
the sync and the card move for the whole installation (see shared.linear.oauth).
"""

from __future__ import annotations

import falcon
import requests

from functions.auth import oauth_state
from shared.config import Settings
from shared.encryption import encryption_available
from shared.linear import oauth as linear_oauth
from shared.store.db import write_transaction
from shared.web.auth import DASHBOARD
from shared.web.errors import ApiError
from shared.web.sessions import ensure_local_user

PROVIDER = "linear"


class LinearConnectionResource:
    """GET|DELETE /api/auth/linear; GET /api/auth/linear/login; GET /api/auth/linear/callback."""

    auth = DASHBOARD

    def __init__(self, settings: Settings, http: requests.Session | None = None):
        self.settings = settings
        self.http = http or requests.Session()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"linear": linear_oauth.connection_json(self.settings)}

    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        if not linear_oauth.disconnect(self.http, self.settings):
            raise ApiError(404, "not_found", "Linear is not connected over OAuth.")
        resp.status = falcon.HTTP_204

    def on_get_login(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.require_configured()
        state = oauth_state.begin(self.settings, PROVIDER, req, resp)
        resp.status = falcon.HTTP_302
        resp.location = linear_oauth.authorize_url(self.settings, state)

    def on_get_callback(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.require_configured()
        if error := req.get_param("error"):
            if error == "access_denied":
                raise ApiError(403, "linear_denied", "You declined to connect Linear; nothing was changed.")
            raise ApiError(400, "linear_refused", f"Linear refused the connection ({error}): "
                           f"{req.get_param('error_description') or 'no reason given'}.")
        code = oauth_state.finish(self.settings, PROVIDER, req, resp)
        try:
            tokens = linear_oauth.exchange_code(self.http, self.settings, code)
        except linear_oauth.LinearOAuthError as failure:
            raise ApiError(failure.status, failure.code, f"Connecting Linear failed: {failure.message}") from None
        session = req.context.session
        with write_transaction():
            connected_by = session.user_id if session is not None else ensure_local_user()
            linear_oauth.save_connection(self.settings, tokens, connected_by)
        resp.status = falcon.HTTP_302
        resp.location = "/"

    def require_configured(self) -> None:
        if not self.settings.linear_oauth_configured:
            raise ApiError(503, "linear_oauth_not_configured", "Connecting Linear over OAuth is not configured: "
                           "set LINEAR_CLIENT_ID and LINEAR_CLIENT_SECRET (an OAuth2 application in Linear).")
        if not encryption_available(self.settings):
            raise ApiError(503, "secret_key_required", "Set DASHBOARD_SECRET_KEY first: Linear's tokens are stored "
                           "encrypted under it, and a key generated into the database would protect nothing.")
