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
        time.sleep(0.05)
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
