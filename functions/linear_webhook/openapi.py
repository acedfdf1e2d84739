"""The Linear webhook function's part of the OpenAPI document: `POST /api/linear/webhook`."""

from __future__ import annotations

from shared.web.openapi import Schema, json_body, json_response, obj, operation

TAG = "linear"

SCHEMAS: dict[str, Schema] = {
    "WebhookOutcome": obj({
        "ok": {"const": True}, "delivery": {"type": "string", "description": "Linear-Delivery, or a digest"},
        "duplicate": {"type": "boolean", "description": "delivered before: acknowledged, not applied again"},
        "applied": {"type": "boolean", "description": "false: stored raw, but the cache could not use it"}}),
}

PATHS: dict[str, Schema] = {
    "/api/linear/webhook": {"post": operation(
        "Linear's webhook deliveries", tag=TAG, security=[{"linearSignature": []}],
        description="Authenticated by `Linear-Signature`, the hex HMAC-SHA256 of the exact body with "
                    "LINEAR_WEBHOOK_SECRET (no dashboard token). `Linear-Delivery`, the delivery's id, makes a "
                    "redelivery apply once. 503 `linear_not_configured` without the secret.",
        # Checked for the signature before it is parsed, whatever its content type; then any JSON with a
        # fresh webhookTimestamp is acknowledged: what the cache cannot use is stored raw (`applied` false),
        # because anything but a 200 makes Linear retry and, in the end, disable the webhook.
        body=json_body(obj({"webhookTimestamp": {"type": "number", "description": "Unix ms, within 60 s of now"}},
                           extra=True), description="Linear's delivery: `type` (Issue, Project, Comment, Cycle, "
                           "WorkflowState, ...), `action` (create, update, remove), `data` (the entity)."),
        json_request=False,
        responses={200: json_response("Recorded (and applied unless a duplicate)", {"$ref":
                                      "#/components/schemas/WebhookOutcome"}), 400: 400, 401: 401})},
}
