"""Record a failed, cancelled, expired or timed-out job (the state machine's failure branches)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeGuard

from videogen.models import FAILURE_STATUSES, Job, JobStatus
from videogen.outcome import finish_job
from videogen.services import Services

EXECUTION_STATUS_CHANGE = "Step Functions Execution Status Change"


class NotAFailEvent(Exception):
    """An event neither the state machine's failure branches nor the execution-status rule send (it names no
    job, or not as they do): there is nothing to record, and a retry would not change that."""


@dataclass(frozen=True)
class FailEvent:
    """What a fail invocation asks to record: a failure branch's payload, or an execution that ended."""

    job_id: str
    status: str = "failed"
    error: str | None = None
    failure: dict[str, Any] | None = None
    ended_execution: str | None = None  # the safety net's: the execution's status (FAILED, TIMED_OUT, ABORTED)


def read_fail_event(event: object) -> FailEvent:
    """The failure an invocation's event asks to record. Raises NotAFailEvent, before anything is written."""
    if not isinstance(event, dict):
        raise NotAFailEvent("the event is not a JSON object")
    if event.get("detail-type") == EXECUTION_STATUS_CHANGE:
        detail = event.get("detail")
        detail = detail if isinstance(detail, dict) else {}
        name, status, error = detail.get("name"), detail.get("status"), detail.get("error")
        if not _named(name) or not _named(status) or not isinstance(error, str | None):
            raise NotAFailEvent("an execution status change without the execution's name and status")
        return FailEvent(job_id=name, error=error, ended_execution=status)  # executions are named after their job
    job_id, status, error, failure = (event.get(k) for k in ("job_id", "status", "error", "failure"))
    if not _named(job_id):
        raise NotAFailEvent("no job_id: not the payload of the state machine's failure branches")
    if not isinstance(status, str | None) or not isinstance(error, str | None):
        raise NotAFailEvent("status and error must be strings")
    if failure is not None and not isinstance(failure, dict):
        raise NotAFailEvent("failure must be a Step Functions error object")
    return FailEvent(job_id=job_id, status=status or "failed", error=error, failure=failure)


def record_failure(services: Services, event: FailEvent) -> Job | None:
    if event.ended_execution is not None:
        return fail_ended_execution(services, event.job_id, event.ended_execution, event.error)
    return fail_job(services, event.job_id, event.status, event.error, event.failure)


def _named(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value)


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
