"""AWS-side faults for `videogen local serve` (chaos runs); off unless VIDEOGEN_AWS_FAULT_RATE is set.

Each kind is drawn at ``rate`` (the door kinds at ``door_rate``, ``rate`` unless given):

* **DynamoDB throttling.** A ``before-send`` hook on the handlers' DynamoDB client answers a request with
  the HTTP 400 ``ProvisionedThroughputExceededException`` that DynamoDB sends, so botocore's own retries
  see a real throttle (a call whose every attempt is throttled fails with it). Now and then
  (``rate / SUSTAINED_DIVISOR`` of the calls made by the functions listed in ``functions``) a throttle
  outlasts botocore's retries: the call fails at once with the error botocore raises after its last
  retry (``RetryAttempts`` 5), without its ~30 s of back-off, as local mode compresses time elsewhere too.
* **Duplicate SQS delivery** (SQS delivers at least once): the poller invokes submit with the same batch
  a second time (``duplicate_batch``), or sends a processed message again after a few seconds
  (``redelivery_delay``).
* **Redelivery at the intake doors** (S3 notifications and EventBridge targets are asynchronous invocations,
  delivered at least once, and Lambda may repeat an async invocation that succeeded): the same event, identical
  payload (S3's ``sequencer``/``eTag``/``versionId``, EventBridge's ``id``), reaches intake_s3 / intake_event 2-3
  times, now or a few seconds later (``door_redeliveries``; performed by async_invoke.AsyncInvoker, which counts
  each one it made with ``redelivered``).
* **A dropped API response**: the front door runs the api function, then closes the connection without
  answering (``drop_response``), as when API Gateway's connection to the caller breaks; the caller retries.
* **A function dying half-way** (a Lambda time-out or an out-of-memory kill): an invocation of one of
  ``functions`` is aborted at a random point among its AWS calls, before a request is sent or after its
  answer came back, by raising ``FunctionCrash``. It is a BaseException, so no ``except Exception`` handles
  it, and every later AWS call of that invocation is refused (a dead process sends nothing; an ``except
  BaseException`` clean-up that calls AWS gets nowhere). ``patches._invoke_lambda`` turns it into the
  error Lambda reports for such a death (errorType ``Sandbox.Timedout`` or ``Runtime.ExitError``).

Only the handlers' clients (``videogen.aws.client``) are hooked: local mode's own plumbing and moto's
Step Functions interpreter talk to AWS undisturbed, as the AWS services themselves would. What was
injected is counted; the counts are rewritten to ``record_file`` (JSON) after every injection.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("videogen.local")

# The services the handlers call through videogen.aws.client (Secrets Manager goes through Powertools).
HANDLER_SERVICES = ("dynamodb", "s3", "sqs", "events", "stepfunctions")
# The functions that die half-way and see throttles outlast botocore's retries: the ones the platform
# retries (the state machine's Retry for poll and download, the SQS redrive for submit).
CRASHING_FUNCTIONS = ("submit", "poll", "download", "publish")
SUSTAINED_DIVISOR = 25
MAX_REDELIVERY_DELAY_SECONDS = 8
# A redelivered door event comes again 1 or 2 more times; a delayed one after up to this many seconds.
MAX_DOOR_REPEATS = 2
MIN_DOOR_DELAY_SECONDS = 1.0
MAX_DOOR_DELAY_SECONDS = 4.0
# The intake doors whose events are redelivered: door -> its count in KINDS.
DOOR_KINDS = {"s3": "s3_notifications_redelivered", "eventbridge": "eventbridge_events_redelivered"}
# Before an invocation of a function has been seen to the end, its crash point is drawn among this many.
DEFAULT_CRASH_POINTS = 6
THROTTLE_CODE = "ProvisionedThroughputExceededException"
THROTTLE_BODY = json.dumps(
    {
        "__type": f"com.amazonaws.dynamodb.v20120810#{THROTTLE_CODE}",
        "message": "The level of configured provisioned throughput for the table was exceeded. "
        "Consider increasing your provisioning level with the UpdateTable API.",
    }
).encode()
# What Lambda reports when a function's process dies: a time-out, or the runtime killed (out of memory).
DEATHS = (
    ("Sandbox.Timedout", "Task timed out after {timeout:.2f} seconds"),
    ("Runtime.ExitError", "Runtime exited with error: signal: killed"),
)
# The counts (plus "<function>_crashes" per crashing function): DynamoDB attempts answered with a throttle;
# DynamoDB calls that failed with it (every attempt throttled, or a throttle that outlasted the retries);
# submit batches invoked twice; processed submit messages sent again; events (PutEvents answered) that an
# invocation of a crashing function sent and did not follow with an answered DynamoDB write before it ended
# (died, or failed on an injected fault): for the outbox relay, the window in which the event is out but not
# recorded, the one way a result event can be sent twice; door events delivered once more (each extra delivery
# made, not planned: one due after the stack stopped is not counted); API responses dropped after the function ran.
KINDS = (
    "dynamodb_throttles",
    "dynamodb_throttles_past_retries",
    "sqs_duplicate_batches",
    "sqs_redeliveries",
    "events_sent_unrecorded",
    "s3_notifications_redelivered",
    "eventbridge_events_redelivered",
    "api_responses_dropped",
)


class FunctionCrash(BaseException):
    """The function's process died half-way: no ``except Exception`` block runs."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message

    def payload(self) -> dict[str, str]:
        """The invocation's error, as Lambda returns it (Step Functions matches Retry/Catch on errorType)."""
        return {"errorType": self.error_type, "errorMessage": self.message}


