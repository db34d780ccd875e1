"""Outbound webhooks (videogen.webhooks): signatures a receiver verifies with the `standardwebhooks` library,
per-owner secrets derived (never stored) and rotated, and one attempt's outcome against real loopback servers."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from tests.support.scripted_http import Canned, ScriptedServer
from videogen.aws import client
from videogen.webhooks import (
    MAX_ATTEMPTS,
    RETRY_DELAYS,
    Message,
    Outcome,
    Sender,
    SigningKeys,
    check_webhook_url,
    derive_secret,
    parse_delays,
)
from videogen_local.localmode.stack import create_webhook_signing_table

SIGNING_KEY = "k" * 64
DETAIL = {"job_id": "j1", "status": "completed", "video": {"s3_uri": "s3://b/videos/j1.mp4"}}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def keys(aws: None) -> Iterator[tuple[SigningKeys, Clock]]:
    create_webhook_signing_table(client("dynamodb"), "signing")
    clock = Clock()
    yield SigningKeys("signing", lambda: SIGNING_KEY, clock), clock


def test_the_schedule_spans_more_than_a_day() -> None:
    assert sum(RETRY_DELAYS) >= 24 * 3600 and MAX_ATTEMPTS == 8
    assert parse_delays("1, 2,3") == (1, 2, 3)
    for bad in ("", "a", "-1", "50000"):
        with pytest.raises(ValueError):
            parse_delays(bad)


def test_a_secret_is_per_owner_created_on_first_use_and_not_stored(keys: tuple[SigningKeys, Clock]) -> None:
    signing, _ = keys
    first = signing.current("tenant:acme")
    assert first.secret.startswith("whsec_") and signing.current("tenant:acme").secret == first.secret
    assert signing.current("tenant:other").secret != first.secret
    Webhook(first.secret)  # the library takes it as is
    items = client("dynamodb").scan(TableName="signing")["Items"]
    assert {i["owner"]["S"] for i in items} == {"tenant:acme", "tenant:other"}
    assert first.secret not in json.dumps(items) and first.secret.removeprefix("whsec_") not in json.dumps(items)
    assert first.secret == derive_secret(SIGNING_KEY, "tenant:acme", 1)


def test_rotation_signs_with_both_secrets_for_24_hours(keys: tuple[SigningKeys, Clock]) -> None:
    signing, clock = keys
    old = signing.current("tenant:acme").secret
    rotated = signing.rotate("tenant:acme")
    assert rotated.secret != old and rotated.previous_signs_until == "2026-12-03T12:00:00Z"
    message = Message.for_result("VideoCompleted", DETAIL, "2026-12-02T12:00:00Z")
    now = datetime.now(UTC)
    headers = message.headers(signing.signing_secrets("tenant:acme"), now)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, rotated.secret):  # a receiver on either secret verifies the message
        assert Webhook(secret).verify(message.body, headers)["data"] == DETAIL
    clock.now += timedelta(hours=24, seconds=1)
    assert signing.signing_secrets("tenant:acme") == [rotated.secret]
    assert signing.current("tenant:acme").previous_signs_until is None
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(message.body, message.headers(signing.signing_secrets("tenant:acme"), now))


def test_the_message_is_the_event_detail_with_its_type_and_a_stable_id() -> None:
    message = Message.for_result("VideoCompleted", DETAIL, "2026-12-02T12:00:00Z")
    assert json.loads(message.body) == {"type": "VideoCompleted", "timestamp": "2026-12-02T12:00:00Z", "data": DETAIL}
    assert message.webhook_id == Message.for_result("VideoCompleted", DETAIL, "later").webhook_id
    secret = derive_secret(SIGNING_KEY, "o", 1)
    headers = message.headers([secret], datetime.now(UTC))
    assert headers["webhook-signature"].startswith("v1,")
    tampered = message.body.replace("completed", "failed")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, headers)


def test_webhook_urls_are_https_and_public_unless_private_ones_are_allowed() -> None:
    assert check_webhook_url("https://hooks.example.com/videogen?t=1") == "https://hooks.example.com/videogen?t=1"
    for url in (
        "http://hooks.example.com/",
        "https://127.0.0.1/",
        "https://localhost/",
        "https://[::1]/",
        "https://169.254.169.254/",
        "https://10.0.0.1/",
        "https://0x7f000001/",
        "https://u:p@example.com/",
    ):
        with pytest.raises(ValueError):
            check_webhook_url(url)
    assert check_webhook_url("http://127.0.0.1:9/hook", allow_private=True)
    with pytest.raises(ValueError):
        check_webhook_url("ftp://127.0.0.1/", allow_private=True)


def loopback(name: str, port: int) -> list[tuple[Any, ...]]:
    """A test resolver: every name is 127.0.0.1 (as a rebinding or internal name would be)."""
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]


@pytest.fixture
def receiver() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


SECRET = derive_secret(SIGNING_KEY, "o", 1)
MESSAGE = Message.for_result("VideoFailed", {"job_id": "j2", "status": "failed", "error": "x"}, "t")


def test_a_name_that_resolves_to_loopback_gets_nothing(receiver: ScriptedServer) -> None:
    port = receiver.url.rsplit(":", 1)[1]
    receiver.on("POST", "/hook", Canned(200))
    attempt = Sender(resolver=loopback).send(
        f"https://hooks.example.com:{port}/hook", MESSAGE, [SECRET], last_attempt=False
    )
    assert attempt.outcome is Outcome.REFUSED and "127.0.0.1" in (attempt.error or "")
    assert receiver.seen == []


def test_attempts_against_a_loopback_receiver(receiver: ScriptedServer) -> None:
    sender = Sender(allow_private=True, read_seconds=0.5)
    url = f"{receiver.url}/hook"
    receiver.on("POST", "/hook", Canned(500))
    first = sender.send(url, MESSAGE, [SECRET], last_attempt=False)
    assert (first.outcome, first.http_status) == (Outcome.RETRYING, 500) and first.latency_ms is not None
    receiver.on("POST", "/hook", Canned(200, delay=1.5))
    slow = sender.send(url, MESSAGE, [SECRET], last_attempt=True)
    assert (slow.outcome, slow.error) == (Outcome.FAILED, "timed out")
    receiver.on("POST", "/hook", Canned(302, headers={"Location": "http://169.254.169.254/"}))
    moved = sender.send(url, MESSAGE, [SECRET], last_attempt=False)
    assert moved.outcome is Outcome.RETRYING and "redirects" in (moved.error or "")
    assert not any(seen.path != "/hook" for seen in receiver.seen)  # the redirect was not followed
    receiver.on("POST", "/hook", Canned(410))
    assert sender.send(url, MESSAGE, [SECRET], last_attempt=False).outcome is Outcome.FAILED
    receiver.on("POST", "/hook", Canned(204))
    assert sender.send(url, MESSAGE, [SECRET], last_attempt=False).outcome is Outcome.DELIVERED
    for seen in receiver.seen:  # every attempt verifies, with one webhook-id
        assert Webhook(SECRET).verify(seen.body, seen.headers)["data"]["job_id"] == "j2"
        assert seen.headers["webhook-id"] == MESSAGE.webhook_id
