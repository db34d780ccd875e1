"""Event shapes AWS itself authored (events/aws/, made by `sam local generate-event`; see its README):
every handler fed one does the right thing or refuses cleanly with a logged reason, never an unhandled
exception or a 5xx. The S3 door's cases are in test_aws_events_s3.py."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.handlers.conftest import Env
from tests.support.handlers import ROOT, invoke
from videogen.aws import client
from videogen.jobs import JobStore
from videogen.models import Job, JobStatus, VideoRequest
from videogen.observability import logger

Lines = Callable[[], list[dict[str, Any]]]


def aws_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ROOT / "events" / "aws" / f"{name}.json").read_text(encoding="utf-8"))
    return event


@pytest.fixture
def log_lines(monkeypatch: pytest.MonkeyPatch) -> Lines:
    buffer = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", buffer)
    return lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]


CALLER = "arn:aws:sts::123456789012:assumed-role/catalog-renderer/ecs-task-1"


def signed(event: dict[str, Any]) -> dict[str, Any]:
    """The generated event as the IAM-authorised API receives it: API Gateway names the SigV4 signer."""
    event["requestContext"]["identity"].update(userArn=CALLER, caller="AROAEXAMPLE:ecs-task-1")
    return event


def test_the_generated_event_without_a_signer_is_refused_with_403(env: Env) -> None:
    # The sample is of an unauthenticated API (userArn null); this API is IAM-only and acts for no one.
    response = invoke("api", aws_event("apigateway_aws_proxy_post"))
    assert response["statusCode"] == 403 and json.loads(response["body"])["error"]["message"] == "no caller identity"
    assert env.queued_job_ids() == []


def test_api_post_with_a_base64_body_is_accepted_with_the_stage_in_location(env: Env) -> None:
    event = signed(aws_event("apigateway_aws_proxy_post"))
    assert event["isBase64Encoded"] is True and json.loads(base64.b64decode(event["body"]))["prompt"]
    response = invoke("api", event)
    assert response["statusCode"] == 202, response
    job_id = json.loads(response["body"])["id"]
    assert response["multiValueHeaders"]["Location"] == [f"/v1/videos/{job_id}"]
    assert env.queued_job_ids() == [job_id]
    job = JobStore("videogen-jobs").get(job_id)
    assert job is not None and job.caller == "arn:aws:iam::123456789012:role/catalog-renderer"
    assert job.caller_session == CALLER and job.request.duration == 4


def test_api_post_with_a_base64_body_that_is_not_utf8_is_400(env: Env) -> None:
    event = signed(aws_event("apigateway_aws_proxy_post"))
    event["body"] = base64.b64encode(b'{"prompt": "caf\xe9"}').decode()
    response = invoke("api", event)
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"]["message"] == "request is not UTF-8 JSON"


def test_api_post_with_a_body_that_is_not_base64_is_400(env: Env) -> None:
    event = signed(aws_event("apigateway_aws_proxy_post"))
    event["body"] = "{not base64"
    response = invoke("api", event)
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"]["fields"][0]["field"] == "body"


def test_api_post_with_a_null_body_is_400_naming_body(env: Env) -> None:
    response = invoke("api", signed(aws_event("apigateway_aws_proxy_post_null_body")))
    assert response["statusCode"] == 400
    assert [f["field"] for f in json.loads(response["body"])["error"]["fields"]] == ["body"]
    assert env.queued_job_ids() == []


def test_api_put_is_405(env: Env) -> None:
    response = invoke("api", signed(aws_event("apigateway_aws_proxy_put")))
    assert response["statusCode"] == 405 and response["multiValueHeaders"]["Allow"] == ["GET, POST"]


def test_api_get_models(env: Env) -> None:
    response = invoke("api", aws_event("apigateway_aws_proxy_get_models"))
    assert response["statusCode"] == 200 and json.loads(response["body"])["data"]


def test_submit_reports_a_message_that_is_no_job_message_as_a_failure_with_a_reason(env: Env, log_lines: Lines) -> None:
    event = aws_event("sqs_receive_message")
    [record] = event["Records"]
    # A batch item failure: after maxReceiveCount (5) the message rests in the submit DLQ, it does not loop.
    assert invoke("submit", event) == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    [line] = [line for line in log_lines() if line["message"].startswith("not a job message")]
    assert line["level"] == "ERROR" and line["message_id"] == record["messageId"]
    assert env.openrouter.requests_to("/api/v1/videos") == []


@pytest.mark.parametrize("body", ['{"job_id": 5}', "[]", '"x"', '{"job_id": ""}', "[" * 5000])
def test_submit_refuses_other_bodies_the_same_way(env: Env, body: str) -> None:
    event = aws_event("sqs_receive_message")
    event["Records"][0]["body"] = body
    assert invoke("submit", event)["batchItemFailures"] == [{"itemIdentifier": event["Records"][0]["messageId"]}]


def test_publish_skips_stream_records_that_are_not_job_items_with_a_log(env: Env, log_lines: Lines) -> None:
    event = aws_event("dynamodb_update")
    assert [r["eventName"] for r in event["Records"]] == ["INSERT", "MODIFY", "REMOVE"]
    assert invoke("publish", event) == {"batchItemFailures": []}
    skipped = [line for line in log_lines() if line["message"].startswith("stream record skipped")]
    assert [line["event_name"] for line in skipped] == ["INSERT", "MODIFY", "REMOVE"]
    assert env.events() == []


def test_fail_records_the_step_functions_error_payload(env: Env) -> None:
    event = aws_event("stepfunctions_fail_payload")
    store = JobStore("videogen-jobs")
    store.create(Job(id=event["job_id"], status=JobStatus.IN_PROGRESS, request=VideoRequest(prompt="p")))
    assert invoke("fail", event) == {"status": "failed"}
    job = store.get(event["job_id"])
    assert job is not None and job.error == "workflow error ErrorName: This is the cause of the error."
    [announced] = env.events()
    assert announced["detail-type"] == "VideoFailed"


def test_fail_with_the_payload_for_an_unknown_job_does_not_crash(env: Env) -> None:
    assert invoke("fail", aws_event("stepfunctions_fail_payload")) == {"status": "missing"}
    assert client("dynamodb").scan(TableName="videogen-jobs")["Count"] == 0


def test_fail_refuses_the_bare_step_functions_error_with_a_logged_reason(env: Env, log_lines: Lines) -> None:
    # {"Error", "Cause"} as a Catch leaves it, without the job_id the failure branches send: nothing to record.
    event = aws_event("stepfunctions_error")
    assert "job_id" not in event
    assert invoke("fail", event) == {"status": "refused"}
    [line] = [line for line in log_lines() if line["message"].startswith("not a fail event")]
    assert line["level"] == "ERROR" and line["reason"].startswith("no job_id")
    assert client("dynamodb").scan(TableName="videogen-jobs")["Count"] == 0
    assert env.events() == []
