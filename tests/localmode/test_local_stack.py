"""The local stack's own plumbing, with stand-in handlers: SQS poller semantics (partial batch
failures, redelivery, DLQ) and the moto patches (S3 and EventBridge → Lambda)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest

from videogen_local.localmode.names import FUNCTIONS
from videogen_local.localmode.stack import LocalStack, LocalStackConfig

ROOT = Path(__file__).resolve().parents[2]
STAND_IN = """
import json, pathlib, os
def lambda_handler(event, context):
    log = pathlib.Path(os.environ["STAND_IN_LOG"])
    with log.open("a") as f:
        f.write(json.dumps({"function": context.function_name, "event": event}) + "\\n")
    if "Records" in event and event["Records"][0].get("eventSource") == "aws:sqs":
        failed = [r["messageId"] for r in event["Records"] if json.loads(r["body"]).get("fail")]
        return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}
    return {"statusCode": 200, "body": json.dumps({"echo": event.get("path")})}
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, Path]]:
    root = tmp_path_factory.mktemp("standin")
    for folder in FUNCTIONS:
        (root / "functions" / folder).mkdir(parents=True)
        (root / "functions" / folder / "app.py").write_text(STAND_IN)
    shutil.copytree(ROOT / "statemachine", root / "statemachine")
    log = root / "invocations.jsonl"
    log.touch()
    monkey = pytest.MonkeyPatch()
    monkey.setenv("VIDEOGEN_ROOT", str(root))
    monkey.setenv("STAND_IN_LOG", str(log))
    config = LocalStackConfig(
        openrouter_base_url="http://127.0.0.1:9",
        openrouter_api_key="k",
        stack_name="standin",
        queue_visibility_seconds=1,
    )
    with LocalStack(config) as local:
        yield local, log
    monkey.undo()
    import sys

    for folder in FUNCTIONS:  # the real handlers must load again for other tests
        sys.modules.pop(f"videogen_functions.{folder}", None)


def invocations(log: Path, function: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    return [line["event"] for line in lines if line["function"] == f"standin-{function}"]


def client(local: LocalStack, service: str) -> Any:
    return boto3.client(service, endpoint_url=local.info["aws_endpoint_url"], region_name="us-east-1")


def wait_for(predicate: Any, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_partial_batch_failures_are_redelivered_and_end_in_the_dlq(stack: tuple[LocalStack, Path]) -> None:
    local, log = stack
    sqs = client(local, "sqs")
    sqs.send_message(QueueUrl=local.info["queue_url"], MessageBody=json.dumps({"job_id": "ok"}))
    sqs.send_message(QueueUrl=local.info["queue_url"], MessageBody=json.dumps({"job_id": "bad", "fail": True}))
    dlq = sqs.get_queue_url(QueueName="standin-submit-dlq")["QueueUrl"]

    def in_dlq() -> bool:
        attributes = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attributes["Attributes"]["ApproximateNumberOfMessages"]) == 1

    wait_for(in_dlq, timeout=30)
    bodies = [json.loads(r["body"])["job_id"] for e in invocations(log, "submit") for r in e["Records"]]
    assert bodies.count("ok") == 1 and bodies.count("bad") == 5  # maxReceiveCount
    record = invocations(log, "submit")[0]["Records"][0]
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"].endswith(":standin-submit")


def test_s3_notifications_reach_the_intake_function_for_requests_only(stack: tuple[LocalStack, Path]) -> None:
    local, log = stack
    s3 = client(local, "s3")
    s3.put_object(Bucket=local.info["bucket"], Key="requests/a b ü.json", Body=b"{}")
    s3.put_object(Bucket=local.info["bucket"], Key="references/x.json", Body=b"{}")
    keys = [r["s3"]["object"]["key"] for e in invocations(log, "intake-s3") for r in e.get("Records", [])]
    # URL-encoded as S3 sends it (moto also encodes "/", AWS does not; unquote_plus reads both).
    assert [unquote_plus(key) for key in keys] == ["requests/a b ü.json"] and keys[0] != "requests/a b ü.json"


def test_eventbridge_rule_delivers_video_requested_to_the_intake_function(stack: tuple[LocalStack, Path]) -> None:
    local, log = stack
    client(local, "events").put_events(
        Entries=[
            {"Source": "t", "DetailType": "VideoRequested", "Detail": "{}", "EventBusName": local.info["event_bus"]},
            {"Source": "t", "DetailType": "Other", "Detail": "{}", "EventBusName": local.info["event_bus"]},
        ]
    )
    assert [e["detail-type"] for e in invocations(log, "intake-event")] == ["VideoRequested"]


def test_front_door_invokes_the_api_function(stack: tuple[LocalStack, Path]) -> None:
    import httpx

    local, _ = stack
    response = httpx.get(f"{local.info['api_url']}/videos/abc")
    assert response.status_code == 200 and response.json() == {"echo": "/videos/abc"}
    assert httpx.post(f"{local.info['api_url']}/videos", content=b"x" * (1024 * 1024 + 1)).status_code == 413


def test_redrive_moves_dead_letters_back(stack: tuple[LocalStack, Path]) -> None:
    import subprocess
    import sys

    local, _ = stack
    sqs = client(local, "sqs")
    dlq = sqs.create_queue(QueueName="standin-redrive-dlq")["QueueUrl"]
    target = sqs.create_queue(QueueName="standin-redrive-target")["QueueUrl"]
    for index in range(12):
        sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"job_id": f"j{index}"}))
    videogen = Path(sys.executable).with_name("videogen")
    result = subprocess.run(
        [
            str(videogen),
            "redrive",
            "--dlq-url",
            dlq,
            "--queue-url",
            target,
            "--endpoint-url",
            local.info["aws_endpoint_url"],
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**__import__("os").environ, "AWS_DEFAULT_REGION": "us-east-1"},
    )
    assert json.loads(result.stdout) == {"moved": 12}
    moved = []
    while batch := sqs.receive_message(QueueUrl=target, MaxNumberOfMessages=10).get("Messages"):
        moved += [json.loads(m["Body"])["job_id"] for m in batch]
        for m in batch:
            sqs.delete_message(QueueUrl=target, ReceiptHandle=m["ReceiptHandle"])
    assert sorted(moved) == sorted(f"j{i}" for i in range(12))
    assert sqs.receive_message(QueueUrl=dlq).get("Messages") is None
