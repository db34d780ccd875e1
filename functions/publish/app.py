"""Publish: the outbox relay. Reads the jobs table's stream and announces every job that ended.

Only changes that move a job into a terminal status reach it (the event source's filter). Records are
processed independently (partial batch failures): a record whose event could not be sent raises, and
the stream retries from it; after the retries the change goes to the outbox DLQ (see `videogen republish`).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen.observability import job_log_scope, logger, metrics, tracer
from videogen.outbox import announce, ended_job
from videogen.services import get_services

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


@tracer.capture_method
def record_handler(record: DynamoDBRecord) -> bool:
    change = record.dynamodb
    job = ended_job(change.old_image if change else None, change.new_image if change else None)
    if job is None:
        # The event source's filter should pass only moves into a terminal status; anything else (an
        # edited filter, a foreign record) is left alone, and said so.
        logger.info(
            "stream record skipped: not a job's move into a terminal status",
            extra={"event_id": record.event_id, "event_name": record.event_name.name if record.event_name else None},
        )
        return False
    with job_log_scope(job.id, job.openrouter_job_id):  # the batch's next record must not log under this job's id
        return announce(get_services(), job)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
