"""Webhook delivery: result events (EventBridge → the webhook queue), each POSTed, signed, to its job's
webhook_url (videogen.webhooks).

One attempt per receive. A failed attempt keeps its message: it becomes visible again after the schedule's
next delay (ChangeMessageVisibility) and is reported as a batch item failure; after the last attempt the
queue's redrive policy moves it to the dead-letter queue, where an alarm watches.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen.aws import client
from videogen.observability import Metric, emit, job_log_scope, logger, metrics, tracer
from videogen.services import get_services
from videogen.webhooks import deliver, parse_delays

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class TryAgainLater(Exception):
    """This message's attempt failed: it comes back when its visibility timeout ends."""


def record_handler(record: SQSRecord) -> str:
    services = get_services()
    event: dict[str, Any] = json.loads(record.body)
    with job_log_scope((event.get("detail") or {}).get("job_id")):
        decision = deliver(
            services.store,
            services.signing_keys,
            services.webhook_sender,
            event,
            int(record.attributes.approximate_receive_count),
            parse_delays(services.settings.webhook_retry_delays),
        )
        attempt = decision.attempt
        if attempt is None:
            return "nothing to deliver"
        emit(Metric.WEBHOOK_DELIVERIES, outcome=attempt.outcome.value)
        if attempt.latency_ms is not None:
            emit(Metric.WEBHOOK_LATENCY, attempt.latency_ms)
        # Never the URL: its path or query may carry the receiver's own token.
        logger.info("webhook attempt", extra=attempt.record())
        if decision.retry_in is not None:
            client("sqs").change_message_visibility(
                QueueUrl=services.settings.webhook_queue_url,
                ReceiptHandle=record.receipt_handle,
                VisibilityTimeout=decision.retry_in,
            )
            raise TryAgainLater(f"webhook attempt {attempt.outcome.value}: again in {decision.retry_in} s")
        return attempt.outcome.value


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
