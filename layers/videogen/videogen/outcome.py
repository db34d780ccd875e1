"""The end of every accepted job: one terminal status, then one result event.

The terminal write is conditional (see JobStore.finish); only the call that owns the transition
publishes, and it records the publication, so a retry after a crash between the two publishes the
missing event while a repeat after success publishes nothing.
"""

from __future__ import annotations

from videogen.events import DetailType, outcome_detail
from videogen.models import Job, JobStatus, Usage, VideoObject
from videogen.observability import MetricUnit, logger, metrics
from videogen.services import Services


def finish_job(
    services: Services,
    job_id: str,
    status: JobStatus,
    *,
    error: str | None = None,
    video: VideoObject | None = None,
    usage: Usage | None = None,
) -> Job | None:
    """Record the terminal status and emit VideoCompleted/VideoFailed. Returns the finished job, or
    None if the job had already ended (no second event)."""
    job = services.store.finish(job_id, status, error=error, video=video, usage=usage)
    if job is None:
        logger.info("job already finished; no event emitted", extra={"job_id": job_id, "status": status.value})
        return None
    detail_type = DetailType.COMPLETED if job.status is JobStatus.COMPLETED else DetailType.FAILED
    services.publisher.publish(detail_type, outcome_detail(job))
    services.store.mark_event_published(job_id)
    if job.status is JobStatus.COMPLETED:
        metrics.add_metric(name="JobsCompleted", unit=MetricUnit.Count, value=1)
    else:
        metrics.add_metric(name="JobsFailed", unit=MetricUnit.Count, value=1)
    if job.usage and job.usage.cost is not None:
        metrics.add_metric(name="CostUSD", unit=MetricUnit.NoUnit, value=job.usage.cost)
    logger.info("job finished", extra={"job_id": job_id, "status": job.status.value, "error": job.error})
    return job
