"""Stands in for Lambda's SQS event-source mapping.

moto's own mapping runs the handler inside send_message and never retries, so the submit queue is
polled here instead: batches of up to 10 become real SQS Lambda events, the function is invoked
through moto's Lambda API, and only records not reported in ``batchItemFailures`` are deleted, so
failed records come back after the visibility timeout and reach the DLQ after maxReceiveCount.

With AWS faults on (aws_faults.py), delivery is at least once, as SQS's own: now and then a batch is
invoked a second time, or a processed message is sent again to arrive a few seconds later.

``max_concurrency`` (the event source's ScalingConfig.MaximumConcurrency): up to that many batches are in
invocation at once, each received only when a slot is free, as Lambda's poller scales; ``peak`` records the
most that were.

``visibility_seconds`` (the queue's visibility timeout): deployed, a queue's visibility timeout is several
times its function's timeout, so a batch never becomes visible again while its invocation runs. Locally the
timeouts are seconds and an invocation is not cut off at its function's timeout, so the poller upholds the same
rule itself: while a batch is in invocation its messages are kept invisible (ChangeMessageVisibilityBatch every
third of the timeout). A batch that failed, or a poller that died, still comes back one timeout later. Not for
a function that sets a message's visibility itself (webhook_deliver's retry delays): the extensions would
overwrite it. Without this, a
loaded machine's 10-message submit batch outlasting the 5 s timeout was delivered a second time while the first
delivery was still submitting, and the second copy found the first one's claim stale: "submission outcome
unknown" for a job that was being submitted.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from videogen_local.localmode.aws_faults import AwsFaults
from videogen_local.localmode.loop import BackgroundLoop

log = logging.getLogger("videogen.local")


class SqsPoller(BackgroundLoop):
    name = "sqs-poller"

    def __init__(
        self,
        sqs: Any,
        lambda_client: Any,
        queue_url: str,
        queue_arn: str,
        function_name: str,
        faults: AwsFaults | None = None,
        max_concurrency: int = 1,
        visibility_seconds: float | None = None,
    ) -> None:
        super().__init__(pause=0)  # the long poll (WaitTimeSeconds) is the pause
        self._sqs = sqs
        self._lambda = lambda_client
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._function = function_name
        self._faults = faults
        self.max_concurrency = max(1, max_concurrency)
        self._slots = threading.BoundedSemaphore(self.max_concurrency)
        self._pool = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix=f"{self.name}-invoke")
        self._busy = 0
        self.peak = 0
        self._count = threading.Lock()
        self._visibility = visibility_seconds

    def tick(self) -> None:
        if self.max_concurrency == 1:
            self.poll_once(wait_seconds=1)
            return
        # A batch is received only when an invocation slot is free, and invoked on its own thread.
        if not self._slots.acquire(timeout=1):
            return
        try:
            messages = self._receive(wait_seconds=1)
        except BaseException:
            self._slots.release()
            raise
        if not messages:
            self._slots.release()
            return
        self._pool.submit(self._in_slot, messages)

    def stop(self) -> None:
        super().stop()
        self._pool.shutdown(wait=True, cancel_futures=False)

    def _in_slot(self, messages: list[dict[str, Any]]) -> None:
        try:
            self._process(messages)
        except Exception:
            log.exception("%s error", self.name)
        finally:
            self._slots.release()

    def poll_once(self, wait_seconds: int = 0) -> int:
        messages = self._receive(wait_seconds)
        if messages:
            self._process(messages)
        return len(messages)

    def _receive(self, wait_seconds: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        return found

    def _process(self, messages: list[dict[str, Any]]) -> None:
        with self._count:
            self._busy += 1
            self.peak = max(self.peak, self._busy)
        try:
            self._deliver(messages)
        finally:
            with self._count:
                self._busy -= 1

    def _deliver(self, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [self._record(message) for message in messages]}
        with self._kept_invisible(messages):
            done = self._invoke(event, messages)
            if self._faults is not None and self._faults.duplicate_batch():
                # At-least-once delivery: the same batch reaches the function again (what either delivery
                # processed is deleted, as each consumer deletes what it processed).
                done |= self._invoke(event, messages)
        for message in messages:
            if message["MessageId"] not in done:
                continue
            self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
            delay = self._faults.redelivery_delay() if self._faults is not None else None
            if delay is not None:
                # Delivered again after it was processed (only the body: the submit queue's messages
                # carry no attributes).
                self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=message["Body"], DelaySeconds=delay)

    @contextmanager
    def _kept_invisible(self, messages: list[dict[str, Any]]) -> Iterator[None]:
        if self._visibility is None:
            yield
            return
        visibility = self._visibility
        done = threading.Event()
        entries = [
            {"Id": str(n), "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": int(visibility)}
            for n, message in enumerate(messages)
        ]

        def keep() -> None:
            while not done.wait(visibility / 3):
                try:
                    self._sqs.change_message_visibility_batch(QueueUrl=self._queue_url, Entries=entries)
                except Exception as exc:  # a missed extension only risks a redelivery, which the consumer handles
                    log.info("%s: could not extend the visibility of a batch in invocation: %s", self.name, exc)

        keeper = threading.Thread(target=keep, name=f"{self.name}-visibility", daemon=True)
        keeper.start()
        try:
            yield
        finally:
            done.set()
            keeper.join()

    def _invoke(self, event: dict[str, Any], messages: list[dict[str, Any]]) -> set[str]:
        """Invoke the function with one batch; returns the ids of the messages it processed."""
        response = self._lambda.invoke(FunctionName=self._function, Payload=json.dumps(event).encode())
        payload = json.loads(response["Payload"].read() or b"{}")
        if response.get("FunctionError"):
            # The whole batch failed: every message returns to the queue after its visibility timeout.
            log.info("submit batch failed: %s", payload.get("errorMessage"))
            return set()
        failed = {item["itemIdentifier"] for item in payload.get("batchItemFailures", [])}
        return {message["MessageId"] for message in messages} - failed

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": lambda_message_attributes(message.get("MessageAttributes", {})),
            "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._queue_arn,
            "awsRegion": self._queue_arn.split(":")[3],
        }


def lambda_message_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """ReceiveMessage's attributes (StringValue, DataType, bytes) in the Lambda event's shape
    (stringValue, dataType, base64 text), which Powertools' SQSRecord reads."""
    converted: dict[str, Any] = {}
    for name, value in attributes.items():
        item: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}
        if "StringValue" in value:
            item["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            item["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
        converted[name] = item
    return converted