@dataclass
class _Invocation:
    function: str
    label: str | None  # the short name ("poll") of a function that may crash; None: never crashes
    crash_at: int | None  # the AWS call boundary (before a request, after an answer) it dies at
    crash: FunctionCrash | None
    points: int = 0
    dead: bool = False
    # Events sent (PutEvents answered) and not yet followed by a DynamoDB write that was answered: the outbox
    # relay sends then records, one job after the other, so a failed record stays counted after the next job.
    unrecorded_events: int = 0


class _Body:
    """The raw body of an injected response (AWSResponse reads ``raw.stream()``)."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


def throttled_after_retries(url: str, retries: int) -> tuple[Any, dict[str, Any]]:
    """What a call gets when DynamoDB throttled every attempt: (the last HTTP response, botocore's parse)."""
    response = throttled_response(url)
    message = json.loads(THROTTLE_BODY)["message"]
    metadata = {
        "RequestId": response.headers["x-amzn-RequestId"],
        "HTTPStatusCode": 400,
        "HTTPHeaders": {name.lower(): value for name, value in response.headers.items()},
        "RetryAttempts": retries,
        "MaxAttemptsReached": True,
    }
    return response, {"Error": {"Code": THROTTLE_CODE, "Message": message}, "ResponseMetadata": metadata}


def throttled_response(url: str) -> Any:
    """DynamoDB's answer to a throttled request: HTTP 400 with the JSON 1.0 error body."""
    from botocore.awsrequest import AWSResponse

    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "Content-Length": str(len(THROTTLE_BODY)),
        "x-amzn-RequestId": uuid.uuid4().hex.upper(),
    }
    return AWSResponse(url, 400, headers, _Body(THROTTLE_BODY))


