"""Cancel: the caller gives up on a job.

The cancellation is a terminal write like any other, so it races fairly with a completion: whichever
conditional write lands first decides the one terminal status and the one event. OpenRouter has no
cancel endpoint, so a job already submitted may still be generated (and billed) there; we stop
polling, never download it, and say so in the job's error.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

from videogen.aws import client
from videogen.models import Job, JobStatus
from videogen.observability import logger
from videogen.outcome import finish_job
from videogen.services import Services

CANCELLED_BEFORE_SUBMIT = "cancelled by the caller before it was sent to OpenRouter"
CANCELLED_AFTER_SUBMIT = "cancelled by the caller; OpenRouter has no cancel endpoint, so its job may still run and bill"


@dataclass
class CancelResult:
    job: Job
    cancelled: bool  # False: the job had already ended (its status is unchanged)


def cancel_job(services: Services, job: Job) -> CancelResult:
    if job.status.terminal:
        return CancelResult(job, cancelled=False)
    reason = CANCELLED_AFTER_SUBMIT if job.openrouter_job_id else CANCELLED_BEFORE_SUBMIT
    finished = finish_job(services, job.id, JobStatus.CANCELLED, error=reason)
    if finished is None:
        current = services.store.get(job.id)
        return CancelResult(current or job, cancelled=False)
    if job.openrouter_job_id:
        stop_execution(services, job.id)
    return CancelResult(finished, cancelled=True)


def execution_arn(state_machine_arn: str, job_id: str) -> str:
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{job_id}"


def stop_execution(services: Services, job_id: str) -> None:
    """Stop polling. Best effort: a poll that still runs finds the job terminal and changes nothing."""
    try:
        client("stepfunctions").stop_execution(
            executionArn=execution_arn(services.settings.state_machine_arn, job_id),
            error="JobCancelled",
            cause="cancelled by the caller",
        )
    except ClientError as exc:
        logger.warning("could not stop the execution", extra={"job_id": job_id, "code": exc.response["Error"]["Code"]})
