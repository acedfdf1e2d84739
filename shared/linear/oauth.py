"""The installation's Linear OAuth connection: the code exchange, the tokens encrypted at rest, their
refresh before expiry, and the credential the Linear client sends.

One connection per installation (row 1 of `linear_oauth_tokens`): the sync and the card move act for
the dashboard, not for whoever is signed in. Linear's access tokens last about a day and come with a
refresh token; every refresh returns a new refresh token, and the old one stops working shortly after.
So a refresh is claimed first (one process at a time does it, the others keep using the still-valid
token), starts REFRESH_MARGIN_S before expiry, and the new pair replaces the old one only if nobody
replaced it meanwhile (`generation`).

    python -m shared.linear.oauth --reencrypt   # after rotating DASHBOARD_SECRET_KEY
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any
from urllib.parse import urlencode

import requests

from shared.clock import iso_from_unix, now
from shared.config import Settings
from shared.encryption import EncryptionUnavailable, decrypt, encrypt, reencrypt
from shared.store.db import write_transaction
from shared.store.feed import record_change
from shared.store.models import LinearOAuthToken

log = logging.getLogger(__name__)

AUTHORIZE_URL = "https://linear.app/oauth/authorize"
TOKEN_URL = "https://api.linear.app/oauth/token"
REVOKE_URL = "https://api.linear.app/oauth/revoke"
TIMEOUT = (5.0, 15.0)
CONNECTION_ID = 1
# Refresh this long before the access token expires: the sync runs every minute, so there are many
# chances before it lapses, and a failed refresh still leaves a working token meanwhile.
REFRESH_MARGIN_S = 600
# A process that claimed a refresh and died releases its claim after this long.
REFRESH_CLAIM_S = 60


class LinearOAuthError(Exception):
    """Linear refused or could not be reached, or the stored tokens cannot be used. `status` and `code`
    are how a route reports it."""

    def __init__(self, message: str, *, status: int = 502, code: str = "linear_error"):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


def callback_url(settings: Settings) -> str:
    return f"{settings.dashboard_public_url}/api/auth/linear/callback"


def authorize_url(settings: Settings, state: str) -> str:
    return AUTHORIZE_URL + "?" + urlencode({
        "client_id": settings.linear_client_id, "redirect_uri": callback_url(settings), "response_type": "code",
        "scope": settings.linear_oauth_scope, "state": state})


def exchange_code(http: requests.Session, settings: Settings, code: str) -> dict[str, Any]:
    """Linear's token answer for an authorization code."""
    return _request_tokens(http, settings, {"grant_type": "authorization_code", "code": code,
                                            "redirect_uri": callback_url(settings)})


def save_connection(settings: Settings, tokens: dict[str, Any], connected_by: str | None) -> None:
    """Store a new connection (replacing any), its tokens encrypted. Must run in a write transaction."""
    at = now()
    values = {"connected_by": connected_by, "connected_at": at, "refreshed_at": None, "last_error": None,
              "last_error_at": None, **_encrypted(settings, tokens, at)}
    # An upsert both SQLite and PostgreSQL speak; a new generation, so a refresh of the old pair loses.
    LinearOAuthToken.insert(id=CONNECTION_ID, generation=1, **values).on_conflict(
        conflict_target=[LinearOAuthToken.id],
        update={**{getattr(LinearOAuthToken, name): value for name, value in values.items()},
                LinearOAuthToken.generation: LinearOAuthToken.generation + 1},
    ).execute()
    record_change("linear.connection", "connected", connection_json(settings))


def disconnect(http: requests.Session, settings: Settings) -> bool:
    """Forget the connection (and ask Linear to revoke its token, best effort); False if there was none."""
    row = LinearOAuthToken.get_or_none(LinearOAuthToken.id == CONNECTION_ID)
    if row is None:
        return False
    try:
        token = decrypt(settings, row.access_token)
        http.post(REVOKE_URL, data={"token": token}, timeout=TIMEOUT).raise_for_status()
    except (EncryptionUnavailable, requests.RequestException) as error:
        log.warning("Linear OAuth token not revoked at Linear (%s); it is forgotten here", error.__class__.__name__)
    with write_transaction():
        LinearOAuthToken.delete().where(LinearOAuthToken.id == CONNECTION_ID).execute()
        record_change("linear.connection", "disconnected", connection_json(settings))
    return True


