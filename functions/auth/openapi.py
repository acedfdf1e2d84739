"""The sign-in function's part of the OpenAPI document: signing in and out, who is signed in."""

from __future__ import annotations

from shared.openapi import DASHBOARD_AUTH, NO_AUTH, TEXT, TIME, Schema, json_response, obj, operation, ref

TAG = "auth"

SCHEMAS: dict[str, Schema] = {
    "User": obj({
        "id": {"type": "string", "description": "`local` for the dashboard token's user"},
        "login": {"type": "string", "description": "the GitHub login, or `dashboard`"},
        "avatar_url": {"type": ["string", "null"]},
        "last_login": TIME}),
    "SignedIn": obj({"user": ref("User")}),
}

SIGN_IN_TOKEN = obj({"token": {"type": "string", "minLength": 1, "description": "the dashboard token"}})

PATHS: dict[str, Schema] = {
    "/api/auth/providers": {"get": operation(
        "Which ways to sign in exist", tag=TAG, security=NO_AUTH,
        responses={200: json_response("github: GitHub sign-in is configured; token: always",
                                      obj({"github": {"type": "boolean"}, "token": {"const": True}}))})},
    "/api/auth/login": {"post": operation(
        "Sign in with the dashboard token; sets the `ocd_session` cookie", tag=TAG, security=NO_AUTH,
        description="Failed sign-ins are limited per client (AUTH_MAX_FAILURES within AUTH_FAILURE_WINDOW_S, "
                    "counted across every process): then 429 with Retry-After, even for the right token.",
        body={"required": True, "content": {"application/json": {"schema": SIGN_IN_TOKEN},
                                            "application/x-www-form-urlencoded": {"schema": SIGN_IN_TOKEN}}},
        responses={200: {**json_response("Signed in", ref("SignedIn")),
                         "headers": {"Set-Cookie": {"description": "`ocd_session=...; HttpOnly; SameSite=Lax; "
                                                    "Path=/; Max-Age=2592000` (+ `Secure` over https)",
                                                    "schema": TEXT}}},
                   400: 400, 401: 401, 415: 415, 422: 422, 429: 429})},
    "/api/auth/me": {"get": operation(
        "Who is signed in", tag=TAG, security=DASHBOARD_AUTH,
        responses={200: json_response("The signed-in user", ref("SignedIn"))})},
    "/api/auth/logout": {"post": operation(
        "Sign out: revoke this session and clear the cookie", tag=TAG, security=DASHBOARD_AUTH,
        responses={204: {"description": "Signed out"}, 403: 403})},
}
