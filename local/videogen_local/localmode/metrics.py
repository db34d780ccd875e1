"""Local mode's stand-in for CloudWatch metrics: a JSON Lines file that `videogen dashboard` charts.

Deployed, CloudWatch extracts the handlers' EMF lines from their logs and publishes AWS/Lambda,
AWS/States and AWS/ApiGateway metrics by itself. Locally, every EMF line the handlers print is copied
to the file as emitted, and the parts of local mode that stand in for Lambda, Step Functions and
API Gateway write EMF-shaped lines for the service metrics those would publish, so the dashboard's
per-function, execution and API widgets have data too. The synthetic lines go to the file only: the
handlers' own output (read by tests/e2e/test_observability.py) stays exactly what they emit.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from videogen_local.localmode.loop import BackgroundLoop

EMF_PREFIX = '{"_aws"'

# Handlers run in many threads at once (one Lambda each on AWS): one lock keeps every line whole.
_lock = threading.Lock()
_file: TextIO | None = None


def open_file(path: Path) -> None:
    """Start recording into ``path``, emptied first: the dashboard shows the run that wrote it."""
    global _file
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lock:
        if _file is not None:
            _file.close()
        _file = path.open("w", encoding="utf-8")


def close_file() -> None:
    global _file
    with _lock:
        if _file is not None:
            _file.close()
            _file = None


def recording() -> bool:
    return _file is not None


def write_line(line: str) -> None:
    """Append one metric line (one JSON object); a no-op unless a file is open."""
    with _lock:
        if _file is None:
            return
        _file.write(line.rstrip("\n") + "\n")
        # Flushed per line so that `videogen dashboard` can chart a stack that is still running.
        _file.flush()


def take_emf(line: str) -> bool:
    """Record ``line`` if it is an EMF line; True if it was one."""
    if not line.startswith(EMF_PREFIX):
        return False
    write_line(line)
    return True


def copy_emf(line: str) -> bool:
    """Record an EMF line and still let it through (``LineWriter``'s hook: False = write it as well)."""
    take_emf(line)
    return False


def record(
    namespace: str,
    dimensions: dict[str, str],
    values: dict[str, tuple[float, str]],
    timestamp: float | None = None,
) -> None:
    """One EMF line: metric name -> (value, unit), all with the same dimensions; ``timestamp`` in epoch seconds."""
    if not recording():
        return
    when = time.time() if timestamp is None else timestamp
    document: dict[str, object] = {
        "_aws": {
            "Timestamp": int(when * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [list(dimensions)],
                    "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in values.items()],
                }
            ],
        },
        **dimensions,
        **{name: value for name, (value, _) in values.items()},
    }
    write_line(json.dumps(document, separators=(",", ":")))


def record_lambda(function_name: str, duration_ms: float, error: bool) -> None:
    """What Lambda publishes per invocation. Locally nothing is ever throttled: Throttles is 0."""
    record(
        "AWS/Lambda",
        {"FunctionName": function_name},
        {
            "Invocations": (1, "Count"),
            "Errors": (1 if error else 0, "Count"),
            "Throttles": (0, "Count"),
            "Duration": (round(duration_ms, 3), "Milliseconds"),
        },
    )


def record_api(api_name: str, stage: str, status: int, latency_ms: float) -> None:
    """What API Gateway (REST) publishes per request, with the dashboard's dimensions (ApiName, Stage)."""
    record(
        "AWS/ApiGateway",
        {"ApiName": api_name, "Stage": stage},
        {
            "Count": (1, "Count"),
            "4XXError": (1 if 400 <= status < 500 else 0, "Count"),
            "5XXError": (1 if status >= 500 else 0, "Count"),
            "Latency": (round(latency_ms, 3), "Milliseconds"),
        },
    )


# Step Functions' execution metrics, by the execution status that ends in them.
EXECUTION_METRICS = {
    "SUCCEEDED": "ExecutionsSucceeded",
    "FAILED": "ExecutionsFailed",
    "TIMED_OUT": "ExecutionsTimedOut",
    "ABORTED": "ExecutionsAborted",
}


def record_execution(state_machine_arn: str, metric: str, timestamp: float | None = None) -> None:
    record("AWS/States", {"StateMachineArn": state_machine_arn}, {metric: (1, "Count")}, timestamp)


def record_queue_depth(queue_name: str, visible: int, timestamp: float | None = None) -> None:
    record(
        "AWS/SQS",
        {"QueueName": queue_name},
        {"ApproximateNumberOfMessagesVisible": (visible, "Count")},
        timestamp,
    )


class QueueSampler(BackgroundLoop):
    """SQS publishes queue depth to CloudWatch every minute; locally it is sampled every few seconds.
    ApproximateAgeOfOldestMessage is CloudWatch-only (no queue attribute gives it), so it stays empty."""

    name = "queue-sampler"

    def __init__(self, sqs: Any, queues: dict[str, str], interval: float = 2.0) -> None:
        super().__init__(pause=interval)
        self._sqs = sqs
        self._queues = queues

    def tick(self) -> None:
        for name, url in self._queues.items():
            attributes = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
            record_queue_depth(name, int(attributes["Attributes"]["ApproximateNumberOfMessages"]))


def lambda_invocations(path: Path) -> dict[str, int]:
    """Invocations per function name in a recorded run (the AWS/Lambda lines ``record_lambda`` wrote)."""
    counts: dict[str, int] = {}
    if not path.exists():
        return counts
    for line in path.read_text(encoding="utf-8").splitlines():
        document = json.loads(line)
        if document["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "AWS/Lambda":
            name = str(document["FunctionName"])
            counts[name] = counts.get(name, 0) + int(document["Invocations"])
    return counts