class AwsFaults:
    def __init__(
        self,
        rate: float,
        seed: int | None = None,
        *,
        functions: Mapping[str, str] | None = None,
        record_file: Path | None = None,
        door_rate: float | None = None,
    ) -> None:
        """``functions``: function name -> short name, for the functions that may die half-way and whose
        DynamoDB throttles may outlast botocore's retries. ``door_rate``: the share of door events redelivered
        and of API answers dropped (``rate`` when None)."""
        for name, value in (("AWS fault rate", rate), ("door fault rate", door_rate)):
            if value is not None and not 0 <= value <= 1:
                raise ValueError(f"{name} must be within [0, 1], got {value}")
        self.rate = rate
        self.door_rate = rate if door_rate is None else door_rate
        self.record_file = record_file
        self._functions = dict(functions or {})
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._points_seen: dict[str, int] = {}
        self._local = threading.local()
        self._write()

    # --- what was injected --------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Every kind (zeros included), and ``<function>_crashes`` per crashing function."""
        with self._lock:
            counts = {kind: self._counts[kind] for kind in KINDS}
            for label in sorted(set(self._functions.values())):
                counts[f"{label}_crashes"] = self._counts[f"{label}_crashes"]
        return counts

    def _count(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self._counts[kind] += n
        self._write()

    def _write(self) -> None:
        if self.record_file is None:
            return
        with self._write_lock:  # the latest counts win: each write takes them under the lock
            temporary = self.record_file.with_name(f".{self.record_file.name}.tmp")
            temporary.write_text(json.dumps(self.counts(), sort_keys=True))
            os.replace(temporary, self.record_file)

    def _draw(self, probability: float) -> bool:
        with self._lock:
            return self._random.random() < probability

    # --- SQS: at-least-once delivery -------------------------------------------------------------------

    def duplicate_batch(self) -> bool:
        """Whether the batch just processed is delivered (invoked) once more."""
        if self._draw(self.rate):
            self._count("sqs_duplicate_batches")
            return True
        return False

    def redelivery_delay(self) -> int | None:
        """Seconds after which a processed message is delivered again, or None (the usual case)."""
        with self._lock:
            if self._random.random() >= self.rate:
                return None
            delay = self._random.randint(0, MAX_REDELIVERY_DELAY_SECONDS)
        self._count("sqs_redeliveries")
        return delay

    # --- the intake doors: at-least-once delivery, dropped answers ----------------------------------------

    def door_redeliveries(self, door: str) -> list[float]:
        """The extra deliveries of one event at ``door`` ("s3", "eventbridge"): each one's delay in seconds
        (0: right after the first), usually none. Not counted here: see ``redelivered``."""
        if door not in DOOR_KINDS:
            raise ValueError(f"unknown door {door!r}")
        with self._lock:
            if self._random.random() >= self.door_rate:
                return []
            return [
                0.0
                if self._random.random() < 0.5
                else round(self._random.uniform(MIN_DOOR_DELAY_SECONDS, MAX_DOOR_DELAY_SECONDS), 2)
                for _ in range(self._random.randint(1, MAX_DOOR_REPEATS))
            ]

    def redelivered(self, door: str) -> None:
        """One extra delivery at ``door`` was made (the event was handed to the function again)."""
        self._count(DOOR_KINDS[door])

    def drop_response(self) -> bool:
        """Whether the front door drops the answer of the request it just ran (counted: the caller sees it)."""
        if self._draw(self.door_rate):
            self._count("api_responses_dropped")
            return True
        return False

    # --- functions dying half-way ----------------------------------------------------------------------

    @contextmanager
    def invocation(self, function_name: str, timeout_seconds: float = 60) -> Iterator[None]:
        """Around one handler invocation (on its thread): decides whether and where it dies."""
        label = self._functions.get(function_name)
        crash_at, crash = None, None
        if label is not None:
            with self._lock:
                if self._random.random() < self.rate:
                    # The number of boundaries the last complete invocation went through: the death may
                    # come at any of them (or, when this one has fewer, not at all).
                    crash_at = self._random.randint(
                        1, max(2, self._points_seen.get(function_name, DEFAULT_CRASH_POINTS))
                    )
                    error_type, message = self._random.choice(DEATHS)
                    crash = FunctionCrash(
                        error_type, f"RequestId: {uuid.uuid4()} Error: {message.format(timeout=timeout_seconds)}"
                    )
        current = _Invocation(function_name, label, crash_at, crash)
        outer = getattr(self._local, "invocation", None)
        self._local.invocation = current
        try:
            yield
        finally:
            self._local.invocation = outer
            if current.label is not None and current.unrecorded_events:
                self._count("events_sent_unrecorded", current.unrecorded_events)
            if not current.dead and current.points:
                with self._lock:
                    self._points_seen[function_name] = current.points

    def _boundary(self) -> None:
        """An AWS call boundary of the current invocation: die here if this is the planned point."""
        current: _Invocation | None = getattr(self._local, "invocation", None)
        if current is None:
            return
        if current.dead and current.crash is not None:
            raise current.crash  # a dead process sends nothing more
        current.points += 1
        if current.crash is not None and current.crash_at is not None and current.points >= current.crash_at:
            current.dead = True
            self._count(f"{current.label}_crashes")
            log.info("injected: %s dies at AWS call boundary %d", current.function, current.points)
            raise current.crash

    # --- botocore hooks --------------------------------------------------------------------------------

    def install(self, clients: Mapping[str, Any]) -> None:
        """Hook the handlers' clients (service name -> client). Idempotent: a client keeps the hooks of the
        first AwsFaults installed on it (local serve's clients live as long as its stack)."""
        for service, client in clients.items():
            events = client.meta.events
            is_dynamodb = service == "dynamodb"

            def before_send(request: Any, is_dynamodb: bool = is_dynamodb, **_: Any) -> Any:
                self._boundary()
                if is_dynamodb and self._draw(self.rate):
                    self._count("dynamodb_throttles")
                    return throttled_response(request.url)
                return None

            def after_call(
                parsed: Any = None, model: Any = None, service: str = service, is_dynamodb: bool = is_dynamodb, **_: Any
            ) -> None:
                # Counts both kinds: every attempt throttled, and a throttle that outlasted the retries.
                if is_dynamodb and isinstance(parsed, dict) and parsed.get("Error", {}).get("Code") == THROTTLE_CODE:
                    self._count("dynamodb_throttles_past_retries")
                self._note_answer(service, getattr(model, "name", ""), parsed)
                self._boundary()

            # First: nothing else may answer or send a request this hook refuses.
            events.register_first("before-send", before_send, unique_id="videogen-aws-faults-before-send")
            events.register("after-call", after_call, unique_id="videogen-aws-faults-after-call")
            if is_dynamodb:

                def before_call(client: Any = client, **_: Any) -> tuple[Any, dict[str, Any]] | None:
                    return self._before_call(client)

                events.register_first("before-call", before_call, unique_id="videogen-aws-faults-before-call")

    def _note_answer(self, service: str, operation: str, parsed: Any) -> None:
        current: _Invocation | None = getattr(self._local, "invocation", None)
        if current is None or current.dead or not isinstance(parsed, dict) or "Error" in parsed:
            return
        if service == "events" and operation == "PutEvents" and not parsed.get("FailedEntryCount"):
            current.unrecorded_events += 1
        elif service == "dynamodb" and operation in ("UpdateItem", "PutItem") and current.unrecorded_events:
            current.unrecorded_events -= 1

    def _before_call(self, client: Any) -> tuple[Any, dict[str, Any]] | None:
        """Once per DynamoDB call (not per attempt): does a throttle outlast botocore's retries? If so, the
        call's outcome (returned here, botocore sends nothing) is DynamoDB's error after the last retry."""
        current: _Invocation | None = getattr(self._local, "invocation", None)
        if current is None or current.label is None or not self._draw(self.rate / SUSTAINED_DIVISOR):
            return None
        # botocore keeps the attempts (first one included) as total_max_attempts; its default is 3.
        attempts = int((client.meta.config.retries or {}).get("total_max_attempts", 3))
        return throttled_after_retries(client.meta.endpoint_url, attempts - 1)
