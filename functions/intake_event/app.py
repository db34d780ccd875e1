"""EventBridge door: a ``VideoRequested`` event on the service bus becomes a job, once per event id.

There is no one to answer, so a rejected request is reported as a ``VideoRejected`` event (and logged);
the job id of an accepted one is logged and visible in the job's events later. The job belongs to
``eventbridge:<account>:<source>`` (videogen.owners): ``source`` is whatever the putter wrote, so it can
never be taken for an IAM principal.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen.doors import take_event_request
from videogen.observability import logger, metrics, tracer
from videogen.services import get_services


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    _, answer = take_event_request(get_services(), event.get_id, event.account, event.source, event.detail)
    return answer
