"""Lambda's asynchronous invocation, for S3 notifications and EventBridge targets.

On AWS both invoke asynchronously: a failed event is retried (MaximumRetryAttempts, default 2; the
template's intake functions say 2) and then sent to the function's on-failure destination, if any
(the intake functions: S-intake-dlq), or dropped. moto calls the function once and ignores errors,
so local mode routes those paths here (see patches.invoke_async).

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
from typing import Any

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
    ) -> None:
        self._lambda = lambda_client
        self._sqs = sqs
        self._configs = configs or {}
        self._delay = retry_delay_seconds
        self._pending: list[tuple[float, int, str, dict[str, Any], int]] = []
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

    def config_for(self, fn_arn: str) -> AsyncConfig:
        name = fn_arn.split(":")[6] if fn_arn.startswith("arn:") else fn_arn
        return self._configs.get(name, AsyncConfig())

    def __call__(self, fn_arn: str, event: dict[str, Any]) -> None:
        self._attempt(fn_arn, event, 1)

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
            with self._wake:
                heapq.heappush(self._pending, (due, next(self._sequence), fn_arn, event, attempt + 1))
                self._wake.notify()
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
                _, _, fn_arn, event, attempt = heapq.heappop(self._pending)
            self._attempt(fn_arn, event, attempt)
