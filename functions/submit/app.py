"""Submit: SQS consumer that sends each job to OpenRouter once and starts its workflow.

Records are processed independently (partial batch failures): a record that must be retried
raises, so only it returns to the queue; after maxReceiveCount it moves to the DLQ.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen.observability import job_log_scope, logger, metrics, tracer
from videogen.services import get_services
from videogen.submit import submit_job

processor = BatchProcessor(event_type=EventType.SQS)


@tracer.capture_method
def record_handler(record: SQSRecord) -> str:
    job_id = json.loads(record.body)["job_id"]
    with job_log_scope(job_id):  # the batch's next record must not log under this job's id
        return submit_job(get_services(), job_id).value


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
