"""Callback consumer: SQS records from the receiver, each a nudge to poll one job now (videogen.nudge).

Records are independent (partial batch failures). A nudge that cannot be carried out for a transient reason
is left to the poll loop rather than retried; only a message that is not a nudge fails, towards the DLQ.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen.nudge import nudge
from videogen.observability import job_log_scope, logger, metrics, tracer
from videogen.services import get_services, message_field

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class NotANudge(Exception):
    """A message the receiver never sends."""


def _openrouter_job_id(record: SQSRecord) -> str:
    value = message_field(record.body, "openrouter_job_id")
    if value is None:
        logger.error("not a callback nudge: left for the DLQ", extra={"message_id": record.message_id})
        raise NotANudge(f"message {record.message_id} has no openrouter_job_id")
    return value


def record_handler(record: SQSRecord) -> str:
    openrouter_job_id = _openrouter_job_id(record)
    with job_log_scope():  # the batch's next record must not log under this job's id
        # The message id names the download claim: a redelivery of this message may take it back.
        result = nudge(get_services(), openrouter_job_id, owner=f"callback:{record.message_id}")
        logger.info("callback nudge", extra={"openrouter_job_id": openrouter_job_id, "result": result.value})
        return result.value


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
