"""Record a failed, cancelled, expired or timed-out job (the state machine's failure branches)."""

from __future__ import annotations

import json
from typing import Any

from videogen.models import FAILURE_STATUSES, Job, JobStatus
from videogen.outcome import finish_job
from videogen.services import Services


def fail_job(
    services: Services, job_id: str, status: str, error: str | None, failure: dict[str, Any] | None = None
) -> Job | None:
    try:
        terminal = JobStatus(status)
    except ValueError:
        terminal = JobStatus.FAILED
    if terminal not in FAILURE_STATUSES:
        terminal = JobStatus.FAILED
    if failure is not None:
        error = describe_failure(failure)
    if not error:
        # OpenRouter's error is surfaced verbatim when present; say something useful when it is not.
        error = f"OpenRouter reported the job as {terminal.value} without an error message"
    return finish_job(services, job_id, terminal, error=error)


def fail_ended_execution(services: Services, job_id: str, execution_status: str, error: str | None) -> Job | None:
    """The safety net: an execution ended (FAILED, TIMED_OUT, ABORTED) and its job may have no outcome yet."""
    name = "Execution" + execution_status.title().replace("_", "")
    return fail_job(services, job_id, "failed", None, {"Error": name, "Cause": error or ""})


def describe_failure(failure: dict[str, Any]) -> str:
    """A Step Functions Catch result ({"Error", "Cause"}) as one readable line."""
    name = str(failure.get("Error", "Error"))
    cause = failure.get("Cause") or ""
    try:
        parsed = json.loads(cause)
    except (TypeError, ValueError):
        parsed = None
    if isinstance(parsed, dict) and parsed.get("errorMessage"):
        cause = parsed["errorMessage"]
    return f"workflow error {name}: {cause}"[:2000]
