"""The AWS-side faults of chaos runs (localmode/aws_faults.py), against moto in server mode: DynamoDB
throttles that botocore really retries, deaths half-way that no ``except Exception`` can catch and after
which nothing more reaches AWS, at-least-once SQS delivery in the poller, at-least-once delivery at the
intake doors (S3 notifications, EventBridge events) and dropped API answers, and the counts chaos prints."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from bench.harness import TABLE, Aws, moto_server
from videogen_local.localmode import aws_faults, patches
from videogen_local.localmode.async_invoke import AsyncInvoker
from videogen_local.localmode.aws_faults import DEATHS, THROTTLE_CODE, AwsFaults, FunctionCrash
from videogen_local.localmode.front_door import FrontDoor
from videogen_local.localmode.sqs_poller import SqsPoller
from videogen_local.localmode.stack import LocalStackConfig

# As videogen.aws: standard retry mode, 5 retries.
HANDLER_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})


@pytest.fixture(scope="module")
def aws() -> Iterator[Aws]:
    with moto_server() as server:
        yield server


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore waits up to 1, 2, 4, 8 s between attempts: not in these tests."""
    from botocore.retries import standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)


def handler_client(aws: Aws, service: str) -> Any:
    """A client like the handlers' (its own session, their retry configuration)."""
    return boto3.session.Session().client(
        service,  # type: ignore[call-overload]
        endpoint_url=aws.endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=HANDLER_CONFIG,
    )


def put(dynamodb: Any, job_id: str) -> None:
    dynamodb.put_item(TableName=TABLE, Item={"id": {"S": job_id}})


def stored(aws: Aws, job_id: str) -> bool:
    return "Item" in aws.client("dynamodb").get_item(TableName=TABLE, Key={"id": {"S": job_id}}, ConsistentRead=True)


# --- DynamoDB throttling -----------------------------------------------------------------------------


def test_a_throttle_on_every_attempt_reaches_the_caller_as_dynamodbs_error(aws: Aws, tmp_path: Path) -> None:
    faults = AwsFaults(1.0, seed=1, record_file=tmp_path / "faults.json")
    dynamodb = handler_client(aws, "dynamodb")
    faults.install({"dynamodb": dynamodb})
    job_id = uuid.uuid4().hex
    with pytest.raises(ClientError) as raised:
        put(dynamodb, job_id)
    error = raised.value.response
    assert error["Error"]["Code"] == THROTTLE_CODE and "provisioned throughput" in error["Error"]["Message"]
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    # max_attempts counts the retries: 6 attempts, every one throttled and retried by botocore as such.
    assert error["ResponseMetadata"]["RetryAttempts"] == 5 and error["ResponseMetadata"]["MaxAttemptsReached"]
    assert not stored(aws, job_id)  # no attempt reached DynamoDB
    counts = faults.counts()
    assert counts["dynamodb_throttles"] == 6 and counts["dynamodb_throttles_past_retries"] == 1
    assert json.loads((tmp_path / "faults.json").read_text()) == counts


def test_botocore_retries_throttles_through(aws: Aws) -> None:
    faults = AwsFaults(0.3, seed=3)
    dynamodb = handler_client(aws, "dynamodb")
    faults.install({"dynamodb": dynamodb})
    ids = [uuid.uuid4().hex for _ in range(20)]
    retried = 0
    for job_id in ids:
        response = dynamodb.put_item(TableName=TABLE, Item={"id": {"S": job_id}})
        retried += response["ResponseMetadata"]["RetryAttempts"]
    assert all(stored(aws, job_id) for job_id in ids)
    counts = faults.counts()
    assert counts["dynamodb_throttles"] == retried > 0 and counts["dynamodb_throttles_past_retries"] == 0


def test_only_dynamodb_is_throttled(aws: Aws) -> None:
    faults = AwsFaults(1.0, seed=1)
    s3 = handler_client(aws, "s3")
    faults.install({"s3": s3})
    s3.put_object(Bucket="bench-bucket", Key="faults/plain.txt", Body=b"x")
    assert faults.counts()["dynamodb_throttles"] == 0