def access_token(settings: Settings, http: requests.Session | None = None) -> str | None:
    """The connection's access token, refreshed first when it is about to expire; None when Linear is not
    connected over OAuth. Raises LinearOAuthError when it cannot be had."""
    row = LinearOAuthToken.get_or_none(LinearOAuthToken.id == CONNECTION_ID)
    if row is None:
        return None
    if row.refresh_token is not None and row.expires_at is not None and row.expires_at - now() <= REFRESH_MARGIN_S:
        row = _refresh(http or requests.Session(), settings, row)
    return _decrypt(settings, row.access_token)


def connected() -> bool:
    return LinearOAuthToken.select().where(LinearOAuthToken.id == CONNECTION_ID).exists()


def linear_available(settings: Settings) -> bool:
    """Whether the Linear API can be called: a connection, or a credential in the environment."""
    return settings.linear_configured or connected()


def connection_json(settings: Settings) -> dict[str, Any]:
    """What `GET /api/auth/linear` shows: never a token."""
    row = LinearOAuthToken.get_or_none(LinearOAuthToken.id == CONNECTION_ID)
    credential = ("oauth" if row is not None else "api_key" if settings.linear_api_key
                  else "oauth_token" if settings.linear_oauth_token else None)
    body: dict[str, Any] = {"oauth_configured": settings.linear_oauth_configured, "connected": row is not None,
                            "credential": credential}
    if row is not None:
        body |= {"scope": row.scope, "expires_at": iso_from_unix(row.expires_at),
                 "connected_at": iso_from_unix(row.connected_at), "connected_by": row.connected_by,
                 "refreshed_at": iso_from_unix(row.refreshed_at), "last_error": row.last_error,
                 "last_error_at": iso_from_unix(row.last_error_at)}
    return body


def reencrypt_stored(settings: Settings) -> bool:
    """Rewrite the stored tokens under the current DASHBOARD_SECRET_KEY; False when there are none."""
    with write_transaction():
        row = LinearOAuthToken.get_or_none(LinearOAuthToken.id == CONNECTION_ID)
        if row is None:
            return False
        try:
            LinearOAuthToken.update(
                access_token=reencrypt(settings, row.access_token),
                refresh_token=reencrypt(settings, row.refresh_token) if row.refresh_token else None,
            ).where(LinearOAuthToken.id == CONNECTION_ID).execute()
        except EncryptionUnavailable as error:
            raise LinearOAuthError(str(error), status=503, code="not_configured") from None
    return True


# Refreshing ----------------------------------------------------------------------------------------------

def _refresh(http: requests.Session, settings: Settings, row: LinearOAuthToken) -> LinearOAuthToken:
    still_valid = row.expires_at > now()
    if not _claim_refresh(row):
        if still_valid:
            return row  # another process is refreshing; this token works meanwhile
        raise LinearOAuthError("The Linear token expired and another process is refreshing it; try again.",
                               status=503, code="linear_unavailable")
    if not settings.linear_oauth_configured:
        error = LinearOAuthError("The Linear OAuth token needs refreshing but LINEAR_CLIENT_ID / "
                                 "LINEAR_CLIENT_SECRET are not set.", status=503, code="not_configured")
    else:
        try:
            tokens = _request_tokens(http, settings, {"grant_type": "refresh_token",
                                                      "refresh_token": _decrypt(settings, row.refresh_token)})
        except LinearOAuthError as failure:
            error = failure
        else:
            return _store_refreshed(settings, row, tokens)
    with write_transaction():
        LinearOAuthToken.update(last_error=f"refresh failed: {error.message}", last_error_at=now()).where(
            LinearOAuthToken.id == CONNECTION_ID).execute()
    log.warning("Linear OAuth refresh failed: %s", error.message)
    if still_valid:
        return row
    raise error


def _claim_refresh(row: LinearOAuthToken) -> bool:
    """Mark this generation as being refreshed (`refreshed_at`: when the last refresh began); False if
    another process began one less than REFRESH_CLAIM_S ago or has already replaced these tokens."""
    at = now()
    with write_transaction():
        claimed = LinearOAuthToken.update(refreshed_at=at).where(
            (LinearOAuthToken.id == CONNECTION_ID) & (LinearOAuthToken.generation == row.generation)
            & ((LinearOAuthToken.refreshed_at.is_null()) | (LinearOAuthToken.refreshed_at < at - REFRESH_CLAIM_S)),
        ).execute()
    return claimed == 1


