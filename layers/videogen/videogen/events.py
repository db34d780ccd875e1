"""Outbound EventBridge events: one per accepted job's outcome, one per rejected request."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from videogen.aws import client
from videogen.errors import TransientError
from videogen.models import Job

SOURCE = "videogen"


class DetailType(StrEnum):
    REQUESTED = "VideoRequested"  # inbound: a caller asks for a video through EventBridge
    COMPLETED = "VideoCompleted"
    FAILED = "VideoFailed"
    REJECTED = "VideoRejected"
    BATCH_COMPLETED = "BatchCompleted"  # every job of a batch ended (videogen.batches)


@dataclass
class EventPublisher:
    bus: str

    def publish(self, detail_type: DetailType, detail: dict[str, Any]) -> None:
        response = client("events").put_events(
            Entries=[
                {
                    "Source": SOURCE,
                    "DetailType": detail_type.value,
                    "Detail": json.dumps(detail, default=str),
                    "EventBusName": self.bus,
                }
            ]
        )
        if response.get("FailedEntryCount"):
            entry = response["Entries"][0]
            raise TransientError(
                f"EventBridge refused {detail_type}: {entry.get('ErrorCode')} {entry.get('ErrorMessage')}"
            )


def outcome_detail(job: Job) -> dict[str, Any]:
    """The detail of VideoCompleted / VideoFailed. ``idempotency_key`` lets consumers drop the rare
    duplicate (EventBridge delivery is at-least-once)."""
    detail: dict[str, Any] = {
        "job_id": job.id,
        "status": job.status.value,
        "idempotency_key": f"{job.id}:{job.status.value}",
        "door": job.door.value,
        "model": job.request.model,
        "openrouter_job_id": job.openrouter_job_id,
        "polls": len(job.polls),
        "error": job.error,
        "usage": job.usage.model_dump(mode="json") if job.usage else None,
        "estimated_cost_usd": job.estimated_cost_usd,
        # Whether the caller asked for a webhook (the URL itself stays out of events): the webhook queue's
        # rule takes only these.
        "webhook_requested": job.request.webhook_url is not None,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
    }
    if job.video is not None:
        detail["video"] = job.video.model_dump(mode="json", exclude={"url"}, exclude_none=True)
    return detail