def test_throttles_outlast_the_retries_only_in_the_functions_that_may_crash(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aws_faults, "SUSTAINED_DIVISOR", 1)
    faults = AwsFaults(0.5, seed=11, functions={"lambda-poll": "poll"})
    dynamodb = handler_client(aws, "dynamodb")
    faults.install({"dynamodb": dynamodb})
    # Outside the crashing functions every attempt of a call is throttled only by chance (1/64 a call).
    with faults.invocation("lambda-api"):
        for _ in range(10):
            put(dynamodb, uuid.uuid4().hex)
    assert faults.counts()["dynamodb_throttles_past_retries"] == 0
    # In poll, about half of the calls fail as after botocore's last retry, at once; nothing was written.
    throttled = []
    for _ in range(10):
        job_id = uuid.uuid4().hex
        with faults.invocation("lambda-poll"):
            try:
                put(dynamodb, job_id)
            except ClientError as exc:
                throttled.append((job_id, exc))
            except FunctionCrash:
                pass  # poll may also die half-way
    assert len(throttled) >= 2
    for job_id, exc in throttled:
        assert exc.response["Error"]["Code"] == THROTTLE_CODE
        assert exc.response["ResponseMetadata"]["RetryAttempts"] == 5 and "reached max retries: 5" in str(exc)
        assert not stored(aws, job_id)
    # Counted when the answer came back: a poll that died right after it never saw the error.
    assert faults.counts()["dynamodb_throttles_past_retries"] >= len(throttled)


# --- functions dying half-way ------------------------------------------------------------------------


def crashing_handler(dynamodb: Any, prefix: str, calls: int = 3) -> None:
    """Writes ``calls`` items; an ``except BaseException`` clean-up tries one more write."""
    try:
        for index in range(calls):
            try:
                put(dynamodb, f"{prefix}-{index}")
            except Exception:  # what handlers do with errors: a death must not be caught here
                raise AssertionError("a death was caught by except Exception") from None
    except BaseException:
        put(dynamodb, f"{prefix}-cleanup")
        raise


def test_an_invocation_dies_half_way_and_nothing_more_reaches_aws(aws: Aws) -> None:
    faults = AwsFaults(1.0, seed=5, functions={"lambda-download": "download"})
    dynamodb = handler_client(aws, "dynamodb")
    faults.install({"dynamodb": dynamodb})
    faults._draw = lambda probability: False  # type: ignore[method-assign]  # deaths only: no throttles
    written = []
    for attempt in range(6):
        prefix = f"{uuid.uuid4().hex}-{attempt}"
        with pytest.raises(FunctionCrash) as died, faults.invocation("lambda-download", timeout_seconds=900):
            crashing_handler(dynamodb, prefix, calls=3)
        assert (died.value.error_type, died.value.payload()["errorType"]) in {(t, t) for t, _ in DEATHS}
        assert died.value.message.startswith("RequestId: ")
        assert not stored(aws, f"{prefix}-cleanup")  # the dead process's clean-up sent nothing
        done = [index for index in range(3) if stored(aws, f"{prefix}-{index}")]
        assert done == list(range(len(done)))  # writes stop at the death, in order
        written.append(len(done))
    # Deaths come at different points: before the first call, between calls, after the last answer.
    assert len(set(written)) > 1
    assert faults.counts()["download_crashes"] == 6


