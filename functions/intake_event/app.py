"""EventBridge door: a ``VideoRequested`` event on the service bus becomes a job.

There is no one to answer, so a rejected request is reported as a ``VideoRejected`` event
(and logged); the job id of an accepted one is logged and visible in the job's events later.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen import intake
from videogen.errors import RequestRejected
from videogen.models import Door
from videogen.observability import logger, metrics, tracer
from videogen.services import get_services


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    services = get_services()
    source = f"events:{event.get_id}"
    try:
        job = intake.accept(services, event.detail, door=Door.EVENTBRIDGE, caller=event.source)
    except RequestRejected as rejected:
        intake.reject_event(services, Door.EVENTBRIDGE, source, rejected)
        return {"status": "rejected", "error": rejected.to_body()["error"]}
    return {"status": job.status.value, "id": job.id}
