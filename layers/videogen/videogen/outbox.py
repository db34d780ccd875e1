"""The outbox: every job that ends is announced with one VideoCompleted or VideoFailed event.

The jobs table's stream is the outbox. The transition into a terminal status (JobStore.finish) is the
only write that decides an outcome; the stream delivers it to the publish function at least once,
with retries, even when the function that wrote it died a moment later. So no job ends in silence,
and the functions that end jobs need no EventBridge permission.

Exactly once is not on offer from EventBridge (PutEvents has no idempotency key). The job records
``event_published_at`` after its event, and a redelivered transition whose event is recorded is
skipped; a duplicate is left only if the publish function dies between PutEvents and that write.
Consumers drop it on ``idempotency_key`` (job id + status).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from videogen import batches
from videogen.events import DetailType, outcome_detail
from videogen.jobs import job_from_image
from videogen.models import Job, JobStatus
from videogen.observability import Metric, emit, logger
from videogen.services import Services


def ended_job(old_image: Mapping[str, Any] | None, new_image: Mapping[str, Any] | None) -> Job | None:
    """The job, as it ended, if this change of its item is its move into a terminal status; else None.
    Images as boto3 deserializes them (numbers are Decimals). The stream's filter (template.yaml) lets
    only such changes through; the check is repeated here because a filter is configuration."""
    if not new_image or not _is_terminal(new_image.get("status")) or _is_terminal((old_image or {}).get("status")):
        return None
    return job_from_image(dict(new_image))


def announce(services: Services, job: Job) -> bool:
    """Settle the job's budget reservation, then publish its result event unless it went out already.
    Returns whether the event was published now."""
    settle_budget(services, job)
    # A batch line's end is counted on its batch (once per job, however often the change is delivered).
    batches.job_ended(services, job)
    recorded = services.store.raw(job.id)
    if recorded is not None and "event_published_at" in recorded:
        logger.info("result event already published", extra={"job_id": job.id, "status": job.status.value})
        return False
    detail_type = DetailType.COMPLETED if job.status is JobStatus.COMPLETED else DetailType.FAILED
    services.publisher.publish(detail_type, outcome_detail(job))
    services.store.mark_event_published(job.id)
    record_outcome_metrics(job)
    logger.info("result event published", extra={"job_id": job.id, "status": job.status.value, "event": detail_type})
    return True


def settle_budget(services: Services, job: Job) -> None:
    """What the job reserved becomes what it cost: OpenRouter's ``usage.cost``; nothing for a job that
    never reached OpenRouter; the estimate for one that did and reported no cost (it may have billed).
    Idempotent: a redelivered change finds the reservation settled."""
    if not services.settings.budgets_table:
        return
    if job.usage is not None and job.usage.cost is not None:
        actual = Decimal(str(job.usage.cost))
    elif job.openrouter_job_id and job.estimated_cost_usd is not None:
        actual = Decimal(str(job.estimated_cost_usd))
    else:
        actual = Decimal(0)
    if services.budgets.settle(job.caller, job.id, actual):
        logger.info("budget settled", extra={"job_id": job.id, "cost_usd": float(actual)})
        emit(Metric.SPEND_USD, float(actual), owner=job.caller)
        used = services.budgets.used_ratio(job.caller)
        if used is not None:
            emit(Metric.BUDGET_USED, used, owner=job.caller)
            emit(Metric.BUDGET_USED_MAX, used)


@dataclass
class Republished:
    announced: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # job id -> why it could not be announced


def republish(services: Services, ended_before: datetime) -> Republished:
    """Announce every job that ended before ``ended_before`` and has no event recorded: the recovery
    after the publish function gave up on a change (its DLQ alarm). A job that cannot be announced is
    reported and the others still go out."""
    cutoff = ended_before.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    result = Republished()
    for item in services.store.unannounced(cutoff):
        job_id = str(item.get("id"))
        try:
            if announce(services, job_from_image(item)):
                result.announced.append(job_id)
        except Exception as exc:  # reported per job: one bad item must not silence the rest
            result.failed[job_id] = f"{type(exc).__name__}: {exc}"
    return result


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


def _is_terminal(status: Any) -> bool:
    try:
        return JobStatus(status).terminal
    except ValueError:
        return False


def _parse(timestamp: str | None) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")) if timestamp else datetime.now(UTC)