def test_a_death_between_sending_an_event_and_recording_it_is_counted(aws: Aws) -> None:
    """The outbox relay's window: the event reached EventBridge, the job's record did not reach DynamoDB.
    Deaths there are the ones that may repeat a result event; deaths anywhere else are not counted so, nor
    are invocations that record what they sent."""
    sqs, bus = aws.client("sqs"), aws.client("events")
    queue = sqs.create_queue(QueueName=f"sent-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus.put_rule(Name="sent", EventPattern=json.dumps({"source": ["videogen"]}))
    bus.put_targets(Rule="sent", Targets=[{"Id": "q", "Arn": queue_arn}])
    faults = AwsFaults(1.0, seed=3, functions={"lambda-publish": "publish"})
    dynamodb, events = handler_client(aws, "dynamodb"), handler_client(aws, "events")
    faults.install({"dynamodb": dynamodb, "events": events})
    faults._draw = lambda probability: False  # type: ignore[method-assign]  # deaths only: no throttles
    entry = {"Source": "videogen", "DetailType": "VideoCompleted", "Detail": "{}", "EventBusName": "default"}
    windows = 0
    for attempt in range(16):
        job_id = f"{uuid.uuid4().hex}-{attempt}"
        with pytest.raises(FunctionCrash), faults.invocation("lambda-publish"):
            events.put_events(Entries=[entry])
            put(dynamodb, job_id)
            dynamodb.get_item(TableName=TABLE, Key={"id": {"S": job_id}})
        sent = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        for message in sent:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        windows += bool(sent) and not stored(aws, job_id)
    assert faults.counts()["publish_crashes"] == 16
    assert faults.counts()["events_sent_unrecorded"] == windows
    assert 0 < windows < 16
    faults.rate = 0.0  # no more deaths: an invocation that sends and records is not a window
    with faults.invocation("lambda-publish"):
        events.put_events(Entries=[entry])
        put(dynamodb, uuid.uuid4().hex)
    assert faults.counts()["events_sent_unrecorded"] == windows
    with pytest.raises(RuntimeError), faults.invocation("lambda-publish"):
        events.put_events(Entries=[entry])
        raise RuntimeError("the record failed")  # e.g. a throttle that outlasted botocore's retries
    assert faults.counts()["events_sent_unrecorded"] == windows + 1


def test_functions_not_listed_never_die(aws: Aws) -> None:
    faults = AwsFaults(1.0, seed=5, functions={"lambda-download": "download"})
    dynamodb = handler_client(aws, "dynamodb")
    faults.install({"dynamodb": dynamodb})
    faults._draw = lambda probability: False  # type: ignore[method-assign]
    prefix = uuid.uuid4().hex
    with faults.invocation("lambda-api"):
        crashing_handler(dynamodb, prefix, calls=3)
    crashing_handler(dynamodb, f"{prefix}-outside", calls=1)  # outside any invocation
    assert all(stored(aws, f"{prefix}-{index}") for index in range(3)) and stored(aws, f"{prefix}-outside-0")
    assert faults.counts()["download_crashes"] == 0


def test_a_death_becomes_the_lambda_error_of_a_dead_function(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    faults = AwsFaults(1.0, seed=2, functions={"lambda-submit": "submit"})
    dynamodb = handler_client(aws, "dynamodb")
    faults.install({"dynamodb": dynamodb})
    faults._draw = lambda probability: False  # type: ignore[method-assign]
    monkeypatch.setattr(patches, "AWS_FAULTS", faults)
    monkeypatch.setitem(patches.HANDLERS, "lambda-submit", lambda event, context: crashing_handler(dynamodb, "x"))
    function = SimpleNamespace(function_name="lambda-submit", function_arn="arn:...:lambda-submit", timeout=60)
    payload, failed, _ = patches._invoke_lambda(function, {})
    error = json.loads(payload)
    assert failed and error["errorType"] in {name for name, _ in DEATHS}
    if error["errorType"] == "Sandbox.Timedout":
        assert "Task timed out after 60.00 seconds" in error["errorMessage"]


# --- SQS: at-least-once delivery ---------------------------------------------------------------------


class RecordingLambda:
    """Stands in for the Lambda client: records each batch, answers from ``answers`` (then success)."""

    def __init__(self, *answers: dict[str, Any]) -> None:
        self.batches: list[list[str]] = []
        self._answers = list(answers)

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
        self.batches.append([json.loads(record["body"])["job_id"] for record in json.loads(Payload)["Records"]])
        answer = self._answers.pop(0) if self._answers else {"batchItemFailures": []}
        response: dict[str, Any] = {"Payload": _Payload(json.dumps(answer).encode())}
        if "errorType" in answer:
            response["FunctionError"] = "Unhandled"
        return response


class _Payload:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self) -> bytes:
        return self._data


def queue(aws: Aws) -> tuple[Any, str, str]:
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName=f"faults-{uuid.uuid4().hex[:8]}", Attributes={"VisibilityTimeout": "30"})[
        "QueueUrl"
    ]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return sqs, url, arn


