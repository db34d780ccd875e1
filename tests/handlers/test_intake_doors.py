"""The S3 and EventBridge doors: same validation as the API, and never silence on rejection."""

from __future__ import annotations

import copy
import json

from tests.handlers.conftest import BUCKET, Env
from tests.support.handlers import invoke, sample_event
from videogen.aws import client

SEED = sample_event("eventbridge_video_requested")["detail"]


def s3_event_for(key_encoded: str) -> dict[str, object]:
    event = copy.deepcopy(sample_event("s3_request_created"))
    event["Records"][0]["s3"]["object"]["key"] = key_encoded
    return event


def read(key: str) -> dict[str, object]:
    return json.loads(client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read())


def test_s3_request_with_encoded_key_becomes_a_job_with_a_receipt(env: Env) -> None:
    # The sample event carries "requests/spring launch/backpack ü.json", URL-encoded as S3 sends it.
    key = "requests/spring launch/backpack ü.json"
    client("s3").put_object(Bucket=BUCKET, Key=key, Body=json.dumps(SEED).encode())
    result = invoke("intake_s3", sample_event("s3_request_created"))
    assert result == {"handled": [key]}
    receipt = read("requests/spring launch/backpack ü.job.json")
    assert receipt["status"] == "queued" and env.queued_job_ids() == [receipt["id"]]


def test_s3_rejected_request_leaves_a_readable_error_and_an_event(env: Env) -> None:
    client("s3").put_object(Bucket=BUCKET, Key="requests/bad.json", Body=b'{"prompt": "p", "resolution": "1080p"}')
    invoke("intake_s3", s3_event_for("requests/bad.json"))
    error = read("requests/bad.error.json")
    assert error["request"] == "requests/bad.json"
    assert error["error"]["fields"][0]["field"] == "resolution"  # type: ignore[index]
    assert env.queued_job_ids() == []
    [event] = env.events()
    assert event["detail-type"] == "VideoRejected" and event["detail"]["door"] == "s3"


def test_s3_receipts_are_not_taken_for_requests(env: Env) -> None:
    assert invoke("intake_s3", s3_event_for("requests/x.job.json")) == {"handled": []}
    assert invoke("intake_s3", s3_event_for("requests/x.error.json")) == {"handled": []}


def test_eventbridge_request_becomes_a_job(env: Env) -> None:
    result = invoke("intake_event", sample_event("eventbridge_video_requested"))
    assert result["status"] == "queued" and env.queued_job_ids() == [result["id"]]
    job = client("dynamodb").get_item(TableName="videogen-jobs", Key={"id": {"S": result["id"]}})["Item"]
    assert job["door"]["S"] == "eventbridge" and job["caller"]["S"] == "com.example.catalog"


def test_eventbridge_rejected_request_emits_video_rejected(env: Env) -> None:
    event = copy.deepcopy(sample_event("eventbridge_video_requested"))
    event["detail"]["input_references"][0]["image_url"]["url"] = "http://169.254.169.254/latest/meta-data"
    result = invoke("intake_event", event)
    assert result["status"] == "rejected"
    [emitted] = env.events()
    assert emitted["detail-type"] == "VideoRejected"
    assert emitted["detail"]["fields"][0]["field"] == "input_references[0].image_url.url"
    assert emitted["detail"]["source"] == "events:6a7e8feb-b491-4cf7-a9f1-bf3703467718"
    assert env.queued_job_ids() == []
