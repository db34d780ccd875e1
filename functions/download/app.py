"""Download: stream the completed video into s3://<bucket>/videos/<job id>.mp4 and mark the job completed."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen.download import download_job
from videogen.observability import annotate_job, logger, metrics, tracer
from videogen.services import get_services


@logger.inject_lambda_context(correlation_id_path="job_id", clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    annotate_job(event["job_id"], event["openrouter_job_id"])
    services = get_services()
    download_job(services, event["job_id"], event["openrouter_job_id"], event.get("unsigned_urls"))
    job = services.store.get(event["job_id"])
    return {"status": job.status.value if job else "missing"}
