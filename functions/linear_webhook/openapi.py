"""The Linear webhook function's part of the OpenAPI document: `POST /api/linear/webhook`."""

from __future__ import annotations

from shared.openapi import NO_AUTH, Schema, json_body, json_response, obj, operation

TAG = "linear"

SCHEMAS: dict[str, Schema] = {
    "WebhookOutcome": obj({
        "ok": {"const": True}, "delivery": {"type": "string", "description": "Linear-Delivery, or a digest"},
        "duplicate": {"type": "boolean", "description": "delivered before: acknowledged, not applied again"},
        "applied": {"type": "boolean", "description": "false: stored raw, but the cache could not use it"}}),
}

PATHS: dict[str, Schema] = {
    "/api/linear/webhook": {"post": operation(
        "Linear's webhook deliveries", tag=TAG, security=NO_AUTH,
        description="Authenticated by `Linear-Signature`, the hex HMAC-SHA256 of the exact body with "
                    "LINEAR_WEBHOOK_SECRET. 503 `linear_not_configured` without that secret.",
        parameters=[
            {"name": "Linear-Signature", "in": "header", "required": True, "schema": {"type": "string"},
             "description": "hex HMAC-SHA256 of the body"},
            {"name": "Linear-Delivery", "in": "header", "required": False, "schema": {"type": "string"},
             "description": "the delivery's id; a redelivery with the same id is applied once"},
        ],
        # Any bytes: the signature is checked before the body is parsed, whatever its content type.
        body=json_body(obj({"action": {"type": "string"}, "type": {"type": "string"},
                            "webhookTimestamp": {"type": "integer", "description": "Unix ms, within 60 s of now"},
                            "data": {"type": "object"}}, optional=["action", "type", "data"], extra=True)),
        json_request=False,
        responses={200: json_response("Recorded (and applied unless a duplicate)", {"$ref":
                                      "#/components/schemas/WebhookOutcome"}), 400: 400, 401: 401})},
}
