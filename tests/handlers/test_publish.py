"""The outbox: the jobs table's stream (moto's), filtered by the template's FilterCriteria, relayed to
the publish handler. A job that ends gets its one result event even when the function that ended it
died right after the write; EventBridge being down ends in the outbox DLQ and `republish`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.handlers.conftest import Env
from tests.support.handlers import invoke, sample_event
from videogen.aws import client
from videogen.jobs import JobStore
from videogen.models import Job, JobStatus, VideoObject, VideoRequest
from videogen.outbox import ended_job, republish
from videogen.services import get_services, reset_services
from videogen_local.localmode.stream_poller import StreamPoller, StreamSource
from videogen_local.main import main


def store() -> JobStore:
    return JobStore("videogen-jobs")


def new_job(job_id: str, status: JobStatus = JobStatus.QUEUED) -> None:
    store().create(Job(id=job_id, status=status, request=VideoRequest(prompt="outbox")))


def source() -> StreamSource:
    return StreamSource.outbox()


def stream_records() -> list[dict[str, Any]]:
    """Every record of the jobs table's stream, in the shape Lambda hands to the function."""
    streams = boto3.client("dynamodbstreams", config=Config(account_id_endpoint_mode="disabled"))
    arn = client("dynamodb").describe_table(TableName="videogen-jobs")["Table"]["LatestStreamArn"]
    seen: list[dict[str, Any]] = []
    unfiltered = StreamSource(
        batch_size=1000, maximum_retry_attempts=0, bisect_on_error=False, report_item_failures=False, patterns=()
    )
    StreamPoller(streams, arn, lambda event: seen.extend(event["Records"]), "fn", unfiltered, None, "").poll_once()
    return seen


def test_the_template_filter_lets_through_only_moves_into_a_terminal_status(env: Env) -> None:
    new_job("j-done")
    store().finish("j-done", JobStatus.COMPLETED, video=VideoObject(s3_uri="s3://b/v.mp4", bytes=1, sha256="0" * 64))
    store().mark_event_published("j-done")
    store().finish("j-done", JobStatus.FAILED, error="too late")  # refused: no record at all
    new_job("j-cancelled", JobStatus.SUBMITTED)
    store().finish("j-cancelled", JobStatus.CANCELLED, error="cancelled by the caller")
    records = stream_records()
    passed = [r for r in records if source().matches(r)]
    kinds = [(r["eventName"], r["dynamodb"]["NewImage"]["id"]["S"]) for r in passed]
    assert kinds == [("MODIFY", "j-done"), ("MODIFY", "j-cancelled")]
    assert len(records) > len(passed)  # the inserts and the event_published_at write were filtered out
    # The handler repeats the check: a filter is configuration, and may be edited wrong.
    for record in records:
        images = [_plain(record["dynamodb"].get(k)) for k in ("OldImage", "NewImage")]
        assert (ended_job(*images) is not None) == (record in passed)


def test_the_sample_stream_event_announces_its_job_once(env: Env) -> None:
    """events/dynamodb_job_ended.json, as Lambda hands it over: the job's VideoCompleted goes out with the
    fields consumers rely on, the job records it, and a redelivery of the same batch sends nothing."""
    event = sample_event("dynamodb_job_ended")
    [record] = event["Records"]
    client("dynamodb").put_item(TableName="videogen-jobs", Item=record["dynamodb"]["NewImage"])
    assert invoke("publish", event) == {"batchItemFailures": []}
    [announced] = env.events()
    detail = announced["detail"]
    assert announced["detail-type"] == "VideoCompleted" and announced["source"] == "videogen"
    assert detail["job_id"] == "0123456789abcdef0123456789abcdef" and detail["status"] == "completed"
    assert detail["idempotency_key"] == "0123456789abcdef0123456789abcdef:completed"
    assert detail["polls"] == 3 and detail["usage"]["cost"] == 0.5 and detail["error"] is None
    assert detail["video"]["bytes"] == 42163 and detail["openrouter_job_id"] == "or-job-123"
    # What the download's MP4 check read; the stream's Decimal comes out as a JSON number.
    assert {key: detail["video"][key] for key in ("duration_seconds", "width", "height", "codec", "has_audio")} == {
        "duration_seconds": 5.042, "width": 1280, "height": 720, "codec": "avc1", "has_audio": False
    }  # fmt: skip
    assert "event_published_at" in (store().raw("0123456789abcdef0123456789abcdef") or {})
    assert invoke("publish", event) == {"batchItemFailures": []}
    assert env.events() == []


