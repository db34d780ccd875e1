"""Batch: SQS consumer that works on one batch per message (videogen.batches.drive): reads its manifest
from the checkpoint on, cancels its jobs when asked, and ends it (results file, BatchCompleted).

An invocation near its time limit saves its checkpoint and queues its own continuation; one that dies is
retried by SQS from the last checkpoint (a line read again finds its job). A message that cannot be
processed is reported as a batch item failure and, after maxReceiveCount, rests in the batch DLQ.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen.batches import drive
from videogen.doors import batch_receipt
from videogen.observability import logger, metrics, tracer
from videogen.services import get_services, message_field

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
_context: LambdaContext | None = None


class NotABatchMessage(Exception):
    """A message this queue's producers never send."""


@tracer.capture_method
def record_handler(record: SQSRecord) -> str:
    batch_id = message_field(record.body, "batch_id")
    if batch_id is None:
        logger.error("not a batch message: left for the batch DLQ", extra={"message_id": record.message_id})
        raise NotABatchMessage(f"message {record.message_id} has no batch_id")
    context = _context
    assert context is not None
    outcome = drive(
        get_services(),
        batch_id,
        holder=context.aws_request_id,
        seconds_left=lambda: context.get_remaining_time_in_millis() / 1000,
        receipt=batch_receipt,
    )
    logger.info("batch worked on", extra={"batch_id": batch_id, "result": outcome.result, "lines": outcome.lines_read})
    return outcome.result


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    global _context
    _context = context  # the record handler's clock: how long this invocation has left
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