def test_batches_are_delivered_twice_and_processed_messages_again(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aws_faults, "MAX_REDELIVERY_DELAY_SECONDS", 0)
    sqs, url, arn = queue(aws)
    for job_id in ("a", "b"):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"job_id": job_id}))
    faults = AwsFaults(1.0, seed=1)
    # The first delivery dies; the duplicate processes both.
    lam = RecordingLambda({"errorType": "Sandbox.Timedout", "errorMessage": "dead"})
    poller = SqsPoller(sqs, lam, url, arn, "submit", faults=faults)
    assert poller.poll_once(wait_seconds=1) == 2
    assert len(lam.batches) == 2 and lam.batches[0] == lam.batches[1]
    counts = faults.counts()
    assert counts["sqs_duplicate_batches"] == 1 and counts["sqs_redeliveries"] == 2
    # Both were processed by the duplicate: deleted, then each sent again.
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    assert sorted(json.loads(m["Body"])["job_id"] for m in again) == ["a", "b"]


def test_failed_records_are_not_deleted_nor_sent_again(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aws_faults, "MAX_REDELIVERY_DELAY_SECONDS", 0)
    sqs, url, arn = queue(aws)
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"job_id": "c"}))
    faults = AwsFaults(1.0, seed=1)
    faults.duplicate_batch = lambda: False  # type: ignore[method-assign]
    failure = {"errorType": "Sandbox.Timedout", "errorMessage": "dead"}
    poller = SqsPoller(sqs, RecordingLambda(failure), url, arn, "submit", faults=faults)
    poller.poll_once(wait_seconds=1)
    assert faults.counts()["sqs_redeliveries"] == 0
    in_flight = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
    assert in_flight["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "1"  # back after the timeout


def test_no_faults_no_extra_deliveries(aws: Aws) -> None:
    sqs, url, arn = queue(aws)
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"job_id": "d"}))
    lam = RecordingLambda()
    SqsPoller(sqs, lam, url, arn, "submit", faults=AwsFaults(0.0)).poll_once(wait_seconds=1)
    assert lam.batches == [["d"]]
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", []) == []


# --- the intake doors: at-least-once delivery, dropped answers ----------------------------------------


class AsyncLambda:
    """Stands in for the Lambda client of AsyncInvoker: records each payload as sent, answers from ``answers``
    (then success)."""

    def __init__(self, *answers: dict[str, Any]) -> None:
        self.payloads: list[bytes] = []
        self._answers = list(answers)
        self._lock = threading.Lock()

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
        with self._lock:
            self.payloads.append(Payload)
            answer = self._answers.pop(0) if self._answers else {"ok": True}
        response: dict[str, Any] = {"Payload": _Payload(json.dumps(answer).encode())}
        if "errorType" in answer:
            response["FunctionError"] = "Unhandled"
        return response

    def count(self, payload: bytes) -> int:
        with self._lock:
            return self.payloads.count(payload)


