"""Poll: ask OpenRouter for the job's status once, record it, and tell the state machine where to go."""

from __future__ import annotations

from videogen.errors import OpenRouterError, OpenRouterUnavailable, TransientError
from videogen.models import Job, PollResult
from videogen.observability import Metric, emit, logger
from videogen.services import Services

# OpenRouter's documented statuses; anything else is counted as "other" to keep the dimension small.
KNOWN_STATUSES = frozenset({"pending", "in_progress", "completed", "failed", "cancelled", "expired"})
# The route of a job that had ended before this poll (a callback's download, a cancel): the state machine
# stops without asking OpenRouter again.
ENDED = "ended"


def poll_job(
    services: Services,
    job_id: str,
    openrouter_job_id: str,
    polling_url: str | None,
    poll_count: int,
    job: Job | None = None,
) -> PollResult:
    """``job``: the job as just read (consistently), if the caller has it; else it is read here."""
    current = job if job is not None else services.store.get(job_id)
    if current is None or current.status.terminal:
        logger.info("poll: the job already ended", extra={"job_id": job_id})
        return PollResult(status=ENDED, poll_count=poll_count)
    try:
        polled = services.openrouter.get_job(polling_url, openrouter_job_id)
    except OpenRouterUnavailable as exc:
        # Step Functions matches Retry on the error's exact class name, so transient means TransientError.
        emit(Metric.OPENROUTER_ERRORS, http_status=exc.http_status)
        raise TransientError(str(exc)) from None
    except OpenRouterError as exc:
        emit(Metric.OPENROUTER_ERRORS, http_status=str(exc.status_code))
        if exc.retryable:
            raise TransientError(str(exc)) from None
        raise
    count = poll_count + 1
    job = services.store.record_poll(job_id, polled)
    emit(Metric.POLLS, openrouter_status=polled.status if polled.status in KNOWN_STATUSES else "other")
    logger.info("polled", extra={"job_id": job_id, "openrouter_status": polled.status, "poll_count": count})
    if job is None:
        # The job already ended (e.g. cancelled by its caller): route to the matching terminal branch,
        # whose recording step is a no-op for a finished job.
        finished = services.store.get(job_id)
        status = finished.status.value if finished else "failed"
        return PollResult(status=status if status != "timed_out" else "failed", poll_count=count)
    return PollResult(status=polled.status, poll_count=count, error=polled.error, unsigned_urls=polled.unsigned_urls)
