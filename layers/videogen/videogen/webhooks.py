"""Outbound webhooks: a job's result POSTed to the caller's ``webhook_url``, signed per Standard Webhooks.

The message is the result event's detail with its type (``{"type": "VideoCompleted", "timestamp", "data"}``),
with the headers ``webhook-id`` (one per job's result, the same on every retry: receivers dedupe on it),
``webhook-timestamp`` and ``webhook-signature`` (``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``,
one entry per secret in use), made by the ``standardwebhooks`` library, which receivers verify with.

Signing secrets are per owner and never stored: each is derived from one signing key (Secrets Manager) and
the owner's *generation*, which is all the signing table holds (the owner, the generation, when the previous
one stops signing). Rotating bumps the generation; the previous secret keeps signing alongside for
ROTATION_OVERLAP (the specification lets a message carry several signatures). Nothing secret is in DynamoDB,
and deriving means no per-owner secret to create, fetch or pay for; the one key is the thing to guard.

Delivery (deliver function): at least once, one attempt per SQS receive. A failed attempt makes the message
visible again after the next delay of RETRY_DELAYS (27.6 hours over 8 attempts, as Standard Webhooks' own
reference schedule); after the last, the message goes to the dead-letter queue. The URL is pinned
(videogen.pinned): resolved at delivery time, every address public, connected to the checked one, no
redirect followed, short time-outs, the answer's body never read beyond its status.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from standardwebhooks import Webhook

from videogen.addresses import Resolver, check_public_https_url
from videogen.aws import client
from videogen.jobs import JobStore
from videogen.pinned import pin, tls_context

if TYPE_CHECKING:
    import httpx  # imported when a webhook is sent: the intake doors only check URLs, and httpx costs cold starts

SECRET_PREFIX = "whsec_"
ROTATION_OVERLAP = timedelta(hours=24)
# Seconds to wait after failed attempt n before attempt n + 1: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
RETRY_DELAYS = (5, 300, 1800, 7200, 18000, 36000, 36000)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1  # the webhook queue's maxReceiveCount (template: WebhookQueue)
USER_AGENT = "videogen-webhooks/1"
# Kept on the job: every attempt of the schedule, and a few redeliveries more.
MAX_RECORDED_ATTEMPTS = 20


class Outcome(StrEnum):
    DELIVERED = "delivered"  # 2xx
    RETRYING = "retrying"  # an error, a time-out, another status: tried again later
    FAILED = "failed"  # the schedule ran out (the message goes to the DLQ), or 410 Gone
    REFUSED = "refused"  # the URL reaches no public address: never sent, not retried


def check_webhook_url(url: str, *, allow_private: bool = False) -> str:
    """``url`` if it may be a webhook_url: https on a public host (deployed rules), or with ``allow_private``
    (local mode's --allow-private-webhooks) any http(s) URL. ValueError says why not. A name is resolved only
    at delivery time: what it resolves to then is what counts."""
    if allow_private:
        if not url.startswith(("http://", "https://")):
            raise ValueError("webhook_url must be an http(s) URL")
        return url
    return check_public_https_url(url, field_name="webhook_url")


def parse_delays(text: str) -> tuple[int, ...]:
    """WEBHOOK_RETRY_DELAYS: comma-separated seconds (local mode and tests shorten the schedule)."""
    try:
        delays = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"WEBHOOK_RETRY_DELAYS must be comma-separated seconds, got {text!r}") from None
    if not delays or any(not 0 <= d <= 43200 for d in delays):
        raise ValueError("WEBHOOK_RETRY_DELAYS: at least one delay, each 0..43200 s (SQS's visibility limit)")
    return delays


# --- signing secrets ---------------------------------------------------------------------------------


def derive_secret(signing_key: str, owner: str, generation: int) -> str:
    """The owner's secret of one generation: HMAC-SHA256 of the signing key over (owner, generation), as
    ``whsec_`` + base64 (32 bytes, within the 24-64 the specification asks for)."""
    digest = hmac.new(
        signing_key.encode(), f"videogen-webhook-secret\x00{owner}\x00{generation}".encode(), hashlib.sha256
    ).digest()
    return SECRET_PREFIX + base64.b64encode(digest).decode()


@dataclass(frozen=True)
class SecretView:
    """What GET /webhooks/secret answers: the secret that signs now and, during a rotation, until when the
    previous one signs too."""

    secret: str
    generation: int
    created_at: str
    previous_signs_until: str | None

    def body(self) -> dict[str, Any]:
        return {
            "secret": self.secret,
            "created_at": self.created_at,
            "previous_secret_signs_until": self.previous_signs_until,
        }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class SigningKeys:
    """Per-owner signing secrets (see the module docstring). ``signing_key`` is read when needed (cached by
    its provider); the table holds items ``owner``, ``generation``, ``created_at``, ``previous_until``."""

    table: str
    signing_key: Callable[[], str]
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def current(self, owner: str) -> SecretView:
        """The owner's secret, created on first use."""
        return self._view(owner, self._state(owner))

    def rotate(self, owner: str) -> SecretView:
        """A new secret for the owner; the one it replaces keeps signing for ROTATION_OVERLAP."""
        self._state(owner)  # created first if need be: a rotation needs a generation to follow
        now = self.clock()
        item = client("dynamodb").update_item(
            TableName=self.table,
            Key={"owner": {"S": owner}},
            UpdateExpression="SET generation = generation + :one, created_at = :now, previous_until = :until",
            ConditionExpression="attribute_exists(generation)",
            ExpressionAttributeValues={
                ":one": {"N": "1"},
                ":now": {"S": _iso(now)},
                ":until": {"S": _iso(now + ROTATION_OVERLAP)},
            },
            ReturnValues="ALL_NEW",
        )["Attributes"]
        return self._view(owner, item)

    def signing_secrets(self, owner: str) -> list[str]:
        """The secrets that sign the owner's messages now: the current one, and the previous during a rotation."""
        item = self._state(owner)
        generation = int(item["generation"]["N"])
        secrets = [derive_secret(self.signing_key(), owner, generation)]
        until = item.get("previous_until", {}).get("S")
        if until and generation > 1 and self.clock() < datetime.fromisoformat(until.replace("Z", "+00:00")):
            secrets.append(derive_secret(self.signing_key(), owner, generation - 1))
        return secrets

    def _view(self, owner: str, item: dict[str, Any]) -> SecretView:
        generation = int(item["generation"]["N"])
        until = item.get("previous_until", {}).get("S")
        if until and self.clock() >= datetime.fromisoformat(until.replace("Z", "+00:00")):
            until = None
        return SecretView(
            derive_secret(self.signing_key(), owner, generation), generation, item["created_at"]["S"], until
        )

    def _state(self, owner: str) -> dict[str, Any]:
        dynamodb = client("dynamodb")
        key = {"owner": {"S": owner}}
        item: dict[str, Any] | None = dynamodb.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        if item is not None:
            return item
        fresh = {**key, "generation": {"N": "1"}, "created_at": {"S": _iso(self.clock())}}
        try:
            dynamodb.put_item(
                TableName=self.table,
                Item=fresh,
                ConditionExpression="attribute_not_exists(#o)",
                ExpressionAttributeNames={"#o": "owner"},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            # Created by a concurrent first use: theirs is the owner's secret.
            return dict(dynamodb.get_item(TableName=self.table, Key=key, ConsistentRead=True)["Item"])
        return fresh


# --- the message --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    webhook_id: str
    body: str

    @classmethod
    def for_result(cls, event_type: str, detail: dict[str, Any], event_time: str) -> Message:
        """One job's result: the id is stable across retries and EventBridge redeliveries (one result per job)."""
        body = json.dumps({"type": event_type, "timestamp": event_time, "data": detail}, separators=(",", ":"))
        return cls(f"msg_{detail['job_id']}_{detail['status']}", body)

    def headers(self, secrets: Sequence[str], now: datetime) -> dict[str, str]:
        signatures = " ".join(Webhook(secret).sign(self.webhook_id, now, self.body) for secret in secrets)
        return {
            "webhook-id": self.webhook_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signatures,
            "content-type": "application/json",
            "user-agent": USER_AGENT,
        }


# --- one attempt --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt as the job records it (never the answer's body, never the URL's query)."""

    at: str
    outcome: Outcome
    http_status: int | None
    latency_ms: int | None
    error: str | None = None

    def record(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "outcome": self.outcome.value,
            "http_status": self.http_status,
            "latency_ms": self.latency_ms,
            "error": self.error,
        }


@dataclass
class Sender:
    """POSTs one message to one URL, pinned to a checked address; ``resolver`` and ``transport`` are injectable."""

    resolver: Resolver = socket.getaddrinfo
    transport: httpx.BaseTransport | None = None
    allow_private: bool = False
    connect_seconds: float = 3.0
    read_seconds: float = 10.0

    def send(self, url: str, message: Message, secrets: Sequence[str], *, last_attempt: bool) -> Attempt:
        import httpx

        now = datetime.now(UTC)
        at = _iso(now)
        try:
            target = pin(url, self.resolver, allow_private=self.allow_private)
        except ValueError as exc:
            return Attempt(at, Outcome.REFUSED, None, None, f"not delivered: {exc}"[:300])
        retry = Outcome.FAILED if last_attempt else Outcome.RETRYING
        timeout = httpx.Timeout(self.read_seconds, connect=self.connect_seconds)
        started = time.monotonic()
        try:
            with httpx.Client(
                transport=self.transport, verify=tls_context(), timeout=timeout, follow_redirects=False, trust_env=False
            ) as http:
                request = http.build_request(
                    "POST",
                    target.target,
                    content=message.body.encode(),
                    headers={**message.headers(secrets, now), "Host": target.host_header},
                    extensions=target.extensions,
                )
                response = http.send(request, stream=True)
                response.close()  # the status is the answer; the body is never read, nor stored
        except httpx.TimeoutException:
            return Attempt(at, retry, None, _ms(started), "timed out")
        except httpx.HTTPError as exc:
            return Attempt(at, retry, None, _ms(started), f"{type(exc).__name__}")
        status = response.status_code
        if 200 <= status < 300:
            return Attempt(at, Outcome.DELIVERED, status, _ms(started))
        if status == 410:  # Standard Webhooks: the receiver asks us to stop
            return Attempt(at, Outcome.FAILED, status, _ms(started), "410 Gone: not retried")
        note = "redirects are not followed" if 300 <= status < 400 else f"HTTP {status}"
        return Attempt(at, retry, status, _ms(started), note)


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


# --- one result's delivery ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """What became of one receive of a result: ``attempt`` is None when there was nothing to send (no
    webhook_url, or already delivered / given up); ``retry_in`` seconds when the message must come back
    (0: at once, to be moved to the dead-letter queue by its redrive policy)."""

    attempt: Attempt | None
    retry_in: int | None = None


FINAL_STATES = frozenset({Outcome.DELIVERED.value, Outcome.FAILED.value, Outcome.REFUSED.value})


def deliver(
    store: JobStore,
    keys: SigningKeys,
    sender: Sender,
    event: dict[str, Any],
    receive_count: int,
    delays: Sequence[int] = RETRY_DELAYS,
) -> Decision:
    """Deliver one result event (as EventBridge put it on the webhook queue) to its job's webhook_url."""
    detail = event.get("detail") or {}
    job = store.get(str(detail.get("job_id", "")))
    url = job.request.webhook_url if job is not None else None
    if job is None or url is None or job.webhook_state in FINAL_STATES:
        return Decision(None)  # nothing asked for, or a redelivery of a result already settled
    message = Message.for_result(str(event.get("detail-type")), detail, str(event.get("time") or job.finished_at))
    last = receive_count >= len(delays) + 1
    attempt = sender.send(url, message, keys.signing_secrets(job.caller), last_attempt=last)
    store.record_webhook_attempt(job.id, attempt.record(), attempt.outcome.value)
    if attempt.outcome is Outcome.RETRYING:
        return Decision(attempt, delays[min(receive_count, len(delays)) - 1])
    if attempt.outcome is Outcome.FAILED and attempt.http_status != 410:
        return Decision(attempt, 0)  # the schedule ran out: to the dead-letter queue
    return Decision(attempt)
