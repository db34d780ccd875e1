"""A verified callback's consumer: poll the job now, with the state machine's own poll and download steps.

The callback only says "look now". Its body's status and URLs are never used: the job is found by
OpenRouter's id, polled exactly as the state machine polls it (poll.poll_job, recorded in ``polls``),
and a ``completed`` goes straight to the download (download.download_job, under a download claim of its
own, so it cannot collide with the state machine's). The state machine's next poll then finds the job
ended and stops without asking OpenRouter. Repeats, replays and early or reordered callbacks end in one
of the outcomes below and change nothing else; the poll loop stays the fallback for any of them.
"""

from __future__ import annotations

from enum import StrEnum

from videogen.download import download_job
from videogen.errors import DownloadBusy, TransientError
from videogen.fail import fail_job
from videogen.models import FAILURE_STATUSES, Job
from videogen.observability import annotate_job, logger
from videogen.poll import ENDED, poll_job
from videogen.services import Services

_FAILURES = frozenset(status.value for status in FAILURE_STATUSES) - {"timed_out"}


class NudgeResult(StrEnum):
    UNKNOWN_JOB = "unknown_job"  # not one of this service's jobs (or not yet submitted): ignored
    ALREADY_ENDED = "already_ended"  # a repeat, or the poll loop got there first
    NOT_READY = "not_ready"  # OpenRouter does not say terminal yet: the poll loop carries on
    COMPLETED = "completed"  # this nudge stored the video and completed the job
    FAILED = "failed"  # this nudge recorded OpenRouter's failure
    BUSY = "busy"  # another attempt is storing the video right now
    DEFERRED = "deferred"  # OpenRouter or AWS failed transiently: left to the poll loop, which retries anyway


def nudge(services: Services, openrouter_job_id: str, owner: str) -> NudgeResult:
    """``owner``: this attempt's name for the download claim (the same across redeliveries of one message)."""
    job_id = services.store.find_by_openrouter_id(openrouter_job_id)
    job = services.store.get(job_id) if job_id else None
    if job is None or not job.openrouter_job_id:
        logger.info("callback for an unknown job: ignored", extra={"openrouter_job_id": openrouter_job_id})
        return NudgeResult.UNKNOWN_JOB
    annotate_job(job.id, job.openrouter_job_id)
    if job.status.terminal:
        return NudgeResult.ALREADY_ENDED
    try:
        return _poll_and_finish(services, job, job.openrouter_job_id, owner)
    except TransientError as exc:
        # Not retried here: the state machine's next poll is the retry, and a message that kept failing would
        # only end in a DLQ for a job that is fine.
        logger.warning("callback nudge deferred to the poll loop", extra={"job_id": job.id, "error": str(exc)})
        return NudgeResult.DEFERRED


def _poll_and_finish(services: Services, job: Job, openrouter_job_id: str, owner: str) -> NudgeResult:
    job_id = job.id
    polled = poll_job(services, job_id, openrouter_job_id, job.polling_url, len(job.polls), job=job)
    if polled.status == ENDED:
        return NudgeResult.ALREADY_ENDED
    if polled.status == "completed":
        try:
            finished = download_job(services, job_id, openrouter_job_id, polled.unsigned_urls, owner=owner)
        except DownloadBusy:
            return NudgeResult.BUSY
        return NudgeResult.COMPLETED if finished is not None else NudgeResult.ALREADY_ENDED
    if polled.status in _FAILURES:
        ended = fail_job(services, job_id, polled.status, polled.error)
        return NudgeResult.FAILED if ended is not None else NudgeResult.ALREADY_ENDED
    return NudgeResult.NOT_READY
