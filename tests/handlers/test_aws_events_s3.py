"""The S3 door with events AWS authored (events/aws/, see its README). Each object is put first and its
record given the object's real ETag, as S3's notification carries it: the door reads the upload the
notification names (If-Match), so a sample's made-up ETag would name an upload that is not there."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus

import pytest

from tests.handlers.conftest import BUCKET, Env
from tests.handlers.test_aws_events import aws_event
from tests.support.handlers import invoke
from videogen.aws import client
from videogen.observability import logger

Lines = Callable[[], list[dict[str, Any]]]
REQUEST = {"prompt": "A red backpack on a wet city sidewalk at night", "duration": 4, "resolution": "720p"}


@pytest.fixture
def log_lines(monkeypatch: pytest.MonkeyPatch) -> Lines:
    buffer = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", buffer)
    return lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]


def put(record: dict[str, Any], body: bytes) -> None:
    key = unquote_plus(record["s3"]["object"]["key"])
    record["s3"]["object"]["eTag"] = client("s3").put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"].strip('"')


def objects() -> list[str]:
    return [o["Key"] for o in client("s3").list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def test_the_s3_test_event_writes_nothing_and_says_so(env: Env, log_lines: Lines) -> None:
    event = aws_event("s3_test_event")
    assert event["Event"] == "s3:TestEvent"
    invoke("intake_s3", event)  # no exception
    assert objects() == [] and env.queued_job_ids() == [] and env.events() == []
    assert any("test" in line["message"].lower() for line in log_lines())


def test_the_generated_put_becomes_a_job_with_a_receipt(env: Env) -> None:
    event = aws_event("s3_put")
    put(event["Records"][0], json.dumps(REQUEST).encode())
    invoke("intake_s3", event)
    receipt = json.loads(client("s3").get_object(Bucket=BUCKET, Key="requests/aws-sample.job.json")["Body"].read())
    assert env.queued_job_ids() == [receipt["id"]]


def test_a_multi_record_put_with_encoded_keys_makes_one_job_and_receipt_per_object(env: Env, log_lines: Lines) -> None:
    event = aws_event("s3_put_multi")
    keys = [unquote_plus(r["s3"]["object"]["key"]) for r in event["Records"]]
    assert keys == ["requests/team/spring launch.json", "requests/café/バッグ ü.json", "requests/a+b/c.json"]
    for record in event["Records"]:
        put(record, json.dumps(REQUEST).encode())
    invoke("intake_s3", event)
    receipts = [
        json.loads(client("s3").get_object(Bucket=BUCKET, Key=k.removesuffix(".json") + ".job.json")["Body"].read())
        for k in keys
    ]
    assert [r["request"] for r in receipts] == keys
    assert sorted(env.queued_job_ids()) == sorted(r["id"] for r in receipts) and len({r["id"] for r in receipts}) == 3
    # Part 6: each record's lines carry its own job's id (or none), never an earlier record's.
    seen = [line["job_id"] for line in log_lines() if "job_id" in line]
    order = [r["id"] for r in receipts]
    assert [order.index(i) for i in seen] == sorted(order.index(i) for i in seen)
