"""The local stack with stand-in handlers: names and wiring as in template.yaml, the SQS poller's
Lambda semantics, the real state machine, the front door, the results queue, Lambda's asynchronous
retries for the intake doors and the fail function's safety net."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus, urlsplit

import boto3
import httpx
import pytest

from tests.local.standin import forget_loaded_functions, invocations, write_tree
from videogen_local.localmode.names import FUNCTIONS, Names
from videogen_local.localmode.stack import LocalStack, LocalStackConfig

STACK = "lstest"
NAMES = Names(stack=STACK)
KEY = "sk-local-stack-test"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, Path]]:
    root = tmp_path_factory.mktemp("standin")
    log = write_tree(root)
    monkey = pytest.MonkeyPatch()
    monkey.setenv("VIDEOGEN_ROOT", str(root))
    monkey.setenv("STAND_IN_LOG", str(log))
    config = LocalStackConfig(
        poll_interval=0,
        max_polls=5,
        stack_name=STACK,
        openrouter_base_url="http://127.0.0.1:9",
        openrouter_api_key=KEY,
        queue_visibility_seconds=1,
        async_retry_delay_seconds=0.2,
        execution_watch_seconds=0.2,
    )
    try:
        with LocalStack(config) as local:
            yield local, log
    finally:
        monkey.undo()
        forget_loaded_functions()


def aws(local: LocalStack, service: str) -> Any:
    return boto3.client(service, endpoint_url=local.info["aws_endpoint_url"], region_name="us-east-1")


def wait_for(predicate: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return result


def drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages"):
        for message in batch:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


# --- resources and environment ----------------------------------------------------------------------


def test_resources_exist_with_the_template_names(stack: tuple[LocalStack, Path]) -> None:
    local, _ = stack
    info = local.info
    assert info["region"] == "us-east-1" and info["simulator"] is False
    assert info["bucket"] == f"{STACK}-123456789012-us-east-1" and info["event_bus"] == f"{STACK}-bus"
    assert info["jobs_table"] == f"{STACK}-jobs"
    assert info["state_machine_arn"] == f"arn:aws:states:us-east-1:123456789012:stateMachine:{STACK}-video-job"
    assert urlsplit(info["api_url"]).path == "/v1"

    table = aws(local, "dynamodb").describe_table(TableName=f"{STACK}-jobs")["Table"]
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    indexes = {index["IndexName"]: index for index in table["GlobalSecondaryIndexes"]}
    assert set(indexes) == {"by_caller", "by_openrouter_job_id", "by_batch"}
    assert indexes["by_batch"]["KeySchema"] == [
        {"AttributeName": "batch_id", "KeyType": "HASH"},
        {"AttributeName": "batch_line", "KeyType": "RANGE"},
    ]
    assert indexes["by_caller"]["KeySchema"] == [
        {"AttributeName": "caller", "KeyType": "HASH"},
        {"AttributeName": "created_at", "KeyType": "RANGE"},
    ]
    assert indexes["by_openrouter_job_id"]["KeySchema"] == [{"AttributeName": "openrouter_job_id", "KeyType": "HASH"}]
    assert indexes["by_openrouter_job_id"]["Projection"] == {"ProjectionType": "KEYS_ONLY"}

    aws(local, "s3").head_bucket(Bucket=info["bucket"])
    notification = aws(local, "s3").get_bucket_notification_configuration(Bucket=info["bucket"])
    targets = notification["LambdaFunctionConfigurations"]
    assert {target["LambdaFunctionArn"] for target in targets} == {NAMES.function_arn("intake_s3")}
    rules = [{r["Name"]: r["Value"] for r in target["Filter"]["Key"]["FilterRules"]} for target in targets]
    # Single requests and batch manifests (a .jsonl does not end in .json).
    assert rules == [{"prefix": "requests/", "suffix": ".json"}, {"prefix": "requests/", "suffix": ".jsonl"}]

    sqs = aws(local, "sqs")
    assert info["queue_url"].endswith(f"/{STACK}-submit")
    attributes = sqs.get_queue_attributes(QueueUrl=info["queue_url"], AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(f":{STACK}-submit-dlq") and int(redrive["maxReceiveCount"]) == 5
    for name in ("submit-dlq", "intake-dlq", "results"):
        sqs.get_queue_url(QueueName=f"{STACK}-{name}")
    assert info["dead_letter_queue_url"].endswith(f"/{STACK}-submit-dlq")
    assert info["intake_dead_letter_queue_url"].endswith(f"/{STACK}-intake-dlq")

    events = aws(local, "events")
    events.describe_event_bus(Name=f"{STACK}-bus")
    patterns = {
        rule["Name"]: json.loads(rule["EventPattern"])
        for rule in events.list_rules(EventBusName=f"{STACK}-bus")["Rules"]
    }
    assert {"detail-type": ["VideoRequested"]} in patterns.values() and {"source": ["videogen"]} in patterns.values()
    (safety_net,) = [r for r in events.list_rules()["Rules"] if r["Name"].endswith("execution-ended")]
    assert json.loads(safety_net["EventPattern"])["detail"]["stateMachineArn"] == [info["state_machine_arn"]]

    machine = aws(local, "stepfunctions").describe_state_machine(stateMachineArn=info["state_machine_arn"])
    assert machine["type"] == "STANDARD" and "${" not in machine["definition"]
    for folder in ("poll", "download", "fail"):
        assert json.dumps(NAMES.function_arn(folder)) in machine["definition"]

    functions = {f["FunctionName"]: f for f in aws(local, "lambda").list_functions()["Functions"]}
    assert set(functions) == {NAMES.function(folder) for folder in FUNCTIONS}
    assert all(f["Runtime"] == "python3.12" and f["Handler"] == "app.lambda_handler" for f in functions.values())
    assert functions[f"{STACK}-download"]["MemorySize"] == 512 and functions[f"{STACK}-api"]["Timeout"] == 29

    secret = aws(local, "secretsmanager").get_secret_value(SecretId=os.environ["OPENROUTER_API_KEY_SECRET"])
    assert secret["Name"] == f"{STACK}/openrouter-api-key" and secret["SecretString"] == KEY


def test_the_handlers_environment(stack: tuple[LocalStack, Path]) -> None:
    local, _ = stack
    port = urlsplit(local.info["aws_endpoint_url"]).port
    expected = {
        "JOBS_TABLE": f"{STACK}-jobs",
        "BUCKET": local.info["bucket"],
        "QUEUE_URL": local.info["queue_url"],
        "EVENT_BUS": f"{STACK}-bus",
        "STATE_MACHINE_ARN": local.info["state_machine_arn"],
        "OPENROUTER_BASE_URL": "http://127.0.0.1:9",
        "POLL_INTERVAL_SECONDS": "0",
        "MAX_POLLS": "5",
        # Below the visibility timeout (1 s here): a dead submit's claim is stale when its message returns.
        "SUBMIT_CLAIM_SECONDS": "1",
        "DEFAULT_MODEL": "bytedance/seedance-2.0-fast",
        "POWERTOOLS_SERVICE_NAME": "videogen",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": local.info["aws_endpoint_url"],
        "MOTO_PORT": str(port),
        # The reference preflight is on, with the deployed rules, unless local serve is told otherwise.
        "VIDEOGEN_PREFLIGHT": "on",
        "VIDEOGEN_PREFLIGHT_ALLOW_PRIVATE": "0",
    }
    assert {name: os.environ.get(name) for name in expected} == expected
    assert os.environ["OPENROUTER_API_KEY_SECRET"].startswith("arn:aws:secretsmanager:us-east-1:123456789012:secret:")
    assert "OPENROUTER_API_KEY" not in os.environ  # the key is only in Secrets Manager, as deployed
    assert os.environ["POWERTOOLS_METRICS_NAMESPACE"] and os.environ["POWERTOOLS_LOG_LEVEL"]


def test_one_local_stack_per_process(stack: tuple[LocalStack, Path]) -> None:
    with pytest.raises(RuntimeError, match="already running"):
        LocalStack(LocalStackConfig(openrouter_base_url="http://127.0.0.1:9", openrouter_api_key="k")).start()


# --- the doors --------------------------------------------------------------------------------------


def test_s3_requests_invoke_intake_s3_with_the_s3_event(stack: tuple[LocalStack, Path]) -> None:
    local, log = stack
    s3 = aws(local, "s3")
    s3.put_object(Bucket=local.info["bucket"], Key="requests/x y ü.json", Body=b"{}")
    s3.put_object(Bucket=local.info["bucket"], Key="requests/notes.txt", Body=b"{}")
    s3.put_object(Bucket=local.info["bucket"], Key="videos/x.json", Body=b"{}")
    entries = invocations(log, "intake-s3")
    records = [record for entry in entries for record in entry["event"]["Records"]]
    assert [unquote_plus(record["s3"]["object"]["key"]) for record in records] == ["requests/x y ü.json"]
    (record,) = records
    assert record["eventSource"] == "aws:s3" and record["eventName"] == "ObjectCreated:Put"
    # As S3's: the object's ETag without quotes and a sequencer (the S3 door's identity of an upload).
    assert len(record["s3"]["object"]["eTag"]) == 32 and int(record["s3"]["object"]["sequencer"], 16) > 0
    assert record["s3"]["bucket"]["name"] == local.info["bucket"] and record["awsRegion"] == "us-east-1"
    # The context Powertools reads.
    entry = entries[0]
    assert entry["arn"] == NAMES.function_arn("intake_s3") and entry["remaining_ms"] > 0 and entry["request_id"]
    assert entry["log_group"] == f"/aws/lambda/{STACK}-intake-s3" and entry["memory_mb"] == 256


def test_video_requested_events_invoke_intake_event(stack: tuple[LocalStack, Path]) -> None:
    local, log = stack
    aws(local, "events").put_events(
        Entries=[
            {
                "Source": "acme.shop",
                "DetailType": kind,
                "Detail": json.dumps({"prompt": kind}),
                "EventBusName": local.info["event_bus"],
            }
            for kind in ("VideoRequested", "SomethingElse")
        ]
    )
    (entry,) = invocations(log, "intake-event")
    event = entry["event"]
    assert event["detail-type"] == "VideoRequested" and event["source"] == "acme.shop"
    assert event["detail"] == {"prompt": "VideoRequested"} and event["id"] and event["account"] == "123456789012"


def test_failed_intake_invocations_are_retried_then_sent_to_the_intake_dlq(stack: tuple[LocalStack, Path]) -> None:
    local, log = stack
    before = len(invocations(log, "intake-s3"))
    aws(local, "s3").put_object(Bucket=local.info["bucket"], Key="requests/fail-me.json", Body=b"{}")
    sqs = aws(local, "sqs")
    (record,) = wait_for(lambda: drain(sqs, local.info["intake_dead_letter_queue_url"]), what="the intake DLQ")
    assert len(invocations(log, "intake-s3")) - before == 3  # the first attempt and MaximumRetryAttempts 2
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestContext"]["functionArn"].startswith(NAMES.function_arn("intake_s3"))
    assert unquote_plus(record["requestPayload"]["Records"][0]["s3"]["object"]["key"]) == "requests/fail-me.json"
    assert record["responsePayload"]["errorType"] == "RuntimeError"


def test_front_door_turns_http_into_rest_proxy_events(stack: tuple[LocalStack, Path]) -> None:
    local, log = stack
    caller = "arn:aws:iam::123456789012:user/alice"
    response = httpx.post(
        f"{local.info['api_url']}/videos?dry=1&tag=a&tag=b",
        json={"prompt": "p"},
        headers={"X-Videogen-Caller": caller},
    )
    assert response.status_code == 201 and response.json() == {"stand_in": "api", "resource": "/videos"}
    assert response.headers["X-Stand-In"] == "api" and response.headers["X-Multi"] == "a, b"
    event = invocations(log, "api")[-1]["event"]
    assert (event["resource"], event["path"], event["httpMethod"]) == ("/videos", "/videos", "POST")
    assert json.loads(event["body"]) == {"prompt": "p"} and event["isBase64Encoded"] is False
    assert event["pathParameters"] is None
    assert event["queryStringParameters"] == {"dry": "1", "tag": "b"}
    assert event["multiValueQueryStringParameters"] == {"dry": ["1"], "tag": ["a", "b"]}
    context = event["requestContext"]
    assert context["stage"] == "v1" and context["resourcePath"] == "/videos" and context["httpMethod"] == "POST"
    assert context["identity"]["userArn"] == caller and context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["requestId"]
    assert {name.lower() for name in event["headers"]} >= {"content-type", "x-videogen-caller"}
    assert all(isinstance(values, list) for values in event["multiValueHeaders"].values())

    # Without the stage prefix too; the caller defaults to the local developer.
    root = local.info["api_url"].removesuffix("/v1")
    assert httpx.get(f"{root}/videos/abc").status_code == 201
    event = invocations(log, "api")[-1]["event"]
    assert (event["resource"], event["path"], event["pathParameters"]) == ("/videos/{id}", "/videos/abc", {"id": "abc"})
    assert event["requestContext"]["identity"]["userArn"] == "arn:aws:iam::123456789012:user/local-developer"
    assert event["body"] is None and event["queryStringParameters"] is None


def test_front_door_limits_and_integration_errors(stack: tuple[LocalStack, Path]) -> None:
    local, log = stack
    calls = len(invocations(log, "api"))
    too_big = httpx.post(f"{local.info['api_url']}/videos", content=b"x" * (1024 * 1024 + 1))
    assert too_big.status_code == 413 and len(invocations(log, "api")) == calls  # refused before the function
    failed = httpx.get(f"{local.info['api_url']}/videos/explode")  # a route: the function runs, and fails
    assert failed.status_code == 502 and failed.json() == {"message": "Internal server error"}


def test_front_door_answers_the_gateways_404_for_a_path_or_method_without_a_route(
    stack: tuple[LocalStack, Path],
) -> None:
    from videogen_local.localmode.front_door import NOT_FOUND_BODY

    local, log = stack
    calls = len(invocations(log, "api"))
    for method, path in (
        ("GET", "/no-such-route"),
        ("GET", "/api/v1/chat/completions"),
        ("DELETE", "/api/v1/videos/abc"),  # a compatible route, but not this method
        ("GET", "/webhooks/openrouter"),  # the callback takes POST only
    ):
        response = httpx.request(method, f"{local.info['api_url']}{path}", headers={"Authorization": "Bearer x"})
        assert response.status_code == 404 and response.json() == NOT_FOUND_BODY, (method, path)
    assert len(invocations(log, "api")) == calls  # no function ran, as no authorizer did
    # ANY routes take every method to the function, which answers 405 itself.
    assert httpx.request("PATCH", f"{local.info['api_url']}/videos/abc").status_code == 201


def test_front_door_throttles_as_the_stage_does(stack: tuple[LocalStack, Path]) -> None:
    from videogen_local.localmode.throttle import THROTTLED_BODY, TokenBucket

    local, log = stack
    door = local._front_door
    saved = door.throttle
    door.throttle = TokenBucket(rate=0.001, burst=2)
    try:
        calls = len(invocations(log, "api"))
        answers = [httpx.get(f"{local.info['api_url']}/videos/abc") for _ in range(3)]
        assert [a.status_code for a in answers] == [201, 201, 429]
        assert answers[2].json() == THROTTLED_BODY
        assert len(invocations(log, "api")) == calls + 2  # the throttled one never reached the function
    finally:
        door.throttle = saved


def test_front_door_reads_chunked_bodies_and_repeated_headers(stack: tuple[LocalStack, Path]) -> None:
    local, log = stack
    response = httpx.post(
        f"{local.info['api_url']}/videos",
        content=iter([b'{"prompt": ', b'"chunked"}']),  # an iterator: sent with Transfer-Encoding: chunked
        headers=[("X-Tag", "a"), ("X-Tag", "b"), ("Content-Type", "application/json")],
    )
    assert response.status_code == 201
    event = invocations(log, "api")[-1]["event"]
    assert json.loads(event["body"]) == {"prompt": "chunked"}
    assert event["multiValueHeaders"]["X-Tag"] == ["a", "b"] and event["headers"]["X-Tag"] == "b"
    assert event["headers"]["Content-Type"] == "application/json"  # names keep their case, as in API Gateway

    calls = len(invocations(log, "api"))
    too_big = httpx.post(f"{local.info['api_url']}/videos", content=iter([b"x" * 600_000, b"y" * 600_000]))
    assert too_big.status_code == 413 and len(invocations(log, "api")) == calls


def test_front_door_refuses_a_bad_content_length(stack: tuple[LocalStack, Path]) -> None:
    local, log = stack
    calls = len(invocations(log, "api"))
    url = urlsplit(local.info["api_url"])
    for length in ("-1", "abc"):
        with socket.create_connection((url.hostname, url.port), timeout=10) as connection:
            connection.sendall(f"POST /v1/videos HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode())
            assert connection.recv(1024).startswith(b"HTTP/1.1 400")
    assert len(invocations(log, "api")) == calls


# --- the submit queue -------------------------------------------------------------------------------


def submit_records(log: Path, job_id: str) -> list[dict[str, Any]]:
    return [
        record
        for entry in invocations(log, "submit")
        for record in entry["event"]["Records"]
        if json.loads(record["body"])["job_id"] == job_id
    ]


def test_submit_gets_lambda_sqs_events(stack: tuple[LocalStack, Path]) -> None:
    local, log = stack
    body = json.dumps({"job_id": "shape"})
    aws(local, "sqs").send_message(
        QueueUrl=local.info["queue_url"],
        MessageBody=body,
        MessageAttributes={"trace": {"DataType": "String", "StringValue": "t-1"}},
    )
    (record,) = wait_for(lambda: submit_records(log, "shape"), what="the submit invocation")
    assert set(record) == {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    }
    assert record["body"] == body and record["md5OfBody"] == hashlib.md5(body.encode()).hexdigest()
    assert record["eventSource"] == "aws:sqs" and record["awsRegion"] == "us-east-1"
    assert record["eventSourceARN"] == f"arn:aws:sqs:us-east-1:123456789012:{STACK}-submit"
    assert record["attributes"]["ApproximateReceiveCount"] == "1" and record["attributes"]["SentTimestamp"]
    assert record["messageAttributes"]["trace"]["stringValue"] == "t-1"
    assert record["messageAttributes"]["trace"]["dataType"] == "String"


def test_batch_item_failures_are_redelivered_and_the_rest_deleted(stack: tuple[LocalStack, Path]) -> None:
    local, log = stack
    sqs = aws(local, "sqs")
    sqs.send_message_batch(
        QueueUrl=local.info["queue_url"],
        Entries=[
            {"Id": "ok", "MessageBody": json.dumps({"job_id": "batch-ok"})},
            {"Id": "bad", "MessageBody": json.dumps({"job_id": "batch-bad", "fail": True})},
        ],
    )
    wait_for(lambda: len(submit_records(log, "batch-bad")) >= 2, what="the redelivery")
    redelivered = submit_records(log, "batch-bad")
    assert [r["attributes"]["ApproximateReceiveCount"] for r in redelivered[:2]] == ["1", "2"]
    assert redelivered[0]["messageId"] == redelivered[1]["messageId"]
    assert len(submit_records(log, "batch-ok")) == 1


def test_a_failed_invocation_returns_the_whole_batch(stack: tuple[LocalStack, Path]) -> None:
    local, log = stack
    aws(local, "sqs").send_message(
        QueueUrl=local.info["queue_url"], MessageBody=json.dumps({"job_id": "raise", "raise": True})
    )
    records = wait_for(lambda: [r for r in submit_records(log, "raise") if r], what="the first attempt")
    wait_for(lambda: len(submit_records(log, "raise")) >= 2, what="the redelivery")
    records = submit_records(log, "raise")
    assert [r["attributes"]["ApproximateReceiveCount"] for r in records] == ["1", "2"]
    time.sleep(1.5)  # the second invocation succeeded: the message was deleted, no third delivery
    assert len(submit_records(log, "raise")) == 2


# --- the state machine ------------------------------------------------------------------------------


def start_execution(local: LocalStack, job_id: str, wait_seconds: int = 0) -> str:
    execution_input = {
        "job_id": job_id,
        "openrouter_job_id": f"or-{job_id}",
        "polling_url": f"http://127.0.0.1:9/api/v1/videos/or-{job_id}",
        "wait_seconds": wait_seconds,
        "max_polls": 5,
        "poll": {"status": "pending", "poll_count": 0},
    }
    started = aws(local, "stepfunctions").start_execution(
        stateMachineArn=local.info["state_machine_arn"], name=job_id, input=json.dumps(execution_input)
    )
    arn: str = started["executionArn"]
    return arn


def finished(local: LocalStack, arn: str, timeout: float = 20) -> dict[str, Any]:
    sfn = aws(local, "stepfunctions")
    described: dict[str, Any] = wait_for(
        lambda: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d, timeout, arn
    )
    return described


def safety_net_events(log: Path, job_id: str) -> list[dict[str, Any]]:
    return [
        e["event"]
        for e in invocations(log, "fail")
        if e["event"].get("detail-type") == "Step Functions Execution Status Change"
        and e["event"]["detail"]["name"] == job_id
    ]


def test_the_real_state_machine_runs_to_success(stack: tuple[LocalStack, Path]) -> None:
    local, log = stack
    execution = finished(local, start_execution(local, "sm-ok"))
    assert execution["status"] == "SUCCEEDED", execution
    assert json.loads(execution["output"])["outcome"] == {"status": "completed"}
    (download,) = [e["event"] for e in invocations(log, "download") if e["event"]["job_id"] == "sm-ok"]
    assert download == {
        "job_id": "sm-ok",
        "openrouter_job_id": "or-sm-ok",
        "unsigned_urls": ["http://127.0.0.1:9/video.mp4"],
    }


def test_transient_errors_are_retried_by_error_name(stack: tuple[LocalStack, Path]) -> None:
    local, log = stack
    execution = finished(local, start_execution(local, "retry-1"))  # Retry IntervalSeconds 2 really sleeps
    assert execution["status"] == "SUCCEEDED", execution
    assert len([e for e in invocations(log, "poll") if e["event"]["job_id"] == "retry-1"]) == 2


def test_a_failed_execution_reaches_the_fail_function_twice(stack: tuple[LocalStack, Path]) -> None:
    """Catch → RecordError (from the workflow), then the safety net (from the status-change event)."""
    local, log = stack
    execution = finished(local, start_execution(local, "boom-1"))
    assert execution["status"] == "FAILED" and execution["error"] == "VideoJobFailed"
    recorded = [e["event"] for e in invocations(log, "fail") if e["event"].get("job_id") == "boom-1"]
    assert recorded and recorded[0]["failure"]["Error"] == "ValueError"
    (event,) = wait_for(lambda: safety_net_events(log, "boom-1"), what="the safety-net event")
    assert event["source"] == "aws.states" and event["resources"] == [execution["executionArn"]]
    detail = event["detail"]
    assert (detail["status"], detail["error"]) == ("FAILED", "VideoJobFailed")
    assert detail["stateMachineArn"] == local.info["state_machine_arn"]
    assert isinstance(detail["startDate"], int) and isinstance(detail["stopDate"], int)


def test_an_aborted_execution_triggers_the_safety_net(stack: tuple[LocalStack, Path]) -> None:
    local, log = stack
    arn = start_execution(local, "abort-1", wait_seconds=60)
    aws(local, "stepfunctions").stop_execution(executionArn=arn, error="Cancelled", cause="by the test")
    assert finished(local, arn)["status"] == "ABORTED"
    (event,) = wait_for(lambda: safety_net_events(log, "abort-1"), what="the safety-net event")
    assert event["detail"]["status"] == "ABORTED"
    assert not [e for e in invocations(log, "poll") if e["event"]["job_id"] == "abort-1"]


# --- outbound events ----------------------------------------------------------------------------------


def test_outbound_events_land_in_the_results_queue(stack: tuple[LocalStack, Path]) -> None:
    local, _ = stack
    aws(local, "events").put_events(
        Entries=[
            {
                "Source": source,
                "DetailType": "VideoCompleted",
                "Detail": json.dumps({"job_id": f"from-{source}"}),
                "EventBusName": local.info["event_bus"],
            }
            for source in ("videogen", "someone.else")
        ]
    )
    received = drain(aws(local, "sqs"), local.info["results_queue_url"])
    assert [(e["source"], e["detail-type"], e["detail"]) for e in received] == [
        ("videogen", "VideoCompleted", {"job_id": "from-videogen"})
    ]


def test_a_message_that_keeps_failing_ends_in_the_dlq_and_redrive_brings_it_back(
    stack: tuple[LocalStack, Path],
) -> None:
    import subprocess
    import sys

    local, log = stack
    sqs = aws(local, "sqs")
    sqs.send_message(QueueUrl=local.info["queue_url"], MessageBody=json.dumps({"job_id": "dlq-bad", "fail": True}))
    dlq = local.info["dead_letter_queue_url"]

    def dead_lettered() -> bool:
        peek = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
        return any(json.loads(m["Body"]).get("job_id") == "dlq-bad" for m in peek)

    wait_for(dead_lettered, timeout=30, what="the message in the DLQ")
    assert len(submit_records(log, "dlq-bad")) == 5  # maxReceiveCount

    command = [str(Path(sys.executable).with_name("videogen")), "redrive", "--dlq-url", dlq]
    command += ["--queue-url", local.info["queue_url"], "--endpoint-url", local.info["aws_endpoint_url"]]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    assert json.loads(result.stdout)["moved"] >= 1
    wait_for(lambda: len(submit_records(log, "dlq-bad")) > 5, what="the redriven message")


def test_callbacks_are_off_with_the_real_openrouter_and_say_so(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing public can reach a local receiver: no callback_url is sent, the ready line says why."""
    real = LocalStack(LocalStackConfig(openrouter_api_key="sk-or-real", webhook_secret="whsec-x"))
    with caplog.at_level("WARNING", logger="videogen.local"):
        url, said = real._callbacks(8787)
    assert url is None and said.startswith("off (the real OpenRouter cannot reach a loopback URL)")
    assert "cannot call back a local URL" in caplog.text
    assert LocalStack(LocalStackConfig())._callbacks(8787) == (None, "off (no OPENROUTER_WEBHOOK_SECRET): polling only")
    simulated = LocalStack(LocalStackConfig(webhook_secret="whsec-x"))
    simulated.simulator = object()  # as after _openrouter() started the simulator
    assert simulated._callbacks(8787) == (
        "http://127.0.0.1:8787/v1/webhooks/openrouter",
        "on (simulator): callbacks, polling as fallback",
    )
