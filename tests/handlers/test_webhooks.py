"""Outbound webhooks on moto: the secret routes of both APIs, and the deliver function on real SQS messages of
real result events, against a loopback receiver that verifies with the `standardwebhooks` library."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from standardwebhooks import Webhook

from tests.handlers.conftest import Env
from tests.handlers.test_api import request
from tests.handlers.test_gateway import body_of, compatible
from tests.support.handlers import invoke
from tests.support.scripted_http import Canned, ScriptedServer
from videogen.aws import client
from videogen.jobs import JobStore
from videogen.models import JobStatus, VideoObject
from videogen.services import get_services, reset_services
from videogen_local.localmode.stack import create_webhook_signing_table

CALLER = "arn:aws:iam::123456789012:user/caller"
REQUEST = {"prompt": "a webhook", "duration": 4, "resolution": "480p", "aspect_ratio": "9:16"}


@pytest.fixture
def hooks(env: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The webhook queue's URL, with the signing table and key, and a webhook rule like the template's."""
    create_webhook_signing_table(client("dynamodb"), "videogen-webhook-signing")
    sqs = client("sqs")
    queue_url = sqs.create_queue(QueueName="videogen-webhooks")["QueueUrl"]
    for name, value in {
        "WEBHOOK_SIGNING_TABLE": "videogen-webhook-signing",
        "WEBHOOK_SIGNING_KEY": "signing-key-for-tests-" + "x" * 40,
        "WEBHOOK_QUEUE_URL": queue_url,
        "WEBHOOK_RETRY_DELAYS": "30,60",
        "VIDEOGEN_WEBHOOKS_ALLOW_PRIVATE": "1",
        "WEBHOOK_READ_SECONDS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    reset_services()
    yield queue_url


@pytest.fixture
def receiver() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


def secret_of(caller: str = CALLER) -> str:
    response = request("GET", "/webhooks/secret", caller=caller)
    assert response["statusCode"] == 200 and response["multiValueHeaders"]["Cache-Control"] == ["no-store"]
    secret: str = json.loads(response["body"])["secret"]
    return secret


def test_each_owner_reads_and_rotates_its_own_secret_on_either_api(
    hooks: str, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = secret_of()
    assert mine.startswith("whsec_") and secret_of() == mine
    theirs = secret_of("arn:aws:iam::123456789012:user/someone-else")
    tenant = body_of(compatible("GET", "/api/v1/webhooks/secret"))["secret"]
    assert len({mine, theirs, tenant}) == 3
    rotated = json.loads(request("POST", "/webhooks/secret/rotate", caller=CALLER)["body"])
    assert rotated["secret"] not in (mine, theirs) and rotated["previous_secret_signs_until"]
    assert secret_of() == rotated["secret"]
    tenant_rotated = body_of(compatible("POST", "/api/v1/webhooks/secret/rotate"))
    assert tenant_rotated["secret"] != tenant
    assert compatible("GET", "/api/v1/webhooks/secret", tenant=None)["statusCode"] == 401
    stored = json.dumps(client("dynamodb").scan(TableName="videogen-webhook-signing")["Items"])
    logged = capsys.readouterr()
    for secret in (mine, theirs, tenant, rotated["secret"], tenant_rotated["secret"]):
        body = secret.removeprefix("whsec_")
        assert body not in stored and body not in logged.out + logged.err


def completed_job(env: Env, webhook_url: str) -> tuple[str, dict[str, Any]]:
    """A job with this webhook_url, ended completed, and the result event the outbox published for it."""
    response = request("POST", "/videos", caller=CALLER, body=json.dumps({**REQUEST, "webhook_url": webhook_url}))
    assert response["statusCode"] == 202, response["body"]
    job_id = json.loads(response["body"])["id"]
    video = VideoObject(s3_uri=f"s3://videogen-bucket/videos/{job_id}.mp4", bytes=10, sha256="0" * 64)
    assert JobStore("videogen-jobs").finish(job_id, JobStatus.COMPLETED, video=video) is not None
    [event] = [e for e in env.events() if e["detail"]["job_id"] == job_id]
    return job_id, event


def deliver(queue_url: str) -> dict[str, Any]:
    """Receive the queue's message as Lambda's event source does and hand it to the deliver function."""
    sqs = client("sqs")
    [message] = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=1, MessageSystemAttributeNames=["All"], WaitTimeSeconds=0
    )["Messages"]
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message["Attributes"],
        "messageAttributes": {},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:videogen-webhooks",
        "awsRegion": "us-east-1",
    }
    result: dict[str, Any] = invoke("webhook_deliver", {"Records": [record]})
    if not result["batchItemFailures"]:
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return result


