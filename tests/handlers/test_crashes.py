"""Real crashes: a function's process is killed (SIGKILL, as a Lambda time-out or an out-of-memory kill
ends it: no ``except`` or ``finally`` runs) half-way through its work, and the retry must still end
the job exactly once. AWS is a moto server in another process, so what the dead process left behind
is really there for the retry to find."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from bench.download import pointed_at
from bench.harness import BUCKET, BUS, TABLE, Aws, LambdaWorker, MiB, moto_server, video_server
from bench.video_server import expected_sha256
from tests.support.scripted_http import Canned, ScriptedServer
from videogen.jobs import JobStore
from videogen.models import Job, JobStatus, VideoRequest
from videogen_local.localmode.stream_poller import StreamPoller, StreamSource

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def aws() -> Iterator[Aws]:
    with moto_server() as server:
        yield server


@pytest.fixture(scope="module")
def outbox(aws: Aws) -> Iterator[StreamPoller]:
    """The jobs table's stream relayed to the publish function (in a process of its own), as deployed."""
    sqs = aws.client("sqs")
    publish = LambdaWorker("publish", aws.lambda_env("http://127.0.0.1:9"))
    try:
        yield StreamPoller(
            aws.client("dynamodbstreams"),
            aws.client("dynamodb").describe_table(TableName=TABLE)["Table"]["LatestStreamArn"],
            lambda event: publish.call("invoke", event=event)["result"],
            "arn:aws:lambda:us-east-1:123456789012:function:bench-publish",
            StreamSource.outbox(),
            sqs,
            sqs.create_queue(QueueName="bench-outbox-dlq")["QueueUrl"],
        )
    finally:
        publish.close()


@pytest.fixture
def results(aws: Aws, outbox: StreamPoller) -> Iterator[Any]:
    """The service's result events, read from a queue that a rule on the bus feeds (after the outbox
    relayed what the table's stream holds)."""
    sqs, events = aws.client("sqs"), aws.client("events")
    name = f"results-{uuid.uuid4().hex[:8]}"
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventBusName=BUS, EventPattern=json.dumps({"source": ["videogen"]}))
    events.put_targets(Rule=name, EventBusName=BUS, Targets=[{"Id": "q", "Arn": arn}])

    def read() -> list[dict[str, Any]]:
        outbox.poll_once()
        found = []
        while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages"):
            found += [json.loads(m["Body"]) for m in batch]
            for message in batch:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return found

    yield read
    events.remove_targets(Rule=name, EventBusName=BUS, Ids=["q"])
    events.delete_rule(Name=name, EventBusName=BUS)


def _job(aws: Aws, status: JobStatus, **fields: Any) -> str:
    job_id = uuid.uuid4().hex
    request = VideoRequest.model_validate({"prompt": "crash test"})
    with pointed_at(aws):
        JobStore(TABLE).create(Job(id=job_id, status=status, request=request, **fields))
    return job_id


def _record(aws: Aws, job_id: str) -> Job:
    with pointed_at(aws):
        job = JobStore(TABLE).get(job_id)
    assert job is not None
    return job


def _wait_for(condition: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def test_download_killed_half_way_is_retried_into_one_complete_object(aws: Aws, results: Any) -> None:
    s3 = aws.client("s3")
    size = 16 * MiB
    job_id = _job(aws, JobStatus.IN_PROGRESS, openrouter_job_id="or-crash")
    env = {**aws.lambda_env("http://127.0.0.1:9"), "DOWNLOAD_PART_BYTES": str(5 * MiB)}
    with video_server() as video:
        event = {"job_id": job_id, "openrouter_job_id": "or-crash"}
        first = LambdaWorker("download", env)
        try:
            # The host stops sending after 11 MiB: two parts are in S3 when the process dies.
            stalling = f"{video}/video?bytes={size}&stall_after={11 * MiB}"
            first.send("invoke", event={**event, "unsigned_urls": [stalling]})

            def uploads() -> list[str]:
                return [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])]

            def two_parts_uploaded() -> bool:
                return any(
                    len(s3.list_parts(Bucket=BUCKET, Key=f"videos/{job_id}.mp4", UploadId=upload).get("Parts", [])) >= 2
                    for upload in uploads()
                )

            _wait_for(two_parts_uploaded)
        finally:
            first.kill()
        assert len(uploads()) == 1  # the dead attempt's upload, left behind: no except or finally ran
        assert _record(aws, job_id).status is JobStatus.IN_PROGRESS and results() == []

        retry = LambdaWorker("download", env)  # the state machine's retry: a fresh container
        try:
            reply = retry.call("invoke", event={**event, "unsigned_urls": [f"{video}/video?bytes={size}"]})
        finally:
            retry.close()
    assert reply["result"] == {"status": "completed"}
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    job = _record(aws, job_id)
    assert job.video is not None and job.video.bytes == size and job.video.sha256 == expected_sha256(size)
    assert s3.head_object(Bucket=BUCKET, Key=f"videos/{job_id}.mp4")["ContentLength"] == size
    assert [e["detail-type"] for e in results()] == ["VideoCompleted"]


def test_submit_killed_after_openrouter_accepted_is_never_resent(aws: Aws, results: Any) -> None:
    job_id = _job(aws, JobStatus.QUEUED)
    message = {
        "messageId": "m-1",
        "receiptHandle": "r-1",
        "body": json.dumps({"job_id": job_id}),
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bench-submit",
        "awsRegion": "us-east-1",
    }
    with ScriptedServer("127.0.0.1") as openrouter:
        # OpenRouter takes the job, then the answer is slow: the process dies before it arrives.
        accepted = {"id": "or-1", "polling_url": "/api/v1/videos/or-1", "status": "pending"}
        openrouter.routes[("POST", "/api/v1/videos")].append(Canned(200, accepted, delay=5))
        env = {**aws.lambda_env(openrouter.url), "SUBMIT_CLAIM_SECONDS": "1", "QUEUE_URL": "unused"}
        first = LambdaWorker("submit", env)
        try:
            first.send("invoke", event={"Records": [message]})
            _wait_for(lambda: any(seen.method == "POST" for seen in openrouter.seen))
        finally:
            first.kill()
        assert _record(aws, job_id).status is JobStatus.QUEUED
        time.sleep(1.1)  # the dead attempt's claim is now stale

        redelivered = {**message, "attributes": {"ApproximateReceiveCount": "2"}}
        retry = LambdaWorker("submit", env)  # SQS redelivers after the visibility time-out
        try:
            reply = retry.call("invoke", event={"Records": [redelivered]})
        finally:
            retry.close()
        posts = [seen for seen in openrouter.seen if seen.method == "POST"]
    assert reply["result"] == {"batchItemFailures": []}
    assert len(posts) == 1  # never a second POST /api/v1/videos: OpenRouter may have the job and bill it
    job = _record(aws, job_id)
    assert job.status is JobStatus.FAILED and job.error is not None and "outcome unknown" in job.error
    [event] = results()
    assert event["detail-type"] == "VideoFailed" and "may still exist and bill" in event["detail"]["error"]
