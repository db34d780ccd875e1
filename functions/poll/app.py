"""Poll: one status check per loop of the state machine."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen.observability import annotate_job, logger, metrics, tracer
from videogen.poll import poll_job
from videogen.services import get_services


@logger.inject_lambda_context(correlation_id_path="job_id", clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    annotate_job(event["job_id"], event["openrouter_job_id"])
    result = poll_job(
        get_services(),
        event["job_id"],
        event["openrouter_job_id"],
        event.get("polling_url"),
        int(event.get("poll_count") or 0),
    )
    return result.model_dump(mode="json")
