"""OpenRouter's video API, as videogen answers it on ``/api/v1/…`` (the gateway for OpenRouter's own clients).

A client changes its base URL and key and keeps its code: the same routes, request, response shapes, status
enum and error envelope as https://openrouter.ai/api/v1 (``../shared/notes/openrouter-video-api.md`` §1–§6,
§11). Behind them is the same job as behind ``/videos``: one validation, one pipeline, one record.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from videogen.errors import RequestRejected
from videogen.models import Job, JobStatus
from videogen.storage import parse_s3_uri

# OpenRouter's status enum has no queued/submitted (both are "pending" to a caller) and no timed_out (a job
# videogen stopped polling is a failure, with the reason in ``error``).
STATUS = {
    JobStatus.QUEUED: "pending",
    JobStatus.SUBMITTED: "pending",
    JobStatus.IN_PROGRESS: "in_progress",
    JobStatus.COMPLETED: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.TIMED_OUT: "failed",
    JobStatus.CANCELLED: "cancelled",
    JobStatus.EXPIRED: "expired",
}
# OpenRouter answers an invalid request with 400, where videogen's own API says 422.
_STATUS_CODES = {422: 400}
UNAUTHORIZED_MESSAGE = "Missing, malformed, unknown or revoked API key: send Authorization: Bearer vg_..."
FORBIDDEN_MESSAGE = "This API key may not call this route"


def video_url(base_url: str, job_id: str) -> str:
    return f"{base_url}/api/v1/videos/{job_id}"


def content_url(base_url: str, job_id: str, index: int = 0) -> str:
    return f"{video_url(base_url, job_id)}/content?index={index}"


def generation(job: Job, base_url: str) -> dict[str, Any]:
    """OpenRouter's VideoGenerationResponse for a job. ``base_url``: this gateway's absolute URL up to and
    without ``/api/v1`` (a relative polling URL would lose the stage when resolved against a base that
    carries it)."""
    body: dict[str, Any] = {
        "id": job.id,
        "polling_url": video_url(base_url, job.id),
        "status": STATUS[job.status],
    }
    if job.status is JobStatus.COMPLETED and job.video is not None:
        body["unsigned_urls"] = [content_url(base_url, job.id)]
    if job.usage is not None:
        body["usage"] = job.usage.model_dump(mode="json", exclude_none=True)
    if job.status.terminal and job.status is not JobStatus.COMPLETED:
        body["error"] = job.error or f"the job ended {job.status.value}"
    if job.request.webhook_url is not None:
        # videogen's own field (OpenRouter's clients ignore fields they do not know): the webhook's attempts.
        body["webhook"] = {"state": job.webhook_state, "attempts": job.webhook_attempts}
    return body


def content_location(job: Job, index: str | None, presign: Callable[[str, str], str]) -> str:
    """Where ``GET /api/v1/videos/{id}/content?index=N`` redirects: a presigned URL of the job's video
    (API Gateway cannot carry a response of video size, S3 can). ``presign(key, bucket)``."""
    index = index or "0"
    if not index.isdigit():
        raise RequestRejected("index must be a non-negative integer", status_code=400, reason="malformed")
    if job.status is not JobStatus.COMPLETED or job.video is None:
        raise RequestRejected(f"video job {job.id} is {STATUS[job.status]}: no content", status_code=409)
    if int(index) != 0:
        raise RequestRejected(f"video job {job.id} has one output (index 0)", status_code=404, reason="not_found")
    bucket, key = parse_s3_uri(job.video.s3_uri)
    return presign(key, bucket)


def error(status: int, message: str, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """OpenRouter's error envelope, which the SDKs turn into their typed errors."""
    return {"error": {"code": status, "message": message, "metadata": metadata}}


def rejection(rejected: RequestRejected) -> tuple[int, dict[str, Any]]:
    status = _STATUS_CODES.get(rejected.status_code, rejected.status_code)
    fields = [{"field": e.field, "message": e.message} for e in rejected.errors]
    detail = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    message = f"{rejected.message}: {detail}" if detail else rejected.message
    return status, error(status, message, {"fields": fields} if fields else None)