def visible(queue_url: str) -> int:
    attributes = client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def test_a_result_is_delivered_signed_after_a_failure_and_once(hooks: str, env: Env, receiver: ScriptedServer) -> None:
    secret = secret_of()
    job_id, event = completed_job(env, f"{receiver.url}/hook?token=receivers-own")
    assert event["detail"]["webhook_requested"] is True and "receivers-own" not in json.dumps(event)
    client("sqs").send_message(QueueUrl=hooks, MessageBody=json.dumps(event))  # as the rule's target does
    receiver.on("POST", "/hook", Canned(500), Canned(200))
    assert deliver(hooks)["batchItemFailures"]  # 500: kept, back after the schedule's first delay (30 s)
    assert visible(hooks) == 0
    record = JobStore("videogen-jobs").get(job_id)
    assert record is not None and record.webhook_state == "retrying"
    client("sqs").change_message_visibility(  # the delay, fast-forwarded
        QueueUrl=hooks, ReceiptHandle=_in_flight_handle(hooks), VisibilityTimeout=0
    )
    assert deliver(hooks)["batchItemFailures"] == []
    job = json.loads(request("GET", f"/videos/{job_id}", caller=CALLER)["body"])
    assert job["webhook_state"] == "delivered"
    assert [(a["outcome"], a["http_status"]) for a in job["webhook_attempts"]] == [
        ("retrying", 500),
        ("delivered", 200),
    ]
    assert len(receiver.seen) == 2 and receiver.seen[0].headers["webhook-id"] == receiver.seen[1].headers["webhook-id"]
    for seen in receiver.seen:
        verified = Webhook(secret).verify(seen.body, seen.headers)
        assert verified == {"type": "VideoCompleted", "timestamp": event["time"], "data": event["detail"]}
    # EventBridge delivers the event again: nothing more is sent, nothing is recorded.
    client("sqs").send_message(QueueUrl=hooks, MessageBody=json.dumps(event))
    assert deliver(hooks)["batchItemFailures"] == []
    assert len(receiver.seen) == 2
    assert len(JobStore("videogen-jobs").get(job_id).webhook_attempts) == 2  # type: ignore[union-attr]


def _in_flight_handle(queue_url: str) -> str:
    """Not receivable while its delay runs: read it through a visibility reset done by moto's own state."""
    from moto.sqs.models import sqs_backends

    queue = sqs_backends["123456789012"]["us-east-1"].queues[queue_url.rsplit("/", 1)[1]]
    [message] = list(queue._messages)
    return str(message.receipt_handle)


def loopback(name: str, port: int) -> list[tuple[Any, ...]]:
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]


def test_a_name_that_resolves_to_loopback_gets_nothing_without_the_flag(
    hooks: str, env: Env, receiver: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIDEOGEN_WEBHOOKS_ALLOW_PRIVATE", "0")
    reset_services()
    get_services().webhook_sender.resolver = loopback  # hooks.example.com -> 127.0.0.1, as a rebinding name would
    port = receiver.url.rsplit(":", 1)[1]
    receiver.on("POST", "/hook", Canned(200))
    job_id, event = completed_job(env, f"https://hooks.example.com:{port}/hook")
    client("sqs").send_message(QueueUrl=hooks, MessageBody=json.dumps(event))
    assert deliver(hooks)["batchItemFailures"] == []  # refused: not retried
    assert receiver.seen == []
    job = JobStore("videogen-jobs").get(job_id)
    assert job is not None and job.webhook_state == "refused"
    assert "127.0.0.1" in (job.webhook_attempts[0]["error"] or "")
    # And at intake: a loopback or plain-http webhook_url is refused naming the field.
    for url in (f"http://127.0.0.1:{port}/hook", "https://localhost/hook", "https://10.1.2.3/hook"):
        response = request("POST", "/videos", caller=CALLER, body=json.dumps({**REQUEST, "webhook_url": url}))
        assert response["statusCode"] == 422 and "webhook_url" in response["body"], url


def test_the_last_attempt_goes_to_the_dead_letter_queue(hooks: str, env: Env, receiver: ScriptedServer) -> None:
    job_id, event = completed_job(env, f"{receiver.url}/hook")
    receiver.on("POST", "/hook", Canned(503))
    client("sqs").send_message(QueueUrl=hooks, MessageBody=json.dumps(event))
    for attempt in range(3):  # WEBHOOK_RETRY_DELAYS "30,60": three attempts
        assert deliver(hooks)["batchItemFailures"], attempt
        if attempt < 2:
            client("sqs").change_message_visibility(
                QueueUrl=hooks, ReceiptHandle=_in_flight_handle(hooks), VisibilityTimeout=0
            )
    assert visible(hooks) == 1  # visible at once: the redrive policy moves it on its next receive
    job = JobStore("videogen-jobs").get(job_id)
    assert job is not None and job.webhook_state == "failed"
    assert [a["outcome"] for a in job.webhook_attempts] == ["retrying", "retrying", "failed"]
