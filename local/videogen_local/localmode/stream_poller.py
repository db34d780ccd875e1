"""Stands in for Lambda's DynamoDB-stream event-source mapping: the jobs table's stream → publish.

moto's own mapping would run the function inside the very table write that made the record, with
neither filter nor retry. So the stream is read here as Lambda's poller reads one shard: records in
order; the event source's ``FilterCriteria`` from template.yaml applied with moto's EventBridge pattern
matcher (Lambda filters use EventBridge's pattern language); batches of up to ``BatchSize`` invoked
through moto's Lambda API. A batch whose invocation fails is split in two and retried
(``BisectBatchOnFunctionError``); one that reports ``batchItemFailures`` is retried from its first
failed record (``ReportBatchItemFailures``); records still failing after ``MaximumRetryAttempts``
retries are sent to the on-failure SQS destination as Lambda's failure record (which names the
sequence numbers, not the data) and the shard moves on.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from moto.events.models import EventPattern

from videogen_local.localmode.loop import BackgroundLoop

log = logging.getLogger("videogen.local")
RETRY_PAUSE_SECONDS = 0.2

Invoke = Callable[[dict[str, Any]], Any]
"""Runs the function on one batch event and returns its response; raises if the invocation failed."""


class FunctionError(Exception):
    """The invocation failed as a whole (Lambda's ``FunctionError``)."""


def lambda_invoker(lambda_client: Any, function_name: str) -> Invoke:
    """Invoke through the Lambda API (moto runs the handler), as the event source mapping does."""

    def invoke(event: dict[str, Any]) -> Any:
        response = lambda_client.invoke(FunctionName=function_name, Payload=json.dumps(event).encode())
        payload = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            raise FunctionError((payload or {}).get("errorMessage", "unhandled error"))
        return payload

    return invoke


@dataclass(frozen=True)
class StreamSource:
    """A DynamoDB event of a function in template.yaml (``AWS::Serverless::Function`` ``Events``)."""

    batch_size: int
    maximum_retry_attempts: int
    bisect_on_error: bool
    report_item_failures: bool
    patterns: tuple[dict[str, Any], ...]

    @classmethod
    def from_template(cls, template: dict[str, Any], function: str, event: str) -> StreamSource:
        source = template["Resources"][function]["Properties"]["Events"][event]
        if source["Type"] != "DynamoDB":
            raise ValueError(f"{function}.{event} is a {source['Type']} event, not DynamoDB")
        properties = source["Properties"]
        filters = properties.get("FilterCriteria", {}).get("Filters", [])
        return cls(
            batch_size=int(properties.get("BatchSize", 100)),
            maximum_retry_attempts=int(properties.get("MaximumRetryAttempts", -1)),
            bisect_on_error=bool(properties.get("BisectBatchOnFunctionError", False)),
            report_item_failures="ReportBatchItemFailures" in properties.get("FunctionResponseTypes", []),
            patterns=tuple(json.loads(item["Pattern"]) for item in filters),
        )

    @classmethod
    def outbox(cls) -> StreamSource:
        """The publish function's event source on the jobs table's stream, as this checkout's template.yaml
        declares it: local mode, the tests and the benchmarks relay the outbox the way it deploys."""
        from videogen_local.cfn import load_template
        from videogen_local.localmode.handlers import repository_root

        return cls.from_template(load_template(repository_root() / "template.yaml"), "PublishFunction", "JobEnded")

    def matches(self, record: dict[str, Any]) -> bool:
        """Lambda invokes the function with a record if any filter matches it (all, without filters)."""
        return not self.patterns or any(EventPattern(None, pattern).matches_event(record) for pattern in self.patterns)


class StreamPoller(BackgroundLoop):
    name = "stream-poller"

    def __init__(
        self,
        streams: Any,
        stream_arn: str,
        invoke: Invoke,
        function_arn: str,
        source: StreamSource,
        sqs: Any,
        on_failure_queue_url: str,
    ) -> None:
        super().__init__(pause=0.2)  # Lambda polls a shard about four times a second
        self._streams = streams
        self._stream_arn = stream_arn
        self._invoke_function = invoke
        self._function = function_arn
        self._sqs = sqs
        self._source = source
        self._on_failure_queue_url = on_failure_queue_url
        self._iterator: str | None = None
        self._shard_id = ""

    def tick(self) -> None:
        self.poll_once()

    def poll_once(self) -> int:
        """Deliver what the shard holds now; returns how many records passed the filter."""
        if self._iterator is None:
            shard = self._streams.describe_stream(StreamArn=self._stream_arn)["StreamDescription"]["Shards"][0]
            self._shard_id = shard["ShardId"]
            self._iterator = self._streams.get_shard_iterator(
                StreamArn=self._stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
        response = self._streams.get_records(ShardIterator=self._iterator, Limit=1000)
        self._iterator = response["NextShardIterator"]
        records = [self._lambda_record(record) for record in response["Records"]]
        matching = [record for record in records if self._source.matches(record)]
        size = self._source.batch_size
        for start in range(0, len(matching), size):
            self._deliver(matching[start : start + size])
        return len(matching)

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        pending: list[tuple[list[dict[str, Any]], int]] = [(batch, 0)]  # (records, retries so far), in order
        while pending:
            records, retries = pending.pop(0)
            failed_from, whole = self._invoke(records)
            if failed_from is None:
                continue
            limit = self._source.maximum_retry_attempts
            if limit != -1 and retries >= limit:
                self._give_up(records[failed_from:], retries + 1)
                continue
            if self._stop.wait(RETRY_PAUSE_SECONDS):
                return  # shutting down: the records stay unprocessed, as with a disabled mapping
            if whole and self._source.bisect_on_error and len(records) > 1:
                half = len(records) // 2
                pending[:0] = [(records[:half], retries + 1), (records[half:], retries + 1)]
            else:
                pending.insert(0, (records[failed_from:], retries + 1))

    def _invoke(self, records: list[dict[str, Any]]) -> tuple[int | None, bool]:
        """(index of the first record to retry or None when all succeeded, whether the whole invocation failed)."""
        try:
            payload = self._invoke_function({"Records": records})
        except Exception as exc:  # whatever the function raised: Lambda sees an unhandled error
            log.info("stream batch of %d failed: %s", len(records), str(exc).splitlines()[0] if str(exc) else exc)
            return 0, True
        if not self._source.report_item_failures or not isinstance(payload, dict):
            return None, False
        if not payload.get("batchItemFailures"):
            return None, False
        failed = {str(item["itemIdentifier"]) for item in payload["batchItemFailures"]}
        for index, record in enumerate(records):
            if record["dynamodb"]["SequenceNumber"] in failed:
                return index, False
        return 0, False  # an identifier that names no record: Lambda retries the whole batch

    def _give_up(self, records: list[dict[str, Any]], invocations: int) -> None:
        first, last = records[0], records[-1]
        failure = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self._function,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": invocations,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "DDBStreamBatchInfo": {
                "shardId": self._shard_id,
                "startSequenceNumber": first["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": last["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": first["dynamodb"]["ApproximateCreationDateTime"],
                "approximateArrivalOfLastRecord": last["dynamodb"]["ApproximateCreationDateTime"],
                "batchSize": len(records),
                "streamArn": self._stream_arn,
            },
        }
        log.warning("stream delivery gave up on %d stream record(s) after %d invocations", len(records), invocations)
        self._sqs.send_message(QueueUrl=self._on_failure_queue_url, MessageBody=json.dumps(failure))

    def _lambda_record(self, record: dict[str, Any]) -> dict[str, Any]:
        """GetRecords' record in the Lambda event's shape (creation time in epoch seconds, the stream's ARN)."""
        change = dict(record["dynamodb"])
        created = change.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            change["ApproximateCreationDateTime"] = created.timestamp()
        return {
            "eventID": record["eventID"],
            "eventName": record["eventName"],
            "eventVersion": record.get("eventVersion", "1.1"),
            "eventSource": "aws:dynamodb",
            "awsRegion": record.get("awsRegion", self._stream_arn.split(":")[3]),
            "dynamodb": change,
            "eventSourceARN": self._stream_arn,
        }
