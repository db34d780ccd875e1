"""The SQS event source's MaximumConcurrency, locally: the poller has at most that many batches in
invocation at once, and a function with several execution environments runs one event in each."""

from __future__ import annotations

import io
import json
import threading
import time
from typing import Any

from videogen_local.localmode.patches import Environments
from videogen_local.localmode.sqs_poller import SqsPoller


class CountingLambda:
    """A Lambda client whose invocations take a while and count how many run at once."""

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0
        self.records = 0
        self._lock = threading.Lock()

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.records += len(json.loads(Payload)["Records"])
        time.sleep(0.5)  # longer than a receive takes, so that batches overlap even on a loaded machine
        with self._lock:
            self.running -= 1
        return {"Payload": io.BytesIO(b'{"batchItemFailures": []}')}


def test_the_poller_never_has_more_batches_in_invocation_than_its_maximum(aws: None) -> None:
    from videogen.aws import client

    sqs = client("sqs")
    queue_url = sqs.create_queue(QueueName="concurrency")["QueueUrl"]
    for start in range(0, 60, 10):
        sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(n), "MessageBody": json.dumps({"n": n})} for n in range(start, start + 10)],
        )
    fake = CountingLambda()
    poller = SqsPoller(sqs, fake, queue_url, "arn:aws:sqs:us-east-1:123456789012:concurrency", "f", max_concurrency=3)
    poller.start()
    try:
        deadline = time.monotonic() + 30
        while fake.records < 60 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        poller.stop()
    assert fake.records == 60
    assert 1 < fake.peak <= poller.peak <= 3


def test_each_environment_takes_one_event_at_a_time() -> None:
    environments = Environments([lambda event, context: "a", lambda event, context: "b"])
    seen: list[str] = []
    barrier = threading.Barrier(2, timeout=5)

    def invoke() -> None:
        with environments.take() as handler:
            seen.append(handler({}, None))
            barrier.wait()  # both environments busy at once; a third invocation would wait

    threads = [threading.Thread(target=invoke) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seen) == ["a", "b"] and environments.peak == 2 and environments.busy == 0


def test_a_batch_in_invocation_stays_invisible_past_the_visibility_timeout(aws: None) -> None:
    """Deployed, the visibility timeout is several times the function's timeout; locally it is 1 s here and
    the invocation takes 2.5 s: the poller keeps the batch invisible until the invocation has ended."""
    from videogen.aws import client

    sqs = client("sqs")
    queue_url = sqs.create_queue(QueueName="slow", Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody="{}")
    seen_while_running: list[dict[str, Any]] = []

    class SlowLambda:
        calls = 0

        def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
            SlowLambda.calls += 1
            deadline = time.monotonic() + 2.5
            while time.monotonic() < deadline:  # another consumer looking meanwhile finds nothing
                seen_while_running.extend(
                    sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0).get("Messages", [])
                )
                time.sleep(0.2)
            return {"Payload": io.BytesIO(b'{"batchItemFailures": []}')}

    poller = SqsPoller(
        sqs, SlowLambda(), queue_url, "arn:aws:sqs:us-east-1:123456789012:slow", "f", visibility_seconds=1
    )
    assert poller.poll_once(wait_seconds=1) == 1
    assert seen_while_running == [] and SlowLambda.calls == 1
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    assert (
        attributes["ApproximateNumberOfMessages"] == "0" and attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
    )
