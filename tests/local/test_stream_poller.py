"""The stand-in for Lambda's DynamoDB-stream event source mapping, on a real moto stream: the template's
filter, batches, partial batch failures, bisection on function errors, retries and the on-failure
destination."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from videogen_local.localmode.stream_poller import StreamPoller, StreamSource

TABLE = "videogen-jobs"
TEMPLATE_SOURCE = StreamSource.outbox()


@pytest.fixture(autouse=True)
def _no_retry_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("videogen_local.localmode.stream_poller.RETRY_PAUSE_SECONDS", 0)


class Function:
    """Stands in for the publish function: records each batch, fails the way it is told to."""

    def __init__(self, fail_items: set[str] = frozenset(), raise_on: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.batches: list[list[str]] = []
        self.fail_items, self.raise_on = fail_items, raise_on

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        ids = [(r["dynamodb"]["SequenceNumber"], r["dynamodb"]["NewImage"]["id"]["S"]) for r in event["Records"]]
        self.batches.append([job_id for _, job_id in ids])
        if any(job_id in self.raise_on for _, job_id in ids):
            raise RuntimeError("the function failed")
        return {"batchItemFailures": [{"itemIdentifier": seq} for seq, job_id in ids if job_id in self.fail_items]}


@pytest.fixture
def moto_stream(aws: None) -> Iterator[tuple[Any, Any, str, str]]:
    dynamodb = boto3.client("dynamodb")
    sqs = boto3.client("sqs")
    dlq = sqs.create_queue(QueueName="outbox-dlq")["QueueUrl"]
    arn = dynamodb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    yield dynamodb, sqs, arn, dlq


def poller(moto_stream: tuple[Any, Any, str, str], function: Function, source: StreamSource) -> StreamPoller:
    _, sqs, arn, dlq = moto_stream
    streams = boto3.client("dynamodbstreams", config=Config(account_id_endpoint_mode="disabled"))
    return StreamPoller(
        streams, arn, function, "arn:aws:lambda:us-east-1:123456789012:function:publish", source, sqs, dlq
    )


def end_jobs(dynamodb: Any, *job_ids: str, status: str = "completed") -> None:
    for job_id in job_ids:
        key = {"id": {"S": job_id}}
        dynamodb.put_item(TableName=TABLE, Item={**key, "status": {"S": "queued"}})
        dynamodb.update_item(
            TableName=TABLE,
            Key=key,
            UpdateExpression="SET #s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": "submitted"}},
        )
        dynamodb.update_item(
            TableName=TABLE,
            Key=key,
            UpdateExpression="SET #s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": status}},
        )


def dead_letters(sqs: Any, dlq: str) -> list[dict[str, Any]]:
    messages = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_the_template_source_is_read_as_written() -> None:
    assert TEMPLATE_SOURCE.batch_size == 25
    assert TEMPLATE_SOURCE.maximum_retry_attempts == 10
    assert TEMPLATE_SOURCE.bisect_on_error and TEMPLATE_SOURCE.report_item_failures
    assert len(TEMPLATE_SOURCE.patterns) == 1


def test_only_moves_into_a_terminal_status_are_delivered_in_order(moto_stream: Any) -> None:
    dynamodb, sqs, _, dlq = moto_stream
    end_jobs(dynamodb, "a", "b")
    end_jobs(dynamodb, "c", status="cancelled")
    function = Function()
    assert poller(moto_stream, function, TEMPLATE_SOURCE).poll_once() == 3  # of 9 records
    assert function.batches == [["a", "b", "c"]]
    assert dead_letters(sqs, dlq) == []


def test_batches_are_at_most_batch_size(moto_stream: Any) -> None:
    dynamodb, *_ = moto_stream
    end_jobs(dynamodb, *(f"j{n:02}" for n in range(30)))
    function = Function()
    poller(moto_stream, function, TEMPLATE_SOURCE).poll_once()
    assert [len(batch) for batch in function.batches] == [25, 5]


def test_an_item_failure_is_retried_from_that_record_then_dead_lettered(moto_stream: Any) -> None:
    dynamodb, sqs, arn, dlq = moto_stream
    end_jobs(dynamodb, "a", "bad", "c")
    function = Function(fail_items={"bad"})
    poller(moto_stream, function, TEMPLATE_SOURCE).poll_once()
    # The checkpoint stays before "bad": every retry starts there, "a" is not sent again.
    assert function.batches == [["a", "bad", "c"]] + [["bad", "c"]] * 10
    [failure] = dead_letters(sqs, dlq)
    info = failure["DDBStreamBatchInfo"]
    assert info["streamArn"] == arn and info["batchSize"] == 2
    assert failure["requestContext"]["approximateInvokeCount"] == 11
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"


def test_a_function_error_bisects_the_batch_until_the_bad_record_is_alone(moto_stream: Any) -> None:
    dynamodb, sqs, _, dlq = moto_stream
    end_jobs(dynamodb, "a", "b", "boom", "d")
    function = Function(raise_on={"boom"})
    poller(moto_stream, function, TEMPLATE_SOURCE).poll_once()
    assert function.batches[:4] == [["a", "b", "boom", "d"], ["a", "b"], ["boom", "d"], ["boom"]]
    assert ["d"] in function.batches  # the record behind the bad one still got through
    assert all(batch == ["boom"] for batch in function.batches[4:-1])
    [failure] = dead_letters(sqs, dlq)
    assert failure["DDBStreamBatchInfo"]["batchSize"] == 1


def test_without_a_retry_limit_nothing_is_dead_lettered_while_the_function_recovers(moto_stream: Any) -> None:
    dynamodb, sqs, _, dlq = moto_stream
    end_jobs(dynamodb, "a")
    flaky = Function(raise_on={"a"})
    calls = 0

    def recovers(event: dict[str, Any]) -> Any:
        nonlocal calls
        calls += 1
        return flaky(event) if calls < 4 else {"batchItemFailures": []}

    source = StreamSource(
        batch_size=10, maximum_retry_attempts=-1, bisect_on_error=False, report_item_failures=True, patterns=()
    )
    stream = poller(moto_stream, Function(), source)
    stream._invoke_function = recovers  # the same poller, a function that fails three times
    stream.poll_once()
    assert calls == 4 and dead_letters(sqs, dlq) == []