def test_a_job_that_ended_with_nobody_left_to_announce_it_gets_one_event(env: Env) -> None:
    new_job("j-orphan", JobStatus.IN_PROGRESS)
    # The last write of a download that was killed a moment later: nothing else happens in the function.
    store().finish("j-orphan", JobStatus.FAILED, error="the video host is down")
    [event] = env.events()
    assert event["detail-type"] == "VideoFailed"
    assert event["detail"]["job_id"] == "j-orphan" and event["detail"]["idempotency_key"] == "j-orphan:failed"
    assert event["detail"]["error"] == "the video host is down"
    assert "event_published_at" in (store().raw("j-orphan") or {})
    # The stream delivers again (Lambda's retry after a time-out, or a replay): no second event.
    replay = StreamPoller(
        boto3.client("dynamodbstreams", config=Config(account_id_endpoint_mode="disabled")),
        client("dynamodb").describe_table(TableName="videogen-jobs")["Table"]["LatestStreamArn"],
        lambda event: invoke("publish", event),
        "fn",
        source(),
        client("sqs"),
        env.outbox_dlq_url,
    )
    assert replay.poll_once() == 1
    assert env.events() == []


def test_eventbridge_down_ends_in_the_outbox_dlq_and_republish_sends_the_event(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("videogen_local.localmode.stream_poller.RETRY_PAUSE_SECONDS", 0)
    new_job("j-late", JobStatus.IN_PROGRESS)
    monkeypatch.setenv("EVENT_BUS", "a-bus-that-does-not-exist")  # every PutEvents now fails
    reset_services()
    store().finish("j-late", JobStatus.COMPLETED, video=VideoObject(s3_uri="s3://b/v.mp4", bytes=1, sha256="0" * 64))
    assert env.events() == []
    [message] = client("sqs").receive_message(QueueUrl=env.outbox_dlq_url, VisibilityTimeout=0).get("Messages", [])
    failure = json.loads(message["Body"])
    # Lambda's failure record: where in the stream, how often tried; no job data.
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] == source().maximum_retry_attempts + 1
    assert failure["DDBStreamBatchInfo"]["batchSize"] == 1
    assert "event_published_at" not in (store().raw("j-late") or {})

    # EventBridge is back; the operator runs `videogen republish` (the DLQ alarm's runbook).
    command = ["republish", "--table", "videogen-jobs", "--event-bus", "videogen-bus"]
    assert main([*command, "--older-than", "60"]) == 0  # the job ended a moment ago: left to the stream
    assert last_line(capsys) == {"announced": [], "failed": {}, "dlq_messages_cleared": 0}
    assert main([*command, "--older-than", "0", "--outbox-dlq-url", env.outbox_dlq_url]) == 0
    assert last_line(capsys) == {"announced": ["j-late"], "failed": {}, "dlq_messages_cleared": 1}
    [event] = env.events()
    assert event["detail-type"] == "VideoCompleted" and event["detail"]["job_id"] == "j-late"
    assert republish(get_services(), datetime.now(UTC) + timedelta(seconds=1)).announced == []  # announced once


def test_a_poison_record_does_not_hold_up_the_others(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Partial batch failure: a job whose item no longer parses (a schema drift, a hand edit) fails alone
    and ends in the outbox DLQ; the job that ended in the same batch is announced at once, and
    `republish` reports the poison job instead of stopping at it."""
    monkeypatch.setattr("videogen_local.localmode.stream_poller.RETRY_PAUSE_SECONDS", 0)
    dynamodb = client("dynamodb")
    dynamodb.put_item(
        TableName="videogen-jobs",
        Item={"id": {"S": "j-poison"}, "status": {"S": "in_progress"}, "request": {"M": {"model": {"N": "5"}}}},
    )
    new_job("j-fine", JobStatus.IN_PROGRESS)
    for job_id in ("j-poison", "j-fine"):
        dynamodb.update_item(
            TableName="videogen-jobs",
            Key={"id": {"S": job_id}},
            UpdateExpression="SET #s = :failed, finished_at = :ts",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":failed": {"S": "failed"}, ":ts": {"S": "2026-01-01T00:00:00.000Z"}},
        )
    assert [e["detail"]["job_id"] for e in env.events()] == ["j-fine"]
    [message] = client("sqs").receive_message(QueueUrl=env.outbox_dlq_url, VisibilityTimeout=0).get("Messages", [])
    assert json.loads(message["Body"])["DDBStreamBatchInfo"]["batchSize"] >= 1
    outcome = republish(get_services(), datetime.now(UTC))
    assert outcome.announced == [] and list(outcome.failed) == ["j-poison"]
    assert "request.model" in outcome.failed["j-poison"]
    # The CLI says so and keeps the DLQ (and its alarm) until the job is dealt with.
    command = ["republish", "--table", "videogen-jobs", "--event-bus", "videogen-bus", "--older-than", "0"]
    assert main([*command, "--outbox-dlq-url", env.outbox_dlq_url]) == 1
    report = last_line(capsys)
    assert list(report["failed"]) == ["j-poison"] and report["dlq_messages_cleared"] == 0


def last_line(capsys: pytest.CaptureFixture[str]) -> Any:
    """The command's report: its last line of stdout (the core's log lines come before it)."""
    return json.loads(capsys.readouterr().out.splitlines()[-1])


def _plain(image: dict[str, Any] | None) -> dict[str, Any] | None:
    from boto3.dynamodb.types import TypeDeserializer

    if image is None:
        return None
    deserializer = TypeDeserializer()
    return {key: deserializer.deserialize(value) for key, value in image.items()}
