"""The sign-in function's part of the OpenAPI document: signing in and out, who is signed in."""

from __future__ import annotations

from shared.web.openapi import (
    DASHBOARD_AUTH,
    NO_AUTH,
    TEXT,
    TIME,
    Schema,
    json_response,
    obj,
    operation,
    query_param,
    ref,
)

TAG = "auth"

SCHEMAS: dict[str, Schema] = {
    "User": obj({
        "id": {"type": "string", "description": "`local` for the dashboard token's user"},
        "login": {"type": "string", "description": "the GitHub login, or `dashboard`"},
        "avatar_url": {"type": ["string", "null"]},
        "last_login": TIME}),
    "SignedIn": obj({"user": ref("User")}),
    "LinearConnection": obj({
        "oauth_configured": {"type": "boolean", "description": "LINEAR_CLIENT_ID and LINEAR_CLIENT_SECRET are set"},
        "connected": {"type": "boolean"},
        "credential": {"enum": ["oauth", "api_key", "oauth_token", None],
                       "description": "what the sync and the card move use now"},
        "scope": {"type": ["string", "null"]}, "expires_at": TIME, "connected_at": TIME,
        "connected_by": {"type": ["string", "null"], "description": "the user id who connected it"},
        "refreshed_at": TIME, "last_error": {"type": ["string", "null"]}, "last_error_at": TIME},
        optional=["scope", "expires_at", "connected_at", "connected_by", "refreshed_at", "last_error",
                  "last_error_at"]),
}

def redirect(description: str, *, with_cookie: str | None = None) -> Schema:
    headers: Schema = {"Location": {"description": "where the browser goes next", "schema": TEXT}}
    if with_cookie:
        headers["Set-Cookie"] = {"description": with_cookie, "schema": TEXT}
    return {"description": description, "headers": headers}


CALLBACK_PARAMETERS = [
    query_param("code", "The authorization code the provider sent back."),
    query_param("state", "The signed state this dashboard issued (bound to the browser by a cookie)."),
    query_param("error", "Set by the provider instead of `code` when the person declined (`access_denied`)."),
    query_param("error_description", "The provider's explanation of `error`."),
]

SIGN_IN_TOKEN = obj({"token": {"type": "string", "minLength": 1, "description": "the dashboard token"}})

PATHS: dict[str, Schema] = {
    "/api/auth/providers": {"get": operation(
        "Which ways to sign in exist", tag=TAG, security=NO_AUTH,
        responses={200: json_response("github: GitHub sign-in is configured; token: always",
                                      obj({"github": {"type": "boolean"}, "token": {"const": True}}))})},
    "/api/auth/login": {"post": operation(
        "Sign in with the dashboard token; sets the `ocd_session` cookie", tag=TAG, security=NO_AUTH,
        description="Failed sign-ins are limited per client (AUTH_MAX_FAILURES within AUTH_FAILURE_WINDOW_S, "
                    "counted across every process, wrong bearer tokens and API keys on any route included): "
                    "then 429 with Retry-After, even for the right token. A form, or any body with an Origin "
                    "or Referer, must come from this dashboard's own pages, else 403 csrf (not counted).",
        body={"required": True, "content": {"application/json": {"schema": SIGN_IN_TOKEN},
                                            "application/x-www-form-urlencoded": {"schema": SIGN_IN_TOKEN}}},
        responses={200: {**json_response("Signed in", ref("SignedIn")),
                         "headers": {"Set-Cookie": {"description": "`ocd_session=...; HttpOnly; SameSite=Lax; "
                                                    "Path=/; Max-Age=2592000` (+ `Secure` over https)",
                                                    "schema": TEXT}}},
                   400: 400, 401: 401, 403: 403, 415: 415, 422: 422, 429: 429})},
    "/api/auth/me": {"get": operation(
        "Who is signed in", tag=TAG, security=DASHBOARD_AUTH,
        responses={200: json_response("The signed-in user", ref("SignedIn"))})},
    "/api/auth/logout": {"post": operation(
        "Sign out: revoke this session and clear the cookie", tag=TAG, security=DASHBOARD_AUTH,
        responses={204: {"description": "Signed out"}, 403: 403})},
    "/api/auth/github/login": {"get": operation(
        "Sign in with GitHub: redirect to GitHub's consent page", tag=TAG, security=NO_AUTH,
        responses={302: redirect("To https://github.com/login/oauth/authorize with a signed, 10-minute state",
                                 with_cookie="`ocd_github_state`: the state's nonce, for the callback"),
                   503: 503})},
    "/api/auth/github/callback": {"get": operation(
        "GitHub sends the browser back here; signs in an allowed user", tag=TAG, security=NO_AUTH,
        description="Only logins in GITHUB_ALLOWED_USERS may sign in (an empty list lets nobody in). Errors: "
                    "400 `invalid_state` / `state_expired` / `github_refused`, 403 `github_denied` (consent "
                    "declined) / `not_allowed`, 502 `github_error`, 503 `github_unavailable` / "
                    "`github_not_configured`.",
        parameters=CALLBACK_PARAMETERS,
        responses={302: redirect("Signed in: to `/`", with_cookie="`ocd_session` as for POST /api/auth/login"),
                   400: 400, 403: 403, 502: 502, 503: 503})},
    "/api/auth/linear": {
        "get": operation("The Linear OAuth connection (never its tokens)", tag=TAG, security=DASHBOARD_AUTH,
                         responses={200: json_response("The connection", obj({"linear": ref("LinearConnection")}))}),
        "delete": operation("Disconnect Linear (its token is revoked at Linear, best effort)", tag=TAG,
                            security=DASHBOARD_AUTH,
                            responses={204: {"description": "Disconnected"}, 403: 403, 404: 404})},
    "/api/auth/linear/login": {"get": operation(
        "Connect Linear: redirect to Linear's consent page", tag=TAG, security=DASHBOARD_AUTH,
        responses={302: redirect("To https://linear.app/oauth/authorize with a signed, 10-minute state",
                                 with_cookie="`ocd_linear_state`: the state's nonce, for the callback"),
                   503: 503})},
    "/api/auth/linear/callback": {"get": operation(
        "Linear sends the browser back here; stores the tokens encrypted", tag=TAG, security=DASHBOARD_AUTH,
        description="Errors: 400 `invalid_state` / `state_expired` / `linear_refused`, 403 `linear_denied`, "
                    "502 `linear_error`, 503 `linear_unavailable` / `linear_oauth_not_configured` / "
                    "`secret_key_required`.",
        parameters=CALLBACK_PARAMETERS,
        responses={302: redirect("Connected: to `/`"), 400: 400, 403: 403, 502: 502, 503: 503})},
}
