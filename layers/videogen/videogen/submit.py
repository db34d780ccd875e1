"""Submit: send the job to OpenRouter exactly once, then start its workflow.

Submission semantics (README: "Submission guarantees"):

* a job is POSTed at most once: the attempt first takes a claim on the job record (conditional write);
* an attempt that is known not to have reached OpenRouter (connection refused, 429, 5xx with an error
  body) releases its claim and is retried later, up to ``max_submit_attempts``;
* an attempt whose outcome is unknown (time-out after sending, the function died) is never retried:
  the job ends ``failed`` with an error that says OpenRouter may still have the job and may bill it;
* OpenRouter rejecting the request (4xx) ends the job ``failed`` with OpenRouter's message;
* once OpenRouter's job id is recorded, a redelivered message only (re)starts the workflow, whose
  execution is named after the job, so it cannot start twice.
"""

from __future__ import annotations

import time
from enum import StrEnum

from videogen.errors import OpenRouterError, OpenRouterUnavailable, SubmissionOutcomeUnknown, TransientError
from videogen.jobs import Claim
from videogen.models import Job, JobStatus, WorkflowInput
from videogen.observability import Metric, annotate_job, emit, logger
from videogen.outcome import finish_job
from videogen.services import Services

UNKNOWN_OUTCOME = (
    "submission outcome unknown: the request to OpenRouter was sent but no answer came back; "
    "it was not resent to avoid a second billed job. An OpenRouter job may still exist and bill."
)


class SubmitResult(StrEnum):
    SUBMITTED = "submitted"
    ALREADY_SUBMITTED = "already_submitted"
    ALREADY_FINISHED = "already_finished"
    FAILED = "failed"
    MISSING = "missing"


class SubmitLater(TransientError):
    """Try this message again after the visibility timeout."""


def submit_job(services: Services, job_id: str, now: float | None = None) -> SubmitResult:
    store = services.store
    job = store.get(job_id)
    if job is None:
        logger.error("submit: no such job", extra={"job_id": job_id})
        return SubmitResult.MISSING
    if job.status.terminal:
        return SubmitResult.ALREADY_FINISHED
    if job.openrouter_job_id:
        start_workflow(services, job)
        return SubmitResult.ALREADY_SUBMITTED

    claim = store.claim_submission(job_id, now or time.time(), services.settings.submit_claim_seconds)
    if claim is Claim.DONE:
        refreshed = store.get(job_id)
        if refreshed is not None and refreshed.openrouter_job_id and not refreshed.status.terminal:
            start_workflow(services, refreshed)
        return SubmitResult.ALREADY_SUBMITTED
    if claim is Claim.BUSY:
        raise SubmitLater(f"job {job_id} is being submitted by another attempt")
    if claim is Claim.STALE:
        finish_job(services, job_id, JobStatus.FAILED, error=UNKNOWN_OUTCOME)
        return SubmitResult.FAILED

    body = job.request.to_openrouter(services.storage.resolve_reference, job.previous_openrouter_job_id)
    callback_url = callback_url_for(services)
    if callback_url:
        body["callback_url"] = callback_url
    try:
        accepted = services.openrouter.submit(body)
    except OpenRouterError as exc:
        emit(Metric.OPENROUTER_ERRORS, http_status=str(exc.status_code))
        finish_job(services, job_id, JobStatus.FAILED, error=f"OpenRouter rejected the request: {exc.message}")
        return SubmitResult.FAILED
    except OpenRouterUnavailable as exc:
        emit(Metric.OPENROUTER_ERRORS, http_status=exc.http_status)
        attempts = store.release_claim(job_id, str(exc))
        if attempts >= services.settings.max_submit_attempts:
            finish_job(
                services, job_id, JobStatus.FAILED, error=f"OpenRouter unavailable after {attempts} attempts: {exc}"
            )
            return SubmitResult.FAILED
        raise SubmitLater(f"OpenRouter unavailable (attempt {attempts}): {exc}") from None
    except SubmissionOutcomeUnknown as exc:
        finish_job(services, job_id, JobStatus.FAILED, error=f"{UNKNOWN_OUTCOME} ({exc})")
        return SubmitResult.FAILED

    polling_url = services.openrouter.poll_url(accepted.polling_url, accepted.id)
    job = store.mark_submitted(job_id, accepted, polling_url)
    annotate_job(job_id, accepted.id)
    logger.info("job submitted to OpenRouter")
    emit(Metric.JOBS_SUBMITTED)
    start_workflow(services, job)
    return SubmitResult.SUBMITTED


def callback_url_for(services: Services) -> str | None:
    """The receiver OpenRouter is asked to call on a terminal status, when callbacks are on: a signing secret
    is configured (unsigned callbacks would be refused) and the receiver has a URL. Otherwise None, and the
    poll loop alone finds the job's end, as it always can."""
    url = services.settings.openrouter_callback_url
    if not url or services.webhook_secret() is None:
        return None
    return url


def start_workflow(services: Services, job: Job) -> None:
    assert job.openrouter_job_id and job.polling_url
    services.workflow.start(
        WorkflowInput(
            job_id=job.id,
            openrouter_job_id=job.openrouter_job_id,
            polling_url=job.polling_url,
            wait_seconds=services.settings.poll_interval_seconds,
            max_polls=services.settings.max_polls,
        )
    )