def s3_event(key: str) -> dict[str, Any]:
    obj = {"key": key, "size": 2, "eTag": uuid.uuid4().hex, "versionId": "v1", "sequencer": uuid.uuid4().hex[:16]}
    return {"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {"name": "b"}, "object": obj}}]}


def wait_for(condition: Any, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def short_door_delays(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aws_faults, "MIN_DOOR_DELAY_SECONDS", 0.05)
    monkeypatch.setattr(aws_faults, "MAX_DOOR_DELAY_SECONDS", 0.2)


def test_door_events_are_delivered_again_identical_now_or_later_and_counted(short_door_delays: None) -> None:
    faults = AwsFaults(1.0, seed=4)
    lam = AsyncLambda()
    invoker = AsyncInvoker(lam, sqs=None, faults=faults, doors={"s-intake_s3": "s3", "s-intake_event": "eventbridge"})
    invoker.start()
    try:
        s3_payloads, at_once = [], []
        for index in range(12):
            event = s3_event(f"requests/{index}.json")
            invoker("arn:aws:lambda:us-east-1:123456789012:function:s-intake_s3", event)
            payload = json.dumps(event).encode()
            s3_payloads.append(payload)
            at_once.append(lam.count(payload))  # the first delivery and the immediate repeats ran inline
        bus_event = {"id": str(uuid.uuid4()), "detail-type": "VideoRequested", "source": "acme", "detail": {"n": 1}}
        for _ in range(6):
            bus_event = {**bus_event, "id": str(uuid.uuid4())}
            invoker("s-intake_event", bus_event)
        bus_payloads = [p for p in lam.payloads if b"VideoRequested" in p]
        # Each event 2-3 times in all, byte for byte (same sequencer / eTag / versionId, same id).
        wait_for(lambda: all(lam.count(p) >= 2 for p in s3_payloads + bus_payloads) and not invoker._pending)
        time.sleep(0.3)
    finally:
        invoker.stop()
    s3_deliveries = [lam.count(p) for p in s3_payloads]
    bus_deliveries = [lam.count(p) for p in set(lam.payloads) if b"VideoRequested" in p]
    assert set(s3_deliveries) <= {2, 3} and set(bus_deliveries) <= {2, 3} and len(bus_deliveries) == 6
    assert 3 in s3_deliveries + bus_deliveries
    # Some repeats came at once (before the put returned), some only later.
    assert any(n > 1 for n in at_once) and any(n < total for n, total in zip(at_once, s3_deliveries, strict=True))
    counts = faults.counts()
    assert counts["s3_notifications_redelivered"] == sum(s3_deliveries) - 12
    assert counts["eventbridge_events_redelivered"] == sum(bus_deliveries) - 6
    assert (
        len(lam.payloads) == 12 + 6 + counts["s3_notifications_redelivered"] + counts["eventbridge_events_redelivered"]
    )


def test_a_redelivered_event_has_its_own_retries_and_the_first_delivery_keeps_its_own(short_door_delays: None) -> None:
    faults = AwsFaults(1.0, seed=2)
    faults.door_redeliveries = lambda door: [0.0]  # type: ignore[method-assign]  # exactly one repeat, at once
    failure = {"errorType": "Sandbox.Timedout", "errorMessage": "dead"}
    lam = AsyncLambda(failure, failure)  # the first delivery and the repeat both fail once
    invoker = AsyncInvoker(lam, sqs=None, faults=faults, doors={"s-intake_s3": "s3"}, retry_delay_seconds=0.05)
    invoker.start()
    try:
        invoker("s-intake_s3", s3_event("requests/r.json"))
        wait_for(lambda: len(lam.payloads) == 4)
        time.sleep(0.2)
    finally:
        invoker.stop()
    assert len(lam.payloads) == 4 and len(set(lam.payloads)) == 1  # 2 deliveries x (fail, retry)
    assert faults.counts()["s3_notifications_redelivered"] == 1


def test_only_the_doors_and_only_with_faults_on(short_door_delays: None) -> None:
    lam = AsyncLambda()
    faults = AwsFaults(1.0, seed=1)
    for invoker in (
        AsyncInvoker(lam, sqs=None, faults=faults, doors={"s-intake_s3": "s3"}),  # not a door: the fail function
        AsyncInvoker(lam, sqs=None, faults=AwsFaults(0.0), doors={"s-fail": "eventbridge"}),  # faults off
        AsyncInvoker(lam, sqs=None, doors={"s-fail": "eventbridge"}),  # no faults at all
    ):
        invoker.start()
        invoker("s-fail", {"id": str(uuid.uuid4())})
        time.sleep(0.3)
        invoker.stop()
    assert len(lam.payloads) == 3 and len(set(lam.payloads)) == 3
    assert faults.counts()["eventbridge_events_redelivered"] == faults.counts()["s3_notifications_redelivered"] == 0


def test_a_redelivery_due_after_the_stack_stopped_is_neither_made_nor_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    faults = AwsFaults(1.0, seed=1)
    faults.door_redeliveries = lambda door: [30.0]  # type: ignore[method-assign]
    lam = AsyncLambda()
    invoker = AsyncInvoker(lam, sqs=None, faults=faults, doors={"s-intake_event": "eventbridge"})
    invoker.start()
    invoker("s-intake_event", {"id": "e-1"})
    invoker.stop()
    assert len(lam.payloads) == 1 and faults.counts()["eventbridge_events_redelivered"] == 0


class CountingLambda:
    """Stands in for the api function: answers 202 and counts the invocations."""

    def __init__(self) -> None:
        self.invocations = 0
        self._lock = threading.Lock()

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
        with self._lock:
            self.invocations += 1
        answer = {"statusCode": 202, "headers": {"Content-Type": "application/json"}, "body": '{"id": "j"}'}
        return {"Payload": _Payload(json.dumps(answer).encode())}


def test_the_front_door_runs_the_function_then_drops_the_answer() -> None:
    faults = AwsFaults(0.5, seed=9)
    lam = CountingLambda()
    door = FrontDoor(lam, "s-api", faults=faults)
    door.start()
    try:
        answered, dropped = 0, 0
        for _ in range(30):
            try:
                response = httpx.post(f"{door.url}/videos", json={"prompt": "p"}, timeout=10)
            except httpx.TransportError as exc:
                assert isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError), exc
                dropped += 1
                continue
            assert response.status_code == 202 and response.json() == {"id": "j"}
            answered += 1
    finally:
        door.stop()
    assert lam.invocations == 30  # the function ran every time, answered or not
    assert faults.counts()["api_responses_dropped"] == dropped and 0 < dropped < 30 and answered == 30 - dropped


def test_no_faults_no_dropped_answers() -> None:
    lam = CountingLambda()
    door = FrontDoor(lam, "s-api", faults=AwsFaults(0.0))
    door.start()
    try:
        assert all(httpx.post(f"{door.url}/videos", json={}, timeout=10).status_code == 202 for _ in range(5))
    finally:
        door.stop()


# --- configuration -----------------------------------------------------------------------------------


def test_counts_name_every_kind_and_each_crashing_function(tmp_path: Path) -> None:
    faults = AwsFaults(0.1, functions={"s-submit": "submit", "s-poll": "poll"}, record_file=tmp_path / "f.json")
    assert faults.counts() == {
        "dynamodb_throttles": 0,
        "dynamodb_throttles_past_retries": 0,
        "sqs_duplicate_batches": 0,
        "sqs_redeliveries": 0,
        "events_sent_unrecorded": 0,
        "s3_notifications_redelivered": 0,
        "eventbridge_events_redelivered": 0,
        "api_responses_dropped": 0,
        "poll_crashes": 0,
        "submit_crashes": 0,
    }
    assert json.loads((tmp_path / "f.json").read_text()) == faults.counts()  # written from the start
    with pytest.raises(ValueError):
        AwsFaults(1.5)


def test_local_serve_reads_the_fault_settings_from_its_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("VIDEOGEN_AWS_FAULT_RATE", raising=False)
    assert LocalStackConfig.from_env().aws_fault_rate == 0.0  # off by default
    monkeypatch.setenv("VIDEOGEN_AWS_FAULT_RATE", "0.1")
    monkeypatch.setenv("VIDEOGEN_AWS_FAULT_SEED", "7")
    monkeypatch.setenv("VIDEOGEN_AWS_FAULT_FILE", str(tmp_path / "counts.json"))
    config = LocalStackConfig.from_env()
    assert (config.aws_fault_rate, config.aws_fault_seed, config.aws_fault_file) == (0.1, 7, tmp_path / "counts.json")
    assert config.aws_door_fault_rate is None and AwsFaults(0.1).door_rate == 0.1  # the doors: the AWS rate
    monkeypatch.setenv("VIDEOGEN_AWS_DOOR_FAULT_RATE", "0.3")
    assert LocalStackConfig.from_env().aws_door_fault_rate == 0.3 and AwsFaults(0.1, door_rate=0.3).door_rate == 0.3
    with pytest.raises(ValueError):
        AwsFaults(0.1, door_rate=2.0)
