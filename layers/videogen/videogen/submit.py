"""Submit: send the job to OpenRouter exactly once, then start its workflow.

Submission semantics (README: "Submission guarantees"):

* a job is POSTed at most once: the attempt first takes a claim on the job record (conditional write);
* an attempt that is known not to have reached OpenRouter (connection refused, 429, 5xx with an error
  body) releases its claim and is retried later, up to ``max_submit_attempts``;
* an attempt whose outcome is unknown (time-out after sending, the function died) is never retried:
  the job ends ``failed`` with an error that says OpenRouter may still have the job and may bill it;
* OpenRouter rejecting the request (4xx) ends the job ``failed`` with OpenRouter's message, unless the
  refusal is about the account, not the job (402 credits, 403 over a limit, 401 key refused): then the
  credit breaker (videogen.breaker) opens and the job waits, queued, for credits to come back;
* once OpenRouter's job id is recorded, a redelivered message only (re)starts the workflow, whose
  execution is named after the job, so it cannot start twice.
"""

from __future__ import annotations

import random
import time
from enum import StrEnum

from videogen.breaker import GO, Admission, account_problem
from videogen.errors import (
    PUSHBACK_STATUSES,
    OpenRouterError,
    OpenRouterUnavailable,
    SubmissionOutcomeUnknown,
    TransientError,
)
from videogen.jobs import Claim
from videogen.models import Job, JobStatus, WorkflowInput
from videogen.observability import Metric, annotate_job, emit, logger
from videogen.outcome import finish_job
from videogen.pressure import Judged, Pace
from videogen.services import Services

# A submission without a token waits this long at most in the invocation; a longer wait goes back to the queue.
IN_INVOCATION_WAIT_SECONDS = 2.0

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
    PAUSED = "paused"  # the breaker is open, or OpenRouter pushes back: the message was sent back with a delay


class SubmitLater(TransientError):
    """Try this message again after the visibility timeout."""


def submit_job(
    services: Services, job_id: str, now: float | None = None, paused_since: float | None = None
) -> SubmitResult:
    """``paused_since``: when this job's submission was first paused (by the breaker or the pressure on
    OpenRouter; from its message)."""
    now = time.time() if now is None else now
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

    breaker = services.breaker
    admission = breaker.admit(job_id, now) if breaker is not None else GO
    if not admission.go:
        return _pause(services, job_id, admission.wait_seconds, admission.reason, paused_since, now, breaker=True)
    pressure = services.pressure
    pace = _pace(services, now)
    if not pace.go:
        _probe_told_nothing(services, job_id, now, admission)
        return _pause(services, job_id, pace.wait_seconds, "paced", paused_since, now)

    claim = store.claim_submission(job_id, now, services.settings.submit_claim_seconds)
    if claim is not Claim.CLAIMED:
        _probe_told_nothing(services, job_id, now, admission)
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
        # With shared pacing, a 429 / 503 comes back at once: the pacing, not this message, decides when.
        accepted = services.openrouter.submit(body, retry_pushback=pressure is None)
    except OpenRouterError as exc:
        emit(Metric.OPENROUTER_ERRORS, http_status=str(exc.status_code))
        problem = account_problem(exc) if breaker is not None else None
        if breaker is not None and problem is not None:
            # Not about this job: nothing was created or billed. The job waits, queued, for the probe that
            # finds credits back; the release is no attempt (max_submit_attempts counts real ones).
            store.release_claim(
                job_id, f"submission paused: OpenRouter HTTP {exc.status_code} ({problem})", counts=False
            )
            view, changed = breaker.trip(problem, exc.message, exc.retry_after, job_id, now)
            if changed:
                emit(Metric.SUBMIT_BREAKER_OPEN, 1)
                logger.warning(
                    "credit breaker open: submissions paused",
                    extra={"reason": problem.value, "status": exc.status_code, "breaker": view.body()},
                )
            wait = (view.next_probe_at or now) - now
            return _pause(services, job_id, wait, problem.value, paused_since, now, breaker=True)
        _probe_told_nothing(services, job_id, now, admission)
        finish_job(services, job_id, JobStatus.FAILED, error=f"OpenRouter rejected the request: {exc.message}")
        return SubmitResult.FAILED
    except OpenRouterUnavailable as exc:
        _probe_told_nothing(services, job_id, now, admission)
        emit(Metric.OPENROUTER_ERRORS, http_status=exc.http_status)
        if pressure is not None and exc.status_code in PUSHBACK_STATUSES:
            # Known not accepted, and about OpenRouter's load, not the job: no attempt spent. Everyone slows.
            store.release_claim(job_id, f"submission paced: OpenRouter HTTP {exc.status_code}", counts=False)
            _judged(pressure.answered(refused=True, now=time.time()))
            wait = max(exc.retry_after or 0.0, 1.0 / (pressure.rate() or pressure.max_rate))
            reason = "rate_limited" if exc.status_code == 429 else "no_provider"
            return _pause(services, job_id, wait, reason, paused_since, now)
        attempts = store.release_claim(job_id, str(exc))
        if attempts >= services.settings.max_submit_attempts:
            finish_job(
                services, job_id, JobStatus.FAILED, error=f"OpenRouter unavailable after {attempts} attempts: {exc}"
            )
            return SubmitResult.FAILED
        raise SubmitLater(f"OpenRouter unavailable (attempt {attempts}): {exc}") from None
    except SubmissionOutcomeUnknown as exc:
        _probe_told_nothing(services, job_id, now, admission)
        finish_job(services, job_id, JobStatus.FAILED, error=f"{UNKNOWN_OUTCOME} ({exc})")
        return SubmitResult.FAILED

    if admission.probe and breaker is not None and breaker.probe_accepted(job_id, now):
        emit(Metric.SUBMIT_BREAKER_OPEN, 0)
        logger.info("credit breaker closed: a probe was accepted, submissions resume")
    if pressure is not None and (pace.rate is not None or pace.watched):
        _judged(pressure.answered(refused=False, now=time.time()))
    polling_url = services.openrouter.poll_url(accepted.polling_url, accepted.id)
    job = store.mark_submitted(job_id, accepted, polling_url)
    annotate_job(job_id, accepted.id)
    logger.info("job submitted to OpenRouter")
    emit(Metric.JOBS_SUBMITTED)
    start_workflow(services, job)
    return SubmitResult.SUBMITTED


