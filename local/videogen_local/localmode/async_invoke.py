"""Lambda's asynchronous invocation, for S3 notifications and EventBridge targets.

On AWS both invoke asynchronously: a failed event is retried (MaximumRetryAttempts, default 2; the
template's intake functions say 2) and then sent to the function's on-failure destination, if any
(the intake functions: S-intake-dlq), or dropped. moto calls the function once and ignores errors,
so local mode routes those paths here (see patches.invoke_async).

Delivery is at least once: with AWS faults on (chaos runs), an event at an intake door (``doors``: function
name -> "s3" / "eventbridge") reaches its function again 1-2 more times, identical, right after the first
delivery or a few seconds later, whether the first succeeded or not (aws_faults.AwsFaults.door_redeliveries);
each repeat has its own retries.

Differences from AWS, on purpose: the first attempt runs inline, so when put_object / put_events
returns the intake has run (tests and callers can look right away; AWS gives no such ordering), and
retries come after seconds, not minutes.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from videogen_local.localmode.aws_faults import AwsFaults

log = logging.getLogger("videogen.local")


@dataclass(frozen=True)
class AsyncConfig:
    """A function's EventInvokeConfig."""

    maximum_retry_attempts: int = 2
    on_failure_queue_url: str | None = None


class AsyncInvoker:
    def __init__(
        self,
        lambda_client: Any,
        sqs: Any,
        configs: dict[str, AsyncConfig] | None = None,
        retry_delay_seconds: float = 1.0,
        *,
        faults: AwsFaults | None = None,
        doors: dict[str, str] | None = None,
    ) -> None:
        """``faults`` and ``doors`` (function name -> door): the events those functions get are redelivered
        as ``faults`` says."""
        self._lambda = lambda_client
        self._faults = faults
        self._doors = doors or {}
        self._sqs = sqs
        self._configs = configs or {}
        self._delay = retry_delay_seconds
        # (due, order, function, event, attempt, door of a redelivery not yet counted or None)
        self._pending: list[tuple[float, int, str, dict[str, Any], int, str | None]] = []
        self._sequence = itertools.count()
        self._wake = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="async-invoke-retries", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
        self._thread.join(timeout=5)

    @staticmethod
    def _name(fn_arn: str) -> str:
        return fn_arn.split(":")[6] if fn_arn.startswith("arn:") else fn_arn

    def config_for(self, fn_arn: str) -> AsyncConfig:
        return self._configs.get(self._name(fn_arn), AsyncConfig())

    def __call__(self, fn_arn: str, event: dict[str, Any]) -> None:
        door = self._doors.get(self._name(fn_arn))
        # The event as it was sent: a redelivery carries exactly this payload, whatever happens to ``event``.
        sent = json.loads(json.dumps(event)) if door is not None and self._faults is not None else event
        self._attempt(fn_arn, event, 1)
        if door is None or self._faults is None:
            return
        for delay in self._faults.door_redeliveries(door):
            if delay <= 0:
                self._redeliver(fn_arn, json.loads(json.dumps(sent)), door)
            else:
                self._schedule(time.monotonic() + delay, fn_arn, json.loads(json.dumps(sent)), 1, door)

    def _redeliver(self, fn_arn: str, event: dict[str, Any], door: str) -> None:
        assert self._faults is not None
        self._faults.redelivered(door)
        log.info("injected: %s event delivered to %s again", door, fn_arn)
        self._attempt(fn_arn, event, 1)

    def _schedule(self, due: float, fn_arn: str, event: dict[str, Any], attempt: int, door: str | None) -> None:
        with self._wake:
            heapq.heappush(self._pending, (due, next(self._sequence), fn_arn, event, attempt, door))
            self._wake.notify()

    def _attempt(self, fn_arn: str, event: dict[str, Any], attempt: int) -> None:
        try:
            response = self._lambda.invoke(FunctionName=fn_arn, Payload=json.dumps(event).encode())
            error = json.loads(response["Payload"].read() or b"{}") if response.get("FunctionError") else None
        except Exception as exc:  # the invoke itself failed (e.g. during shutdown): count it as a failure
            error = {"errorMessage": str(exc), "errorType": type(exc).__name__}
        if error is None:
            return
        config = self.config_for(fn_arn)
        if attempt <= config.maximum_retry_attempts:
            due = time.monotonic() + self._delay * 2 ** (attempt - 1)
            log.info("async invocation of %s failed (attempt %d), retrying: %s", fn_arn, attempt, error)
            self._schedule(due, fn_arn, event, attempt + 1, None)
            return
        self._give_up(fn_arn, event, attempt, error, config)

    def _give_up(
        self, fn_arn: str, event: dict[str, Any], attempts: int, error: dict[str, Any], config: AsyncConfig
    ) -> None:
        if config.on_failure_queue_url is None:
            log.warning("async invocation of %s failed %d times, event dropped: %s", fn_arn, attempts, error)
            return
        # The invocation record Lambda sends to an SQS on-failure destination.
        record = {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": f"{fn_arn}:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": attempts,
            },
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": error,
        }
        log.warning("async invocation of %s failed %d times, sent to its on-failure queue", fn_arn, attempts)
        try:
            self._sqs.send_message(QueueUrl=config.on_failure_queue_url, MessageBody=json.dumps(record))
        except Exception:
            log.exception("could not send the failed invocation of %s to %s", fn_arn, config.on_failure_queue_url)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopped and (not self._pending or self._pending[0][0] > time.monotonic()):
                    timeout = self._pending[0][0] - time.monotonic() if self._pending else None
                    self._wake.wait(timeout)
                if self._stopped:
                    return
                _, _, fn_arn, event, attempt, door = heapq.heappop(self._pending)
            if door is None:
                self._attempt(fn_arn, event, attempt)
            else:
                self._redeliver(fn_arn, event, door)
