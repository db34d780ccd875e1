"""The end of every accepted job: one terminal status, then one result event.

The terminal write is conditional (see JobStore.finish); only the call that owns the transition
publishes, and it records the publication, so a retry after a crash between the two publishes the
missing event while a repeat after success publishes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from videogen.errors import TransientError
from videogen.events import DetailType, outcome_detail
from videogen.models import Job, JobStatus, Usage, VideoObject
from videogen.observability import Metric, emit, logger
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
    job = services.store.finish(job_id, status, error=error, video=video, usage=usage) or _unpublished(services, job_id)
    if job is None:
        logger.info("job already finished; no event emitted", extra={"job_id": job_id, "status": status.value})
        return None
    detail_type = DetailType.COMPLETED if job.status is JobStatus.COMPLETED else DetailType.FAILED
    services.publisher.publish(detail_type, outcome_detail(job))
    services.store.mark_event_published(job_id)
    record_outcome_metrics(job)
    logger.info("job finished", extra={"job_id": job_id, "status": job.status.value, "error": job.error})
    return job


def finish_or_retry(services: Services, job_id: str, status: JobStatus, *, error: str | None = None) -> Job | None:
    """``finish_job`` for the workflow's retried steps. When the job already ended and its event is still
    unpublished while its owner's claim is fresh, raise TransientError so the step comes back and takes
    the event over once the claim is stale: a retried step must not end quietly while its job could
    still end without an event (its owner died between the terminal write and the publication)."""
    job = finish_job(services, job_id, status, error=error)
    if job is None:
        recorded = services.store.raw(job_id)
        if recorded is not None and "event_published_at" not in recorded:
            raise TransientError(f"job {job_id} has ended but its result event is not published yet")
    return job


def _unpublished(services: Services, job_id: str) -> Job | None:
    """The job ended earlier, possibly with another status, by a call that died before publishing its event
    (a Lambda killed between the two writes): take over that event, so no job ends in silence."""
    recorded = services.store.raw(job_id)
    if recorded is None or "event_published_at" in recorded:
        return None
    status = JobStatus(recorded["status"])
    return services.store.finish(job_id, status) if status.terminal else None


def record_outcome_metrics(job: Job) -> None:
    if job.status is JobStatus.COMPLETED:
        emit(Metric.JOBS_COMPLETED)
        finished = _parse(job.finished_at)
        emit(Metric.END_TO_END_SECONDS, (finished - _parse(job.created_at)).total_seconds())
        if job.submitted_at:
            emit(Metric.GENERATION_SECONDS, (finished - _parse(job.submitted_at)).total_seconds())
    else:
        emit(Metric.JOBS_FAILED, status=job.status.value)
    if job.usage and job.usage.cost is not None:
        emit(Metric.COST_USD, job.usage.cost)


def _parse(timestamp: str | None) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")) if timestamp else datetime.now(UTC)