def _store_refreshed(settings: Settings, row: LinearOAuthToken, tokens: dict[str, Any]) -> LinearOAuthToken:
    at = now()
    values = _encrypted(settings, tokens, at)
    if values["refresh_token"] is None:  # Linear always sends a new one; keep the old if it ever does not
        values["refresh_token"] = row.refresh_token
    with write_transaction():
        LinearOAuthToken.update(generation=row.generation + 1, last_error=None, last_error_at=None, **values).where(
            (LinearOAuthToken.id == CONNECTION_ID) & (LinearOAuthToken.generation == row.generation)).execute()
    log.info("Linear OAuth token refreshed")
    fresh = LinearOAuthToken.get_or_none(LinearOAuthToken.id == CONNECTION_ID)
    if fresh is None:
        raise LinearOAuthError("Linear was disconnected while its token was being refreshed.", status=503,
                               code="linear_not_configured")
    return fresh


# Talking to Linear's token endpoint --------------------------------------------------------------------

def _request_tokens(http: requests.Session, settings: Settings, form: dict[str, str]) -> dict[str, Any]:
    """POST to Linear's token endpoint (form-encoded, as it requires); the JSON answer with an access token."""
    form = {**form, "client_id": settings.linear_client_id or "", "client_secret": settings.linear_client_secret or ""}
    try:
        response = http.post(TOKEN_URL, data=form, timeout=TIMEOUT, headers={"Accept": "application/json"})
    except requests.RequestException as error:
        raise LinearOAuthError(f"Linear could not be reached ({error.__class__.__name__}).", status=503,
                               code="linear_unavailable") from None
    if response.status_code >= 500:
        raise LinearOAuthError(f"Linear is having trouble (it answered {response.status_code}).", status=503,
                               code="linear_unavailable")
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise LinearOAuthError(f"Linear's token endpoint answered {response.status_code} without JSON.")
    if response.status_code >= 400 or "error" in body:
        # invalid_grant: the code is used or expired, or the refresh token was revoked.
        reason = body.get("error_description") or body.get("error") or f"HTTP {response.status_code}"
        raise LinearOAuthError(f"Linear refused: {reason}", status=400, code="linear_refused")
    if not isinstance(body.get("access_token"), str) or not body["access_token"]:
        raise LinearOAuthError("Linear's token endpoint answered without an access_token.")
    return body


def _encrypted(settings: Settings, tokens: dict[str, Any], at: int) -> dict[str, Any]:
    """The columns for a token answer: both tokens encrypted, the expiry made absolute."""
    expires_in = tokens.get("expires_in")
    scope = tokens.get("scope")
    try:
        return {
            "access_token": encrypt(settings, tokens["access_token"]),
            "refresh_token": encrypt(settings, tokens["refresh_token"]) if tokens.get("refresh_token") else None,
            "expires_at": at + int(expires_in) if isinstance(expires_in, int | float) else None,
            "scope": ",".join(scope) if isinstance(scope, list) else scope,
        }
    except EncryptionUnavailable as error:
        raise LinearOAuthError(str(error), status=503, code="secret_key_required") from None


def _decrypt(settings: Settings, ciphertext: str) -> str:
    try:
        return decrypt(settings, ciphertext)
    except EncryptionUnavailable as error:
        raise LinearOAuthError(f"The Linear OAuth token cannot be used: {error}.", status=503,
                               code="not_configured") from None


def main(argv: list[str] | None = None) -> int:
    from shared.config import settings_for_command
    from shared.store.db import database, open_database

    parser = argparse.ArgumentParser(prog="python -m shared.linear.oauth",
                                     description="Manage the stored Linear OAuth connection.")
    parser.add_argument("--reencrypt", action="store_true",
                        help="rewrite the stored tokens under the current DASHBOARD_SECRET_KEY (after a rotation)")
    args = parser.parse_args(argv)
    if not args.reencrypt:
        parser.print_help()
        return 2
    settings = settings_for_command()
    open_database(settings)
    with database.connection_context():
        try:
            done = reencrypt_stored(settings)
        except LinearOAuthError as error:
            print(f"re-encryption failed: {error.message}", file=sys.stderr)
            return 1
    print("Linear OAuth tokens re-encrypted under the current DASHBOARD_SECRET_KEY" if done
          else "no Linear OAuth connection: nothing to re-encrypt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
