"""Fail: record a failed / cancelled / expired / timed-out job and emit VideoFailed."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen.fail import fail_job
from videogen.observability import logger, metrics
from videogen.services import get_services


@logger.inject_lambda_context(correlation_id_path="job_id")
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event["job_id"])
    services = get_services()
    fail_job(services, event["job_id"], event.get("status", "failed"), event.get("error"), event.get("failure"))
    job = services.store.get(event["job_id"])
    return {"status": job.status.value if job else "missing"}
