"""Fail: record a failed, cancelled, expired or timed-out job (its VideoFailed event follows from the outbox).

Invoked by the state machine's failure branches, and by an EventBridge rule when an execution
ends FAILED, TIMED_OUT or ABORTED (the safety net for outcomes the workflow could not record).
Any other event is refused with a logged reason and nothing written.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen.fail import NotAFailEvent, read_fail_event, record_failure
from videogen.observability import annotate_job, logger, metrics, tracer
from videogen.services import get_services


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        failure = read_fail_event(event)
    except NotAFailEvent as refused:
        logger.error("not a fail event: nothing recorded", extra={"reason": str(refused)})
        return {"status": "refused"}
    annotate_job(failure.job_id)
    services = get_services()
    record_failure(services, failure)
    job = services.store.get(failure.job_id)
    return {"status": job.status.value if job else "missing"}
