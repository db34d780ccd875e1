"""OpenRouter's completion callbacks (``callback_url``): verifying and signing them.

OpenRouter POSTs ``{"type": "video.generation.<status>", "data": {"id", "status", ...}}`` on a terminal
status, signed ``X-OpenRouter-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>,<raw body>")>``.
A verified call is only a nudge: the job is then polled as the state machine would, so nothing in the
body (status, URLs) is ever trusted. Verification runs over the raw bytes, before any JSON parsing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass

SIGNATURE_HEADER = "x-openrouter-signature"
IDEMPOTENCY_HEADER = "x-openrouter-idempotency-key"
TOLERANCE_SECONDS = 300  # OpenRouter's guidance: refuse timestamps more than about 5 minutes away
MAX_BODY_BYTES = 64 * 1024  # a callback body is a few hundred bytes; anything near this is not one
MAX_HEADER_CHARS = 2048
MAX_SIGNATURES = 8  # several v1 values during a secret rotation; more is not a real header
MAX_JOB_ID_CHARS = 256


class CallbackRefused(Exception):
    """The call is not a callback this service accepts; ``status`` is the HTTP answer (400, 401, 413)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Callback:
    """A verified callback: OpenRouter's job id and what the body claims (for logs only, never acted on)."""

    openrouter_job_id: str
    claimed_status: str | None
    idempotency_key: str | None


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``X-OpenRouter-Signature`` value for ``body`` (the simulator and the tests sign with it)."""
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), str(timestamp).encode() + b"," + body, hashlib.sha256).hexdigest()


def parse_signature(header: str | None) -> tuple[int, list[str]]:
    """``t=<seconds>,v1=<hex>[,v1=<hex>...]`` → (timestamp, signatures). Raises CallbackRefused(400)."""
    if not header:
        raise CallbackRefused(401, "missing X-OpenRouter-Signature")
    if len(header) > MAX_HEADER_CHARS:
        raise CallbackRefused(400, "X-OpenRouter-Signature too long")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            raise CallbackRefused(400, "malformed X-OpenRouter-Signature")
        if name == "t":
            # ASCII digits only: int() would also take "+5", " 5", other scripts' digits or "1_000".
            if timestamp is not None or not value.isascii() or not value.isdigit() or len(value) > 12:
                raise CallbackRefused(400, "malformed X-OpenRouter-Signature timestamp")
            timestamp = int(value)
        elif name == "v1":
            if len(value) != 64 or not all(c in "0123456789abcdefABCDEF" for c in value):
                raise CallbackRefused(400, "malformed X-OpenRouter-Signature v1 value")
            signatures.append(value.lower())
        # Other schemes (a future v2) are ignored, as with every versioned signature header.
    if timestamp is None or not signatures or len(signatures) > MAX_SIGNATURES:
        raise CallbackRefused(400, "X-OpenRouter-Signature needs one t and 1-8 v1 values")
    return timestamp, signatures


def verify(
    secret: str,
    body: bytes,
    signature_header: str | None,
    idempotency_key: str | None = None,
    *,
    now: float | None = None,
    tolerance_seconds: int = TOLERANCE_SECONDS,
) -> Callback:
    """Check the signature over the raw ``body`` and the timestamp, then read the job id.

    Raises CallbackRefused: 413 body too large, 400 malformed header or body, 401 a wrong signature or a
    timestamp more than ``tolerance_seconds`` old or ahead. A replay within the window verifies: replays are
    harmless because a callback only makes the job be polled, and polling an ended job changes nothing.
    """
    if len(body) > MAX_BODY_BYTES:
        raise CallbackRefused(413, f"callback body over {MAX_BODY_BYTES} bytes")
    timestamp, signatures = parse_signature(signature_header)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise CallbackRefused(401, "X-OpenRouter-Signature timestamp outside the tolerance")
    expected = _digest(secret, timestamp, body)
    # Every candidate is compared (no early exit), each in constant time.
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise CallbackRefused(401, "X-OpenRouter-Signature does not match")
    return _read(body, idempotency_key)


def _read(body: bytes, idempotency_key: str | None) -> Callback:
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CallbackRefused(400, "callback body is not UTF-8 JSON") from None
    data = payload.get("data") if isinstance(payload, dict) else None
    job_id = data.get("id") if isinstance(data, dict) else None
    if not isinstance(job_id, str) or not job_id or len(job_id) > MAX_JOB_ID_CHARS or not job_id.isprintable():
        raise CallbackRefused(400, "callback body has no data.id")
    status = data.get("status") if isinstance(data, dict) else None
    key = idempotency_key[: MAX_JOB_ID_CHARS * 2] if idempotency_key else None
    return Callback(job_id, status if isinstance(status, str) else None, key)