def _judged(verdict: Judged | None) -> None:
    """A window of answers opened or judged by the shared pressure: the rate is charted at each."""
    if verdict is None:
        return
    emit(Metric.SUBMIT_RATE, verdict.rate)
    extra = {"rate": verdict.rate, "previous_rate": verdict.previous, "refused_share": round(verdict.refused_share, 3)}
    if verdict.opened:
        logger.info("OpenRouter pushed back: a window of submission answers opened", extra=extra)
    elif verdict.slowed:
        logger.warning("OpenRouter pushes back on many submissions: submissions slowed", extra=extra)
    else:
        logger.info("submission answers judged: the shared rate holds or recovers", extra=extra)


def _probe_told_nothing(services: Services, job_id: str, now: float, admission: Admission) -> None:
    """If this submission held the breaker's probe, its answer said nothing about credits: the next
    submission probes at once."""
    if admission.probe and services.breaker is not None:
        services.breaker.probe_inconclusive(job_id, now)


def _pace(services: Services, now: float) -> Pace:
    """A token from the shared submission rate (videogen.pressure); a short wait is waited here."""
    pressure = services.pressure
    if pressure is None:
        return Pace(go=True)
    pace = pressure.take(now)
    waited = 0.0
    while not pace.go and waited + pace.wait_seconds <= IN_INVOCATION_WAIT_SECONDS:
        time.sleep(pace.wait_seconds)
        waited += pace.wait_seconds
        pace = pressure.take(time.time())
    return pace


def _pause(
    services: Services,
    job_id: str,
    wait_seconds: float,
    reason: str | None,
    paused_since: float | None,
    now: float,
    *,
    breaker: bool = False,
) -> SubmitResult:
    """Put the job's message back on the queue for ``wait_seconds`` (the breaker's next probe, a Retry-After,
    a token's time), or end the job when it has waited longer than the settings allow (unsubmitted: nothing
    was billed)."""
    since = paused_since if paused_since is not None else now
    limit = services.settings.submit_pause_limit_seconds
    if now - since > limit:
        why = f"refused submissions for the account ({reason})" if breaker else f"pushed back ({reason})"
        finish_job(
            services,
            job_id,
            JobStatus.FAILED,
            error=f"not submitted: OpenRouter {why} for over {limit / 3600:g} h; nothing was sent or billed",
        )
        return SubmitResult.FAILED
    # Jitter spreads the messages that come back together; at least a second, at most SQS's 15 minutes.
    delay = round(min(900.0, max(1.0, wait_seconds) * random.uniform(1.0, 1.2)))
    services.queue.defer(job_id, delay, since)
    emit(Metric.SUBMISSIONS_PAUSED, reason=reason or "unknown")
    if breaker:
        emit(Metric.SUBMIT_BREAKER_OPEN, 1)
    logger.info("submission paused", extra={"reason": reason, "delay_seconds": delay})
    return SubmitResult.PAUSED


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
