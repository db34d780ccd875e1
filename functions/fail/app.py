"""Fail: record a failed, cancelled, expired or timed-out job (its VideoFailed event follows from the outbox).

Invoked by the state machine's failure branches, and by an EventBridge rule when an execution
ends FAILED, TIMED_OUT or ABORTED (the safety net for outcomes the workflow could not record).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen.fail import fail_ended_execution, fail_job
from videogen.observability import annotate_job, logger, metrics, tracer
from videogen.services import get_services

EXECUTION_STATUS_CHANGE = "Step Functions Execution Status Change"


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    services = get_services()
    if event.get("detail-type") == EXECUTION_STATUS_CHANGE:
        detail = event["detail"]
        job_id = detail["name"]  # executions are named after their job
        annotate_job(job_id)
        fail_ended_execution(services, job_id, detail["status"], detail.get("error"))
    else:
        job_id = event["job_id"]
        annotate_job(job_id)
        fail_job(services, job_id, event.get("status", "failed"), event.get("error"), event.get("failure"))
    job = services.store.get(job_id)
    return {"status": job.status.value if job else "missing"}
