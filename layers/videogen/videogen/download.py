"""Download: stream the finished video from OpenRouter into S3 and close the job as completed."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
from botocore.exceptions import ClientError

from videogen.errors import (
    DownloadBusy,
    NotAnMp4,
    OpenRouterError,
    OpenRouterUnavailable,
    TransientError,
    VideoTooLarge,
)
from videogen.models import Job, JobStatus, VideoObject
from videogen.observability import Metric, emit, logger
from videogen.outcome import finish_job
from videogen.services import Services
from videogen.storage import StoredObject

CHUNK_BYTES = 1024 * 1024
# The state machine runs one download of a job at a time (a retry replaces a dead attempt), so it is one owner.
WORKFLOW_OWNER = "workflow"


def video_key(job_id: str) -> str:
    return f"videos/{job_id}.mp4"


def download_job(
    services: Services,
    job_id: str,
    openrouter_job_id: str,
    unsigned_urls: list[str] | None,
    owner: str = WORKFLOW_OWNER,
    signed_urls: list[str] | None = None,
) -> Job | None:
    """Returns the finished job, or None if it had already ended. Raises DownloadBusy if another attempt
    (``owner`` names this one) is storing the video right now. ``signed_urls``: OpenRouter's ``urls`` when the
    caller has them in hand (a nudge's poll); otherwise they are asked for again if the job's polls saw some,
    since they are bearer secrets that no execution history or record may carry."""
    existing = services.store.get(job_id)
    if existing is None or existing.status.terminal:
        return None  # cancelled meanwhile, or a retry of an attempt that finished: its event is the outbox's
    if not services.store.claim_download(job_id, owner, time.time(), services.settings.download_claim_seconds):
        ended = services.store.get(job_id)
        if ended is None or ended.status.terminal:
            return None
        raise DownloadBusy(f"job {job_id}: another attempt is storing its video")
    try:
        if (expired := _expired(existing)) is not None:
            return finish_job(services, job_id, JobStatus.FAILED, error=expired)
        signed = signed_urls if signed_urls is not None else _signed_urls(services, existing, openrouter_job_id)
        return _download(services, job_id, openrouter_job_id, unsigned_urls, signed)
    except TransientError:
        services.store.release_download(job_id, owner)
        raise


def _expired(job: Job) -> str | None:
    """Why the job's outputs can no longer be downloaded, if OpenRouter said they expire and they have."""
    if job.outputs_expire_at is None:
        return None
    try:
        expires = datetime.fromisoformat(job.outputs_expire_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    if expires > datetime.now(UTC):
        return None
    return f"outputs expired at {job.outputs_expire_at} before they were downloaded"


def _signed_urls(services: Services, job: Job, openrouter_job_id: str) -> list[str] | None:
    if not job.signed_outputs:
        return None
    try:
        return services.openrouter.get_job(job.polling_url, openrouter_job_id).urls
    except (OpenRouterError, OpenRouterUnavailable) as exc:
        logger.warning("signed URLs not fetched; using the others", extra={"error": type(exc).__name__})
        return None


def _download(
    services: Services,
    job_id: str,
    openrouter_job_id: str,
    unsigned_urls: list[str] | None,
    signed_urls: list[str] | None = None,
) -> Job | None:
    # urls[0] first (signed and keyless, as OpenRouter recommends), then unsigned_urls[0] (often a storage
    # host: no key goes there), then OpenRouter's authenticated content endpoint, which also serves when a
    # link has expired or is refused.
    content_url = services.openrouter.content_url(openrouter_job_id)
    firsts = (signed_urls or [])[:1] + (unsigned_urls or [])[:1]
    candidates = [url for url in dict.fromkeys(firsts) if url != content_url] + [content_url]
    started = time.monotonic()
    for index, url in enumerate(candidates):
        try:
            stored = _store(services, job_id, url)
            break
        except (NotAnMp4, VideoTooLarge) as exc:
            return finish_job(services, job_id, JobStatus.FAILED, error=f"downloaded video rejected: {exc}")
        except OpenRouterError as exc:
            if exc.retryable:
                raise TransientError(str(exc)) from None
            if index + 1 < len(candidates):
                logger.warning("output URL refused; trying the next", extra={"status": exc.status_code})
                continue
            return finish_job(services, job_id, JobStatus.FAILED, error=f"video download failed: {exc}")
        except (OpenRouterUnavailable, httpx.TransportError) as exc:
            # Includes a body that ended early: the upload was aborted, so a retry starts clean.
            raise TransientError(f"video download interrupted: {type(exc).__name__}: {exc}") from None
        except ClientError as exc:
            # S3 refused a part or the completion even after botocore's own retries; the upload was
            # aborted, so the state machine's retry starts a clean one.
            raise TransientError(f"storing the video failed: {exc.response['Error']['Code']}") from None
    else:  # pragma: no cover - the loop always breaks or returns
        raise AssertionError("no download candidate")
    elapsed = time.monotonic() - started
    emit(Metric.DOWNLOAD_BYTES, stored.bytes)
    emit(Metric.DOWNLOAD_SECONDS, elapsed)
    logger.info("video stored", extra={"job_id": job_id, "s3_uri": stored.s3_uri, "bytes": stored.bytes})
    video = VideoObject(
        s3_uri=stored.s3_uri,
        bytes=stored.bytes,
        sha256=stored.sha256,
        content_type=stored.content_type,
        duration_seconds=stored.mp4.duration_seconds,
        width=stored.mp4.width,
        height=stored.mp4.height,
        codec=stored.mp4.codec,
        has_audio=stored.mp4.has_audio,
    )
    finished = finish_job(services, job_id, JobStatus.COMPLETED, video=video)
    if finished is None:
        _discard_unowned_video(services, job_id)
    return finished


def _discard_unowned_video(services: Services, job_id: str) -> None:
    """The job ended while its video was being stored (a cancel won the race): the object belongs to no
    job and is deleted. A job completed by another attempt owns the same key, so its video stays."""
    ended = services.store.get(job_id)
    if ended is not None and ended.status is JobStatus.COMPLETED:
        return
    services.storage.delete(video_key(job_id))
    logger.info("the job ended while its video was stored; the video is deleted", extra={"job_id": job_id})


def _store(services: Services, job_id: str, url: str) -> StoredObject:
    with services.openrouter.stream(url) as response:
        return services.storage.upload_video(
            video_key(job_id),
            response.iter_bytes(CHUNK_BYTES),
            part_bytes=services.settings.download_part_bytes,
            max_bytes=services.settings.max_video_bytes,
            parts_in_flight=services.settings.download_parts_in_flight,
        )
