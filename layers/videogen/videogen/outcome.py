"""The end of every accepted job: one terminal status, written once.

The terminal write is conditional (JobStore.finish), so of racing callers (a cancel and a completion,
a retried step and its first attempt) exactly one moves the job. Its result event is not sent here:
the jobs table's stream carries the transition to the publish function (outbox.py), so a caller that
dies right after the write cannot leave the job unannounced.
"""

from __future__ import annotations

from videogen.models import Job, JobStatus, Usage, VideoObject
from videogen.observability import logger
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
    """Record the terminal status. Returns the finished job, or None if the job had already ended."""
    job = services.store.finish(job_id, status, error=error, video=video, usage=usage)
    if job is None:
        logger.info("job already finished; its status stays", extra={"job_id": job_id, "status": status.value})
        return None
    logger.info("job finished", extra={"job_id": job_id, "status": job.status.value, "error": job.error})
    return job
