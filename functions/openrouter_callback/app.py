"""OpenRouter's callback receiver: POST /webhooks/openrouter (public: no IAM, the signature is the auth).

It verifies the signature over the raw body and enqueues a nudge, nothing more, so it answers well within
a second whatever OpenRouter or S3 are doing: the callback consumer (callback_nudge) polls and downloads.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen.callbacks import IDEMPOTENCY_HEADER, MAX_BODY_BYTES, SIGNATURE_HEADER, CallbackRefused, verify
from videogen.observability import logger, metrics, tracer
from videogen.services import get_services

# base64 of MAX_BODY_BYTES, rounded up: anything longer cannot decode to an acceptable body.
MAX_ENCODED_CHARS = (MAX_BODY_BYTES + 2) // 3 * 4


def _answer(status: int, message: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"message": message} if status == 200 else {"error": {"code": status, "message": message}}),
    }


def raw_body(event: dict[str, Any]) -> bytes:
    """The body's exact bytes, as signed: API Gateway passes binary (and some text) bodies base64-encoded."""
    body = event.get("body") or ""
    if not isinstance(body, str):
        raise CallbackRefused(400, "body is not a string")
    if event.get("isBase64Encoded"):
        if len(body) > MAX_ENCODED_CHARS:
            raise CallbackRefused(413, f"callback body over {MAX_BODY_BYTES} bytes")
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise CallbackRefused(400, "body is not valid base64") from None
    if len(body) > MAX_BODY_BYTES:  # characters ≤ bytes: cheap check before encoding
        raise CallbackRefused(413, f"callback body over {MAX_BODY_BYTES} bytes")
    return body.encode("utf-8", errors="surrogatepass")


def _header(event: dict[str, Any], name: str) -> str | None:
    found = [value for key, value in (event.get("headers") or {}).items() if key.lower() == name]
    return found[-1] if found and isinstance(found[-1], str) else None


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    services = get_services()
    if event.get("httpMethod") != "POST":
        return _answer(405, "POST only")
    try:
        secret = services.webhook_secret()
        if secret is None:
            raise CallbackRefused(401, "callbacks are not configured")
        callback = verify(secret, raw_body(event), _header(event, SIGNATURE_HEADER), _header(event, IDEMPOTENCY_HEADER))
    except CallbackRefused as refused:
        logger.warning("callback refused", extra={"status": refused.status, "reason": str(refused)})
        return _answer(refused.status, str(refused))
    services.callback_queue.enqueue(callback.openrouter_job_id, callback.idempotency_key)
    logger.info(
        "callback accepted",
        extra={
            "openrouter_job_id": callback.openrouter_job_id,
            "claimed_status": callback.claimed_status,
            "idempotency_key": callback.idempotency_key,
        },
    )
    return _answer(200, "received")
