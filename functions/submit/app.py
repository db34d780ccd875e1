"""Submit: SQS consumer that sends each job to OpenRouter once and starts its workflow.

Records are processed independently (partial batch failures): a record that must be retried
raises, so only it returns to the queue; after maxReceiveCount it moves to the DLQ.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen.observability import job_log_scope, logger, metrics, tracer
from videogen.services import get_services, message_field, message_number
from videogen.submit import submit_job

# A batch whose every record failed is reported like any other (every record a batch item failure) rather
# than raised: SQS treats both the same (the messages come back, counting towards maxReceiveCount), and a
# one-message batch holding a message that can never be processed then ends as a clean answer with its
# logged reason, not as an unhandled exception.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@tracer.capture_method
class NotAJobMessage(Exception):
    """A message this queue's producers never send. It can never be processed."""


def _job_id(record: SQSRecord) -> str:
    job_id = message_field(record.body, "job_id")
    if job_id is None:
        # Reported as a batch item failure, not dropped: after maxReceiveCount it rests in the submit DLQ,
        # whose alarm tells someone that something writes to this queue what intake never does.
        logger.error(
            "not a job message: left for the submit DLQ",
            extra={"message_id": record.message_id, "body": (record.body or "")[:200]},
        )
        raise NotAJobMessage(f"message {record.message_id} has no job_id")
    return job_id


def record_handler(record: SQSRecord) -> str:
    job_id = _job_id(record)
    with job_log_scope(job_id):  # the batch's next record must not log under this job's id
        # paused_since: set on a message sent back paused (videogen.breaker, videogen.pressure).
        return submit_job(get_services(), job_id, paused_since=message_number(record.body, "paused_since")).value


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
